"""The front door: every value a visitor sends to any event passes one gate before Gradio reads it.

Gradio runs every event through `Blocks.process_api`: page events by `fn_index` (private ones too:
`api_visibility` only hides an event from the docs), `/run` and `/call`, validators, js-only events
and MCP's direct calls. There it preprocesses the raw values before a handler runs: it reads files
by path, decodes images and `data:` URIs, fetches links. `webapp.patches` puts `Gate.check` in
front of it, so a new event or component is guarded by design. For each input the gate admits:

- a file value (any dict with a "path" or "url") only when its path names a cache file this server
  issued to this session (a handler's output, an example's copy) or this visitor uploaded; it is
  passed on rebuilt from its path and name alone, so a `url` (a `data:` URI, a link) is never
  decoded or fetched;
- a multiple-file input's value as a list of at most `MAX_FILES` such files;
- an image editor's value with at most `MAX_LAYERS` layers and a short blob id, its files as above;
- text up to `MAX_TEXT` characters, finite numbers within ±`MAX_NUMBER`, booleans, an example's
  index within its examples; the browser's list of result ids keeps only its short strings;
- for the public `edit` endpoint (a `gr.api`, whose values Gradio does not touch), any JSON whose
  files follow the rule above; its strings (links, `data:` URIs) reach the handler untouched.

Anything else is refused with one bilingual error before Gradio sees it. `Issued` is the registry
the gate consults: fed by every event's outputs (`Gate.record`), by uploads (`webapp.middleware`)
and by the files the app keeps in its cache (examples, initial values).
"""

from __future__ import annotations

import collections
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from juhe import is_http_url
from webapp.errors import user_error
from webapp.texts import TITLES, error_text

MAX_TEXT = 64 * 1024  # characters of one text value (an instruction is at most a few thousand)
MAX_NUMBER = 1e9
MAX_LAYERS = 8  # layers of the region editor the page sends (it draws on one)
MAX_BLOB_ID = 64
MAX_IDS = 200  # result ids a browser may send back (it keeps 60)
MAX_PICKS = 200  # ticked choices of a checkbox group (the board's picker lists at most 60)
# files of one multiple-file input: twice the batch's 20 photos, so that a visitor who drops more
# hears "at most 20" from the panel itself rather than this gate's "reload the page"
MAX_FILES = 40
MAX_DEPTH = 12  # nesting of an API value
ISSUED_PER_KEY = 512  # files remembered per session and per visitor; the oldest is forgotten
KEYS_KEPT = 20_000  # sessions and visitors remembered; the least recently used is forgotten
ISSUED_TTL_S = 24 * 3600.0  # a key unused this long is forgotten
FILE_FIELDS = ("orig_name", "mime_type")

logger = logging.getLogger("webapp.gate")


