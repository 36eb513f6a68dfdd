"""Process-wide behaviour of the server's processes (the app's and its edit process): give freed
image buffers back to the system, keep the cycle collector's work from growing with the heap, let a
missing optional module fail its import at once, and bound every image decode."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import importlib.util
import sys
import warnings

from PIL import Image

from juhe import MAX_INPUT_PIXELS

# glibc's mallopt() parameter numbers
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
LARGE_BUFFER = 1024 * 1024
KEEP_FREE = 32 * 1024 * 1024
# the cycle collector's thresholds: a young collection every 50,000 allocations instead of 700
COLLECTOR_THRESHOLDS = (50_000, 20, 100)
# Optional modules imported on every call by Gradio (matplotlib) and httpcore (sniffio)
OPTIONAL_IMPORTS = ("matplotlib", "sniffio")


def return_large_buffers(threshold: int = LARGE_BUFFER, keep_free: int = KEEP_FREE) -> bool:
    """Have glibc map every allocation of `threshold` bytes or more on its own, so it goes back to the
    system when freed, and let its heaps keep up to `keep_free` bytes free for reuse. Returns whether
    that was set (False off glibc, where nothing changes).

    By default glibc raises the mapping threshold each time such a block is freed, up to 32 MiB; after
    that the multi-megabyte buffers of an edit (photo bytes, pixels, request bodies, results) come from
    its per-thread heaps, which keep them. Measured with 16 visitors sending 12-MP photos twice: peak
    RSS +481 MiB over idle and all of it still held afterwards by default; +189 MiB and back to within
    20 MiB of idle with this. A threshold of 128 KiB also returns the rest, but mapping and unmapping
    every sub-megabyte buffer slowed the same burst with small photos by several percent.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return (
            libc.mallopt(M_MMAP_THRESHOLD, threshold) == 1 and libc.mallopt(M_TRIM_THRESHOLD, keep_free) == 1
        )
    except (OSError, AttributeError):  # no C library to load, or one without mallopt
        return False


def trim_heap() -> bool:
    """Give the free memory at the top of glibc's heaps back to the system now (`malloc_trim`);
    False off glibc. For a process that has just gone idle after a burst: its heaps keep what the
    burst freed (an edit process held some 100 MB more after 128 edits, 60 to 90 MB of it freed by
    this, in a few milliseconds)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        return bool(ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0))
    except (OSError, AttributeError):
        return False


def calm_collector(thresholds: tuple[int, int, int] = COLLECTOR_THRESHOLDS) -> None:
    """Move everything alive now (the imported modules, the built page) out of the cycle collector's
    reach (`gc.freeze`), and collect the young generations less often. Call once, after start-up.

    With Python's defaults the collector runs every 700 allocations and, every tenth and hundredth
    time, walks the older objects too, the whole of Gradio among them. `tests/benchmarks/long_run.py`
    (bursts of 256 edits into one process, three runs): CPU per burst over the last bursts 0.88 to
    0.94 times what it is with the defaults. Memory is freed as before: buffers by reference
    counting, cycles at the next young collection.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*thresholds)


def install_fast_failed_imports(names: tuple[str, ...] = OPTIONAL_IMPORTS) -> None:
    """For each of `names` that is not installed, make its import fail at once (`sys.modules` None)
    instead of searching `sys.path` on every call."""
    for name in names:
        if name not in sys.modules and importlib.util.find_spec(name) is None:
            sys.modules[name] = None  # type: ignore[assignment]


def bound_decoding(max_pixels: int = MAX_INPUT_PIXELS) -> None:
    """Every `Image.open` in this process refuses more than `max_pixels` (DecompressionBombError);
    images up to it open without a warning."""
    Image.MAX_IMAGE_PIXELS = max_pixels // 2
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
