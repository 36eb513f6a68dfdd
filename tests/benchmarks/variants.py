"""4 variants against 1 edit: `python tests/benchmarks/variants.py [--latency 2] [--runs 3]`.

The simulator runs as its own process on loopback, each edit taking `--latency` seconds. Timed
through `AsyncImageEditClient`, from the first call until every result is saved (labelled, with its
sidecar): one `edit` + `download`, and `edit_variants(..., 4)` saving each result as it arrives.
Runs are interleaved; medians are printed. Goal: 4 variants take <= 1.15x the time of 1 edit
(the four calls are sent at once, so they wait on the provider together).

Then the app's path (issue 19): `/edit` with variants=4 against variants=1 through gradio_client, to
an offline app launched in this process whose built-in simulator takes `--latency` seconds
(JUHE_SIM_LATENCY), from the call until the record with every link is back. `--client-only` or
`--app-only` runs one of the two.
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
    parser.add_argument("--client-only", action="store_true", help="skip the app's path")
    parser.add_argument("--app-only", action="store_true", help="skip the client's path")
    args = parser.parse_args()
    if not args.app_only:
        client_path(args)
    if not args.client_only:
        app_path(args)


def report(what: str, latency: float, runs: int, times: dict[str, list[float]]) -> None:
    """The medians of both and their ratio against the goal."""
    one, four = (statistics.median(values) for values in times.values())
    print(f"{what}: simulator latency {latency:g} s, {runs} runs, medians:")
    print(f"  1 edit      {one:.3f} s")
    print(f"  4 variants  {four:.3f} s")
    verdict = "met" if four / one <= GOAL else "NOT met"
    print(f"  ratio       {four / one:.3f}x (goal <= {GOAL}x: {verdict})", flush=True)


def app_path(args: argparse.Namespace) -> None:
    """`/edit` through gradio_client against an offline app: variants=4 against variants=1."""
    import os

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from gradio_client import Client, handle_file

    from webapp.backend import Backend
    from webapp.settings import AppSettings
    from webapp.ui import build_demo, launch_options

    times: dict[str, list[float]] = {"variants=1": [], "variants=4": []}
    with tempfile.TemporaryDirectory() as folder:
        os.environ["GRADIO_TEMP_DIR"] = str(Path(folder) / "gradio")
        env = {
            "JUHE_OUTPUT_DIR": str(Path(folder) / "outputs"),
            "JUHE_SIM_LATENCY": str(args.latency),
            "JUHE_CONCURRENCY": "4",
            "JUHE_MCP": "0",
        }
        settings = AppSettings.from_mapping(env)
        backend = Backend(settings)
        demo = build_demo(settings, backend)
        _, url, _ = demo.launch(
            prevent_thread_lock=True,
            quiet=True,
            server_name="127.0.0.1",
            **launch_options(settings, backend, demo),
        )
        try:
            client = Client(url, verbose=False, download_files=False, analytics_enabled=False)
            image = handle_file(str(IMAGE))
            client.predict(image, "warm up", api_name="/edit")  # the simulator and clients start
            for run in range(args.runs):
                for name in times:
                    n = int(name.partition("=")[2])
                    started = time.perf_counter()
                    _, record = client.predict(image, f"bench {run} {name}", variants=n, api_name="/edit")
                    elapsed = time.perf_counter() - started
                    assert len(record["images"]) == n, record
                    times[name].append(elapsed)
                    print(f"run {run + 1}: app {name:<10} {elapsed:.3f} s", flush=True)
        finally:
            demo.close()
            backend.close()
    report("app /edit", args.latency, args.runs, times)


def client_path(args: argparse.Namespace) -> None:
    """The client's path: one `edit` + `download` against `edit_variants(..., 4)`."""
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
    report("client", args.latency, args.runs, times)


if __name__ == "__main__":
    main()
