"""The guards in a running app (issue 10): the gate refuses a file link in every event before anything
is fetched, no relaying of remote files, capped request bodies, upload and login budgets per visitor,
the daily spend cap, the Spaces defaults and the cache sweep. The same guards on their own are in
test_gate.py, test_middleware.py and test_patches.py.

Outbound HTTP of this process goes to a loopback `probe` (see `linkprobe`), so a fetch the guards
failed to stop would show as a hit there, and nothing leaves the machine either way.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from helpers.apphost import RunningApp, image_file, is_bilingual, running_app
from helpers.paths import CAT
from helpers.tags import marker
from mcp import ClientSession
from mcp.client.streamable_http import streamablehttp_client

from webapp.middleware.bodies import PAGE_BODY, max_request_body
from webapp.middleware.logins import LOGIN_FAILURES
from webapp.spend import SPEND_FILE
from webapp.sweep import CacheSweep, kept_files

pytestmark = [pytest.mark.app, pytest.mark.loopback, pytest.mark.timeout(180)]

GATE_REFUSED = "not one the page sends"
DAY = 24 * 3600


@pytest.fixture(scope="module")
def hosted(tmp_path_factory, provider):
    with running_app(tmp_path_factory.mktemp("guards"), provider=provider, JUHE_MCP="1") as app:
        yield app


@pytest.fixture(scope="module")
def visitor(hosted):
    """A gradio_client visitor, made before the probe: huggingface_hub looks something up on
    huggingface.co for the first client of a process, which is no fetch of the app's."""
    return hosted.client()


def link_file(link: str) -> dict:
    return {"path": link, "orig_name": "photo.png", "meta": {"_type": "gradio.FileData"}}


def call_event(app: RunningApp, dependency: dict, data: list) -> str:
    """Call one event the way the page does, by `fn_index`: through the queue (`/queue/join` and
    the event stream) or, for an unqueued event, `/run/predict`; return the error it ended with."""
    session = uuid.uuid4().hex
    body = {"data": data, "fn_index": dependency["id"], "session_hash": session, "event_data": None}
    with httpx.Client(base_url=app.url, timeout=60) as http:
        if not dependency["queue"]:
            answer = http.post("/gradio_api/run/predict", json=body)
            return answer.json().get("error") or ""
        assert http.post("/gradio_api/queue/join", json=body).status_code == 200
        with http.stream("GET", "/gradio_api/queue/data", params={"session_hash": session}) as events:
            for line in events.iter_lines():
                message = json.loads(line[5:]) if line.startswith("data:") else {}
                if message.get("msg") == "process_completed":
                    return message["output"].get("error") or ""
    raise AssertionError("the event never completed")


def events_taking_values(app: RunningApp) -> list[tuple[dict, int, str]]:
    """Every event of the page and the API with an input a visitor can fill: (event, input index,
    the input's component type)."""
    config = httpx.get(app.url + "/config", timeout=30).json()
    kinds = {component["id"]: component["type"] for component in config["components"]}
    chosen = []
    for dependency in config["dependencies"]:
        slots = [n for n, block in enumerate(dependency["inputs"]) if kinds[block] != "state"]
        if slots:
            chosen.append((dependency, slots[0], kinds[dependency["inputs"][slots[0]]]))
    return chosen


# --- H1: no event makes the server fetch a visitor's link ------------------------------------------


def test_every_event_refuses_a_file_link_before_fetching(hosted, probe):
    events = events_taking_values(hosted)
    names = {dependency["api_name"] for dependency, _, _ in events}
    # the public API, the run button, the upload checks, JS-only events (the counter) and the examples
    assert {"edit", "edit_image", "accept_upload", "load_example", "restore_history"} <= names
    assert any(name.startswith("js_fn") for name in names)
    for dependency, slot, kind in events:
        data = [None] * len(dependency["inputs"])
        data[slot] = link_file(probe.link(f"{dependency['api_name']}.png"))
        error = call_event(hosted, dependency, data)
        if kind == "browserstate":  # the browser's list of ids: anything but short strings is dropped
            assert GATE_REFUSED not in error, (dependency["api_name"], error)
            continue
        assert GATE_REFUSED in error and is_bilingual(error), (dependency["api_name"], kind, error)
    assert probe.hits == []
    assert hosted.blank_prompts() == []  # these calls carry no prompt, so no tag


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_handle_file_of_a_link_is_refused_through_gradio_client(hosted, visitor, probe, scheme):
    tag = marker()
    with pytest.raises(AppError) as info:
        visitor.predict(handle_file(probe.link("cat.png", scheme)), prompt=f"x {tag}", api_name="/edit")
    assert "send links as plain strings" in str(info.value) and is_bilingual(str(info.value))
    assert probe.hits == [] and hosted.requests_with(tag) == []


