"""One front door (issue 16): every event of the page, called by `fn_index` with hostile values.

The events come from the running app's `/config`, never from a list kept here, so an event added
later is called too; so is Gradio's component server. Each input of each event in turn gets a hostile
value while the others keep what the page would send. What must hold for every call:

- no answer depends on a server file that was not issued to the session (the file's content is
  changed between two calls, and the answers, and what the session's next events answer, must not
  change with it);
- a refused input costs at most +50 MB of the app's resident memory, an accepted one at most +300 MB
  over idle;
- nothing in the app's log is a traceback;
- every call answers within the deadline.

The app runs as `python app.py` in its own process (see `eventfuzz`), so these figures and its log
are its own. With `-s` each test prints a table of what it sent and what came back.
"""

from __future__ import annotations

import io
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from eventfuzz import (
    DEADLINE_S,
    MB,
    AppProcess,
    Event,
    Page,
    Tab,
    app_process,
    data_file,
    fingerprint,
    link_file,
    path_file,
    small_png,
    solid_png,
    upload,
)
from helpers.apphost import is_bilingual
from PIL import Image

pytestmark = [pytest.mark.app, pytest.mark.timeout(600)]

REFUSED_MB = 50  # a refused input may cost this much resident memory, no more
ACCEPTED_MB = 300  # an accepted one may take the app this far over idle
BOMB_SIDE = 13000  # 169 MP: under twice Pillow's bomb limit, so Pillow only warns
FILE_TYPES = {"image", "imageeditor", "imageslider", "gallery", "file", "video", "audio", "model3d", "api"}


@dataclass
class Row:
    """One call and what came of it, for the table and the assertions."""

    event: str
    target: str
    sent: str
    outcome: str
    cost_mb: float
    over_idle_mb: float
    seconds: float
    traceback: bool
    problem: str = ""


class Fuzz:
    """The app under test, its page, its idle memory and the calls made so far."""

    def __init__(self, app: AppProcess, page: Page) -> None:
        self.app = app
        self.page = page
        self.idle = app.status("VmRSS")

    def label(self, component: int) -> str:
        props = self.page.props[component]
        return f"{self.page.types[component]}#{component}" + (
            f" {props['elem_id']}" if props.get("elem_id") else ""
        )

    def measured(self, tab: Tab, event: Event, overrides: dict, sent: str) -> tuple[Row, object]:
        """Make one call from `tab` and measure it: memory (peak over the RSS just before, and over
        idle), the log it caused, and the time it took."""
        target = ", ".join(self.label(event.inputs[p]) for p in overrides) or "-"
        offset = self.app.log_size()
        before = self.app.reset_peak()
        try:
            answer = tab.run(event, overrides)
            outcome, seconds = answer.short(), answer.seconds
        except (httpx.TimeoutException, TimeoutError) as exc:
            answer, outcome, seconds = (
                None,
                f"no answer within {DEADLINE_S:.0f} s ({type(exc).__name__})",
                DEADLINE_S,
            )
        peak = self.app.status("VmHWM")
        log = self.app.log_text(offset)
        row = Row(
            event=f"{event.id} {event.name}",
            target=target,
            sent=sent,
            outcome=outcome,
            cost_mb=(peak - before) / MB,
            over_idle_mb=(peak - self.idle) / MB,
            seconds=seconds,
            traceback="Traceback" in log,
        )
        row.problem = self.judge(row, answer)
        return row, answer

    @staticmethod
    def judge(row: Row, answer) -> str:
        """What is wrong with one call, or "" (the goals of issue 16)."""
        problems = []
        if answer is None:
            problems.append("no answer in time")
        if answer is None and row.cost_mb > REFUSED_MB:
            problems.append(f"cost +{row.cost_mb:.0f} MB by then (goal ≤ +{REFUSED_MB} for a refusal)")
        elif answer is not None and not answer.ok and row.cost_mb > REFUSED_MB:
            problems.append(f"refused but cost +{row.cost_mb:.0f} MB (goal ≤ +{REFUSED_MB})")
        elif answer.ok and row.over_idle_mb > ACCEPTED_MB:
            problems.append(f"accepted at +{row.over_idle_mb:.0f} MB over idle (goal ≤ +{ACCEPTED_MB})")
        if row.traceback:
            problems.append("traceback in the log")
        return "; ".join(problems)


