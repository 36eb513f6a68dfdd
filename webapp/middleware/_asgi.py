"""What the middleware share: reading headers, answering a refusal, metering a body as it streams."""

from __future__ import annotations

import math
from collections.abc import Callable

from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from webapp.settings import AppSettings
from webapp.visitors import visitor_key


def header(scope: Scope, name: bytes) -> str | None:
    """One request header (repeated ones joined by ", "), or None."""
    values = [v.decode("latin-1") for k, v in scope.get("headers") or [] if k == name]
    return ", ".join(values) if values else None


def scope_visitor(scope: Scope, settings: AppSettings) -> str:
    """The visitor key of a request (`webapp.visitors.visitor_key`)."""
    client = scope.get("client")
    return visitor_key(
        client[0] if client else None,
        header(scope, b"x-forwarded-for"),
        settings.trusted_proxies,
        settings.on_space,
    )


def refusal(status: int, message: str, retry_after: float | None = None) -> Response:
    """A plain-text refusal, with Retry-After when waiting helps."""
    headers = {"Retry-After": str(max(1, math.ceil(retry_after)))} if retry_after is not None else None
    return PlainTextResponse(message, status_code=status, headers=headers)


def content_length(scope: Scope) -> int | None:
    """The declared body length, or None."""
    value = header(scope, b"content-length")
    return int(value) if value and value.strip().isdigit() else None


def size_text(size: int) -> str:
    """A byte count for people: "81 MB", "400 KB"."""
    if size >= 1024**2:
        return f"{size / 1024**2:.0f} MB"
    return f"{size / 1024:.0f} KB"


async def metered(
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
            answer = check(message.get("body", b""))
            if answer is not None:
                refused = True
                if not started:
                    started = True
                    await answer(scope, receive, send)
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


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None once it passes `limit` bytes."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives `body` once, then passes on what the client sends (a disconnect)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
