"""Guards of a public app against hostile visitors, each where the harm would begin.

- Gradio downloads any http(s) link sent as a file to any event before a handler runs (the whole
  body into memory, no size cap, per-read timeout only). `install_download_guard` makes Gradio's
  fetch functions refuse instead: no event makes this server fetch a visitor's link. Links reach
  the provider as plain strings, and the provider downloads them.
- ASGI middleware, listed by `guard_middleware` for `launch(app_kwargs=...)`: `RemoteFiles` (no
  relaying of remote files), `BodyCap` (every request body but uploads), `UploadBudget` (uploads per
  address per minute) and `LoginThrottle` (failed logins per address).

Per-address budgets count the visitor's address as `visitor_address` tells it, so behind a trusted
proxy one visitor's excess never refuses another.
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import ipaddress
import math
import re
import time
from collections.abc import Callable, Iterable
from urllib.parse import unquote

import gradio as gr
from gradio import processing_utils
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from webapp.limits import client_address
from webapp.settings import AppSettings
from webapp.texts import TITLES, error_text

WINDOW_S = 60.0
# Uploads per minute per address, for each edit per minute the rate limit allows: 10 files, and 4
# uploads of the largest allowed size (an edit takes at most 3 images).
UPLOAD_FILES_PER_EDIT = 10
UPLOAD_SIZES_PER_EDIT = 4
# Failed logins per address: 10 within a minute, then a block of 60 s that doubles with each further
# block, up to an hour; blocks are forgotten an hour after the last one ends, or at a login.
LOGIN_FAILURES = 10
LOGIN_BLOCK_S = 60.0
LOGIN_BLOCK_MAX_S = 3600.0
LOGIN_MEMORY_S = 3600.0
# A request body (other than an upload) holds at most 3 images as base64 of JUHE_MAX_UPLOAD each,
# plus 1 MiB for everything else. Gradio's max_file_size covers uploads only; JSON bodies (data URIs
# sent to MCP or the API) would otherwise be unbounded.
BODY_IMAGES = 3
BODY_SLACK = 1024 * 1024
# An IPv6 visitor is counted by their /64, the network one subscriber gets, so cycling through
# their own addresses does not dodge a limit.
IPV6_PREFIX = 64

# The functions through which Gradio fetches a link on the server; module attributes, so every
# caller (Block.async_move_resource_to_block_cache and its sync twin, the file components, SVG and
# audio handling) looks them up at call time.
_ASYNC_FETCHES = ("async_ssrf_protected_download", "async_ssrf_protected_get")
_SYNC_FETCHES = ("ssrf_protected_download", "save_url_to_cache")
# `/file=<URL>` relays a remote body (route_utils.secure_url_stream_response); `/file/` is its old
# alias; `/proxy=` relays Spaces loaded with gr.load, which this app never does.
_FILE_ROUTE = re.compile(r"/(file=|file/|proxy=)(.*)\Z", re.DOTALL)
_SCHEME = re.compile(r"\s*(?:[A-Za-z][A-Za-z0-9+.\-]*:|[\\/]{2})")
_LOGIN_PATHS = ("/login", "/login/")
_BODYLESS = ("GET", "HEAD", "OPTIONS")  # the app reads no body of these


# --- who is asking -------------------------------------------------------------------------------


def visitor_address(
    peer: str | None, forwarded_for: str | None, trusted_proxies: Iterable[str], behind_proxy: bool
) -> str | None:
    """The visitor's address, or None where it cannot be told.

    Directly reachable, it is `client_address` (X-Forwarded-For believed from trusted proxies only).
    Behind a platform's proxy (a Space) every connection comes from that proxy, so an address counts
    only when it is the one a trusted proxy appended: the right-most X-Forwarded-For hop that is not
    itself a trusted proxy. Otherwise it would be the proxy's own, shared by every visitor.
    """
    address = client_address(peer, forwarded_for, trusted_proxies)
    if not behind_proxy:
        return address
    networks = _networks(trusted_proxies)
    hops = [hop.strip() for hop in (forwarded_for or "").split(",") if hop.strip()]
    appended = next((hop for hop in reversed(hops) if not _within(hop, networks)), None)
    return address if appended is not None and address == appended else None


def address_key(address: str) -> str:
    """What per-address limits count an address as: itself, or for IPv6 its /64 network."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/{IPV6_PREFIX}", strict=False))
    return str(ip)


def _networks(trusted_proxies: Iterable[str]) -> list:
    return [ipaddress.ip_network(p, strict=False) for p in trusted_proxies if p]


