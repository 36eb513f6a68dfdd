"""The ASGI middleware in front of Gradio, each in a module named for what it guards:

- `files`: no relaying of remote files (`/file=<URL>`, `/proxy=`);
- `bodies`: body caps per route (page events 1 MiB; image-carrying API calls charged to uploads);
- `uploads`: the upload allowance per visitor, and the record of who uploaded what (for the gate);
- `editor`: the component server, open only to the region editor's canvases;
- `logins`: failed logins per visitor, with a growing block;
- `routes`: closed routes (deep links) and the MCP token;
- `config` and `compress`: not guards but savings: the page's config built once per address, the
  page and its config gzipped (Gradio compresses by file extension only).

Share pages (`webapp.share`) are middleware too. `stack()` lists them all for `launch()`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from starlette.middleware import Middleware

from webapp.gate import Issued
from webapp.middleware.bodies import BodyCap
from webapp.middleware.config import ConfigCache
from webapp.middleware.editor import EditorBlobs
from webapp.middleware.files import RemoteFiles
from webapp.middleware.logins import LoginThrottle
from webapp.middleware.routes import CloseRoutes, RequireBearer
from webapp.middleware.uploads import Allowance, IssueUploads, UploadBudget
from webapp.settings import AppSettings

MCP_PATH = "/gradio_api/mcp"


def stack(
    settings: AppSettings,
    issued: Issued,
    editor: Callable[[], Any] = lambda: None,
    image_fns: Callable[[], Collection[int]] = tuple,
    share: Middleware | None = None,
) -> list[Middleware]:
    """The middleware these settings call for, outermost first."""
    allowance = Allowance.for_settings(settings)
    middleware = [Middleware(RemoteFiles)]
    if settings.mcp_enabled and settings.mcp_token:  # before any body is read
        middleware.append(Middleware(RequireBearer, prefix=MCP_PATH, token=settings.mcp_token))
    middleware += [
        Middleware(BodyCap, settings=settings, allowance=allowance, image_fns=image_fns, mcp_prefix=MCP_PATH),
        Middleware(EditorBlobs, settings=settings, issued=issued, editor=editor, allowance=allowance),
    ]
    if allowance is not None:
        middleware.append(Middleware(UploadBudget, settings=settings, allowance=allowance))
    middleware.append(Middleware(IssueUploads, settings=settings, issued=issued))
    if settings.access_password:
        middleware.append(Middleware(LoginThrottle, settings=settings))
    middleware.append(Middleware(CloseRoutes))
    middleware.append(Middleware(ConfigCache, enabled=not settings.access_password))
    if share is not None:
        middleware.append(share)
    return middleware
