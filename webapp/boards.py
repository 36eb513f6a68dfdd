"""The read-only page of a board: several results behind one link, to present them (issue 19).

`GET /share/board/<token>` shows each result of the board (`ResultStore.share_board`) with its
before/after, instruction and size, one at a time: ← and → (or the links under each item) move
between them, and a button puts the page in full screen for presenting. Its files are served under
paths made of the token and the item's place alone: `/share/board/<token>/item/<k>/result`,
`/item/<k>/before.jpg`, `/thumb.jpg` (the link preview: the first item's) and `/download.zip` (every
image of the board as saved, made on request). The same rules as a single share page hold: no
password or session, the strict CSP (this module's style and script, by hash), no order id, file
name or time of a result, the same rate limit (`BoardPages` is `SharePages` with these paths added).
"""

from __future__ import annotations

import html
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import replace
from typing import BinaryIO

import anyio.to_thread
from starlette.datastructures import Headers
from starlette.types import Scope, Send

from webapp.share import (
    _LOCKED,
    CHUNK_BYTES,
    COMMON_HEADERS,
    DESCRIPTION_CHARS,
    PAGE_CSS,
    PAGE_JS,
    PREFIX,
    SharePages,
    _open_regular,
    _other_language,
    _page,
    _respond,
    _say,
    _send_file,
    _source_hash,
    _utc,
    public_base,
    respond_unavailable,
)
from webapp.store import Board, Record, ResultStore, Unavailable

BOARD_PREFIX = f"{PREFIX}/board"
BOARD_ROUTE = re.compile(
    r"/share/board/(?P<token>[A-Za-z0-9_-]{1,64})"
    r"(?:/(?P<part>thumb\.jpg|download\.zip|item/(?P<k>[1-9][0-9]?)/(?:result|before\.jpg)))?/?"
)
ZIP_NAME = "juhe-board.zip"
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # every entry's date: a file's own time would tell when it was made

BOARD_CSS = """
.bar{display:flex;flex-wrap:wrap;gap:8px;align-items:center;margin:0 0 16px}
.bar .button{margin:0}
.keys{color:var(--muted);font-size:.9em}
button.button{border:0;font:inherit;cursor:pointer}
.items{list-style:none;padding:0;margin:0}
.item{margin:0 0 32px}
.item h2{margin:0 0 8px}
.moves{display:flex;gap:16px;justify-content:center;align-items:center;margin:8px 0 0}
.moves a{color:var(--accent);font-weight:600}
.presenting .item:not(.on){display:none}
:fullscreen main{max-width:none;padding:12px 24px}
:fullscreen .compare img,:fullscreen .single{max-height:78vh}
"""
BOARD_JS = """
(() => {
  const items = [...document.querySelectorAll(".item")];
  if (!items.length) return;
  document.body.classList.add("presenting");
  let at = 0;
  const show = (k, mark) => {
    at = (k + items.length) % items.length;
    items.forEach((item, i) => item.classList.toggle("on", i === at));
    if (mark) history.replaceState(null, "", "#" + items[at].id);
  };
  const fromHash = () => {
    const i = items.findIndex((item) => "#" + item.id === location.hash);
    show(i < 0 ? 0 : i, false);
  };
  window.addEventListener("hashchange", fromHash);
  document.addEventListener("keydown", (event) => {
    // a focused slider keeps its own arrow keys (keyboard users compare with them)
    if (event.altKey || event.ctrlKey || event.metaKey || event.target.closest("input, textarea")) return;
    const step = { ArrowRight: 1, PageDown: 1, ArrowLeft: -1, PageUp: -1 }[event.key];
    if (step) {
      event.preventDefault();
      show(at + step, true);
    }
  });
  // a slider dragged with the mouse lets go of the focus, so the arrows move between items again
  for (const range of document.querySelectorAll(".compare input")) {
    range.addEventListener("pointerup", () => range.blur());
  }
  const full = document.getElementById("fullscreen");
  if (full && document.fullscreenEnabled) {
    full.hidden = false;
    full.addEventListener("click", () =>
      document.fullscreenElement ? document.exitFullscreen() : document.documentElement.requestFullscreen()
    );
  }
  fromHash();
})();
"""
BOARD_STYLE = PAGE_CSS + BOARD_CSS
BOARD_SCRIPT = PAGE_JS + BOARD_JS
BOARD_CSP = (
    f"default-src 'none'; img-src 'self'; style-src {_source_hash(BOARD_STYLE)}; "
    f"script-src {_source_hash(BOARD_SCRIPT)}; {_LOCKED}"
)


def board_path(token: str, root_path: str = "") -> str:
    """The path of a board's page (`root_path` as served)."""
    return f"{root_path.rstrip('/')}{BOARD_PREFIX}/{token}"


