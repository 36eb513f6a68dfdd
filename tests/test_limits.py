"""Abuse limits: edits per minute per session and per client address (X-Forwarded-For only from
trusted proxies), the upload size and the queue length, read from the environment with safe
defaults, and each with a clear message when hit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from app_host import hosted_app, image_file, is_bilingual
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from gradio_client.utils import QueueError

import app
from webapp.limits import RateLimiter, client_address, forwarded_allow_ips, parse_trusted_proxies

ROOT = Path(__file__).resolve().parent.parent

# --- RateLimiter -------------------------------------------------------------------------------


def test_limit_zero_is_off():
    limiter = RateLimiter(0)
    assert all(limiter.retry_after("session:s", "address:a", now=0.0) == 0 for _ in range(1000))


def test_limit_allows_n_per_window_then_says_how_long_to_wait():
    limiter = RateLimiter(3)
    assert [limiter.retry_after("k", now=t) for t in (0.0, 1.0, 2.0)] == [0, 0, 0]
    assert limiter.retry_after("k", now=3.0) == pytest.approx(57.0)
    assert limiter.retry_after("k", now=59.0) == pytest.approx(1.0)


def test_window_slides_and_refusals_are_not_counted():
    limiter = RateLimiter(2)
    limiter.retry_after("k", now=0.0)
    limiter.retry_after("k", now=10.0)
    for t in (11.0, 20.0, 59.0):  # refused: must not push the window further out
        assert limiter.retry_after("k", now=t) > 0
    assert limiter.retry_after("k", now=60.5) == 0  # the hit at 0 has left the window
    assert limiter.retry_after("k", now=61.0) == pytest.approx(9.0)  # hits at 10 and 60.5


def test_any_key_over_the_limit_refuses_and_records_nothing():
    limiter = RateLimiter(2)
    assert limiter.retry_after("session:1", "address:x", now=0.0) == 0
    assert limiter.retry_after("session:2", "address:x", now=1.0) == 0
    assert limiter.retry_after("session:3", "address:x", now=2.0) > 0  # a new session, same address
    assert limiter.retry_after("session:3", "address:y", now=3.0) == 0  # session 3 was not charged
    assert limiter.retry_after("session:3", "address:y", now=4.0) == 0
    assert limiter.retry_after("session:3", "address:z", now=5.0) > 0  # now session 3 is over


def test_old_keys_are_forgotten():
    limiter = RateLimiter(1)
    for n in range(1000):
        limiter.retry_after(f"address:{n}", now=0.0)
    limiter.retry_after("address:new", now=61.0)
    assert len(limiter._hits) == 1  # memory stays bounded by the visitors of the last minute


def test_limit_holds_under_concurrency():
    limiter = RateLimiter(50)
    allowed = []
    barrier = threading.Barrier(8)

    def hammer():
        barrier.wait()
        allowed.extend(1 for _ in range(100) if limiter.retry_after("address:a", now=0.0) == 0)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(allowed) == 50


# --- client addresses ----------------------------------------------------------------------------

ADDRESSES = [
    # peer, X-Forwarded-For, trusted proxies, the visitor's address
    ("203.0.113.5", None, [], "203.0.113.5"),
    ("203.0.113.5", "1.2.3.4", [], "203.0.113.5"),
    ("203.0.113.5", "1.2.3.4", ["10.0.0.0/8"], "203.0.113.5"),
    ("10.0.0.2", "1.2.3.4", ["10.0.0.0/8"], "1.2.3.4"),
    ("10.0.0.2", "6.6.6.6, 1.2.3.4", ["10.0.0.0/8"], "1.2.3.4"),
    ("10.0.0.2", "1.2.3.4, 10.0.0.9", ["10.0.0.0/8"], "1.2.3.4"),
    ("10.0.0.2", "10.0.0.7, 10.0.0.9", ["10.0.0.0/8"], "10.0.0.2"),
    ("10.0.0.2", "", ["10.0.0.0/8"], "10.0.0.2"),
    ("10.0.0.2", "garbage, 1.2.3.4", ["10.0.0.0/8"], "1.2.3.4"),
    ("::1", "2001:db8::1", ["::1"], "2001:db8::1"),
    (None, "1.2.3.4", [], "unknown"),
]


@pytest.mark.parametrize(("peer", "forwarded", "proxies", "expected"), ADDRESSES)
def test_client_address(peer, forwarded, proxies, expected):
    assert client_address(peer, forwarded, proxies) == expected


def test_trusted_proxies_are_checked_when_read():
    assert parse_trusted_proxies(" 10.0.0.0/8, 192.168.1.1 ,::1,") == ["10.0.0.0/8", "192.168.1.1", "::1"]
    assert parse_trusted_proxies("") == []
    with pytest.raises(ValueError, match="'proxy.local' is not an IP address"):
        parse_trusted_proxies("10.0.0.1, proxy.local")


def test_uvicorn_is_told_the_same_proxies():
    assert forwarded_allow_ips([]) == ""
    assert forwarded_allow_ips(["10.0.0.1", "10.1.2.3/8", "::1"]) == "10.0.0.1/32,10.0.0.0/8,::1/128"


# --- settings from the environment ---------------------------------------------------------------

READ_SETTINGS = """
import importlib, json, os
import app

def settings():
    return {"rate": app.RATE_LIMIT, "limiter": app.limiter.limit, "queue": app.QUEUE_SIZE,
            "upload": app.launch_options()["max_file_size"], "proxies": app.TRUSTED_PROXIES,
            "uvicorn": os.environ.get("FORWARDED_ALLOW_IPS")}

