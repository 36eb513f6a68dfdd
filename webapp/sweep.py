"""The cache sweep: uploads and Gradio's cached copies (results shown, files sent to events) older
than a bound are deleted from GRADIO_TEMP_DIR by a background thread, never on the event loop.

Files the app itself keeps in the cache (examples, initial values) and the app's output folder, if
it lies inside, are never touched. A file's age is counted from its last change or touch (the later
of mtime and ctime), so a copy Gradio hands out again is young again.

By default the cache is a folder of this app's own (`gradio-cache` beside the output folder), and
the sweep may delete anything old in it. When the operator points GRADIO_TEMP_DIR elsewhere (maybe
a folder other apps share, such as Gradio's own default /tmp/gradio), it deletes only what this app
wrote: its own `juhe-*` folders and the files its visitors uploaded or its events handed out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path

from gradio.utils import get_upload_folder

from webapp.settings import AppSettings

# A pass runs at start, then every hour (or every max age, if shorter).
SWEEP_INTERVAL_S = 3600.0
OWN_PREFIX = "juhe-"  # the folders this app makes in the cache (results shown, befores, previews)

log = logging.getLogger(__name__)


class CacheSweep:
    """Deletes files under `root` older than `max_age_s`, except those `keep()` names (compared by
    inode, so any spelling of a path matches) and anything under `skip`."""

    def __init__(
        self,
        root: Path,
        max_age_s: float,
        keep: Callable[[], Iterable[str]] = tuple,
        skip: Iterable[Path] = (),
        clock: Callable[[], float] = time.time,
        ours: Callable[[], Iterable[str]] | None = None,
    ) -> None:
        self.root = Path(root)
        self.ours = ours  # None: everything under root is this app's
        self.max_age_s = max_age_s
        self.keep = keep
        self.skip = {os.path.realpath(path) for path in skip}
        self.clock = clock
        self.interval_s = min(SWEEP_INTERVAL_S, max_age_s)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sweep(self) -> tuple[int, int]:
        """One pass: delete what is old enough, then the folders it emptied; return (files, bytes)."""
        now = self.clock()
        kept = set()
        for path in self.keep():
            with contextlib.suppress(OSError):
                info = os.stat(path)
                kept.add((info.st_dev, info.st_ino))
        ours = None if self.ours is None else {os.path.realpath(p) for p in self.ours()}
        removed, freed, emptied = 0, 0, []
        for folder, subfolders, names in os.walk(self.root):
            subfolders[:] = [
                s for s in subfolders if os.path.realpath(os.path.join(folder, s)) not in self.skip
            ]
            for name in names:
                path = os.path.join(folder, name)
                if ours is not None and not self._ours(path, ours):
                    continue
                try:
                    info = os.lstat(path)
                    if (info.st_dev, info.st_ino) in kept or now - max(
                        info.st_mtime, info.st_ctime
                    ) < self.max_age_s:
                        continue
                    os.unlink(path)
                except OSError:  # gone meanwhile, or not ours to delete
                    continue
                removed, freed = removed + 1, freed + info.st_size
                emptied.append(folder)
        for folder in sorted(set(emptied), key=len, reverse=True):
            while Path(folder) != self.root and Path(folder).is_relative_to(self.root):
                try:
                    os.rmdir(folder)  # only if empty: a file written meanwhile keeps it
                except OSError:
                    break
                folder = os.path.dirname(folder)
        return removed, freed

    def _ours(self, path: str, ours: set[str]) -> bool:
        """True for a file this app wrote: in one of its own folders, or one it recorded."""
        first = Path(path).relative_to(self.root).parts[0]
        return first.startswith(OWN_PREFIX) or os.path.realpath(path) in ours

    def start(self) -> None:
        """Sweep now and then every `interval_s`, in a daemon thread, until `stop`."""
        self._thread = threading.Thread(target=self._run, name="cache-sweep", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the thread to end after its current pass and wait up to `timeout` s for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            try:
                removed, freed = self.sweep()
            except Exception:  # the next pass may well succeed; the thread must live on
                log.exception("cache sweep of %s failed", self.root)
            else:
                if removed:
                    log.info(
                        "cache sweep: removed %d files (%.1f MB) from %s", removed, freed / 1e6, self.root
                    )
            if self._stop.wait(self.interval_s):
                return


def sweep_lifespan(settings: AppSettings, ours: Callable[[], Iterable[str]] = tuple) -> Callable:
    """A lifespan for Gradio's app (`launch(app_kwargs={"lifespan": ...})`): the sweep runs while the
    server does (JUHE_CACHE_HOURS=0: never). Files kept are those of the app's components; the
    output folder is skipped. Unless the cache is the app's own (`settings.owns_cache`), only
    `ours()` and the app's own folders are swept."""

    @contextlib.asynccontextmanager
    async def lifespan(app) -> AsyncIterator[None]:
        if not settings.cache_hours:
            yield
            return
        sweep = CacheSweep(
            settings.cache_dir if settings.owns_cache and settings.cache_dir else Path(get_upload_folder()),
            settings.cache_hours * 3600,
            keep=lambda: kept_files(app.get_blocks()),
            skip=[settings.output_dir],
            ours=None if settings.owns_cache else ours,
        )
        sweep.start()
        try:
            yield
        finally:
            await asyncio.to_thread(sweep.stop)  # waits for a pass under way, off the event loop

    return lifespan


def kept_files(blocks) -> list[str]:
    """The files a Gradio app keeps in its cache for good: examples and initial values."""
    return [path for block in blocks.blocks.values() for path in getattr(block, "keep_in_cache", ())]
