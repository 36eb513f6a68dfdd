"""Calling every event of a running app the way a browser does, by `fn_index` (issue 16).

Not a test module: the machinery of `test_event_fuzz`. The app runs as `python app.py` in its own
process (offline, on loopback), so its resident memory and its log are its own and a decode bomb
that gets through cannot take the test process down with it. Events are read from `/config`, never
listed by hand: an event added later is called too.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import os
import re
import socket
import struct
import subprocess
import sys
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from helpers import procs
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
MB = 1024 * 1024
DEADLINE_S = 30.0  # every call answers within this, refusal or not
STARTUP_S = 90.0
SELECTED_FIRST = {"index": 0, "value": None, "selected": True}  # a click on the first item


# --- the app in its own process -------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class AppProcess:
    """`python app.py`, offline, on a loopback port; its output goes to `log`."""

    url: str
    process: subprocess.Popen
    log: Path
    temp_dir: Path
    output_dir: Path

    def status(self, field_name: str) -> int:
        """A byte count from /proc status of the app and its edit processes together (VmRSS: now;
        VmHWM: the peaks since the reset)."""
        return procs.status_total(self.process.pid, field_name)

    def reset_peak(self) -> int:
        """Reset the peak RSS of the app and its edit processes to their current RSS; their RSS."""
        procs.reset_peaks(self.process.pid)
        return self.status("VmRSS")

    def log_text(self, offset: int = 0) -> str:
        """What the app printed or logged, from byte `offset` on."""
        with open(self.log, "rb") as handle:
            handle.seek(offset)
            return handle.read().decode("utf-8", "replace")

    def log_size(self) -> int:
        return self.log.stat().st_size


@contextlib.contextmanager
def app_process(folder: Path, **env: str) -> Iterator[AppProcess]:
    """Start the app (offline: no key; the built-in simulator answers at once) and stop it after.

    The working directory is `folder`, so no developer's `.env` is read; every setting is given.
    """
    port = _free_port()
    values = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("JUHE_", "GRADIO_")) and key not in ("SPACE_ID", "SPACE_HOST")
    }
    values.update(
        GRADIO_TEMP_DIR=str(folder / "gradio"),
        GRADIO_SERVER_NAME="127.0.0.1",
        GRADIO_SERVER_PORT=str(port),
        GRADIO_ANALYTICS_ENABLED="False",
        HF_HUB_OFFLINE="1",
        JUHE_OUTPUT_DIR=str(folder / "outputs"),
        JUHE_SIM_LATENCY="0.05",
        # a visitor's own key (the API-key box, the API's api_key) makes an edit live: it must go to
        # a closed loopback port, never to the provider's real address
        JUHE_API_URL=f"http://127.0.0.1:{_free_port()}/image_edit/edit",
        JUHE_MCP="0",
        PYTHONUNBUFFERED="1",
    )
    values.update(env)
    log = folder / "app.log"
    with open(log, "wb") as sink:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "app.py")], cwd=folder, env=values, stdout=sink, stderr=sink
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, process, log)
        yield AppProcess(url, process, log, folder / "gradio", folder / "outputs")
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(15)


def _wait_until_up(url: str, process: subprocess.Popen, log: Path) -> None:
    """Poll `/config` until it answers (startup is a condition to wait for, not a fixed delay)."""
    give_up = time.monotonic() + STARTUP_S
    while time.monotonic() < give_up:
        if process.poll() is not None:
            raise RuntimeError(f"the app exited: {log.read_text(errors='replace')[-2000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/config", timeout=5).status_code == 200:
                return
        time.sleep(0.2)  # polling interval while the app starts, not a synchronisation
    raise RuntimeError("the app did not start in time")


# --- the page, as /config describes it ------------------------------------------------------------


@dataclass
class Event:
    """One dependency of the page: what it takes and gives, and how the page calls it."""

    id: int
    name: str
    inputs: list[int]
    outputs: list[int]
    queue: bool
    backend: bool
    after: int | None  # the event this one follows (`.then`), as in an example's follow-up
    selects: bool  # a `.select` event: the page sends which item was clicked


@dataclass
class Page:
    """The app's components (id -> type and initial value) and its events."""

    types: dict[int, str]
    values: dict[int, object]
    props: dict[int, dict]
    events: list[Event]

    @classmethod
    def read(cls, url: str) -> Page:
        config = httpx.get(f"{url}/config", timeout=DEADLINE_S).json()
        types = {c["id"]: c["type"] for c in config["components"]}
        props = {c["id"]: c.get("props", {}) for c in config["components"]}
        values = {i: p.get("value") for i, p in props.items()}
        events = [
            Event(
                id=d["id"],
                name=d.get("api_name") or f"event{d['id']}",
                inputs=list(d["inputs"]),
                outputs=list(d["outputs"]),
                queue=bool(d["queue"]),
                backend=bool(d["backend_fn"]),
                after=d.get("trigger_after"),
                selects=any(t[1] == "select" for t in d["targets"]),
            )
            for d in config["dependencies"]
        ]
        return cls(types, values, props, events)

    def event(self, event_id: int) -> Event:
        return next(e for e in self.events if e.id == event_id)

    def session_inputs(self, component: int) -> bool:
        """State inputs come from the session on the server, whatever the request says."""
        return self.types[component] == "state"

    def followers(self, event: Event) -> list[Event]:
        """Events that read a State this event writes: what a value it accepted can reach later."""
        written = {o for o in event.outputs if self.types.get(o) == "state"}
        return [e for e in self.events if e.backend and written & set(e.inputs) and e.id != event.id]


