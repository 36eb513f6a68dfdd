"""The result store: random ids, previews, deletion, share links, persistence, retention, the secret."""

from __future__ import annotations

import io
import json
import math
import os
import stat
import struct
import threading
from pathlib import Path

import pytest
from helpers.clock import T0
from helpers.saving import save_result
from helpers.store_files import store_files
from PIL import Image

from juhe import MAX_INPUT_PIXELS, EditResult
from juhe._metadata import png_chunk
from webapp.store import (
    BEFORE_SIDE,
    DAY_S,
    MAX_COPIES,
    STORE_DIR,
    THUMB_SIDE,
    ResultStore,
    Unavailable,
    make_preview,
)


def png(width: int = 64, height: int = 48, colour: str = "red", mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, (width, height), colour).save(out, "PNG")
    return out.getvalue()


def photo_with_exif(width: int, height: int, orientation: int = 6) -> bytes:
    """A JPEG with an orientation tag and identifying metadata (camera, GPS)."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "SecretCam"  # Make
    exif[0x8825] = {1: "N", 2: (39.0, 54.0, 0.0)}  # GPS
    out = io.BytesIO()
    Image.new("RGB", (width, height), "blue").save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


def save(folder: Path, order_id: str, data: bytes | None = None, prompt: str = "p") -> list[Path]:
    """Save a result the way the app does (image plus JSON sidecar)."""
    result = EditResult(order_id=order_id, image_urls=["https://x/1.png"], prompt=prompt, size="auto")
    return save_result(result, folder, [("https://x/1.png", data or png(), "PNG")])


def files_on_disk(folder: Path) -> int:
    """Bytes of every regular file under the folder, however deep."""
    return sum(p.lstat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def add(store: ResultStore, order_id: str, **options) -> object:
    paths = save(store.folder, order_id, options.pop("data", None))
    options.setdefault("prompt", f"prompt of {order_id}")
    return store.add(paths, order_id=order_id, **options)


# --- ids and records ---------------------------------------------------------------------------


def test_ids_are_random_128_bit_tokens_unrelated_to_order_ids_and_file_names(store):
    records = [add(store, f"order{i}") for i in range(20)]
    ids = {r.id for r in records}
    assert len(ids) == 20
    for record in records:
        assert len(record.id) == 22 and all(c.isalnum() or c in "-_" for c in record.id)
        assert record.order_id not in record.id and record.id not in str(record.images[0])
        assert store.get(record.id) == record


def test_add_keeps_the_metadata_and_finds_the_sidecar(store):
    paths = save(store.folder, "abc")
    record = store.add(
        paths, prompt="把猫换成狗", size="1024*1024", model="m1", completed_at="2025-01-02T03:04:05+00:00",
        order_id="abc", before=png(),
    )  # fmt: skip
    assert record.images == (paths[0],)
    assert record.sidecar == paths[0].with_suffix(".json")
    assert (record.prompt, record.size, record.model) == ("把猫换成狗", "1024*1024", "m1")
    assert record.order_id == "abc"
    assert (record.width, record.height) == (64, 48)
    assert record.expires == T0 + 30 * DAY_S
    assert record.share is None


def test_get_refuses_anything_not_shaped_like_an_id(store, tmp_path):
    record = add(store, "o1")
    for probe in ["../../etc/passwd", record.id + "x", record.id[:-1], "", None, 5, record.id.upper() + "!"]:
        assert store.get(probe) is None
    assert not store.delete("../" + record.id)
    assert store.get(record.id) is not None


def test_add_refuses_files_outside_the_output_folder(store, tmp_path):
    outside = tmp_path / "elsewhere.png"
    outside.write_bytes(png())
    with pytest.raises(ValueError, match="inside the output folder"):
        store.add([outside])
    nested = store.folder / "sub"
    nested.mkdir(parents=True)
    (nested / "x.png").write_bytes(png())
    with pytest.raises(ValueError):
        store.add([nested / "x.png"])
    with pytest.raises(ValueError):
        store.add([])


def test_before_copy_is_downscaled_upright_and_stripped_of_metadata(store):
    record = add(store, "o1", before=photo_with_exif(3000, 2000, orientation=6))
    assert store.before_copy(record.id) == record.before and record.before.is_file()
    assert record.before.is_relative_to(store.folder)
    with Image.open(record.before) as before:
        assert before.format == "JPEG"
        assert before.size == (512, BEFORE_SIDE)  # 3000x2000 turned by orientation 6: portrait
        assert not before.getexif()
        assert "exif" not in before.info and "icc_profile" not in before.info
    assert b"SecretCam" not in record.before.read_bytes()


def test_a_before_source_beyond_the_edit_pixel_bound_is_not_read(store, caplog):
    """juhe refuses an input over MAX_INPUT_PIXELS; the store reads none either (from its header)."""
    side = math.isqrt(MAX_INPUT_PIXELS) + 1
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    declared = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IEND", b"")
    with pytest.raises(ValueError, match=f"more than {MAX_INPUT_PIXELS} pixels"):
        make_preview(declared, BEFORE_SIDE, 85)
    record = add(store, "o1", before=declared)
    assert store.before_copy(record.id) is None and store.get(record.id).before is None
    assert "no before preview" in caplog.text


def test_before_from_a_path_and_with_transparency(store, tmp_path):
    source = tmp_path / "in.png"
    source.write_bytes(png(1600, 800, colour=(0, 0, 0, 0), mode="RGBA"))
    record = add(store, "o1", before=source)
    with Image.open(store.before_copy(record.id)) as before:
        assert before.size == (BEFORE_SIDE, 384)
        assert before.mode == "RGB" and before.getpixel((10, 10)) == (255, 255, 255)  # flattened on white


def test_the_first_add_to_a_store_not_yet_loaded_keeps_its_before(tmp_path):
    """The store loads on its first use, and the load sweeps files of no known result: the first
    result's kept 图1 was swept before its record existed, so its share page had no before/after."""
    from helpers.paths import CAT
    from helpers.saving import save_result

    from juhe import EditResult
    from webapp.store import ResultStore

    fresh = ResultStore(tmp_path / "outputs", keep_days=30, max_bytes=0)
    source = CAT  # a photo elsewhere on the disk, kept by a hard link
    result = EditResult(order_id="FIRST-1", image_urls=["https://x/1"], prompt="p")
    paths = save_result(result, fresh.folder, [("https://x/1", png(640, 480), "PNG")])  # with its sidecar
    record = fresh.add(paths, prompt="p", before=source)
    with Image.open(fresh.before_copy(record.id)) as before:
        assert before.size == (451, 300)  # the photo's own size: smaller than a before's bound


