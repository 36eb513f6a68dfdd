"""Gradio components adjusted for a public app."""

from __future__ import annotations

import re

import gradio as gr
from PIL import Image

from webapp.errors import user_error
from webapp.texts import TITLES, error_text

SLOT_ID = re.compile(r"image([123])")  # the elem_id of 图1-图3


def checked_image(number: int, **options) -> gr.Image:
    """A `gr.Image` for 图`number` whose unreadable upload gives a clear bilingual error.

    Gradio opens every uploaded image with Pillow before the handler runs; an empty, corrupt or
    disguised file, or a decompression bomb, fails there and the visitor would see only "Error".
    The check is `slot_preprocess`, put on `gr.Image` itself by `webapp.patches`: Gradio rebuilds a
    session's own copy of a component from its constructor arguments whenever an event updates it
    (an example does), so a wrapper on this instance would be lost; the slot is known by its elem_id.
    """
    options.setdefault("elem_id", f"image{number}")
    assert slot_number(options["elem_id"]) == number, options["elem_id"]
    return gr.Image(**options)


def slot_number(elem_id: str | None) -> int | None:
    """Which of 图1-图3 a component with this elem_id is, or None."""
    match = SLOT_ID.fullmatch(elem_id or "")
    return int(match.group(1)) if match else None


def slot_preprocess(preprocess):
    """`gr.Image.preprocess` that, for 图1-图3, turns a failure to read the image into one bilingual
    `gr.Error` (a toast and one log line, no traceback); other images are left as Gradio made them."""

    def checked(self: gr.Image, payload):
        number = slot_number(getattr(self, "elem_id", None))
        if number is None:
            return preprocess(self, payload)
        try:
            return preprocess(self, payload)
        except gr.Error:
            raise
        except Image.DecompressionBombError:
            raise user_error(error_text("image_pixels", n=number), title=TITLES["image"]) from None
        except Exception:
            raise user_error(error_text("image_unreadable", n=number), title=TITLES["image"]) from None

    checked.juhe_checked = True
    return checked
