"""Reordering 图1-图3 and the history's chains (issue 18), as pure functions: renumbering the
instruction's references after swaps, the parent the next edit is made from, the chain captions."""

from __future__ import annotations

import pytest

from webapp.chains import IDENTITY, chain_captions, chain_parent, compose_swap, moved_references, renumber


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("把图1中的人放进图2的场景", "把图2中的人放进图1的场景"),
        (
            "Put the cat from image 1 beside the cup in Image #2",
            "Put the cat from image 2 beside the cup in Image #1",
        ),
        ("图一 和 图 2, picture 3 stays", "图二 和 图 1, picture 3 stays"),
        ("图12 is not 图1; imagery 1 is not an image", "图12 is not 图2; imagery 1 is not an image"),
        ("no references at all", "no references at all"),
    ],
)
def test_renumber_after_swapping_1_and_2(text, expected):
    assert renumber(text, compose_swap(None, 1, 2)) == expected


def test_swaps_compose_and_a_swap_back_is_no_change():
    order = compose_swap(compose_swap(IDENTITY, 1, 2), 2, 3)  # 图1 -> slot 3 (via 2), 图2 -> slot 1
    assert order == (3, 1, 2)
    assert renumber("图1 图2 图3", order) == "图3 图1 图2"
    assert compose_swap(compose_swap(IDENTITY, 2, 3), 2, 3) == IDENTITY
    assert compose_swap([9, 9, 9], 1, 2) == (2, 1, 3)  # a malformed order starts afresh


def test_only_references_to_moved_images_ask_for_a_suggestion():
    order = compose_swap(IDENTITY, 2, 3)
    assert moved_references("make 图1 brighter", order) == []
    assert moved_references("put 图3 into 图1, then 图3 again, image 2", order) == [3, 2]
    assert moved_references("图1 图2", IDENTITY) == []


def test_the_parent_holds_only_while_its_image_is_in_image1(tmp_path):
    shown = str(tmp_path / "juhe-results" / "a" / "r.png")
    chain = {"id": "A" * 22, "path": shown}
    assert chain_parent(chain, shown, "") == "A" * 22
    assert chain_parent(chain, str(tmp_path / "upload.png"), "") is None  # another 图1 (example, swap)
    assert chain_parent(chain, shown, "https://example.org/x.png") is None  # a link wins over 图1
    assert chain_parent(None, shown, None) is None
    assert chain_parent({"id": 5, "path": shown}, shown, None) is None


def entry(rid: str, parent: str | None = None, n: int = 0) -> dict:
    return {"id": rid, "parent": parent, "n": n, "path": f"/{rid}/{n}.png", "prompt": rid}


def test_chain_captions_number_each_step_newest_first():
    history = [entry("c", "b"), entry("x"), entry("b", "a"), entry("a"), entry("y", "gone")]
    assert chain_captions(history) == ["⛓ 3/3 · ", "", "⛓ 2/3 · ", "⛓ 1/3 · ", ""]


def test_chain_captions_on_branches_loops_and_several_images():
    history = [
        entry("b2", "a"),
        entry("b1", "a"),
        entry("b1", "a", n=1),
        entry("a"),
        entry("p", "q"),
        entry("q", "p"),
    ]
    captions = chain_captions(history)
    assert captions[:4] == ["⛓ 2/2 · ", "⛓ 2/2 · ", "⛓ 2/2 · ", "⛓ 1/2 · "]
    assert all(c.startswith("⛓") for c in captions[4:])  # a loop (hand-made) still ends
