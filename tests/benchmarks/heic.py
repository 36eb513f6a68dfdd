"""A 48-megapixel HEIC (8064x6048, an iPhone's largest): `python tests/benchmarks/heic.py`.

The photo is generated once (photos.py's scene, upscaled, encoded by pillow-heif in 512-px tiles
as an iPhone does, with EXIF orientation 6; about a minute) into the benchmark cache. Each
measure then runs in a fresh process, which reports its time and its peak RSS:

- heif_to_jpeg(max_side=2048): what the client sends (decoded band by band, never a second
  full-size copy);
- open_heif: the full-size upright image a region edit needs;
- the floor: pillow-heif decoding the same file into its own buffer, and nothing else.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(ROOT), str(HERE)]

import photos  # noqa: E402

PHOTO = photos.CACHE / f"iphone48-{photos.VERSION}.heic"

CHILD = """
import io, sys, time
sys.path.insert(0, {root!r})

def high_water_mb():  # VmHWM: this process's peak RSS (ru_maxrss can carry the parent's over exec)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

data = open({path!r}, "rb").read()
before = high_water_mb()
start = time.perf_counter()
if {what!r} == "floor":
    import pillow_heif
    heif = pillow_heif.open_heif(io.BytesIO(data))
    heif.data
    shape = heif.size
elif {what!r} == "open":
    from juhe._heic import open_heif
    shape = open_heif(data).size
else:
    from juhe._heic import heif_to_jpeg
    shape = len(heif_to_jpeg(data, max_side=2048))
took = time.perf_counter() - start
print(f"{{took:.2f}} {{high_water_mb():.0f}} {{before:.0f}} {{shape}}")
"""


def make_photo() -> None:
    import pillow_heif
    from PIL import Image

    base = photos._scene(4032, 3024, seed=7, noise_sigma=3.0, texture=1.5)
    big = base.resize((8064, 6048), Image.Resampling.BICUBIC)
    exif = Image.Exif()
    exif[0x0112] = 6
    tmp = PHOTO.with_suffix(".partial")
    pillow_heif.encode("RGB", big.size, big.tobytes(), tmp, exif=exif.tobytes(), quality=80, tile_size=512)
    tmp.replace(PHOTO)


def measure(what: str) -> str:
    code = CHILD.format(root=str(ROOT), path=str(PHOTO), what=what)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    took, peak, before, shape = out.split(" ", 3)
    return f"{took} s, peak RSS {peak} MB (the process held {before} MB before), result {shape.strip()}"


def main() -> None:
    print(__doc__.split("\n\n")[0])
    photos.CACHE.mkdir(parents=True, exist_ok=True)
    if not PHOTO.exists():
        print("generating the photo (about a minute) ...")
        make_photo()
    print(f"{PHOTO.name}: {PHOTO.stat().st_size / 1024 / 1024:.1f} MB")
    labels = {"jpeg": "heif_to_jpeg(2048)", "open": "open_heif (full size)", "floor": "floor"}
    for what, label in labels.items():
        print(f"  {label}: {measure(what)}")


if __name__ == "__main__":
    main()
