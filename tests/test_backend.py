"""The backend's own promises: a cancelled edit goes on in its slot and is delivered later, so a
run-and-cancel loop cannot get past JUHE_CONCURRENCY, and nothing paid for is lost."""

from __future__ import annotations

import asyncio
import threading

import pytest
from helpers.paths import CAT
from helpers.store_files import store_files

from juhe.simulator import Simulator
from webapp.backend import Backend, BusyError, SlotPool
from webapp.handlers import Handlers, history_entries
from webapp.settings import AppSettings
from webapp.store import ResultStore

pytestmark = [pytest.mark.loopback, pytest.mark.timeout(60)]


def backend_for(provider: Simulator, tmp_path, **env: str) -> Backend:
    values = {
        "JUHE_API_KEY": "k-backend",
        "JUHE_API_URL": provider.url,
        "JUHE_OUTPUT_DIR": str(tmp_path / "outputs"),
        **env,
    }
    return Backend(AppSettings.from_mapping(values))


@pytest.fixture(autouse=True)
def gradio_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))


def test_a_cancelled_edit_keeps_its_slot_and_is_delivered_later(tmp_path):
    with Simulator(latency=1.0) as provider:
        backend = backend_for(provider, tmp_path, JUHE_CONCURRENCY="1")

        async def run() -> tuple:
            first = backend.start("visitor-1", "first edit", [CAT], None, None)
            while not provider.stats()["arrivals"]:  # until it is at the provider
                await asyncio.sleep(0.01)
            backend.abandon(first)  # the visitor pressed Cancel
            second = backend.start("visitor-1", "second edit", [CAT], None, None)
            saved = await second.task
            await first.task
            return saved, backend.collect_late("visitor-1"), backend.collect_late("visitor-1")

        try:
            saved, (late, running), (again, _) = asyncio.run(run())
        finally:
            backend.close()
        stats = provider.stats()
    assert stats["peak_in_flight"] == 1  # the second waited for the first's slot
    assert saved.result.prompt == "second edit" and saved.paths[0].is_file()
    assert [edit.result.prompt for edit in late] == ["first edit"] and not running
    assert late[0].paths[0].is_file()  # saved although nobody was waiting
    assert again == []  # delivered once


def test_edits_beyond_the_queue_are_turned_away(tmp_path):
    with Simulator(latency=1.0) as provider:
        backend = backend_for(provider, tmp_path, JUHE_CONCURRENCY="1", JUHE_QUEUE_SIZE="1")

        async def run() -> list:
            calls = [backend.edit(f"edit {n}", [CAT], None, None) for n in range(3)]
            return await asyncio.gather(*calls, return_exceptions=True)

        try:
            outcomes = asyncio.run(run())
        finally:
            backend.close()
    assert sum(isinstance(outcome, BusyError) for outcome in outcomes) == 1
    assert sum(not isinstance(outcome, Exception) for outcome in outcomes) == 2


def test_the_slot_pool_admits_a_set_whole_first_come_first_served():
    async def scenario() -> list[str]:
        pool, order = SlotPool(4, queue_size=5), []
        await pool.acquire(3)
        with pytest.raises(BusyError) as info:
            await pool.acquire(5)  # more than the pool: refused at once, saying what fits
        assert info.value.at_most == 4

        async def take(name: str, n: int) -> None:
            await pool.acquire(n)
            order.append(name)

        big = asyncio.create_task(take("set of 4", 4))
        small = asyncio.create_task(take("single", 1))
        await asyncio.sleep(0)
        assert order == [] and pool.free == 1  # the single waits behind the set: no starvation
        pool.release(3)
        await asyncio.gather(big)
        assert pool.free == 0
        pool.release(4)
        await asyncio.gather(small)
        return order

    assert asyncio.run(scenario()) == ["set of 4", "single"]


def test_an_edit_makes_no_copy_that_only_the_history_or_a_share_page_shows(tmp_path):
    """Issue 19: the "before" copy of 图1 and the thumbnail are made when first asked for (here the
    history's before/after), not by the edit; Delete removes them, and after a restart one not yet
    made can still be made."""
    with Simulator(latency=0.0) as provider:
        backend = backend_for(provider, tmp_path)
        handlers = Handlers(backend.settings, backend)
        out = backend.output_dir

        async def run() -> tuple:
            saved = await backend.edit("first edit", [CAT], None, None)  # the page's: 图1 kept
            later = await backend.edit("second edit", [CAT], None, None)
            shown = await handlers.show(saved)
            entry = history_entries(saved.record, shown.paths, "first edit", saved.result.order_id)[0]
            right_after = [store_files(out, sub) for sub in ("before", "thumbs", "sources")]
            opened = await handlers._item_compare(entry)  # the history opens the result again
            return saved, later, right_after, opened

        try:
            saved, later, (befores, thumbs, sources), opened = asyncio.run(run())
        finally:
            backend.close()
    assert befores == [] and thumbs == [] and len(sources) == 2  # 图1 kept, nothing decoded
    assert opened["compare"]["visible"] and saved.record.before.is_file()  # made on request
    assert store_files(out, "before") == [saved.record.before]

    backend.store.delete(saved.record.id)
    assert not saved.record.before.exists() and store_files(out, "before") == []
    reopened = ResultStore(out)  # a restart
    made = reopened.before_copy(later.record.id)
    assert made == later.record.before and made.is_file() and store_files(out, "sources") == []


def test_store_work_a_visitor_waited_long_for_is_logged(tmp_path, monkeypatch, caplog):
    """Store work runs on one thread: work that waited behind other work is logged with its wait."""
    monkeypatch.setattr("webapp.backend.SLOW_FILE_WORK_S", 0.2)
    backend = Backend(AppSettings.from_mapping({"JUHE_OUTPUT_DIR": str(tmp_path / "outputs")}))
    busy = threading.Event()

    async def run() -> str:
        blocker = backend.run_file_work(busy.wait, 5)
        asyncio.get_running_loop().call_later(0.4, busy.set)
        fast = backend.run_file_work(str.upper, "share")
        _, answer = await asyncio.gather(blocker, fast)
        return answer

    try:
        with caplog.at_level("WARNING", logger="webapp"):
            assert asyncio.run(run()) == "SHARE"
    finally:
        backend.close()
    slow = [r.getMessage() for r in caplog.records if "slow store work: upper" in r.getMessage()]
    assert len(slow) == 1, caplog.text
    waited = float(slow[0].split("waited ")[1].split(" s")[0])
    assert waited >= 0.2  # the time behind the blocker, not its own run
