"""Visitors are isolated: each session has its own history and results, and nobody can fetch the
files the server saved (another visitor's results) through Gradio's file routes, the link boxes or
a hand-written API call."""

from __future__ import annotations

import json

import httpx
import pytest
from app_host import hosted_app, image_file, is_bilingual
from gradio_client import handle_file
from gradio_client.exceptions import AppError


@pytest.fixture(scope="module")
def hosted(tmp_path_factory):
    """The app with its default relative `outputs/` folder, as deployed, under a temporary cwd."""
    root = tmp_path_factory.mktemp("isolation")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        with hosted_app(root, output_dir="outputs") as running:
            yield running


@pytest.fixture(scope="module")
def edits(hosted, tmp_path_factory):
    """A edits twice and B once in between, each in its own session; returns what each saw last."""
    folder = tmp_path_factory.mktemp("uploads")
    a, b = hosted.client(), hosted.client()
    a_upload = handle_file(str(image_file(folder / "a.jpg", color="red")))
    b_upload = handle_file(str(image_file(folder / "b.jpg", color="blue")))
    first_a = a.predict(a_upload, prompt="A-one", api_name="/edit")
    last_b = b.predict(b_upload, prompt="B-one", api_name="/edit")
    last_a = a.predict(a_upload, prompt="A-two", api_name="/edit")
    return {"A1": first_a, "A": last_a, "B": last_b}


def captions(gallery) -> list[str]:
    return [item["caption"] for item in gallery]


def paths(gallery) -> set[str]:
    return {item["image"]["path"] for item in gallery}


def test_history_is_per_session(edits):
    assert captions(edits["B"][3]) == ["B-one"]
    assert captions(edits["A"][3]) == ["A-two", "A-one"]
    assert not paths(edits["B"][3]) & paths(edits["A"][3])


def test_results_are_per_session(edits):
    assert not paths(edits["B"][0]) & (paths(edits["A"][0]) | paths(edits["A1"][0]))
    assert edits["A"][2].split("`")[1] != edits["B"][2].split("`")[1]  # different orders


def test_history_state_cannot_be_injected(hosted):
    """A hand-written call that adds a history value gets only its own result back: Gradio takes
    `gr.State` from the session, never from the request."""
    fake = [["/etc/passwd", "injected"], ["outputs/x.png", "injected"]]
    data = [None, None, None, "raw-call", "auto", "auto", "http://example.com/cat.png", "", "", "", fake]
    with httpx.Client(base_url=hosted.url, timeout=30) as http:
        event = http.post("/gradio_api/call/edit", json={"data": data}).json()["event_id"]
        stream = http.get(f"/gradio_api/call/edit/{event}").text
    assert "event: complete" in stream
    outputs = json.loads(stream.split("data: ", 1)[1].splitlines()[0])
    assert captions(outputs[3]) == ["raw-call"]
    assert "injected" not in stream


def saved_files(hosted) -> list:
    return sorted(p for p in hosted.output_dir.iterdir() if p.is_file())


def test_file_routes_refuse_saved_results(hosted, edits):
    files = saved_files(hosted)
    assert {p.suffix for p in files} == {".png", ".json"} and len(files) >= 6
    shown = edits["A"][2].split("`")[3]  # the status names the saved file: outputs/<order>.png
    assert shown.startswith("outputs/")
    with httpx.Client(base_url=hosted.url, timeout=30) as http:
        # the control: the copy Gradio serves for A's own result is reachable
        own = http.get(edits["A"][0][0]["image"]["url"].removeprefix(hosted.url.rstrip("/")))
        assert own.status_code == 200 and own.content.startswith(b"\x89PNG")
        for name in [shown, *(f"outputs/{p.name}" for p in files), *(str(p) for p in files)]:
            for route in ("/gradio_api/file=", "/gradio_api/file/"):
                response = http.get(route + name)
                assert response.status_code == 403, (route, name)
                assert not response.content.startswith(b"\x89PNG")


@pytest.mark.parametrize("form", ["relative", "absolute", "file URL"])
def test_link_box_cannot_read_a_saved_result(hosted, edits, form):
    target = saved_files(hosted)[0]
    link = {"relative": f"outputs/{target.name}", "absolute": str(target), "file URL": target.as_uri()}[form]
    before = hosted.sent()
    with pytest.raises(AppError) as info:
        hosted.client().predict(None, prompt="steal", url1=link, api_name="/edit")
    assert "http" in str(info.value) and is_bilingual(str(info.value))
    assert hosted.sent() == before


def test_api_cannot_name_a_saved_result(hosted, edits):
    target = next(p for p in saved_files(hosted) if p.suffix == ".png")
    file_data = {"path": str(target), "orig_name": target.name, "meta": {"_type": "gradio.FileData"}}
    data = [file_data, None, None, "steal", "auto", "auto", "", "", "", ""]
    before = hosted.sent()
    with httpx.Client(base_url=hosted.url, timeout=30) as http:
        event = http.post("/gradio_api/call/edit", json={"data": data}).json()["event_id"]
        stream = http.get(f"/gradio_api/call/edit/{event}").text
    assert "event: error" in stream and "event: complete" not in stream
    assert hosted.sent() == before
