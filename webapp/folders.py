"""Where the app keeps files, chosen once at start: the output folder and Gradio's cache.

The settings hold what the operator named (JUHE_OUTPUT_DIR, GRADIO_TEMP_DIR) or None; the defaults
depend on the machine, so they are settled here, by `app.main()`, and not while parsing.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import replace
from pathlib import Path

from webapp.settings import AppSettings

DATA_DIR = Path("/data")  # a Hugging Face Space's persistent storage, when it has some
OUTPUT_FALLBACK = Path("outputs")  # beside the working folder
CACHE_FOLDER = "gradio-cache"  # the app's own cache, beside the output folder


def output_folder(
    configured: str | os.PathLike | None,
    data_dir: str | os.PathLike = DATA_DIR,
    fallback: str | os.PathLike = OUTPUT_FALLBACK,
) -> Path:
    """Where results go: JUHE_OUTPUT_DIR, else `<data_dir>/outputs` on a Space with persistent storage
    (`/data` present and writable: it is created and probed), else `outputs`."""
    if configured:
        return Path(configured)
    data = Path(data_dir)
    if data.is_dir():
        target = data / "outputs"
        try:
            target.mkdir(exist_ok=True)
            with tempfile.TemporaryFile(dir=target):
                pass
            return target
        except OSError:
            pass
    return Path(fallback)


def place_folders(settings: AppSettings, data_dir: str | os.PathLike = DATA_DIR) -> AppSettings:
    """The settings with both folders settled.

    Without GRADIO_TEMP_DIR the cache is a folder of the app's own, `gradio-cache` beside the output
    folder, rather than `/tmp/gradio`, which every Gradio app of the machine shares: the cache sweep
    may then empty it whole (`owns_cache`), and on the results' file system a shown result is a hard
    link, not a copy (on a Space, /data is not where /tmp is).
    """
    output_dir = output_folder(settings.output_dir, data_dir)
    if settings.cache_dir is not None:
        return replace(settings, output_dir=output_dir, owns_cache=False)
    cache_dir = output_dir.resolve().parent / CACHE_FOLDER
    return replace(settings, output_dir=output_dir, cache_dir=cache_dir, owns_cache=True)
