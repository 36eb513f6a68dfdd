"""The stakeholder walkthrough of issue 18, run by a browser: `python tools/walkthrough.py [--out DIR]`.

For each language (en, zh), screen (desktop 1366 px, phone 390 px) and theme (light, dark) it goes
through the unhappy paths a presenter meets (a failure after a result, a bad upload, a bad size,
cancel, share and revoke, delete) and the three views (what changed, the record of a history item,
a swap of 图1 and 图2), checks what a person would look for at each step, saves a screenshot of
each step and one contact sheet per combination (DIR/sheet-<lang>-<screen>-<theme>.png, the steps
side by side, to look at), and prints the checklist. With `--readme docs/screenshots` it also
saves the README's screenshots of the swap (the 图 slots and the renumbering offer) and of three
variants (tools/screenshots.py makes the others). The app runs live against its own simulator
(tests/helpers/apphost.py), so failures and slow answers can be asked for in the instruction.
Exit status 1 when any check fails.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from helpers.apphost import running_app  # noqa: E402
from helpers.browser import ORDER_ID, wait_done  # noqa: E402
from helpers.paths import CAT, CHROMIUM, CHROMIUM_ARGS, COFFEE  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402
from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402

WAIT_MS = 30_000
SCREENS = {"desktop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}
LOCALES = {"en": "en-US", "zh": "zh-CN"}
HAN = re.compile(r"[\u4e00-\u9fff]")
SHEET_WIDTH = 360  # each step's thumbnail in the contact sheet


@dataclass
class Run:
    """One combination's steps: (name, passed, detail, screenshot)."""

    name: str
    steps: list[tuple[str, bool, str, Path | None]] = field(default_factory=list)


def on_top(page: Page, selector: str) -> bool:
    """True when the middle of the first `selector` is not covered by anything else, once it is on
    screen (on a phone, Edit scrolls the result into view smoothly: it is looked at where it lands)."""
    element = page.locator(selector).first
    element.scroll_into_view_if_needed()
    page.wait_for_function(
        """el => new Promise(done => { const y = el.getBoundingClientRect().top;
        setTimeout(() => done(Math.abs(el.getBoundingClientRect().top - y) < 1), 150); })""",
        arg=element.element_handle(),
    )
    return element.evaluate(
        """el => { const r = el.getBoundingClientRect();
        const top = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
        return Boolean(top && (top === el || el.contains(top))); }"""
    )


def shape(page: Page, selector: str) -> tuple[int, int]:
    """The natural size of the picture an <img> shows, once it has loaded."""
    image = page.locator(selector).first
    image.page.wait_for_function("i => i.complete && i.naturalWidth > 0", arg=image.element_handle())
    return tuple(image.evaluate("i => [i.naturalWidth, i.naturalHeight]"))


def toasts(page: Page) -> int:
    return page.locator("[data-testid=toast-body]").count()


def status(page: Page) -> str:
    return page.locator("#status").inner_text()


def in_language(text: str, language: str) -> bool:
    """The text reads in the page's language: its first part (before " / ", where a message gives
    both) is mostly Han characters on a Chinese page, mostly Latin letters on an English one."""
    first = text.partition(" / ")[0]
    han = len(HAN.findall(first))
    latin = len(re.findall(r"[A-Za-z]", re.sub(r"SIM\w+", "", first)))
    return han * 3 >= latin if language == "zh" else latin > han * 3


