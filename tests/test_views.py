"""The words of the what-changed view (webapp.views): what the sentence claims, in both languages."""

from __future__ import annotations

from PIL import Image

from webapp.changes import THRESHOLD, Changes
from webapp.texts import share_words
from webapp.views import describe_changes

MASK = Image.new("L", (4, 4))


def test_a_share_is_said_with_the_rule_that_decided():
    text = describe_changes(Changes(MASK, 0.123, False), region=False, chinese=False)
    assert text.startswith("12 % of the image changed")
    assert f"more than {THRESHOLD} of 255" in text and "moved" not in text
    assert "图像中 12 % 有变化" in describe_changes(Changes(MASK, 0.123, False), region=False, chinese=True)


def test_a_moved_picture_is_said_to_have_moved_with_its_shift():
    text = describe_changes(Changes(MASK, 0.8, True, shift=(-12, 7)), region=False, chinese=False)
    assert text.startswith("Most of the image moved (80 % of it differs)")
    assert "12×7 px" in text and "of the image changed" not in text


def test_a_region_edit_says_whether_anything_changed_outside_it():
    clean = describe_changes(Changes(MASK, 0.1, False, outside=0.0), region=True, chinese=False)
    assert "nothing changed outside it" in clean
    dirty = describe_changes(Changes(MASK, 0.1, False, outside=0.03), region=True, chinese=False)
    assert "3 % of the image outside it changed too" in dirty and "nothing changed" not in dirty
    assert "框外没有任何变化" in describe_changes(Changes(MASK, 0.1, False, outside=0.0), True, True)


def test_shares_in_words():
    shares = (0, 0.001, 0.0099, 0.015, 0.126, 0.995, 1)
    assert [share_words(v) for v in shares] == ["0 %", "<1 %", "<1 %", "2 %", "13 %", ">99 %", "100 %"]