def _within(address: str, networks: list) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def _header(scope: Scope, name: bytes) -> str | None:
    values = [v.decode("latin-1") for k, v in scope.get("headers") or [] if k == name]
    return ", ".join(values) if values else None


def _scope_key(scope: Scope, settings: AppSettings) -> str:
    """The per-address key of a request; the direct peer where the visitor's address is unknown."""
    client = scope.get("client")
    peer = client[0] if client else None
    address = visitor_address(
        peer, _header(scope, b"x-forwarded-for"), settings.trusted_proxies, settings.on_space
    )
    return address_key(address or peer or "unknown")


# --- H1: no server-side fetch of a visitor's link ------------------------------------------------


def _link_refused() -> gr.Error:
    return gr.Error(error_text("file_link"), title=TITLES["link"], print_exception=False)


async def _refuse_async(*_args, **_kwargs):
    raise _link_refused()


def _refuse_sync(*_args, **_kwargs):
    raise _link_refused()


def install_download_guard() -> None:
    """Make Gradio refuse, with a bilingual `gr.Error`, every link it would fetch on the server.

    A file value whose `path` is an http(s) URL, sent to any event (private ones by `fn_index`, the
    `edit` endpoint, any file-taking component) or returned by a handler, fails before a byte is
    fetched. Process-wide and idempotent: this app never wants Gradio to fetch a link.
    """
    for name in _ASYNC_FETCHES:
        setattr(processing_utils, name, _refuse_async)
    for name in _SYNC_FETCHES:
        setattr(processing_utils, name, _refuse_sync)


# --- bookkeeping ---------------------------------------------------------------------------------


class Tally:
    """Amounts per key over a sliding window, in one-second buckets. For the event loop only."""

    def __init__(self, window_s: float = WINDOW_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self.clock = clock
        self._buckets: dict[str, collections.deque[list[float]]] = {}
        self._pruned = -math.inf

    def add(self, key: str, amount: float) -> None:
        """Count `amount` for `key` now."""
        now = self.clock()
        buckets = self._buckets.setdefault(key, collections.deque())
        second = math.floor(now)
        if buckets and buckets[-1][0] == second:
            buckets[-1][1] += amount
        else:
            buckets.append([second, amount])

    def total(self, key: str) -> float:
        """What `key` counted within the window."""
        self._prune()
        return sum(amount for _, amount in self._buckets.get(key, ()))

    def retry_after(self, key: str) -> float:
        """Seconds until the oldest amount of `key` leaves the window (0 for none)."""
        buckets = self._buckets.get(key)
        return max(0.0, buckets[0][0] + 1 + self.window_s - self.clock()) if buckets else 0.0

    def _prune(self) -> None:
        now = self.clock()
        if now - self._pruned < 1:
            return
        self._pruned = now
        for key in list(self._buckets):
            buckets = self._buckets[key]
            while buckets and buckets[0][0] + 1 <= now - self.window_s:
                buckets.popleft()
            if not buckets:
                del self._buckets[key]


def _refusal(status: int, message: str, retry_after: float | None = None) -> Response:
    headers = {"Retry-After": str(max(1, math.ceil(retry_after)))} if retry_after is not None else None
    return PlainTextResponse(message, status_code=status, headers=headers)


async def _metered(
    app: ASGIApp, scope: Scope, receive: Receive, send: Send, check: Callable[[bytes], Response | None]
) -> None:
    """Run `app`, showing `check` each body chunk as it arrives; when it returns a refusal, send that
    (unless an answer has begun), and give the app a disconnect and drop what it answers."""
    refused = False
    started = False

    async def metered_receive() -> Message:
        nonlocal refused, started
        if refused:
            return {"type": "http.disconnect"}
        message = await receive()
        if message["type"] == "http.request":
            refusal = check(message.get("body", b""))
            if refusal is not None:
                refused = True
                if not started:
                    started = True
                    await refusal(scope, receive, send)
                return {"type": "http.disconnect"}
        return message

    async def guarded_send(message: Message) -> None:
        nonlocal started
        if refused:
            return
        started = started or message["type"] == "http.response.start"
        await send(message)

    try:
        await app(scope, metered_receive, guarded_send)
    except Exception:
        if not refused:
            raise


def size_text(size: int) -> str:
    """A byte count for people: "81 MB", "400 KB"."""
    if size >= 1024**2:
        return f"{size / 1024**2:.0f} MB"
    return f"{size / 1024:.0f} KB"


def _content_length(scope: Scope) -> int | None:
    value = _header(scope, b"content-length")
    return int(value) if value and value.strip().isdigit() else None


# --- M1: no relaying of remote files -------------------------------------------------------------


class RemoteFiles:
    """Refuse `/file=<URL>` (any scheme, also percent-encoded), its `/file/` alias and `/proxy=`.

    Gradio would fetch the URL and stream its body back: an open proxy with no upstream timeout.
    The app's own files are served as before.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and is_remote_file_path(scope["path"]):
            await _refusal(403, error_text("remote_file"))(scope, receive, send)
            return
        await self.app(scope, receive, send)


def is_remote_file_path(path: str) -> bool:
    """True for a file route naming anything but a path: a URL (after any percent-decoding) or a
    proxied address."""
    match = _FILE_ROUTE.search(path)
    if not match:
        return False
    if match[1] == "proxy=":
        return True
    target = match[2]
    for _ in range(3):  # what Starlette decoded once may be encoded again
        if _SCHEME.match(target):
            return True
        target = unquote(target)
    return bool(_SCHEME.match(target))


# --- 6: request bodies ---------------------------------------------------------------------------


def max_request_body(max_upload_bytes: int) -> int:
    """The body cap of every request but uploads: 3 images as base64 of `max_upload_bytes`, + 1 MiB."""
    return BODY_IMAGES * 4 * math.ceil(max_upload_bytes / 3) + BODY_SLACK


class BodyCap:
    """Answer 413 to a request body over `limit` bytes, by its Content-Length or, for a streamed
    (chunked) body, as soon as the bytes received pass it. Uploads are left to Gradio's own
    per-file cap and to `UploadBudget`."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.message = error_text("body_size", size=size_text(limit))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] in _BODYLESS
            or scope["path"].rstrip("/").endswith("/upload")
        ):
            await self.app(scope, receive, send)
            return
        length = _content_length(scope)
        if length is not None and length > self.limit:
            await _refusal(413, self.message)(scope, receive, send)
            return
        received = 0

        def check(chunk: bytes) -> Response | None:
            nonlocal received
            received += len(chunk)
            return _refusal(413, self.message) if received > self.limit else None

        await _metered(self.app, scope, receive, send, check)