def walk(
    page: Page, language: str, screen: str, theme: str, folder: Path, run: Run, tmp: Path, readme: Path | None
) -> None:
    """The steps, each checked and photographed."""

    def step(name: str, check: Callable[[], tuple[bool, str]], full: bool = False) -> None:
        try:
            passed, detail = check()
        except Exception as exc:  # a step that cannot run fails, and the walk goes on
            passed, detail = False, f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
        shot = folder / f"{len(run.steps) + 1:02d}-{name.replace(' ', '-')}.png"
        page.screenshot(path=str(shot), full_page=full)
        run.steps.append((name, passed, detail, shot))

    def first_screen():
        expect(page.locator("button#run")).to_be_enabled()
        title = page.locator("h1").first.inner_text()
        return in_language(title, language), title

    step("first screen", first_screen)

    def an_edit():
        page.locator("#image1 input[type=file]").set_input_files(str(CAT))
        expect(page.locator("#image1 img")).to_be_visible()
        page.locator("#prompt textarea").fill("把图中的小猫换成小狗")
        page.locator("button#run").click()
        order = wait_done(page)
        src = page.locator("#result img").get_attribute("src") or ""
        return order in src and toasts(page) == 0, f"order {order} on show"

    step("an edit", an_edit)
    order = ORDER_ID.search(status(page)).group(0) if ORDER_ID.search(status(page)) else ""

    def failure_after_result():
        page.locator("#prompt textarea").fill("not allowed [sim:282504]")
        page.locator("button#run").click()
        expect(page.locator("#status")).to_contain_text("282504")
        kept = order in (page.locator("#result img").get_attribute("src") or "")
        readable = on_top(page, "#result img") and on_top(page, "#status p")
        said = in_language(status(page), language)
        return kept and readable and toasts(page) <= 1 and said, (
            f"result kept {kept}, uncovered {readable}, toasts {toasts(page)}, status in page language {said}"
        )

    step("failure after a result", failure_after_result)

    def bad_size():
        page.locator("#size input").click()
        page.locator("#size [data-testid=dropdown-option]").last.click()  # the custom size is last
        page.locator("#width input").fill("300")
        page.locator("#width input").blur()
        expect(page.locator("#size-note")).not_to_have_text("")
        disabled = page.locator("button#run").is_disabled()
        note = page.locator("#size-note").inner_text()
        page.locator("#width input").fill("1024")
        page.locator("#width input").blur()
        expect(page.locator("#size-note")).to_have_text("")
        page.locator("#size input").click()
        page.locator("#size [data-testid=dropdown-option]").first.click()
        return disabled and in_language(note, language), f"Edit disabled {disabled}; note: {note[:80]}"

    step("bad size", bad_size)

    def bad_upload():
        fake = tmp / "not-an-image.png"
        fake.write_text("this is not an image")
        for close in page.locator("[data-testid=toast-close]").all():  # the last failure's toast
            close.click()
        toast = page.locator("[data-testid=toast-body]")
        expect(toast).to_have_count(0)
        page.locator("#image1 input[type=file]").set_input_files(str(fake))
        expect(toast).to_have_count(1)
        expect(page.locator("#image1 img")).to_have_count(0)
        text = toast.inner_text().strip().splitlines()[-1]  # the message, under Gradio's title
        kept = order in (page.locator("#result img").get_attribute("src") or "")
        return kept and in_language(text, language), f"one toast, result kept {kept}: {text[:90]!r}"

    step("bad upload", bad_upload)

    def cancel():
        page.locator("#image1 input[type=file]").set_input_files(str(CAT))
        expect(page.locator("#image1 img")).to_be_visible()
        page.locator("#prompt textarea").fill("slow [sim:slow=8]")
        page.locator("button#run").click()
        expect(page.locator("#cancel")).to_be_enabled()
        page.locator("#cancel").click()
        expect(page.locator("#cancel")).to_be_disabled()
        kept = order in (page.locator("#result img").get_attribute("src") or "")
        return kept and in_language(status(page), language), f"result kept {kept}: {status(page)[:80]!r}"

    step("cancel", cancel)

    def late_result():
        # the cancelled edit still finishes at the provider and joins the history
        expect(page.locator("#history img")).to_have_count(2, timeout=WAIT_MS)
        return True, status(page)[:80]

    step("late result collected", late_result)

    def history_record():
        page.locator("#history img").last.click()
        expect(page.locator("#record")).to_contain_text(order)
        record = page.locator("#record").inner_text()
        return order in record and in_language(record, language), record[:90].replace("\n", " · ")

    step("history item opened", history_record, full=True)

    def what_changed():
        page.locator("#changes-show").click()
        expect(page.locator("#changes-text")).to_be_visible()
        text = page.locator("#changes-text").inner_text()
        return "%" in text and in_language(text, language), text[:90]

    step("what changed", what_changed)

    def share_revoke():
        page.locator("#share").click()
        link = page.locator("#share-link textarea, #share-link input").first
        expect(link).to_have_value(re.compile("/share/"))
        page.locator("#revoke").click()
        expect(page.locator("#share-link")).to_be_hidden()
        return in_language(status(page), language), status(page)[:80]

    step("share then revoke", share_revoke)

    def delete():
        page.once("dialog", lambda dialog: dialog.accept())
        page.locator("#delete").click()
        expect(page.locator("#history img")).to_have_count(1)
        return in_language(status(page), language), status(page)[:80]

    step("delete", delete)

    def swap():
        if not page.locator("#image1 img").count():  # Delete emptied it: its upload went too
            page.locator("#image1 input[type=file]").set_input_files(str(CAT))
            expect(page.locator("#image1 img")).to_be_visible()
        page.locator("#image2 input[type=file]").set_input_files(str(COFFEE))
        expect(page.locator("#image2 img")).to_be_visible()
        page.locator("#prompt textarea").fill("把图1的猫放进图2的杯子里")
        one, two = shape(page, "#image1 img"), shape(page, "#image2 img")
        page.locator("#swap12").click()
        expect(page.locator("#renumber-apply")).to_be_visible()
        if readme and language == "en" and screen == "desktop" and theme == "light":
            slots, offer = page.locator("#slots").bounding_box(), page.locator("#renumber").bounding_box()
            bottom = offer["y"] + offer["height"]
            clip = {"x": slots["x"], "y": slots["y"], "width": slots["width"], "height": bottom - slots["y"]}
            page.screenshot(path=str(readme / "reorder-en-US.png"), clip=clip)
        page.wait_for_function(
            "([a, b]) => a.naturalWidth && b.naturalWidth",
            arg=[page.locator("#image1 img").element_handle(), page.locator("#image2 img").element_handle()],
        )
        swapped = (shape(page, "#image1 img"), shape(page, "#image2 img")) == (two, one)
        return swapped, f"图1 {one} and 图2 {two} swapped {swapped}, renumbering offered"

    step("swap image 1 and 2", swap)

    def variants():
        page.locator("#renumber-apply").click()
        page.locator("#variants label", has_text="3").click()
        page.locator("button#run").click()
        tiles = page.locator("#results .thumbnail-item")
        expect(tiles).to_have_count(3)
        wait_done(page)
        return toasts(page) == 0 and in_language(status(page), language), status(page)[:80]

    step("three variants", variants)
    if readme and language == "en" and screen == "desktop" and theme == "light":
        page.locator("#results-panel").screenshot(path=str(readme / "variants-en-US.png"))


