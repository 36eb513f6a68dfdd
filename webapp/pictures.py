"""Small picture work for the page: the "before" of the before/after slider, sizes and types."""

from __future__ import annotations

import secrets
from pathlib import Path

from PIL import Image, ImageOps

from juhe import heif_to_jpeg, sniff_heif

BEFORE_BACKGROUND = (128, 128, 128)  # neutral grey bars where 图1's shape differs from the result's
HEIF_PREVIEW_SIDE = 4096  # an iPhone photo shown (and then edited) at up to this long side
# The region editor paints over a copy of 图1 at most this long (its mask is scaled to 图1 for the
# edit): the browser then sends back canvases of at most 1280×1280, whatever 图1's size.
EDITOR_SIDE = 1280


def pixel_size(path: str | Path) -> tuple[int, int]:
    """Width and height, read from the header."""
    with Image.open(path) as image:
        return image.size


def mime_of(path: str | Path) -> str | None:
    """The MIME type of an image file, from its bytes (None when it is not an image)."""
    try:
        with Image.open(path) as image:
            return Image.MIME.get(image.format or "")
    except (OSError, ValueError):
        return None


def fit_before(before: str | Path, after: str | Path, folder: str | Path) -> str:
    """图1 fitted (letterboxed, never stretched) into the result's frame, so both layers of the slider
    cover the same box; saved as a new JPEG in `folder`. File work: run it in a worker thread."""
    size = pixel_size(after)
    with Image.open(before) as opened:
        opened.draft("RGB", size)  # a big JPEG decodes at a reduced scale
        picture = ImageOps.exif_transpose(opened).convert("RGB")
    picture = ImageOps.contain(picture, size, Image.Resampling.BICUBIC)
    canvas = Image.new("RGB", size, BEFORE_BACKGROUND)
    canvas.paste(picture, ((size[0] - picture.width) // 2, (size[1] - picture.height) // 2))
    target = Path(folder) / "juhe-before" / secrets.token_hex(16) / "before.jpg"
    target.parent.mkdir(parents=True)
    canvas.save(target, "JPEG", quality=88)
    return str(target)


def heif_preview(path: str | Path, folder: str | Path) -> str | None:
    """For an uploaded HEIC/HEIF photo: an upright JPEG of it (no metadata) saved as a new file in
    `folder`, which the page shows and edits; None for any other image. File work: run it in a thread."""
    with open(path, "rb") as handle:
        if not sniff_heif(handle.read(64)):
            return None
    data = Path(path).read_bytes()
    target = Path(folder) / "juhe-heic" / secrets.token_hex(16) / (Path(path).stem + ".jpg")
    target.parent.mkdir(parents=True)
    target.write_bytes(heif_to_jpeg(data, max_side=HEIF_PREVIEW_SIDE))
    return str(target)


def accept_heif_uploads() -> None:
    """Let Pillow, and so Gradio's check of an upload, open HEIC/HEIF photos (process-wide)."""
    from pillow_heif import register_heif_opener  # imported only when the app is built

    register_heif_opener()


def editor_preview(image: str | Path, folder: str | Path, mask: str | Path | None = None) -> str:
    """图1 upright, at most `EDITOR_SIDE` long, as the region editor's background; with a ready-made
    `mask` (white: change), its area tinted (the editor paints strokes over it; the edit itself uses
    the mask and the original 图1). Saved as a new PNG in `folder`. File work: run it in a thread."""
    with Image.open(image) as opened:
        opened.draft("RGB", (EDITOR_SIDE, EDITOR_SIDE))  # a big JPEG decodes at a reduced scale
        base = ImageOps.exif_transpose(opened).convert("RGB")
    base.thumbnail((EDITOR_SIDE, EDITOR_SIDE), Image.Resampling.BICUBIC)
    if mask is not None:
        with Image.open(mask) as painted:
            alpha = painted.convert("L").resize(base.size).point(lambda v: 140 if v > 127 else 0)
        base.paste(Image.new("RGB", base.size, (255, 0, 128)), mask=alpha)
    target = Path(folder) / "juhe-editor" / secrets.token_hex(16) / "preview.png"
    target.parent.mkdir(parents=True)
    base.save(target)
    return str(target)


def region_files(image1: str | Path, mask: Image.Image, folder: str | Path) -> list[str]:
    """The files a region edit's code snippets name, saved as new files in `folder`:
    `image1-crop.png` (the crop of upright 图1 sent to the provider as image1, padded as planned) and
    `mask.png` (white where painted, the size of upright 图1). Empty when the mask covers all of 图1
    (then 图1 itself was sent). File work: run it in a worker thread."""
    from juhe._region import crop_image, prepare_region  # the client's own plan, not a copy of it

    region = prepare_region(str(image1), mask, lenient=True)
    if region.plan is None:
        return []
    saved = []
    for name, picture in (("image1-crop.png", crop_image(region)), ("mask.png", region.mask)):
        target = Path(folder) / "juhe-snippet" / secrets.token_hex(16) / name
        target.parent.mkdir(parents=True)
        picture.save(target)
        saved.append(str(target))
    return saved
