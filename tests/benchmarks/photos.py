"""Synthetic but realistic test photos for the benchmarks, cached outside the repository.

A phone photo is mostly smooth (sky, walls, out-of-focus background) with some edges and sensor
noise. Pure random noise would be an unrealistic worst case for JPEG; these images are smooth
gradients and soft shapes plus Gaussian noise, tuned so a 12-megapixel one is 4-6 MB at quality 92.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

CACHE = Path(os.environ.get("JUHE_BENCH_CACHE") or Path(tempfile.gettempdir()) / "juhe-bench-photos")
VERSION = "v1"
ORIENTATION_TAG = 0x0112


def _scene(width: int, height: int, seed: int, noise_sigma: float, texture: float = 1.0) -> Image.Image:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    x /= width
    y /= height
    base = rng.uniform(40, 200, size=3).astype(np.float32)
    tilt = rng.uniform(-90, 90, size=(2, 3)).astype(np.float32)
    img = base + x[..., None] * tilt[0] + y[..., None] * tilt[1]
    # soft blobs (out-of-focus objects) and a few hard-edged shapes (objects in focus)
    for _ in range(14):
        cx, cy = rng.uniform(0, 1, 2)
        r = rng.uniform(0.04, 0.3)
        colour = rng.uniform(-80, 80, 3).astype(np.float32)
        d2 = ((x - cx) * width / height) ** 2 + (y - cy) ** 2
        img += np.exp(-d2 / (2 * r * r))[..., None] * colour
    for _ in range(10):
        x0, y0 = rng.uniform(0, 0.9, 2)
        w, h = rng.uniform(0.03, 0.25, 2)
        mask = (x > x0) & (x < x0 + w) & (y > y0) & (y < y0 + h)
        img[mask] = img[mask] * 0.5 + rng.uniform(0, 255, 3).astype(np.float32) * 0.5
    # fine texture (foliage, fabric) over part of the frame
    stripes = np.sin(x * rng.uniform(200, 600)) * np.sin(y * rng.uniform(200, 600)) * 18
    img += (stripes * (x > 0.55))[..., None]
    smooth = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(1.2))
    arr = np.asarray(smooth).astype(np.float32)
    # band-limited detail (grass, gravel, leaves) over the lower part of the frame
    grain = Image.fromarray(rng.normal(128, 60, size=(height, width)).clip(0, 255).astype(np.uint8))
    detail = np.asarray(grain.filter(ImageFilter.GaussianBlur(1.0))).astype(np.float32) - 128
    arr += (detail * texture * np.clip((y - 0.45) * 4, 0, 1))[..., None]
    # sensor noise: luminance noise plus weaker chroma noise
    luma = rng.normal(0, noise_sigma, size=(height, width, 1)).astype(np.float32)
    chroma = rng.normal(0, noise_sigma * 0.4, size=(height, width, 3)).astype(np.float32)
    return Image.fromarray(np.clip(arr + luma + chroma, 0, 255).astype(np.uint8))


def _jpeg(image: Image.Image, quality: int, orientation: int = 1) -> bytes:
    out = io.BytesIO()
    exif = Image.Exif()
    exif[0x010F] = "BenchPhone"  # Make
    if orientation != 1:
        exif[ORIENTATION_TAG] = orientation
    image.save(out, "JPEG", quality=quality, exif=exif.tobytes())
    return out.getvalue()


def phone_photos() -> list[Path]:
    """Three 4000x3000 JPEGs at quality 92, 4-6 MB each; the second carries EXIF orientation 6."""
    CACHE.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, orientation in enumerate((1, 6, 1), start=1):
        path = CACHE / f"phone{index}-{VERSION}.jpg"
        if not path.exists():
            data = _jpeg(_scene(4000, 3000, seed=index, noise_sigma=4.5, texture=2.0), 92, orientation)
            tmp = path.with_suffix(".partial")
            tmp.write_bytes(data)
            tmp.replace(path)
        paths.append(path)
    return paths


def compliant_photo() -> Path:
    """A 1600x1200 JPEG the provider accepts as is (upright, under every limit)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"compliant-{VERSION}.jpg"
    if not path.exists():
        data = _jpeg(_scene(1600, 1200, seed=7, noise_sigma=3.0, texture=1.5), 90)
        tmp = path.with_suffix(".partial")
        tmp.write_bytes(data)
        tmp.replace(path)
    return path


if __name__ == "__main__":
    for p in [*phone_photos(), compliant_photo()]:
        with Image.open(p) as im:
            print(p, p.stat().st_size, im.size, im.getexif().get(ORIENTATION_TAG))
