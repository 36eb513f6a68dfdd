"""The transport both clients share: retries, a total deadline per call, and the pool size.

- `RetryTransport` (after replicate-python's) retries a request only when it surely never reached
  the provider: the connection could not be opened, or the answer was HTTP 429 or 503 (refused
  before any work). It waits what `Retry-After` asks when that is at most `MAX_RETRY_AFTER`
  seconds, and gives up when asked to wait longer. It never retries after HTTP 502 or 504 or a
  read timeout: a generation call is billed, and the edit may have run.
- It also replaces the reason phrase of every answer with the standard one for its status: a
  provider's own phrase could echo the API key into httpx's "HTTP Request: ..." log line.
- `deadline(seconds)` bounds every socket operation of the calls made inside it by what is left of
  one total time, so an answer that trickles its headers or body ends at the deadline (httpx's own
  timeouts apply to each read alone).
- Both pools keep a connection they have handed to a waiting request: httpcore 1.0.9 can close it
  in another request's pass (as a surplus idle connection, or to make room) before or after the
  waiting request starts on it (encode/httpcore#1110, unreleased fix #1111). Under a burst of
  downloads the socket was closed under a download already reading: "Bad file descriptor", and a
  result not saved. The same pass (`_fix_assignment`) is linear and counts only idle connections
  against the keep-alive limit (encode/httpcore#1000, #1035, both unreleased).
- The async streams answer httpcore's "is this idle connection readable?" from a socket looked up
  once: httpcore asks for every idle connection each time a request starts or ends, and anyio
  answered each ask with a getpeername() system call and a new dict (5 % of the event loop in a
  burst of 256 edits).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import email.utils
import random
import select
import time
from collections.abc import Iterator
from datetime import timezone

import httpcore
import httpx

RETRY_STATUSES = (429, 503)
MAX_RETRIES = 2
MAX_RETRY_AFTER = 10.0  # seconds; a longer Retry-After is not waited for: the error is returned
DEFAULT_MAX_CONNECTIONS = 100

_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("juhe_deadline", default=None)


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Bound the network operations inside (this thread or task only) to `seconds` in total."""
    token = _DEADLINE.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def _left(timeout: float | None, expired: type[Exception]) -> float | None:
    """`timeout` shortened to what is left before the deadline; raise `expired` once it has passed."""
    end = _DEADLINE.get()
    if end is None:
        return timeout
    left = end - time.monotonic()
    if left <= 0:
        raise expired("the total time of the call ran out")
    return left if timeout is None else min(timeout, left)


# httpcore reads 64 KiB at a time. asyncio reads up to 256 KiB from the socket, and anyio cut that
# into 64 KiB pieces, copying the rest each time: a 1 MB result was read in ~28 steps through
# httpx's and httpcore's layers. Asking for 256 KiB reads it in ~4 (10-20 % less CPU per download,
# tests/benchmarks/downloads.py; 1 MiB measured worse).
READ_BYTES = 256 * 1024


class _Stream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max(max_bytes, READ_BYTES), _left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None) -> httpcore.NetworkStream:
        timeout = _left(timeout, httpcore.ConnectTimeout)
        return _Stream(self._stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str):
        return self._stream.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    def __init__(self, backend: httpcore.NetworkBackend) -> None:
        self._backend = backend

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        timeout = _left(timeout, httpcore.ConnectTimeout)
        return _Stream(self._backend.connect_tcp(host, port, timeout, local_address, socket_options))

    def connect_unix_socket(self, path, timeout=None, socket_options=None):
        timeout = _left(timeout, httpcore.ConnectTimeout)
        return _Stream(self._backend.connect_unix_socket(path, timeout, socket_options))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


def _readable(sock) -> bool:
    """True when a read would not wait: data, or the peer closed (httpcore's own test of an idle
    connection, made without asking anyio for the socket again)."""
    fd = sock.fileno()
    if fd < 0:  # closed: the next read returns the end
        return True
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


class _AsyncStream(httpcore.AsyncNetworkStream):
    def __init__(self, stream: httpcore.AsyncNetworkStream) -> None:
        self._stream = stream
        self._socket = stream.get_extra_info("socket")  # asked once (see the module's docstring)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._stream.read(max(max_bytes, READ_BYTES), _left(timeout, httpcore.ReadTimeout))

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._stream.write(buffer, _left(timeout, httpcore.WriteTimeout))

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(self, ssl_context, server_hostname=None, timeout=None) -> httpcore.AsyncNetworkStream:
        timeout = _left(timeout, httpcore.ConnectTimeout)
        return _AsyncStream(await self._stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str):
        if info == "socket" and self._socket is not None:
            return self._socket
        if info == "is_readable" and self._socket is not None:
            return _readable(self._socket)
        return self._stream.get_extra_info(info)


