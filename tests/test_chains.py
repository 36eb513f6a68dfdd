"""Edit chains (issue 18): a result made by "Continue editing" remembers its parent in the store, and
its share page can show the steps that led to it. No app, no browser: the store and the share
middleware on plain files."""

from __future__ import annotations

import json
import uuid

from helpers.saving import save_result
from helpers.share import Html as Page
from helpers.share import client, png

from juhe import EditResult
from webapp.store import MAX_CHAIN, STORE_DIR, ResultStore


def result(store: ResultStore, prompt: str, parent: str | None = None, colour: str = "red"):
    """One saved result with its own files (a fresh order id), made from `parent` when given."""
    order = f"ORDER-{uuid.uuid4().hex[:8]}"
    edit = EditResult(order_id=order, image_urls=["https://x/1"], prompt=prompt)
    paths = save_result(edit, store.folder, [("https://x/1", png(colour=colour), "PNG")])
    return store.add(paths, prompt=prompt, order_id=order, before=png(200, 150, "blue"), parent=parent)


def chain_of(store: ResultStore, length: int) -> list:
    """`length` results, each made from the one before, with prompts "step 1", "step 2", ..."""
    records: list = []
    for n in range(1, length + 1):
        records.append(result(store, f"step {n}", records[-1].id if records else None))
    return records


# --- the store ---------------------------------------------------------------------------------


def test_a_result_remembers_its_parent_and_the_chain_is_in_order(store):
    first, second, third = chain_of(store, 3)
    assert (first.parent, second.parent, third.parent) == (None, first.id, second.id)
    assert [r.prompt for r in store.chain(third.id)] == ["step 1", "step 2", "step 3"]
    assert [r.id for r in store.chain(first.id)] == [first.id]
    assert store.chain("not-an-id") == [] and store.chain("A" * 22) == []


def test_a_parent_from_outside_the_store_is_dropped(store, tmp_path):
    other = ResultStore(tmp_path / "elsewhere", keep_days=0, max_bytes=0)
    foreign = result(other, "elsewhere")
    assert result(store, "p", foreign.id).parent is None  # well formed, but not ours
    assert result(store, "p", "../../etc/passwd").parent is None


def test_the_parent_survives_a_restart_and_old_records_still_load(store, clock):
    first, second = chain_of(store, 2)
    record_file = store.folder / STORE_DIR / "records" / f"{first.id}.json"
    data = json.loads(record_file.read_text())
    for name in ("parent", "share_steps"):  # a record written before edit chains existed
        data.pop(name)
    record_file.write_text(json.dumps(data))
    again = ResultStore(store.folder, keep_days=30, max_bytes=0, clock=clock)
    assert again.get(first.id).parent is None
    assert again.get(second.id).parent == first.id
    assert [r.id for r in again.chain(second.id)] == [first.id, second.id]


def test_a_record_with_a_malformed_parent_is_skipped(store, clock, caplog):
    (record,) = chain_of(store, 1)
    record_file = store.folder / STORE_DIR / "records" / f"{record.id}.json"
    data = json.loads(record_file.read_text())
    record_file.write_text(json.dumps({**data, "parent": "../x"}))
    again = ResultStore(store.folder, keep_days=30, max_bytes=0, clock=clock)
    assert again.get(record.id) is None  # skipped as foreign (its files are taken in again, anew)
    assert "wrong form" in caplog.text


def test_deleting_a_middle_step_closes_the_gap(store, clock):
    first, second, third = chain_of(store, 3)
    assert store.delete(second.id)
    assert store.get(third.id).parent == first.id
    assert [r.prompt for r in store.chain(third.id)] == ["step 1", "step 3"]
    again = ResultStore(store.folder, keep_days=30, max_bytes=0, clock=clock)  # written to disk too
    assert again.get(third.id).parent == first.id


def test_a_loop_or_a_long_chain_ends(store):
    records = chain_of(store, MAX_CHAIN + 2)
    steps = store.chain(records[-1].id)
    assert len(steps) == MAX_CHAIN and steps[-1].id == records[-1].id


def test_share_steps_is_the_owners_choice_and_a_revoke_resets_it(store):
    first, second = chain_of(store, 2)
    token = store.share(second.id, steps=True)
    assert store.get(second.id).share_steps
    assert store.share(second.id) == token and store.get(second.id).share_steps  # None: unchanged
    assert store.share(second.id, steps=False) == token and not store.get(second.id).share_steps
    store.share(second.id, steps=True)
    store.revoke(token)
    assert not store.get(second.id).share_steps
    assert store.get(second.id).withdrawn and not store.get(first.id).withdrawn


# --- the share page ----------------------------------------------------------------------------


def test_the_chain_share_page_shows_every_step(store):
    first, second, third = chain_of(store, 3)
    token = store.share(third.id, steps=True)
    assert not first.before.exists() and not second.before.exists()  # made when a page asks
    web = client(store)
    page = Page(web.get(f"/share/{token}").text)
    assert first.before.is_file() and second.before.is_file()
    text = " ".join(page.text)
    assert text.index("step 1") < text.index("step 2")
    assert "Step 1 of 3" in text and "Step 2 of 3" in text and "Step 3 is the result above" in text
    sources = [a["src"] for a in page.find("img")]
    for k in (1, 2):
        assert f"/share/{token}/step/{k}/result" in sources
        assert f"/share/{token}/step/{k}/before.jpg" in sources
        before = web.get(f"/share/{token}/step/{k}/before.jpg")
        assert before.status_code == 200 and before.content[:3] == b"\xff\xd8\xff"
    assert web.get(f"/share/{token}/step/1/result").content == first.images[0].read_bytes()
    assert web.get(f"/share/{token}/step/2/result").content == second.images[0].read_bytes()
    assert web.get(f"/share/{token}/step/3/result").status_code == 404  # the last step is the page
    assert not any(
        r.order_id in web.get(f"/share/{token}").text for r in (first, second, third)
    )  # no order ids, as for the result


def test_without_the_owners_choice_no_step_is_shown_or_served(store):
    _first, second = chain_of(store, 2)
    token = store.share(second.id)
    web = client(store)
    assert "step 1" not in web.get(f"/share/{token}").text
    assert web.get(f"/share/{token}/step/1/result").status_code == 404
    assert web.get(f"/share/{token}/step/1/before.jpg").status_code == 404


def test_a_withdrawn_or_deleted_step_is_left_out(store):
    first, second, third = chain_of(store, 3)
    store.revoke(store.share(first.id))  # its owner withdrew step 1
    token = store.share(third.id, steps=True)
    web = client(store)
    text = web.get(f"/share/{token}").text
    assert "step 1" not in text and "step 2" in text and "Step 1 of 2" in text
    store.delete(second.id)
    text = web.get(f"/share/{token}").text
    assert "step 2" not in text and "steps that led here" not in text
    assert web.get(f"/share/{token}/step/1/result").status_code == 404


def test_the_steps_keep_the_pages_policy_and_escape_their_text(store):
    first = result(store, "<script>alert(1)</script> step 1")
    second = result(store, "step 2", first.id)
    token = store.share(second.id, steps=True)
    response = client(store).get(f"/share/{token}")
    page = Page(response.text)
    assert "<script>alert(1)" not in response.text and "&lt;script&gt;alert(1)" in response.text
    assert len(page.scripts) == 1  # the page's own slider script, allowed by its hash
    assert "script-src 'sha256-" in response.headers["content-security-policy"]