def contact_sheet(run: Run, target: Path) -> None:
    """The steps' screenshots side by side, four to a row, each under its name and verdict."""
    thumbs = []
    font = ImageFont.load_default(size=18)
    for name, passed, _, shot in run.steps:
        with Image.open(shot) as image:
            image = image.convert("RGB")
            height = round(image.height * SHEET_WIDTH / image.width)
            thumb = image.resize((SHEET_WIDTH, min(height, 1400)))
        colour = (30, 160, 60) if passed else (210, 40, 40)
        frame = Image.new("RGB", (SHEET_WIDTH + 8, thumb.height + 34), colour)
        ImageDraw.Draw(frame).text((6, 5), name, fill="white", font=font)
        frame.paste(thumb, (4, 30))
        thumbs.append(frame)
    per_row = 4
    rows = [thumbs[i : i + per_row] for i in range(0, len(thumbs), per_row)]
    width = per_row * (SHEET_WIDTH + 12)
    height = sum(max(t.height for t in row) + 12 for row in rows)
    sheet = Image.new("RGB", (width, height), "white")
    y = 0
    for row in rows:
        for column, thumb in enumerate(row):
            sheet.paste(thumb, (column * (SHEET_WIDTH + 12), y))
        y += max(t.height for t in row) + 12
    sheet.save(target)


def main(argv: list[str] | None = None) -> int:
    """Run every combination; print the checklist; 1 when a check failed."""
    parser = argparse.ArgumentParser(prog="python tools/walkthrough.py", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "juhe-walkthrough")
    parser.add_argument("--only", help="one combination, e.g. zh-phone-dark")
    parser.add_argument(
        "--readme", type=Path, help="also save the README's screenshots in this folder (docs/screenshots)"
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    runs: list[Run] = []
    with tempfile.TemporaryDirectory() as scratch, running_app(Path(scratch)) as app, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        for language in LOCALES:
            for screen, viewport in SCREENS.items():
                for theme in ("light", "dark"):
                    name = f"{language}-{screen}-{theme}"
                    if args.only and args.only != name:
                        continue
                    run = Run(name)
                    folder = args.out / name
                    folder.mkdir(exist_ok=True)
                    context = browser.new_context(
                        locale=LOCALES[language], viewport=viewport, color_scheme=theme
                    )
                    page = context.new_page()
                    page.set_default_timeout(WAIT_MS)
                    page.goto(f"{app.url}/?__theme={theme}")
                    walk(page, language, screen, theme, folder, run, Path(scratch), args.readme)
                    context.close()
                    contact_sheet(run, args.out / f"sheet-{name}.png")
                    runs.append(run)
                    print(f"\n{name}")
                    for step_name, passed, detail, _ in run.steps:
                        print(f"  {'✓' if passed else '✗'} {step_name}: {detail}")
        browser.close()
    failed = sum(not passed for run in runs for _, passed, _, _ in run.steps)
    total = sum(len(run.steps) for run in runs)
    print(f"\n{total - failed} of {total} checks passed; screenshots and contact sheets in {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
