"""The cache sweep on its own: what is old enough goes, what the app keeps stays (fake clocks)."""

from __future__ import annotations

import os
import threading
import time

from webapp.sweep import CacheSweep

DAY = 24 * 3600


def write(path, data: bytes = b"x" * 100):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def later(seconds: float):
    """A clock standing `seconds` after now."""
    start = time.time()
    return lambda: start + seconds


def test_files_older_than_the_bound_go_and_younger_stay(tmp_path):
    upload = write(tmp_path / "abc" / "photo.jpg")
    shown = write(tmp_path / "juhe-results" / "f00" / "result.png")
    assert CacheSweep(tmp_path, DAY, clock=later(DAY - 60)).sweep() == (0, 0)
    assert upload.exists() and shown.exists()
    assert CacheSweep(tmp_path, DAY, clock=later(DAY + 60)).sweep() == (2, 200)
    assert not upload.exists() and not shown.exists()
    assert list(tmp_path.iterdir()) == []  # the folders it emptied went too; the root stays


def test_age_counts_from_the_last_change_or_touch(tmp_path):
    """A copy keeps its source's old mtime (shutil.copy2), but its ctime says when it was made."""
    copied = write(tmp_path / "hash" / "example.jpg")
    year_ago = time.time() - 365 * DAY
    os.utime(copied, (year_ago, year_ago))
    assert CacheSweep(tmp_path, DAY).sweep() == (0, 0)
    assert copied.exists()


def test_kept_files_and_the_output_folder_stay(tmp_path):
    example = write(tmp_path / "hash" / "cat.jpg")
    outputs = tmp_path / "outputs"
    saved = write(outputs / "order1.png")
    linked = tmp_path / "juhe-results" / "f00" / "order1.png"
    linked.parent.mkdir(parents=True)
    os.link(saved, linked)  # a shown copy of a saved result
    other = write(tmp_path / "upload" / "x.png")
    spelled_otherwise = str(tmp_path / "hash" / ".." / "hash" / "cat.jpg")
    sweep = CacheSweep(tmp_path, DAY, keep=lambda: [spelled_otherwise], skip=[outputs], clock=later(2 * DAY))
    assert sweep.sweep() == (2, 200)
    assert example.exists() and saved.exists()
    assert not linked.exists() and not other.exists()


def test_a_missing_root_sweeps_nothing(tmp_path):
    assert CacheSweep(tmp_path / "absent", DAY, clock=later(2 * DAY)).sweep() == (0, 0)


def test_the_thread_sweeps_at_start_and_stops(tmp_path):
    old = write(tmp_path / "a" / "old.bin")
    swept = threading.Event()

    class Recording(CacheSweep):
        def sweep(self):
            result = super().sweep()
            swept.set()
            return result

    sweep = Recording(tmp_path, DAY, clock=later(2 * DAY))
    sweep.start()
    assert swept.wait(10)
    sweep.stop()
    assert not old.exists()
    assert not sweep._thread.is_alive()


def test_in_a_shared_folder_only_what_this_app_wrote_goes(tmp_path):
    """GRADIO_TEMP_DIR set by the operator (maybe Gradio's own /tmp/gradio, shared by every app):
    the sweep deletes the app's own folders and the files it recorded, nothing of another app's."""
    other_app = write(tmp_path / "f1e2d3" / "their-upload.png")
    our_upload = write(tmp_path / "a1b2c3" / "photo.jpg")
    shown = write(tmp_path / "juhe-results" / "f00" / "result.png")
    sweep = CacheSweep(tmp_path, DAY, clock=later(2 * DAY), ours=lambda: [str(our_upload)])
    assert sweep.sweep() == (2, 200)
    assert other_app.exists() and not our_upload.exists() and not shown.exists()
