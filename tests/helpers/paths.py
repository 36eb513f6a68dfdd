"""Where things are: the checkout, its example photos, and Debian's chromium with the flags the
browser tests launch it with. Cheap to import (no Gradio, no Playwright), so `conftest` can."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CAT = ROOT / "examples" / "cat.jpg"
COFFEE = ROOT / "examples" / "coffee.jpg"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
