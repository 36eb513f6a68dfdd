"""4 variants against 1 edit: `python tests/benchmarks/variants.py [--latency 2] [--runs 3]`.

The simulator runs as its own process on loopback, each edit taking `--latency` seconds. Timed
through `AsyncImageEditClient`, from the first call until every result is saved (labelled, with its
sidecar): one `edit` + `download`, and `edit_variants(..., 4)` saving each result as it arrives.
Runs are interleaved; medians are printed. Goal: 4 variants take <= 1.15x the time of 1 edit
(the four calls are sent at once, so they wait on the provider together).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(ROOT)]

import httpx  # noqa: E402

from juhe import AsyncImageEditClient, JuheError, edit_variants  # noqa: E402

IMAGE = ROOT / "examples" / "cat.jpg"
GOAL = 1.15


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_simulator(latency: float) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [sys.executable, "-m", "juhe.simulator", "--port", str(port), "--latency", str(latency)]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{base}/_sim/stats", trust_env=False, timeout=1)
            return proc, f"{base}/image_edit/edit"
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the simulator did not start")


async def one_edit(client: AsyncImageEditClient, out: Path) -> int:
    result = await client.edit("benchmark one", [IMAGE], "1024*1024")
    await client.download(result, out)
    return 1


async def four_variants(client: AsyncImageEditClient, out: Path) -> int:
    saved = 0
    async for _index, outcome in edit_variants(client, "benchmark four", [IMAGE], 4, size="1024*1024"):
        if isinstance(outcome, JuheError):
            raise outcome
        await client.download(outcome, out)
        saved += 1
    return saved


async def timed(work, url: str, out: Path) -> float:
    async with AsyncImageEditClient(api_key="bench", api_url=url, timeout=60) as client:
        start = time.perf_counter()
        saved = await work(client, out)
        elapsed = time.perf_counter() - start
    assert saved in (1, 4), saved
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=2.0, help="seconds the simulator takes per edit")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    proc, url = start_simulator(args.latency)
    times: dict[str, list[float]] = {"1 edit": [], "4 variants": []}
    try:
        with tempfile.TemporaryDirectory() as folder:
            for run in range(args.runs):
                for name, work in (("1 edit", one_edit), ("4 variants", four_variants)):
                    elapsed = asyncio.run(timed(work, url, Path(folder) / f"{run}-{name}"))
                    times[name].append(elapsed)
                    print(f"run {run + 1}: {name:<10} {elapsed:.3f} s", flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    one, four = (statistics.median(times[name]) for name in ("1 edit", "4 variants"))
    print(f"simulator latency {args.latency:g} s, {args.runs} runs, medians:")
    print(f"  1 edit      {one:.3f} s")
    print(f"  4 variants  {four:.3f} s")
    verdict = "met" if four / one <= GOAL else "NOT met"
    print(f"  ratio       {four / one:.3f}x (goal <= {GOAL}x: {verdict})")


if __name__ == "__main__":
    main()
