"""The read-only share page of a saved result: an ASGI middleware in front of the app (no Gradio here).

`GET /share/<token>` shows the before/after comparison, the instruction, size, model and time, and a
download button. The files of that one result are served under paths made of the token alone:
`/share/<token>/result/<n>`, `/share/<token>/download/<n>`, `/share/<token>/before.jpg` and
`/share/<token>/thumb.jpg`; when the owner shared the steps too, each earlier step of the edit chain
as `/share/<token>/step/<k>/result` and `/share/<token>/step/<k>/before.jpg`. No path from the URL
reaches the file system: the token is looked up in the store, which names the files. The page
needs neither the access password nor a Gradio session; the link is the capability.
"""

from __future__ import annotations

import base64
import hashlib
import html
import ipaddress
import logging
import math
import os
import re
import stat
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO
from urllib.parse import parse_qs

import anyio.to_thread
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from juhe import OTHER_EXTENSION, RESULT_EXTENSIONS, sniff_format
from webapp.settings import HOST_FORM, check_public_url
from webapp.store import Record, ResultStore, Unavailable
from webapp.texts import chosen_language
from webapp.visitors import visitor_key
from webapp.window import Window

logger = logging.getLogger("webapp.share")

PREFIX = "/share"
SHARE_RATE_LIMIT = 60  # share requests (page and images alike) per minute per client address
CHUNK_BYTES = 256 * 1024  # a file is sent in pieces of this size
IMAGE_MAX_AGE_S = 300  # browsers may keep an image this long; the page itself is never stored
DESCRIPTION_CHARS = 200  # characters of the instruction in og:description
ROUTE = re.compile(
    r"/share/(?P<token>[A-Za-z0-9_-]{1,64})"
    r"(?:/(?P<part>before\.jpg|thumb\.jpg|(?:result|download)/(?P<n>[1-9][0-9]{0,2})"
    r"|step/(?P<k>[1-9][0-9]?)/(?:result|before\.jpg)))?/?"
)
IMAGE_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}

PAGE_CSS = """
:root{color-scheme:light dark;--bg:#fafafa;--fg:#1f2328;--muted:#59636e;--card:#fff;--line:#d0d7de;
--accent:#c2410c}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--muted:#9198a1;--card:#161b22;
--line:#30363d}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);
font:16px/1.5 system-ui,-apple-system,"Segoe UI","PingFang SC","Microsoft YaHei",sans-serif}
main{max-width:960px;margin:0 auto;padding:24px 16px 48px}
h1{font-size:1.4em;margin:0 0 16px}
h2{font-size:1em;margin:0 0 8px;color:var(--muted)}
.compare{position:relative;margin:0 auto 8px;width:fit-content;max-width:100%;line-height:0;
user-select:none;-webkit-user-select:none}
.compare img{display:block;max-width:100%;max-height:75vh;width:auto;height:auto}
.compare .before{position:absolute;inset:0;width:100%;height:100%;max-height:none;object-fit:contain;
background:var(--bg);clip-path:inset(0 calc(100% - var(--pos,50%)) 0 0)}
.divider{position:absolute;top:0;bottom:0;left:var(--pos,50%);width:2px;margin-left:-1px;
background:#fff;box-shadow:0 0 0 1px #0006;pointer-events:none}
.compare input{position:absolute;inset:0;width:100%;height:100%;margin:0;opacity:0;cursor:ew-resize}
.compare:has(input:focus-visible){outline:3px solid var(--accent);outline-offset:2px}
.tag{position:absolute;top:8px;padding:2px 8px;border-radius:6px;background:#000a;color:#fff;
font-size:13px;line-height:1.6;pointer-events:none}
.tag.l{left:8px}.tag.r{right:8px}
.hint{text-align:center;color:var(--muted);font-size:.9em;margin:0 0 20px}
.single{display:block;max-width:100%;max-height:75vh;height:auto;margin:0 auto 20px}
.card{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:16px 20px;
margin:0 0 16px}
blockquote{margin:0 0 12px;white-space:pre-wrap;overflow-wrap:anywhere;font-size:1.05em}
dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;margin:0 0 16px}
dt{color:var(--muted)}dd{margin:0;overflow-wrap:anywhere}
.button{display:inline-block;padding:10px 18px;border-radius:8px;background:var(--accent);color:#fff;
text-decoration:none;font-weight:600;margin:0 8px 8px 0}
.more img{display:block;max-width:100%;height:auto;margin:0 0 8px}
footer{color:var(--muted);font-size:.85em;margin-top:24px}
.steps ol{list-style:none;padding:0;margin:0}
.steps li{margin:0 0 24px}
.steps h3{font-size:1em;margin:0 0 8px}
"""
PAGE_JS = """
for (const box of document.querySelectorAll(".compare")) {
  const range = box.querySelector("input");
  const update = () => box.style.setProperty("--pos", range.value + "%");
  range.addEventListener("input", update);
  update();
}
"""


