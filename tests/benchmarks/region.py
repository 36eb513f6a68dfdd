"""Region edit of a 12-megapixel 图1, local work only: `python tests/benchmarks/region.py`.

For a JPEG and a PNG variant of one generated photo (4000x3000, photos.py), interleaved, medians:

- region: read 图1 and the mask and plan the crop (prepare_region), cut the crop and encode it as
  the client sends images (prepare_image, long side 2048, within the 6 MiB body), and stitch a
  fake provider answer (a PNG at the asked size, decoded from bytes as a download would be);
- plain: the client's own work for a plain edit of the same photo (prepare_image: decode,
  downscale to 2048, encode JPEG).

The ratio region / plain is the goal (<= 2x). The final save (encode_result) is timed apart, with
its size; the peak memory of one region edit with its save is measured in a fresh process; for
the JPEG variants the difference outside the region is measured: the mean and max absolute
error and the share of bit-identical pixels more than 16 px from the painted region.
"""

from __future__ import annotations

import io
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(ROOT), str(HERE)]

import numpy as np  # noqa: E402
import photos  # noqa: E402
from PIL import Image, ImageDraw, ImageOps  # noqa: E402

from juhe._images import prepare_image  # noqa: E402
from juhe._region import (  # noqa: E402
    UNTOUCHED_DISTANCE,
    crop_image,
    encode_result,
    prepare_region,
    stitch,
)

MiB = 1024 * 1024
BUDGET = 6 * MiB - 4096  # one image in the 6 MiB body
RUNS = 5
SIZE = (4000, 3000)
PAINTED = (1500, 1100, 2300, 1700)  # an 800x600 ellipse: a person or an object to replace


def timed(work) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def variants() -> dict[str, bytes]:
    """The same photo as JPEG 4:2:0 (a phone's), JPEG 4:4:4, rotated JPEG, and PNG."""
    phone, rotated, _ = photos.phone_photos()  # quality 92, 4:2:0; the second has orientation 6
    pixels = Image.open(phone).convert("RGB")
    png = photos.CACHE / f"phone1-{photos.VERSION}.png"
    if not png.exists():
        png.write_bytes(encode(pixels, "PNG"))
    return {
        "JPEG 4:2:0": phone.read_bytes(),
        "JPEG 4:4:4": encode(pixels, "JPEG", quality=92, subsampling=0),
        "JPEG 4:2:0, EXIF-rotated": rotated.read_bytes(),
        "PNG": png.read_bytes(),
    }


