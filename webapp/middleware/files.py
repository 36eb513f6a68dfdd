"""No relaying of remote files: Gradio's `/file=<URL>` would fetch any URL and stream its body back."""

from __future__ import annotations

import re
from urllib.parse import unquote

from starlette.types import ASGIApp, Receive, Scope, Send

from webapp.middleware._asgi import refusal
from webapp.texts import error_text

# `/file=<URL>` relays a remote body (route_utils.secure_url_stream_response); `/file/` is its old
# alias; `/proxy=` relays Spaces loaded with gr.load, which this app never does.
_FILE_ROUTE = re.compile(r"/(file=|file/|proxy=)(.*)\Z", re.DOTALL)
_SCHEME = re.compile(r"\s*(?:[A-Za-z][A-Za-z0-9+.\-]*:|[\\/]{2})")


class RemoteFiles:
    """Refuse `/file=<URL>` (any scheme, also percent-encoded), its `/file/` alias and `/proxy=`.

    Gradio would fetch the URL and stream its body back: an open proxy with no upstream timeout.
    The app's own files are served as before.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and is_remote_file_path(scope["path"]):
            await refusal(403, error_text("remote_file"))(scope, receive, send)
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