def _source_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


# Only this module's own style and script run (by hash); images only from this origin; no forms,
# frames, base URL, plugins or connections.
_LOCKED = "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
PAGE_CSP = (
    f"default-src 'none'; img-src 'self'; style-src {_source_hash(PAGE_CSS)}; "
    f"script-src {_source_hash(PAGE_JS)}; {_LOCKED}"
)
MESSAGE_CSP = f"default-src 'none'; style-src {_source_hash(PAGE_CSS)}; {_LOCKED}"
FILE_CSP = "default-src 'none'; sandbox"
# The URL is the capability: it must not leak in a Referer, be indexed, or be kept by a shared cache.
COMMON_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-robots-tag", b"noindex, nofollow"),
]

# (HTTP status, Chinese title, English title, Chinese text, English text)
MESSAGES = {
    Unavailable.UNKNOWN: (
        404,
        "找不到这个分享链接",
        "This share link does not exist",
        "链接可能不完整，或者结果已被删除。",
        "The link may be incomplete, or the result was deleted.",
    ),
    Unavailable.REVOKED: (
        410,
        "此分享链接已被撤销",
        "This share link was revoked",
        "分享者已撤销此链接，结果不再公开。",
        "The person who shared it has revoked the link; the result is no longer shown.",
    ),
    Unavailable.EXPIRED: (
        410,
        "此分享链接已过期",
        "This share link has expired",
        "结果只保存有限的时间，这个结果已被删除。",
        "Results are kept for a limited time, and this one has been deleted.",
    ),
}


def default_public_url(configured: str | None, space_host: str | None) -> str | None:
    """JUHE_PUBLIC_URL, else `https://<SPACE_HOST>` on a Hugging Face Space, else None (the request's
    own host is used)."""
    if configured and configured.strip():
        return check_public_url(configured)
    if space_host and HOST_FORM.fullmatch(space_host.strip()):
        return f"https://{space_host.strip()}"
    return None


def share_path(token: str, root_path: str = "") -> str:
    """The path of a share page, e.g. for the app to show the owner (`root_path` as served)."""
    return f"{root_path.rstrip('/')}{PREFIX}/{token}"


def _last(value: str | None) -> str:
    """The right-most entry of a forwarded header: the one the nearest proxy wrote."""
    return (value or "").rsplit(",", 1)[-1].strip()


def _trusted(peer: str | None, trusted_proxies: Sequence[str]) -> bool:
    try:
        ip = ipaddress.ip_address(peer or "")
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(p, strict=False) for p in trusted_proxies if p)


def public_base(
    public_url: str | None,
    scheme: str,
    headers: Mapping[str, str],
    peer: str | None,
    trusted_proxies: Sequence[str] = (),
    root_path: str = "",
) -> str | None:
    """The absolute base of the app's URLs: JUHE_PUBLIC_URL, else the request's scheme and Host.

    `X-Forwarded-Proto` and `X-Forwarded-Host` count only from a trusted proxy (and uvicorn has
    already applied the proto when it trusts the peer). None when the host is malformed.
    """
    if public_url:
        return public_url
    host = headers.get("host") or ""
    if _trusted(peer, trusted_proxies):
        scheme = _last(headers.get("x-forwarded-proto")).lower() or scheme
        host = _last(headers.get("x-forwarded-host")) or host
    if scheme not in ("http", "https") or not HOST_FORM.fullmatch(host):
        return None
    return f"{scheme}://{host}{root_path.rstrip('/')}"


