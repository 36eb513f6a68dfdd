"""Gradio components adjusted for a public app."""

from __future__ import annotations

import functools

import gradio as gr
from PIL import Image


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
            raise gr.Error(
                f"图{number}像素过多, 请缩小后再上传 / 图{number} (Image {number}) has too many pixels; "
                "make it smaller.",
                title="图片 · Image",
            ) from None
        except Exception:
            raise gr.Error(
                f"无法读取图{number}: 文件为空、已损坏或不是图片 / 图{number} (Image {number}) could not be "
                "read: the file is empty, corrupt or not an image (JPEG, PNG, BMP, TIFF, WebP or GIF).",
                title="图片 · Image",
            ) from None

    image.preprocess = checked
    return image