# --- calling an event -------------------------------------------------------------------------------


@dataclass
class Answer:
    """What one call came back with: the outputs, or an error (a message, or an HTTP status)."""

    ok: bool
    output: list | None = None
    error: str = ""
    status: int = 200
    seconds: float = 0.0

    def short(self) -> str:
        if self.ok:
            return "accepted"
        text = " ".join((self.error or "").split())
        return f"refused {self.status}: {text[:60]}" if self.status != 200 else f"error: {text[:60]}"


def call(url: str, event: Event, data: list, session: str, timeout: float = DEADLINE_S) -> Answer:
    """Call `event` by `fn_index` as the page does: `/queue/join` and the session's event stream, or
    `/run/predict` for an unqueued event. `timeout` bounds the whole call (the deadline)."""
    body = {
        "data": data,
        "fn_index": event.id,
        "session_hash": session,
        "event_data": SELECTED_FIRST if event.selects else None,
        "trigger_id": None,
    }
    started = time.monotonic()
    with httpx.Client(base_url=url, timeout=timeout) as http:
        if not event.queue:
            answer = http.post("/gradio_api/run/predict", json=body)
            payload = _json(answer)
            seconds = time.monotonic() - started
            if answer.status_code != 200 or "error" in payload:
                return Answer(
                    False,
                    error=str(payload.get("error") or payload.get("detail") or answer.text),
                    status=answer.status_code,
                    seconds=seconds,
                )
            return Answer(True, output=payload.get("data"), seconds=seconds)
        joined = http.post("/gradio_api/queue/join", json=body)
        if joined.status_code != 200:
            return Answer(
                False, error=joined.text[:200], status=joined.status_code, seconds=time.monotonic() - started
            )
        last = None
        with http.stream("GET", "/gradio_api/queue/data", params={"session_hash": session}) as events:
            for line in events.iter_lines():
                if time.monotonic() - started > timeout:
                    raise TimeoutError(f"{event.name}: no answer within {timeout:.0f} s")
                message = json.loads(line[5:]) if line.startswith("data:") else {}
                if message.get("msg") == "process_generating":
                    last = message["output"].get("data")
                if message.get("msg") == "process_completed":
                    output = message.get("output") or {}
                    seconds = time.monotonic() - started
                    if not message.get("success", True) or output.get("error") is not None:
                        return Answer(False, error=str(output.get("error") or "error"), seconds=seconds)
                    return Answer(True, output=output.get("data", last), seconds=seconds)
    raise AssertionError(f"{event.name}: the event stream ended without process_completed")


def _json(response: httpx.Response) -> dict:
    try:
        payload = response.json()
    except ValueError:
        return {"error": response.text[:200]}
    return payload if isinstance(payload, dict) else {"data": payload}


def upload(url: str, data: bytes, name: str = "photo.png") -> dict:
    """Upload a file as the page does, and return the FileData the page then sends for it."""
    with httpx.Client(base_url=url, timeout=DEADLINE_S) as http:
        answer = http.post(
            "/gradio_api/upload", params={"upload_id": uuid.uuid4().hex}, files={"files": (name, data)}
        )
    answer.raise_for_status()
    path = answer.json()[0]
    return {
        "path": path,
        "url": f"{url}/gradio_api/file={path}",
        "orig_name": name,
        "size": len(data),
        "mime_type": "image/png",
        "is_stream": False,
        "meta": {"_type": "gradio.FileData"},
    }


# --- a session that remembers its page, like a browser tab -------------------------------------