def _utc(moment: float | str | None) -> str:
    """A moment as `YYYY-MM-DD HH:MM UTC`, or "" when it cannot be read."""
    try:
        if isinstance(moment, str):
            when = datetime.fromisoformat(moment)
            when = when if when.tzinfo else when.replace(tzinfo=timezone.utc)
        elif isinstance(moment, (int, float)) and math.isfinite(moment):
            when = datetime.fromtimestamp(moment, timezone.utc)
        else:
            return ""
        return when.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    except (ValueError, OverflowError, OSError):
        return ""


def page_language(query_string: bytes, cookie_header: str | None) -> str | None:
    """The language a share page is shown in: `?lang=zh|en` (a link made on the page carries the
    language the page was shown in), else the app's language cookie of this browser, else None
    (both languages: the reader's is unknown)."""
    asked = parse_qs(query_string.decode("latin-1")).get("lang", [""])[-1]
    return asked if asked in ("zh", "en") else chosen_language(cookie_header)


def _say(zh: str, en: str, lang: str | None) -> str:
    """One text in the page's language, or both ("中文 · English") when it is unknown."""
    return zh if lang == "zh" else en if lang == "en" else f"{zh} · {en}"


def _page(
    title: str,
    head: str,
    body: str,
    script: bool,
    lang: str | None = None,
    css: str = PAGE_CSS,
    js: str = PAGE_JS,
) -> str:
    """A whole page; `css` and `js` must be the texts its CSP names by hash (a board's page has its own)."""
    html_lang = "en" if lang == "en" else "zh-CN"
    return (
        f'<!doctype html>\n<html lang="{html_lang}">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="robots" content="noindex, nofollow">\n<meta name="referrer" content="no-referrer">\n'
        f"<title>{html.escape(title)}</title>\n{head}<style>{css}</style>\n</head>\n<body>\n<main>\n"
        f"{body}</main>\n" + (f"<script>{js}</script>\n" if script else "") + "</body>\n</html>\n"
    )


def shared_steps(store: ResultStore, record: Record) -> list[Record]:
    """The earlier steps a share page shows, oldest first: none unless its owner shared the steps;
    a step whose own link was revoked is left out (deleted ones are gone from the chain already).
    File work: call it from a worker thread."""
    if not record.share_steps:
        return []
    return [step for step in store.chain(record.id)[:-1] if not step.withdrawn]


def page_records(store: ResultStore, record: Record) -> tuple[Record, list[Record]]:
    """The result and the steps a share page shows, each with its "before" copy made if it has
    one (made the first time a page asks: `ResultStore.before_copy`), so that the page offers a
    before/after only where the image is there. File and CPU work: call it from a worker thread."""
    steps = [store.with_before(step) for step in shared_steps(store, record)]
    return store.with_before(record), steps


def _steps_html(steps: Sequence[Record], here: str) -> str:
    """The section of earlier steps: each one's instruction and before/after, from the step's own
    files under this link (`step/<k>/...`); no order id, file name or time of a step is shown."""
    e = html.escape
    total = len(steps) + 1
    items = []
    for k, step in enumerate(steps, start=1):
        after = f'src="{here}/step/{k}/result" loading="lazy"'
        if step.width and step.height:
            after += f' width="{step.width}" height="{step.height}"'
        if step.before:
            picture = (
                '<figure class="compare">\n'
                f'<img class="after" {after} alt="第 {k} 步编辑后 · Step {k}, after">\n'
                f'<img class="before" src="{here}/step/{k}/before.jpg" loading="lazy" '
                f'alt="第 {k} 步原图 · Step {k}, before">\n'
                '<span class="divider"></span><span class="tag l">原图 · Before</span>'
                '<span class="tag r">编辑后 · After</span>\n'
                '<input type="range" min="0" max="100" value="50" '
                f'aria-label="第 {k} 步前后对比 · Step {k}, before and after">\n</figure>\n'
            )
        else:
            picture = f'<img class="single" {after} alt="第 {k} 步编辑后 · Step {k}, after">\n'
        items.append(
            f'<li class="step">\n<h3>第 {k} 步（共 {total} 步）· Step {k} of {total}</h3>\n'
            f"<blockquote>{e(step.prompt.strip()) or '—'}</blockquote>\n{picture}</li>\n"
        )
    return (
        '<section class="card steps">\n<h2>编辑步骤 · The steps that led here</h2>\n<ol>\n'
        + "".join(items)
        + f"</ol>\n<p>第 {total} 步即上方的结果 · Step {total} is the result above.</p>\n</section>\n"
    )


