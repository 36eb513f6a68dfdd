"""Take the README's screenshots: desktop and mobile widths, English and Chinese, after one edit whose
result has another shape than 图1 (a square photo edited to 3:2), so the before/after shows how 图1 is
fitted into the result's frame.

    python tools/screenshots.py            # writes docs/screenshots/*.png

Runs the app offline (built-in simulator) in this process and drives Debian's chromium.
"""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.pop("JUHE_API_KEY", None)
os.environ.setdefault("JUHE_SIM_LATENCY", "0.3")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.pop("JUHE_OUTPUT_DIR", None)
os.chdir(tempfile.mkdtemp(prefix="juhe-shots-"))  # results land in ./outputs, as for a visitor

from playwright.sync_api import sync_playwright  # noqa: E402

from webapp.backend import Backend  # noqa: E402
from webapp.folders import output_folder  # noqa: E402
from webapp.settings import AppSettings  # noqa: E402
from webapp.ui import build_demo, launch_options  # noqa: E402

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
VIEWS = {"desktop": {"width": 1366, "height": 900}, "mobile": {"width": 390, "height": 844}}
OUT = ROOT / "docs" / "screenshots"


LOADED = "img => img.complete && img.naturalWidth > 0"


def shoot(url: str, locale: str, view: str, browser) -> Path:
    """One full-page screenshot after editing the square astronaut to a 3:2 result."""
    page = browser.new_page(locale=locale, viewport=VIEWS[view], device_scale_factor=1)
    page.goto(url)
    page.locator("#image1 input[type=file]").set_input_files(str(ROOT / "examples" / "astronaut.jpg"))
    page.locator("#prompt textarea").fill("把背景换成火星表面, 人物保持不变 / put her on the surface of Mars")
    page.locator("#size input").click()
    page.locator("#size [data-testid=dropdown-option]", has_text="3:2").click()
    page.locator("button#run").click()
    page.locator("#status code").wait_for(timeout=30_000)
    for image in page.locator("#result img, #compare img").all():
        page.wait_for_function(LOADED, arg=image.element_handle(), timeout=30_000)
    page.wait_for_timeout(800)
    path = OUT / f"{view}-{locale}.png"
    page.screenshot(path=str(path), full_page=True)
    page.close()
    return path


def shoot_region(url: str, browser) -> Path:
    """The region-edit example, done: only the painted area changed."""
    page = browser.new_page(locale="en-US", viewport=VIEWS["desktop"], device_scale_factor=1)
    page.goto(url)
    page.get_by_text("One region").click()
    page.locator("#region canvas").first.wait_for(timeout=30_000)
    page.wait_for_timeout(1500)
    page.locator("button#run").click()
    page.locator("#status code").wait_for(timeout=30_000)
    for image in page.locator("#result img, #compare img").all():
        page.wait_for_function(LOADED, arg=image.element_handle(), timeout=30_000)
    page.wait_for_timeout(800)
    path = OUT / "region-en-US.png"
    page.screenshot(path=str(path), full_page=True)
    page.close()
    return path


def shoot_share(url: str, browser) -> Path:
    """A share page, as someone who got the link sees it (another browser, no session)."""
    owner = browser.new_page(locale="en-US", viewport=VIEWS["desktop"])
    owner.goto(url)
    owner.locator("#image1 input[type=file]").set_input_files(str(ROOT / "examples" / "coffee.jpg"))
    owner.locator("#prompt textarea").fill("Turn this photo into a watercolor painting")
    owner.locator("button#run").click()
    owner.locator("#status code").wait_for(timeout=30_000)
    owner.locator("#share").click()
    link = owner.locator("#share-link textarea, #share-link input").first
    owner.wait_for_function("e => e.value.includes('/share/')", arg=link.element_handle())
    address = link.input_value()
    owner.close()
    context = browser.new_context(locale="zh-CN", viewport={"width": 1000, "height": 900})
    page = context.new_page()
    page.goto(address)
    page.wait_for_timeout(1000)
    path = OUT / "share-page.png"
    page.screenshot(path=str(path), full_page=True)
    context.close()
    return path


def main() -> None:
    """Launch the app, take the screenshots, close everything."""
    OUT.mkdir(parents=True, exist_ok=True)
    settings = AppSettings.load(dotenv=False)
    settings = replace(settings, output_dir=output_folder(settings.output_dir))
    backend = Backend(settings)
    demo = build_demo(settings, backend)
    _, url, _ = demo.launch(prevent_thread_lock=True, quiet=True, **launch_options(settings, backend))
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            for view in VIEWS:
                for locale in ("en-US", "zh-CN"):
                    print(shoot(url, locale, view, browser))
            print(shoot_region(url, browser))
            print(shoot_share(url, browser))
            browser.close()
    finally:
        demo.close()


if __name__ == "__main__":
    main()
