"""Saved results that outlive a page: random ids, share links, and an output folder that stays bounded.

Everything lives in the output folder: the results and sidecars that `juhe` saves, and beside them
`.juhe-store/`, with one small JSON record per result (each replaced atomically), 图1 as it was
given (a hard link where possible) until the downscaled "before" copy is first asked for, that copy
and a thumbnail per result, the share links that expired with their result, and the browser secret.
The copies only a share page or the history shows are made lazily, the first time one is asked
for, so an edit pays for none of them (issue 19: a visitor may start 20 edits at once). Methods
may touch the disk and the first call reads the index: call them from a worker thread, never on
the server's event loop.
"""

from __future__ import annotations

import contextlib
import enum
import io
import json
import logging
import math
import os
import re
import secrets
import shutil
import stat
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from PIL import Image

from juhe import MAX_INPUT_PIXELS, OTHER_EXTENSION, RESULT_EXTENSIONS, upright_turn

logger = logging.getLogger("webapp.store")

ImageSource = bytes | str | os.PathLike

STORE_DIR = ".juhe-store"
DAY_S = 86_400
ID_BYTES = 16  # 128-bit result ids: 22 URL-safe characters
SHARE_BYTES = 24  # 192-bit share tokens: 32 URL-safe characters, never mistaken for an id
ID_FORM = re.compile(r"[A-Za-z0-9_-]{22}")
SHARE_FORM = re.compile(r"[A-Za-z0-9_-]{32}")
BEFORE_SIDE = 768  # long side of the "before" copy of 图1
BEFORE_QUALITY = 85
THUMB_SIDE = 600  # long side of the link-preview thumbnail
THUMB_QUALITY = 80
MAX_SOURCE_BYTES = 64 * 1024 * 1024  # a before/thumbnail source larger than this is not read
MAX_RECORD_BYTES = 256 * 1024  # a record file larger than this is foreign: skipped
MAX_SIDECAR_BYTES = 1024 * 1024  # a sidecar larger than this is not parsed when adopting
PROMPT_KEPT = 2000  # characters of the instruction kept in a record
TEXT_KEPT = 128  # characters of size, model, time and order id kept in a record
MAX_COPIES = 64  # shown copies remembered per result; the oldest is deleted beyond
MAX_REVOKED = 32  # revoked links remembered per result (older ones then answer "unknown")
MAX_CHAIN = 20  # steps of an edit chain a share page shows (the newest ones)
MAX_EXPIRED = 10_000  # links remembered as expired after their result was deleted
MAX_BOARD = 24  # results on one board (each shown item loads two images: within the page's rate limit)
MAX_BOARDS = 10_000  # boards kept in one store; beyond, the oldest is forgotten (its link: "unknown")
MAX_BOARD_BYTES = 16 * 1024  # a board file larger than this is foreign: skipped
EXPIRED_KEPT_S = 30 * DAY_S  # how long an expired link says "expired" rather than "unknown"
STALE_TEMP_S = 3600  # a temporary file this old was left by a crash: deleted at load
SECRET_BYTES = 32
SUBFOLDERS = ("records", "before", "thumbs", "boards", "sources")
SOURCE_SUFFIX = ".src"  # 图1 kept for its "before" copy, whatever its format
SECRET_FORM = re.compile(r"[A-Za-z0-9_-]{32,256}")
# What `juhe` saves result images as: only such files are adopted
RESULT_SUFFIXES = (*RESULT_EXTENSIONS.values(), OTHER_EXTENSION)


class Unavailable(enum.Enum):
    """Why a share link shows no result."""

    UNKNOWN = "unknown"  # never issued, malformed, or its result was deleted by its owner
    REVOKED = "revoked"
    EXPIRED = "expired"  # its result outlived JUHE_KEEP_DAYS, or was deleted to free space


@dataclass(frozen=True)
class Record:
    """One saved result as the app and the share page see it (a snapshot)."""

    id: str
    created: float  # seconds since the epoch, when the store registered it
    images: tuple[Path, ...]
    sidecar: Path | None
    # downscaled copy of 图1, made on the first `ResultStore.before_copy` (call that before reading
    # it); None when 图1 was a link, or unreadable once the copy was tried
    before: Path | None
    thumbnail: Path | None
    prompt: str
    size: str  # as requested: "" or "auto" keeps the aspect ratio of 图1
    model: str
    completed_at: str  # ISO 8601, from the provider's answer
    order_id: str
    width: int | None  # of the first image
    height: int | None
    share: str | None  # the live share token, if any
    expires: float | None  # when the result and its links expire; None without an age limit
    bytes: int  # every file of this result in the output folder
    parent: str | None = None  # the result this one was made from by "Continue editing"
    share_steps: bool = False  # its share page shows the steps that led to it too
    withdrawn: bool = False  # a share link of it was revoked and none is live: left out of chains
    group: str | None = None  # the set of variants made by one run (issue 19), shared by each of them


@dataclass(frozen=True)
class Board:
    """A shared set of results as its page sees it: the items still there, in the owner's order."""

    token: str
    items: tuple[Record, ...]
    created: float


@dataclass
class _BoardEntry:
    """The stored form of a board: a token and result ids only (guarded by the store's lock)."""

    token: str
    ids: list[str]
    created: float
    revoked: float | None = None  # when its owner revoked it; its ids are then forgotten

    def to_json(self) -> bytes:
        return json.dumps({"v": 1, **vars(self)}).encode()

    @classmethod
    def from_json(cls, data: object, token: str) -> _BoardEntry:
        """Check a board file read from disk; raise `ValueError` on anything foreign."""
        if not isinstance(data, dict) or data.get("v") != 1 or data.get("token") != token:
            raise ValueError("not a version-1 board of this name")
        ids, created, revoked = data.get("ids"), data.get("created"), data.get("revoked")
        if not (
            isinstance(ids, list)
            and len(ids) <= MAX_BOARD
            and all(_result_id(i) for i in ids)
            and isinstance(created, (int, float))
            and math.isfinite(created)
            and (revoked is None or isinstance(revoked, (int, float)) and math.isfinite(revoked))
        ):
            raise ValueError("a field has the wrong form")
        return cls(token=token, ids=list(dict.fromkeys(ids)), created=float(created), revoked=revoked)


