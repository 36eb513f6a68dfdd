"""Boards (issue 19): several results behind one link. The store's boards, the board page and its
zip, through the share middleware in front of a trivial app; no server, no browser."""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import re
import zipfile

import gradio as gr
import pytest
from helpers.saving import save_result
from starlette.responses import PlainTextResponse
from starlette.testclient import TestClient

from juhe import EditResult, read_provenance
from webapp.board_panel import board_choices, picked_ids
from webapp.boards import BoardPages
from webapp.gate import MAX_PICKS, Gate, Issued, RefusedError
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


# --- the page ------------------------------------------------------------------------------------

HOSTILE = '<img src=x onerror=alert(1)> "quoted" </script><script>alert(2)</script> & &amp;'


async def trivial_app(scope, receive, send):
    await PlainTextResponse(f"the app: {scope['path']}")(scope, receive, send)


def client(store: ResultStore) -> TestClient:
    return TestClient(BoardPages(trivial_app, store=store), client=("203.0.113.5", 40000))


def three(store: ResultStore) -> tuple[list, str]:
    records = [
        add(store, "把猫换成狗"),
        add(store, HOSTILE, "green", before=False),
        add(store, "third", "blue"),
    ]
    return records, store.share_board([r.id for r in records])


def test_board_page_shows_every_item_with_its_instruction_and_size(store):
    records, token = three(store)
    assert not records[0].before.exists()  # neither the edit nor the board made it
    response = client(store).get(f"/share/board/{token}?lang=en")
    assert response.status_code == 200 and records[0].before.is_file()  # made for the page
    body = response.text
    items = re.findall(r'<li class="item" id="item-(\d)">', body)
    assert items == ["1", "2", "3"]
    assert "把猫换成狗" in body and "third" in body
    assert "320 × 240 px (requested 1024 × 1024)" in body
    assert f'src="/share/board/{token}/item/1/before.jpg"' in body
    assert f'src="/share/board/{token}/item/2/result"' in body
    assert f"/share/board/{token}/item/2/before.jpg" not in body  # made from a link: the result alone
    assert f'href="/share/board/{token}/download.zip"' in body
    assert 'href="#item-3" rel="prev"' in body  # from the first, back goes round to the last
    assert client(store).get(f"/share/board/{token}/").status_code == 200


def test_board_page_escapes_and_reveals_no_private_data(store, tmp_path):
    records, token = three(store)
    body = client(store).get(f"/share/board/{token}").text
    assert "<script>alert(2)" not in body and "<img src=x" not in body
    assert html.escape(HOSTILE) in body
    secrets = [str(tmp_path), ORDER, "model-x", "2025-06-01", ".juhe-store", "outputs"]
    secrets += [r.id for r in records] + [p.name for r in records for p in r.images]
    for secret in secrets:
        assert secret not in body


def test_board_page_runs_only_its_own_script_and_style_by_hash(store):
    _records, token = three(store)
    response = client(store).get(f"/share/board/{token}")
    csp = response.headers["content-security-policy"]
    scripts = re.findall(r"<script>(.*?)</script>", response.text, re.S)
    styles = re.findall(r"<style>(.*?)</style>", response.text, re.S)
    assert len(scripts) == 1 and len(styles) == 1
    for kind, text in (("script-src", scripts[0]), ("style-src", styles[0])):
        digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
        assert f"{kind} 'sha256-{digest}'" in csp
    assert "unsafe-inline" not in csp and "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "ArrowRight" in scripts[0] and "ArrowLeft" in scripts[0] and "requestFullscreen" in scripts[0]
    for name in ("referrer-policy", "x-robots-tag", "cache-control"):
        assert name in response.headers
    assert response.headers["cache-control"] == "no-store"


