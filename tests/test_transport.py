"""The shared transport: which answers are retried and how long it waits, the total deadline, the pool."""

from __future__ import annotations

import asyncio
import email.utils
import socket
import time

import httpcore
import httpx
import pytest
from httpcore._sync.connection_pool import PoolRequest

import juhe._transport
from juhe import ImageEditClient
from juhe._transport import (
    MAX_RETRY_AFTER,
    READ_BYTES,
    RetryTransport,
    _AsyncStream,
    _Stream,
    async_http_transport,
    deadline,
    http_transport,
    retry_after,
)


def answer(status: int, **headers: str) -> httpx.Response:
    return httpx.Response(status, headers=headers)


@pytest.fixture
def transport(monkeypatch) -> RetryTransport:
    monkeypatch.setattr(juhe._transport, "_backoff", lambda attempt: 0.25 * (attempt + 1))
    return RetryTransport(httpx.MockTransport(lambda request: answer(200)))


@pytest.mark.parametrize(
    ("response", "wait"),
    [
        (answer(429), 0.25),
        (answer(503), 0.25),
        (answer(429, **{"Retry-After": "3"}), 3.0),
        (answer(503, **{"Retry-After": "0"}), 0.0),
        (answer(503, **{"Retry-After": "3600"}), None),  # asks for more than we wait: give up
        (answer(429, **{"Retry-After": "soon"}), 0.25),  # unreadable: our own backoff
        (None, 0.25),  # the connection never opened
        (answer(502), None),
        (answer(504), None),
        (answer(500), None),
        (answer(200), None),
    ],
)
def test_only_refusals_before_any_work_are_retried(transport, response, wait):
    assert transport._wait(0, response) == wait


def test_retry_after_as_an_http_date(transport):
    when = email.utils.formatdate(time.time() + 5, usegmt=True)
    assert 3.5 < retry_after(answer(429, **{"Retry-After": when})) <= 5
    past = email.utils.formatdate(time.time() - 60, usegmt=True)
    assert retry_after(answer(429, **{"Retry-After": past})) == 0.0


def test_no_more_than_two_retries(transport):
    assert transport._wait(1, answer(503)) == 0.5
    assert transport._wait(2, answer(503)) is None


def test_no_retry_would_end_after_the_calls_deadline(transport):
    with deadline(2.0):
        assert transport._wait(0, answer(503, **{"Retry-After": "1"})) == 1.0
        assert transport._wait(0, answer(503, **{"Retry-After": "3"})) is None
    assert MAX_RETRY_AFTER == 10.0


def test_a_retry_after_is_waited_before_the_next_try(monkeypatch):
    waits: list[float] = []
    monkeypatch.setattr(juhe._transport.time, "sleep", waits.append)
    answers = [answer(429, **{"Retry-After": "2"}), answer(200)]
    transport = RetryTransport(httpx.MockTransport(lambda request: answers.pop(0)))
    with httpx.Client(transport=transport) as client:
        response = client.post("https://provider.test/edit", content=b"key=k")
    assert response.status_code == 200 and waits == [2.0] and answers == []


def test_the_providers_reason_phrase_is_replaced_by_the_standard_one():
    def provider(request):
        return httpx.Response(500, extensions={"reason_phrase": b"key=secret-key-123456"})

    with httpx.Client(transport=RetryTransport(httpx.MockTransport(provider))) as client:
        assert client.get("https://provider.test/").reason_phrase == "Internal Server Error"


def test_a_deadline_that_has_passed_stops_the_next_network_operation():
    with (
        deadline(0.0),
        pytest.raises(httpx.ConnectTimeout),
        httpx.Client(transport=http_transport()) as client,
    ):
        client.get("http://127.0.0.1:9/")  # refused at once if it were tried


@pytest.mark.parametrize("build", [http_transport, async_http_transport])
def test_the_pool_has_the_size_asked_for(build):
    transport = build(250)
    assert transport._pool._max_connections == 250


def test_a_clients_max_connections_sizes_its_pool_and_cannot_be_ignored():
    with ImageEditClient(api_key="k" * 20, max_connections=7) as client:
        assert client._http._transport._wrapped._pool._max_connections == 7
    with pytest.raises(ValueError, match="max_connections"):
        ImageEditClient(
            api_key="k" * 20, transport=httpx.MockTransport(lambda r: answer(200)), max_connections=7
        )


