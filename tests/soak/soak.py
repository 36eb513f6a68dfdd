"""Fault soak: many edits through the app's /edit, several at once, against a faulty provider.

    python tests/soak/soak.py --runs 500 --concurrency 8

The app runs as a subprocess (`python app.py`, live mode) against a provider simulator in this
process, on loopback only, with random faults in about a fifth of the calls and a slow answer (5 s)
beyond the app's read timeout (3 s) every 25th run. Every run has its own prompt id. It checks and
prints: no crash and the app still answering; every success saved with its sidecar; every failure
a coded, bilingual message; no request repeated after a read timeout; the app's memory (VmRSS)
over the first and the last 100 runs. Exit status 0 when every check passes.

Bounded in count (--runs) and time (--max-seconds). Not collected by pytest (see pyproject).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from juhe.simulator import Simulator  # noqa: E402

SERVER_KEY = "sk-soak-SECRET-0123456789abcdef"
CODED = re.compile(
    r"\b(2825\d\d|100\d\d)\b|http \d{3}|timeout|connection dropped|connect|malformed|download failed|"
    r"transport error",
    re.IGNORECASE,
)
HAN = re.compile(r"[\u4e00-\u9fff]")
ENGLISH = re.compile(r"\b[A-Za-z]{2,} [A-Za-z]{2,}\b")


def bilingual(message: str) -> bool:
    """True for "中文 / English", the form of every error: Chinese, then an English phrase."""
    chinese, slash, english = message.partition(" / ")
    return bool(slash and HAN.search(chinese) and ENGLISH.search(english))


@dataclass
class Run:
    """One edit: what was asked, what came back, and the app's memory just after."""

    index: int
    prompt_id: str
    slow_mark: bool
    seconds: float = 0.0
    status: str | None = None  # the order id of a success
    error: str | None = None  # the visitor's message of a failure
    crash: str | None = None  # anything else
    rss_kb: int = 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_kb(pid: int) -> int:
    """VmRSS of a process from /proc (psutil is not installed)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def make_inputs(folder: Path) -> list[Path]:
    """A few small photos-like inputs: JPEGs and one PNG."""
    paths = []
    for n, color in enumerate([(200, 80, 60), (60, 140, 200), (90, 170, 90), (230, 200, 80)]):
        image = Image.new("RGB", (480, 360), color)
        draw = ImageDraw.Draw(image)
        draw.ellipse((100 + 20 * n, 60, 380, 300), fill=(255 - color[0], 255 - color[1], 255 - color[2]))
        path = folder / f"input{n}.{'png' if n == 3 else 'jpg'}"
        image.save(path)
        paths.append(path)
    return paths


def start_app(sim: Simulator, folder: Path, port: int, timeout: float, log) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUHE_", "GRADIO_"))}
    env.update(
        JUHE_API_KEY=SERVER_KEY,
        JUHE_API_URL=sim.url,
        JUHE_TIMEOUT=str(timeout),
        JUHE_OUTPUT_DIR=str(folder / "outputs"),
        JUHE_RATE_LIMIT="0",
        GRADIO_TEMP_DIR=str(folder / "gradio"),
        GRADIO_SERVER_NAME="127.0.0.1",
        GRADIO_SERVER_PORT=str(port),
        GRADIO_ANALYTICS_ENABLED="False",
        PYTHONUNBUFFERED="1",
    )
    return subprocess.Popen(
        [sys.executable, str(ROOT / "app.py")], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )


def wait_ready(url: str, app: subprocess.Popen, within: float = 90.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if app.poll() is not None:
            raise SystemExit(f"the app exited during startup (status {app.returncode})")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise SystemExit(f"the app did not answer at {url} within {within:.0f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--fault-rate", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=3.0, help="the app's JUHE_TIMEOUT")
    parser.add_argument("--slow", type=float, default=5.0, help="seconds a slow answer takes")
    parser.add_argument("--slow-every", type=int, default=25, help="mark every Nth run [sim:slow]")
    parser.add_argument("--max-seconds", type=float, default=900.0, help="stop submitting after this")
    parser.add_argument("--max-rss-growth-mb", type=float, default=50.0, help="last 100 vs first 100")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (outputs, app.log)")
    args = parser.parse_args(argv)

    folder = Path(tempfile.mkdtemp(prefix="juhe-soak-"))
    inputs = make_inputs(folder)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    log_path = folder / "app.log"
    runs = [
        Run(i, f"soak-{i:04d}-{uuid.uuid4().hex[:8]}", args.slow_every > 0 and i % args.slow_every == 0)
        for i in range(1, args.runs + 1)
    ]
    sim = Simulator(fault_rate=args.fault_rate, seed=args.seed, slow_seconds=args.slow).start()
    with open(log_path, "wb") as log:
        app = start_app(sim, folder, port, args.timeout, log)
    try:
        wait_ready(url, app)
        rss_start = rss_kb(app.pid)
        local = threading.local()
        started = time.monotonic()

        def one(run: Run) -> Run:
            if time.monotonic() - started > args.max_seconds:
                run.crash = "not run: --max-seconds reached"
                return run
            if not hasattr(local, "client"):
                local.client = Client(url, verbose=False, download_files=False)
            prompt = (
                f"[sim:slow={args.slow:g}] " if run.slow_mark else ""
            ) + f"{run.prompt_id} 把背景换成海边"
            size = "auto" if run.index % 10 == 0 else "512*512"
            image = handle_file(str(inputs[run.index % len(inputs)]))
            t0 = time.monotonic()
            try:
                _, record = local.client.predict(image, prompt=prompt, size=size, api_name="/edit")
                run.status = record["order_id"]
            except AppError as exc:
                run.error = str(exc)
            except Exception as exc:  # a crash, as the visitor would see it
                run.crash = f"{type(exc).__name__}: {exc}"
            run.seconds = time.monotonic() - t0
            run.rss_kb = rss_kb(app.pid) if app.poll() is None else 0
            if run.index % 50 == 0:
                print(f"  ... {run.index} submitted, {time.monotonic() - started:.0f} s", file=sys.stderr)
            return run

        with ThreadPoolExecutor(args.concurrency) as pool:
            list(pool.map(one, runs))
        duration = time.monotonic() - started

        alive = app.poll() is None
        answering = False
        health = None
        if alive:
            answering = httpx.get(url, timeout=10).status_code == 200
            try:
                _, record = Client(url, verbose=False, download_files=False).predict(
                    handle_file(str(inputs[0])), prompt="health check after the soak", api_name="/edit"
                )
                health = f"ok {record['order_id']}"
            except Exception as exc:  # reported below
                health = f"FAILED: {exc}"
        return report(args, runs, sim, folder, log_path, duration, rss_start, alive, answering, health)
    finally:
        if app.poll() is None:
            app.terminate()
            try:
                app.wait(timeout=20)
            except subprocess.TimeoutExpired:
                app.kill()
        sim.stop()
        if args.keep:
            print(f"work folder kept: {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


def report(args, runs, sim, folder, log_path, duration, rss_start, alive, answering, health) -> int:
    out = io.StringIO()
    checks: list[tuple[str, bool]] = []

    def line(text: str = "") -> None:
        print(text, file=out)

    done = [r for r in runs if r.crash != "not run: --max-seconds reached"]
    successes = [r for r in done if r.status is not None]
    failures = [r for r in done if r.error is not None]
    crashes = [r for r in done if r.crash is not None]
    output_dir = folder / "outputs"

    # every success saved with its sidecar
    unsaved = []
    for run in successes:
        order = run.status
        image, sidecar = output_dir / f"{order}.png", output_dir / f"{order}.json"
        if not (image.is_file() and sidecar.is_file()):
            unsaved.append(order)
            continue
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
        if meta.get("order_id") != order or run.prompt_id not in meta.get("prompt", ""):
            unsaved.append(order)
    saved_images = len(list(output_dir.glob("*.png"))) if output_dir.exists() else 0

    # every failure coded and bilingual
    unclear = [r for r in failures if not (CODED.search(r.error) and bilingual(r.error))]
    kinds: dict[str, int] = {}
    for run in failures:
        match = CODED.search(run.error)
        kind = (match.group(0).lower() if match else "unclear").replace("connection dropped", "dropped")
        kinds[kind] = kinds.get(kind, 0) + 1

    # no read timeout retried: after a slow request, its prompt id is never seen again. The
    # simulator records a slow request twice, on arrival ("slow") and when its answer is ready
    # (after the client gave up): wait for those answers, then expect exactly one entry after "slow".
    requests = sim.stats()["requests"]
    slow_times = [r["time"] for r in requests if r["outcome"] == "slow"]
    if slow_times:
        time.sleep(max(0.0, max(slow_times) + args.slow + 1.0 - time.time()))
        requests = sim.stats()["requests"]
    by_id: dict[str, list[str]] = {}
    for request in requests:
        found = re.search(r"soak-\d{4}-[0-9a-f]{8}", request["text"])
        if found:
            by_id.setdefault(found.group(0), []).append(request["outcome"])
    slow_ids = [pid for pid, outcomes in by_id.items() if "slow" in outcomes]
    retried_after_timeout = [
        pid
        for pid in slow_ids
        if len(after := by_id[pid][by_id[pid].index("slow") + 1 :]) != 1 or "slow" in after
    ]
    slow_runs = {r.prompt_id: r for r in done if r.prompt_id in slow_ids}
    slow_not_timeout = [pid for pid, r in slow_runs.items() if not (r.error and "timeout" in r.error)]
    arrivals = sum(len(v) - v.count("slow") for v in by_id.values())  # HTTP requests, completions aside
    status_retries = arrivals - len(by_id)

    # memory
    rss = [r.rss_kb for r in sorted(done, key=lambda r: r.index) if r.rss_kb]
    first, last = rss[:100], rss[-100:]

    log_text = log_path.read_text(encoding="utf-8", errors="replace")
    tracebacks = log_text.count("Traceback (most recent call last)")

    latencies = sorted(r.seconds for r in successes)
    line(
        f"Fault soak: {len(done)} of {len(runs)} edits, {args.concurrency} at once, "
        f"fault rate {args.fault_rate}, JUHE_TIMEOUT {args.timeout:g} s, slow answers {args.slow:g} s"
    )
    line(f"  duration            {duration:.0f} s ({len(done) / duration:.1f} edits/s)")
    line(f"  successes           {len(successes)}  (saved images in JUHE_OUTPUT_DIR: {saved_images})")
    if latencies:
        line(
            f"  success latency     p50 {statistics.median(latencies):.2f} s, "
            f"p95 {latencies[int(0.95 * (len(latencies) - 1))]:.2f} s, max {latencies[-1]:.2f} s"
        )
    line(f"  failures            {len(failures)}: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())))
    line(f"  crashes             {len(crashes)}")
    line(f"  provider requests   {arrivals} ({status_retries} repeats after HTTP 429/5xx)")
    line(
        f"  slow (> timeout)    {len(slow_ids)} runs; "
        f"repeated after the timeout: {len(retried_after_timeout)}"
    )
    if first and last:
        line(
            f"  app RSS             start {rss_start / 1024:.0f} MB; first 100 runs mean "
            f"{statistics.mean(first) / 1024:.0f} MB (max {max(first) / 1024:.0f}); last 100 runs mean "
            f"{statistics.mean(last) / 1024:.0f} MB (max {max(last) / 1024:.0f})"
        )
    line(f"  app alive           {alive}; answering GET /: {answering}; health edit: {(health or '')[:40]}")
    line(f"  tracebacks in log   {tracebacks}")
    line(f"  server key in log   {SERVER_KEY in log_text}")

    checks += [
        ("all runs done within --max-seconds", len(done) == len(runs)),
        ("no crash", not crashes),
        ("app alive and answering", alive and answering and bool(health) and health.startswith("ok ")),
        ("every success saved with its sidecar", not unsaved and saved_images == len(successes) + 1),
        ("every failure coded and bilingual", not unclear),
        ("slow answers happened", bool(slow_ids)),
        ("no request repeated after a read timeout", not retried_after_timeout),
        ("every slow run told the visitor 'timeout'", not slow_not_timeout),
        ("no traceback in the app's log", tracebacks == 0),
        (
            f"app memory settles (last 100 runs within {args.max_rss_growth_mb:g} MB of the first 100)",
            bool(first and last)
            and (statistics.mean(last) - statistics.mean(first)) / 1024 <= args.max_rss_growth_mb,
        ),
        ("server key not in the app's log", SERVER_KEY not in log_text),
    ]
    line()
    for name, ok in checks:
        line(f"  [{'PASS' if ok else 'FAIL'}] {name}")
    for run in crashes[:5]:
        line(f"    crash #{run.index}: {run.crash[:300]}")
    for run in unclear[:5]:
        line(f"    unclear #{run.index}: {run.error[:300]}")
    for order in unsaved[:5]:
        line(f"    not saved: {order}")
    print(out.getvalue(), end="")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
