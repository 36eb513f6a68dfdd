"""The component server's guard (`webapp.middleware.editor.EditorBlobs`) in front of a small app that
stores canvases as `ImageEditor.accept_blobs` does: only the region editor's `accept_blobs`, for a live
session, one bounded PNG or JPEG, a known part, a short id; at most IDS_PER_SESSION paintings per
session, dropped after BLOB_TTL_S. httpx.ASGITransport, no server, a fake clock."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import httpx
import pytest
from helpers.apphost import is_bilingual
from helpers.images import png_header
from starlette.requests import Request
from starlette.responses import PlainTextResponse

from webapp.gate import MAX_BLOB_ID, MAX_LAYERS, Issued
from webapp.middleware import editor as editor_module
from webapp.middleware.editor import BLOB_BYTES, BLOB_TTL_S, IDS_PER_SESSION, EditorBlobs
from webapp.middleware.uploads import Allowance
from webapp.settings import AppSettings

LIVE, OTHER_LIVE = "live-session", "other-session"
CANVAS = png_header(1280, 960)


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class AcceptBlobs:
    """Gradio's component server, reduced to what `accept_blobs` does: keep the canvas by its id."""

    def __init__(self, editor) -> None:
        self.editor = editor
        self.calls = 0

    async def __call__(self, scope, receive, send) -> None:
        form = await Request(scope, receive).form()
        self.calls += 1
        self.editor.blob_storage.setdefault(form["id"], []).append(form["type"])
        await PlainTextResponse("null")(scope, receive, send)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def editor():
    return SimpleNamespace(_id=17, blob_storage={})


@pytest.fixture
def issued():
    issued = Issued()
    issued.touch(LIVE)  # an event of these sessions passed the gate
    issued.touch(OTHER_LIVE)
    return issued


@pytest.fixture
def guarded(editor, issued, clock):
    inner = AcceptBlobs(editor)
    settings = AppSettings.from_mapping({"JUHE_TRUSTED_PROXIES": "127.0.0.1"})
    guard = EditorBlobs(inner, settings, issued, editor=lambda: editor, clock=clock)
    return SimpleNamespace(guard=guard, inner=inner, editor=editor)


def fields(**changes) -> dict:
    form = {
        "fn_name": "accept_blobs",
        "component_id": "17",
        "session_hash": LIVE,
        "type": "background",
        "id": "blob-1",
        "index": "null",
    }
    form.update(changes)
    return {name: value for name, value in form.items() if value is not None}


def send(app, data=None, files="default", method="POST", address="203.0.113.1", **request) -> httpx.Response:
    if files == "default":
        files = {"files": ("blob", CANVAS, "image/png")}

    async def main():
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
            headers = {"X-Forwarded-For": address}
            if method == "GET":
                return await http.get("/gradio_api/component_server/", headers=headers)
            return await http.post(
                "/gradio_api/component_server/",
                data=fields() if data is None else data,
                files=files,
                headers=headers,
                **request,
            )

    return asyncio.run(main())


def refused(answer: httpx.Response, why: str, status: int = 403) -> bool:
    return answer.status_code == status and why in answer.text and is_bilingual(answer.text)


def test_the_editors_canvas_passes(guarded):
    assert send(guarded.guard).status_code == 200
    assert send(guarded.guard, fields(type="layer", index=str(MAX_LAYERS - 1))).status_code == 200
    assert send(guarded.guard, fields(type="composite", index="")).status_code == 200
    assert guarded.editor.blob_storage == {"blob-1": ["background", "layer", "composite"]}
    jpeg = {"files": ("blob", _jpeg(), "image/jpeg")}
    assert send(guarded.guard, fields(id="b" * MAX_BLOB_ID), files=jpeg).status_code == 200
    assert guarded.inner.calls == 4


@pytest.mark.parametrize(
    "data",
    [
        fields(fn_name="postprocess"),
        fields(fn_name="accept_blobs "),
        fields(component_id="18"),
        fields(component_id=None),
    ],
    ids=["another function", "a near name", "another component", "no component"],
)
def test_only_accept_blobs_of_the_editor_is_served(guarded, data):
    assert refused(send(guarded.guard, data), "not served")
    assert guarded.inner.calls == 0


def test_nothing_is_served_without_an_editor_or_by_get(guarded, editor, issued):
    assert refused(send(guarded.guard, method="GET"), "not served")
    guard = EditorBlobs(guarded.inner, guarded.guard.settings, issued, editor=lambda: None)
    assert refused(send(guard), "not served")
    assert guarded.inner.calls == 0