def test_thumbnail_is_a_small_jpeg_of_the_result(store):
    record = add(store, "o1", data=png(2000, 1000))
    with Image.open(record.thumbnail) as thumb:
        assert thumb.format == "JPEG" and thumb.size == (THUMB_SIDE, 300)


def test_an_unreadable_before_image_does_not_lose_the_result(store):
    record = add(store, "o1", before=b"not an image")
    assert store.before_copy(record.id) is None and store.get(record.id).before is None
    assert store.get(record.id).images[0].is_file()
    assert store.total_bytes == files_on_disk(store.folder)


def test_every_file_the_store_makes_lives_in_the_folder_and_is_counted(store, tmp_path):
    for i in range(3):
        add(store, f"o{i}", before=png(900, 900))
    store.share(store.get(add(store, "o9").id).id)
    store.browser_secret(None)
    outside = [p for p in tmp_path.rglob("*") if p.is_file() and not p.is_relative_to(store.folder)]
    assert outside == []
    assert store.total_bytes == files_on_disk(store.folder)


# --- deletion ----------------------------------------------------------------------------------


def test_delete_removes_images_sidecar_previews_record_copies_and_links(store, tmp_path):
    record = add(store, "o1", before=png())
    token = store.share(record.id)
    store.before_copy(record.id)
    cache = tmp_path / "gradio-cache" / "abc"
    cache.mkdir(parents=True)
    shown = cache / record.images[0].name
    os.link(record.images[0], shown)
    assert store.register_copy(record.id, shown)
    made = [*record.images, record.sidecar, record.before, record.thumbnail, shown]
    assert all(p.is_file() for p in made)

    assert store.delete(record.id)
    assert [p for p in made if p.exists()] == []
    assert not list((store.folder / STORE_DIR / "records").iterdir())
    assert store.get(record.id) is None
    assert store.resolve(token) is Unavailable.UNKNOWN
    assert store.total_bytes == files_on_disk(store.folder)
    assert not store.delete(record.id)


