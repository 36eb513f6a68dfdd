"""The result store's costs: `python tests/benchmarks/store_sweep.py [results]` (default 5000).

Prints, for a folder of N small saved results (each a PNG and its sidecar, as juhe saves them):
1  the first load, which adopts them all (one record written per result), and a reload;
2  a sweep with nothing due (what the app pays after every save), against the simplest alternative:
   rescanning the folder and summing its file sizes;
3  a sweep that deletes the oldest 10%;
4  `add` with a 12-megapixel phone JPEG as 图1 (kept by a hard link; its "before" copy waits for
   the first request) and the thumbnail, against saving nothing but the result; then the first
   `before_copy` of it, which a share page or the history pays once.
Times are medians on this machine; ratios are the ones to compare.
"""

from __future__ import annotations

import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the tests' helpers

from helpers.saving import save_result  # noqa: E402
from photos import phone_photos  # noqa: E402

from juhe import EditResult  # noqa: E402
from webapp.store import ResultStore  # noqa: E402


def tiny_png(seed: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 32), (seed % 256, seed // 256 % 256, 0)).save(out, "PNG")
    return out.getvalue()


def rescan(folder: Path) -> int:
    total = 0
    for base, _dirs, files in os.walk(folder):
        for name in files:
            total += os.lstat(os.path.join(base, name)).st_size
    return total


def median_ms(action, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main(count: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="juhe-store-bench-")) / "outputs"
    now = time.time()
    for i in range(count):
        result = EditResult(order_id=f"order{i:06d}", image_urls=["https://x/1"], prompt=f"prompt {i}")
        (path,) = save_result(result, folder, [("https://x/1", tiny_png(i), "PNG")])
        for file in (path, path.with_suffix(".json")):
            os.utime(file, (now - (count - i) * 60, now - (count - i) * 60))  # one a minute, oldest first

    start = time.perf_counter()
    store = ResultStore(folder, keep_days=30, max_bytes=10**12)
    store.get("A" * 22)
    adopt_s = time.perf_counter() - start
    start = time.perf_counter()
    ResultStore(folder, keep_days=30, max_bytes=10**12).get("A" * 22)
    reload_s = time.perf_counter() - start
    print(f"1  {count} results: first load (adopting) {adopt_s:.2f} s, reload {reload_s:.2f} s")

    noop = median_ms(store.sweep, 200)
    scan = median_ms(lambda: rescan(folder), 20)
    assert rescan(folder) == store.total_bytes, "the running total differs from the folder"
    print(f"2  sweep with nothing due: {noop:.3f} ms; rescanning the folder: {scan:.1f} ms", end="")
    print(f" ({scan / noop:.0f}x)")

    store.max_bytes = store.total_bytes * 9 // 10
    start = time.perf_counter()
    deleted = store.sweep()
    print(f"3  sweep deleting {len(deleted)} results (10% of the bytes): {time.perf_counter() - start:.2f} s")

    photo = phone_photos()[0]
    result_png = tiny_png(1)
    plain, full, first = [], [], []

    def saved(order_id: str) -> Path:
        result = EditResult(order_id=order_id, image_urls=["u"])
        return save_result(result, folder, [("u", result_png, "PNG")])[0]

    for i in range(5):
        path = saved(f"b{i}")
        start = time.perf_counter()
        store.add([path], prompt="p")
        plain.append(time.perf_counter() - start)
        path = saved(f"c{i}")
        start = time.perf_counter()
        record = store.add([path], prompt="p", before=photo)
        full.append(time.perf_counter() - start)
        start = time.perf_counter()
        store.before_copy(record.id)
        first.append(time.perf_counter() - start)
    a, b = statistics.median(plain) * 1000, statistics.median(full) * 1000
    c = statistics.median(first) * 1000
    print(f"4  add: {a:.1f} ms without 图1, {b:.1f} ms with a 12-MP JPEG as 图1 ({b / a:.1f}x);", end="")
    print(f" its first before_copy {c:.0f} ms")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5000)
