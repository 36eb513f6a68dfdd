"""Batch (issue 19) through the app: the `/batch` endpoint with gradio_client, the page's own events by
`fn_index` as the browser sends them (run, then retry the failed photo alone), the daily cap said up
front, the caps on what `/batch` takes, pacing under a rate limit on an injected clock, another
visitor's single edit beside a batch, and `/batch` kept out of MCP's tools.

Live apps talk to their own loopback `Simulator`; every prompt carries the test's own marker and
counts are of that marker's requests, never global totals.
"""

from __future__ import annotations

import asyncio
import io
import json
import threading
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from eventfuzz import Event, call, upload
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from helpers.apphost import RunningApp, image_file, is_bilingual, running_app
from helpers.paths import COFFEE
from helpers.tags import marker
from mcp import ClientSession
from mcp.client.streamable_http import streamablehttp_client

from juhe import read_provenance

pytestmark = [pytest.mark.app, pytest.mark.loopback, pytest.mark.timeout(180)]
COLORS = ["red", "green", "blue", "orange", "purple", "teal", "gray", "navy", "olive", "maroon"]


def photos(folder: Path, n: int) -> list[Path]:
    """`n` small distinct JPEGs."""
    folder.mkdir(parents=True, exist_ok=True)
    return [image_file(folder / f"photo{k}.jpg", color=COLORS[k % len(COLORS)]) for k in range(n)]


def run_api(running: RunningApp, images: list, prompt: str, downloads: Path | None = None, **headers):
    """`/batch` from a new session, by position (an undocumented endpoint takes no keywords)."""
    client = running.client(downloads, headers=headers) if headers else running.client(downloads)
    return client.predict(images, prompt, "auto", "auto", None, api_name="/batch")


def refused(running: RunningApp, images: list, prompt: str = "p") -> str:
    with pytest.raises(AppError) as info:
        run_api(running, images, prompt)
    assert is_bilingual(info.value.message), info.value.message
    return info.value.message


def sent(running: RunningApp, tag: str) -> int:
    """Edit calls the provider answered for this marker ("slow" notes of a slow answer aside)."""
    return len([r for r in running.requests_with(tag) if r["outcome"] != "slow"])


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> Iterator[RunningApp]:
    with running_app(tmp_path_factory.mktemp("batch"), JUHE_CONCURRENCY="4") as running:
        yield running


# --- the endpoint ---------------------------------------------------------------------------------


def test_a_batch_of_five_with_one_failure_gives_four_images_a_zip_and_a_manifest(live, tmp_path):
    tag = marker()
    live.provider.inject("282505")  # the first photo the provider sees fails; the others go on
    inputs = photos(tmp_path / "in", 5)
    files, archive, record = run_api(live, [handle_file(str(p)) for p in inputs], f"batch {tag}", tmp_path)
    assert sent(live, tag) == 5
    assert (record["total"], record["done"], record["failed"]) == (5, 4, 1)
    rows = record["manifest"]
    assert [row["input"] for row in rows] == [p.name for p in inputs]  # one row per photo, in order
    assert {row["instruction"] for row in rows} == {f"batch {tag}"}
    [failed] = [row for row in rows if row["status"] == "failed"]
    assert failed["error"].startswith("282505: ") and failed["file"] == "" and failed["size"] == ""
    made = [row for row in rows if row["status"] == "done"]
    assert len(made) == 4 and all(row["order_id"].startswith("SIM") for row in made)
    assert all(row["size"] == "1168*880" for row in made)  # auto: 图1's 4:3 at about 1 MP
    assert len(files) == 4 and sorted(Path(f).name for f in files) == sorted(row["file"] for row in made)
    for path in files:  # every image carries the AIGC label, as a single edit's does
        assert read_provenance(Path(path).read_bytes())["order_id"] in {row["order_id"] for row in made}
    with zipfile.ZipFile(archive) as opened:
        names = opened.namelist()
        assert sorted(names) == sorted([row["file"] for row in made] + ["manifest.csv", "manifest.json"])
        assert json.loads(opened.read("manifest.json")) == rows
        csv_text = opened.read("manifest.csv").decode("utf-8-sig")
        assert csv_text.splitlines()[0] == "file,input,instruction,size,order_id,status,error"
        assert len(csv_text.splitlines()) == 6