@pytest.mark.parametrize("session", ["never-seen", "", None])
def test_an_unknown_session_is_refused(guarded, session):
    assert refused(send(guarded.guard, fields(session_hash=session)), "no such session")
    assert guarded.inner.calls == 0


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (fields(type="mask"), "not a canvas"),
        (fields(type=None), "not a canvas"),
        (fields(id="../../etc"), "not a canvas"),
        (fields(id="b" * (MAX_BLOB_ID + 1)), "not a canvas"),
        (fields(id=""), "not a canvas"),
        (fields(type="layer", index=str(MAX_LAYERS)), f"at most {MAX_LAYERS} layers"),
        (fields(type="layer", index="-1"), f"at most {MAX_LAYERS} layers"),
        (fields(type="layer", index="1e9"), f"at most {MAX_LAYERS} layers"),
    ],
)
def test_a_bad_part_index_or_id_is_refused(guarded, data, why):
    assert refused(send(guarded.guard, data), why)
    assert guarded.inner.calls == 0


@pytest.mark.parametrize(
    ("files", "why"),
    [
        (None, "not a canvas"),
        ({"files": ("blob", b"GIF89a" + b"\0" * 20, "image/gif")}, "not a canvas"),
        ({"files": ("blob", b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/svg+xml")}, "not a canvas"),
        ({"files": ("blob", png_header(2001, 2000), "image/png")}, "too many pixels"),
        ({"files": ("blob", png_header(100_000, 100_000), "image/png")}, "not a canvas"),
        ([("a", ("a", CANVAS, "image/png")), ("b", ("b", CANVAS, "image/png"))], "malformed"),
    ],
    ids=["no file", "gif", "svg", "5 MP", "a bomb's header", "two files"],
)
def test_anything_but_one_bounded_canvas_is_refused(guarded, files, why):
    assert refused(send(guarded.guard, files=files), why)
    assert guarded.inner.calls == 0


def test_a_body_that_is_not_a_form_is_refused(guarded):
    assert refused(send(guarded.guard, data={}, files=None, content=b"{}"), "not a canvas")


def test_too_many_bytes_are_refused(guarded):
    just_over = {"files": ("blob", CANVAS + b"\0" * (BLOB_BYTES + 1 - len(CANVAS)), "image/png")}
    assert refused(send(guarded.guard, files=just_over), "too large", 413)
    far_over = {"files": ("blob", CANVAS + b"\0" * (BLOB_BYTES + 1024 * 1024), "image/png")}
    assert refused(send(guarded.guard, files=far_over), "too large", 413)
    assert guarded.inner.calls == 0


def test_canvases_are_charged_to_the_upload_allowance(guarded, editor, issued, clock):
    allowance = Allowance(files=10, size=2000, clock=clock)
    guard = EditorBlobs(guarded.inner, guarded.guard.settings, issued, lambda: editor, allowance, clock)
    padded = {"files": ("blob", CANVAS + b"\0" * 900, "image/png")}  # a body of about 1.3 KB
    answers = [send(guard, files=padded) for _ in range(2)]
    assert [a.status_code for a in answers] == [200, 429] and "per minute" in answers[1].text
    assert send(guard, files=padded, address="203.0.113.2").status_code == 200  # another visitor
    assert guarded.inner.calls == 2


def test_a_session_keeps_at_most_its_paintings(guarded):
    for n in range(IDS_PER_SESSION + 2):
        assert send(guarded.guard, fields(id=f"mine-{n}")).status_code == 200
    assert send(guarded.guard, fields(id="theirs", session_hash=OTHER_LIVE)).status_code == 200
    kept = [f"mine-{n}" for n in range(2, IDS_PER_SESSION + 2)]
    assert sorted(guarded.editor.blob_storage) == sorted([*kept, "theirs"])
    # a painting sent again is the newest of its session
    assert send(guarded.guard, fields(id=kept[0], type="composite")).status_code == 200
    assert send(guarded.guard, fields(id="mine-new")).status_code == 200
    assert sorted(guarded.editor.blob_storage) == sorted([kept[0], "mine-new", "theirs"])


def test_another_sessions_painting_cannot_be_added_to(guarded):
    assert send(guarded.guard, fields(id="shared")).status_code == 200
    assert refused(send(guarded.guard, fields(id="shared", session_hash=OTHER_LIVE)), "not your painting")
    assert guarded.editor.blob_storage["shared"] == ["background"]


def test_expired_paintings_are_dropped_from_the_editor(guarded, clock):
    assert send(guarded.guard, fields(id="old")).status_code == 200
    guarded.editor.blob_storage["taken-by-an-event"] = "not ours"  # left alone
    clock.now += BLOB_TTL_S + 1
    assert send(guarded.guard, fields(id="new", session_hash=OTHER_LIVE)).status_code == 200
    assert sorted(guarded.editor.blob_storage) == ["new", "taken-by-an-event"]


def test_the_server_holds_a_bounded_number_of_bytes(guarded, monkeypatch):
    monkeypatch.setattr(editor_module, "HELD_BYTES", 2 * len(CANVAS))
    assert send(guarded.guard, fields(id="one")).status_code == 200
    assert send(guarded.guard, fields(id="two", session_hash=OTHER_LIVE)).status_code == 200
    assert refused(send(guarded.guard, fields(id="three", session_hash=OTHER_LIVE)), "the server is busy")
    assert sorted(guarded.editor.blob_storage) == ["one", "two"]


def _jpeg() -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (8, 8), "white").save(out, "JPEG")
    return out.getvalue()