out = {"set": settings()}
for name in ("JUHE_RATE_LIMIT", "JUHE_QUEUE_SIZE", "JUHE_MAX_UPLOAD", "JUHE_TRUSTED_PROXIES",
             "FORWARDED_ALLOW_IPS"):
    os.environ.pop(name, None)
importlib.reload(app)
out["default"] = settings()
os.environ["JUHE_TRUSTED_PROXIES"] = "proxy.local"
try:
    importlib.reload(app)
except ValueError as exc:
    out["bad"] = str(exc)
print(json.dumps(out))
"""


def test_settings_come_from_the_environment_with_safe_defaults(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUHE_") and k != "FORWARDED_ALLOW_IPS"}
    env.update(
        JUHE_RATE_LIMIT="7",
        JUHE_QUEUE_SIZE="3",
        JUHE_MAX_UPLOAD="1mb",
        JUHE_TRUSTED_PROXIES="10.0.0.0/8",
        GRADIO_ANALYTICS_ENABLED="False",
        GRADIO_TEMP_DIR=str(tmp_path / "gradio"),
        PYTHONPATH=str(ROOT),
    )
    run = subprocess.run(
        [sys.executable, "-c", READ_SETTINGS],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["set"] == {
        "rate": 7,
        "limiter": 7,
        "queue": 3,
        "upload": "1mb",
        "proxies": ["10.0.0.0/8"],
        "uvicorn": "10.0.0.0/8",
    }
    assert out["default"] == {
        "rate": 0,  # off unless set: see the README's advice for public deployments
        "limiter": 0,
        "queue": 64,
        "upload": "20mb",
        "proxies": [],
        "uvicorn": "",  # uvicorn would otherwise trust X-Forwarded-For from 127.0.0.1
    }
    assert "JUHE_TRUSTED_PROXIES: 'proxy.local'" in out["bad"]


# --- end to end ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hosted(tmp_path_factory):
    """One request at a time and room for one waiting: the queue limit is easy to reach."""
    constants = {"QUEUE_SIZE": 1, "CONCURRENCY": 1, "MAX_UPLOAD": "100kb"}
    with hosted_app(tmp_path_factory.mktemp("limits"), constants=constants) as running:
        yield running


@pytest.fixture(scope="module")
def upload(tmp_path_factory):
    return handle_file(str(image_file(tmp_path_factory.mktemp("upload") / "cat.jpg")))


@pytest.fixture
def rate_limit(monkeypatch):
    """Turn the app's limit to 2 edits a minute for this test (the handler reads these per call)."""

    def set_limit(limit: int, proxies: list[str]) -> None:
        monkeypatch.setattr(app, "RATE_LIMIT", limit)
        monkeypatch.setattr(app, "limiter", RateLimiter(limit))
        monkeypatch.setattr(app, "TRUSTED_PROXIES", proxies)

    return set_limit


def test_rate_limit_end_to_end(hosted, upload, rate_limit):
    rate_limit(2, [])
    visitor = hosted.client(headers={"X-Forwarded-For": "198.51.100.1"})
    for n in range(2):
        visitor.predict(upload, prompt=f"rate {n}", api_name="/edit")
    before = hosted.sent()
    with pytest.raises(AppError) as info:
        visitor.predict(upload, prompt="rate 3", api_name="/edit")
    assert "Too many edits: at most 2 per minute" in str(info.value) and is_bilingual(str(info.value))
    # a new session with a forged X-Forwarded-For, from a peer that is not a trusted proxy
    forger = hosted.client(headers={"X-Forwarded-For": "198.51.100.2"})
    with pytest.raises(AppError, match="Too many edits"):
        forger.predict(upload, prompt="rate 4", api_name="/edit")
    assert hosted.sent() == before


def test_rate_limit_uses_forwarded_for_from_a_trusted_proxy(hosted, upload, rate_limit):
    rate_limit(1, ["127.0.0.1"])
    hosted.client(headers={"X-Forwarded-For": "203.0.113.1"}).predict(upload, prompt="p1", api_name="/edit")
    again = hosted.client(headers={"X-Forwarded-For": "6.6.6.6, 203.0.113.1"})  # new session, same visitor
    with pytest.raises(AppError, match="Too many edits"):
        again.predict(upload, prompt="p2", api_name="/edit")
    other = hosted.client(headers={"X-Forwarded-For": "203.0.113.2"})
    other.predict(upload, prompt="p3", api_name="/edit")


def test_upload_over_the_limit_is_refused_with_413(hosted, tmp_path):
    small = image_file(tmp_path / "small.jpg")
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(200_000))
    with httpx.Client(base_url=hosted.url, timeout=30) as http:
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


def test_queue_full_turns_extra_edits_away(hosted, upload):
    visitor = hosted.client()
    running = visitor.submit(upload, None, None, "[sim:slow=3] queue 1", api_name="/edit")
    wait_for(running, "PROCESSING", "PROGRESS")
    waiting = visitor.submit(upload, None, None, "queue 2", api_name="/edit")
    wait_for(waiting, "IN_QUEUE")
    extra = hosted.client().submit(upload, None, None, "queue 3", api_name="/edit")
    with pytest.raises(QueueError, match="(?i)queue is full"):
        extra.result(timeout=30)
    # the queued ones are served normally
    assert running.result(timeout=30)[2].startswith("✅")
    assert waiting.result(timeout=30)[2].startswith("✅")
    assert not [r for r in hosted.sim.stats()["requests"] if r["text"] == "queue 3"]