def _plain(name: object) -> bool:
    """A file name with no folder part, not hidden: the only names a record may hold."""
    return (
        isinstance(name, str)
        and 0 < len(name.encode("utf-8", "surrogatepass")) <= 255
        and not name.startswith(".")
        and not any(c in name for c in "/\\\0")
    )


def _clip(value: object, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _read_json(path: Path, limit: int) -> object:
    if not stat.S_ISREG(path.lstat().st_mode):  # a link, a folder or a pipe is never read
        raise ValueError(f"{path.name} is not a regular file")
    with path.open("rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"{path.name} is larger than {limit} bytes")
    return json.loads(data)


def _write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace `path` with `data` in one step: a crash leaves the old file or the new, never a part."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _size(path: Path) -> int:
    try:
        return path.lstat().st_size
    except OSError:
        return 0


def _unlink(path: Path | str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _open_source(source: ImageSource) -> Image.Image:
    """Open an image from bytes or a path, header only, within the byte and pixel bounds."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) > MAX_SOURCE_BYTES:
            raise ValueError(f"more than {MAX_SOURCE_BYTES} bytes")
        handle: io.BytesIO | Path = io.BytesIO(source)
    else:
        if os.path.getsize(source) > MAX_SOURCE_BYTES:
            raise ValueError(f"more than {MAX_SOURCE_BYTES} bytes")
        handle = Path(source)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(handle)
    except Image.DecompressionBombError as exc:  # the app sets Pillow to refuse at the same bound
        raise ValueError(f"more than {MAX_INPUT_PIXELS} pixels") from exc
    if image.width * image.height > MAX_INPUT_PIXELS:  # nor more pixels than an edit may have
        raise ValueError(f"{image.width}x{image.height} is more than {MAX_INPUT_PIXELS} pixels")
    return image


def make_preview(source: ImageSource, max_side: int, quality: int) -> bytes:
    """A JPEG of the image, upright, long side at most `max_side`, flattened on white, no metadata."""
    with _open_source(source) as image:
        with contextlib.suppress(EOFError):
            image.seek(0)
        turn = upright_turn(image)  # a broken EXIF block only loses the turn
        if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):  # scale to 8 bits, not clip to white
            picture = image.point(lambda v: v / 256).convert("L")
        elif image.mode in ("1", "L", "RGB", "RGBA", "CMYK", "YCbCr"):
            picture = image  # scaled before any conversion: a 12-MP JPEG is never copied at full size
        else:
            picture = image.convert("RGBA")
        picture.thumbnail((max_side, max_side), Image.Resampling.BICUBIC)
        if picture.mode == "RGBA":
            flat = Image.new("RGB", picture.size, "white")
            flat.paste(picture, mask=picture.getchannel("A"))
            picture = flat
        elif picture.mode not in ("L", "RGB"):
            picture = picture.convert("RGB")
        if turn is not None:
            picture = picture.transpose(turn)
        out = io.BytesIO()
        picture.save(out, "JPEG", quality=quality)  # no exif=, icc_profile=: nothing is carried over
    return out.getvalue()


def _dimensions(path: Path) -> tuple[int | None, int | None]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                return image.width, image.height
    except Exception:
        return None, None


@dataclass
class _Entry:
    """The stored form of a result (mutable, guarded by the store's lock)."""

    id: str
    created: float
    files: list[str]
    sidecar: str | None = None
    prompt: str = ""
    size: str = ""
    model: str = ""
    completed_at: str = ""
    order_id: str = ""
    width: int | None = None
    height: int | None = None
    before: bool = False  # it has a "before": made, or still to be made from its kept 图1
    source: bool = False  # its 图1 is kept in sources/ until the "before" copy is made
    thumbnail: bool = False
    share: str | None = None
    revoked: list[str] = field(default_factory=list)
    copies: list[str] = field(default_factory=list)
    parent: str | None = None
    share_steps: bool = False
    group: str | None = None
    sizes: dict[str, int] = field(default_factory=dict)  # path -> bytes; not stored

    def to_json(self) -> bytes:
        data = {k: v for k, v in vars(self).items() if k != "sizes"}
        # ASCII escapes: a lone surrogate in a prompt must not make the record unreadable
        return json.dumps({"v": 1, **data}).encode()

    @classmethod
    def from_json(cls, data: object) -> _Entry:
        """Check every field of a record read from disk; raise `ValueError` on anything foreign."""
        if not isinstance(data, dict) or data.get("v") != 1:
            raise ValueError("not a version-1 record")
        created = data.get("created")
        files = data.get("files")
        share = data.get("share")
        revoked = data.get("revoked", [])
        copies = data.get("copies", [])
        checks = (
            isinstance(data.get("id"), str) and ID_FORM.fullmatch(data["id"]),
            isinstance(created, (int, float)) and math.isfinite(created),
            isinstance(files, list) and files and all(_plain(f) for f in files),
            data.get("sidecar") is None or _plain(data.get("sidecar")),
            share is None or _token(share),
            isinstance(revoked, list) and all(_token(t) for t in revoked),
            isinstance(copies, list) and all(isinstance(c, str) and os.path.isabs(c) for c in copies),
            all(data.get(k) is None or type(data.get(k)) is int for k in ("width", "height")),
            # absent in records written before edit chains: None, as for a result made from scratch
            data.get("parent") is None or _result_id(data.get("parent")),
            data.get("group") is None or _result_id(data.get("group")),  # absent before variants
        )
        if not all(checks):
            raise ValueError("a field has the wrong form")
        return cls(
            id=data["id"],
            created=float(created),
            files=list(files),
            sidecar=data.get("sidecar"),
            prompt=_clip(data.get("prompt"), PROMPT_KEPT),
            size=_clip(data.get("size"), TEXT_KEPT),
            model=_clip(data.get("model"), TEXT_KEPT),
            completed_at=_clip(data.get("completed_at"), TEXT_KEPT),
            order_id=_clip(data.get("order_id"), TEXT_KEPT),
            width=data.get("width"),
            height=data.get("height"),
            before=data.get("before") is True,
            source=data.get("source") is True,  # absent before lazy copies: made already
            thumbnail=data.get("thumbnail") is True,
            share=share,
            revoked=revoked[-MAX_REVOKED:],
            copies=copies[-MAX_COPIES:],
            parent=data.get("parent"),
            share_steps=data.get("share_steps") is True,
            group=data.get("group"),
        )


class ResultStore:
    """The results in one output folder: ids, share links, shown copies and the retention sweep.

    `keep_days` and `max_bytes` (the app passes JUHE_KEEP_DAYS and JUHE_OUTPUT_MAX_GB, whose defaults
    live in its settings) of 0, as left unset, mean no limit of that kind. `clock` gives seconds since the
    epoch (tests pass a fake one). Thread-safe; the lock is never held while result files are
    deleted or previews are made.
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        *,
        keep_days: float = 0,
        max_bytes: float = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not (isinstance(keep_days, (int, float)) and math.isfinite(keep_days) and keep_days >= 0):
            raise ValueError(f"JUHE_KEEP_DAYS must be >= 0 days (0 keeps forever), not {keep_days!r}")
        if not (isinstance(max_bytes, (int, float)) and math.isfinite(max_bytes) and max_bytes >= 0):
            raise ValueError(f"JUHE_OUTPUT_MAX_GB must be >= 0 (0 means no size limit), not {max_bytes!r}")
        self.folder = Path(folder).resolve()
        self.keep_s = keep_days * DAY_S
        self.max_bytes = int(max_bytes)
        self._clock = clock
        self._root = self.folder / STORE_DIR
        self._lock = threading.RLock()
        self._loaded = False
        self._entries: dict[str, _Entry] = {}
        self._owner: dict[str, str] = {}  # file name in the folder -> result id
        self._shares: dict[str, str] = {}  # live share token -> result id
        self._revoked: dict[str, str] = {}  # revoked token -> result id
        self._expired: dict[str, float] = {}  # token -> when its result was swept
        self._boards: dict[str, _BoardEntry] = {}  # board token -> its result ids
        self._aux: dict[str, int] = {}  # the store's own files besides records -> bytes
        self._total = 0
        self._oldest: float | None = None  # the earliest `created` of the entries; None: not known

    # --- paths ---------------------------------------------------------------------------------

    def _record_path(self, rid: str) -> Path:
        return self._root / "records" / f"{rid}.json"

    def _before_path(self, rid: str) -> Path:
        return self._root / "before" / f"{rid}.jpg"

    def _thumb_path(self, rid: str) -> Path:
        return self._root / "thumbs" / f"{rid}.jpg"

    def _source_path(self, rid: str) -> Path:
        return self._root / "sources" / f"{rid}{SOURCE_SUFFIX}"

    def _paths(self, entry: _Entry) -> list[Path]:
        """Every file of a result in the output folder, the record last."""
        paths = [self.folder / name for name in entry.files]
        if entry.sidecar:
            paths.append(self.folder / entry.sidecar)
        if entry.before:
            paths.append(self._before_path(entry.id))
        if entry.source:
            paths.append(self._source_path(entry.id))
        if entry.thumbnail:
            paths.append(self._thumb_path(entry.id))
        return [*paths, self._record_path(entry.id)]

    # --- bookkeeping (under the lock) ------------------------------------------------------------

    def _measure(self, entry: _Entry) -> None:
        sizes = {str(p): _size(p) for p in self._paths(entry)}
        self._total += sum(sizes.values()) - sum(entry.sizes.values())
        entry.sizes = sizes

    def _persist(self, entry: _Entry) -> None:
        """Write the record; on failure the result still works until a restart (then it is adopted)."""
        try:
            _write_atomic(self._record_path(entry.id), entry.to_json())
        except OSError as exc:
            logger.error("could not write the record of a result: %s", exc.strerror or exc)
        self._measure(entry)

    def _register(self, entry: _Entry) -> None:
        self._entries[entry.id] = entry
        if self._oldest is not None:
            self._oldest = min(self._oldest, entry.created)
        for name in [*entry.files, *([entry.sidecar] if entry.sidecar else [])]:
            self._owner[name] = entry.id
        if entry.share:
            self._shares[entry.share] = entry.id
        for token in entry.revoked:
            self._revoked[token] = entry.id

    def _forget(self, entry: _Entry) -> list[Path | str]:
        """Drop a result from the index; return its files and copies for deletion outside the lock."""
        del self._entries[entry.id]
        if self._oldest is not None and entry.created <= self._oldest:
            self._oldest = None
        for name in [*entry.files, *([entry.sidecar] if entry.sidecar else [])]:
            if self._owner.get(name) == entry.id:
                del self._owner[name]
        self._shares.pop(entry.share or "", None)
        for token in entry.revoked:
            self._revoked.pop(token, None)
        self._total -= sum(entry.sizes.values())
        emptied = self._drop_from_boards(entry.id)
        # a result made from this one now comes from this one's parent: a chain closes over the gap
        # and keeps its earlier steps, and no record names an id that is gone
        for other in self._entries.values():
            if other.parent == entry.id:
                other.parent = entry.parent
                self._persist(other)
        # the record first: a crash part-way then leaves files that the next start adopts and sweeps
        paths = self._paths(entry)
        return [paths[-1], *paths[:-1], *entry.copies, *emptied]

    def _expires(self, entry: _Entry) -> float | None:
        return entry.created + self.keep_s if self.keep_s else None

    def _snapshot(self, entry: _Entry) -> Record:
        return Record(
            id=entry.id,
            created=entry.created,
            images=tuple(self.folder / name for name in entry.files),
            sidecar=self.folder / entry.sidecar if entry.sidecar else None,
            before=self._before_path(entry.id) if entry.before else None,
            thumbnail=self._thumb_path(entry.id) if entry.thumbnail else None,
            prompt=entry.prompt,
            size=entry.size,
            model=entry.model,
            completed_at=entry.completed_at,
            order_id=entry.order_id,
            width=entry.width,
            height=entry.height,
            share=entry.share,
            expires=self._expires(entry),
            bytes=sum(entry.sizes.values()),
            parent=entry.parent,
            share_steps=entry.share_steps,
            withdrawn=bool(entry.revoked) and entry.share is None,
            group=entry.group,
        )

    def _set_aux(self, path: Path, key: str | None = None) -> None:
        key = key or path.name
        size = _size(path)
        self._total += size - self._aux.get(key, 0)
        self._aux[key] = size

    # --- loading ---------------------------------------------------------------------------------

    def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        try:
            for sub in SUBFOLDERS:
                (self._root / sub).mkdir(parents=True, exist_ok=True)
            self._remove_stale_temporaries()
            self._load_records()
            self._load_expired()
            self._adopt()
            self._load_boards()
        except OSError as exc:  # e.g. a read-only folder: the app runs, without history
            logger.error("could not read the result index in %s: %s", self.folder, exc)
        if (self._root / "browser-secret").exists():
            self._set_aux(self._root / "browser-secret")

    def _remove_stale_temporaries(self) -> None:
        cutoff = time.time() - STALE_TEMP_S  # file times are real, whatever clock the store runs on
        places = [(self.folder, ".partial-"), (self._root, ".tmp-")]  # juhe's and this module's
        for folder, prefix in places + [(self._root / sub, ".tmp-") for sub in SUBFOLDERS]:
            with os.scandir(folder) as it:
                for item in it:
                    if item.name.startswith(prefix) and item.stat(follow_symlinks=False).st_mtime < cutoff:
                        _unlink(item.path)

    def _load_records(self) -> None:
        entries = []
        with os.scandir(self._root / "records") as it:
            for item in it:
                name = item.name
                if not (name.endswith(".json") and ID_FORM.fullmatch(name[:-5])):
                    continue
                try:
                    entry = _Entry.from_json(_read_json(Path(item.path), MAX_RECORD_BYTES))
                    if entry.id != name[:-5]:
                        raise ValueError("the id differs from the file name")
                except (OSError, ValueError, UnicodeError) as exc:
                    logger.warning("skipping the result record %s: %s", name, exc)
                    continue
                entries.append(entry)
        for entry in sorted(entries, key=lambda e: e.created):
            entry.files = [f for f in entry.files if f not in self._owner and _is_file(self.folder / f)]
            if entry.sidecar and (entry.sidecar in self._owner or not _is_file(self.folder / entry.sidecar)):
                entry.sidecar = None
            if not entry.files:  # its images are gone (deleted by hand or a crash mid-delete)
                entry.sidecar = None  # not the store's to delete
                for path in self._paths(entry):
                    _unlink(path)
                continue
            entry.source = entry.source and _is_file(self._source_path(entry.id))
            made = _is_file(self._before_path(entry.id))
            if made and entry.source:  # a crash after making the copy, before the record said so
                _unlink(self._source_path(entry.id))
                entry.source = False
            entry.before = entry.before and (made or entry.source)
            entry.thumbnail = entry.thumbnail and _is_file(self._thumb_path(entry.id))
            self._register(entry)
            self._measure(entry)
        self._remove_orphan_previews()

    def _remove_orphan_previews(self) -> None:
        """Previews with no record: left by a crash between making them and writing the record."""
        cutoff = time.time() - STALE_TEMP_S  # not those of an `add` running now
        for sub in ("before", "thumbs", "sources"):
            with os.scandir(self._root / sub) as it:
                for item in it:
                    rid = item.name.partition(".")[0]
                    if rid not in self._entries and item.stat(follow_symlinks=False).st_mtime < cutoff:
                        _unlink(item.path)

    def _load_expired(self) -> None:
        path = self._root / "expired.json"
        try:
            data = _read_json(path, MAX_EXPIRED * 64 + 1024)
            tokens = data["tokens"] if isinstance(data, dict) else None
            if not isinstance(tokens, dict):
                raise ValueError("no token table")
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, UnicodeError) as exc:
            logger.warning("ignoring the expired-links file: %s", exc)
            return
        self._expired = {
            t: float(w)
            for t, w in tokens.items()
            if SHARE_FORM.fullmatch(t) and isinstance(w, (int, float)) and math.isfinite(w)
        }
        self._set_aux(path)

    def _adopt(self) -> None:
        """Take in results saved before the store existed (or whose record was lost)."""
        loose: dict[str, float] = {}
        with os.scandir(self.folder) as it:
            for item in it:
                if _plain(item.name) and item.name not in self._owner and item.is_file(follow_symlinks=False):
                    loose[item.name] = item.stat(follow_symlinks=False).st_mtime
        adopted = []
        for name in sorted(n for n in loose if n.endswith(".json")):
            try:
                meta = _read_json(self.folder / name, MAX_SIDECAR_BYTES)
            except (OSError, ValueError, UnicodeError):
                continue
            listed = meta.get("files") if isinstance(meta, dict) else None
            files = [f for f in listed or [] if _plain(f) and f in loose and f.endswith(RESULT_SUFFIXES)]
            files = list(dict.fromkeys(files))
            if not isinstance(listed, list) or not files:
                continue
            adopted.append(self._adopted(files, name, meta, loose[name]))
            for taken in [*files, name]:
                loose.pop(taken)
        for name in sorted(n for n in loose if n.endswith(RESULT_SUFFIXES)):
            sidecar = name.rsplit(".", 1)[0] + ".json"
            adopted.append(self._adopted([name], sidecar if sidecar in loose else None, {}, loose[name]))
        for entry in adopted:
            self._register(entry)
            self._persist(entry)
        if adopted:
            logger.info("adopted %d saved result(s) into the index of %s", len(adopted), self.folder)

    def _adopted(self, files: list[str], sidecar: str | None, meta: dict, mtime: float) -> _Entry:
        width, height = _dimensions(self.folder / files[0])
        return _Entry(
            id=secrets.token_urlsafe(ID_BYTES),
            created=mtime,
            files=files,
            sidecar=sidecar,
            prompt=_clip(meta.get("prompt"), PROMPT_KEPT),
            size=_clip(meta.get("size"), TEXT_KEPT),
            model=_clip(meta.get("model"), TEXT_KEPT),
            completed_at=_clip(meta.get("completed_at"), TEXT_KEPT),
            order_id=_clip(meta.get("order_id"), TEXT_KEPT),
            width=width,
            height=height,
        )

    # --- results -------------------------------------------------------------------------------

    def _inside(self, path: str | os.PathLike) -> str:
        resolved = Path(path).resolve()
        if resolved.parent != self.folder or not _plain(resolved.name) or not _is_file(resolved):
            raise ValueError(f"{Path(path).name!r} is not a saved result directly inside the output folder")
        return resolved.name

    def _default_sidecar(self, first: str) -> str | None:
        name = first.rsplit(".", 1)[0] + ".json"
        try:
            meta = _read_json(self.folder / name, MAX_SIDECAR_BYTES)
        except (OSError, ValueError, UnicodeError):
            return None
        return name if isinstance(meta, dict) and first in (meta.get("files") or []) else None

    def _keep_source(self, source: ImageSource, target: Path) -> bool:
        """Keep 图1 for its "before" copy, as it is: a hard link to the file (a copy on another file
        system), or the bytes written. No decoding: that waits for the first `before_copy`."""
        try:
            if isinstance(source, (bytes, bytearray, memoryview)):
                if len(source) > MAX_SOURCE_BYTES:
                    raise ValueError(f"more than {MAX_SOURCE_BYTES} bytes")
                target.write_bytes(source)  # no fsync: a torn copy only costs the "before"
                return True
            info = os.lstat(source)
            if info.st_size > MAX_SOURCE_BYTES:
                raise ValueError(f"more than {MAX_SOURCE_BYTES} bytes")
            if stat.S_ISREG(info.st_mode):
                with contextlib.suppress(OSError):  # another file system, or no hard links there
                    os.link(source, target)
                    return True
            shutil.copyfile(source, target)
            return True
        except (OSError, ValueError) as exc:  # the before is optional; the result itself is saved
            logger.warning("no before preview of a result: %s", exc)
            _unlink(target)
            return False

    def _write_preview(self, source: ImageSource, target: Path, side: int, quality: int) -> bool:
        try:
            _write_atomic(target, make_preview(source, side, quality))
            return True
        except Exception as exc:  # a preview is optional; the result itself is already saved
            logger.warning("no %s preview of a result: %s", target.parent.name, exc)
            return False

    def add(
        self,
        images: Sequence[str | os.PathLike],
        *,
        sidecar: str | os.PathLike | None = None,
        prompt: str = "",
        size: str = "",
        model: str = "",
        completed_at: str = "",
        order_id: str = "",
        before: ImageSource | None = None,
        thumbnail: bool = True,
        parent: str | None = None,
        group: str | None = None,
    ) -> Record:
        """Register a saved result; return its record with a fresh random id.

        `images` are the saved files (directly inside the output folder; `ValueError` otherwise);
        `sidecar` defaults to the `<first image stem>.json` that lists the first image. `before` is
        图1 as bytes or a path: it is kept as it is (hard-linked, no decoding), and the downscaled
        "before" copy is made from it the first time `before_copy` asks; when it cannot be kept the
        result is registered without it. With `thumbnail=False` the link-preview thumbnail waits for
        the first `share`. `parent` is the id of
        the result this one was made from ("Continue editing"); it is kept only when it names a
        result of this store (anything else is dropped: a record never points outside its store).
        `group` is the id shared by the variants of one run (kept only in the form of an id).
        """
        names = [self._inside(p) for p in images]
        if not names:
            raise ValueError("a result needs at least one image")
        side = self._inside(sidecar) if sidecar is not None else self._default_sidecar(names[0])
        rid = secrets.token_urlsafe(ID_BYTES)
        with self._lock:
            # loaded first: the load sweeps files of no known result, and this one's are not known yet
            self._ensure_loaded()
        if before is not None:
            self._root.joinpath("sources").mkdir(parents=True, exist_ok=True)
        kept = before is not None and self._keep_source(before, self._source_path(rid))
        first = self.folder / names[0]
        if thumbnail:
            self._root.joinpath("thumbs").mkdir(parents=True, exist_ok=True)
        has_thumb = thumbnail and self._write_preview(first, self._thumb_path(rid), THUMB_SIDE, THUMB_QUALITY)
        width, height = _dimensions(self.folder / names[0])
        entry = _Entry(
            id=rid,
            created=self._clock(),
            files=names,
            sidecar=side,
            prompt=_clip(prompt, PROMPT_KEPT),
            size=_clip(size, TEXT_KEPT),
            model=_clip(model, TEXT_KEPT),
            completed_at=_clip(completed_at, TEXT_KEPT),
            order_id=_clip(order_id, TEXT_KEPT),
            width=width,
            height=height,
            before=kept,
            source=kept,
            thumbnail=has_thumb,
            group=group if _result_id(group) else None,
        )
        doomed: list[Path | str] = []
        with self._lock:
            self._ensure_loaded()
            entry.parent = parent if _result_id(parent) and parent in self._entries else None
            # the files may already belong to an entry the load adopted a moment ago: this one wins
            for name in [*names, *([side] if side else [])]:
                old = self._entries.get(self._owner.get(name, ""))
                if old is None:
                    continue
                old.files = [f for f in old.files if f != name]
                old.sidecar = None if old.sidecar == name else old.sidecar
                self._total -= old.sizes.pop(str(self.folder / name), 0)
                del self._owner[name]
                if old.files:
                    self._persist(old)
                else:
                    doomed += self._forget(old)
            self._register(entry)
            self._persist(entry)
            record = self._snapshot(entry)
        for path in doomed:  # the old entry's own record and previews, never the result files
            if Path(path).parent != self.folder:
                _unlink(path)
        return record

    def get(self, result_id: str) -> Record | None:
        """The result with this id, or None (also for anything not shaped like an id)."""
        if not isinstance(result_id, str) or not ID_FORM.fullmatch(result_id):
            return None
        with self._lock:
            self._ensure_loaded()
            entry = self._entries.get(result_id)
            return self._snapshot(entry) if entry else None

    def before_copy(self, result_id: str) -> Path | None:
        """The result's "before" copy of 图1 (downscaled, upright, no metadata), made from its kept 图1
        the first time it is asked for (the kept 图1 is then deleted) and kept from then on; None
        when the result has none (图1 was a link) or its 图1 cannot be read. File and CPU work."""
        if not _result_id(result_id):
            return None
        with self._lock:
            self._ensure_loaded()
            entry = self._entries.get(result_id)
            if entry is None or not entry.before:
                return None
            if not entry.source:
                return self._before_path(result_id)
        target = self._before_path(result_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        # made outside the lock: decoding a large 图1 must not hold up every other store call
        made = self._write_preview(self._source_path(result_id), target, BEFORE_SIDE, BEFORE_QUALITY)
        with self._lock:
            entry = self._entries.get(result_id)
            if entry is None:  # deleted meanwhile: its files are gone, this one goes too
                _unlink(target)
                return None
            if not entry.source:  # another caller made it (or found it unreadable) meanwhile
                return target if entry.before else None
            entry.source, entry.before = False, made
            self._persist(entry)
        _unlink(self._source_path(result_id))
        return target if made else None

    def with_before(self, record: Record) -> Record:
        """`record` with its "before" copy made (`before_copy`), or with none when it cannot be."""
        if record.before is None:
            return record
        return record if self.before_copy(record.id) else replace(record, before=None)

    def delete(self, result_id: str) -> bool:
        """Delete a result: its images, sidecar, previews, shown copies and share links (which then
        answer "unknown"). False when there is no such result."""
        if not isinstance(result_id, str) or not ID_FORM.fullmatch(result_id):
            return False
        with self._lock:
            self._ensure_loaded()
            entry = self._entries.get(result_id)
            if entry is None:
                return False
            doomed = self._forget(entry)
        for path in doomed:
            _unlink(path)
        return True

    def register_copy(self, result_id: str, *paths: str | os.PathLike) -> bool:
        """Remember copies or hard links of a result shown by the app (in Gradio's cache), so that
        `delete` and `sweep` remove them too; several at once cost one write of the record. Beyond
        `MAX_COPIES` per result the oldest copy is deleted. False when there is no such result."""
        copies = [Path(path).absolute() for path in paths]
        if any(copy.resolve().is_relative_to(self.folder) for copy in copies):
            raise ValueError("a shown copy must lie outside the output folder")
        with self._lock:
            self._ensure_loaded()
            entry = self._entries.get(result_id) if isinstance(result_id, str) else None
            if entry is None:
                return False
            for copy in copies:
                if str(copy) not in entry.copies:
                    entry.copies.append(str(copy))
            dropped, entry.copies = entry.copies[:-MAX_COPIES], entry.copies[-MAX_COPIES:]
            self._persist(entry)
        for old in dropped:
            _unlink(old)
        return True

    # --- share links ---------------------------------------------------------------------------

    def chain(self, result_id: str) -> list[Record]:
        """The steps that led to a result, oldest first and the result itself last: its parent, that
        one's parent, and so on, at most `MAX_CHAIN` steps (the newest). Deleted steps are not there
        (see `_forget`); empty when there is no such result."""
        if not _result_id(result_id):
            return []
        with self._lock:
            self._ensure_loaded()
            steps: list[_Entry] = []
            seen: set[str] = set()  # a loop (a hand-edited record) ends the walk
            entry = self._entries.get(result_id)
            while entry is not None and entry.id not in seen and len(steps) < MAX_CHAIN:
                steps.append(entry)
                seen.add(entry.id)
                entry = self._entries.get(entry.parent or "")
            return [self._snapshot(step) for step in reversed(steps)]

    def share(self, result_id: str, steps: bool | None = None) -> str | None:
        """The result's share token, made on first call (the same token until it is revoked); None
        when there is no such result. Makes the thumbnail if the result has none yet. `steps` says
        whether its page shows the chain of edits that led to it (None leaves that as it was)."""
        record = self.get(result_id)
        if record is None:
            return None
        made = record.thumbnail is None and self._write_preview(
            record.images[0], self._thumb_path(record.id), THUMB_SIDE, THUMB_QUALITY
        )
        with self._lock:
            entry = self._entries.get(result_id)
            if entry is None:  # deleted meanwhile
                _unlink(self._thumb_path(result_id))
                return None
            entry.thumbnail = entry.thumbnail or made
            if steps is not None:
                entry.share_steps = steps
            if entry.share is None:
                entry.share = secrets.token_urlsafe(SHARE_BYTES)
                self._shares[entry.share] = entry.id
            self._persist(entry)
            return entry.share

    def revoke(self, token: str) -> bool:
        """Revoke a live share link; it then answers "revoked". False when it is not live.

        Anyone holding a link holds its token: the app should revoke on behalf of the result's owner
        (who holds the result id), as `revoke(store.get(result_id).share)`.
        """
        if not isinstance(token, str) or not SHARE_FORM.fullmatch(token):
            return False
        with self._lock:
            self._ensure_loaded()
            entry = self._entries.get(self._shares.get(token, ""))
            if entry is None:
                return False
            del self._shares[token]
            entry.share = None
            entry.share_steps = False  # a new link shows the steps only when asked again
            entry.revoked.append(token)
            self._revoked[token] = entry.id
            for old in entry.revoked[:-MAX_REVOKED]:
                self._revoked.pop(old, None)
            entry.revoked = entry.revoked[-MAX_REVOKED:]
            self._persist(entry)
            return True

    def resolve(self, token: str, now: float | None = None) -> Record | Unavailable:
        """The result a share token shows, or why it shows none."""
        if not isinstance(token, str) or not SHARE_FORM.fullmatch(token):
            return Unavailable.UNKNOWN
        now = self._clock() if now is None else now
        with self._lock:
            self._ensure_loaded()
            entry = self._entries.get(self._shares.get(token, ""))
            if entry is not None:
                expires = self._expires(entry)
                expired = expires is not None and now >= expires
                return Unavailable.EXPIRED if expired else self._snapshot(entry)
            if token in self._revoked:
                return Unavailable.REVOKED
            if token in self._expired:
                return Unavailable.EXPIRED
            return Unavailable.UNKNOWN

    # --- boards: several results behind one link ---------------------------------------------------

    def _board_path(self, token: str) -> Path:
        return self._root / "boards" / f"{token}.json"

    def _save_board(self, board: _BoardEntry) -> None:
        path = self._board_path(board.token)
        try:
            _write_atomic(path, board.to_json())
        except OSError as exc:
            logger.error("could not write a board: %s", exc.strerror or exc)
        self._set_aux(path, f"boards/{board.token}")

    def _drop_board(self, token: str) -> Path:
        """Forget a board; return its file for deletion (outside the lock)."""
        del self._boards[token]
        self._total -= self._aux.pop(f"boards/{token}", 0)
        return self._board_path(token)

    def _drop_from_boards(self, result_id: str) -> list[Path]:
        """Take a deleted result off every board. A live board left with no item is gone: its link
        says "expired" from then on, as a single link whose result was swept. Returns the files of
        the boards that went, for deletion outside the lock."""
        doomed = []
        now = self._clock()
        for board in list(self._boards.values()):
            if result_id not in board.ids:
                continue
            board.ids.remove(result_id)
            if board.ids:
                self._save_board(board)
            else:
                doomed.append(self._drop_board(board.token))
                self._expired[board.token] = now
        if doomed:
            self._save_expired(now)
        return doomed

    def share_board(self, result_ids: Sequence[str]) -> str | None:
        """A new board of these results, in this order (repeats and ids of no result of this store
        dropped, at most `MAX_BOARD`); return its token (192 bits, as a share link's), or None when
        no id names a result. Makes the missing thumbnails (the link preview shows the first).

        The caller vouches that the ids are its visitor's own: the app takes them from the session's
        history, never from a request.
        """
        wanted = list(dict.fromkeys(i for i in result_ids if _result_id(i)))
        records = [r for r in (self.get(i) for i in wanted) if r is not None][:MAX_BOARD]
        made = {
            r.id
            for r in records
            if r.thumbnail is None
            and self._write_preview(r.images[0], self._thumb_path(r.id), THUMB_SIDE, THUMB_QUALITY)
        }
        doomed: list[Path] = []
        with self._lock:
            ids = []
            for record in records:
                entry = self._entries.get(record.id)
                if entry is None:  # deleted meanwhile
                    _unlink(self._thumb_path(record.id))
                    continue
                if record.id in made and not entry.thumbnail:
                    entry.thumbnail = True
                    self._persist(entry)
                ids.append(record.id)
            if not ids:
                return None
            board = _BoardEntry(token=secrets.token_urlsafe(SHARE_BYTES), ids=ids, created=self._clock())
            self._boards[board.token] = board
            self._save_board(board)
            while len(self._boards) > MAX_BOARDS:  # one visitor making boards without end: bounded
                oldest = min(self._boards.values(), key=lambda b: b.created)
                doomed.append(self._drop_board(oldest.token))
        for path in doomed:
            _unlink(path)
        return board.token

    def board(self, token: str, now: float | None = None) -> Board | Unavailable:
        """The board a token shows (its items still there and not expired, in order), or why it
        shows none: revoked, expired (its last item went), or unknown."""
        if not _token(token):
            return Unavailable.UNKNOWN
        now = self._clock() if now is None else now
        with self._lock:
            self._ensure_loaded()
            board = self._boards.get(token)
            if board is None:
                return Unavailable.EXPIRED if token in self._expired else Unavailable.UNKNOWN
            if board.revoked is not None:
                return Unavailable.REVOKED
            entries = [self._entries[i] for i in board.ids if i in self._entries]
            live = [e for e in entries if (self._expires(e) or math.inf) > now]
            if not live:  # every item outlived JUHE_KEEP_DAYS: the sweep has not run yet
                return Unavailable.EXPIRED
            return Board(token=token, items=tuple(self._snapshot(e) for e in live), created=board.created)

    def revoke_board(self, token: str) -> bool:
        """Revoke a live board: its link answers "revoked" and its list of results is forgotten.
        False when it is not live. As for `revoke`, the app calls it for the board's owner only
        (with a token it kept in the owner's session), never with a token from a request."""
        if not _token(token):
            return False
        with self._lock:
            self._ensure_loaded()
            board = self._boards.get(token)
            if board is None or board.revoked is not None:
                return False
            board.ids, board.revoked = [], self._clock()
            self._save_board(board)
            return True

    def _load_boards(self) -> None:
        """Read the boards; drop their ids of results that are gone, and the boards left empty or
        revoked more than `EXPIRED_KEPT_S` ago."""
        now = self._clock()
        emptied = False
        with os.scandir(self._root / "boards") as it:
            for item in it:
                token = item.name.removesuffix(".json")
                if not (item.name.endswith(".json") and _token(token)):
                    continue
                path = Path(item.path)
                try:
                    board = _BoardEntry.from_json(_read_json(path, MAX_BOARD_BYTES), token)
                except (OSError, ValueError, UnicodeError) as exc:
                    logger.warning("skipping the board file %s: %s", item.name, exc)
                    continue
                kept = [i for i in board.ids if i in self._entries]
                if board.revoked is not None and board.revoked < now - EXPIRED_KEPT_S:
                    _unlink(path)
                    continue
                if board.revoked is None and not kept:
                    self._expired[token] = now
                    emptied = True
                    _unlink(path)
                    continue
                self._boards[token] = board
                if kept != board.ids:
                    board.ids = kept
                    self._save_board(board)
                else:
                    self._set_aux(path, f"boards/{token}")
        if emptied:
            self._save_expired(now)

    # --- retention -----------------------------------------------------------------------------

    @property
    def total_bytes(self) -> int:
        """Bytes of every file the store counts: results, sidecars, previews, records, its own files."""
        with self._lock:
            self._ensure_loaded()
            return self._total

    def _oldest_created(self) -> float:
        """The earliest `created` of the entries (infinity when none), kept between sweeps: a sweep
        runs after every save, and scanning thousands of entries each time was 4 % of a burst."""
        if self._oldest is None:
            self._oldest = min((e.created for e in self._entries.values()), default=math.inf)
        return self._oldest

    def _victims(self, now: float) -> list[_Entry]:
        cutoff = now - self.keep_s if self.keep_s else None
        over = self.max_bytes and self._total > self.max_bytes
        if not over and (cutoff is None or self._oldest_created() > cutoff):
            return []
        entries = sorted(self._entries.values(), key=lambda e: e.created)
        victims = [e for e in entries if cutoff is not None and e.created <= cutoff]
        total = self._total - sum(sum(e.sizes.values()) for e in victims)
        if self.max_bytes and total > self.max_bytes:
            kept = [e for e in entries if cutoff is None or e.created > cutoff]
            # a result with a live share link (or on a live board) goes only once every unshared one
            # has gone
            boarded = {rid for board in self._boards.values() if board.revoked is None for rid in board.ids}
            shared = [e for e in kept if e.share or e.id in boarded]
            for entry in [e for e in kept if not (e.share or e.id in boarded)] + shared:
                if total <= self.max_bytes:
                    break
                victims.append(entry)
                total -= sum(entry.sizes.values())
        return victims

    def sweep(self, now: float | None = None) -> list[str]:
        """Delete results older than `keep_days`, then the oldest while over `max_bytes` (unshared
        ones first); return the ids deleted. Their live share links answer "expired" from then on.

        Blocking file work: run it in a thread (at start, and after each save). When nothing is due
        it reads no file: the store keeps running totals.
        """
        now = self._clock() if now is None else now
        with self._lock:
            self._ensure_loaded()
            victims = self._victims(now)
            if not victims:
                return []
            doomed: list[Path | str] = []
            for entry in victims:
                if entry.share:
                    self._expired[entry.share] = now
                doomed += self._forget(entry)
            if any(entry.share for entry in victims):
                self._save_expired(now)
        for path in doomed:
            _unlink(path)
        logger.info("retention sweep deleted %d result(s) in %s", len(victims), self.folder)
        return [entry.id for entry in victims]

    def _save_expired(self, now: float) -> None:
        keep = sorted(((w, t) for t, w in self._expired.items() if w > now - EXPIRED_KEPT_S), reverse=True)
        self._expired = {t: w for w, t in keep[:MAX_EXPIRED]}
        path = self._root / "expired.json"
        try:
            _write_atomic(path, json.dumps({"v": 1, "tokens": self._expired}).encode())
        except OSError as exc:
            logger.error("could not write the expired-links file: %s", exc.strerror or exc)
        self._set_aux(path)

    # --- the browser secret --------------------------------------------------------------------

    def browser_secret(self, configured: str | None) -> str:
        """JUHE_BROWSER_SECRET if set, else a secret made once and kept in the output folder (0600)."""
        if configured and configured.strip():
            return configured.strip()
        path = self._root / "browser-secret"
        with self._lock:
            try:
                if stat.S_IMODE(path.lstat().st_mode) != 0o600:
                    path.chmod(0o600)
                value = path.read_text("ascii").strip()
                if SECRET_FORM.fullmatch(value):
                    return value
                logger.warning("replacing an unreadable browser secret in %s", self._root)
            except FileNotFoundError:
                pass
            except (OSError, UnicodeError) as exc:
                logger.warning("replacing an unreadable browser secret: %s", exc)
            value = secrets.token_urlsafe(SECRET_BYTES)
            try:
                self._root.mkdir(parents=True, exist_ok=True)
                _write_atomic(path, value.encode(), mode=0o600)
            except OSError as exc:  # the app still runs; histories then last until a restart
                logger.error("could not keep the browser secret in %s: %s", self._root, exc)
            self._set_aux(path)
            return value


def _result_id(value: object) -> bool:
    return isinstance(value, str) and ID_FORM.fullmatch(value) is not None


def _token(value: object) -> bool:
    return isinstance(value, str) and SHARE_FORM.fullmatch(value) is not None


def _is_file(path: Path) -> bool:
    """A regular file, not a link to one: a result never points elsewhere."""
    try:
        return stat.S_ISREG(path.lstat().st_mode)
    except OSError:
        return False