class _AsyncBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, backend: httpcore.AsyncNetworkBackend) -> None:
        self._backend = backend

    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        timeout = _left(timeout, httpcore.ConnectTimeout)
        return _AsyncStream(
            await self._backend.connect_tcp(host, port, timeout, local_address, socket_options)
        )

    async def connect_unix_socket(self, path, timeout=None, socket_options=None):
        timeout = _left(timeout, httpcore.ConnectTimeout)
        return _AsyncStream(await self._backend.connect_unix_socket(path, timeout, socket_options))

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


KEEPALIVE_CONNECTIONS = 32  # idle connections kept open between calls


def _limits(max_connections: int) -> httpx.Limits:
    keepalive = min(max_connections, KEEPALIVE_CONNECTIONS)
    return httpx.Limits(max_connections=max_connections, max_keepalive_connections=keepalive)


def http_transport(max_connections: int = DEFAULT_MAX_CONNECTIONS) -> httpx.HTTPTransport:
    """httpx's transport with a pool of `max_connections` whose sockets honour `deadline()`."""
    transport = httpx.HTTPTransport(limits=_limits(max_connections))
    # httpx offers no way to pass a network backend; its pool keeps the one it uses here
    pool = transport._pool
    pool._network_backend = _Backend(pool._network_backend)
    _fix_assignment(pool)
    return transport


def async_http_transport(max_connections: int = DEFAULT_MAX_CONNECTIONS) -> httpx.AsyncHTTPTransport:
    """The asyncio form of `http_transport`."""
    transport = httpx.AsyncHTTPTransport(limits=_limits(max_connections))
    pool = transport._pool
    pool._network_backend = _AsyncBackend(pool._network_backend)
    _fix_assignment(pool)
    return transport


LIVENESS_EVERY_S = 1.0  # how often a pool's pass asks each idle connection whether it still lives
_HTTP11 = (httpcore.AsyncHTTP11Connection, httpcore.HTTP11Connection)
_IDLE, _CLOSED = 2, 3  # httpcore's HTTPConnectionState values (the same in its sync and async code)


def _fix_assignment(pool: httpcore.ConnectionPool | httpcore.AsyncConnectionPool) -> None:
    """Give `pool` (either kind: their assignment pass is the same code) httpcore 1.0.9's pass over
    its connections and waiting requests, in one linear pass, with these changes:

    - a connection handed to a waiting request is kept unless it has expired: it still looks idle
      until its request starts on it, and httpcore could close it under that request
      (encode/httpcore#1110);
    - the keep-alive limit counts idle connections, as documented; httpcore counted all of them,
      so with more than `max_keepalive_connections` in flight every freed connection was closed,
      and it counted them once per idle connection: a quadratic pass on every request's start and
      end: 12–20 % of an edit process's CPU in a burst (encode/httpcore#1000, #1035);
    - whether an idle connection still lives (a poll() each) is asked of all of them at most once
      a second, and always of the one about to be handed out: httpcore asked every idle one on
      every pass;
    - the state of an HTTP/1.1 connection is read once, not asked through two method calls per
      question, and a waiting request looks only among the connections that could take it: the
      pass runs at each request's start and end over every connection (128 in flight in each
      edit process in a burst of 256), and was 7 % of an edit's CPU there.
    """
    next_check = 0.0

    def assign_requests() -> list:
        nonlocal next_check
        now = time.monotonic()
        check_all = now >= next_check
        if check_all:
            next_check = now + LIVENESS_EVERY_S
        held, waiting = set(), []
        for request in pool._requests:
            if request.connection is None:
                waiting.append(request)
            else:
                held.add(id(request.connection))
        closing, kept, candidates, idle = [], [], [], 0
        for connection in pool._connections:
            inner = getattr(connection, "_connection", None)
            if type(inner) in _HTTP11:  # for HTTP/1.1 "available" is "idle"
                state = inner._state
                if state == _CLOSED:
                    continue
                is_idle = available = state == _IDLE
            else:  # connecting, HTTP/2, or anything else: httpcore's own answers
                if connection.is_closed():
                    continue
                is_idle, available = connection.is_idle(), connection.is_available()
            if is_idle:  # only an idle connection can expire
                if check_all and connection.has_expired():
                    closing.append(connection)
                    continue
                if id(connection) not in held:
                    idle += 1
                    if idle > pool._max_keepalive_connections:
                        closing.append(connection)
                        continue
            kept.append(connection)
            if available:
                candidates.append((connection, is_idle))
        pool._connections[:] = kept

        for pool_request in waiting:
            origin = pool_request.request.url.origin
            connection, dead = None, []
            for candidate, is_idle in candidates:
                if not candidate.can_handle_request(origin):
                    continue
                if is_idle:
                    if id(candidate) in held:  # promised to another request
                        continue
                    if not check_all and candidate.has_expired():
                        dead.append(candidate)
                        continue
                connection = candidate
                break
            if dead:
                for candidate in dead:
                    pool._connections.remove(candidate)
                    closing.append(candidate)
                candidates = [c for c in candidates if c[0] not in dead]
            if connection is None:
                if len(pool._connections) >= pool._max_connections:
                    spare = next((c for c in pool._connections if c.is_idle() and id(c) not in held), None)
                    if spare is None:
                        continue  # it waits for a connection to be freed
                    pool._connections.remove(spare)
                    closing.append(spare)
                connection = pool.create_connection(origin)
                pool._connections.append(connection)
            pool_request.assign_to_connection(connection)
            held.add(id(connection))
        return closing

    pool._assign_requests_to_connections = assign_requests