# --- copies made on first request (issue 19) -------------------------------------------------------


def test_an_edit_makes_no_before_copy_and_no_thumbnail_until_one_is_asked_for(store):
    record = add(store, "o1", before=photo_with_exif(3000, 2000), thumbnail=False)
    assert store_files(store.folder, "before") == [] and store_files(store.folder, "thumbs") == []
    assert len(store_files(store.folder, "sources")) == 1  # 图1 kept as it came: no decoding yet
    assert record.before is not None and not record.before.exists() and record.thumbnail is None
    assert store.total_bytes == files_on_disk(store.folder)

    made = store.before_copy(record.id)
    assert made == record.before and made.is_file()
    assert store_files(store.folder, "sources") == []  # 图1 is dropped once its copy exists
    stamp = made.stat().st_mtime_ns
    assert store.before_copy(record.id) == made and made.stat().st_mtime_ns == stamp  # kept, not remade
    assert store.total_bytes == files_on_disk(store.folder)
    store.share(record.id)
    assert store.get(record.id).thumbnail.is_file()  # the thumbnail waits for the first share


def test_a_before_copy_not_yet_made_survives_a_restart_and_is_made_after_it(store, clock):
    record = add(store, "o1", before=png(900, 600))
    reopened = ResultStore(store.folder, clock=clock)
    assert reopened.get(record.id).before == record.before and not record.before.exists()
    with Image.open(reopened.before_copy(record.id)) as before:
        assert before.size == (BEFORE_SIDE, 512)
    assert ResultStore(store.folder, clock=clock).get(record.id).before == record.before
    assert store_files(store.folder, "sources") == []


def test_delete_removes_the_kept_image1_before_and_the_copy_after_it_was_made(store):
    waiting, made = add(store, "o1", before=png()), add(store, "o2", before=png())
    store.before_copy(made.id)
    assert store.delete(waiting.id) and store.delete(made.id)
    assert store_files(store.folder, "sources") == [] and store_files(store.folder, "before") == []
    assert store.before_copy(waiting.id) is None and store.before_copy(made.id) is None
    assert store.total_bytes == files_on_disk(store.folder)


def test_a_result_deleted_while_its_copy_is_made_leaves_no_copy(store, monkeypatch):
    record = add(store, "o1", before=png())
    write = store._write_preview

    def deleted_meanwhile(*args):
        store.delete(record.id)
        return write(*args) or True  # the copy is written after the delete took the files

    monkeypatch.setattr(store, "_write_preview", deleted_meanwhile)
    assert store.before_copy(record.id) is None
    assert store_files(store.folder, "before") == [] and store_files(store.folder, "sources") == []


def test_two_requests_at_once_make_one_copy(store):
    record = add(store, "o1", before=photo_with_exif(3000, 2000))
    results: list = []
    ask = lambda: results.append(store.before_copy(record.id))  # noqa: E731
    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [record.before] * 4 and record.before.is_file()
    assert store_files(store.folder, "sources") == []
    assert store_files(store.folder, "before") == [record.before]