def print_table(title: str, rows: list[Row]) -> None:
    """The calls as a table (shown with `pytest -s`)."""
    print(f"\n== {title}: {len(rows)} calls")
    print(f"{'event':24} {'input':26} {'sent':34} {'cost MB':>8} {'idle+MB':>8} {'s':>5}  outcome / problem")
    for row in rows:
        outcome = row.outcome + (f"  <<< {row.problem}" if row.problem else "")
        print(
            f"{row.event[:24]:24} {row.target[:26]:26} {row.sent[:34]:34} {row.cost_mb:+8.0f} "
            f"{row.over_idle_mb:+8.0f} {row.seconds:5.2f}  {outcome}"
        )


def failures(rows: list[Row]) -> list[str]:
    return [f"{r.event} / {r.target} / {r.sent}: {r.problem}" for r in rows if r.problem]


@pytest.fixture(scope="module")
def fuzz(tmp_path_factory) -> Fuzz:
    folder = tmp_path_factory.mktemp("fuzz")
    with app_process(folder) as app:
        page = Page.read(app.url)
        for event in page.events:  # warm up every code path once, so idle means "ready"
            if event.backend:
                tab = Tab(app.url, page)
                tab.prepare(event)
                tab.run(event)
        yield Fuzz(app, page)


def inputs_of(fuzz: Fuzz, event: Event, types: set[str] | None = None) -> list[int]:
    """Positions of the event's inputs that a request can set (State comes from the session)."""
    return [
        position
        for position, component in enumerate(event.inputs)
        if not fuzz.page.session_inputs(component) and (types is None or fuzz.page.types[component] in types)
    ]


def fresh_tab(fuzz: Fuzz, event: Event) -> Tab:
    """A new visitor whose page is ready for `event`: the example clicked for an example's follow-up,
    a photo uploaded and an instruction typed where the form is empty."""
    tab = Tab(fuzz.app.url, fuzz.page)
    tab.prepare(event)
    tab.fill_blanks(event)
    return tab


# --- the happy path: what the page sends must still work ------------------------------------------


def test_config_lists_every_event_and_the_page_values_pass(fuzz):
    """Benign values first, so a failure below is the app's and not this harness's: every event the
    page calls answers its own values within the deadline, with no traceback and within the memory
    goals; a refusal says what is wrong in both languages."""
    assert len(fuzz.page.events) >= 20, "the page's events were not found in /config"
    rows = []
    for event in fuzz.page.events:
        if not event.backend:
            continue  # the page runs these in the browser only
        tab = fresh_tab(fuzz, event)
        row, answer = fuzz.measured(tab, event, {}, "the page's values")
        if answer is not None and not answer.ok and not is_bilingual(answer.error):
            row.problem = (row.problem + "; " if row.problem else "") + "refused without a bilingual reason"
        rows.append(row)
    print_table("benign values", rows)
    assert not failures(rows), "\n".join(failures(rows))


def test_an_upload_edit_and_the_region_example_still_work(fuzz):
    """The happy path the gate must keep: an uploaded 图1 edited, the region example clicked and then
    edited with its mask, and a painted region (blobs through the component server) edited."""
    page = fuzz.page
    edit = named(page, "edit_image")
    tab = Tab(fuzz.app.url, page)
    photo = upload(fuzz.app.url, small_png("navy", (320, 240)))
    answer = tab.run(edit, {0: photo, 3: "make it blue"})
    assert answer.ok, answer.error

    example = named(page, "load_region_example")
    tab = fresh_tab(fuzz, example)
    assert tab.run(example).ok
    answer = tab.run(edit, {3: "replace it"})
    assert answer.ok, answer.error
    assert "painted area" in answer.output[0]  # the example's mask was used

    tab = Tab(fuzz.app.url, page)
    photo = upload(fuzz.app.url, small_png("navy", (320, 240)))
    tab.values[edit.inputs[0]] = photo
    assert tab.run(named(page, "open_region")).ok
    region = edit.inputs[12]
    blob_id = uuid.uuid4().hex
    stroke = Image.new("RGBA", (320, 240), (0, 0, 0, 0))
    stroke.paste((255, 0, 128, 140), (100, 80, 200, 160))
    answer = post_blob(fuzz, tab.session, region, blob_id, png_bytes(stroke), "layer", "0")
    assert answer.status_code == 200, answer.text
    answer = tab.run(edit, {12: {"id": blob_id, "background": None, "layers": [], "composite": None}, 3: "x"})
    assert answer.ok, answer.error
    assert "painted area" in answer.output[0]


def named(page: Page, name: str) -> Event:
    return next(e for e in page.events if e.name == name)