def test_the_pool_keeps_a_bounded_number_of_idle_connections():
    limits = juhe._transport._limits(256)
    assert limits.max_connections == 256
    assert limits.max_keepalive_connections == juhe._transport.KEEPALIVE_CONNECTIONS == 32
    assert juhe._transport._limits(8).max_keepalive_connections == 8


def test_a_read_asks_the_socket_for_what_the_event_loop_reads_at_once():
    """httpcore asks for 64 KiB; anyio would cut asyncio's 256 KiB reads into such pieces, copying
    the rest each time, so both streams ask for at least 256 KiB (a bigger ask stays as it is)."""
    asked: list[int] = []

    class Inner:
        def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
            asked.append(max_bytes)
            return b"x"

        def get_extra_info(self, info: str):
            return None

    class AsyncInner(Inner):
        async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
            return Inner.read(self, max_bytes, timeout)

    assert _Stream(Inner()).read(64 * 1024) == b"x"
    assert asyncio.run(_AsyncStream(AsyncInner()).read(64 * 1024, timeout=5)) == b"x"
    assert _Stream(Inner()).read(4 * READ_BYTES) == b"x"
    assert asked == [READ_BYTES, READ_BYTES, 4 * READ_BYTES] and READ_BYTES == 256 * 1024


def test_an_idle_connection_is_checked_without_asking_anyio_again():
    """httpcore asks every idle connection "readable?" whenever a request starts or ends; the stream
    answers from the socket it looked up once, as httpcore would (data or a closed peer: readable)."""
    mine, peer = socket.socketpair()

    class Wrapped:
        asked: list[str] = []

        def get_extra_info(self, info: str):
            self.asked.append(info)
            return mine if info == "socket" else None

    wrapped = Wrapped()
    stream = _AsyncStream(wrapped)
    try:
        assert stream.get_extra_info("is_readable") is False
        peer.send(b"x")
        assert stream.get_extra_info("is_readable") is True
        mine.recv(1)
        peer.close()
        assert stream.get_extra_info("is_readable") is True  # the server closed it: to be dropped
        assert stream.get_extra_info("socket") is mine
        assert wrapped.asked == ["socket"]  # once, when the stream was made
    finally:
        mine.close()


# --- the pools keep a connection handed to a waiting request (encode/httpcore#1110) ---------------


class FakeConnection:
    """What the pool's assignment pass asks of a connection; idle (unless `busy`), for any origin.
    `asked` counts the questions, `liveness` those that cost a poll() on a real connection."""

    def __init__(self, expired: bool = False, busy: bool = False) -> None:
        self.expired = expired
        self.busy = busy
        self.closed = False
        self.asked = 0
        self.liveness = 0

    def is_closed(self) -> bool:
        self.asked += 1
        return self.closed

    def has_expired(self) -> bool:
        self.asked += 1
        self.liveness += 1
        return self.expired

    def is_idle(self) -> bool:
        self.asked += 1
        return not self.closed and not self.busy

    def is_available(self) -> bool:
        self.asked += 1
        return not self.closed and not self.busy

    def can_handle_request(self, origin) -> bool:
        return True


def waiting_on(pool, connection) -> None:
    """A request the pool has handed `connection` to, which has not started on it yet."""
    pool_request = PoolRequest(httpcore.Request("GET", "http://127.0.0.1:9/result.png"))
    pool_request.assign_to_connection(connection)
    pool._requests.append(pool_request)


@pytest.mark.parametrize("make", [http_transport, async_http_transport], ids=["sync", "async"])
def test_a_surplus_idle_connection_held_by_a_waiting_request_is_kept(make):
    pool = make(4)._pool
    pool._max_keepalive_connections = 0  # every idle connection is surplus to httpcore's pass
    held, spare = FakeConnection(), FakeConnection()
    pool._connections = [held, spare]
    waiting_on(pool, held)
    closing = pool._assign_requests_to_connections()
    assert closing == [spare]
    assert pool._connections == [held]


@pytest.mark.parametrize("make", [http_transport, async_http_transport], ids=["sync", "async"])
def test_an_expired_connection_still_goes_and_its_request_is_given_another(make):
    pool = make(4)._pool
    expired = FakeConnection(expired=True)
    pool._connections = [expired]
    waiting_on(pool, expired)
    assert pool._assign_requests_to_connections() == [expired]  # its request then retries elsewhere
    assert pool._connections == []