def _backoff(attempt: int) -> float:
    return min(8.0, 0.5 * 2**attempt) * (0.5 + random.random() / 2)


def retry_after(response: httpx.Response) -> float | None:
    """Seconds a `Retry-After` header asks to wait (a number or an HTTP date), or None."""
    value = response.headers.get("Retry-After", "").strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - time.time())


def _plain_phrase(response: httpx.Response) -> httpx.Response:
    """The response with the standard reason phrase of its status instead of the server's."""
    response.extensions = {
        **response.extensions,
        "reason_phrase": httpx.codes.get_reason_phrase(response.status_code).encode("ascii"),
    }
    return response


class RetryTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Wraps a sync or async transport; retries only what surely never reached the provider, and
    gives every answer the standard reason phrase of its status."""

    def __init__(
        self, wrapped: httpx.BaseTransport | httpx.AsyncBaseTransport, *, max_retries: int = MAX_RETRIES
    ) -> None:
        self._wrapped = wrapped
        self.max_retries = max_retries

    def _wait(self, attempt: int, response: httpx.Response | None) -> float | None:
        """Seconds to wait before trying again, or None to give up. `response` None: not connected."""
        if attempt >= self.max_retries:
            return None
        if response is None:
            wait = _backoff(attempt)
        elif response.status_code in RETRY_STATUSES:
            asked = retry_after(response)
            if asked is not None and asked > MAX_RETRY_AFTER:
                return None
            wait = _backoff(attempt) if asked is None else asked
        else:
            return None
        end = _DEADLINE.get()
        return None if end is not None and time.monotonic() + wait >= end else wait

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send `request`, again after a refused connection or a 429/503, at most `max_retries` times."""
        attempt = 0
        while True:
            try:
                response = self._wrapped.handle_request(request)
            except (httpx.ConnectError, httpx.ConnectTimeout):
                wait = self._wait(attempt, None)
                if wait is None:
                    raise
            else:
                wait = self._wait(attempt, response)
                if wait is None:
                    return _plain_phrase(response)
                response.close()
            time.sleep(wait)
            attempt += 1

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """The asyncio form of `handle_request`."""
        attempt = 0
        while True:
            try:
                response = await self._wrapped.handle_async_request(request)
            except (httpx.ConnectError, httpx.ConnectTimeout):
                wait = self._wait(attempt, None)
                if wait is None:
                    raise
            else:
                wait = self._wait(attempt, response)
                if wait is None:
                    return _plain_phrase(response)
                await response.aclose()
            await asyncio.sleep(wait)
            attempt += 1

    def close(self) -> None:
        """Close the wrapped transport."""
        self._wrapped.close()

    async def aclose(self) -> None:
        """Close the wrapped async transport."""
        await self._wrapped.aclose()