@pytest.mark.parametrize(
    "images",
    [
        "photo.jpg",
        True,
        {"path": "photo.jpg"},
        [],
        [True],
        ["https://example.org/a.jpg"],
        ["data:image/png;base64,iVBORw0KGgo="],
        [{"path": "/etc/hostname"}],
    ],
    ids=repr,
)
def test_anything_but_a_list_of_uploaded_files_is_refused_before_sending(live, images):
    tag = marker()
    message = refused(live, images, f"bad {tag}")
    assert ("images" in message and "handle_file()" in message) or "not one the page sends" in message
    assert sent(live, tag) == 0


def test_more_than_twenty_photos_are_refused_before_sending(live, tmp_path):
    tag = marker()
    one = handle_file(str(photos(tmp_path, 1)[0]))
    message = refused(live, [one] * 21, f"many {tag}")
    assert "a list of 1 to 20 files" in message and "1 到 20 个" in message
    assert sent(live, tag) == 0


def test_a_file_that_is_not_an_image_fails_alone_unsent(live, tmp_path):
    tag = marker()
    fake = tmp_path / "notes.jpg"
    fake.write_text("not an image at all")
    good = photos(tmp_path / "in", 1)[0]
    _, _, record = run_api(live, [handle_file(str(fake)), handle_file(str(good))], f"mixed {tag}")
    assert (record["done"], record["failed"]) == (1, 1)
    assert "not an image this app takes" in record["manifest"][0]["error"]
    assert sent(live, tag) == 1


# --- the page's own events, by fn_index as the browser sends them -----------------------------------


def page_event(running: RunningApp, elem_id: str) -> Event:
    """The server event a click on the page's `elem_id` button runs."""
    config = httpx.get(f"{running.url}/config", timeout=10).json()
    ids = {c["id"] for c in config["components"] if c.get("props", {}).get("elem_id") == elem_id}
    found = next(
        d for d in config["dependencies"] if d["backend_fn"] and any(t[0] in ids for t in d["targets"])
    )
    return Event(found["id"], elem_id, found["inputs"], found["outputs"], True, True, None, False)


def zip_link(output: list, running: RunningApp) -> str:
    """The link of the zip in the run's answer (the File's update)."""
    value = output[1]["value"]
    return f"{running.url}/gradio_api/file={value['path']}"


def test_the_page_runs_a_batch_then_retries_only_the_failed_photo(live, tmp_path):
    tag = marker()
    session = uuid.uuid4().hex
    files = [upload(live.url, p.read_bytes(), p.name) for p in photos(tmp_path, 5)]
    live.provider.inject("282504")
    run = page_event(live, "batch-run")
    # files, instruction, size, 图2/图3 too, 图2, 图3, model, own key, history (State), browser ids
    answer = call(
        live.url, run, [files, f"page {tag}", "auto", False, None, None, "auto", "", None, []], session
    )
    assert answer.ok, answer.error
    progress, archive, retry, _, _, _, ids = answer.output
    assert "5 photos · 4 done · 1 failed · 0 running · 0 queued" in progress
    assert "✕ failed" in progress and "<code>282504</code>" in progress
    assert retry["visible"] is True and len(ids) == 4
    with zipfile.ZipFile(io.BytesIO(httpx.get(zip_link(answer.output, live), timeout=10).content)) as z:
        assert len([n for n in z.namelist() if n.endswith(".png")]) == 4
    assert sent(live, tag) == 5

    retry_event = page_event(live, "batch-retry")
    again = call(live.url, retry_event, [None, "", None, ids], session)
    assert again.ok, again.error
    assert sent(live, tag) == 6  # only the failed photo went again
    progress, _, retry, _, _, _, ids = again.output
    assert "5 photos · 5 done · 0 failed" in progress and retry["visible"] is False
    assert len(ids) == 5  # every result in the browser's ids: a reload shows them in the history
    records = [live.backend.store.get(i) for i in ids]
    assert len({r.group for r in records}) == 1  # the retry joins its batch's run
    with zipfile.ZipFile(io.BytesIO(httpx.get(zip_link(again.output, live), timeout=10).content)) as z:
        assert len([n for n in z.namelist() if n.endswith(".png")]) == 5
        rows = json.loads(z.read("manifest.json"))
        assert [r["status"] for r in rows] == ["done"] * 5
    nothing = call(live.url, retry_event, [None, "", None, ids], session)
    assert not nothing.ok and "There is no failed photo to retry" in nothing.error