def test_a_copy_made_just_before_a_crash_is_kept_and_the_kept_image1_dropped(store, clock):
    record = add(store, "o1", before=png())
    source = store_files(store.folder, "sources")[0]
    record.before.write_bytes(make_preview(source, BEFORE_SIDE, 85))  # the record still says "to make"
    reopened = ResultStore(store.folder, clock=clock)
    assert reopened.before_copy(record.id) == record.before and not source.exists()
    assert reopened.total_bytes == files_on_disk(store.folder)


def test_image1_is_kept_by_a_hard_link_not_read(store, tmp_path):
    source = tmp_path / "upload.jpg"
    source.write_bytes(photo_with_exif(400, 300))
    add(store, "o1", before=source)
    (kept,) = store_files(store.folder, "sources")
    assert kept.stat().st_ino == source.stat().st_ino


def test_delete_survives_files_already_gone(store):
    record = add(store, "o1")
    record.images[0].unlink()
    assert store.delete(record.id)
    assert store.get(record.id) is None


def test_copies_inside_the_output_folder_are_refused_and_old_copies_are_capped(store, tmp_path):
    record = add(store, "o1")
    with pytest.raises(ValueError):
        store.register_copy(record.id, record.images[0])
    assert not store.register_copy("A" * 22, tmp_path / "x.png")
    copies = []
    for i in range(MAX_COPIES + 2):
        copies.append(tmp_path / f"copy{i}.png")
        copies[-1].write_bytes(b"x")
        store.register_copy(record.id, copies[-1])
    assert [c.exists() for c in copies[:3]] == [False, False, True]  # the two oldest were deleted
    store.delete(record.id)
    assert not any(c.exists() for c in copies)


# --- share links -------------------------------------------------------------------------------


def test_share_is_idempotent_unguessable_and_unlike_an_id(store):
    record = add(store, "o1")
    token = store.share(record.id)
    assert token == store.share(record.id)
    assert len(token) == 32 and token != record.id  # 192 bits
    assert store.get(record.id).share == token
    assert store.resolve(token) == store.get(record.id)
    assert store.share("B" * 22) is None


def test_revoke_then_share_again_gives_a_new_link(store):
    record = add(store, "o1")
    first = store.share(record.id)
    assert store.revoke(first)
    assert not store.revoke(first)
    assert store.resolve(first) is Unavailable.REVOKED
    second = store.share(record.id)
    assert second != first
    assert isinstance(store.resolve(second), type(record))
    assert store.resolve(first) is Unavailable.REVOKED


def test_resolve_refuses_malformed_and_unknown_tokens(store):
    add(store, "o1")
    for probe in ["", "x" * 32, "../" + "x" * 29, None, "x" * 33]:
        assert store.resolve(probe) is Unavailable.UNKNOWN


def test_links_expire_with_their_result(store, clock):
    record = add(store, "o1")
    token = store.share(record.id)
    clock.now += 30 * DAY_S - 1
    assert store.resolve(token) == store.get(record.id)
    clock.now += 1
    assert store.resolve(token) is Unavailable.EXPIRED  # even before the sweep
    assert store.sweep() == [record.id]
    assert store.resolve(token) is Unavailable.EXPIRED  # and after it, from the tombstone
    reopened = ResultStore(store.folder, keep_days=30, max_bytes=0, clock=clock)
    assert reopened.resolve(token) is Unavailable.EXPIRED


def test_share_makes_a_thumbnail_for_a_result_that_has_none(store):
    record = add(store, "o1")
    record.thumbnail.unlink()
    store._entries[record.id].thumbnail = False  # as for a result adopted from before the store
    store.share(record.id)
    assert store.get(record.id).thumbnail.is_file()


# --- persistence -------------------------------------------------------------------------------


