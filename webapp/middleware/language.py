"""The page's language, chosen before Gradio starts: a small script put first in the page's `<head>`.

Gradio's frontend picks its locale once, from `navigator.language`, before any `head=` script of the
app runs, and keeps no choice of its own (its settings panel's picker lasts until the next load).
Setting the locale later leaves texts already drawn (the upload areas) in the old language. So the
page itself carries a script, ahead of Gradio's, that presents the visitor's choice (the header's
switch, kept in localStorage by app.js) as the browser's language; everything (Gradio's texts, the
app's gr.I18n texts, app.js's words, the tab title) then starts in that language.
"""

from __future__ import annotations

import json

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LANGUAGE_KEY = "juhe-lang"  # app.js keeps the choice under this localStorage key: "zh" or "en"
SCRIPT = (
    "<script>(() => { try { const chosen = localStorage.getItem(" + json.dumps(LANGUAGE_KEY) + "); "
    'const locale = { zh: "zh-CN", en: "en" }[chosen]; if (!locale) return; '
    'Object.defineProperty(navigator, "language", { get: () => locale, configurable: true }); '
    'Object.defineProperty(navigator, "languages", { get: () => [locale], configurable: true }); '
    "} catch {} })();</script>"
).encode()
HEAD = b"<head>"


class PageLanguage:
    """Put `SCRIPT` right after `<head>` in the app's page (GET `/`, HTML); pass all else through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        root = (scope.get("root_path") or "").rstrip("/")
        page = scope["type"] == "http" and scope["method"] in ("GET", "HEAD")
        if not page or scope["path"] not in ("/", f"{root}/"):
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        body = b""

        async def collect(message: Message) -> None:
            nonlocal start, body
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            body += message.get("body", b"")
            if message.get("more_body"):
                return
            headers = MutableHeaders(scope=start)
            html = headers.get("content-type", "").startswith("text/html")
            if html and "content-encoding" not in headers and HEAD in body:
                body = body.replace(HEAD, HEAD + SCRIPT, 1)
                headers["content-length"] = str(len(body))
            await send(start)
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, collect)