def test_the_page_refuses_more_than_twenty_and_an_empty_instruction(live, tmp_path):
    tag = marker()
    run = page_event(live, "batch-run")
    one = upload(live.url, photos(tmp_path, 1)[0].read_bytes())
    many = call(
        live.url, run, [[one] * 21, f"x {tag}", "auto", False, None, None, "auto", "", None, []], "s1"
    )
    assert not many.ok and "At most 20 photos per batch, 21 given" in many.error
    empty = call(live.url, run, [[one], "  ", "auto", False, None, None, "auto", "", None, []], "s2")
    assert not empty.ok and "Write the instruction" in empty.error
    assert sent(live, tag) == 0


# --- limits ---------------------------------------------------------------------------------------


def test_the_daily_cap_says_how_many_fit_before_sending_anything(tmp_path):
    with running_app(tmp_path, JUHE_DAILY_LIMIT="3", JUHE_CONCURRENCY="4") as running:
        tag = marker()
        images = [handle_file(str(p)) for p in photos(tmp_path / "in", 5)]
        message = refused(running, images, f"cap {tag}")
        assert "Only 3 edits are left today" in message and "Choose 3 photos or fewer" in message
        assert "只剩 3 次" in message
        assert sent(running, tag) == 0 and running.backend.spend.used() == 0
        _, _, record = run_api(running, images[:3], f"cap ok {tag}")
        assert record["done"] == 3 and running.backend.spend.used() == 3


def test_a_batch_is_paced_within_the_rate_limit_instead_of_refused(tmp_path):
    """JUHE_RATE_LIMIT=2 on a clock the test moves: 5 photos all go, never more than 2 in any 60 s of
    that clock, each waiting its turn (the waits are the clock's, not real time)."""
    with running_app(tmp_path, JUHE_RATE_LIMIT="2", JUHE_CONCURRENCY="4") as running:
        now = [1000.0]
        sends: list[float] = []
        waits: list[float] = []
        window = running.backend.edits
        window.clock = lambda: now[0]
        take = window.take

        def counted_take(keys, limit, amount=1):
            wait = take(keys, limit, amount)
            if not wait:
                sends.append(now[0])
            return wait

        async def clock_sleep(seconds: float) -> None:
            waits.append(seconds)
            now[0] += seconds
            await asyncio.sleep(0)

        window.take = counted_take
        running.backend.sleep = clock_sleep
        tag = marker()
        _, _, record = run_api(
            running, [handle_file(str(p)) for p in photos(tmp_path / "in", 5)], f"pace {tag}"
        )
        assert record["done"] == 5 and sent(running, tag) == 5
        assert len(sends) == 5 and waits  # paced, not refused
        for start in sends:
            assert len([t for t in sends if start <= t < start + 60]) <= 2
        assert sends[-1] - sends[0] >= 120  # 5 at 2 per minute: the last went two minutes after the first


def test_another_visitors_single_edit_is_not_starved_by_a_batch(tmp_path):
    """JUHE_CONCURRENCY=2: a batch holds at most one slot, so a single edit sent while a batch of 6
    runs (each photo taking 1 s at the provider) goes before the batch is through."""
    with running_app(tmp_path, JUHE_CONCURRENCY="2", sim_options={"latency": 1.0}) as running:
        tag, single = marker(), marker()
        images = [handle_file(str(p)) for p in photos(tmp_path / "in", 6)]
        job = running.client().submit(images, f"batch {tag}", "auto", "auto", None, api_name="/batch")
        started = threading.Event()
        while not started.wait(0.05):  # until the batch's first photo reached the provider
            if running.requests_with(tag):
                started.set()
        running.client().predict(handle_file(str(COFFEE)), f"single {single}", api_name="/edit")
        batch_sent_before = sent(running, tag)
        _, _, record = job.result(timeout=120)
        assert record["done"] == 6
        assert batch_sent_before < 6  # the single edit finished while the batch still had photos to send
        order = [r["text"] for r in running.provider.stats()["requests"] if r["outcome"] != "slow"]
        ours = [text for text in order if tag in text or single in text]
        assert ours.index(next(t for t in ours if single in t)) < len(ours) - 1
        assert running.provider.stats()["peak_in_flight"] <= 2


