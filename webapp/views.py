"""The words of the what-changed view and the download panel (issue 18), from `webapp.texts`."""

from __future__ import annotations

import gradio as gr

from webapp.changes import ANALYSIS_SIDE, NOISE_MEASURED, THRESHOLD, Changes
from webapp.errors import user_error
from webapp.texts import TITLES, share_words, view_error_text, view_say


def describe_changes(changes: Changes, region: bool, chinese: bool) -> str:
    """The sentence under the what-changed view: the share, or that the picture moved; for a region
    edit whether anything changed outside it; and the rule that decided (so the number is honest)."""
    if changes.moved:
        text = view_say("changes_moved", chinese, share=share_words(changes.share))
        if changes.shift:
            text += view_say("changes_shift", chinese, dx=abs(changes.shift[0]), dy=abs(changes.shift[1]))
    else:
        text = view_say("changes_share", chinese, share=share_words(changes.share))
    if region and changes.outside is not None:
        if changes.outside:
            text += view_say("changes_outside", chinese, outside=share_words(changes.outside))
        else:
            text += view_say("changes_clean", chinese)
    rule = {"side": ANALYSIS_SIDE, "threshold": THRESHOLD, "noise": NOISE_MEASURED}
    return text + view_say("changes_rule", chinese, **rule)


def view_error(key: str, **values: object) -> gr.Error:
    """The toast of a view that cannot be made, in both languages."""
    return user_error(view_error_text(key, **values), title=TITLES["error"])