class RefusedError(Exception):
    """A value the page never sends; `why` says what was wrong."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


def normal(path: str) -> str:
    """One spelling of a path, so `..` and doubled slashes name the same file."""
    return os.path.realpath(path)


class _Keyed:
    """Paths per key, both bounded, least recently used forgotten first."""

    def __init__(self, per_key: int, keys: int, ttl_s: float, clock: Callable[[], float]) -> None:
        self.per_key, self.keys, self.ttl_s, self.clock = per_key, keys, ttl_s, clock
        self._paths: collections.OrderedDict[str, collections.OrderedDict[str, None]] = (
            collections.OrderedDict()
        )
        self._used: dict[str, float] = {}

    def add(self, key: str, paths: Iterable[str]) -> None:
        held = self._paths.setdefault(key, collections.OrderedDict())
        self._paths.move_to_end(key)
        self._used[key] = self.clock()
        for path in paths:
            held[path] = None
            held.move_to_end(path)
        while len(held) > self.per_key:
            held.popitem(last=False)
        while len(self._paths) > self.keys:
            old, _ = self._paths.popitem(last=False)
            self._used.pop(old, None)

    def has(self, key: str, path: str) -> bool:
        held = self._paths.get(key)
        if held is None:
            return False
        if self.clock() - self._used.get(key, 0.0) > self.ttl_s:
            del self._paths[key]
            self._used.pop(key, None)
            return False
        return path in held

    def known(self, key: str) -> bool:
        return key in self._paths

    def drop(self, paths: set[str]) -> None:
        for held in self._paths.values():
            for path in paths & held.keys():
                del held[path]

    def all(self) -> Iterator[str]:
        for held in list(self._paths.values()):
            yield from list(held)


class Issued:
    """Cache files this server issued: per session (its events' outputs), per visitor (their uploads)
    and to everyone (`public()`: examples and initial values). Thread-safe."""

    def __init__(
        self,
        public: Callable[[], Iterable[str]] = tuple,
        clock: Callable[[], float] = time.monotonic,
        per_key: int = ISSUED_PER_KEY,
        keys: int = KEYS_KEPT,
        ttl_s: float = ISSUED_TTL_S,
    ) -> None:
        self.public = public
        self._sessions = _Keyed(per_key, keys, ttl_s, clock)
        self._visitors = _Keyed(per_key, keys, ttl_s, clock)
        self._lock = threading.Lock()

    def issue(self, session: str | None, paths: Iterable[str]) -> None:
        """Files an event of `session` sent to its page (no session: nobody can send them back)."""
        if session:
            with self._lock:
                self._sessions.add(session, [normal(p) for p in paths])

    def upload(self, visitor: str, paths: Iterable[str]) -> None:
        """Files `visitor` uploaded."""
        with self._lock:
            self._visitors.add(visitor, [normal(p) for p in paths])

    def admits(self, path: str, session: str | None, visitor: str | None) -> bool:
        """True when `path` was issued to this session, uploaded by this visitor, or is public; an
        upload a session sends is then issued to it as well."""
        path = normal(path)
        with self._lock:
            if session and self._sessions.has(session, path):
                return True
            if visitor and self._visitors.has(visitor, path):
                if session:
                    self._sessions.add(session, [path])
                return True
        return path in {normal(p) for p in self.public()}

    def seen(self, session: str | None) -> bool:
        """True when an event of `session` has run here (a live session)."""
        with self._lock:
            return bool(session) and self._sessions.known(session)

    def touch(self, session: str | None) -> None:
        """Mark `session` live (an event of it passed the gate)."""
        if session:
            with self._lock:
                self._sessions.add(session, ())

    def forget(self, paths: Iterable[str]) -> None:
        """Files deleted: no session may send them again."""
        gone = {normal(p) for p in paths}
        with self._lock:
            self._sessions.drop(gone)
            self._visitors.drop(gone)

    def files(self) -> set[str]:
        """Every file issued or uploaded that is still remembered."""
        with self._lock:
            return set(self._sessions.all()) | set(self._visitors.all())


# --- the rules, by component ---------------------------------------------------------------------


def _text(value: Any, limit: int = MAX_TEXT) -> Any:
    if value is None:
        return None
    if not isinstance(value, str):
        raise RefusedError("text expected")
    if len(value) > limit:
        raise RefusedError(f"text over {limit} characters")
    return value


def _number(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RefusedError("number expected")
    if not _bounded(value):
        raise RefusedError("number out of range")
    return value


def _bounded(value: int | float) -> bool:
    """Finite and within ±MAX_NUMBER (an int of any size compares without becoming a float)."""
    return (
        -MAX_NUMBER <= value <= MAX_NUMBER
        if isinstance(value, int)
        else math.isfinite(value) and abs(value) <= MAX_NUMBER
    )


def _choice(block: Any, value: Any) -> Any:
    """One of the component's choices (Gradio would refuse another with a logged traceback)."""
    value = _text(value, 256)
    if value is None or getattr(block, "allow_custom_value", False):
        return value
    choices = [choice[1] if isinstance(choice, (tuple, list)) else choice for choice in block.choices or ()]
    if value not in choices:
        raise RefusedError("not one of the choices")
    return value


def _picks(value: Any) -> list:
    """The ticked choices of a checkbox group: a short list of short texts or bounded integers.
    Whether each is one of the choices Gradio checks itself, against the session's own (a group's
    choices are set per visitor, so the page's initial ones say nothing)."""
    if not isinstance(value, list) or len(value) > MAX_PICKS:
        raise RefusedError(f"a list of at most {MAX_PICKS} choices expected")
    for item in value:
        if isinstance(item, bool) or not isinstance(item, (str, int, float)):
            raise RefusedError("a choice expected")
        if isinstance(item, str):
            _text(item, 256)
        elif not _bounded(item):
            raise RefusedError("number out of range")
    return value


def _boolean(value: Any) -> Any:
    if value is not None and not isinstance(value, bool):
        raise RefusedError("true or false expected")
    return value


def _ids(value: Any) -> list[str]:
    """The browser's result ids: what it keeps may be stale or edited, so only short strings stay."""
    if not isinstance(value, list):
        return []
    return [item for item in value[:MAX_IDS] if isinstance(item, str) and len(item) <= 64]


class Gate:
    """Checks every event's raw inputs (`check`) and records every file its outputs hand out
    (`record`). `visitor(request)` names the caller as every other limit does."""

    def __init__(self, issued: Issued, visitor: Callable[[Any], str | None]) -> None:
        self.issued = issued
        self.visitor = visitor

    def check(self, block_fn: Any, inputs: list[Any], session: str | None, request: Any) -> list[Any]:
        """The inputs to hand to Gradio, or a bilingual `gr.Error` naming the first bad one."""
        if not isinstance(inputs, list):
            raise user_error(error_text("gate_value", n=1, why="a list expected"), title=TITLES["error"])
        blocks = list(block_fn.inputs)
        if blocks and len(inputs) < len(blocks) and all(type(b).__name__ == "Api" for b in blocks):
            # a public API function's later parameters are optional: a caller written before one was
            # added (variants after mask) sends fewer values, and the handler's defaults apply
            inputs = [*inputs, *[None] * (len(blocks) - len(inputs))]
        if len(inputs) != len(blocks) or block_fn.component_prop_inputs or block_fn.batch:
            raise user_error(
                error_text("gate_value", n=1, why="wrong number of values"), title=TITLES["error"]
            )
        if block_fn.fn is None:  # a js-only event runs in the browser; the page never sends it here
            raise user_error(
                error_text("gate_value", n=1, why="not an event of the server"), title=TITLES["error"]
            )
        visitor = self.visitor(request)
        checked = []
        for number, (block, value) in enumerate(zip(blocks, inputs, strict=True), start=1):
            try:
                checked.append(self._value(block, value, session, visitor))
            except RefusedError as refused:
                logger.info("gate: refused value %d of %s: %s", number, block_fn.name, refused.why)
                raise user_error(
                    error_text("gate_value", n=number, why=refused.why), title=TITLES["error"]
                ) from None
        self.issued.touch(session)
        return checked

    def record(self, outputs: Any, session: str | None) -> None:
        """Every file an event's outputs name is issued to its session."""
        self.issued.issue(session, _paths(outputs))

    # --- one value ---------------------------------------------------------------------------

    def _value(self, block: Any, value: Any, session: str | None, visitor: str | None) -> Any:
        kind = type(block).__name__
        if getattr(block, "stateful", False):
            return value  # Gradio takes it from the session, never from the request
        if kind == "Image":
            return None if value is None else self._file(value, session, visitor)
        if kind == "ImageEditor":
            return self._editor(value, session, visitor)
        if kind == "File":
            return self._files(block, value, session, visitor)
        if kind in ("Textbox", "Code"):
            return _text(value)
        if kind in ("Dropdown", "Radio"):
            return _choice(block, value)
        if kind in ("Number", "Slider"):
            return _number(value)
        if kind == "Checkbox":
            return _boolean(value)
        if kind == "CheckboxGroup":
            return _picks(value)
        if kind == "BrowserState":
            return _ids(value)
        if kind == "Dataset":
            if isinstance(value, bool) or not isinstance(value, int):
                raise RefusedError("an example's number expected")
            if not 0 <= value < len(block.samples or ()):
                raise RefusedError("no such example")
            return value
        if kind == "Api":
            return self._api(value, session, visitor, 0)
        if value is None:
            return None
        raise RefusedError(f"{kind} takes no value")  # a component the gate has no rule for: closed

    def _file(self, value: Any, session: str | None, visitor: str | None) -> dict:
        if not isinstance(value, dict):
            raise RefusedError("a file expected")
        path = value.get("path")
        if not isinstance(path, str) or not path:
            raise RefusedError("a file of this page expected, not a link or data")
        if is_http_url(path):
            raise RefusedError("a link as a file: send links as plain strings, the provider downloads them")
        if not self.issued.admits(path, session, visitor):
            raise RefusedError("not a file this page was given")
        clean = {"path": path, "meta": {"_type": "gradio.FileData"}}
        for name in FILE_FIELDS:
            field = value.get(name)
            if isinstance(field, str) and len(field) <= 255:
                clean[name] = field
        return clean

    def _files(self, block: Any, value: Any, session: str | None, visitor: str | None) -> Any:
        """A file input: one file as an image's, or for several (`file_count` "multiple" or
        "directory") a list of at most `MAX_FILES`, each admitted as one file."""
        if value is None:
            return None
        if getattr(block, "file_count", "single") == "single":
            return self._file(value, session, visitor)
        if not isinstance(value, list) or len(value) > MAX_FILES:
            raise RefusedError(f"a list of at most {MAX_FILES} files expected")
        return [self._file(item, session, visitor) for item in value]

    def _editor(self, value: Any, session: str | None, visitor: str | None) -> Any:
        if value is None:
            return None
        if not isinstance(value, dict) or not set(value) <= {"background", "layers", "composite", "id"}:
            raise RefusedError("a painting expected")
        blob_id = value.get("id")
        if blob_id is not None and (not isinstance(blob_id, str) or len(blob_id) > MAX_BLOB_ID):
            raise RefusedError("a painting's id expected")
        layers = value.get("layers") or []
        if not isinstance(layers, list) or len(layers) > MAX_LAYERS:
            raise RefusedError(f"at most {MAX_LAYERS} layers")
        clean: dict[str, Any] = {"id": blob_id, "layers": []}
        for name in ("background", "composite"):
            part = value.get(name)
            clean[name] = None if part is None else self._file(part, session, visitor)
        clean["layers"] = [None if layer is None else self._file(layer, session, visitor) for layer in layers]
        return clean

    def _api(self, value: Any, session: str | None, visitor: str | None, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise RefusedError("value nested too deep")
        if isinstance(value, dict):
            if "path" in value or "url" in value:
                return self._file(value, session, visitor)
            return {key: self._api(item, session, visitor, depth + 1) for key, item in value.items()}
        if isinstance(value, list):
            return [self._api(item, session, visitor, depth + 1) for item in value]
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not _bounded(value):
            raise RefusedError("number out of range")
        return value


def _paths(value: Any, depth: int = 0) -> Iterator[str]:
    """The paths of the files in an event's output value."""
    if depth > 20:
        return
    if isinstance(value, dict):
        path = value.get("path")
        if isinstance(path, str) and path:
            yield path
        for item in value.values():
            if isinstance(item, (dict, list, tuple)):
                yield from _paths(item, depth + 1)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _paths(item, depth + 1)
