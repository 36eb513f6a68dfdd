"""The edit processes (`webapp.edit_processes`): the client's calls run in child processes and come
back as the client's own answers, stages and errors; a cancel and a child that dies are told
plainly and lose nothing the caller was told about."""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import signal
import threading
import time

import pytest
from helpers.paths import CAT
from PIL import Image

from juhe import AsyncImageEditClient, ContentRejectedError, EditResult, HTTPStatusError, Settings
from juhe.simulator import Simulator
from webapp.backend import Backend
from webapp.edit_processes import (
    CANCEL_WAIT_S,
    EditProcessError,
    EditProcesses,
    ProcessClient,
    _pickled_error,
    _Server,
)
from webapp.settings import AppSettings, SettingsError

pytestmark = [pytest.mark.timeout(120)]


@pytest.fixture
def provider():
    with Simulator(latency=0.0) as simulator:
        yield simulator


@pytest.fixture
def processes():
    pool = EditProcesses(2)
    yield pool
    pool.close()


def client_of(processes: EditProcesses, provider: Simulator) -> ProcessClient:
    return ProcessClient(processes, Settings(api_key="k-children", api_url=provider.url), 8)


def children(processes: EditProcesses) -> list:
    return [child for child in processes._children if child is not None and not child.gone]


async def until(condition, timeout: float = 30.0) -> None:
    """Wait (polling the loop) until `condition()` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        await asyncio.sleep(0.01)


@pytest.mark.loopback
def test_an_edit_and_its_download_run_in_a_child(processes, provider, tmp_path, monkeypatch):
    async def broken(*args, **kwargs):
        raise AssertionError("the client in the app's own process was called")

    # the app's process cannot edit or download at all: the answers must come from a child
    monkeypatch.setattr(AsyncImageEditClient, "edit", broken)
    monkeypatch.setattr(AsyncImageEditClient, "download", broken)
    client = client_of(processes, provider)
    stages: list[str] = []

    async def run() -> tuple[EditResult, list]:
        result = await client.edit("把猫换成狗", [CAT], "1024*1024", on_stage=stages.append)
        return result, await client.download(result, tmp_path / "out")

    result, paths = asyncio.run(run())
    assert stages == ["preparing", "waiting"]
    assert result.order_id and result.prompt == "把猫换成狗" and result.size == "1024*1024"
    assert [p.parent for p in paths] == [tmp_path / "out"]
    with Image.open(paths[0]) as image:
        assert image.size == (1024, 1024)
    sidecar = json.loads(paths[0].with_suffix(".json").read_text())
    assert sidecar["order_id"] == result.order_id and sidecar["files"] == [paths[0].name]
    [child] = children(processes)
    assert child.process.pid != os.getpid() and child.process.is_alive()
    assert len(provider.stats()["arrivals"]) == 1


@pytest.mark.loopback
def test_the_clients_errors_come_back_as_themselves(processes, provider, tmp_path):
    client = client_of(processes, provider)

    async def run(prompt: str) -> Exception:
        with pytest.raises(Exception) as caught:
            await client.edit(prompt, [CAT])
        return caught.value

    rejected = asyncio.run(run("[sim:282504] 换个背景"))
    assert type(rejected) is ContentRejectedError and rejected.code == 282504
    status = asyncio.run(run("[sim:http502] 换个背景"))
    assert type(status) is HTTPStatusError and status.status_code == 502
    assert "k-children" not in str(status)
    invalid = asyncio.run(run("   "))  # refused in the child before any request
    assert invalid.kind == "invalid"
    assert len(provider.stats()["arrivals"]) == 2


@pytest.mark.loopback
def test_a_cancelled_call_reports_its_stages_before_the_cancel_goes_on(processes, provider):
    client = client_of(processes, provider)
    provider.state.queued.append("slow=30")
    stages: list[str] = []

    async def run() -> float:
        task = asyncio.create_task(client.edit("换个背景", [CAT], on_stage=stages.append))
        await until(lambda: provider.stats()["arrivals"])
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        took = time.monotonic() - started
        # the child is free for the next call at once: its cancelled request is gone
        again = await client.edit("再换一次", [CAT])
        return took, again

    took, again = asyncio.run(run())
    assert stages == ["preparing", "waiting"]  # the edit was sent, and the caller was told so
    assert took < CANCEL_WAIT_S
    assert again.order_id


@pytest.mark.loopback
def test_a_child_that_dies_fails_its_calls_and_the_next_call_starts_another(processes, provider):
    client = client_of(processes, provider)
    provider.state.queued.append("slow=30")
    stages: list[str] = []

    async def run() -> tuple[Exception, int, EditResult]:
        task = asyncio.create_task(client.edit("换个背景", [CAT], on_stage=stages.append))
        await until(lambda: provider.stats()["arrivals"])
        [child] = children(processes)
        os.kill(child.process.pid, signal.SIGKILL)  # out of memory, say
        with pytest.raises(EditProcessError) as caught:
            await task
        return caught.value, child.process.pid, await client.edit("再换一次", [CAT])

    error, dead, again = asyncio.run(run())
    assert "stopped" in str(error) and "may have been sent" in str(error)
    assert "-9" in error.detail or "code -9" in str(error)
    assert stages == ["preparing", "waiting"]  # what it told before dying stands
    assert again.order_id
    assert [child.process.pid for child in children(processes)] != [dead]


@pytest.mark.loopback
def test_calls_go_to_the_child_with_the_fewest_in_flight(processes, provider):
    client = client_of(processes, provider)
    provider.state.queued.extend(["slow=1"] * 4)

    async def run() -> list[int]:
        tasks = [asyncio.create_task(client.edit(f"第 {n} 张", [CAT])) for n in range(4)]
        await until(lambda: len(provider.stats()["arrivals"]) == 4)
        loads = sorted(len(child.calls) for child in children(processes))
        await asyncio.gather(*tasks)
        return loads

    assert asyncio.run(run()) == [2, 2]


@pytest.mark.loopback
def test_close_ends_the_children_and_refuses_later_calls(provider):
    processes = EditProcesses(2)
    processes.start()
    started = children(processes)
    assert len(started) == 2
    provider.state.queued.extend(["slow=0.5"] * 2)

    async def both() -> None:  # each child answers one: both are up and serving
        client = client_of(processes, provider)
        await asyncio.gather(client.edit("一", [CAT]), client.edit("二", [CAT]))

    asyncio.run(both())
    processes.close()
    assert not any(child.process.is_alive() for child in started)
    assert all(child.process.exitcode == 0 for child in started)  # asked, not killed
    with pytest.raises(EditProcessError, match="closed"):
        asyncio.run(client_of(processes, provider).edit("换个背景", [CAT]))


@pytest.mark.loopback
def test_an_image_given_as_a_picture_crosses_whole(processes, provider, tmp_path):
    """A PIL image (the page's painted mask, say) is sent to the child as pixels."""
    client = client_of(processes, provider)
    with Image.open(CAT) as cat:
        picture = cat.convert("RGB")

    result = asyncio.run(client.edit("换个背景", [picture]))
    assert result.inputs and result.inputs[0]["sha256"] is None  # a picture has no file to hash
    assert len(provider.stats()["arrivals"]) == 1


@pytest.mark.loopback
def test_the_daily_cap_counts_what_a_child_sent_and_refunds_what_it_did_not(provider, tmp_path, monkeypatch):
    """The stage that says an edit was sent crosses before the outcome: an edit refused in the child
    before sending gives its reservation back; one the provider refused stays spent."""
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    values = {
        "JUHE_API_KEY": "k-cap",
        "JUHE_API_URL": provider.url,
        "JUHE_OUTPUT_DIR": str(tmp_path / "outputs"),
        "JUHE_DAILY_LIMIT": "5",
        "JUHE_EDIT_PROCESSES": "1",
    }
    backend = Backend(AppSettings.from_mapping(values))
    unreadable = tmp_path / "broken.jpg"
    unreadable.write_bytes(b"\xff\xd8 not a whole jpeg")

    async def run(prompt: str, image) -> Exception | None:
        try:
            await backend.edit(prompt, [image], None, None, page=False)
        except Exception as exc:
            return exc
        return None

    try:
        refused_here = asyncio.run(run("换个背景", unreadable))
        assert refused_here is not None and refused_here.kind == "invalid"
        assert backend.spend.used() == 0  # refused in the child before sending: given back
        refused_there = asyncio.run(run("[sim:282504] 换个背景", CAT))
        assert refused_there.code == 282504
        assert backend.spend.used() == 1  # sent: the provider counts it, so does the cap
        assert asyncio.run(run("换个背景", CAT)) is None
        assert backend.spend.used() == 2
    finally:
        backend.close()
    assert len(provider.stats()["arrivals"]) == 2


def test_an_error_that_does_not_pickle_crosses_as_its_type_only():
    class OddError(Exception):
        def __init__(self, text: str) -> None:
            super().__init__(text)
            self.lock = threading.Lock()  # cannot be pickled

    back = pickle.loads(_pickled_error(OddError("key sk-secret-123 in a message")))
    assert isinstance(back, EditProcessError) and back.detail == "OddError"
    assert "sk-secret-123" not in str(back)


@pytest.mark.loopback
def test_a_large_call_cancelled_at_once_is_cancelled_in_the_child(processes, provider):
    """A call of several megabytes (a big picture) is written off the event loop; a cancel made
    meanwhile follows it on the pipe, so the child learns of the call before its cancel."""
    client = client_of(processes, provider)
    picture = Image.effect_noise((1600, 1600), 64).convert("RGB")  # 7.7 MB of pixels, pickled
    stages: list[str] = []

    async def run() -> tuple[float, EditResult]:
        task = asyncio.create_task(client.edit("换个背景", [picture], on_stage=stages.append))
        await asyncio.sleep(0)  # the call is queued, its write not yet done
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        took = time.monotonic() - started
        return took, await client.edit("再换一次", [CAT])

    took, again = asyncio.run(run())
    assert took < CANCEL_WAIT_S  # the child's last word came: it knew the call, then its cancel
    assert stages[0] == "preparing" and again.order_id


@pytest.mark.loopback
def test_no_edit_processes_keeps_the_work_in_the_apps_process(provider, tmp_path, monkeypatch):
    """JUHE_EDIT_PROCESSES=0: the app's own client makes the call, and no process is started."""
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    started = []
    monkeypatch.setattr(EditProcesses, "_running", lambda self, index: started.append(index))
    values = {
        "JUHE_API_KEY": "k-here",
        "JUHE_API_URL": provider.url,
        "JUHE_OUTPUT_DIR": str(tmp_path / "outputs"),
        "JUHE_EDIT_PROCESSES": "0",
    }
    backend = Backend(AppSettings.from_mapping(values))
    try:
        client, simulated = backend.client_for(None)
        assert type(client) is AsyncImageEditClient and not simulated
        backend.start_edit_processes()
        saved = asyncio.run(backend.edit("换个背景", [CAT], None, None, page=False))
    finally:
        backend.close()
    assert saved.paths[0].is_file() and started == []


def test_the_number_of_edit_processes_is_checked():
    assert AppSettings.from_mapping({}).edit_processes == 2
    assert AppSettings.from_mapping({"JUHE_EDIT_PROCESSES": "0"}).edit_processes == 0
    for bad in ("9", "-1", "two"):
        with pytest.raises(SettingsError, match="JUHE_EDIT_PROCESSES"):
            AppSettings.from_mapping({"JUHE_EDIT_PROCESSES": bad})


class Pipe:
    """The child's end of the pipe, as far as `_Server` writes to it."""

    def __init__(self) -> None:
        self.sent: list[tuple] = []

    def send(self, message: tuple) -> None:
        self.sent.append(message)


@pytest.mark.parametrize("same_turn", [True, False], ids=["in-the-same-turn", "a-turn-later"])
def test_a_cancel_is_answered_even_when_it_comes_with_its_call(same_turn):
    """A call and its cancel read in one turn of the child's loop stop the call's task before its
    first line; the app must still hear "cancelled" at once, not wait `CANCEL_WAIT_S` for it."""
    pipe = Pipe()
    slow = Settings(api_key="k-children", api_url="http://127.0.0.1:9/edit")
    body = pickle.dumps(("edit", slow, 2, ("换个背景", [CAT]), {}))

    async def run() -> None:
        server = _Server(pipe, 1 << 20, lambda: None)
        if same_turn:
            server.receive(("batch", [("call", 7, body), ("cancel", 7)]))
        else:
            server.receive(("call", 7, body))
            await asyncio.sleep(0)  # the task has begun
            server.receive(("cancel", 7))
        await until(lambda: not server.tasks)

    asyncio.run(run())
    assert [kind for kind, call_id, _ in pipe.sent if call_id == 7][-1] == "cancelled"
