"""One edit process's share of a burst: `python tests/benchmarks/downloads.py [--at-once 128]
[--rounds 7] [--tmp DIR]`.

An edit process saves 128 results at a time when 256 edits come back at once. This fetches one
result from the simulator (on loopback, in its own process), then downloads it `--at-once` times at
once per round, each under its own order id, through what the edit processes use:
`AsyncImageEditClient(save_on_loop=True).download` with the shared transport, which checks the
image, labels it as AI-made and writes it with its sidecar. Beside it, in turns, the naive path a
user could write: one `httpx.AsyncClient`, `get` the link and write the bytes to a file. Both run
in this process set up as an edit process is (its memory and collector settings).

Prints the CPU this process spent per download (the median over the rounds after the first) and
the wall time of a round, for both, and their ratio. `--tmp` picks where the files go (default:
the system's temp folder; see `burst.py` on why that can matter).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import dataclasses
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from burst import free_port, wait_http  # noqa: E402

from juhe import AsyncImageEditClient, Settings  # noqa: E402
from juhe._transport import async_http_transport  # noqa: E402
from webapp.memory import calm_collector, install_fast_failed_imports, return_large_buffers  # noqa: E402


async def measure(args: argparse.Namespace, sim_url: str, out: Path) -> dict[str, list[tuple[float, float]]]:
    """(CPU ms per download, wall s) of each round, for ours and the naive path, in turns."""
    image = (
        "data:image/jpeg;base64," + base64.b64encode((ROOT / "examples" / "cat.jpg").read_bytes()).decode()
    )
    settings = Settings(api_key="benchmark", api_url=sim_url)
    ours = AsyncImageEditClient(
        settings=settings, transport=async_http_transport(2 * args.at_once), save_on_loop=True
    )
    naive = httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=2 * args.at_once))
    result = await ours.edit("benchmark", [image], None, "auto")
    size = len((await naive.get(result.image_urls[0])).content)
    print(f"result: {size:,} bytes; {args.at_once} downloads at once, {args.rounds} rounds")

    async def naive_download(n: int) -> None:
        answer = await naive.get(result.image_urls[0])
        answer.raise_for_status()
        (out / f"naive-{n}.png").write_bytes(answer.content)

    async def our_download(n: int) -> None:
        await ours.download(dataclasses.replace(result, order_id=f"BENCH{n}"), out)

    rounds: dict[str, list[tuple[float, float]]] = {"ours": [], "naive": []}
    for k in range(args.rounds):
        for name, one in (("ours", our_download), ("naive", naive_download))[:: 1 if k % 2 else -1]:
            cpu, wall = time.process_time(), time.perf_counter()
            await asyncio.gather(*(one(k * args.at_once + n) for n in range(args.at_once)))
            rounds[name].append(
                ((time.process_time() - cpu) / args.at_once * 1000, time.perf_counter() - wall)
            )
    await ours.aclose()
    await naive.aclose()
    return rounds


def main() -> int:
    """Start the simulator, measure, print."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--at-once", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--tmp", help="folder for the downloaded files (default: the system's temp)")
    args = parser.parse_args()
    # set up as an edit process is (webapp/edit_processes.py `serve`): both paths run with it
    return_large_buffers()
    install_fast_failed_imports()
    calm_collector()
    port = free_port()
    sim = subprocess.Popen(
        [sys.executable, "-m", "juhe.simulator", "--port", str(port), "--render-once", "--latency", "0.1"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    out = Path(tempfile.mkdtemp(prefix="juhe-downloads-", dir=args.tmp))
    try:
        wait_http(f"http://127.0.0.1:{port}/_sim/stats", sim, "simulator")
        rounds = asyncio.run(measure(args, f"http://127.0.0.1:{port}/image_edit/edit", out))
    finally:
        sim.terminate()
        sim.wait(20)
        shutil.rmtree(out, ignore_errors=True)
    medians = {}
    for name, measured in rounds.items():
        cpu = statistics.median(c for c, _ in measured[1:])
        wall = statistics.median(w for _, w in measured[1:])
        medians[name] = cpu
        print(f"  {name}: CPU {cpu:.2f} ms per download, a round of {args.at_once} in {wall:.2f} s")
    print(f"  ours / naive CPU per download: {medians['ours'] / medians['naive']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