# --- M2: uploads per address ---------------------------------------------------------------------


class _PartCounter:
    """Counts the parts of a multipart body as it streams by: each boundary not closing the body."""

    def __init__(self, content_type: str | None) -> None:
        match = re.search(r'boundary="?([^";]+)"?', content_type or "")
        self.delimiter = b"--" + match[1].encode("latin-1") if match else None
        self.tail = b""

    def feed(self, chunk: bytes) -> int:
        """The parts that begin in `chunk` (with what came before it)."""
        if self.delimiter is None:
            return 0
        data, size, parts = self.tail + chunk, len(self.delimiter), 0
        position = data.find(self.delimiter)
        while position != -1 and position + size + 2 <= len(data):
            parts += data[position + size : position + size + 2] != b"--"
            position = data.find(self.delimiter, position + 1)
        self.tail = data[-(size + 1) :]
        return parts


class UploadBudget:
    """Per address, at most `files` uploaded files and `size` bytes per minute; beyond, HTTP 429
    with Retry-After. A request over what is left is refused by its Content-Length before it is
    read, or cut as soon as its streamed parts or bytes pass the budget."""

    def __init__(
        self,
        app: ASGIApp,
        settings: AppSettings,
        files: int,
        size: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.settings = settings
        self.files, self.size = files, size
        self.file_tally, self.byte_tally = Tally(clock=clock), Tally(clock=clock)

    def _refusal(self, key: str) -> Response:
        wait = max(self.file_tally.retry_after(key), self.byte_tally.retry_after(key))
        message = error_text("uploads", files=self.files, size=size_text(self.size), wait=math.ceil(wait))
        return _refusal(429, message, wait)

    def _over(self, key: str, extra_bytes: int = 0) -> bool:
        return self.file_tally.total(key) > self.files or self.byte_tally.total(key) + extra_bytes > self.size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"].rstrip("/").endswith("/upload")
        ):
            await self.app(scope, receive, send)
            return
        key = _scope_key(scope, self.settings)
        spent = self.file_tally.total(key) >= self.files or self.byte_tally.total(key) >= self.size
        if spent or self._over(key, _content_length(scope) or 0):
            await self._refusal(key)(scope, receive, send)
            return
        parts = _PartCounter(_header(scope, b"content-type"))

        def check(chunk: bytes) -> Response | None:
            self.byte_tally.add(key, len(chunk))
            self.file_tally.add(key, parts.feed(chunk))
            return self._refusal(key) if self._over(key) else None

        await _metered(self.app, scope, receive, send, check)