def render_share_page(
    record: Record,
    token: str,
    base_url: str | None,
    root_path: str = "",
    steps: Sequence[Record] = (),
    lang: str | None = None,
) -> str:
    """The HTML of a share page, in `lang` ("zh", "en") or both when None. Every value from the
    record is escaped; `base_url` (absolute, or None) makes the Open Graph image URL. `steps` are the
    earlier steps the owner shared too (`shared_steps`), oldest first."""
    e = html.escape

    def t(zh: str, en: str) -> str:
        return _say(zh, en, lang)

    here = e(share_path(token, root_path))
    prompt = record.prompt.strip()
    description = prompt[:DESCRIPTION_CHARS] + ("…" if len(prompt) > DESCRIPTION_CHARS else "")
    title = t("AI 图像编辑结果", "AI image edit")
    meta = [
        ("og:type", "website"),
        ("og:title", title),
        ("og:description", description or t("由 AI 图像编辑生成", "Made with AI image editing")),
    ]
    if base_url and record.thumbnail:
        meta += [("og:image", f"{base_url}{PREFIX}/{token}/thumb.jpg"), ("og:image:type", "image/jpeg")]
    head = "".join(f'<meta property="{k}" content="{e(v)}">\n' for k, v in meta)
    head += '<meta name="twitter:card" content="summary_large_image">\n'

    size = f"{record.width} × {record.height} px" if record.width and record.height else "—"
    if record.size and record.size != "auto":
        asked = record.size.replace("*", " × ")
        both = f"（请求 {asked} · requested {asked}）"
        size += t(f"（请求 {asked}）", f" (requested {asked})") if lang else both
    when = _utc(record.completed_at) or _utc(record.created)
    after = f'src="{here}/result/1"'
    if record.width and record.height:
        after += f' width="{record.width}" height="{record.height}"'  # no jump while it loads
    if record.before:
        picture = (
            '<figure class="compare">\n'
            f'<img class="after" {after} alt="{t("编辑后", "After")}">\n'
            f'<img class="before" src="{here}/before.jpg" alt="{t("原图", "Before")}">\n'
            f'<span class="divider"></span><span class="tag l">{t("原图", "Before")}</span>'
            f'<span class="tag r">{t("编辑后", "After")}</span>\n'
            '<input type="range" min="0" max="100" value="50" '
            f'aria-label="{t("原图与编辑后对比", "Before and after")}">\n'
            f'</figure>\n<p class="hint">{t("拖动对比原图与结果", "Drag to compare before and after")}</p>\n'
        )
    else:
        picture = f'<img class="single" {after} alt="{t("编辑后", "After")}">\n'
    downloads = "".join(
        f'<a class="button" href="{here}/download/{n}">{t("下载", "Download")}'
        + (f" {n}" if len(record.images) > 1 else "")
        + "</a>"
        for n in range(1, len(record.images) + 1)
    )
    more = "".join(
        f'<img src="{here}/result/{n}" alt="{t(f"结果 {n}", f"Result {n}")}">\n'
        for n in range(2, len(record.images) + 1)
    )
    expiry = _utc(record.expires) if record.expires else ""
    body = (
        f"<h1>{e(title)}</h1>\n{picture}"
        f'<section class="card">\n<h2>{t("指令", "Instruction")}</h2>\n'
        f"<blockquote>{e(prompt) or '—'}</blockquote>\n<dl>\n"
        f"<dt>{t('尺寸', 'Size')}</dt><dd>{e(size)}</dd>\n"
        f"<dt>{t('模型', 'Model')}</dt><dd>{e(record.model or 'auto')}</dd>\n"
        f"<dt>{t('时间', 'Time')}</dt><dd>{e(when) or '—'}</dd>\n</dl>\n{downloads}\n</section>\n"
        + (f'<section class="more">\n{more}</section>\n' if more else "")
        + (_steps_html(steps, here) if steps else "")
        + "<footer>"
        + t(
            "只读分享页" + (f"，有效期至 {e(expiry)}" if expiry else ""),
            "Read-only shared result" + (f", available until {e(expiry)}" if expiry else ""),
        )
        + _other_language(here, lang)
        + "</footer>\n"
    )
    script = record.before is not None or any(step.before for step in steps)
    return _page(title, head, body, script=script, lang=lang)


