"""The batch's pure parts (`webapp.batching`): slots, the photo checks, the API's list, pacing on a fake
clock, the progress table. No app, no server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from helpers.images import png_header
from PIL import Image

from juhe import BatchItem
from webapp.batching import (
    MAX_BATCH,
    Pacer,
    api_photos,
    batch_slots,
    counts,
    make_items,
    photo_problem,
    progress_html,
)
from webapp.window import Window

MB = 1_000_000


@pytest.mark.parametrize(
    ("concurrency", "slots"), [(1, 1), (2, 1), (3, 1), (4, 2), (6, 3), (16, 3), (1024, 3)]
)
def test_a_batch_holds_at_most_three_slots_and_half_the_pool(concurrency, slots):
    assert batch_slots(concurrency) == slots


def photo(tmp_path: Path, name: str = "a.png", size=(64, 48), fmt: str = "PNG") -> Path:
    path = tmp_path / name
    Image.new("RGB", size, "red").save(path, fmt)
    return path


def test_a_usable_photo_passes(tmp_path):
    assert photo_problem(photo(tmp_path), 20 * MB) is None
    assert photo_problem(photo(tmp_path, "b.webp", fmt="WEBP"), 20 * MB) is None


def test_a_photo_over_the_upload_limit_fails_saying_the_limit(tmp_path):
    problem = photo_problem(photo(tmp_path), 10)
    assert problem.en == "the file is over the upload limit of 10 bytes" and "上传上限" in problem.zh


@pytest.mark.parametrize(
    "content", [b"", b"hello, not an image", b"<svg xmlns='http://www.w3.org/2000/svg'/>"]
)
def test_a_file_that_is_no_image_fails_by_its_bytes_not_its_name(tmp_path, content):
    fake = tmp_path / "photo.jpg"
    fake.write_bytes(content)
    assert "not an image this app takes" in photo_problem(fake, 20 * MB).en


def test_a_huge_image_fails_from_its_header(tmp_path):
    huge = tmp_path / "huge.png"
    huge.write_bytes(png_header(20_000, 20_000))  # 400 MP declared, 60 bytes on disk
    assert photo_problem(huge, 20 * MB).en == "too many pixels"


def test_the_api_takes_a_list_of_uploads_only():
    uploaded = {"path": "/cache/a.png"}
    assert api_photos([uploaded, uploaded], lambda p: p.startswith("/cache/")) == [Path("/cache/a.png")] * 2


@pytest.mark.parametrize(
    ("value", "key"),
    [
        ("a.png", "batch_list"),
        (True, "batch_list"),
        ({"path": "/cache/a.png"}, "batch_list"),
        ([], "batch_list"),
        ([{"path": "/cache/a.png"}] * (MAX_BATCH + 1), "batch_list"),
        ([True], "batch_file"),
        (["/cache/a.png"], "batch_file"),
        ([{"path": "/etc/passwd"}], "batch_file"),
        ([{"url": "data:image/png;base64,AAAA"}], "batch_file"),
        ([{"path": 5}], "batch_file"),
    ],
    ids=repr,
)
def test_the_api_refuses_anything_else(value, key):
    with pytest.raises(ValueError) as info:
        api_photos(value, lambda p: p.startswith("/cache/"))
    assert info.value.args[0] == key


def test_items_are_named_for_their_run_and_place(tmp_path):
    good = photo(tmp_path)
    bad = tmp_path / "bad.jpg"
    bad.write_text("no")
    items = make_items([good, good, bad], "p", "auto", "auto", "run1", 20 * MB)
    assert len({item.stem for item in items}) == 3  # the same photo twice: two items
    assert [item.status for item in items] == ["queued", "queued", "failed"]
    again = make_items([good], "p", "auto", "auto", "run2", 20 * MB)
    assert again[0].stem != items[0].stem  # another run never resumes this one's result


class Clock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


def test_the_pacer_waits_for_each_turn_within_the_limit():
    clock = Clock()
    window = Window(clock=clock)
    sends: list[float] = []
    notes: list[float | None] = []

    async def sleep(seconds: float) -> None:
        notes.append(pacer.next_in())  # what the panel shows while this photo waits
        clock.now += seconds

    pacer = Pacer(window, ["visitor:a", "session:s"], 3, sleep)

    async def send_all() -> None:
        for _ in range(7):
            await pacer()
            sends.append(clock.now)

    asyncio.run(send_all())
    assert len(sends) == 7
    for start in sends:
        assert len([t for t in sends if start <= t < start + 60]) <= 3
    assert notes and all(note is not None and 0 < note <= 60 for note in notes)
    assert pacer.next_in() is None  # nobody waits now


def test_the_pacer_shares_the_window_with_single_edits():
    clock = Clock()
    window = Window(clock=clock)
    assert window.take(["visitor:a"], 2, 2) == 0  # the visitor's own two single edits this minute
    waited: list[float] = []

    async def sleep(seconds: float) -> None:
        waited.append(seconds)
        clock.now += seconds

    asyncio.run(Pacer(window, ["visitor:a"], 2, sleep)())
    assert waited and waited[0] > 0


def test_no_limit_means_no_wait():
    async def sleep(seconds: float) -> None:
        raise AssertionError("no wait expected")

    asyncio.run(Pacer(Window(), [], 0, sleep)())


def item(name: str, status: str, **fields) -> BatchItem:
    return BatchItem(Path("/cache/x") / name, name, status=status, **fields)


def test_the_progress_table_counts_and_escapes():
    items = [
        item("<b>cat.jpg", "done", order_id="SIM1", elapsed=1.25),
        item("dog.jpg", "failed", error_code="282504", error="包含敏感词 / content <i>flagged</i>"),
        item("a.jpg", "running"),
        item("b.jpg", "queued"),
    ]
    assert counts(items) == {"queued": 1, "running": 1, "done": 1, "failed": 1, "total": 4}
    text = progress_html(items, 12.4, chinese=False, next_in=41.6, limit=10)
    assert "4 photos · 1 done · 1 failed · 1 running · 1 queued · 12 s" in text
    assert "next photo goes in 42 s (at most 10 edits per minute)" in text
    assert "&lt;b&gt;cat.jpg" in text and "<b>" not in text and "<i>" not in text
    assert "<code>282504</code> content &lt;i&gt;flagged&lt;/i&gt;" in text
    assert "<code>SIM1</code>" in text and "1.2" in text
    zh = progress_html(items, 0.34, chinese=True)
    assert "共 4 张 · 完成 1 · 失败 1 · 进行中 1 · 排队 1 · 已用 0.3 秒" in zh
    assert "包含敏感词" in zh and "下一张" not in zh