def mask_for(size: tuple[int, int]) -> bytes:
    width, height = size
    x0, y0, x1, y1 = PAINTED
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).ellipse(
        (x0 * width // 4000, y0 * height // 3000, x1 * width // 4000, y1 * height // 3000), 255
    )
    return encode(mask, "PNG")


def provider_answer(crop: Image.Image, size: str) -> bytes:
    """A fake edit at the asked size: the crop scaled and tinted, as PNG bytes."""
    width, height = (int(side) for side in size.split("*"))
    edited = crop.convert("RGB").resize((width, height), Image.Resampling.BICUBIC)
    return encode(Image.blend(edited, Image.new("RGB", edited.size, (0, 160, 60)), 0.4), "PNG")


def region_work(data: bytes, mask: bytes, answer: bytes):
    region = prepare_region(data, mask)
    prepare_image(crop_image(region), max_side=2048, budget=BUDGET)
    return region, stitch(region, answer)


def far_from(mask: np.ndarray) -> np.ndarray:
    """Pixels more than UNTOUCHED_DISTANCE px (Euclidean) from the painted ones."""
    ys, xs = np.nonzero(mask)
    reach = UNTOUCHED_DISTANCE + 1
    top, left = max(0, ys.min() - reach), max(0, xs.min() - reach)
    window = mask[top : ys.max() + reach + 1, left : xs.max() + reach + 1]
    near = np.zeros_like(window)
    for dy in range(-UNTOUCHED_DISTANCE, UNTOUCHED_DISTANCE + 1):
        half = int(math.sqrt(UNTOUCHED_DISTANCE**2 - dy * dy))
        rows = np.roll(window, dy, axis=0)
        sums = np.cumsum(np.pad(rows.astype(np.int32), ((0, 0), (half + 1, half))), axis=1)
        near |= (sums[:, 2 * half + 1 :] - sums[:, : window.shape[1]]) > 0
    far = np.ones_like(mask)
    far[top : top + window.shape[0], left : left + window.shape[1]] = ~near
    return far


def upright_rgb(data: bytes) -> np.ndarray:
    return np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"), dtype=np.int16)


def memory_mb(field: str) -> float:
    """A line of /proc/self/status in MB: VmRSS now, VmHWM the peak so far."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith(field + ":"))
    return int(line.split()[1]) / 1024


def peak(path: str) -> None:
    """In a fresh process: one region edit of the photo at `path`, saved; print the RSS it added."""
    data = Path(path).read_bytes()
    mask = mask_for(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).size)
    answer = provider_answer(Image.new("RGB", (1000, 800)), "1136*912")
    before = memory_mb("VmRSS")
    region, stitched = region_work(data, mask, answer)
    encode_result(region, stitched)
    print(f"{memory_mb('VmHWM') - before:.0f} {before:.0f}")


def main() -> None:
    if sys.argv[1:2] == ["--peak"]:
        return peak(sys.argv[2])
    print(__doc__.split("\n\n")[0])
    for name, data in variants().items():
        size = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).size
        mask = mask_for(size)
        region = prepare_region(data, mask)
        answer = provider_answer(crop_image(region), region.plan.size)
        region_times, plain_times = [], []
        for _ in range(RUNS):  # interleaved, so both see the same machine
            region_times.append(timed(lambda: region_work(data, mask, answer)))  # noqa: B023
            plain_times.append(timed(lambda: prepare_image(data, max_side=2048, budget=BUDGET)))  # noqa: B023
        region_s, plain_s = statistics.median(region_times), statistics.median(plain_times)
        region, stitched = region_work(data, mask, answer)
        save_s = timed(lambda: encode_result(region, stitched))  # noqa: B023
        saved, fmt = encode_result(region, stitched)
        print(f"\n{name} ({len(data) / MiB:.1f} MB), crop {region.plan.box}, asked {region.plan.size}")
        print(
            f"  local work: region {region_s * 1000:.0f} ms, plain {plain_s * 1000:.0f} ms, "
            f"ratio {region_s / plain_s:.2f}x (goal <= 2x)"
        )
        print(f"  final save: {fmt} {save_s * 1000:.0f} ms, {len(saved) / MiB:.1f} MB")
        with tempfile.NamedTemporaryFile() as photo:
            photo.write(data)
            photo.flush()
            child = [sys.executable, __file__, "--peak", photo.name]
            added, before = subprocess.run(child, capture_output=True, text=True, check=True).stdout.split()
        print(
            f"  peak memory of one region edit and its save: +{added} MB RSS (fresh process at {before} MB)"
        )
        painted = np.asarray(Image.open(io.BytesIO(mask))) > 127
        far = far_from(painted)
        before, after = upright_rgb(data), upright_rgb(saved)
        error = np.abs(after - before)[far]
        identical = np.all(after == before, axis=-1)[far].mean()
        print(
            f"  outside the region (> {UNTOUCHED_DISTANCE} px): mean abs error {error.mean():.4f}, "
            f"max {error.max()}, bit-identical pixels {identical * 100:.2f}%"
        )
        if fmt == "JPEG":
            lossless = prepare_region(data, mask, lossless=True)
            result = stitch(lossless, answer)
            for level in (1, 6):
                took = timed(lambda: encode(result, "PNG", compress_level=level))  # noqa: B023
                png = encode(result, "PNG", compress_level=level)
                print(f"  lossless PNG instead, level {level}: {took * 1000:.0f} ms, {len(png) / MiB:.1f} MB")


if __name__ == "__main__":
    main()
