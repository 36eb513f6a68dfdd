"""Many bursts in one process: `python tests/benchmarks/long_run.py [--visitors 256] [--bursts 8]`.

The simulator (2 s per edit) and app.py run as on a Space; `--bursts` bursts of `--visitors` edits
at once (burst.py's visitors) go to the same process, one after another, and each burst's CPU
seconds, wall time and last arrival at the provider are printed. Then the same with Python's
default cycle collector (`webapp.memory.calm_collector` made a no-op), to show what it is for: with
the defaults the CPU per burst grows as the heap does.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
from burst import ROOT, App, burst, free_port, start_app, wait_http

DEFAULT_COLLECTOR = (
    "import runpy, webapp.memory as m; m.calm_collector = lambda *a, **k: None; "
    "runpy.run_path('app.py', run_name='__main__')"
)


def run(name: str, command: list[str], args: argparse.Namespace, env: dict, tmp: Path) -> list[float]:
    """Start a simulator and the app, burst it `args.bursts` times; the CPU seconds of each burst."""
    port = free_port()
    sim = subprocess.Popen(
        [sys.executable, "-m", "juhe.simulator", "--port", str(port), "--render-once", "--latency", "2"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    stats = f"http://127.0.0.1:{port}/_sim/stats"
    proc = None
    try:
        wait_http(stats, sim, "simulator")
        proc, url = start_app(
            name, command, env, tmp, f"http://127.0.0.1:{port}/image_edit/edit", args.visitors
        )

        async def arrivals() -> list[float]:
            async with httpx.AsyncClient(timeout=10) as client:
                return (await client.get(stats)).json()["arrivals"]

        app = App(name, proc, url, arrivals)
        asyncio.run(burst(app, 8, "warm"))
        cpus = []
        for k in range(args.bursts):
            measured = asyncio.run(burst(app, args.visitors, f"{name}{k}"))
            cpus.append(measured.cpu)
            print(
                f"  {name} burst {k + 1}: CPU {measured.cpu:.2f} s, wall {measured.wall:.2f} s, "
                f"last at the provider {measured.last:.2f} s",
                flush=True,
            )
        return cpus
    finally:
        for process in (proc, sim):
            if process is not None:
                process.terminate()
                process.wait(20)


def main() -> int:
    """Both runs, then the first and last halves' median CPU per burst of each."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--visitors", type=int, default=256)
    parser.add_argument("--bursts", type=int, default=8)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="juhe-long-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUHE_", "GRADIO_", "BARE_"))}
    env.update(GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    try:
        runs = {
            "app": run("app", [sys.executable, "app.py"], args, env, tmp),
            "default-gc": run("default-gc", [sys.executable, "-c", DEFAULT_COLLECTOR], args, env, tmp),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    half = args.bursts // 2
    for name, cpus in runs.items():
        first, last = statistics.median(cpus[:half]), statistics.median(cpus[half:])
        print(f"{name}: CPU per burst, median of the first {half}: {first:.2f} s, of the last: {last:.2f} s")
    ratio = statistics.median(runs["app"][half:]) / statistics.median(runs["default-gc"][half:])
    print(f"app / default collector, last {args.bursts - half} bursts: {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