def test_a_plain_link_still_reaches_the_provider_unfetched(hosted, visitor, probe):
    tag = marker()
    _, record = visitor.predict(probe.link("cat.png"), prompt=f"by link {tag}", api_name="/edit")
    assert record["order_id"] and hosted.requests_with(tag)[0]["images"] == 1
    assert probe.hits == []  # handed to the provider, never fetched here


def test_an_mcp_file_object_is_refused(hosted, probe):
    """MCP checks arguments against the tool's schema (strings) before Gradio sees them."""

    async def call():
        async with (
            streamablehttp_client(hosted.url + "/gradio_api/mcp/") as (read, write, _),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            image = link_file(probe.link("mcp.png"))
            return await session.call_tool("edit", {"image1": image, "prompt": "x"})

    result = asyncio.run(call())
    assert result.isError and "is not of type 'string'" in result.content[0].text
    assert probe.hits == []


# --- M1: no relaying of remote files -----------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/gradio_api/file=http://203.0.113.10/big.bin",
        "/gradio_api/file=https%3A%2F%2F203.0.113.10%2Fbig.bin",
        "/gradio_api/file/https://203.0.113.10/big.bin",
        "/gradio_api/proxy=https://owner-space.hf.space/file=x",
    ],
)
def test_the_file_route_relays_nothing(hosted, probe, path):
    with httpx.Client(base_url=hosted.url, timeout=30) as http:
        for method in ("GET", "HEAD"):
            answer = http.request(method, path)
            assert answer.status_code == 403
    assert "This server does not relay remote files" in httpx.get(hosted.url + path).text
    assert probe.hits == []


# --- 6: request bodies -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small(tmp_path_factory, provider):
    """JUHE_MAX_UPLOAD at its least, so the body cap is about 1 MiB."""
    with running_app(
        tmp_path_factory.mktemp("small"), provider=provider, JUHE_MCP="1", JUHE_MAX_UPLOAD="1kb"
    ) as app:
        yield app


def streamed(size: int):
    sent = 0
    while sent < size:
        yield b" " * 65536
        sent += 65536


@pytest.mark.parametrize("path", ["/gradio_api/mcp/", "/gradio_api/queue/join", "/gradio_api/call/edit"])
def test_an_oversized_body_is_refused_with_413(small, path):
    cap = max_request_body(small.settings.max_upload_bytes)
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    with httpx.Client(base_url=small.url, timeout=30) as http:
        sized = http.post(path, content=b" " * (cap + 1), headers=headers)
        chunked = http.post(path, content=streamed(4 * cap), headers=headers)
    assert sized.status_code == 413 and chunked.status_code == 413
    assert is_bilingual(sized.text) and "too large" in sized.text


def test_a_page_event_body_over_a_megabyte_is_refused_and_the_edit_endpoint_takes_it(hosted):
    headers = {"Content-Type": "application/json"}
    body = json.dumps({"data": ["x" * PAGE_BODY], "fn_index": 0, "session_hash": "s"})
    with httpx.Client(base_url=hosted.url, timeout=30) as http:
        page = http.post("/gradio_api/queue/join", content=body, headers=headers)
        edit = http.post(
            "/gradio_api/call/edit", content=json.dumps({"data": ["x" * PAGE_BODY]}), headers=headers
        )
    assert page.status_code == 413 and "at most 1 MB" in page.text and is_bilingual(page.text)
    assert edit.status_code == 200 and "event_id" in edit.json()