# --- M3: failed logins per address ---------------------------------------------------------------


def password_check(expected: str) -> Callable[[str, str], bool]:
    """Gradio's `auth` callable for one password and any user name, compared in constant time
    (digests first, so not even the length is told)."""
    want = hashlib.sha256(expected.encode()).digest()

    def check(_user: str, given: str) -> bool:
        return hmac.compare_digest(hashlib.sha256(str(given).encode(errors="replace")).digest(), want)

    return check


class LoginBook:
    """Failed logins per key: `LOGIN_FAILURES` in `WINDOW_S`, then a growing block.

    An attempt counts as failed from the moment it starts, until it succeeds: attempts sent all at
    once cannot slip past the count.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._failures: dict[str, collections.deque[float]] = {}
        self._blocked: dict[str, tuple[float, int]] = {}  # blocked until, blocks so far
        self._forgot = -math.inf

    def begin(self, key: str) -> float:
        """Seconds `key` must wait (nothing counted), or 0 with this attempt counted as failed."""
        now = self.clock()
        self._forget(now)
        until, _ = self._blocked.get(key, (0.0, 0))
        if until > now:
            return until - now
        failures = self._failures.setdefault(key, collections.deque())
        while failures and failures[0] <= now - WINDOW_S:
            failures.popleft()
        if len(failures) >= LOGIN_FAILURES:
            return self._block(key, now)
        failures.append(now)
        return 0.0

    def end(self, key: str, succeeded: bool) -> None:
        """Settle an attempt: a success clears `key`; a failure stays counted and may block it."""
        if succeeded:
            self._failures.pop(key, None)
            self._blocked.pop(key, None)
        elif len(self._failures.get(key, ())) >= LOGIN_FAILURES:
            self._block(key, self.clock())

    def _block(self, key: str, now: float) -> float:
        _, blocks = self._blocked.get(key, (0.0, 0))
        length = min(LOGIN_BLOCK_S * 2**blocks, LOGIN_BLOCK_MAX_S)
        self._blocked[key] = (now + length, blocks + 1)
        self._failures.pop(key, None)
        return length

    def _forget(self, now: float) -> None:
        if now - self._forgot < 1:
            return
        self._forgot = now
        for key in list(self._failures):
            failures = self._failures[key]
            while failures and failures[0] <= now - WINDOW_S:
                failures.popleft()
            if not failures:
                del self._failures[key]
        for key, (until, _) in list(self._blocked.items()):
            if now - until >= LOGIN_MEMORY_S:
                del self._blocked[key]


class LoginThrottle:
    """Throttle failed `POST /login` per visitor address: HTTP 429 with Retry-After while blocked.

    Keyed by address, so an attacker blocks only their own address; a right password from any other
    address is never refused.
    """

    def __init__(self, app: ASGIApp, settings: AppSettings, book: LoginBook | None = None) -> None:
        self.app = app
        self.settings = settings
        self.book = book or LoginBook()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not (
            scope["type"] == "http" and scope["method"] == "POST" and scope["path"].endswith(_LOGIN_PATHS)
        ):
            await self.app(scope, receive, send)
            return
        key = _scope_key(scope, self.settings)
        wait = self.book.begin(key)
        if wait:
            await _refusal(429, error_text("logins", wait=math.ceil(wait)), wait)(scope, receive, send)
            return
        status = 0

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            self.book.end(key, succeeded=status == 200)


# --- the list for launch() -----------------------------------------------------------------------


def guard_middleware(settings: AppSettings) -> list[Middleware]:
    """The guards these settings call for, outermost first."""
    middleware = [
        Middleware(RemoteFiles),
        Middleware(BodyCap, limit=max_request_body(settings.max_upload_bytes)),
    ]
    if settings.rate_limit:
        files = UPLOAD_FILES_PER_EDIT * settings.rate_limit
        size = UPLOAD_SIZES_PER_EDIT * settings.max_upload_bytes * settings.rate_limit
        middleware.append(Middleware(UploadBudget, settings=settings, files=files, size=size))
    if settings.access_password:
        middleware.append(Middleware(LoginThrottle, settings=settings))
    return middleware