def test_board_preview_is_the_first_items(store):
    records, token = three(store)
    body = (
        TestClient(
            BoardPages(trivial_app, store=store, public_url="https://edit.example.org"),
            client=("203.0.113.5", 40000),
        )
        .get(f"/share/board/{token}?lang=zh")
        .text
    )
    assert (
        f'<meta property="og:image" content="https://edit.example.org/share/board/{token}/thumb.jpg">' in body
    )
    assert '<meta property="og:description" content="把猫换成狗">' in body
    assert '<meta property="og:title" content="AI 图像编辑 · 3 张结果">' in body
    thumb = client(store).get(f"/share/board/{token}/thumb.jpg")
    assert thumb.content == store.get(records[0].id).thumbnail.read_bytes()


def test_board_files_are_served_by_place_and_nothing_else(store):
    records, token = three(store)
    assert not records[0].before.exists()  # made on the first request for it
    web = client(store)
    assert web.get(f"/share/board/{token}/item/3/result").content == records[2].images[0].read_bytes()
    assert web.get(f"/share/board/{token}/item/1/before.jpg").content == records[0].before.read_bytes()
    for path in ("item/4/result", "item/2/before.jpg", "item/0/result", "item/1/../../x", "result/1"):
        assert web.get(f"/share/board/{token}/{path}").status_code == 404
    assert web.get(f"/share/{token}").status_code == 404  # a board's token opens no single page
    assert web.get("/share/board/" + "x" * 32).status_code == 404
    assert web.get("/other").text == "the app: /other"


def test_revoked_and_expired_boards_say_so(store):
    records, token = three(store)
    store.revoke_board(token)
    web = client(store)
    assert web.get(f"/share/board/{token}").status_code == 410
    assert web.get(f"/share/board/{token}/item/1/result").status_code == 410
    assert web.get(f"/share/board/{token}/download.zip").status_code == 410
    other = store.share_board([records[0].id])
    store.delete(records[0].id)
    response = web.get(f"/share/board/{other}?lang=en")
    assert response.status_code == 410 and "expired" in response.text


def test_the_download_is_a_zip_of_the_images_as_saved_with_their_label(store):
    records, token = three(store)
    response = client(store).get(f"/share/board/{token}/download.zip")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["content-disposition"] == 'attachment; filename="juhe-board.zip"'
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert archive.namelist() == ["01.png", "02.png", "03.png"]  # no sidecar, no file names
        for info, record in zip(archive.infolist(), records, strict=True):
            data = archive.read(info)
            assert data == record.images[0].read_bytes()  # as saved
            assert info.date_time == (1980, 1, 1, 0, 0, 0)  # no time of the result
            assert read_provenance(data)["AIGC"]["Label"] == "1"  # the AIGC label travels with it
    store.delete(records[1].id)
    with zipfile.ZipFile(
        io.BytesIO(client(store).get(f"/share/board/{token}/download.zip").content)
    ) as archive:
        assert archive.namelist() == ["01.png", "02.png"]


# --- the app's picker ----------------------------------------------------------------------------


def test_the_picker_lists_each_result_of_the_history_once_and_maps_ticks_to_its_ids():
    history = [
        {"id": "a" * 22, "prompt": "first   line\nsecond", "n": 0},
        {"id": "a" * 22, "prompt": "first", "n": 1},  # the same result's second image
        {"id": None, "prompt": "not registered"},
        {"id": "b" * 22, "prompt": "x" * 100},
    ]
    choices, ids = board_choices(history)
    assert ids == ["a" * 22, "b" * 22]
    assert choices == [("1. first line second", "r0"), ("2. " + "x" * 80 + "…", "r1")]
    assert picked_ids([1, 0], ids) == ids  # in the picker's order
    assert picked_ids([2, -1, True, "0", None, 1.0], ids) == []  # nothing but an index of a choice
    assert board_choices(None) == ([], [])


def test_the_gate_admits_a_checkbox_groups_ticks_only():
    gate = Gate(Issued(), lambda request: None)
    group = gr.CheckboxGroup([], type="index")
    assert gate._value(group, [0, 2], None, None) == [0, 2]
    for bad in (
        "0",
        {"path": "/etc/passwd"},
        [True],
        [[0]],
        [{"path": "/x"}],
        [1e99],
        list(range(MAX_PICKS + 1)),
    ):
        with pytest.raises(RefusedError):
            gate._value(group, bad, None, None)
