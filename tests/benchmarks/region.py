"""Region edit of a 12-megapixel 图1 through the client: `python tests/benchmarks/region.py`.

For a JPEG and a PNG variant of one generated photo (4000x3000, photos.py), interleaved, medians,
with the provider replaced by an in-memory `httpx.MockTransport` (no network, instant answers):

- region: `client.edit(prompt, [photo], mask=mask)` then `client.download(result, folder)`: read
  and hash 图1 and the mask, plan and cut the crop, encode it within the 6 MiB body, then (on
  download) decode 图1 again, stitch the provider's answer (a PNG at the asked size), save the
  stitched file with its label, and the provider's own image with its label;
- plain: `client.edit(prompt, [photo])` then `client.download(...)` of a 1-MP answer: read, hash,
  downscale to 2048 and encode 图1, then strip, label and save the answer.

The final save of the stitched image (encode_result, writing the label, writing the file) is
timed apart and taken out of the region's local work; the plain edit's own save (label and write
of a 1-MP PNG) is taken out of the plain's. The ratio region / plain is the goal (<= 2x). The
peak memory of one region edit and its download is measured in a fresh process; for the JPEG
variants the difference outside the region is measured: the mean and max absolute error and the
share of bit-identical pixels more than 16 px from the painted region.
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

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import photos  # noqa: E402
from PIL import Image, ImageDraw, ImageOps  # noqa: E402

from juhe import ImageEditClient  # noqa: E402
from juhe._download import _write_new  # noqa: E402
from juhe._provenance import build_provenance, write_provenance  # noqa: E402
from juhe._region import (  # noqa: E402
    UNTOUCHED_DISTANCE,
    crop_image,
    encode_result,
    prepare_region,
    stitch,
)

MiB = 1024 * 1024
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


class Provider:
    """The provider in memory: answers each edit with one link, that link with `answer`."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            result = {"orderid": "JHBENCH", "images": [{"image": "https://results.test/1.png"}]}
            return httpx.Response(200, json={"reason": "成功", "result": result, "error_code": 0})
        return httpx.Response(200, content=self.answer)


def through_client(data: bytes, answer: bytes, folder: Path, mask: bytes | None = None) -> list[Path]:
    """One edit and its download, as a user runs them; returns the saved results."""
    transport = httpx.MockTransport(Provider(answer))
    with ImageEditClient(api_key="bench", transport=transport) as client:
        result = client.edit("把圈出的人换成一棵树", [data], mask=mask)
        return client.download(result, folder)


def final_save(region, stitched, folder: Path) -> bytes:
    """What the download does last for a region edit: encode, label, write the file."""
    data, _ = encode_result(region, stitched)
    record = build_provenance(provider="bench", order_id="JHBENCH", model="auto", prompt="p", size="",
                              inputs_sha256=["0" * 64])  # fmt: skip
    labelled = write_provenance(data, record)
    _write_new(folder, "final", ".img", labelled)
    return labelled


def plain_save(answer: bytes, folder: Path) -> None:
    """What the download does last for a plain edit: label and write the provider's image."""
    record = build_provenance(provider="bench", order_id="JHBENCH", model="auto", prompt="p", size="",
                              inputs_sha256=["0" * 64])  # fmt: skip
    _write_new(folder, "plain", ".png", write_provenance(answer, record))


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
    """In a fresh process: one region edit of the photo at `path` and its download through the
    client; print the RSS it added."""
    data = Path(path).read_bytes()
    mask = mask_for(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).size)
    answer = provider_answer(Image.new("RGB", (1000, 800)), "1136*912")
    before = memory_mb("VmRSS")
    with tempfile.TemporaryDirectory() as folder:
        through_client(data, answer, Path(folder), mask)
    print(f"{memory_mb('VmHWM') - before:.0f} {before:.0f}")


def median_ms(times: list[float]) -> float:
    return statistics.median(times) * 1000


def main() -> None:
    if sys.argv[1:2] == ["--peak"]:
        return peak(sys.argv[2])
    print(__doc__.split("\n\n")[0])
    folder = Path(tempfile.mkdtemp(prefix="juhe-bench-region-"))
    for name, data in variants().items():
        size = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).size
        mask = mask_for(size)
        region = prepare_region(data, mask)
        answer = provider_answer(crop_image(region), region.plan.size)
        plain_answer = provider_answer(ImageOps.exif_transpose(Image.open(io.BytesIO(data))), "1184*880")
        stitched = stitch(region, answer)
        region_times, plain_times, save_times, plain_save_times = [], [], [], []
        for _ in range(RUNS):  # interleaved, so all see the same machine
            region_times.append(timed(lambda: through_client(data, answer, folder, mask)))  # noqa: B023
            plain_times.append(timed(lambda: through_client(data, plain_answer, folder)))  # noqa: B023
            save_times.append(timed(lambda: final_save(region, stitched, folder)))  # noqa: B023
            plain_save_times.append(timed(lambda: plain_save(plain_answer, folder)))  # noqa: B023
        region_ms, plain_ms = median_ms(region_times), median_ms(plain_times)
        save_ms, plain_save_ms = median_ms(save_times), median_ms(plain_save_times)
        region_local, plain_local = region_ms - save_ms, plain_ms - plain_save_ms
        [saved_path] = through_client(data, answer, folder, mask)
        saved = saved_path.read_bytes()
        print(f"\n{name} ({len(data) / MiB:.1f} MB), crop {region.plan.box}, asked {region.plan.size}")
        print(f"  through the client (edit + download): region {region_ms:.0f} ms, plain {plain_ms:.0f} ms")
        print(
            f"  local work without the final save: region {region_local:.0f} ms, plain {plain_local:.0f} ms, "
            f"ratio {region_local / plain_local:.2f}x (goal <= 2x)"
        )
        print(
            f"  final save: {saved_path.suffix[1:].upper()} {save_ms:.0f} ms, {len(saved) / MiB:.1f} MB "
            f"(the plain edit's: {plain_save_ms:.0f} ms)"
        )
        with tempfile.NamedTemporaryFile() as photo:
            photo.write(data)
            photo.flush()
            child = [sys.executable, __file__, "--peak", photo.name]
            added, before = subprocess.run(child, capture_output=True, text=True, check=True).stdout.split()
        print(
            f"  peak memory of a region edit and its download: +{added} MB RSS (fresh process at {before} MB)"
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
        if saved_path.suffix == ".jpg":
            lossless = prepare_region(data, mask, lossless=True)
            result = stitch(lossless, answer)
            for level in (1, 6):
                took = timed(lambda: encode(result, "PNG", compress_level=level))  # noqa: B023
                png = encode(result, "PNG", compress_level=level)
                print(f"  lossless PNG instead, level {level}: {took * 1000:.0f} ms, {len(png) / MiB:.1f} MB")
        for leftover in folder.iterdir():
            leftover.unlink()
    folder.rmdir()


if __name__ == "__main__":
    main()
