"""Routes this app closes (deep links) or locks (MCP behind a page password)."""

from __future__ import annotations

import hmac

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

# `/gradio_api/deep_link?session_hash=...` writes the session's input values (a visitor's own API
# key among them) to GRADIO_TEMP_DIR/deep_links/<id>/state.json, and `/?deep_link=<id>` shows them
# to whoever opens that link. The app has no deep-link button, so the route only adds risk.
CLOSED_PATHS = ("/gradio_api/deep_link",)


class CloseRoutes:
    """Answer 404 for the paths in `CLOSED_PATHS` (also under a root path prefix)."""

    def __init__(self, app: ASGIApp, paths: tuple[str, ...] = CLOSED_PATHS) -> None:
        self.app = app
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].rstrip("/").endswith(self.paths):
            await PlainTextResponse("Not Found", status_code=404)(scope, receive, send)
            return
        await self.app(scope, receive, send)


class RequireBearer:
    """Refuse requests under `prefix` (e.g. the MCP route) without `Authorization: Bearer <token>`.

    Gradio's MCP route has no login check of its own, so a password-locked app serves MCP only with
    this token.
    """

    def __init__(self, app: ASGIApp, prefix: str, token: str) -> None:
        self.app = app
        self.prefix = prefix
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.prefix):
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                response = PlainTextResponse(
                    "Unauthorized: send Authorization: Bearer <JUHE_MCP_TOKEN>",
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