def queued(pool) -> PoolRequest:
    """A request waiting for the pool to give it a connection."""
    pool_request = PoolRequest(httpcore.Request("GET", "http://127.0.0.1:9/result.png"))
    pool._requests.append(pool_request)
    return pool_request


@pytest.mark.parametrize("make", [http_transport, async_http_transport], ids=["sync", "async"])
def test_the_keepalive_limit_counts_idle_connections_only(make):
    pool = make(16)._pool
    pool._max_keepalive_connections = 2
    busy = [FakeConnection(busy=True) for _ in range(5)]
    idle = [FakeConnection() for _ in range(3)]
    pool._connections = [*busy, *idle]
    # httpcore 1.0.9 compared all 8 connections with the limit and closed every idle one
    assert pool._assign_requests_to_connections() == [idle[2]]
    assert pool._connections == [*busy, *idle[:2]]


@pytest.mark.parametrize("make", [http_transport, async_http_transport], ids=["sync", "async"])
def test_a_pass_asks_each_connection_a_bounded_number_of_questions(make):
    pool = make(1000)._pool
    pool._max_keepalive_connections = 500
    connections = [FakeConnection(busy=n % 2 == 0) for n in range(400)]
    pool._connections = list(connections)
    queued(pool)
    pool._assign_requests_to_connections()
    # httpcore 1.0.9 asked every connection once per idle one: 200 x 400 questions here
    assert max(c.asked for c in connections) <= 6


@pytest.mark.parametrize("make", [http_transport, async_http_transport], ids=["sync", "async"])
def test_idle_connections_are_asked_if_alive_once_a_second_and_before_reuse(make, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(juhe._transport.time, "monotonic", lambda: now[0])
    pool = make(8)._pool
    alive, dead, spare = FakeConnection(), FakeConnection(), FakeConnection()
    pool._connections = [dead, alive, spare]
    pool._assign_requests_to_connections()  # the first pass asks every idle connection
    assert [c.liveness for c in (dead, alive, spare)] == [1, 1, 1]
    dead.expired = True  # the server closes it now
    now[0] += 0.5
    assert pool._assign_requests_to_connections() == []  # not asked again within the second
    assert [c.liveness for c in (dead, alive, spare)] == [1, 1, 1]
    request = queued(pool)
    assert pool._assign_requests_to_connections() == [dead]  # asked before it is handed out
    assert request.connection is alive and spare.liveness == 1
    now[0] += 1.0
    pool._assign_requests_to_connections()
    assert spare.liveness == 2


class IdleStream(httpcore.NetworkStream):
    """The network stream of an idle HTTP/1.1 connection whose server has said nothing."""

    def get_extra_info(self, info: str):
        return False if info == "is_readable" else None


@pytest.mark.parametrize("make", [http_transport, async_http_transport], ids=["sync", "async"])
def test_http11_connections_are_judged_by_the_state_they_are_in(make):
    # the pass reads an HTTP/1.1 connection's state itself instead of asking httpcore's methods
    pool = make(8)._pool
    sync = isinstance(pool, httpcore.ConnectionPool)
    module = httpcore._sync.http11 if sync else httpcore._async.http11
    origin = httpcore.Origin(b"http", b"127.0.0.1", 9)

    def connection(state):
        outer = (httpcore.HTTPConnection if sync else httpcore.AsyncHTTPConnection)(origin)
        outer._connection = (httpcore.HTTP11Connection if sync else httpcore.AsyncHTTP11Connection)(
            origin, IdleStream()
        )
        outer._connection._state = state
        return outer

    states = module.HTTPConnectionState
    new, active, closed, idle, spare = map(
        connection, (states.NEW, states.ACTIVE, states.CLOSED, states.IDLE, states.IDLE)
    )
    assert [c.is_idle() for c in (new, active, idle)] == [False, False, True]  # httpcore agrees
    pool._max_keepalive_connections = 1  # one idle connection may stay; busy ones do not count
    pool._connections = [new, active, closed, idle, spare]
    request = queued(pool)
    assert pool._assign_requests_to_connections() == [spare]
    assert pool._connections == [new, active, idle]  # the closed one is dropped
    assert request.connection is idle  # neither the new nor the active one is handed out