def _other_language(here: str, lang: str | None) -> str:
    """A link to the same page in the other language (a page in one language only)."""
    if lang is None:
        return ""
    other, name = ("en", "English") if lang == "zh" else ("zh", "中文")
    lang_attr = "en" if other == "en" else "zh-CN"
    return f' · <a href="{here}?lang={other}" lang="{lang_attr}" hreflang="{lang_attr}">{name}</a>'


def render_message(zh_title: str, en_title: str, zh_text: str, en_text: str, lang: str | None = None) -> str:
    """A page for a link that shows nothing (or a refusal): in `lang`, or in both when None."""
    e = html.escape
    title = _say(zh_title, en_title, lang)
    texts = {"zh": f"<p>{e(zh_text)}</p>\n", "en": f'<p lang="en">{e(en_text)}</p>\n'}
    paragraphs = texts[lang] if lang else texts["zh"] + texts["en"]
    body = f'<h1>{e(title)}</h1>\n<section class="card">\n{paragraphs}</section>\n'
    return _page(title, "", body, script=False, lang=lang)


def _open_regular(path: Path) -> tuple[BinaryIO, int, str | None]:
    """Open a file for reading, never through a link; return it, its size and its image format."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    handle = os.fdopen(fd, "rb")
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError("not a regular file")
        fmt = sniff_format(handle.read(16))
        handle.seek(0)
    except BaseException:
        handle.close()
        raise
    return handle, info.st_size, fmt


class SharePages:
    """Serve `/share/...` from the store (404 for all of it when `enabled` is False); pass
    everything else to the app.

    `public_url` (JUHE_PUBLIC_URL) makes absolute URLs; without it they are built from the request's
    Host, and from `X-Forwarded-Host`/`-Proto` only when the peer is one of `trusted_proxies`. Every
    share request counts against `rate_limit` per minute per client address, apart from the app's
    edit limits.
    """

    def __init__(
        self,
        app: ASGIApp,
        store: ResultStore,
        *,
        enabled: bool = True,
        public_url: str | None = None,
        trusted_proxies: Sequence[str] = (),
        behind_proxy: bool = False,
        rate_limit: int = SHARE_RATE_LIMIT,
    ) -> None:
        self.app = app
        self.store = store
        self.enabled = enabled
        self.public_url = check_public_url(public_url)
        self.trusted_proxies = list(trusted_proxies)
        self.behind_proxy = behind_proxy
        self.rate_limit = rate_limit
        self.window = Window()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        root_path = scope.get("root_path") or ""
        if root_path and path.startswith(root_path + "/"):
            path = path[len(root_path) :]
        if path != PREFIX and not path.startswith(PREFIX + "/"):
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            if not self.enabled:
                await _respond(tracked, scope, 404, b"Not Found", "text/plain; charset=utf-8")
                return
            await self._serve(scope, tracked, path, root_path)
        except Exception:
            logger.exception("share request failed")
            if not started:
                text = render_message(
                    "出错了", "Something went wrong", "请稍后再试。", "Please try again later."
                )
                await _respond(send, scope, 500, text.encode(), "text/html; charset=utf-8", MESSAGE_CSP)

    async def _serve(self, scope: Scope, send: Send, path: str, root_path: str) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            await _respond(
                send,
                scope,
                405,
                b"Method Not Allowed",
                "text/plain; charset=utf-8",
                extra=[(b"allow", b"GET, HEAD")],
            )
            return
        headers = Headers(scope=scope)
        lang = page_language(scope.get("query_string") or b"", headers.get("cookie"))
        peer = (scope.get("client") or (None,))[0]
        key = visitor_key(peer, headers.get("x-forwarded-for"), self.trusted_proxies, self.behind_proxy)
        wait = self.window.take([key], self.rate_limit) if self.rate_limit else 0.0
        if wait:
            seconds = math.ceil(wait)
            text = render_message(
                "请求太频繁",
                "Too many requests",
                f"请 {seconds} 秒后再试。",
                f"At most {self.rate_limit} requests per minute; try again in {seconds} s.",
                lang,
            )
            extra = [(b"retry-after", str(seconds).encode())]
            await _respond(send, scope, 429, text.encode(), "text/html; charset=utf-8", MESSAGE_CSP, extra)
            return
        await self._route(scope, send, path, root_path, headers, lang)

    async def _route(
        self, scope: Scope, send: Send, path: str, root_path: str, headers: Headers, lang: str | None
    ) -> None:
        """Answer an admitted request (a GET or HEAD within the rate limit); `webapp.boards` adds its
        own paths in front."""
        peer = (scope.get("client") or (None,))[0]
        match = ROUTE.fullmatch(path)
        token = match["token"] if match else ""
        found = await anyio.to_thread.run_sync(self.store.resolve, token)
        part = match["part"] if match else None
        if isinstance(found, Unavailable):
            await respond_unavailable(send, scope, found, part, lang)
            return
        if part is None:
            base = public_base(
                self.public_url, scope.get("scheme", "http"), headers, peer, self.trusted_proxies, root_path
            )
            found, steps = await anyio.to_thread.run_sync(page_records, self.store, found)
            body = render_share_page(found, token, base, root_path, steps, lang).encode()
            extra = [(b"x-frame-options", b"DENY"), (b"cross-origin-opener-policy", b"same-origin")]
            await _respond(send, scope, 200, body, "text/html; charset=utf-8", PAGE_CSP, extra)
            return
        n = int(match["n"]) if match["n"] else 0
        if match["k"]:  # a file of an earlier step: only of the steps this page shows
            steps = await anyio.to_thread.run_sync(shared_steps, self.store, found)
            k = int(match["k"])
            step = steps[k - 1] if k <= len(steps) else None
            if step is not None and part.endswith("before.jpg"):
                file = await anyio.to_thread.run_sync(self.store.before_copy, step.id)
            else:
                file = None if step is None else step.images[0]
            await _send_file(scope, send, file, None)
            return
        if part == "before.jpg":
            file, download = await anyio.to_thread.run_sync(self.store.before_copy, found.id), None
        elif part == "thumb.jpg":
            file, download = found.thumbnail, None
        else:
            file = found.images[n - 1] if n <= len(found.images) else None
            download = f"juhe-edit-{n}" if part.startswith("download/") else None
        await _send_file(scope, send, file, download)


async def respond_unavailable(
    send: Send, scope: Scope, found: Unavailable, part: str | None, lang: str | None
) -> None:
    """Why a share (or board) link opens nothing: plain text for one of its files, a page for the link."""
    status, *texts = MESSAGES[found]
    if part:
        message = f"{texts[0]} / {texts[1]}".encode()
        await _respond(send, scope, status, message, "text/plain; charset=utf-8")
    else:
        body = render_message(*texts, lang=lang).encode()
        await _respond(send, scope, status, body, "text/html; charset=utf-8", MESSAGE_CSP)


async def _respond(
    send: Send,
    scope: Scope,
    status: int,
    body: bytes,
    content_type: str,
    csp: str | None = None,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        *COMMON_HEADERS,
        *([(b"content-security-policy", csp.encode())] if csp else []),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})


async def _send_file(scope: Scope, send: Send, path: Path | None, download: str | None) -> None:
    """Stream one file of a result, with its type from its bytes; 404 when it is gone."""
    try:
        if path is None:
            raise FileNotFoundError
        handle, size, fmt = await anyio.to_thread.run_sync(_open_regular, path)
    except OSError:
        await _respond(send, scope, 404, "文件不存在 / Not Found".encode(), "text/plain; charset=utf-8")
        return
    try:
        content_type = IMAGE_TYPES.get(fmt or "", "application/octet-stream")
        if download is None and content_type == "application/octet-stream":
            download = "juhe-edit"  # not an image a browser shows: never rendered inline
        headers = [
            (b"content-type", content_type.encode()),
            (b"content-length", str(size).encode()),
            (b"cache-control", f"private, max-age={IMAGE_MAX_AGE_S}".encode()),
            (b"content-security-policy", FILE_CSP.encode()),
            *COMMON_HEADERS,
        ]
        if download is not None:
            name = download + RESULT_EXTENSIONS.get(fmt or "", OTHER_EXTENSION)
            headers.append((b"content-disposition", f'attachment; filename="{name}"'.encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        if scope["method"] == "HEAD":
            await send({"type": "http.response.body", "body": b""})
            return
        while True:
            chunk = await anyio.to_thread.run_sync(handle.read, CHUNK_BYTES)
            more = len(chunk) == CHUNK_BYTES
            await send({"type": "http.response.body", "body": chunk, "more_body": more})
            if not more:
                return
    finally:
        handle.close()
