"""Failed logins per visitor: 10 within a minute, then a block of 60 s that doubles with each further
block, up to an hour; blocks are forgotten an hour after the last one ends, or at a login.

Gradio's login page reacts only to a 400 and loads none of the app's scripts, so the throttle also
writes a small script into the app's HTML pages (`webapp/static/login.js`) that says the wait.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from collections.abc import Callable
from pathlib import Path

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from webapp.middleware._asgi import header, refusal, scope_visitor
from webapp.settings import AppSettings
from webapp.texts import error_text, login_script
from webapp.window import WINDOW_S, Window

LOGIN_FAILURES = 10
LOGIN_BLOCK_S = 60.0
LOGIN_BLOCK_MAX_S = 3600.0
LOGIN_MEMORY_S = 3600.0
_LOGIN_PATHS = ("/login", "/login/")
LOGIN_JS = Path(__file__).resolve().parent.parent / "static" / "login.js"
MAX_PAGE_BYTES = 2 * 1024 * 1024  # Gradio's page is about 10 KB: anything larger is passed on as is


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
        self._failures = Window(WINDOW_S, clock)
        self._blocked: dict[str, tuple[float, int]] = {}  # blocked until, blocks so far

    def begin(self, key: str) -> float:
        """Seconds `key` must wait (nothing counted), or 0 with this attempt counted as failed."""
        now = self.clock()
        self._forget(now)
        until, _ = self._blocked.get(key, (0.0, 0))
        if until > now:
            return until - now
        if self._failures.take([key], LOGIN_FAILURES):
            return self._block(key, now)
        return 0.0

    def end(self, key: str, succeeded: bool) -> None:
        """Settle an attempt: a success clears `key`; a failure stays counted and may block it."""
        if succeeded:
            self._failures.clear(key)
            self._blocked.pop(key, None)
        elif self._failures.total(key) >= LOGIN_FAILURES:
            self._block(key, self.clock())

    def _block(self, key: str, now: float) -> float:
        _, blocks = self._blocked.get(key, (0.0, 0))
        length = min(LOGIN_BLOCK_S * 2**blocks, LOGIN_BLOCK_MAX_S)
        self._blocked[key] = (now + length, blocks + 1)
        self._failures.clear(key)
        return length

    def _forget(self, now: float) -> None:
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
        if (
            scope["type"] == "http"
            and scope["method"] == "GET"
            and "text/html" in (header(scope, b"accept") or "")
        ):
            await with_login_script(self.app, scope, receive, send)
            return
        if not (
            scope["type"] == "http" and scope["method"] == "POST" and scope["path"].endswith(_LOGIN_PATHS)
        ):
            await self.app(scope, receive, send)
            return
        key = scope_visitor(scope, self.settings)
        wait = self.book.begin(key)
        if wait:
            await refusal(429, error_text("logins", wait=math.ceil(wait)), wait)(scope, receive, send)
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


async def with_login_script(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    """Run `app`; when it answers with an uncompressed HTML page, write the login script into its head
    (the login page is the app's page before a login, so every page gets it; it acts only on a 429
    from the login route). Any other answer passes unchanged."""
    start: Message | None = None
    chunks: list[bytes] = []
    size = 0
    passing = False

    async def rewriting_send(message: Message) -> None:
        nonlocal start, size, passing
        if passing:
            await send(message)
            return
        if message["type"] == "http.response.start":
            headers = {k.lower(): v for k, v in message.get("headers") or []}
            html = headers.get(b"content-type", b"").startswith(b"text/html")
            if not html or b"content-encoding" in headers:
                passing = True
                await send(message)
                return
            start = message
            return
        if message["type"] != "http.response.body" or start is None:
            await send(message)
            return
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > MAX_PAGE_BYTES:  # not a page of Gradio's: sent as it came
            passing = True
            await send(start)
            await send({**message, "body": b"".join(chunks)})
            return
        if message.get("more_body", False):
            return
        body = b"".join(chunks)
        script = login_script(LOGIN_JS.read_text(encoding="utf-8")).encode()
        if b"</head>" in body:
            body = body.replace(b"</head>", script + b"</head>", 1)
        headers = [(k, v) for k, v in start.get("headers") or [] if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    await app(scope, receive, rewriting_send)
