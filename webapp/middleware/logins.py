"""Failed logins per visitor: 10 within a minute, then a block of 60 s that doubles with each further
block, up to an hour; blocks are forgotten an hour after the last one ends, or at a login."""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from webapp.middleware._asgi import refusal, scope_visitor
from webapp.settings import AppSettings
from webapp.texts import error_text
from webapp.window import WINDOW_S, Window

LOGIN_FAILURES = 10
LOGIN_BLOCK_S = 60.0
LOGIN_BLOCK_MAX_S = 3600.0
LOGIN_MEMORY_S = 3600.0
_LOGIN_PATHS = ("/login", "/login/")


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
