"""256 visitors at once: `python tests/benchmarks/burst.py [--visitors 256] [--latency 2]`.

The app runs as its own process (live, JUHE_CONCURRENCY and JUHE_QUEUE_SIZE raised to match) against
the simulator taking `--latency` seconds per edit. Each visitor speaks Gradio's own protocol: one
POST /gradio_api/queue/join to `edit` and one event stream, all started at the same moment. Measured:
- how many edits had reached the provider one second after the start (goal: all);
- the burst's wall time against the provider's own time, the physical floor (goal: <= 1.5x);
- GET /config latency while the burst runs, p95 (goal: <= 1 s);
- the app's resident memory over idle at its peak (goal: <= +300 MB).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
IMAGE = ROOT / "examples" / "cat.jpg"
MiB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, name: str) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"{name} did not answer {url}")


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


async def _request(port: int, method: str, path: str, body: bytes = b"") -> tuple:
    """One HTTP/1.1 request on its own connection, written by hand: an httpx client with hundreds of
    connections spends its own time scanning its pool, and would measure itself instead of the app."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    writer.write(head.encode() + body)
    await writer.drain()
    return reader, writer


async def visit(port: int, fn_index: int, image: str, n: int) -> float:
    """One visitor: join the queue, read its event stream to the end; the seconds it took."""
    start = time.perf_counter()
    session = f"burst{n:04d}"
    body = {"data": [image, f"burst {n}", None, None, "auto", "auto", None, None], "fn_index": fn_index}
    body["session_hash"] = session
    reader, writer = await _request(port, "POST", "/gradio_api/queue/join", json.dumps(body).encode())
    answer = await reader.read()
    writer.close()
    if not answer.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"visitor {n}: joining failed: {answer[:200]!r}")
    reader, writer = await _request(port, "GET", f"/gradio_api/queue/data?session_hash={session}")
    try:
        while line := await reader.readline():
            if not line.startswith(b"data:"):
                continue
            message = json.loads(line[5:])
            if message.get("msg") == "process_completed":
                if not message.get("success"):
                    raise RuntimeError(f"visitor {n} failed: {message.get('output')}")
                return time.perf_counter() - start
    finally:
        writer.close()
    raise RuntimeError(f"visitor {n}: the stream ended without a result")


async def burst(app_url: str, sim_url: str, visitors: int, pid: int) -> dict:
    image = "data:image/jpeg;base64," + base64.b64encode(IMAGE.read_bytes()).decode()
    port = int(app_url.rsplit(":", 1)[1])
    async with httpx.AsyncClient(base_url=app_url, timeout=120) as http:
        config = (await http.get("/config")).json()
        fn_index = next(d["id"] for d in config["dependencies"] if d.get("api_name") == "edit")
        idle = rss(pid)
        page_times: list[float] = []
        peak = idle
        done = asyncio.Event()

        async def watch() -> None:
            nonlocal peak
            async with httpx.AsyncClient(base_url=app_url, timeout=30) as page:
                while not done.is_set():
                    t0 = time.perf_counter()
                    await page.get("/config")
                    page_times.append(time.perf_counter() - t0)
                    peak = max(peak, rss(pid))
                    await asyncio.sleep(0.1)

        watcher = asyncio.create_task(watch())
        start, started_at = time.perf_counter(), time.time()
        times = await asyncio.gather(*(visit(port, fn_index, image, n) for n in range(visitors)))
        wall = time.perf_counter() - start
        done.set()
        await watcher
        async with httpx.AsyncClient(timeout=10) as sim:
            stats = (await sim.get(sim_url.replace("/image_edit/edit", "/_sim/stats"))).json()
        arrivals = sorted(t - started_at for t in stats["arrivals"] if t >= started_at)
        return {
            "wall": wall,
            "times": times,
            "arrived_1s": sum(1 for t in arrivals if t <= 1.0),
            "last_arrival": arrivals[-1] if arrivals else float("nan"),
            "config_p95": statistics.quantiles(page_times, n=20)[18]
            if len(page_times) >= 20
            else max(page_times),
            "idle": idle,
            "peak": max(peak, rss(pid)),
        }