def png_bytes(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


# --- 1. no answer depends on a server file the session was not given ----------------------------


def planted_files(fuzz: Fuzz) -> dict[str, Path]:
    """A PNG where a visitor must not reach: among the saved results, and in Gradio's cache (the
    worst case: Gradio's own check lets any file there through)."""
    cache = fuzz.app.temp_dir / uuid.uuid4().hex / "probe.png"
    saved = fuzz.app.output_dir / f"probe-{uuid.uuid4().hex[:8]}.png"
    for path in (cache, saved):
        path.parent.mkdir(parents=True, exist_ok=True)
    return {"result folder": saved, "Gradio cache": cache}


def probes(fuzz: Fuzz, component: int, path: Path) -> dict[str, object]:
    """The ways an input could name `path`: as a path string (text inputs, the public API's image
    strings, the region example's hidden mask box), and as a FileData (file inputs; for the region
    editor, as each of its images)."""
    kind = fuzz.page.types[component]
    if kind not in FILE_TYPES:
        return {"path string": str(path)}
    if kind == "imageeditor":
        return {
            "editor of FileData paths": {
                "background": path_file(path),
                "layers": [path_file(path)],
                "composite": path_file(path),
            }
        }
    found = {"FileData path": path_file(path)}
    if kind == "api":
        found["path string"] = str(path)
    return found


def test_no_answer_depends_on_a_server_file_not_issued_to_the_session(fuzz):
    """Each input of each event with a handler names a planted file; the file is black, then white.
    The two answers (and those of the events that read the State this one wrote, in the same session)
    must be the same: a refusal, or an answer blind to the file."""
    rows, leaks = [], []
    for where, path in planted_files(fuzz).items():
        for event in fuzz.page.events:
            if not event.backend:
                continue  # no handler, no answer to leak through (the other tests still call them)
            for position in inputs_of(fuzz, event):
                for form, value in probes(fuzz, event.inputs[position], path).items():
                    prints = []
                    for color in ("black", "white"):
                        path.write_bytes(small_png(color))
                        tab = fresh_tab(fuzz, event)
                        row, answer = fuzz.measured(
                            tab, event, {position: value}, f"{where}, {form}, {color}"
                        )
                        seen = [fingerprint(answer)] if answer else ["no answer"]
                        if answer is not None and answer.ok:
                            seen += [
                                f"{later.name}: {fingerprint(tab.run(later))}"
                                for later in fuzz.page.followers(event)
                            ]
                        prints.append(seen)
                        rows.append(row)
                    if prints[0] != prints[1]:
                        changed = "the answer changed with the file's content"
                        if prints[0][0] == prints[1][0]:
                            changed = "a later event's answer changed with the file's content (kept in State)"
                        rows[-1].problem = "; ".join(filter(None, [changed, rows[-1].problem]))
                        leaks.append(rows[-1])
    print_table("server files", rows)
    assert not leaks, "\n".join(failures(leaks))
    assert not failures(rows), "\n".join(failures(rows))


# --- 2. wrong types, huge values, links ------------------------------------------------------------


HOSTILE = {
    "400-digit integer": int("9" * 400),
    "object {'a': [1]}": {"a": [1]},
    "1 MB string": "x" * (1024 * 1024),
    "FileData http link": link_file("http://127.0.0.1:9/photo.png"),
}


def test_hostile_values_are_refused_cheaply_and_cleanly(fuzz):
    """Every input of every event, with each value of `HOSTILE`: an answer in time, within the memory
    goals, and never a traceback."""
    rows = []
    for event in fuzz.page.events:
        for position in inputs_of(fuzz, event):
            for sent, value in HOSTILE.items():
                row, _ = fuzz.measured(fresh_tab(fuzz, event), event, {position: value}, sent)
                rows.append(row)
    print_table("hostile values", rows)
    assert not failures(rows), "\n".join(failures(rows))


# --- 3. Gradio's component server ----------------------------------------------------------------


def post_blob(
    fuzz: Fuzz,
    session: str,
    component: int,
    blob_id: str,
    data: bytes,
    kind: str,
    index: str | None,
    fn_name: str = "accept_blobs",
) -> httpx.Response:
    """What the region editor posts for one layer of a painting: raw bytes under an id."""
    fields = {
        "session_hash": session,
        "component_id": str(component),
        "fn_name": fn_name,
        "id": blob_id,
        "type": kind,
        "index": index if index is not None else "null",
    }
    return httpx.post(
        f"{fuzz.app.url}/gradio_api/component_server",
        data=fields,
        files={"file": ("blob", data, "image/png")},
        timeout=DEADLINE_S,
    )


def test_the_component_server_keeps_nothing_a_stranger_sends(fuzz):
    """Blobs posted by a session that never opened the page, a layer index of ten million, other
    functions and other components: each refused (4xx) or, if kept, within the memory goal; no
    traceback."""
    editors = [c for c, kind in fuzz.page.types.items() if kind == "imageeditor"]
    others = [c for c, kind in fuzz.page.types.items() if kind == "image"]
    assert editors, "no image editor on the page"
    rows = []

    def measured(sent: str, target: str, post) -> Row:
        offset = fuzz.app.log_size()
        before = fuzz.app.reset_peak()
        answer = post()
        after, peak = fuzz.app.status("VmRSS"), fuzz.app.status("VmHWM")
        row = Row(
            "component_server",
            target,
            sent,
            f"{answer.status_code} {answer.text[:50]}",
            (max(peak, after) - before) / MB,
            (peak - fuzz.idle) / MB,
            answer.elapsed.total_seconds(),
            "Traceback" in fuzz.app.log_text(offset),
        )
        kept = after - before
        problems = []
        if kept > REFUSED_MB * MB:
            problems.append(f"kept +{kept / MB:.0f} MB (goal ≤ +{REFUSED_MB})")
        elif row.cost_mb > REFUSED_MB:
            problems.append(f"cost +{row.cost_mb:.0f} MB (goal ≤ +{REFUSED_MB})")
        if row.traceback:
            problems.append("traceback in the log")
        if answer.status_code >= 500:
            problems.append("server error")
        row.problem = "; ".join(problems)
        rows.append(row)
        return row

    editor = editors[0]
    stranger = uuid.uuid4().hex  # a session that never joined the queue
    chunk = os.urandom(4 * MB)  # incompressible: it stays 4 MB wherever it is kept

    def twenty_blobs():
        for _ in range(19):
            post_blob(fuzz, stranger, editor, uuid.uuid4().hex, chunk, "layer", "0")
        return post_blob(fuzz, stranger, editor, uuid.uuid4().hex, chunk, "layer", "0")

    label = f"imageeditor#{editor}"
    measured("20 x 4 MB, new ids, unknown session", label, twenty_blobs)
    measured(
        "layer index 10_000_000",
        label,
        lambda: post_blob(fuzz, stranger, editor, uuid.uuid4().hex, b"x", "layer", "10000000"),
    )
    for fn_name in ("preprocess", "postprocess", "accept_blobs_", "__init__"):
        measured(
            f"fn_name {fn_name}",
            label,
            lambda fn_name=fn_name: post_blob(fuzz, stranger, editor, "a", b"x", "layer", "0", fn_name),
        )
    for other in others[:1] + [max(fuzz.page.types) + 1000]:
        row = measured(
            "accept_blobs to another component",
            f"component {other}",
            lambda other=other: post_blob(fuzz, stranger, other, "a", b"x", "layer", "0"),
        )
        if not row.outcome.startswith("4"):
            row.problem = (row.problem + "; " if row.problem else "") + "not refused"
    print_table("component server", rows)
    assert not failures(rows), "\n".join(failures(rows))


# --- 4. decode bombs (last: where the door is open, the app is still busy after) ------------------


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return solid_png(BOMB_SIDE, BOMB_SIDE)


def test_a_169_megapixel_data_uri_is_refused_before_it_is_decoded(fuzz, bomb):
    """A 0.5 MB solid 13000x13000 PNG as a `data:` FileData (and as a data URI string) in every input
    that takes files. Stops at the first call over the memory goal, so the app is not driven out of
    memory where the door is open; where it is shut, every event is covered."""
    rows = []
    for event in fuzz.page.events:
        for position in inputs_of(fuzz, event, FILE_TYPES):
            component = event.inputs[position]
            values = {"data: FileData": data_file(bomb)}
            if fuzz.page.types[component] == "imageeditor":
                values = {
                    "editor of data: FileData": {
                        "background": data_file(bomb),
                        "layers": [],
                        "composite": None,
                    }
                }
            if fuzz.page.types[component] == "api":
                values["data URI string"] = data_file(bomb)["url"]
            for sent, value in values.items():
                row, _ = fuzz.measured(fresh_tab(fuzz, event), event, {position: value}, f"169 MP, {sent}")
                rows.append(row)
                if row.problem:
                    break
            if rows and rows[-1].problem:
                break
        if rows and rows[-1].problem:
            break
    print_table("decode bombs", rows)
    assert rows, "no event takes a file"
    assert not failures(rows), "\n".join(failures(rows))
