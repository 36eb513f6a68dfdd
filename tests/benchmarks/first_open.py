"""First open on a phone: `python tests/benchmarks/first_open.py [--runs 9]`.

Chromium at 390x844 over loopback opens app.py (offline, as a first visitor sees it) and the
simplest page a user could build instead (bare_page.py: three image inputs, a button, a gallery).
Measured per open, in a fresh browser context (empty cache): milliseconds from navigation until the
Edit button is visible, and the bytes the page received by then: over the wire (the Resource
Timing API's `transferSize`: compressed bodies and headers) and decoded. Opens alternate between the two
apps; medians are compared. Goal: ratio <= 1.5.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(args: list[str], tmp: Path, name: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUHE_", "GRADIO_"))}
    env.update(
        GRADIO_SERVER_PORT=str(port),
        GRADIO_SERVER_NAME="127.0.0.1",
        GRADIO_TEMP_DIR=str(tmp / f"gradio-{name}"),
        GRADIO_ANALYTICS_ENABLED="False",
        HF_HUB_OFFLINE="1",
        JUHE_OUTPUT_DIR=str(tmp / f"outputs-{name}"),
        PYTHONPATH=str(ROOT),
    )
    log = open(tmp / f"{name}.log", "wb")  # noqa: SIM115 - the process keeps it
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"{name} did not start; see {tmp / f'{name}.log'}")


def open_once(browser, url: str) -> tuple[float, int, int]:
    """Milliseconds to a visible Edit button, and the bytes received until then: over the wire,
    and decoded."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="en-US")
    page = context.new_page()
    sizes: list[int] = []

    def count(response) -> None:
        with contextlib.suppress(Exception):  # a response without a body (a redirect) or an aborted one
            sizes.append(len(response.body()))

    page.on("response", count)
    page.goto(url, wait_until="commit")
    page.locator("button#run").wait_for(state="visible", timeout=60_000)
    elapsed = page.evaluate("() => performance.now()")
    wire = page.evaluate(
        "() => performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))"
        ".reduce((sum, entry) => sum + entry.transferSize, 0)"
    )
    page.remove_listener("response", count)
    total = sum(sizes)
    context.close()
    return elapsed, wire, total


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=9, help="opens of each page (default 9)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="juhe-open-"))
    procs = []
    try:
        app, app_url = start([sys.executable, "app.py"], tmp, "app")
        procs.append(app)
        bare, bare_url = start([sys.executable, str(HERE / "bare_page.py")], tmp, "bare")
        procs.append(bare)
        times: dict[str, list[float]] = {"app": [], "bare": []}
        sizes: dict[str, list[int]] = {"app": [], "bare": []}
        wires: dict[str, list[int]] = {"app": [], "bare": []}
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            for url in (app_url, bare_url):  # warm-up: server caches
                open_once(browser, url)
            for i in range(args.runs):
                order = [("app", app_url), ("bare", bare_url)]
                for name, url in order if i % 2 else reversed(order):
                    ms, wire, size = open_once(browser, url)
                    times[name].append(ms)
                    wires[name].append(wire)
                    sizes[name].append(size)
            browser.close()
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)
    app_ms, bare_ms = statistics.median(times["app"]), statistics.median(times["bare"])
    app_kb, bare_kb = statistics.median(sizes["app"]) / 1024, statistics.median(sizes["bare"]) / 1024
    ms_ratio, kb_ratio = app_ms / bare_ms, app_kb / bare_kb
    print(
        f"Edit button shown at 390 px: app {app_ms:.0f} ms, bare page {bare_ms:.0f} ms, ratio {ms_ratio:.2f}"
    )
    app_wire, bare_wire = statistics.median(wires["app"]) / 1024, statistics.median(wires["bare"]) / 1024
    print(
        f"bytes over the wire by then: app {app_wire:.0f} KiB, bare page {bare_wire:.0f} KiB, "
        f"ratio {app_wire / bare_wire:.2f}"
    )
    print(f"bytes decoded by then: app {app_kb:.0f} KiB, bare page {bare_kb:.0f} KiB, ratio {kb_ratio:.2f}")
    print(f"runs: {args.runs} each; app times {[round(t) for t in times['app']]}")
    return 0 if ms_ratio <= 1.5 else 1


if __name__ == "__main__":
    sys.exit(main())
