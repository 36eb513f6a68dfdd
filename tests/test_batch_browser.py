"""Batch (issue 19) in a real browser, in English on a desktop and in Chinese on a phone: open the
closed panel, drop four photos at once, run them with one instruction, watch each photo's state (one
fails with its provider code while a slow one is still running), retry the failed one alone, see
every result join the history, and download the zip of four images with its manifests.

A live app against its own `Simulator`, whose queued faults make one call fail and one slow. Every
wait ends as soon as its condition holds. `JUHE_BATCH_SCREENSHOT=1` also saves the panel after the
first run (one photo failed) as docs/screenshots/batch.png (desktop) and batch-mobile-zh-CN.png (phone).
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.apphost import RunningApp, image_file, running_app
from helpers.tags import marker
from playwright.sync_api import Browser, expect

pytestmark = [
    pytest.mark.browser,
    pytest.mark.app,
    pytest.mark.loopback,
    pytest.mark.timeout(240),
]

WAIT_MS = 30_000
SHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
WORDS = {
    "en-US": {
        "ready": "4 photos ready",
        "running": "⏳ running",
        "failed": "✕ failed",
        "finished": "Batch finished: 3 of 4 made",
        "some_failed": "1 failed: Retry failed sends those alone",
        "all": "Batch finished: 4 of 4 made",
    },
    "zh-CN": {
        "ready": "已选 4 张照片",
        "running": "⏳ 进行中",
        "failed": "✕ 失败",
        "finished": "批量完成：3/4 张成功",
        "some_failed": "1 张失败，可单独重试",
        "all": "批量完成：4/4 张成功",
    },
}


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    with running_app(tmp_path_factory.mktemp("batch-page"), JUHE_CONCURRENCY="4") as launched:
        yield launched


@pytest.mark.parametrize(("locale", "width"), [("en-US", 1366), ("zh-CN", 390)])
def test_a_batch_of_four_runs_fails_one_retries_it_and_downloads_the_zip(
    browser: Browser, running: RunningApp, tmp_path, locale, width
):
    words = WORDS[locale]
    colors = ["red", "green", "blue", "orange"]
    photos = [image_file(tmp_path / f"photo-{c}.jpg", (320, 240), c) for c in colors]
    # two photos go at once: the first call fails, the second takes 3 s (so "running" can be seen)
    running.provider.inject("282505", "slow=3")
    context = browser.new_context(
        locale=locale, viewport={"width": width, "height": 900}, accept_downloads=True
    )
    try:
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(running.url)
        expect(page.locator("button#run")).to_be_enabled()
        panel = page.locator("#batch")
        expect(page.locator("#batch-files")).to_be_hidden()  # closed at first: nothing heavy loads
        panel.locator("button").first.click()
        page.locator("#batch-files input[type=file]").set_input_files([str(p) for p in photos])
        progress = page.locator("#batch-progress")
        expect(progress).to_contain_text(words["ready"])
        tag = marker()
        page.locator("#batch-prompt textarea").fill(f"watercolour {tag}")
        page.locator("#batch-run").click()

        expect(progress.locator("tr.running")).to_have_count(1)  # the slow one, while others are done
        expect(progress).to_contain_text(words["running"])
        expect(progress).to_contain_text(words["finished"], timeout=60_000)
        expect(progress).to_contain_text(words["some_failed"])
        expect(progress.locator("tr.failed")).to_have_count(1)
        expect(progress.locator("tr.failed")).to_contain_text(words["failed"])
        expect(progress.locator("tr.failed code")).to_have_text("282505")
        expect(progress.locator("tr.done")).to_have_count(3)
        expect(page.locator("#history .thumbnail-item")).to_have_count(3)  # the made ones, as they came

        retry = page.locator("#batch-retry")
        expect(retry).to_be_visible()
        expect(page.locator("#batch-zip a").first).to_be_visible()
        if os.environ.get("JUHE_BATCH_SCREENSHOT"):  # the panel after a batch with one failure
            name = "batch.png" if width > 800 else "batch-mobile-zh-CN.png"
            panel.screenshot(path=str(SHOTS / name))
        retry.click()
        expect(progress).to_contain_text(words["all"], timeout=60_000)
        expect(retry).to_be_hidden()
        expect(progress.locator("tr.done")).to_have_count(4)
        expect(page.locator("#history .thumbnail-item")).to_have_count(4)
        requests = [r for r in running.requests_with(tag) if r["outcome"] != "slow"]
        assert len(requests) == 5  # four photos, and the failed one once more

        link = page.locator("#batch-zip a").first
        expect(link).to_be_visible()
        with page.expect_download() as download_info:
            link.click()
        download = download_info.value
        assert download.suggested_filename == "juhe-batch.zip"
        with zipfile.ZipFile(io.BytesIO(Path(download.path()).read_bytes())) as archive:
            images = [n for n in archive.namelist() if n.endswith(".png")]
            assert len(images) == 4
            rows = json.loads(archive.read("manifest.json"))
            assert sorted(r["input"] for r in rows) == sorted(p.name for p in photos)
            assert {r["status"] for r in rows} == {"done"}

        # after a reload the history still holds the four (from the saved records)
        page.reload()
        expect(page.locator("#history .thumbnail-item")).to_have_count(4)
    finally:
        context.close()
