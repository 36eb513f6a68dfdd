"""What changed: its noise floor and its cost. `python tests/benchmarks/changes.py`

1. Noise. A region edit of a JPEG 图1 saves the result with 图1's own quantisation tables, so
   outside the region every pixel is 图1 re-quantised once. For each examples/*.jpg and a 12-MP
   generated phone photo (photos.py), 图1 is re-encoded that way (the "result" of an edit that
   changed nothing), and compared with the store's "before" copy of 图1 (768 px, quality 85: what
   the page compares with). Printed: the per-pixel maximum channel difference at full size, and
   after the analysis (scaled to 768 px, 5x5 box blur), and the changed share `find_changes`
   reports (must be 0: `THRESHOLD` sits above the noise).
2. Cost on a 12-MP result (4000x3000, as a quality-92 JPEG and as a PNG): `what_changed` (decode,
   compare, save the overlay) against the simplest alternative, `ImageChops.difference` of the two
   full frames (decode both at full size, difference, bounding box), medians of RUNS interleaved
   runs, one thread.
"""

from __future__ import annotations

import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(ROOT), str(HERE)]

import numpy as np  # noqa: E402
import photos  # noqa: E402
from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageOps  # noqa: E402

from webapp.changes import (  # noqa: E402
    ANALYSIS_SIDE,
    BLUR_RADIUS,
    THRESHOLD,
    analysis_size,
    find_changes,
    fit_into,
    what_changed,
)
from webapp.store import BEFORE_QUALITY, BEFORE_SIDE, make_preview  # noqa: E402

RUNS = 5


def requantised(path: Path) -> Image.Image:
    """图1 saved again with its own tables and subsampling, as juhe._region saves a JPEG result."""
    with Image.open(path) as source:
        out = io.BytesIO()
        source.save(out, "JPEG", quality="keep", subsampling="keep")  # these files are upright
    return Image.open(io.BytesIO(out.getvalue())).convert("RGB")


def noise(path: Path) -> tuple[int, int, float]:
    """Full-size maximum, analysis maximum and changed share, for an edit that changed nothing."""
    result = requantised(path)
    with Image.open(path) as source:
        upright = ImageOps.exif_transpose(source).convert("RGB")
    full = int(np.asarray(ImageChops.difference(upright, result)).max())
    before = Image.open(io.BytesIO(make_preview(path, BEFORE_SIDE, BEFORE_QUALITY))).convert("RGB")
    size = analysis_size(result.size)
    blur = ImageFilter.BoxBlur(BLUR_RADIUS)
    small = result.resize(size, Image.Resampling.BOX).filter(blur)
    analysed = int(np.asarray(ImageChops.difference(fit_into(before, size).filter(blur), small)).max())
    return full, analysed, find_changes(before, result).share


def main() -> None:
    box = 2 * BLUR_RADIUS + 1
    print(f"threshold {THRESHOLD} of 255 after a {box}x{box} box at {ANALYSIS_SIDE} px")
    print("noise of an edit that changed nothing (图1 re-quantised vs the store's 768-px copy):")
    phone = photos.phone_photos()[0]
    for path in [*sorted((ROOT / "examples").glob("*.jpg")), phone]:
        full, analysed, share = noise(path)
        print(f"  {path.name:22} full-size max {full:3}  analysed max {analysed:3}  changed {share:.2%}")

    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        with Image.open(phone) as opened:
            edited = opened.convert("RGB")
        ImageDraw.Draw(edited).ellipse((1500, 1100, 2300, 1700), fill=(40, 160, 60))  # one object changed
        before = work / "before.jpg"
        before.write_bytes(make_preview(phone, BEFORE_SIDE, BEFORE_QUALITY))
        with Image.open(phone) as opened:
            source = opened.convert("RGB")
        for fmt, suffix in (("JPEG", ".jpg"), ("PNG", ".png")):
            after = work / f"result{suffix}"
            edited.save(after, fmt, **({"quality": 92} if fmt == "JPEG" else {"compress_level": 6}))
            original = work / f"source{suffix}"  # the plain difference reads 图1 in the same format
            source.save(original, fmt, **({"quality": 92} if fmt == "JPEG" else {"compress_level": 6}))

            def ours(after=after) -> None:
                what_changed(before, after, work)

            def plain(after=after, original=original) -> None:
                with Image.open(original) as a, Image.open(after) as b:
                    ImageChops.difference(a.convert("RGB"), b.convert("RGB")).getbbox()

            ours(), plain()  # warm the caches
            timings = {"what_changed": [], "plain difference": []}
            for _ in range(RUNS):  # interleaved, so a busy moment of the machine hits both
                timings["what_changed"].append(_once(ours))
                timings["plain difference"].append(_once(plain))
            _, changes = what_changed(before, after, work)
            print(
                f"12-MP {fmt} result (4000x3000), median of {RUNS}, one object changed ({changes.share:.1%}):"
            )
            for name, values in timings.items():
                print(f"  {name:18} {statistics.median(values) * 1000:6.0f} ms")


def _once(work) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
