"""The batch engine (`juhe._batch`): states, failures, retry, resume, pacing, manifest, zip, variants.

Most tests drive `Batch.run` and `edit_variants` with a fake client whose calls are held by asyncio
events the test releases, so every ordering is decided by the test, never by the clock; one runs
the real `AsyncImageEditClient` over `httpx.MockTransport` to check the label in the zip.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import zipfile
from pathlib import Path

import httpx
import pytest
from helpers.saving import save_result
from PIL import Image

import juhe
from juhe import (
    AsyncImageEditClient,
    AuthenticationError,
    Batch,
    BatchItem,
    EditResult,
    GenerationFailedError,
    InvalidRequestError,
    JuheError,
    RateLimitError,
    edit_variants,
    manifest,
    read_provenance,
    zip_results,
)
from juhe._batch import ACCOUNT_ERRORS, MANIFEST_COLUMNS


def png(colour: tuple[int, int, int] = (200, 40, 40), size: tuple[int, int] = (40, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()


def photos(folder: Path, *names: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in names:
        (folder / name).write_bytes(png())
        paths.append(folder / name)
    return paths


class FakeClient:
    """Answers `edit` from a table of failures by input name and saves results as the real saver
    does (labelled image, then sidecar). Records every call in `events`."""

    def __init__(self, failures: dict[str, JuheError] | None = None) -> None:
        self.failures = failures or {}
        self.events: list[tuple[str, str]] = []
        self.active = self.peak = 0

    async def edit(self, prompt, images, size=None, model=None, *, mask=None) -> EditResult:
        name = Path(images[0]).name
        self.events.append(("send", name))
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            for _ in range(3):  # let every other worker that can start, start
                await asyncio.sleep(0)
        finally:
            self.active -= 1
        if name in self.failures:
            raise self.failures[name]
        return EditResult(order_id=f"JH-{name}", image_urls=["https://r.test/1.png"], prompt=prompt)

    async def download(self, result: EditResult, directory, *, stem=None) -> list[Path]:
        return save_result(result, directory, [("https://r.test/1.png", png((0, 90, 200)), "PNG")], stem)

    def sent(self) -> list[str]:
        return [name for kind, name in self.events if kind == "send"]


class Recorder:
    """A sink that keeps (input name, status) for every change it hears."""

    def __init__(self) -> None:
        self.changes: list[tuple[str, str]] = []

    def item_changed(self, item: BatchItem) -> None:
        self.changes.append((item.input.name, item.status))

    def of(self, name: str) -> list[str]:
        return [status for n, status in self.changes if n == name]


def run(coroutine):
    return asyncio.run(coroutine)


# ---------------------------------------------------------------- the engine


def test_each_item_goes_running_then_done_or_failed_and_a_failure_stops_nothing(tmp_path):
    inputs = photos(tmp_path / "in", "a.png", "b.png", "c.png", "d.png")
    items = [BatchItem.for_input(p, "水彩") for p in inputs]
    client = FakeClient({"b.png": GenerationFailedError("生成失败", "generation failed", code=282505)})
    sink = Recorder()

    run(Batch().run(client, items, "水彩", out_dir=tmp_path / "out", concurrency=2, sink=sink))

    assert sorted(client.sent()) == ["a.png", "b.png", "c.png", "d.png"]
    assert sink.of("b.png") == ["running", "failed"]
    for name in ("a.png", "c.png", "d.png"):
        assert sink.of(name) == ["running", "done"]
    a, b, c, d = items
    assert (b.status, b.error_code, b.files) == ("failed", "282505", [])
    assert b.error == "生成失败 / generation failed"
    assert all(item.status == "done" and len(item.files) == 1 for item in (a, c, d))
    assert a.order_id == "JH-a.png" and a.sizes == ["40*30"] and a.prompt == "水彩"
    assert all(item.files[0].is_file() and item.files[0].parent == tmp_path / "out" for item in (a, c, d))


def test_each_item_is_image_1_of_its_own_edit_with_the_references_after_it(tmp_path):
    items = [BatchItem.for_input(p, "p") for p in photos(tmp_path, "a.png", "b.png")]
    [style] = photos(tmp_path / "ref", "style.png")
    sent = []

    class Recording(FakeClient):
        async def edit(self, prompt, images, size=None, model=None, *, mask=None):
            sent.append(([Path(i).name for i in images], size, model, mask))
            return await super().edit(prompt, images, size, model, mask=mask)

    options = {"size": "1024*1024", "model": "m2", "mask": "mask.png", "references": [style]}
    run(Batch().run(Recording(), items, "p", out_dir=tmp_path / "out", concurrency=1, **options))
    assert sent == [
        (["a.png", "style.png"], "1024*1024", "m2", "mask.png"),
        (["b.png", "style.png"], "1024*1024", "m2", "mask.png"),
    ]


def test_concurrency_is_bounded_and_used(tmp_path):
    items = [BatchItem.for_input(p, "p") for p in photos(tmp_path, *(f"{i}.png" for i in range(6)))]
    client = FakeClient()
    run(Batch().run(client, items, "p", out_dir=tmp_path / "out", concurrency=2))
    assert client.peak == 2 and len(client.sent()) == 6


def test_retry_sends_only_the_failed_items(tmp_path):
    items = [BatchItem.for_input(p, "p") for p in photos(tmp_path / "in", "a.png", "b.png", "c.png")]
    failing = FakeClient({"b.png": GenerationFailedError("生成失败", "generation failed", code=282505)})
    batch = Batch()
    run(batch.run(failing, items, "p", out_dir=tmp_path / "out"))
    assert batch.counts() == {"queued": 0, "running": 0, "done": 2, "failed": 1, "total": 3}

    healed, sink = FakeClient(), Recorder()
    failed = [item for item in items if item.status == "failed"]
    run(batch.run(healed, failed, "p", out_dir=tmp_path / "out", sink=sink))

    assert healed.sent() == ["b.png"]
    assert sink.changes == [("b.png", "queued"), ("b.png", "running"), ("b.png", "done")]
    assert [item.status for item in items] == ["done"] * 3 and items[1].error_code == ""
    # every item passed again: the done ones are left alone, nothing is sent
    again = FakeClient()
    run(Batch().run(again, items, "p", out_dir=tmp_path / "out"))
    assert again.sent() == []


def test_resume_skips_items_whose_results_are_in_the_folder(tmp_path):
    inputs = photos(tmp_path / "in", "a.png", "b.png")
    first = [BatchItem.for_input(p, "p", "512*512") for p in inputs]
    run(Batch().run(FakeClient(), first[:1], "p", out_dir=tmp_path / "out"))

    client, sink = FakeClient(), Recorder()
    fresh = [BatchItem.for_input(p, "p", "512*512") for p in inputs]  # as after a restart
    run(Batch().run(client, fresh, "p", out_dir=tmp_path / "out", sink=sink))

    assert client.sent() == ["b.png"]
    assert fresh[0].resumed and fresh[0].status == "done" and fresh[0].files == first[0].files
    assert fresh[0].sizes == ["40*30"] and not fresh[1].resumed
    assert sink.of("a.png") == ["done"]
    # another prompt is other work: its names differ, nothing is resumed
    other = [BatchItem.for_input(p, "q", "512*512") for p in inputs]
    assert {item.stem for item in other}.isdisjoint(item.stem for item in fresh)


def test_pace_is_awaited_before_each_send(tmp_path):
    items = [BatchItem.for_input(p, "p") for p in photos(tmp_path, "a.png", "b.png", "c.png")]
    client = FakeClient()

    async def pace() -> None:
        client.events.append(("pace", ""))
        await asyncio.sleep(0)

    run(Batch().run(client, items, "p", out_dir=tmp_path / "out", concurrency=1, pace=pace))
    assert [kind for kind, _ in client.events] == ["pace", "send"] * 3


def test_a_pace_that_refuses_fails_the_item_unsent_and_can_stop_the_rest(tmp_path):
    items = [BatchItem.for_input(p, "p") for p in photos(tmp_path, "a.png", "b.png", "c.png")]
    client = FakeClient()
    calls = 0

    async def pace() -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RateLimitError("今日额度已用完", "the daily cap is reached", kind="cap")

    batch = Batch()
    run(
        batch.run(
            client, items, "p", out_dir=tmp_path / "out", concurrency=1, pace=pace, stop_on=ACCOUNT_ERRORS
        )
    )
    assert client.sent() == ["a.png"]
    assert [item.status for item in items] == ["done", "failed", "queued"]
    assert items[1].error_code == "cap" and batch.stopped_by is not None


@pytest.mark.parametrize("stop_on", [(), ACCOUNT_ERRORS], ids=["default", "account-errors"])
def test_an_account_error_stops_new_calls_only_when_asked(tmp_path, stop_on):
    items = [BatchItem.for_input(p, "p") for p in photos(tmp_path, "a.png", "b.png", "c.png")]
    client = FakeClient({"a.png": AuthenticationError("错误的请求KEY", "wrong key", code=10001)})
    batch = Batch()
    run(batch.run(client, items, "p", out_dir=tmp_path / "out", concurrency=1, stop_on=stop_on))
    if stop_on:
        assert client.sent() == ["a.png"] and batch.stopped_by.kind == "10001"
        assert [item.status for item in items] == ["failed", "queued", "queued"]
    else:
        assert client.sent() == ["a.png", "b.png", "c.png"] and batch.stopped_by is None
        assert [item.status for item in items] == ["failed", "done", "done"]


def test_cancelling_a_run_puts_calls_in_flight_back_in_the_queue(tmp_path):
    items = [BatchItem.for_input(p, "p") for p in photos(tmp_path, "a.png", "b.png", "c.png")]
    batch = Batch()

    class Hanging(FakeClient):
        async def edit(self, prompt, images, size=None, model=None, *, mask=None):
            self.events.append(("send", Path(images[0]).name))
            if len(self.events) == 2:
                self.both_in.set()
            await asyncio.Event().wait()  # never answers

    async def main() -> None:
        client = Hanging()
        client.both_in = asyncio.Event()
        task = asyncio.create_task(batch.run(client, items, "p", out_dir=tmp_path / "out", concurrency=2))
        await asyncio.wait_for(client.both_in.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(main())
    assert [item.status for item in items] == ["queued"] * 3
    assert [item.input.name for item in batch.abandoned] == ["a.png", "b.png"]


def test_concurrency_below_one_is_refused(tmp_path):
    with pytest.raises(ValueError, match="concurrency"):
        run(Batch().run(FakeClient(), [], "p", out_dir=tmp_path, concurrency=0))


# ---------------------------------------------------------------- manifest and zip


def done_item(path: Path, prompt: str, *, order_id: str = "JH1", size: str = "40*30") -> BatchItem:
    return BatchItem(path, path.stem, "done", prompt, order_id, [path], [size])


def test_manifest_columns_and_csv_escaping(tmp_path):
    [image] = photos(tmp_path, "a.png")
    tricky = '把天空换成晚霞, 加上"彩虹"\n第二行'
    failed = BatchItem(
        tmp_path / "b.jpg", "b", "failed", tricky, "JH2", error_code="282505", error="生成失败 / x"
    )
    formula = done_item(image, "=HYPERLINK(1)", order_id="JH3")
    items = [done_item(image, tricky), failed, formula]

    csv_text, json_text = manifest(items)

    rows = list(csv.reader(io.StringIO(csv_text, newline="")))
    assert (
        rows[0]
        == list(MANIFEST_COLUMNS)
        == ["file", "input", "instruction", "size", "order_id", "status", "error"]
    )
    assert rows[1] == ["a.png", "a.png", tricky, "40*30", "JH1", "done", ""]
    assert rows[2] == ["", "b.jpg", tricky, "", "JH2", "failed", "282505: 生成失败 / x"]
    assert rows[3][0] == "a-2.png" and rows[3][2] == "'=HYPERLINK(1)"  # a spreadsheet shows, not runs it
    assert csv_text.count("\r\n") == 4  # four records; the instruction's own newlines stay quoted
    records = json.loads(json_text)
    assert [list(r) for r in records] == [list(MANIFEST_COLUMNS)] * 3
    assert records[0]["instruction"] == tricky and records[2]["instruction"] == "=HYPERLINK(1)"


def test_zip_holds_the_images_as_saved_and_both_manifests_under_safe_names(tmp_path):
    one = photos(tmp_path / "one", "a.png", ".hidden.png", "manifest.csv")
    two = photos(tmp_path / "two", "a.png", "A.PNG", "..\\evil.png")
    sneaky = tmp_path / "two" / ".." / "one" / "a.png"  # the same name once more, through `..`
    items = [done_item(p, "p", order_id=f"JH{i}") for i, p in enumerate([*one, *two, sneaky])]
    target = tmp_path / "results.zip"

    zip_results(items, target)

    with zipfile.ZipFile(target) as archive:
        names = archive.namelist()
        manifest_rows = json.loads(archive.read("manifest.json"))
        assert archive.read("manifest.csv").startswith(b"\xef\xbb\xbf")  # UTF-8 for spreadsheets
        assert archive.read("a-2.png") == two[0].read_bytes()
        assert archive.getinfo("a.png").compress_type == zipfile.ZIP_STORED
    assert names == [
        "a.png",
        "hidden.png",
        "manifest-2.csv",
        "a-2.png",
        "A-3.PNG",
        "_evil.png",
        "a-4.png",
        "manifest.csv",
        "manifest.json",
    ]
    assert all("/" not in n and "\\" not in n and not n.startswith(".") for n in names)
    assert [row["file"] for row in manifest_rows] == names[:7]


def test_a_batch_through_the_real_client_zips_labelled_images(tmp_path, clean_env):
    served: list[str] = []

    def provider(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            order = f"JH{len(served) + 1}"
            served.append(order)
            link = f"https://results.test/{order}.png"
            result = {"orderid": order, "images": [{"image": link}]}
            return httpx.Response(200, json={"reason": "成功", "result": result, "error_code": 0})
        return httpx.Response(200, content=png((10, 200, 10), (64, 48)))

    inputs = photos(tmp_path / "in", "a.png", "b.png")
    items = [BatchItem.for_input(p, "转成水彩画风格") for p in inputs]

    async def main() -> None:
        transport = httpx.MockTransport(provider)
        async with AsyncImageEditClient(api_key="k3y-0123456789", transport=transport) as client:
            await Batch().run(client, items, "转成水彩画风格", out_dir=tmp_path / "out", size="512*512")

    run(main())
    zip_results(items, tmp_path / "all.zip")

    with zipfile.ZipFile(tmp_path / "all.zip") as archive:
        rows = json.loads(archive.read("manifest.json"))
        assert len(rows) == 2 and {row["status"] for row in rows} == {"done"}
        for row in rows:
            label = read_provenance(archive.read(row["file"]))
            assert label["AIGC"]["Label"] == "1" and label["AIGC"]["ContentProducer"] == "juhe-image-edit"
            assert label["order_id"] == row["order_id"] and label["prompt"] == "转成水彩画风格"
    assert sorted(row["order_id"] for row in rows) == sorted(served)


# ---------------------------------------------------------------- variants


class GatedClient:
    """`edit` calls numbered in the order they arrive, each held until the test opens its gate."""

    def __init__(self, n: int, failing: int | None = None) -> None:
        self.gates = [asyncio.Event() for _ in range(n)]
        self.all_in = asyncio.Event()
        self.entered = 0
        self.cancelled: list[int] = []
        self.failing = failing
        self.n = n

    async def edit(self, prompt, images, **options) -> EditResult:
        index = self.entered
        self.entered += 1
        if self.entered == self.n:
            self.all_in.set()
        try:
            await self.gates[index].wait()
        except asyncio.CancelledError:
            self.cancelled.append(index)
            raise
        if index == self.failing:
            raise GenerationFailedError("生成失败", "generation failed", code=282505)
        return EditResult(order_id=f"JH{index}", image_urls=[], prompt=prompt, size=options.get("size", ""))


def test_variants_are_sent_at_once_and_yielded_as_each_completes():
    async def main() -> list[tuple[int, object]]:
        client = GatedClient(3, failing=0)
        seen = []
        variants = edit_variants(client, "p", ["a.png"], 3, size="512*512")
        first = asyncio.ensure_future(variants.__anext__())
        await asyncio.wait_for(client.all_in.wait(), 5)  # all three in flight before any answers
        for index in (2, 0, 1):  # answers come back in another order than sent
            client.gates[index].set()
            seen.append(await asyncio.wait_for(first, 5))
            first = asyncio.ensure_future(variants.__anext__())
        with pytest.raises(StopAsyncIteration):
            await first
        return seen

    seen = run(main())
    assert [index for index, _ in seen] == [2, 0, 1]
    (_, third), (_, failure), (_, second) = seen
    assert isinstance(failure, GenerationFailedError) and failure.kind == "282505"
    assert isinstance(third, EditResult) and third.order_id == "JH2" and third.size == "512*512"
    assert isinstance(second, EditResult) and second.order_id == "JH1"


def test_closing_the_variants_cancels_the_calls_still_running():
    async def main() -> GatedClient:
        client = GatedClient(4)
        variants = edit_variants(client, "p", ["a.png"], 4)
        pending = asyncio.ensure_future(variants.__anext__())
        await asyncio.wait_for(client.all_in.wait(), 5)
        client.gates[3].set()
        assert (await pending)[0] == 3
        await variants.aclose()
        return client

    client = run(main())
    assert sorted(client.cancelled) == [0, 1, 2]


@pytest.mark.parametrize("n", [0, 5])
def test_variants_outside_one_to_four_are_refused(n):
    async def main() -> None:
        async for _ in edit_variants(GatedClient(1), "p", ["a.png"], n):
            pass

    with pytest.raises(InvalidRequestError, match="1 到 4"):
        run(main())


def test_the_engine_is_exported():
    for name in (
        "Batch",
        "BatchItem",
        "BatchSink",
        "MAX_VARIANTS",
        "edit_variants",
        "manifest",
        "zip_results",
    ):
        assert name in juhe.__all__
