"""Visitors are isolated: each call gets its own results, a page session's history cannot be written
from outside, and nobody can fetch the files the server saved (another visitor's results) through
Gradio's file routes or a hand-written API call."""

from __future__ import annotations

import json

import httpx
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from helpers.apphost import image_file, is_bilingual, running_app
from helpers.tags import marker

from webapp.store import STORE_DIR

pytestmark = [pytest.mark.app, pytest.mark.loopback]


@pytest.fixture(scope="module")
def hosted(tmp_path_factory):
    """The app with its default relative `outputs/` folder, as deployed, under a temporary cwd."""
    root = tmp_path_factory.mktemp("isolation")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        with running_app(root, JUHE_OUTPUT_DIR="outputs") as running:
            yield running


@pytest.fixture(scope="module")
def edits(hosted, tmp_path_factory):
    """A edits twice and B once in between, each in its own session; returns what each got."""
    folder = tmp_path_factory.mktemp("uploads")
    a, b = hosted.client(), hosted.client()
    a_upload = handle_file(str(image_file(folder / "a.jpg", color="red")))
    b_upload = handle_file(str(image_file(folder / "b.jpg", color="blue")))
    return {
        "A1": a.predict(a_upload, prompt="A-one", api_name="/edit"),
        "B": b.predict(b_upload, prompt="B-one", api_name="/edit"),
        "A": a.predict(a_upload, prompt="A-two", api_name="/edit"),
    }


def test_each_call_returns_only_its_own_result(hosted, edits):
    records = {name: record for name, (_, record) in edits.items()}
    orders = {name: record["order_id"] for name, record in records.items()}
    assert len(set(orders.values())) == 3
    for name, record in records.items():
        prompt = hosted.sidecar(record["order_id"])["prompt"]
        assert prompt == {"A1": "A-one", "B": "B-one", "A": "A-two"}[name]
        others = [o for n, o in orders.items() if n != name]
        assert not any(other in json.dumps(edits[name]) for other in others)


def run_event_index(config: dict) -> int:
    """The fn_index of the page's run button (a private event, still reachable by a raw call)."""
    run = next(c["id"] for c in config["components"] if c.get("props", {}).get("elem_id") == "run")
    # the edit itself: of the events on Edit's click, the one that takes the form
    on_run = [i for i, d in enumerate(config["dependencies"]) if [run, "click"] in d["targets"]]
    return max(on_run, key=lambda i: len(config["dependencies"][i]["inputs"]))


def test_history_state_cannot_be_injected(hosted, tmp_path):
    """A raw call of the page's event that sends a history value gets only its own result back:
    Gradio takes `gr.State` from the session, never from the request."""
    fake = [["/etc/passwd", "injected"], ["outputs/x.png", "injected"]]
    with httpx.Client(base_url=hosted.url, timeout=30) as http:
        config = http.get("/config").json()
        with open(image_file(tmp_path / "ok.jpg"), "rb") as handle:
            path = http.post("/gradio_api/upload", files={"files": ("ok.jpg", handle)}).json()[0]
        upload = {"path": path, "orig_name": "ok.jpg", "meta": {"_type": "gradio.FileData"}}
        # 图1-图3, prompt, size, width, height, model, link1-3, key, region, then the States painting,
        # preset mask and history, ids (BrowserState), the State of the chain's parent, and variants
        data = [
            upload,
            None,
            None,
            "raw-call",
            "auto",
            1024,
            1024,
            "auto",
            "",
            "",
            "",
            "",
            None,
            True,
            None,
            fake,
            fake,
            {"id": "injected-parent-id-000", "path": path},
            "1",
        ]
        body = {"data": data, "fn_index": run_event_index(config), "session_hash": "rawsession1"}
        assert http.post("/gradio_api/queue/join", json=body).status_code == 200
        stream = http.get("/gradio_api/queue/data", params={"session_hash": "rawsession1"}).text
    assert "process_completed" in stream and '"success":true' in stream.replace(" ", ""), stream[-600:]
    assert "raw-call" in stream
    assert "injected" not in stream and "/etc/passwd" not in stream
    records = [json.loads(p.read_text()) for p in (hosted.output_dir / STORE_DIR / "records").glob("*.json")]
    assert [r.get("parent") for r in records if r["prompt"] == "raw-call"] == [None]  # never from a request


def saved_files(hosted) -> list:
    return sorted(p for p in hosted.output_dir.iterdir() if p.is_file())


def test_file_routes_refuse_saved_results(hosted, edits):
    files = saved_files(hosted)
    assert {p.suffix for p in files} == {".png", ".json"} and len(files) >= 6
    _, record = edits["A"]
    with httpx.Client(base_url=hosted.url, timeout=30) as http:
        # the control: the copy Gradio serves for A's own result is reachable
        own = http.get(record["images"][0].removeprefix(hosted.url))
        assert own.status_code == 200 and own.content.startswith(b"\x89PNG")
        for name in [*(f"outputs/{p.name}" for p in files), *(str(p) for p in files)]:
            for route in ("/gradio_api/file=", "/gradio_api/file/"):
                response = http.get(route + name)
                assert response.status_code == 403, (route, name)
                assert not response.content.startswith(b"\x89PNG")


@pytest.mark.parametrize("form", ["relative", "absolute", "file URL"])
def test_an_image_string_cannot_read_a_saved_result(hosted, edits, form):
    target = saved_files(hosted)[0]
    link = {"relative": f"outputs/{target.name}", "absolute": str(target), "file URL": target.as_uri()}[form]
    tag = marker()
    with pytest.raises(AppError) as info:
        hosted.client().predict(link, prompt=f"steal {tag}", api_name="/edit")
    assert "http" in str(info.value) and is_bilingual(str(info.value))
    assert hosted.requests_with(tag) == []


def test_api_cannot_name_a_saved_result(hosted, edits):
    target = next(p for p in saved_files(hosted) if p.suffix == ".png")
    file_data = {"path": str(target), "orig_name": target.name, "meta": {"_type": "gradio.FileData"}}
    tag = marker()
    data = [file_data, f"steal {tag}", None, None, "auto", "auto", None, None]
    with httpx.Client(base_url=hosted.url, timeout=30) as http:
        event = http.post("/gradio_api/call/edit", json={"data": data}).json()["event_id"]
        stream = http.get(f"/gradio_api/call/edit/{event}").text
    assert "event: error" in stream and "event: complete" not in stream
    assert hosted.requests_with(tag) == []