def _size_text(record: Record, lang: str | None) -> str:
    size = f"{record.width} × {record.height} px" if record.width and record.height else "—"
    if record.size and record.size != "auto":
        asked = record.size.replace("*", " × ")
        size += (
            _say(f"（请求 {asked}）", f" (requested {asked})", lang)
            if lang
            else f"（请求 {asked} · requested {asked}）"
        )
    return size


def _item_html(record: Record, k: int, total: int, here: str, lang: str | None) -> str:
    """One result of the board: its place, before/after (the share page's markup), instruction,
    size, and links to the items before and after it (the page's navigation without its script)."""
    e = html.escape

    def t(zh: str, en: str) -> str:
        return _say(zh, en, lang)

    lazy = ' loading="lazy"' if k > 1 else ""  # hidden items load when shown
    after = f'src="{here}/item/{k}/result"{lazy}'
    if record.width and record.height:
        after += f' width="{record.width}" height="{record.height}"'
    if record.before:
        picture = (
            '<figure class="compare">\n'
            f'<img class="after" {after} alt="{t(f"第 {k} 张编辑后", f"Result {k}, after")}">\n'
            f'<img class="before" src="{here}/item/{k}/before.jpg"{lazy} '
            f'alt="{t(f"第 {k} 张原图", f"Result {k}, before")}">\n'
            f'<span class="divider"></span><span class="tag l">{t("原图", "Before")}</span>'
            f'<span class="tag r">{t("编辑后", "After")}</span>\n'
            '<input type="range" min="0" max="100" value="50" '
            f'aria-label="{t(f"第 {k} 张前后对比", f"Result {k}, before and after")}">\n</figure>\n'
        )
    else:
        picture = f'<img class="single" {after} alt="{t(f"第 {k} 张编辑后", f"Result {k}, after")}">\n'
    back, on = (k - 2) % total + 1, k % total + 1
    return (
        f'<li class="item" id="item-{k}">\n<h2>{k} / {total}</h2>\n{picture}'
        f'<section class="card">\n<h2>{t("指令", "Instruction")}</h2>\n'
        f"<blockquote>{e(record.prompt.strip()) or '—'}</blockquote>\n"
        f"<dl>\n<dt>{t('尺寸', 'Size')}</dt><dd>{e(_size_text(record, lang))}</dd>\n</dl>\n</section>\n"
        f'<nav class="moves"><a href="#item-{back}" rel="prev">← {t("上一张", "Previous")}</a>'
        f'<span>{k} / {total}</span><a href="#item-{on}" rel="next">{t("下一张", "Next")} →</a></nav>\n'
        "</li>\n"
    )


def render_board_page(
    board: Board, base_url: str | None, root_path: str = "", lang: str | None = None
) -> str:
    """The HTML of a board's page, in `lang` ("zh", "en") or both when None. Every value from a
    record is escaped; the link preview (Open Graph) is the first item's; `base_url` (absolute, or
    None) makes its image URL."""
    e = html.escape

    def t(zh: str, en: str) -> str:
        return _say(zh, en, lang)

    here = e(board_path(board.token, root_path))
    total = len(board.items)
    first = board.items[0].prompt.strip()
    description = first[:DESCRIPTION_CHARS] + ("…" if len(first) > DESCRIPTION_CHARS else "")
    title = t(f"AI 图像编辑 · {total} 张结果", f"AI image edits · {total} results")
    meta = [("og:type", "website"), ("og:title", title)]
    meta.append(("og:description", description or t("由 AI 图像编辑生成", "Made with AI image editing")))
    if base_url and board.items[0].thumbnail:
        meta += [
            ("og:image", f"{base_url}{BOARD_PREFIX}/{board.token}/thumb.jpg"),
            ("og:image:type", "image/jpeg"),
        ]
    head = "".join(f'<meta property="{k}" content="{e(v)}">\n' for k, v in meta)
    head += '<meta name="twitter:card" content="summary_large_image">\n'
    expiry = min((r.expires for r in board.items if r.expires), default=None)  # the first to go
    items = "".join(_item_html(record, k, total, here, lang) for k, record in enumerate(board.items, 1))
    body = (
        f"<h1>{e(title)}</h1>\n"
        '<div class="bar">\n'
        f'<button type="button" class="button" id="fullscreen" hidden>{t("全屏", "Full screen")}</button>\n'
        f'<a class="button" href="{here}/download.zip" download>'
        f"{t('全部下载（zip）', 'Download all (zip)')}</a>\n"
        f'<span class="keys">{t("用 ← → 键切换", "← → to move between results")}</span>\n'
        "</div>\n"
        f'<ol class="items">\n{items}</ol>\n<footer>'
        + t(
            "只读分享页" + (f"，最早的一张有效期至 {e(_utc(expiry))}" if expiry else ""),
            "Read-only shared results" + (f"; the first of them goes on {e(_utc(expiry))}" if expiry else ""),
        )
        + _other_language(here, lang)
        + "</footer>\n"
    )
    return _page(title, head, body, script=True, lang=lang, css=BOARD_STYLE, js=BOARD_SCRIPT)