@dataclass
class Tab:
    """One browser tab: a session and the values its components hold (set by the answers)."""

    url: str
    page: Page
    session: str = field(default_factory=lambda: uuid.uuid4().hex)
    values: dict[int, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.values = dict(self.page.values)

    def data(self, event: Event, overrides: dict[int, object] | None = None) -> list:
        """The values the page would send for `event`, with `overrides` (by input position). A
        Dataset (examples) sends the index of the sample clicked: the first."""
        data = [None if self.page.session_inputs(c) else self.values.get(c) for c in event.inputs]
        for position, component in enumerate(event.inputs):
            if self.page.types[component] == "dataset" and data[position] is None:
                data[position] = 0
        for position, value in (overrides or {}).items():
            data[position] = value
        return data

    def run(self, event: Event, overrides: dict[int, object] | None = None) -> Answer:
        """Call `event` with the page's values (and `overrides`); the answer updates the page."""
        answer = call(self.url, event, self.data(event, overrides), self.session)
        if answer.ok and answer.output:
            for component, value in zip(event.outputs, answer.output, strict=False):
                if isinstance(value, dict) and value.get("__type__") == "update":
                    if "value" in value:
                        self.values[component] = value["value"]
                else:
                    self.values[component] = value
        return answer

    def fill_blanks(self, event: Event) -> None:
        """Fill the form as a visitor would before `event`: the first empty image input gets a photo
        this visitor uploads, the first empty text input an instruction (the public API's inputs,
        image then prompt, count as both). So a hostile value in one input meets working values in
        the others, and a refusal is the hostile value's."""
        photo_done = text_done = False
        for component in event.inputs:
            kind = self.page.types[component]
            if self.values.get(component) not in (None, ""):
                continue
            if kind in ("image", "api") and not photo_done:
                self.values[component] = upload(self.url, small_png("navy", (320, 240)))
                photo_done = True
            elif kind in ("textbox", "api") and not text_done:
                self.values[component] = "make the sky blue"
                text_done = True

    def prepare(self, event: Event) -> None:
        """Run what the page runs before `event`: the event it follows (an example's click)."""
        if event.after is None:
            return
        parent = self.page.event(event.after)
        self.prepare(parent)
        self.run(parent)


# --- answers compared by content ----------------------------------------------------------------------


def fingerprint(answer: Answer) -> str:
    """The answer with every file it names replaced by a digest of the file's bytes, and the parts
    that differ from call to call anyway (ids, times, random folder names) masked: two answers with
    equal fingerprints told the caller the same thing."""
    if not answer.ok:
        return "refused"
    return json.dumps(_content(answer.output), sort_keys=True, ensure_ascii=False)


def _content(value: object) -> object:
    if isinstance(value, dict):
        path = value.get("path")
        if isinstance(path, str) and value.get("meta", {}).get("_type") == "gradio.FileData":
            return {"file": _digest(path)}
        # a caption is text even when it spells a path (a gallery item's caption is the prompt)
        return {k: v if k == "caption" else _content(v) for k, v in value.items() if k != "url"}
    if isinstance(value, list):
        return [_content(v) for v in value]
    if isinstance(value, str):
        # text is compared as text: an event that echoes the visitor's own words (a link box, the
        # instruction) reveals nothing of a file those words happen to name; a file's content can
        # only leave as a file (FileData), which is compared by content above
        return _masked(value)
    if isinstance(value, float):
        return "#.#"  # a measured time (the API's elapsed_s)
    return value


def _digest(path: str) -> str:
    """The pixels of an image file (its encoding may differ), else its bytes."""
    try:
        with Image.open(path) as image:
            return hashlib.sha256(image.convert("RGBA").tobytes()).hexdigest()[:16]
    except (OSError, ValueError):
        try:
            return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
        except OSError:
            return "missing"


def _masked(text: str) -> str:
    """Text without what changes between any two calls: links to files, ids and tokens (hex, or
    URL-safe base64 such as a result's id), and numbers (order ids, seconds)."""
    text = re.sub(r"/gradio_api/file=\S+?(?=[\s\"')\]]|$)", "/gradio_api/file=…", text)
    text = re.sub(r"[A-Za-z0-9_-]{16,}|[0-9a-f]{8,}", "…", text)
    return re.sub(r"\d+(\.\d+)?", "#", text)


# --- hostile values -------------------------------------------------------------------------------------


def solid_png(width: int, height: int, color: tuple[int, int, int] = (200, 30, 60)) -> bytes:
    """A PNG of one colour, written row by row: 13000x13000 (169 MP) is ~0.5 MB on disk and never
    exists as pixels here (Pillow would need 0.5 GB for it in this process)."""
    row = b"\x00" + bytes(color) * width
    packer = zlib.compressobj(9)
    chunks = [packer.compress(row) for _ in range(height)]
    pixels = b"".join(chunks) + packer.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def small_png(color: str, size: tuple[int, int] = (64, 48)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


def data_file(data: bytes, mime: str = "image/png") -> dict:
    """A FileData with no path and a `data:` URL: Gradio skips its upload-folder check for it."""
    return {
        "path": None,
        "url": f"data:{mime};base64," + base64.b64encode(data).decode(),
        "orig_name": "bomb.png",
        "meta": {"_type": "gradio.FileData"},
    }


def path_file(path: str | Path) -> dict:
    """A FileData naming a file on the server by its path."""
    return {"path": str(path), "orig_name": Path(path).name, "meta": {"_type": "gradio.FileData"}}


def link_file(link: str) -> dict:
    """A FileData whose path is a link: Gradio would download it before any handler runs."""
    return {"path": link, "orig_name": "photo.png", "meta": {"_type": "gradio.FileData"}}
