"""Peak memory of one edit, by input: `python tests/benchmarks/memory.py` (about 30 s).

Each case runs in a fresh process: it imports `juhe`, builds a client, reads its resident memory
(idle), then makes one edit of the case's images against the simulator (its own process on
loopback) and reads the peak resident memory of the process during the edit (VmHWM, reset just
before the edit). It prints the idle and peak figures, the peak over idle, and peak / idle. The goal
is at most about 300 MB over idle for any input the client accepts.

Cases: three 79-megapixel PNGs of about 300 KB each (over the input pixel bound: refused from
their headers), three 49-megapixel RGBA PNGs (the most the bound accepts, in the costliest mode), a
48-megapixel phone JPEG (8064x6048) and a 12-megapixel photo.

Then the web app (`python app.py`, offline, its own process), called by `fn_index` as the page does
(issue 16), with two goals: a refused input costs at most +50 MB (peak over the RSS just before the
call), an accepted one at most +300 MB over idle. Refused: a 169-MP `data:` FileData as 图1, the same
as the region editor's background, and 20 blobs of 4 MB posted to the component server by a stranger
(what stays). Accepted: a 12-MP edit and a 48-MP region edit (a stroke painted through the component
server, as the page sends it). `--app-only` skips the client cases.
"""

from __future__ import annotations

import argparse
import io
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
MB = 1024 * 1024