def test_a_burst_of_batches_and_variants_never_overshoots_the_daily_cap(tmp_path):
    """JUHE_DAILY_LIMIT=10 and 28 edits asked for at the same moment (three sets of 4 variants, two
    batches of 4 and four single edits, each from its own session): the provider sees exactly what
    the cap counted, never more than 10; every set and every batch went whole or not at all."""
    with running_app(
        tmp_path, JUHE_DAILY_LIMIT="10", JUHE_CONCURRENCY="32", sim_options={"latency": 0.3}
    ) as running:
        tag = marker()
        images = [handle_file(str(p)) for p in photos(tmp_path / "in", 4)]
        jobs = [("variants", k, 4) for k in range(3)] + [("batch", k, 4) for k in range(2)]
        jobs += [("single", k, 1) for k in range(4)]
        barrier = threading.Barrier(len(jobs))

        def ask(kind: str, k: int, n: int) -> None:
            client = running.client()
            prompt = f"{kind}{k} {tag}"
            barrier.wait()
            try:
                if kind == "batch":
                    client.predict(images, prompt, "auto", "auto", None, api_name="/batch")
                else:
                    client.predict(handle_file(str(COFFEE)), prompt, variants=n, api_name="/edit")
            except AppError as refusal:
                assert is_bilingual(refusal.message), refusal.message

        threads = [threading.Thread(target=ask, args=job) for job in jobs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        sent_each = {f"{kind}{k}": sent(running, f"{kind}{k} {tag}") for kind, k, _ in jobs}
        for kind, k, n in jobs:
            assert sent_each[f"{kind}{k}"] in (0, n), sent_each  # whole or nothing
        assert sum(sent_each.values()) == running.backend.spend.used() <= 10, sent_each
        assert running.backend.spend.used() >= 7  # refusals say what fits: the cap is not left idle


def test_a_burst_of_variant_sets_from_one_visitor_stays_within_the_rate_limit(tmp_path):
    """JUHE_RATE_LIMIT=6: three sets of 4 from one visitor at the same moment. One set fits; each
    other is refused whole ("only 2 left this minute"), so the provider sees exactly 4."""
    with running_app(tmp_path, JUHE_RATE_LIMIT="6", JUHE_CONCURRENCY="16") as running:
        tag = marker()
        barrier = threading.Barrier(3)
        refusals: list[str] = []

        def ask(k: int) -> None:
            client = running.client()
            barrier.wait()
            try:
                client.predict(handle_file(str(COFFEE)), f"set{k} {tag}", variants=4, api_name="/edit")
            except AppError as refusal:
                refusals.append(refusal.message)

        threads = [threading.Thread(target=ask, args=(k,)) for k in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert sent(running, tag) == 4
        assert len(refusals) == 2 and all(is_bilingual(m) and "left this minute" in m for m in refusals)


# --- MCP ------------------------------------------------------------------------------------------


def test_batch_is_not_an_mcp_tool(tmp_path):
    with running_app(tmp_path, JUHE_MCP="1") as running:

        async def names() -> list[str]:
            async with (
                streamablehttp_client(running.url + "/gradio_api/mcp/") as (read, write, _),
                ClientSession(read, write) as session,
            ):
                await session.initialize()
                return [tool.name for tool in (await session.list_tools()).tools]

        tools = asyncio.run(names())
        assert "edit" in tools and not any("batch" in name for name in tools)
        # and gradio_client still reaches it
        _, _, record = run_api(running, [handle_file(str(photos(tmp_path / "in", 1)[0]))], f"mcp {marker()}")
        assert record["done"] == 1