def test_an_mcp_call_within_the_cap_works(small):
    uri = "data:image/jpeg;base64," + base64.b64encode(CAT.read_bytes()).decode()
    assert len(uri) < max_request_body(small.settings.max_upload_bytes)

    async def call():
        async with (
            streamablehttp_client(small.url + "/gradio_api/mcp/") as (read, write, _),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            return await session.call_tool("edit", {"image1": uri, "prompt": "within the cap"})

    assert not asyncio.run(call()).isError


# --- M2: uploads per visitor -------------------------------------------------------------------------


def upload(app: RunningApp, address: str, name: str = "a.png", data: bytes = b"\x89PNG" + b"0" * 100):
    headers = {"X-Forwarded-For": address}
    return httpx.post(
        app.url + "/gradio_api/upload", files={"files": (name, data)}, headers=headers, timeout=30
    )


def test_uploads_count_against_a_budget_per_visitor(tmp_path, provider):
    env = {"JUHE_RATE_LIMIT": "1", "JUHE_TRUSTED_PROXIES": "127.0.0.1", "JUHE_MAX_UPLOAD": "100kb"}
    with running_app(tmp_path, provider=provider, **env) as app:
        assert [upload(app, "203.0.113.1", f"{n}.png").status_code for n in range(10)] == [200] * 10
        refused = upload(app, "203.0.113.1")
        assert refused.status_code == 429 and is_bilingual(refused.text)
        assert "at most 10 files and 400 KB per minute" in refused.text
        assert 1 <= int(refused.headers["Retry-After"]) <= 61
        assert upload(app, "203.0.113.2").status_code == 200  # another visitor
        big = upload(app, "203.0.113.3", "big.png", b"\x89PNG" + b"0" * 90_000)
        assert big.status_code == 200
        for _ in range(3):
            upload(app, "203.0.113.3", "big.png", b"\x89PNG" + b"0" * 90_000)
        assert upload(app, "203.0.113.3", "big.png", b"\x89PNG" + b"0" * 90_000).status_code == 429


def test_uploads_are_not_budgeted_without_limits(hosted):
    assert [upload(hosted, "203.0.113.1", f"{n}.png").status_code for n in range(12)] == [200] * 12


# --- M3: failed logins -------------------------------------------------------------------------------


def login(app: RunningApp, address: str, password: str) -> httpx.Response:
    headers = {"X-Forwarded-For": address}
    return httpx.post(
        app.url + "/login", data={"username": "anyone", "password": password}, headers=headers, timeout=30
    )


def test_failed_logins_are_throttled_per_address(tmp_path, provider):
    env = {"JUHE_ACCESS_PASSWORD": "pw-right", "JUHE_TRUSTED_PROXIES": "127.0.0.1"}
    with running_app(tmp_path, provider=provider, **env) as app:
        wrong = [login(app, "203.0.113.66", f"guess-{n}").status_code for n in range(LOGIN_FAILURES)]
        assert wrong == [400] * LOGIN_FAILURES
        blocked = login(app, "203.0.113.66", "guess")
        assert blocked.status_code == 429 and blocked.headers["Retry-After"] == "60"
        assert is_bilingual(blocked.text) and "Too many failed logins" in blocked.text
        assert login(app, "203.0.113.66", "pw-right").status_code == 429  # the attacker's address waits
        assert login(app, "203.0.113.5", "pw-right").status_code == 200  # anyone else logs in
        assert login(app, "203.0.113.6", "pw-righ").status_code == 400


# --- 5: the daily spend cap --------------------------------------------------------------------------


def test_the_daily_limit_holds_across_a_burst_and_a_restart(tmp_path, provider):
    tag = marker()
    with running_app(tmp_path, provider=provider, JUHE_DAILY_LIMIT="3", JUHE_CONCURRENCY="8") as app:
        upload_file = handle_file(str(image_file(tmp_path / "cat.jpg")))

        def edit(n: int):
            try:
                return app.client().predict(upload_file, prompt=f"burst {n} {tag}", api_name="/edit")
            except AppError as exc:
                return str(exc)

        with ThreadPoolExecutor(8) as pool:
            outcomes = list(pool.map(edit, range(8)))
        refusals = [o for o in outcomes if isinstance(o, str)]
        assert len(refusals) == 5 and all("daily quota of 3 edits is used up" in r for r in refusals)
        assert all(is_bilingual(r) and "Advanced" in r for r in refusals)
        assert len(app.requests_with(tag)) == 3
        # a visitor's own key is neither counted nor refused
        own = app.client().predict(
            upload_file, prompt=f"own key {tag}", api_key="sk-visitor-42", api_name="/edit"
        )
        assert own[1]["order_id"]
        saved = json.loads((app.output_dir / SPEND_FILE).read_text())
        assert saved["used"] == 3 and saved["day"] == time.strftime("%Y-%m-%d", time.gmtime())
    with running_app(tmp_path, provider=provider, JUHE_DAILY_LIMIT="3") as again:
        with pytest.raises(AppError, match="daily quota"):
            again.client().predict(upload_file, prompt=f"after restart {tag}", api_name="/edit")
        assert len(again.requests_with(tag)) == 4  # the three, and the visitor's own


def test_the_page_says_the_quota_is_used_up(tmp_path, provider):
    with running_app(tmp_path, provider=provider, JUHE_DAILY_LIMIT="1") as app:
        app.client().predict(handle_file(str(CAT)), prompt="the one", api_name="/edit")
        path = httpx.post(
            app.url + "/gradio_api/upload", files={"files": ("cat.jpg", CAT.read_bytes())}, timeout=30
        ).json()[0]
        run = next(d for d, _, _ in events_taking_values(app) if d["api_name"] == "edit_image")
        data = [None] * len(run["inputs"])
        data[0], data[3] = {**link_file(path), "orig_name": "cat.jpg"}, "make it blue"
        error = call_event(app, run, data)
    assert "日" in error and "daily quota of 1 edits is used up" in error and is_bilingual(error)


def test_the_offline_preview_is_not_capped(tmp_path):
    with running_app(tmp_path, live=False, JUHE_DAILY_LIMIT="1") as app:
        visitor = app.client()
        for n in range(3):
            assert visitor.predict(handle_file(str(CAT)), prompt=f"sim {n}", api_name="/edit")[1]["simulated"]
        assert not (app.output_dir / SPEND_FILE).exists()


# --- 5: on a Space ---------------------------------------------------------------------------------


def edit_from(app: RunningApp, address: str, prompt: str):
    visitor = app.client(headers={"X-Forwarded-For": address})
    return visitor.predict(handle_file(str(CAT)), prompt=prompt, api_name="/edit")


def test_a_space_limits_each_visitor_by_default(tmp_path, provider, caplog):
    with (
        caplog.at_level(logging.WARNING),
        running_app(tmp_path, provider=provider, SPACE_ID="me/demo") as app,
    ):
        assert app.settings.rate_limit == 10
        assert sum("at most 10 edits per minute per visitor" in r.getMessage() for r in caplog.records) == 1
        for n in range(10):  # a new session each time: the address is what counts
            edit_from(app, "203.0.113.7", f"space {n}")
        with pytest.raises(AppError, match="Too many edits"):
            edit_from(app, "203.0.113.7", "space 11")
        with pytest.raises(AppError, match="Too many edits"):  # a forged left-most hop changes nothing
            edit_from(app, "198.51.100.1, 203.0.113.7", "space 12")
        edit_from(app, "203.0.113.8", "another visitor")


def test_no_space_default_without_a_server_key_or_with_a_set_limit(tmp_path, provider, caplog):
    with caplog.at_level(logging.WARNING), running_app(tmp_path / "a", live=False, SPACE_ID="me/demo") as app:
        assert app.settings.rate_limit == 0
    with running_app(tmp_path / "b", provider=provider, SPACE_ID="me/demo", JUHE_RATE_LIMIT="0") as app:
        assert app.settings.rate_limit == 0
    assert "per visitor" not in caplog.text


def test_behind_an_untrusted_proxy_limits_are_per_session_not_global(tmp_path, provider):
    env = {"SPACE_ID": "me/demo", "JUHE_RATE_LIMIT": "1", "JUHE_TRUSTED_PROXIES": "10.9.9.9"}
    with running_app(tmp_path, provider=provider, **env) as app:
        first = app.client(headers={"X-Forwarded-For": "203.0.113.7"})
        first.predict(handle_file(str(CAT)), prompt="one", api_name="/edit")
        with pytest.raises(AppError, match="Too many edits"):
            first.predict(handle_file(str(CAT)), prompt="two", api_name="/edit")
        # the same proxy address, another visitor: not locked out by the first
        edit_from(app, "203.0.113.8", "someone else")


# --- M2: the cache sweep in a running app --------------------------------------------------------------


def sweeps_running() -> int:
    return sum(thread.name == "cache-sweep" for thread in threading.enumerate())


def test_the_sweep_runs_with_the_app_and_keeps_what_the_app_needs(tmp_path, provider):
    before = sweeps_running()
    with running_app(tmp_path, provider=provider) as app:
        assert sweeps_running() == before + 1
        path = upload(app, "203.0.113.1").json()[0]
        _, record = app.client().predict(handle_file(str(CAT)), prompt="kept", api_name="/edit")
        examples = kept_files(app.demo)
        assert examples
        sweep = CacheSweep(
            app.temp_dir,
            DAY,
            keep=lambda: kept_files(app.demo),
            skip=[app.output_dir],
            clock=lambda: time.time() + 2 * DAY,
        )
        removed, _ = sweep.sweep()
        assert removed >= 2
        assert not Path(path).exists()
        shown = record["images"][0].split("file=", 1)[1]
        assert not httpx.get(app.url + "/gradio_api/file=" + shown, timeout=30).is_success
        assert all(Path(example).exists() for example in examples)
        assert app.sidecar(record["order_id"])["files"]  # saved results are untouched
        assert all((app.output_dir / f).exists() for f in app.sidecar(record["order_id"])["files"])
    deadline = time.monotonic() + 10
    while sweeps_running() > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sweeps_running() == before
