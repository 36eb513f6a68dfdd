"""Abuse limits in a running app: edits per minute per session and per client address, the upload
size and the queue length, each with a clear message when hit."""

from __future__ import annotations

import base64
import json
import os
import time

import httpx
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from gradio_client.utils import QueueError
from helpers.apphost import image_file, is_bilingual, running_app
from helpers.tags import marker

pytestmark = [pytest.mark.app, pytest.mark.loopback]


@pytest.fixture(scope="module")
def upload(tmp_path_factory):
    return handle_file(str(image_file(tmp_path_factory.mktemp("upload") / "cat.jpg")))


def test_rate_limit_end_to_end(tmp_path, upload):
    with running_app(tmp_path, JUHE_RATE_LIMIT="2") as hosted:
        visitor = hosted.client(headers={"X-Forwarded-For": "198.51.100.1"})
        for n in range(2):
            visitor.predict(upload, prompt=f"rate {n}", api_name="/edit")
        tag = marker()
        with pytest.raises(AppError) as info:
            visitor.predict(upload, prompt=f"rate 3 {tag}", api_name="/edit")
        assert "Too many edits: at most 2 per minute" in str(info.value) and is_bilingual(str(info.value))
        # a new session with a forged X-Forwarded-For, from a peer that is not a trusted proxy
        forger = hosted.client(headers={"X-Forwarded-For": "198.51.100.2"})
        with pytest.raises(AppError, match="Too many edits"):
            forger.predict(upload, prompt=f"rate 4 {tag}", api_name="/edit")
        assert hosted.requests_with(tag) == []


def test_rate_limit_uses_forwarded_for_from_a_trusted_proxy(tmp_path, upload):
    with running_app(tmp_path, JUHE_RATE_LIMIT="1", JUHE_TRUSTED_PROXIES="127.0.0.1") as hosted:
        hosted.client(headers={"X-Forwarded-For": "203.0.113.1"}).predict(
            upload, prompt="p1", api_name="/edit"
        )
        again = hosted.client(headers={"X-Forwarded-For": "6.6.6.6, 203.0.113.1"})  # same visitor
        with pytest.raises(AppError, match="Too many edits"):
            again.predict(upload, prompt="p2", api_name="/edit")
        other = hosted.client(headers={"X-Forwarded-For": "203.0.113.2"})
        other.predict(upload, prompt="p3", api_name="/edit")


@pytest.fixture(scope="module")
def tight(tmp_path_factory):
    """One edit at a time and room for one waiting: the queue limit is easy to reach."""
    env = {"JUHE_QUEUE_SIZE": "1", "JUHE_CONCURRENCY": "1", "JUHE_MAX_UPLOAD": "100kb"}
    with running_app(tmp_path_factory.mktemp("limits"), **env) as running:
        yield running


def test_upload_over_the_limit_is_refused_with_413(tight, tmp_path):
    small = image_file(tmp_path / "small.jpg")
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(200_000))
    with httpx.Client(base_url=tight.url, timeout=30) as http:
        with open(big, "rb") as handle:
            refused = http.post("/gradio_api/upload", files={"files": ("big.png", handle)})
        with open(small, "rb") as handle:
            accepted = http.post("/gradio_api/upload", files={"files": ("small.jpg", handle)})
    assert refused.status_code == 413
    assert "maximum allowed size of 102400 bytes" in refused.text
    assert accepted.status_code == 200


def wait_for(job, *codes: str, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while job.status().code.name not in codes:
        assert time.monotonic() < deadline, f"job never reached {codes}: {job.status()}"
        time.sleep(0.02)


def test_queue_full_turns_extra_edits_away(tight, upload):
    visitor = tight.client()
    running = visitor.submit(upload, "[sim:slow=3] queue 1", api_name="/edit")
    wait_for(running, "PROCESSING", "PROGRESS")
    waiting = visitor.submit(upload, "queue 2", api_name="/edit")
    wait_for(waiting, "IN_QUEUE")
    extra = tight.client().submit(upload, "queue 3", api_name="/edit")
    with pytest.raises(QueueError, match="(?i)queue is full"):
        extra.result(timeout=30)
    # the queued ones are served normally
    assert running.result(timeout=30)[1]["order_id"]
    assert waiting.result(timeout=30)[1]["order_id"]
    assert not tight.requests_with("queue 3")


def test_a_waiting_visitor_is_told_their_place_every_second(tight, tmp_path):
    """Gradio's default told every waiting visitor their place each time an event started (and only
    then): tens of thousands of messages when hundreds join at once. Now it is once a second, so
    someone waiting behind a slow edit hears it while nothing starts."""
    visitor = tight.client()
    running = visitor.submit(
        handle_file(str(image_file(tmp_path / "a.jpg"))), "[sim:slow=3] ahead", api_name="/edit"
    )
    wait_for(running, "PROCESSING", "PROGRESS")
    picture = (
        "data:image/jpeg;base64," + base64.b64encode(image_file(tmp_path / "b.jpg").read_bytes()).decode()
    )
    fn_index = next(
        d["id"]
        for d in httpx.get(tight.url + "/config", timeout=30).json()["dependencies"]
        if d.get("api_name") == "edit"
    )
    join = {"data": [picture, "behind"], "fn_index": fn_index, "session_hash": "waiting-visitor"}
    with httpx.Client(base_url=tight.url, timeout=60) as http:
        assert http.post("/gradio_api/queue/join", json=join).status_code == 200
        places = 0
        with http.stream(
            "GET", "/gradio_api/queue/data", params={"session_hash": "waiting-visitor"}
        ) as stream:
            for line in stream.iter_lines():
                message = json.loads(line[5:]) if line.startswith("data:") else {}
                if message.get("msg") == "estimation":
                    places += 1
                if message.get("msg") in ("process_starts", "process_completed"):
                    break
    assert running.result(timeout=30)[1]["order_id"]
    assert places >= 2  # on joining, then at least once more while the edit ahead ran
