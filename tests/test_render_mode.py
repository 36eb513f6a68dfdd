"""The render mode is the app's choice, not the environment's (issue 17, part 1).

The Spaces image sets `GRADIO_SSR_MODE=true`. Under SSR the public port is a Node proxy that never
forwards `/share/...` and adds no `X-Forwarded-For`, so the app launches with `ssr_mode=False`. This
test starts `python app.py` as a user does, with that variable and a Node new enough for SSR (an older
Node would fall back to client-side rendering by itself and prove nothing), then checks through the
public port that a share link made by the page opens the share page and that two visitors are two.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from helpers.net import free_port

ROOT = Path(__file__).resolve().parent.parent
CAT = ROOT / "examples" / "cat.jpg"
START_S = 90  # a cold start imports Gradio on a shared two-core machine
SSR_NODE_MAJOR = 24  # Gradio's SSR needs Node 24+

pytestmark = [
    pytest.mark.app,
    pytest.mark.subprocess,
    pytest.mark.loopback,
    pytest.mark.slow,
    pytest.mark.timeout(240),
]


def node_major(path: str) -> int:
    try:
        version = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    found = re.match(r"v(\d+)\.", version.strip())
    return int(found.group(1)) if found else 0


def ssr_capable_node() -> str | None:
    """A Node that Gradio's SSR would really start with: GRADIO_NODE_PATH, the one Playwright ships
    in this virtualenv, or the one on PATH, whichever is 24 or newer first."""
    candidates = [os.environ.get("GRADIO_NODE_PATH"), shutil.which("node")]
    with contextlib.suppress(ImportError):
        import playwright

        candidates.insert(1, str(Path(playwright.__file__).parent / "driver" / "node"))
    return next((c for c in candidates if c and node_major(c) >= SSR_NODE_MAJOR), None)


@dataclass
class Launched:
    """`python app.py` running: its public address and everything it printed so far."""

    url: str
    lines: list[str]


@contextlib.contextmanager
def app_process(tmp: Path, node: str, **env: str) -> Iterator[Launched]:
    """Start `python app.py` in an empty folder (no `.env`) with Spaces' render setting; yield once it
    says where it runs and answers there."""
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("JUHE_", "GRADIO_", "SPACE_"))}
    environ.update(
        GRADIO_SSR_MODE="true",  # as the Spaces image sets it
        GRADIO_NODE_PATH=node,
        GRADIO_SERVER_NAME="127.0.0.1",
        GRADIO_SERVER_PORT=str(port),
        GRADIO_TEMP_DIR=str(tmp / "gradio"),
        GRADIO_ANALYTICS_ENABLED="False",
        HF_HUB_OFFLINE="1",
        PYTHONUNBUFFERED="1",
        JUHE_OUTPUT_DIR=str(tmp / "outputs"),
        JUHE_SIM_LATENCY="0",  # offline preview: no JUHE_API_KEY, the built-in simulator answers
        JUHE_MCP="0",
        **env,
    )
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "app.py")],
        cwd=tmp,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # a Node child, had SSR started, goes with the group
    )
    lines: list[str] = []
    arrived: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        for line in process.stdout:
            arrived.put(line)
        arrived.put(None)

    threading.Thread(target=read, daemon=True).start()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_S
        while not any("Running on local URL" in line for line in lines):
            line = arrived.get(timeout=max(0.1, deadline - time.monotonic()))
            assert line is not None, "app.py exited:\n" + "".join(lines)
            lines.append(line)
        while httpx.get(url + "/config", timeout=10).status_code != 200:  # startup events done
            assert time.monotonic() < deadline, "".join(lines)
        yield Launched(url, lines)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def visitor(url: str, source: str) -> httpx.Client:
    """A visitor whose connections come from the loopback address `source` (all of 127/8 is ours)."""
    return httpx.Client(
        base_url=url, timeout=60, trust_env=False, transport=httpx.HTTPTransport(local_address=source)
    )


def event_index(config: dict, elem_id: str) -> int:
    """The server event a click on the element `elem_id` runs (of several, the one taking the most
    inputs: a click may also run a small browser-side event first)."""
    target = next(c["id"] for c in config["components"] if c.get("props", {}).get("elem_id") == elem_id)
    clicks = [d for d in config["dependencies"] if [target, "click"] in d["targets"] and d.get("backend_fn")]
    return max(clicks, key=lambda d: len(d["inputs"]))["id"]


def run_event(http: httpx.Client, fn_index: int, session: str, data: list) -> dict:
    """Call one page event as the browser does (queue join, then the event stream); its output."""
    body = {"data": data, "fn_index": fn_index, "session_hash": session, "event_data": None}
    assert http.post("/gradio_api/queue/join", json=body).status_code == 200
    with http.stream("GET", "/gradio_api/queue/data", params={"session_hash": session}) as events:
        for line in events.iter_lines():
            message = json.loads(line[5:]) if line.startswith("data:") else {}
            if message.get("msg") == "process_completed":
                assert message.get("success"), message.get("output")
                return message["output"]
    raise AssertionError("the event never completed")


def share_link(http: httpx.Client, prompt: str) -> str:
    """Edit on the page and press Share, in one session, as a visitor in the browser does."""
    config = http.get("/config").json()
    with CAT.open("rb") as handle:
        [path] = http.post("/gradio_api/upload", files={"files": ("cat.jpg", handle)}).json()
    upload = {"path": path, "orig_name": "cat.jpg", "meta": {"_type": "gradio.FileData"}}
    session = uuid.uuid4().hex
    # 图1-图3, prompt, size, width, height, model, links 1-3, key, region; then the page's states
    # and the chain's parent
    edit = [
        upload,
        None,
        None,
        prompt,
        "auto",
        1024,
        1024,
        "auto",
        "",
        "",
        "",
        "",
        None,
        False,
        None,
        [],
        [],
        None,
        "1",  # variants
    ]
    run_event(http, event_index(config, "run"), session, edit)
    share = event_index(config, "share")
    shared = run_event(http, share, session, [None] * len(config["dependencies"][share]["inputs"]))
    [link] = re.findall(r"https?://[^\"\s]+/share/[\w-]+", json.dumps(shared))
    return link


def api_edit(http: httpx.Client, prompt: str) -> str:
    """One call of the public `edit` endpoint; the name of the event that ended it."""
    image = "data:image/jpeg;base64," + base64.b64encode(CAT.read_bytes()).decode()
    data = [image, prompt, None, None, "auto", "auto", None, None]  # every parameter, in order
    event = http.post("/gradio_api/call/edit", json={"data": data}).json()["event_id"]
    stream = http.get(f"/gradio_api/call/edit/{event}").text
    return re.findall(r"^event: (\w+)", stream, re.MULTILINE)[-1] + " " + stream


def test_spaces_render_setting_still_serves_share_pages_and_tells_visitors_apart(tmp_path):
    node = ssr_capable_node()
    if node is None:
        pytest.skip(f"no Node {SSR_NODE_MAJOR}+ here: SSR could not start, so there is nothing to turn off")
    with app_process(tmp_path, node, JUHE_RATE_LIMIT="1") as app:
        startup = "".join(app.lines)
        assert "SSR" not in startup, startup  # Gradio's line says "with SSR ⚡ (Node proxy ...)" when on
        assert f"Running on local URL:  {app.url}" in startup

        with visitor(app.url, "127.0.0.2") as first, visitor(app.url, "127.0.0.3") as second:
            prompt = f"render-mode {uuid.uuid4().hex[:8]}"
            link = share_link(first, prompt)  # the first visitor's one edit this minute
            assert link.startswith(app.url + "/share/"), link

            page = second.get(link.removeprefix(app.url))
            assert page.status_code == 200
            assert prompt in page.text and 'name="robots" content="noindex' in page.text
            assert "gradio_config" not in page.text  # the share page, not the app's page

            refused = api_edit(first, "again")
            assert refused.startswith("error ") and "Too many edits" in refused
            accepted = api_edit(second, "another visitor")
            assert accepted.startswith("complete "), accepted