def start_app(args: list[str], env: dict, tmp: Path, name: str, sim_url: str, visitors: int) -> tuple:
    """Start app.py or the bare app on a free port, configured for `visitors` at once."""
    port = free_port()
    app_env = dict(
        env,
        GRADIO_SERVER_PORT=str(port),
        GRADIO_SERVER_NAME="127.0.0.1",
        GRADIO_TEMP_DIR=str(tmp / f"gradio-{name}"),
        JUHE_API_KEY="burst",
        JUHE_API_URL=sim_url,
        JUHE_OUTPUT_DIR=str(tmp / f"outputs-{name}"),
        JUHE_CONCURRENCY=str(visitors),
        JUHE_QUEUE_SIZE=str(visitors * 2),
        JUHE_MCP="0",
    )
    log = open(tmp / f"{name}.log", "wb")  # noqa: SIM115 - the process keeps it
    proc = subprocess.Popen(args, cwd=ROOT, env=app_env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/", proc, name)
    return proc, url


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--visitors", type=int, default=256)
    parser.add_argument("--latency", type=float, default=2.0, help="seconds the simulator takes per edit")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="juhe-burst-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUHE_", "GRADIO_", "BARE_"))}
    env.update(GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    env["BARE_APP_SLEEP"] = str(args.latency)
    sim_port = free_port()
    simulator = [
        sys.executable,
        "-m",
        "juhe.simulator",
        "--port",
        str(sim_port),
        "--latency",
        str(args.latency),
    ]
    sim = subprocess.Popen(
        [*simulator, "--render-once"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    sim_url = f"http://127.0.0.1:{sim_port}/image_edit/edit"
    results = {}
    try:
        wait_http(sim_url.replace("/image_edit/edit", "/_sim/stats"), sim, "simulator")
        for name, command in (
            ("app", [sys.executable, "app.py"]),
            ("bare", [sys.executable, str(HERE / "bare_api.py")]),
        ):
            proc, url = start_app(command, env, tmp, name, sim_url, args.visitors)
            try:
                asyncio.run(burst(url, sim_url, 8, proc.pid))  # warm-up
                results[name] = asyncio.run(burst(url, sim_url, args.visitors, proc.pid))
            finally:
                proc.terminate()
                proc.wait(20)
    finally:
        sim.terminate()
        sim.wait(20)
    ours, bare = results["app"], results["bare"]
    ratio = ours["wall"] / args.latency
    grown = (ours["peak"] - ours["idle"]) / MiB
    print(f"{args.visitors} visitors at once through `edit`, the provider taking {args.latency:g} s")
    print(
        f"  app.py: wall {ours['wall']:.2f} s, visitor p50 {statistics.median(ours['times']):.2f} s; "
        f"bare Gradio endpoint: wall {bare['wall']:.2f} s ({bare['wall'] / args.latency:.2f}x the provider); "
        f"ratio app/bare {ours['wall'] / bare['wall']:.2f}"
    )
    checks = [
        (
            f"reached the provider within 1 s: {ours['arrived_1s']} of {args.visitors} "
            f"(the last after {ours['last_arrival']:.2f} s)",
            ours["arrived_1s"] >= args.visitors,
        ),
        (
            f"burst wall time {ours['wall']:.2f} s = {ratio:.2f}x the provider's {args.latency:g} s",
            ratio <= 1.5,
        ),
        (
            f"GET /config p95 during the burst {ours['config_p95']:.3f} s (bare {bare['config_p95']:.3f} s)",
            ours["config_p95"] <= 1.0,
        ),
        (f"app RSS {ours['idle'] / MiB:.0f} MiB idle, +{grown:.0f} MiB at peak", grown <= 300),
    ]
    for text, ok in checks:
        print(f"  [{'PASS' if ok else 'FAIL'}] {text}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
