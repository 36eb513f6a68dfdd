"""Edit chains and reordering 图1-图3 (issue 18), as pure functions on plain values: the page's
handlers (`webapp.handlers`) call them, the tests call them directly.

- A result made by "Continue editing" has a parent: the result whose image was put into 图1. The
  page keeps `{"id", "path"}` of that result while its image stays in 图1 (`chain_parent`), the
  history captions each step of a chain (`chain_captions`).
- Swapping two slots moves their images and links together; the instruction's 图N references are
  renumbered only when the visitor applies the suggestion (`compose_swap`, `renumber`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

SLOTS = 3
IDENTITY = (1, 2, 3)
# 图1 / 图 2 / 图一 and image 1 / picture #2 / img3, not followed by another digit (图12 is no 图1)
REFERENCE = re.compile(
    r"(?P<zh>图\s*)(?P<zn>[123一二三])(?!\d)|(?P<en>\b(?:image|picture|photo|pic|img)\s*#?\s*)(?P<n>[123])(?!\d)",
    re.IGNORECASE,
)
NUMERALS = "一二三"


def chain_parent(chain: dict | None, image1: str | None, link1: str | None) -> str | None:
    """The id of the result the next edit is made from: the one "Continue editing" put into 图1, as
    long as its image is still there (not replaced by an upload, an example or a swap) and no link
    for 图1 (which would win over it) is typed."""
    if not isinstance(chain, dict) or not image1 or (link1 or "").strip():
        return None
    path, rid = chain.get("path"), chain.get("id")
    if not isinstance(path, str) or not isinstance(rid, str):
        return None
    return rid if os.path.realpath(path) == os.path.realpath(image1) else None


def chain_captions(history: Sequence[dict]) -> list[str]:
    """A prefix per history entry: "⛓ 2/3 · " for the 2nd step of a chain of 3 in this history, ""
    for an edit of its own. Only parents that are in this history count: a chain is never followed
    into results this browser does not hold."""
    parents = {e["id"]: e.get("parent") for e in history if e.get("id")}

    def steps(rid: str) -> list[str]:
        """The chain up to `rid`, oldest first (a loop ends it)."""
        path: list[str] = []
        while rid in parents and rid not in path:
            path.append(rid)
            rid = parents[rid]
        return path[::-1]

    paths = {rid: steps(rid) for rid in parents}
    length: dict[str, int] = {}  # the root of a chain -> its longest chain in this history
    for path in paths.values():
        length[path[0]] = max(length.get(path[0], 0), len(path))
    captions = []
    for entry in history:
        path = paths.get(entry.get("id") or "")
        total = length[path[0]] if path else 1
        captions.append(f"⛓ {len(path)}/{total} · " if path and total > 1 else "")
    return captions


def compose_swap(order: Sequence[int] | None, a: int, b: int) -> tuple[int, ...]:
    """Where each original slot's image is after slots `a` and `b` swap, given where they were
    (`order[i - 1]` is the slot now holding what 图i held when the instruction was written)."""
    current = tuple(order) if order and sorted(order) == list(IDENTITY) else IDENTITY
    return tuple(b if slot == a else a if slot == b else slot for slot in current)


def moved_references(text: str, order: Sequence[int]) -> list[int]:
    """The image numbers the instruction names whose image has moved, in order of first mention."""
    named: list[int] = []
    for match in REFERENCE.finditer(text or ""):
        number = _number(match)
        if order[number - 1] != number and number not in named:
            named.append(number)
    return named


def renumber(text: str, order: Sequence[int]) -> str:
    """The instruction with each 图N / image N renumbered to where its image is now; all at once, so
    swapping 图1 and 图2 turns "图1 into 图2" into "图2 into 图1". Every other character is kept."""

    def replace(match: re.Match) -> str:
        new = order[_number(match) - 1]
        if match["zh"] is not None:
            digit = NUMERALS[new - 1] if match["zn"] in NUMERALS else str(new)
            return match["zh"] + digit
        return match["en"] + str(new)

    return REFERENCE.sub(replace, text or "")


def _number(match: re.Match) -> int:
    if match["zh"] is not None:
        zn = match["zn"]
        return NUMERALS.index(zn) + 1 if zn in NUMERALS else int(zn)
    return int(match["n"])