def test_records_links_and_revocations_survive_a_restart(store, clock):
    kept = add(store, "o1", before=png())
    token = store.share(kept.id)
    revoked = store.share(add(store, "o2").id)
    store.revoke(revoked)
    copy = store.folder.parent / "copy.png"
    copy.write_bytes(b"x")
    store.register_copy(kept.id, copy)

    reopened = ResultStore(store.folder, keep_days=30, max_bytes=0, clock=clock)
    assert reopened.get(kept.id) == store.get(kept.id)
    assert reopened.resolve(token) == store.get(kept.id)
    assert reopened.resolve(revoked) is Unavailable.REVOKED
    assert reopened.total_bytes == store.total_bytes == files_on_disk(store.folder)
    reopened.delete(kept.id)
    assert not copy.exists()


def test_corrupt_and_foreign_index_files_are_skipped(store, clock, caplog):
    good = add(store, "o1")
    bad = add(store, "o2")
    records = store.folder / STORE_DIR / "records"
    (records / f"{bad.id}.json").write_text('{"v": 1, "id": "trunc')  # a crash mid-write (no atomicity)
    (records / ("C" * 22 + ".json")).write_text(json.dumps({"v": 1, "id": "C" * 22, "files": ["../../x"]}))
    (records / "notes.txt").write_text("hello")
    (records / ("D" * 22 + ".json")).write_bytes(b"\xff\xfe" * 10)
    (store.folder / STORE_DIR / "expired.json").write_text("[1, 2")
    reopened = ResultStore(store.folder, keep_days=30, max_bytes=0, clock=clock)
    assert reopened.get(good.id) == store.get(good.id)
    assert reopened.get(bad.id) is None
    # the result of the unreadable record is not lost: it is adopted again under a new id
    assert reopened.total_bytes >= sum(p.stat().st_size for p in bad.images)
    assert any("skipping" in r.message for r in caplog.records)


def test_a_failed_write_leaves_the_previous_record_whole(store, clock, monkeypatch):
    record = add(store, "o1")
    before = (store.folder / STORE_DIR / "records" / f"{record.id}.json").read_bytes()

    def crash(*_args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    assert store.share(record.id)  # works in memory, logs the failure
    monkeypatch.undo()
    assert (store.folder / STORE_DIR / "records" / f"{record.id}.json").read_bytes() == before
    assert not [p for p in (store.folder / STORE_DIR / "records").iterdir() if p.name.startswith(".tmp-")]
    assert ResultStore(store.folder, clock=clock).get(record.id).share is None


def test_stale_temporary_files_are_removed_at_load(store, clock):
    add(store, "o1")
    stale = [store.folder / ".partial-abc.png", store.folder / STORE_DIR / "records" / ".tmp-x"]
    fresh = store.folder / ".partial-new.png"
    for path in [*stale, fresh]:
        path.write_bytes(b"x")
    for path in stale:
        os.utime(path, (0, 0))
    ResultStore(store.folder, clock=clock).get("A" * 22)
    assert [p.exists() for p in stale] == [False, False] and fresh.exists()


def test_previews_without_a_record_are_removed_at_load_and_missing_ones_forgotten(store, clock):
    record = add(store, "o1", before=png())
    old, fresh = (store.folder / STORE_DIR / "thumbs" / f"{c * 22}.jpg" for c in "AB")
    for path in (old, fresh):
        path.write_bytes(b"x")
    os.utime(old, (0, 0))
    store.before_copy(record.id).unlink()
    reopened = ResultStore(store.folder, clock=clock)
    assert reopened.get(record.id).before is None and reopened.get(record.id).thumbnail is not None
    assert not old.exists() and fresh.exists()  # a fresh one may belong to an add under way


def test_a_damaged_secret_place_does_not_fail_the_app(store):
    (store.folder / STORE_DIR / "browser-secret").mkdir(parents=True)
    assert len(store.browser_secret(None)) >= 43


def test_a_sidecar_listing_a_file_twice_is_adopted_once(tmp_path, clock):
    folder = tmp_path / "outputs"
    (path,) = save(folder, "twice")
    sidecar = path.with_suffix(".json")
    meta = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps({**meta, "files": [path.name, path.name, "../x.png", 5]}))
    store = ResultStore(folder, clock=clock)
    assert store.total_bytes == files_on_disk(folder)
    assert len(list((folder / STORE_DIR / "records").iterdir())) == 1