def zip_names(items: Sequence[Record]) -> list[tuple[str, os.PathLike]]:
    """(name in the zip, saved file) of every image of the board: `01.png`, or `01-2.png` for a
    result's second image; numbers of the board's order, never the saved file's name."""
    names = []
    for k, record in enumerate(items, start=1):
        for n, path in enumerate(record.images, start=1):
            suffix = path.suffix.lower() if re.fullmatch(r"\.[a-z0-9]{1,5}", path.suffix.lower()) else ""
            names.append((f"{k:02d}{f'-{n}' if n > 1 else ''}{suffix}", path))
    return names


def write_board_zip(items: Sequence[Record], target: BinaryIO) -> None:
    """Every image of the board into one zip at `target`, as saved (byte for byte, so each keeps its
    AIGC label) and stored uncompressed: images are compressed already. No sidecar, record or
    manifest: nothing but the images the page shows. Raises OSError if a file is gone."""
    with zipfile.ZipFile(target, "w") as archive:
        for name, path in zip_names(items):
            handle, _size, _fmt = _open_regular(path)  # never through a link
            with handle, archive.open(zipfile.ZipInfo(name, ZIP_TIME), "w") as entry:
                shutil.copyfileobj(handle, entry, CHUNK_BYTES)


class BoardPages(SharePages):
    """`SharePages` that also serves boards under `/share/board/...` (same switch, same limits)."""

    async def _route(
        self, scope: Scope, send: Send, path: str, root_path: str, headers: Headers, lang: str | None
    ) -> None:
        match = BOARD_ROUTE.fullmatch(path)
        if not path.startswith(BOARD_PREFIX + "/"):
            await super()._route(scope, send, path, root_path, headers, lang)
            return
        found = await anyio.to_thread.run_sync(self.store.board, match["token"] if match else "")
        part = match["part"] if match else None
        if isinstance(found, Unavailable):
            await respond_unavailable(send, scope, found, part, lang)
            return
        if part is None:
            peer = (scope.get("client") or (None,))[0]
            base = public_base(
                self.public_url, scope.get("scheme", "http"), headers, peer, self.trusted_proxies, root_path
            )
            found = await anyio.to_thread.run_sync(with_befores, self.store, found)
            body = render_board_page(found, base, root_path, lang).encode()
            extra = [(b"x-frame-options", b"DENY"), (b"cross-origin-opener-policy", b"same-origin")]
            await _respond(send, scope, 200, body, "text/html; charset=utf-8", BOARD_CSP, extra)
        elif part == "download.zip":
            await _send_zip(scope, send, found.items)
        elif part == "thumb.jpg":
            await _send_file(scope, send, found.items[0].thumbnail, None)
        else:
            k = int(match["k"])
            item = found.items[k - 1] if k <= len(found.items) else None
            if item is not None and part.endswith("before.jpg"):
                file = await anyio.to_thread.run_sync(self.store.before_copy, item.id)
            else:
                file = None if item is None else item.images[0]
            await _send_file(scope, send, file, None)


def with_befores(store: ResultStore, board: Board) -> Board:
    """The board with each item's "before" copy made if it has one (the first time a page asks),
    so that the page offers a before/after only where the image is there. File and CPU work."""
    return replace(board, items=tuple(store.with_before(item) for item in board.items))


async def _send_zip(scope: Scope, send: Send, items: Sequence[Record]) -> None:
    """Make the board's zip in a temporary file (in a worker thread: images may be large) and
    stream it; 404 when an image went meanwhile."""
    with tempfile.TemporaryFile() as spool:
        try:
            await anyio.to_thread.run_sync(write_board_zip, items, spool)
        except OSError:
            await _respond(send, scope, 404, "文件不存在 / Not Found".encode(), "text/plain; charset=utf-8")
            return
        size = spool.tell()
        spool.seek(0)
        headers = [
            (b"content-type", b"application/zip"),
            (b"content-length", str(size).encode()),
            (b"cache-control", b"no-store"),
            (b"content-disposition", f'attachment; filename="{ZIP_NAME}"'.encode()),
            (b"content-security-policy", b"default-src 'none'; sandbox"),
            *COMMON_HEADERS,
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        if scope["method"] == "HEAD":
            await send({"type": "http.response.body", "body": b""})
            return
        while True:
            chunk = await anyio.to_thread.run_sync(spool.read, CHUNK_BYTES)
            more = len(chunk) == CHUNK_BYTES
            await send({"type": "http.response.body", "body": chunk, "more_body": more})
            if not more:
                return
