"""Peak memory of one edit, by input: `python tests/benchmarks/memory.py` (about 30 s).

Each case runs in a fresh process: it imports `juhe`, builds a client, reads its resident memory
(idle), then makes one edit of the case's images against the simulator (its own process on
loopback) and reads the peak resident memory of the process during the edit (VmHWM, reset just
before the edit). It prints the idle and peak figures, the peak over idle, and peak / idle. The goal
is at most about 300 MB over idle for any input the client accepts.

Cases: three 79-megapixel PNGs of about 300 KB each (over the input pixel bound: refused from
their headers), three 49-megapixel RGBA PNGs (the most the bound accepts, in the costliest mode), a
48-megapixel phone JPEG (8064x6048) and a 12-megapixel photo.
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
    args = parser.parse_args()
    if args.child:
        child(args.child[1:], args.child[0])
        return
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


if __name__ == "__main__":
    main()
