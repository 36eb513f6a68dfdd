"""Benchmarks side by side with the peers and the floor, in one run: `python tests/benchmarks/run.py`.

Absolute times on a small shared machine are noisy, so every measure is a ratio against something
run on the same machine at the same time (interleaved; medians of several runs):

1-2  three 12-megapixel phone JPEGs (one EXIF-rotated): our client against the path the peer demos
     use (Pillow-decode, save PNG, base64, httpx form post), both posted to the simulator.
3-4  one compliant 1600x1200 JPEG: our client against the floor (the file's bytes base64'd and
     escaped in the minimal form, posted with httpx to the same simulator).
5    16 visitors submitting one edit each at once through app.py's /edit with gradio_client, the
     simulator taking 2 s, against bare_app.py: the smallest app a user could write instead (one
     image in, one image out) whose async handler only sleeps 2 s and returns the input.
6    peak RSS of both apps during the same burst with 12-megapixel inputs, and what stays after.
7    cold start of `python app.py` to the first HTTP 200, against the bare app.
8    one gradio_client session calling /edit 50 times in a row (simulator 0.5 s): the median of
     calls 46-50 against calls 1-5. The answer has the same shape every time, so it must not grow.

How it measures:
- The simulator and the apps run as their own processes on loopback (`python -m juhe.simulator`,
  `python app.py` with JUHE_API_KEY/JUHE_API_URL pointing at it). The simulator's latency is the
  whole time an edit takes there; its decoding and drawing happen within it. For the app measures
  (5, 6, 8) it renders once per distinct image (--render-once): a real provider's rendering does not
  run on the CPU the app is measured on.
- Each burst uses 16 new gradio_client sessions, built before the clock starts; a visitor is done
  when predict() returns, its result files downloaded. The clients run with ssl_verify=False: the
  traffic is plain HTTP, and with verification on gradio_client loads the CA bundle again for each
  file it downloads (about 17 ms of CPU), a cost of this harness that grows with the file count.
- The first burst of each app is a warm-up and not counted.
- Test photos are generated once into a cache folder outside the repository (photos.py).
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, quote_plus

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(ROOT), str(HERE), str(ROOT / "tests")]

import httpx  # noqa: E402
import photos  # noqa: E402
from helpers import procs  # noqa: E402
from PIL import Image  # noqa: E402

from juhe import ImageEditClient  # noqa: E402

MiB = 1024 * 1024
KEY = "bench"
PROMPT_3 = "把图1的天空换到图2和图3里, 人物保持不变"
PROMPT_1 = "把图中的天空换成晚霞"
VISITORS = 16
SIM_LATENCY = 2.0
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
APPS = {
    "app": ([sys.executable, "app.py"], {"JUHE_MCP": "0"}),
    "bare": ([sys.executable, str(HERE / "bare_app.py")], {}),
}
SESSION_CALLS = 50


# --- processes -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """A child process this script started, logged to a file, stopped by its own pid only."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], logs: Path) -> None:
        self.name = name
        self.log = open(logs / f"{name}.log", "ab")  # noqa: SIM115 - closed in stop()
        self.started = time.perf_counter()
        self.popen = subprocess.Popen(args, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self.log.close()


def wait_http(url: str, proc: Proc, timeout: float = 90.0) -> float:
    """Poll until `url` answers 200; return the seconds since the process was started."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2.0) as http:
        while time.monotonic() < deadline:
            if proc.popen.poll() is not None:
                raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}; see {proc.log.name}")
            try:
                if http.get(url).status_code == 200:
                    return time.perf_counter() - proc.started
            except httpx.TransportError:
                pass
            time.sleep(0.02)
    raise RuntimeError(f"{proc.name} did not answer {url} within {timeout} s")


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUHE_", "GRADIO_", "BARE_APP_"))}
    env.update(GRADIO_ANALYTICS_ENABLED="False", PYTHONUNBUFFERED="1", PYTHONPATH=str(ROOT))
    return env


def start_simulator(tmp: Path, latency: float, procs: list[Proc], render_once: bool = False) -> str:
    """The simulator as its own process. `render_once` for the app measures: the real provider renders
    on its own machines, so rendering here must not take the CPU the app is measured on."""
    port = free_port()
    command = [sys.executable, "-m", "juhe.simulator", "--port", str(port), "--latency", str(latency)]
    proc = Proc(f"simulator-{latency:g}s", command + ["--render-once"] * render_once, base_env(), tmp)
    procs.append(proc)
    wait_http(f"http://127.0.0.1:{port}/_sim/stats", proc, 30)
    return f"http://127.0.0.1:{port}/image_edit/edit"


def start_app(name: str, tmp: Path, sim_url: str, procs: list[Proc]) -> tuple[Proc, str, float]:
    """Start one of APPS on a free port; return it, its URL and its seconds to the first 200."""
    args, extra = APPS[name]
    port = free_port()
    env = base_env()
    env.update(
        GRADIO_SERVER_PORT=str(port),
        GRADIO_SERVER_NAME="127.0.0.1",
        GRADIO_TEMP_DIR=str(tmp / f"gradio-{name}"),
        JUHE_API_KEY=KEY,
        JUHE_API_URL=sim_url,
        JUHE_OUTPUT_DIR=str(tmp / f"outputs-{name}"),
        **extra,
    )
    proc = Proc(name, args, env, tmp)
    procs.append(proc)
    url = f"http://127.0.0.1:{port}/"
    return proc, url, wait_http(url, proc)


# --- memory --------------------------------------------------------------------------------------


def rss(pid: int) -> int:
    """Summed VmRSS of a process and the processes below it (app.py's edit processes)."""
    return procs.status_total(pid, "VmRSS")


def reset_peak(pid: int) -> bool:
    """Reset VmHWM of the family (Linux: write 5 to clear_refs); False where that is not allowed."""
    return procs.reset_peaks(pid)


def peak(pid: int) -> int:
    """Summed VmHWM of a process and the processes below it."""
    return procs.status_total(pid, "VmHWM")


class RssSampler:
    """Samples the summed VmRSS of a process family every 20 ms while active."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss(self.pid))
            self._stop.wait(0.02)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss(self.pid))


# --- 1-4: client side ----------------------------------------------------------------------------


def peer_post(http: httpx.Client, url: str, paths: list[Path], prompt: str) -> int:
    """What the peer demos do: decode with Pillow, save PNG, base64, let httpx urlencode the form."""
    data = {"key": KEY, "text": prompt}
    for n, path in enumerate(paths, start=1):
        with Image.open(path) as image:
            out = io.BytesIO()
            image.save(out, "PNG")
        data[f"image{n}"] = "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()
    response = http.post(url, data=data)
    return int(response.request.headers["Content-Length"])


def floor_body(path: Path, prompt: str) -> bytes:
    """The least any client can send: the file's bytes base64'd and escaped, with key and text."""
    b64 = base64.b64encode(path.read_bytes())
    escaped = b64.replace(b"+", b"%2B").replace(b"/", b"%2F").replace(b"=", b"%3D")
    head = quote("data:image/jpeg;base64,", safe="").encode()
    return b"key=" + KEY.encode() + b"&text=" + quote_plus(prompt).encode() + b"&image1=" + head + escaped


def floor_post(http: httpx.Client, url: str, path: Path, prompt: str) -> int:
    body = floor_body(path, prompt)
    response = http.post(url, content=body, headers=FORM)
    if response.status_code != 200 or response.json().get("error_code") != 0:
        raise RuntimeError(f"floor request failed: {response.status_code} {response.text[:200]}")
    return len(body)


def last_body_bytes(sim_url: str, prompt: str) -> int:
    """Bytes of the last request the simulator accepted with this prompt (what went over the wire)."""
    stats = httpx.get(sim_url.replace("/image_edit/edit", "/_sim/stats")).json()
    sizes = [r["body_bytes"] for r in stats["requests"] if r["text"] == prompt and r["outcome"] == "ok"]
    return sizes[-1]


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def interleave(a: Callable[[], object], b: Callable[[], object], runs: int, warmup: int = 1):
    """Alternate a and b, each going first every other time (warm-up runs discarded); return their
    lists of times and last values."""
    times_a, times_b, value_a, value_b = [], [], None, None
    for i in range(warmup + runs):
        if i % 2:
            tb, value_b = timed(b)
            ta, value_a = timed(a)
        else:
            ta, value_a = timed(a)
            tb, value_b = timed(b)
        if i >= warmup:
            times_a.append(ta)
            times_b.append(tb)
    return times_a, times_b, value_a, value_b


# --- 5-6: an app under 16 visitors ---------------------------------------------------------------


def burst(url: str, tmp: Path, inputs: list[Path], prompt: str, visitors: int = VISITORS) -> float:
    """`visitors` new sessions submit one edit each at the same moment; seconds until the last
    answer (with its files) arrived. The clients are built before the clock starts."""
    from gradio_client import Client, handle_file

    clients = [
        Client(
            url,
            verbose=False,
            download_files=str(tmp / "downloads"),
            analytics_enabled=False,
            ssl_verify=False,
        )
        for _ in range(visitors)
    ]
    barrier = threading.Barrier(len(clients) + 1)
    errors: list[BaseException] = []

    def visit(i: int) -> None:
        barrier.wait()
        try:
            clients[i].predict(
                image1=handle_file(str(inputs[i % len(inputs)])), prompt=prompt, api_name="/edit"
            )
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=visit, args=(i,)) for i in range(len(clients))]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    for client in clients:
        client.close()
    if errors:
        raise RuntimeError(f"{len(errors)} of {len(clients)} visits failed: {errors[0]!r}")
    return elapsed


def session_calls(url: str, tmp: Path, image: Path, calls: int) -> list[float]:
    """One gradio_client session calling /edit `calls` times in a row; the seconds of each call."""
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False, download_files=str(tmp / "downloads"), ssl_verify=False)
    times = []
    for n in range(calls):
        start = time.perf_counter()
        client.predict(image1=handle_file(str(image)), prompt=f"{PROMPT_1} {n}", api_name="/edit")
        times.append(time.perf_counter() - start)
    client.close()
    return times


# --- the table -----------------------------------------------------------------------------------


def fmt_bytes(n: float) -> str:
    return f"{n / MiB:.2f} MiB"


def fmt_s(t: float) -> str:
    return f"{t:.3f} s"


def fmt_ratio(r: float) -> str:
    return f"{r:.4f}" if r < 0.1 else f"{r:.3f}"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=1, help="multiply the number of timed runs (default 1)")
    parser.add_argument("--only", default="12345678", help="measures to run, e.g. 34 (default all)")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (logs, outputs)")
    args = parser.parse_args()
    scale = max(1, args.runs)
    only = set(args.only)

    tmp = Path(tempfile.mkdtemp(prefix="juhe-bench-"))
    # gradio_client leaves an empty folder in the temp dir for every file it downloads: keep them in ours
    (tmp / "client-tmp").mkdir()
    tempfile.tempdir = str(tmp / "client-tmp")
    procs: list[Proc] = []
    rows: list[tuple[str, ...]] = []
    notes: list[str] = []

    def row(n: str, measure: str, ours: str, other: str, ratio: float, goal: str, ok: bool | None) -> None:
        verdict = "report" if ok is None else ("PASS" if ok else "FAIL")
        rows.append((n, measure, ours, other, fmt_ratio(ratio), goal, verdict))
        print(
            f"  #{n} {measure}: ours {ours}, compared {other}, ratio {fmt_ratio(ratio)} -> {verdict}",
            flush=True,
        )

    started = time.monotonic()
    print(f"cores: {os.cpu_count()}  python: {sys.version.split()[0]}  temp: {tmp}", flush=True)
    phones = photos.phone_photos()
    compliant = photos.compliant_photo()
    print("photos: " + ", ".join(f"{p.name} {p.stat().st_size / MiB:.2f} MiB" for p in [*phones, compliant]))
    try:
        if only & set("1234"):
            sim_url = start_simulator(tmp, 0.0, procs)
            # separate connections for the peer and the floor: after the peer's huge uploads its
            # connection's buffers are tuned for bulk and the floor measured 10 % slower on it
            peer_http, floor_http = httpx.Client(timeout=120), httpx.Client(timeout=120)
            with ImageEditClient(api_key=KEY, api_url=sim_url) as client, peer_http, floor_http:
                if only & set("12"):
                    print("1-2: three 12-MP phone JPEGs, ours vs the peer path ...", flush=True)
                    ours_t, peer_t, _, peer_bytes = interleave(
                        lambda: client.edit(PROMPT_3, phones),
                        lambda: peer_post(peer_http, sim_url, phones, PROMPT_3),
                        runs=3 * scale,
                    )
                    client.edit(PROMPT_3, phones)  # the last accepted request is ours
                    ours_bytes = last_body_bytes(sim_url, PROMPT_3)
                    row(
                        "1",
                        "body bytes, 3 × 12-MP JPEG",
                        fmt_bytes(ours_bytes),
                        fmt_bytes(peer_bytes),
                        ours_bytes / peer_bytes,
                        "≤ 0.05 and ≤ 6 MiB",
                        ours_bytes <= 0.05 * peer_bytes and ours_bytes <= 6 * MiB,
                    )
                    ratio = statistics.median(ours_t) / statistics.median(peer_t)
                    row(
                        "2",
                        "prepare + post, 3 × 12-MP JPEG",
                        fmt_s(statistics.median(ours_t)),
                        fmt_s(statistics.median(peer_t)),
                        ratio,
                        "≤ 0.1",
                        ratio <= 0.1,
                    )
                    notes.append(
                        f"#2: the simulator refuses the peer's {fmt_bytes(peer_bytes)} body with HTTP 413 "
                        "once it has arrived; ours it decodes and answers, and that work is in our time."
                    )
                if only & set("34"):
                    print("3-4: one compliant 1600x1200 JPEG, ours vs the floor ...", flush=True)
                    ours_t, floor_t, _, floor_bytes = interleave(
                        lambda: client.edit(PROMPT_1, [compliant]),
                        lambda: floor_post(floor_http, sim_url, compliant, PROMPT_1),
                        runs=15 * scale,
                        warmup=2,
                    )
                    client.edit(PROMPT_1, [compliant])  # the last accepted request is ours
                    ours_bytes = last_body_bytes(sim_url, PROMPT_1)
                    row(
                        "3",
                        "body bytes, compliant 1600×1200 JPEG",
                        f"{ours_bytes:,} B",
                        f"{floor_bytes:,} B",
                        ours_bytes / floor_bytes,
                        "≤ 1.01",
                        ours_bytes <= 1.01 * floor_bytes,
                    )
                    ratio = statistics.median(ours_t) / statistics.median(floor_t)
                    row(
                        "4",
                        "prepare + post, compliant JPEG",
                        fmt_s(statistics.median(ours_t)),
                        fmt_s(statistics.median(floor_t)),
                        ratio,
                        "≤ 1.2",
                        ratio <= 1.2,
                    )

        if only & set("56"):
            sim_url = start_simulator(tmp, SIM_LATENCY, procs, render_once=True)
            names = ("app", "bare")
            apps = {name: start_app(name, tmp, sim_url, procs)[:2] for name in names}
            if "5" in only:
                print(f"5: {VISITORS} visitors at once, simulator {SIM_LATENCY:g} s ...", flush=True)
                times: dict[str, list[float]] = {name: [] for name in names}
                for i in range(1 + 5 * scale):  # the first round warms the apps up
                    for name in names if i % 2 else reversed(names):
                        elapsed = burst(apps[name][1], tmp, [compliant], PROMPT_1)
                        if i:
                            times[name].append(elapsed)
                median = {name: statistics.median(t) for name, t in times.items()}
                ratio = median["app"] / median["bare"]
                row(
                    "5",
                    f"{VISITORS} visitors through /edit",
                    fmt_s(median["app"]),
                    fmt_s(median["bare"]),
                    ratio,
                    "≤ 1.1",
                    ratio <= 1.1,
                )
            if "6" in only:
                print(f"6: peak RSS, {VISITORS} visitors with 12-MP inputs ...", flush=True)
                mem = {}
                for name in ("app", "bare"):
                    proc, url = apps[name]
                    if "5" not in only:
                        burst(url, tmp, [compliant], PROMPT_1)  # warm up
                    idle = rss(proc.pid)
                    exact = reset_peak(proc.pid)
                    rounds = []
                    for _ in range(2):
                        with RssSampler(proc.pid) as sampler:
                            elapsed = burst(url, tmp, phones, PROMPT_1)
                        high = max(sampler.peak, peak(proc.pid) if exact else 0)
                        rounds.append((high, rss(proc.pid), elapsed))
                    mem[name] = (idle, rounds)
                    print(
                        f"  {name}: idle {fmt_bytes(idle)}; per burst (peak, after, wall): "
                        + "; ".join(f"{fmt_bytes(p)}, {fmt_bytes(a)}, {t:.2f} s" for p, a, t in rounds)
                    )
                (a_idle, a_rounds), (b_idle, b_rounds) = mem["app"], mem["bare"]
                a_peak, b_peak = max(r[0] for r in a_rounds), max(r[0] for r in b_rounds)
                row(
                    "6",
                    f"peak RSS, {VISITORS} visitors × 12-MP",
                    fmt_bytes(a_peak),
                    fmt_bytes(b_peak),
                    a_peak / b_peak,
                    "report",
                    None,
                )
                notes.append(
                    f"#6: over idle the app peaked at +{(a_peak - a_idle) / MiB:.0f} MiB, the bare app at "
                    f"+{(b_peak - b_idle) / MiB:.0f} MiB ({VISITORS} photos decoded at once would be "
                    f"{VISITORS * 4000 * 3000 * 3 / MiB:.0f} MiB). After each burst the app held "
                    f"{(a_rounds[0][1] - a_idle) / MiB:+.0f} and {(a_rounds[1][1] - a_idle) / MiB:+.0f} MiB "
                    f"over idle. Wall time with 12-MP inputs: app {a_rounds[1][2]:.2f} s, "
                    f"bare {b_rounds[1][2]:.2f} s."
                )
            for proc, _ in apps.values():
                proc.stop()

        if "8" in only:
            print(f"8: one session, {SESSION_CALLS} calls in a row ...", flush=True)
            sim_url = start_simulator(tmp, 0.5, procs, render_once=True)
            proc, url, _ = start_app("app", tmp, sim_url, procs)
            times = session_calls(url, tmp, compliant, SESSION_CALLS)
            proc.stop()
            first, last = statistics.median(times[:5]), statistics.median(times[-5:])
            row(
                "8",
                f"calls {SESSION_CALLS - 4}-{SESSION_CALLS} vs 1-5 of one session",
                fmt_s(last),
                fmt_s(first),
                last / first,
                "≤ 1.1",
                last / first <= 1.1,
            )

        if "7" in only:
            print("7: cold start to the first HTTP 200 ...", flush=True)
            idle_url = "http://127.0.0.1:9/image_edit/edit"  # never called
            starts: dict[str, list[float]] = {"app": [], "bare": []}
            for i in range(1 + 3 * scale):  # the first round fills the OS file cache
                for name in list(starts) if i % 2 else reversed(list(starts)):
                    proc, _, elapsed = start_app(name, tmp, idle_url, procs)
                    proc.stop()
                    if i:
                        starts[name].append(elapsed)
            app_t, bare_t = statistics.median(starts["app"]), statistics.median(starts["bare"])
            row(
                "7",
                "cold start to first HTTP 200",
                fmt_s(app_t),
                fmt_s(bare_t),
                app_t / bare_t,
                "≤ 1.3",
                app_t / bare_t <= 1.3,
            )
    finally:
        for proc in reversed(procs):
            proc.stop()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)

    headers = ("#", "measure", "ours", "compared with", "ratio", "goal", "result")
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    print(f"\nfinished in {time.monotonic() - started:.0f} s on {os.cpu_count()} cores\n")
    print("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |")
    for note in notes:
        print(note)
    return 0 if all(r[6] != "FAIL" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
