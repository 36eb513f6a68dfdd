"""The page's config (GET /config), built once per public address instead of once per request.

Gradio builds `/config` anew for every request: a deep copy of the whole page's config (230 KB
here), then a walk over it to put the root URL into every file link. Every `gradio_client` that
connects asks for it, and so does anything watching the app (the burst benchmark polls it while
edits run): 40 ms of the GIL per request in a burst of 256 edits. The config only changes with the
address it is served at, so the answer is kept per address: scheme, server, root path and the
headers Gradio reads to find the root URL. Gradio never compresses it (its compression picks by
file extension); the kept answer is also gzipped once, for the clients that accept it (230 KB
became 26 KB). An app with a password is never cached (the config names the user and its route
checks the login), nor is a request with a query (deep links, pages) or an answer that is not a
plain 200.
"""

from __future__ import annotations

import gzip
from collections import OrderedDict
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The headers `gradio.route_utils.get_request_origin` reads to build the root URL.
ADDRESS_HEADERS = (b"host", b"x-forwarded-host", b"x-forwarded-proto", b"x-gradio-server")
MAX_ADDRESSES = 16  # a visitor varying Host only evicts entries: at most 16 × the config's size


@dataclass
class _Answer:
    start: Message
    body: bytes
    zipped: bytes | None = None  # made the first time a visitor accepts gzip

    def send_start(self, encoding: bytes | None, length: int) -> Message:
        """A fresh start message (middleware outside this one edits headers in place)."""
        headers = [(k, v) for k, v in self.start["headers"] if k not in (b"content-length", b"vary")]
        headers += [(b"content-length", str(length).encode()), (b"vary", b"Accept-Encoding")]
        if encoding:
            headers.append((b"content-encoding", encoding))
        return {**self.start, "headers": headers}


class ConfigCache:
    """Answer GET `/config` from the first answer built for the same address (LRU of 16)."""

    def __init__(self, app: ASGIApp, enabled: bool = True, max_addresses: int = MAX_ADDRESSES) -> None:
        self.app = app
        self.enabled = enabled
        self.max_addresses = max_addresses
        self.answers: OrderedDict[tuple, _Answer] = OrderedDict()

    def _key(self, scope: Scope) -> tuple | None:
        """The address this request's config would be built for; None if it must not be cached."""
        if not self.enabled or scope["type"] != "http" or scope["method"] != "GET":
            return None
        root = (scope.get("root_path") or "").rstrip("/")
        if scope["path"] not in ("/config", "/config/", f"{root}/config", f"{root}/config/"):
            return None
        if scope.get("query_string"):
            return None
        headers = {name: value for name, value in scope.get("headers") or [] if name in ADDRESS_HEADERS}
        # each header once: a repeated one makes Gradio's choice depend on order, so do not guess
        if len(headers) != sum(1 for name, _ in scope.get("headers") or [] if name in ADDRESS_HEADERS):
            return None
        address = tuple(headers.get(name) for name in ADDRESS_HEADERS)
        return scope["path"], root, scope.get("scheme"), tuple(scope.get("server") or ()), address

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = self._key(scope)
        if key is None:
            await self.app(scope, receive, send)
            return
        kept = self.answers.get(key)
        if kept is not None:
            self.answers.move_to_end(key)
            body, encoding = kept.body, None
            if _accepts_gzip(scope):
                if kept.zipped is None:
                    kept.zipped = gzip.compress(kept.body, 6)
                body, encoding = kept.zipped, b"gzip"
            await send(kept.send_start(encoding, len(body)))
            await send({"type": "http.response.body", "body": body})
            return
        start: Message | None = None
        body = b""

        async def collect(message: Message) -> None:
            nonlocal start, body
            if message["type"] == "http.response.start":
                start = {**message, "headers": list(message.get("headers") or [])}
                varied = [(k, v) for k, v in start["headers"] if k != b"vary"] + [
                    (b"vary", b"Accept-Encoding")
                ]
                await send({**message, "headers": varied})
                return
            # read before sending: middleware outside this one (compression) edits messages in place
            last = message["type"] == "http.response.body" and not message.get("more_body")
            if message["type"] == "http.response.body" and start is not None:
                body += message.get("body", b"")
            await send(message)
            if last and start is not None and _keepable(start):
                self.answers[key] = _Answer(start, body)
                while len(self.answers) > self.max_addresses:
                    self.answers.popitem(last=False)

        await self.app(scope, receive, collect)


def _keepable(start: Message) -> bool:
    """A plain 200, not encoded, that sets no cookie."""
    names = {name.lower() for name, _ in start.get("headers") or []}
    return start.get("status") == 200 and not names & {b"set-cookie", b"content-encoding"}


def _accepts_gzip(scope: Scope) -> bool:
    """True when the request's Accept-Encoding names gzip with a weight above 0."""
    for name, value in scope.get("headers") or []:
        if name != b"accept-encoding":
            continue
        for part in value.lower().split(b","):
            coding, _, params = part.partition(b";")
            if coding.strip() != b"gzip":
                continue
            weight = params.strip().removeprefix(b"q=") if params.strip().startswith(b"q=") else b"1"
            try:
                return float(weight) > 0
            except ValueError:
                return False
    return False