def _png(width: int, height: int, mode: str) -> bytes:
    """A large PNG that compresses to little: bands of colour (alpha varying when RGBA)."""
    band = np.zeros((height, width, len(mode)), dtype=np.uint8)
    band[:, :, 0] = (np.arange(height) // 64 % 256)[:, None]
    if mode == "RGBA":
        band[:, :, 3] = 128
    out = io.BytesIO()
    Image.fromarray(band, mode).save(out, "PNG", compress_level=9)
    return out.getvalue()


def _photo(width: int, height: int) -> bytes:
    """A JPEG with photo-like detail: tiled noise, the worst case for compression."""
    tile = np.random.default_rng(0).integers(0, 256, (500, 500, 3), dtype=np.uint8)
    pixels = np.tile(tile, (-(-height // 500), -(-width // 500), 1))[:height, :width]
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=90)
    return out.getvalue()


CASES = {
    "three 79-MP PNGs (~300 KB)": lambda: [_png(10240, 7744, "RGB")] * 3,
    "three 49-MP RGBA PNGs": lambda: [_png(7000, 7000, "RGBA")] * 3,
    "one 48-MP JPEG (8064x6048)": lambda: [_photo(8064, 6048)],
    "one 12-MP photo (4000x3000)": lambda: [_photo(4000, 3000)],
}


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(field)


def child(paths: list[str], url: str) -> None:
    """One edit in this process; prints `idle peak outcome`."""
    from juhe import ImageEditClient, JuheError

    with ImageEditClient(api_key="benchmark-key", api_url=url) as client:
        images = [Path(p).read_bytes() for p in paths]
        idle = _status("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        try:
            client.edit("benchmark", images)
            outcome = "edited"
        except JuheError as exc:
            outcome = f"refused: {exc.en[:60]}"
        peak = _status("VmHWM")
    print(idle, peak, outcome)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main() -> None:
    """Run every case and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--app-only", action="store_true", help="only the web app's goals")
    args = parser.parse_args()
    if args.child:
        child(args.child[1:], args.child[0])
        return
    if not args.app_only:
        client_cases()
    app_cases()


def client_cases() -> None:
    """One edit per case through `juhe` in a fresh process, against a simulator process."""
    port = _free_port()
    sim = subprocess.Popen(
        [sys.executable, "-m", "juhe.simulator", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        sim.stdout.readline()  # the banner: listening
        url = f"http://127.0.0.1:{port}/image_edit/edit"
        print(f"{'case':32} {'idle MB':>8} {'peak MB':>8} {'over idle':>10} {'peak/idle':>10}  outcome")
        with tempfile.TemporaryDirectory() as folder:
            for name, make in CASES.items():
                paths = []
                for i, data in enumerate(make()):
                    path = Path(folder) / f"{len(paths)}-{i}.img"
                    path.write_bytes(data)
                    paths.append(str(path))
                sizes = "+".join(f"{Path(p).stat().st_size / 1024:.0f} KB" for p in paths)
                started = time.monotonic()
                done = subprocess.run(
                    [sys.executable, __file__, "--child", url, *paths],
                    cwd=ROOT,
                    env={**os.environ, "PYTHONPATH": str(ROOT)},
                    capture_output=True,
                    text=True,
                )
                if done.returncode:
                    raise SystemExit(f"{name}: {done.stderr}")
                idle, peak, outcome = done.stdout.split(" ", 2)
                idle, peak = int(idle), int(peak)
                print(
                    f"{name:32} {idle / MB:8.0f} {peak / MB:8.0f} {(peak - idle) / MB:+10.0f} "
                    f"{peak / idle:10.2f}  {outcome.strip()} ({sizes}, {time.monotonic() - started:.1f} s)"
                )
    finally:
        sim.terminate()
        sim.wait(10)


REFUSED_MB, ACCEPTED_MB = 50, 300


def _smooth_jpeg(width: int, height: int) -> bytes:
    """A large JPEG that stays under the upload cap: smooth gradients with a little noise."""
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    pixels = np.empty((height, width, 3), dtype=np.uint8)
    pixels[:, :, 0] = (x + 0 * y).astype(np.uint8)
    pixels[:, :, 1] = (y + 0 * x).astype(np.uint8)
    pixels[:, :, 2] = ((x + y) / 2).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=85)
    return out.getvalue()


def app_cases() -> None:
    """The web app's two goals, measured on the app's own process."""
    sys.path.insert(0, str(ROOT / "tests"))
    import uuid

    import httpx
    from eventfuzz import Page, Tab, app_process, data_file, solid_png, upload

    print(f"\n{'web app: call':48} {'outcome':>10} {'before MB':>10} {'cost MB':>8} {'goal':>14}")
    with tempfile.TemporaryDirectory() as folder, app_process(Path(folder)) as app:
        page = Page.read(app.url)
        events = {e.name: e for e in page.events}
        edit, region_open = events["edit_image"], events["open_region"]
        editor = edit.inputs[12]
        idle = app.status("VmRSS")
        print(f"{'idle':48} {'':>10} {idle / MB:10.0f}")

        def report(name: str, run, accepted_goal: bool) -> None:
            before = app.reset_peak()
            try:
                outcome = run()
            except (httpx.TimeoutException, TimeoutError):
                outcome = "no answer"
            peak = app.status("VmHWM")
            if accepted_goal:
                cost, goal = (peak - idle) / MB, f"≤ +{ACCEPTED_MB} idle"
            else:
                cost, goal = (max(peak, app.status("VmRSS")) - before) / MB, f"≤ +{REFUSED_MB}"
            print(f"{name:48} {outcome:>10} {before / MB:10.0f} {cost:+8.0f} {goal:>14}")

        def edit_with(photo: dict | None, overrides: dict | None = None) -> str:
            tab = Tab(app.url, page)
            answer = tab.run(edit, {0: photo, 3: "make the sky blue", **(overrides or {})})
            return "accepted" if answer.ok else "refused"

        bomb = data_file(solid_png(13000, 13000))
        report("169-MP data: FileData as 图1", lambda: edit_with(bomb), False)
        editor_bomb = {"background": bomb, "layers": [], "composite": None}
        report(
            "169-MP data: FileData in the region editor", lambda: edit_with(None, {12: editor_bomb}), False
        )

        def stranger_blobs() -> str:
            chunk = os.urandom(4 * MB)
            for _ in range(20):
                answer = httpx.post(
                    f"{app.url}/gradio_api/component_server",
                    data={
                        "session_hash": uuid.uuid4().hex,
                        "component_id": str(editor),
                        "fn_name": "accept_blobs",
                        "id": uuid.uuid4().hex,
                        "type": "layer",
                        "index": "0",
                    },
                    files={"file": ("blob", chunk, "image/png")},
                    timeout=60,
                )
            return "accepted" if answer.status_code == 200 else f"HTTP {answer.status_code}"

        report("20 x 4 MB blobs from a stranger (kept)", stranger_blobs, False)

        photo12 = upload(app.url, _photo(4000, 3000), "photo.jpg")
        report("12-MP photo edit", lambda: edit_with(photo12), True)

        def region_edit() -> str:
            tab = Tab(app.url, page)
            tab.values[edit.inputs[0]] = upload(app.url, _smooth_jpeg(8064, 6048), "phone.jpg")
            tab.values[edit.inputs[3]] = "make the sky blue"
            tab.run(region_open)
            stroke = Image.new("RGBA", (8064, 6048), (0, 0, 0, 0))
            stroke.paste((255, 0, 128, 140), (2000, 1500, 6000, 4500))
            out = io.BytesIO()
            stroke.save(out, "PNG")
            blob = uuid.uuid4().hex
            httpx.post(
                f"{app.url}/gradio_api/component_server",
                data={
                    "session_hash": tab.session,
                    "component_id": str(editor),
                    "fn_name": "accept_blobs",
                    "id": blob,
                    "type": "layer",
                    "index": "0",
                },
                files={"file": ("blob", out.getvalue(), "image/png")},
                timeout=60,
            )
            region = {"id": blob, "background": None, "layers": [], "composite": None}
            answer = tab.run(edit, {12: region})
            return "accepted" if answer.ok else "refused"

        report("48-MP region edit (8064x6048, painted)", region_edit, True)


if __name__ == "__main__":
    main()
