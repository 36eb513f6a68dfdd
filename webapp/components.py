"""Gradio components adjusted for a public app."""

from __future__ import annotations

import functools

import gradio as gr
from PIL import Image

from webapp.errors import user_error
from webapp.texts import TITLES, error_text


def checked_image(number: int, **options) -> gr.Image:
    """A `gr.Image` for 图`number` whose unreadable upload gives a clear bilingual error.

    Gradio opens every uploaded image with Pillow before the handler runs; an empty, corrupt or
    disguised file, or a decompression bomb, fails there and the visitor would see only "Error".
    The instance's `preprocess` is wrapped rather than subclassed: Gradio writes a `.pyi` stub
    beside any module that defines a component class.
    """
    image = gr.Image(**options)
    preprocess = image.preprocess

    @functools.wraps(preprocess)
    def checked(payload):
        try:
            return preprocess(payload)
        except gr.Error:
            raise
        except Image.DecompressionBombError:
            raise user_error(error_text("image_pixels", n=number), title=TITLES["image"]) from None
        except Exception:
            raise user_error(error_text("image_unreadable", n=number), title=TITLES["image"]) from None

    image.preprocess = checked
    return image
