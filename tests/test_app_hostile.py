"""Hostile and odd inputs through the app's `/edit`: each gets a clear bilingual error or a sensible
conversion, never a crash, and an invalid one sends nothing to the provider."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from helpers.apphost import image_file, is_bilingual, running_app
from helpers.hostile import HTML, SVG, animated, png_declaring, reddish, truncated_jpeg, write
from helpers.paths import ROOT
from helpers.tags import marker
from PIL import Image

pytestmark = [pytest.mark.app, pytest.mark.loopback]


@pytest.fixture(scope="module")
def hosted(tmp_path_factory):
    with running_app(tmp_path_factory.mktemp("hostile")) as running:
        yield running


@pytest.fixture(scope="module")
def visitor(hosted):
    return hosted.client()


UPLOADS = {
    "zero-byte file": ("empty.png", lambda: b"", "empty"),
    "random bytes named .png": ("noise.png", lambda: np.random.bytes(4096), "not a readable image"),
    "HTML named .jpg": ("page.jpg", lambda: HTML, "not a readable image"),
    "SVG named .png": ("vector.png", lambda: SVG, "not a readable image"),
    "SVG named .svg": ("vector.svg", lambda: SVG, "not a readable image"),
    "PNG declaring 30000x30000": ("bomb.png", lambda: png_declaring(30000, 30000), "pixels"),
    "PNG declaring 10000x10000": ("big.png", lambda: png_declaring(10000, 10000), "pixels"),
    "truncated JPEG": ("cut.jpg", truncated_jpeg, "truncated or corrupt"),
}


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("case", UPLOADS, ids=list(UPLOADS))
def test_app_refuses_bad_upload(hosted, visitor, tmp_path, case):
    name, make, expected = UPLOADS[case]
    path = write(tmp_path / name, make())
    tag = marker()
    with pytest.raises(AppError) as info:
        visitor.predict(handle_file(str(path)), prompt=f"make it blue {tag}", api_name="/edit")
    assert expected in str(info.value)
    assert is_bilingual(str(info.value))
    assert hosted.requests_with(tag) == []


APP_BAD_FIELDS = {
    "size abc": {"size": "abc"},
    "size 0*0": {"size": "0*0"},
    "size 99999*1": {"size": "99999*1"},
    "size 1024*1024*1": {"size": "1024*1024*1"},
    "size -512*512": {"size": "-512*512"},
    "image file:///etc/passwd": {"image1": "file:///etc/passwd"},
    "image javascript:alert(1)": {"image1": "javascript:alert(1)"},
    "image ftp://x/y.png": {"image1": "ftp://x/y.png"},
    "image a server path": {"image1": "/etc/passwd"},
    "image a relative server path": {"image1": "examples/cat.jpg"},
    "image a data URI that is not an image": {"image1": "data:image/png;base64,iVBORw0KGgo="},
    "blank prompt": {"prompt": "   "},
    "model with a control character": {"model": "auto\x00"},
}


@pytest.mark.parametrize("case", APP_BAD_FIELDS, ids=list(APP_BAD_FIELDS))
def test_app_refuses_bad_field(hosted, visitor, tmp_path, case):
    tag = marker()
    image = handle_file(str(image_file(tmp_path / "ok.jpg")))
    fields = {"prompt": f"make it blue {tag}", "image1": image} | APP_BAD_FIELDS[case]
    with pytest.raises(AppError) as info:
        visitor.predict(api_name="/edit", **fields)
    assert is_bilingual(str(info.value))
    # the blank prompt's case cannot carry the tag
    assert hosted.requests_with(tag) == [] and hosted.blank_prompts() == []


def raw_call(hosted, data: list) -> str:
    """Call /edit with hand-written JSON (ASCII escapes, so a lone surrogate survives the trip;
    gradio_client cannot even encode one) and return the event stream."""
    headers = {"Content-Type": "application/json"}
    with httpx.Client(base_url=hosted.url, timeout=30) as http:
        event = http.post("/gradio_api/call/edit", content=json.dumps({"data": data}), headers=headers)
        return http.get(f"/gradio_api/call/edit/{event.json()['event_id']}").text


def uploaded(hosted, tmp_path) -> dict:
    with (
        httpx.Client(base_url=hosted.url, timeout=30) as http,
        open(image_file(tmp_path / "ok.jpg"), "rb") as handle,
    ):
        path = http.post("/gradio_api/upload", files={"files": ("ok.jpg", handle)}).json()[0]
    return {"path": path, "orig_name": "ok.jpg", "meta": {"_type": "gradio.FileData"}}


def completed(stream: str) -> list:
    assert "event: complete" in stream, stream
    return json.loads(stream.split("event: complete\ndata: ", 1)[1].splitlines()[0])


def test_app_api_cannot_name_a_server_file(hosted):
    """A raw API call naming a file that was never uploaded is refused by Gradio before the handler."""
    file_data = {"path": str(ROOT / "examples" / "cat.jpg"), "meta": {"_type": "gradio.FileData"}}
    tag = marker()
    stream = raw_call(hosted, [file_data, f"make it blue {tag}", None, None, "auto", "auto", None, None])
    assert "event: error" in stream and "event: complete" not in stream
    assert hosted.requests_with(tag) == []


def test_app_cuts_a_10000_character_prompt(hosted, visitor, tmp_path):
    upload = handle_file(str(image_file(tmp_path / "ok.jpg")))
    _, record = visitor.predict(upload, prompt="x" * 10_000, api_name="/edit")
    sidecar = hosted.sidecar(record["order_id"])
    assert sidecar["prompt"] == "x" * 800
    assert any("800" in note for note in sidecar["warnings"]) and record["warnings"] == sidecar["warnings"]


def test_app_cleans_control_characters_and_keeps_emoji(hosted, tmp_path):
    stream = raw_call(
        hosted,
        [uploaded(hosted, tmp_path), "换成狗🐶\x00\x1b 👩‍🚀\ud800", None, None, "auto", "auto", None, None],
    )
    record = completed(stream)[1]
    assert hosted.sidecar(record["order_id"])["prompt"] == "换成狗🐶 👩‍🚀"


def test_app_refuses_a_prompt_of_lone_surrogates(hosted, tmp_path):
    stream = raw_call(
        hosted, [uploaded(hosted, tmp_path), "\udfff\ud800 \ud800", None, None, "auto", "auto", None, None]
    )
    assert "event: error" in stream
    assert is_bilingual(json.loads(stream.split("data: ", 1)[1].splitlines()[0])["error"])
    assert hosted.blank_prompts() == []  # all surrogates: nothing of the prompt is left to tag


def test_app_edits_the_first_frame_of_an_animated_gif(hosted, visitor, tmp_path):
    upload = handle_file(str(write(tmp_path / "anim.gif", animated("GIF"))))
    _, record = visitor.predict(upload, prompt="keep it", api_name="/edit")
    saved = hosted.output_dir / hosted.sidecar(record["order_id"])["files"][0]
    assert reddish(Image.open(saved).convert("RGB").getpixel((10, 10)))
