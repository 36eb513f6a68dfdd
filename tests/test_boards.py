"""Boards (issue 19): several results behind one link. The store's boards, the board page and its
zip, through the share middleware in front of a trivial app; no server, no browser."""

from __future__ import annotations

import io
import json

from saving import save_result

from juhe import EditResult
from webapp.store import DAY_S, MAX_BOARD, ResultStore, Unavailable

ORDER = "ORDER-BOARD-777"


def png(colour: str, width: int = 320, height: int = 240) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "PNG")
    return out.getvalue()


def add(store: ResultStore, prompt: str, colour: str = "red", before: bool = True):
    """A result saved as the client saves it (its image carries the AIGC label), registered."""
    result = EditResult(order_id=ORDER, image_urls=["https://x/1"], prompt=prompt)
    paths = save_result(result, store.folder, [("https://x/1", png(colour), "PNG")])
    return store.add(
        paths,
        prompt=prompt,
        size="1024*1024",
        model="model-x",
        completed_at="2025-06-01T08:30:00+00:00",
        order_id=ORDER,
        before=png("blue", 200, 150) if before else None,
        thumbnail=False,
    )


# --- the store -----------------------------------------------------------------------------------


def test_a_board_holds_existing_results_in_order_under_its_own_token(store):
    one, two = add(store, "one"), add(store, "two")
    token = store.share_board([two.id, "not-an-id", one.id, two.id, "A" * 22])
    assert token is not None and len(token) == 32
    board = store.board(token)
    assert [item.id for item in board.items] == [two.id, one.id]  # repeats and strangers dropped
    assert all(item.thumbnail for item in board.items)  # made for the link preview
    assert store.resolve(token) is Unavailable.UNKNOWN  # not a single result's share link
    assert store.get(one.id).share is None  # and it makes none
    assert store.share_board(["A" * 22, 5, None]) is None
    assert store.share_board([]) is None
    assert store.share_board([one.id]) != store.share_board([one.id])  # each board its own link


def test_a_board_keeps_at_most_max_board_results(store):
    ids = [add(store, f"n{k}").id for k in range(MAX_BOARD + 2)]
    board = store.board(store.share_board(ids))
    assert [item.id for item in board.items] == ids[:MAX_BOARD]


def test_revoked_board_says_revoked_and_forgets_its_results(store):
    one = add(store, "one")
    token = store.share_board([one.id])
    assert store.revoke_board(token) is True
    assert store.board(token) is Unavailable.REVOKED
    assert store.revoke_board(token) is False
    saved = json.loads((store.folder / ".juhe-store" / "boards" / f"{token}.json").read_text())
    assert saved["ids"] == []
    assert store.board("x" * 32) is Unavailable.UNKNOWN
    assert store.board("../../etc/passwd") is Unavailable.UNKNOWN


def test_deleted_items_drop_out_and_the_last_one_takes_the_board(store):
    one, two = add(store, "one"), add(store, "two")
    token = store.share_board([one.id, two.id])
    store.delete(one.id)
    assert [item.id for item in store.board(token).items] == [two.id]
    store.delete(two.id)
    assert store.board(token) is Unavailable.EXPIRED
    assert not (store.folder / ".juhe-store" / "boards" / f"{token}.json").exists()


def test_a_board_expires_with_its_last_item(store, clock):
    first = add(store, "first")
    clock.now += 10 * DAY_S
    second = add(store, "second")
    token = store.share_board([first.id, second.id])
    clock.now += 25 * DAY_S  # the first is past 30 days, not yet swept
    assert [item.id for item in store.board(token).items] == [second.id]
    store.sweep()
    assert [item.id for item in store.board(token).items] == [second.id]
    clock.now += 10 * DAY_S
    assert store.board(token) is Unavailable.EXPIRED
    store.sweep()
    assert store.board(token) is Unavailable.EXPIRED  # remembered as expired once its file is gone


def test_boards_survive_a_restart_and_foreign_files_are_skipped(store, clock):
    one, two = add(store, "one"), add(store, "two")
    live, revoked = store.share_board([one.id, two.id]), store.share_board([two.id])
    store.revoke_board(revoked)
    folder = store.folder / ".juhe-store" / "boards"
    (folder / ("B" * 32 + ".json")).write_text('{"v": 1, "token": "other", "ids": [], "created": 1}')
    (folder / "notes.txt").write_text("not a board")
    # a record is lost while the app is down: its result is gone, and so it leaves the board
    (store.folder / ".juhe-store" / "records" / f"{one.id}.json").unlink()
    for path in one.images:
        path.unlink()
    again = ResultStore(store.folder, keep_days=30, clock=clock)
    assert [item.id for item in again.board(live).items] == [two.id]
    assert again.board(revoked) is Unavailable.REVOKED
    assert again.board("B" * 32) is Unavailable.UNKNOWN


def test_board_files_count_in_the_folder_size(store):
    one = add(store, "one")
    store.share_board([one.id])  # makes the thumbnail first
    before = store.total_bytes
    token = store.share_board([one.id])
    board_file = store.folder / ".juhe-store" / "boards" / f"{token}.json"
    assert store.total_bytes == before + board_file.stat().st_size
    store.delete(one.id)
    assert store.total_bytes == 0 + sum(
        p.stat().st_size for p in (store.folder / ".juhe-store").glob("*.json") if p.is_file()
    )


def test_results_on_a_live_board_go_last_when_space_runs_out(tmp_path, clock):
    store = ResultStore(tmp_path / "outputs", keep_days=0, max_bytes=0, clock=clock)
    boarded = add(store, "on a board")
    clock.now += 1
    loose = add(store, "on no board")
    store.share_board([boarded.id])
    store.max_bytes = store.total_bytes - 1  # one result must go
    assert store.sweep() == [loose.id]