def test_results_saved_before_the_store_are_adopted(tmp_path, clock):
    folder = tmp_path / "outputs"
    old = save(folder, "legacy", prompt="旧的结果")
    orphan = folder / "orphan.png"
    orphan.write_bytes(png())
    (folder / "notes.txt").write_text("not a result")
    store = ResultStore(folder, keep_days=30, max_bytes=0, clock=clock)
    assert store.total_bytes == files_on_disk(folder) - len("not a result")
    # adopted records are persisted once, not re-adopted under new ids at every start
    ids = sorted(p.stem for p in (folder / STORE_DIR / "records").iterdir())
    assert len(ids) == 2
    assert sorted(p.stem for p in (folder / STORE_DIR / "records").iterdir()) == ids
    assert ResultStore(folder, clock=clock).total_bytes == store.total_bytes
    legacy = next(store.get(i) for i in ids if store.get(i).images == (old[0],))
    assert legacy.prompt == "旧的结果" and legacy.sidecar == old[0].with_suffix(".json")


def test_adding_a_result_the_load_already_adopted_gives_one_owner(tmp_path, clock):
    folder = tmp_path / "outputs"
    paths = save(folder, "race")  # saved, then the store loads before the app calls add
    store = ResultStore(folder, keep_days=30, max_bytes=0, clock=clock)
    record = store.add(paths, prompt="mine")
    assert len(list((folder / STORE_DIR / "records").iterdir())) == 1
    assert store.total_bytes == files_on_disk(folder)
    assert ResultStore(folder, clock=clock).get(record.id).prompt == "mine"


def test_records_whose_images_are_gone_are_dropped_at_load(store, clock):
    record = add(store, "o1", before=png())
    record.images[0].unlink()
    reopened = ResultStore(store.folder, clock=clock)
    assert reopened.get(record.id) is None
    assert not record.before.exists()
    assert record.sidecar.exists()  # not the store's to delete: it is re-adopted as nothing


def test_a_read_only_folder_does_not_fail_the_app(tmp_path, clock):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    store = ResultStore(blocker / "outputs", clock=clock)  # a folder below a file cannot exist
    assert store.get("A" * 22) is None
    assert store.sweep() == []


# --- retention ---------------------------------------------------------------------------------


def test_sweep_deletes_results_older_than_keep_days_oldest_first(store, clock):
    first = add(store, "o1")
    clock.now += 10 * DAY_S
    second = add(store, "o2")
    clock.now += 20 * DAY_S
    assert store.sweep() == [first.id]
    assert store.get(second.id) is not None
    assert store.sweep(now=clock.now + 10 * DAY_S) == [second.id]
    assert store.total_bytes == files_on_disk(store.folder)


def test_the_sweep_finds_the_next_oldest_once_the_oldest_was_deleted(store, clock):
    # the store keeps the earliest creation time between sweeps; deleting that result must not
    # leave it believing nothing is due, nor that something is
    first = add(store, "o1")
    clock.now += 10 * DAY_S
    second = add(store, "o2")
    clock.now += 1 * DAY_S
    third = add(store, "o3")
    assert store.sweep() == []  # the first is 11 days old, the limit is 30
    assert store.delete(first.id)
    assert store.sweep(now=clock.now + 29 * DAY_S - 1) == []  # the second is due at 30 days
    assert store.sweep(now=clock.now + 29 * DAY_S) == [second.id]
    assert store.sweep(now=clock.now + 30 * DAY_S) == [third.id]
    assert store.sweep(now=clock.now + 400 * DAY_S) == []


def test_a_result_older_than_every_other_is_still_swept_when_due(store, clock):
    # e.g. a result adopted at start, or the system clock set back: it becomes the oldest
    clock.now += 10 * DAY_S
    later = add(store, "o2")
    assert store.sweep() == []  # the store now knows the oldest result is 0 days old
    clock.now -= 10 * DAY_S
    earlier = add(store, "o1")
    assert store.sweep(now=clock.now + 30 * DAY_S) == [earlier.id]
    assert store.get(later.id) is not None


def test_sweep_deletes_the_oldest_while_over_the_size_limit(tmp_path, clock):
    store = ResultStore(tmp_path / "o", keep_days=0, max_bytes=10**9, clock=clock)
    records = []
    for i in range(5):
        records.append(add(store, f"o{i}"))
        clock.now += 60
    each = records[0].bytes
    store.max_bytes = store.total_bytes - 2 * each  # fake size: two results too many
    assert store.sweep() == [records[0].id, records[1].id]
    assert store.total_bytes <= store.max_bytes
    assert store.total_bytes == files_on_disk(store.folder)


def test_a_shared_result_is_kept_while_unshared_ones_can_go_then_its_link_says_expired(tmp_path, clock):
    store = ResultStore(tmp_path / "o", keep_days=30, max_bytes=10**9, clock=clock)
    shared = add(store, "shared")
    token = store.share(shared.id)
    clock.now += 1
    others = [add(store, f"o{i}") for i in range(3)]
    store.max_bytes = store.total_bytes - 1
    assert store.sweep() == [others[0].id]  # the shared one is older, but kept
    assert store.resolve(token) == store.get(shared.id)
    store.max_bytes = 1  # space forces everything out
    assert store.sweep() == [others[1].id, others[2].id, shared.id]
    assert store.resolve(token) is Unavailable.EXPIRED


def test_sweep_reads_no_file_when_nothing_is_due(store, monkeypatch):
    add(store, "o1")
    store.max_bytes = 10**9

    def no_io(*_args, **_kwargs):
        raise AssertionError("the sweep touched the disk")

    for name in ("scandir", "stat", "lstat", "listdir", "unlink", "replace"):
        monkeypatch.setattr(os, name, no_io)
    assert store.sweep() == []


@pytest.mark.slow  # a few tenths of a second of image work: out of the fast lane
def test_concurrent_adds_deletes_and_sweeps_keep_the_totals_right(tmp_path, clock):
    store = ResultStore(tmp_path / "o", keep_days=30, max_bytes=0, clock=clock)
    errors = []

    def work(n: int) -> None:
        try:
            for i in range(8):
                record = add(store, f"t{n}-{i}")
                store.share(record.id)
                if i % 2:
                    store.delete(record.id)
                store.max_bytes = 6000
                store.sweep()
        except Exception as exc:  # reported below, with the thread that failed
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert store.total_bytes == files_on_disk(store.folder)
    store.sweep()
    assert 0 < store.total_bytes <= 6000


def test_limits_are_checked(tmp_path):
    with pytest.raises(ValueError, match="JUHE_KEEP_DAYS"):
        ResultStore(tmp_path, keep_days=-1)
    with pytest.raises(ValueError, match="JUHE_OUTPUT_MAX_GB"):
        ResultStore(tmp_path, max_bytes=-5)
    with pytest.raises(ValueError, match="JUHE_OUTPUT_MAX_GB"):
        ResultStore(tmp_path, max_bytes=float("nan"))
    assert ResultStore(tmp_path, max_bytes=1.5 * 1024**3).max_bytes == 1610612736


# --- the browser secret ------------------------------------------------------------------------


def test_browser_secret_prefers_the_setting(store):
    assert store.browser_secret(" configured ") == "configured"
    assert not (store.folder / STORE_DIR / "browser-secret").exists()


def test_browser_secret_is_made_once_kept_private_and_survives_restarts(store, clock):
    secret = store.browser_secret(None)
    path = store.folder / STORE_DIR / "browser-secret"
    assert len(secret) >= 43 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ResultStore(store.folder, clock=clock).browser_secret("") == secret
    path.write_text("")  # damaged: replaced, not used
    fresh = ResultStore(store.folder, clock=clock).browser_secret(None)
    assert fresh != secret and len(fresh) >= 43
