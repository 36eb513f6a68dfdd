"""What changed: where a result differs from 图1, how much of it, and whether it moved as a whole.

Pure image logic on PIL images (`find_changes`, `render_overlay`), tested in milliseconds, and one
file-level entry (`what_changed`) for the page, which runs it in a worker thread.

How: 图1 is fitted into the result's frame exactly as the before/after slider fits it (letterboxed
on grey, never stretched); both are brought to at most `ANALYSIS_SIDE` px and blurred by a
`BLUR_RADIUS` box; a pixel has changed when one channel differs by more than `THRESHOLD` (of 255).

Why those numbers (tests/benchmarks/changes.py measures them): re-encoding the repository's example
JPEGs and a 12-MP photo with their own tables, as a region edit saves a JPEG 图1, leaves a
per-pixel maximum of 6–29 at full size (the README's 16–23 for 12-MP photos). Compared with the
store's copy of 图1 (768 px, quality 85: what the page has for every result, history included), at
the analysis scale and after the blur, an edit that changed nothing differs by at most
`NOISE_MEASURED`; `THRESHOLD` sits well above that, and still below what a visible edit does.

When most of the frame differs (`MOVED_SHARE`), or the whole picture lines up better after a shift
(phase correlation), the provider moved, zoomed or redrew everything: the verdict is then "moved"
and no precise diff is claimed.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops, ImageFilter, ImageOps

# long side the two pictures are compared at (and the overlay is shown at): the store keeps 图1 at
# this size (webapp.store.BEFORE_SIDE), so a result opened again from the history compares alike
ANALYSIS_SIDE = 768
BLUR_RADIUS = 2  # a 5x5 box at the analysis scale: JPEG's 8x8 block noise averages out
THRESHOLD = 32  # of 255, per channel after the blur: above JPEG noise, below any visible edit
NOISE_MEASURED = 18  # the largest blurred difference JPEG re-encoding left (tests/benchmarks/changes.py)
MOVED_SHARE = 0.6  # more of the frame changed than this: the picture moved, no precise diff
SHIFT_GAIN = 0.5  # a shift that halves the changed share means the whole picture moved
BACKGROUND = (128, 128, 128)  # the letterbox grey of `webapp.pictures.fit_before`
DIM = 0.35  # brightness of the unchanged part in the overlay
HIGHLIGHT = (255, 0, 128)  # the changed part's tint
OUTLINE = (0, 220, 255)  # the painted region's outline: cyan, unlike the tint and the simulator's yellow
REGION_REACH = 16  # result px around a painted region a region edit may blend into (juhe._region)


@dataclass(frozen=True)
class Changes:
    """Where a result differs from 图1, at the analysis scale."""

    mask: Image.Image  # "L", 255 where changed
    share: float  # changed part of the whole frame, 0..1
    moved: bool  # most of the picture moved or was redrawn: no precise diff
    shift: tuple[int, int] | None = None  # (dx, dy) in analysis px, when a global shift was found
    outside: float | None = None  # for a region edit: changed part of the frame outside the region


def analysis_size(size: tuple[int, int], side: int = ANALYSIS_SIDE) -> tuple[int, int]:
    """`size` scaled down (never up) so its long side is at most `side`."""
    width, height = size
    scale = min(1.0, side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def fit_into(before: Image.Image, size: tuple[int, int]) -> Image.Image:
    """图1 fitted (letterboxed on grey, never stretched) into a frame of `size`, as the slider does."""
    picture = ImageOps.contain(before.convert("RGB"), size, Image.Resampling.BILINEAR)
    canvas = Image.new("RGB", size, BACKGROUND)
    canvas.paste(picture, ((size[0] - picture.width) // 2, (size[1] - picture.height) // 2))
    return canvas


def _difference(before: Image.Image, after: Image.Image) -> np.ndarray:
    """Per pixel, the largest channel difference after the blur (uint8)."""
    blur = ImageFilter.BoxBlur(BLUR_RADIUS)
    diff = ImageChops.difference(before.filter(blur), after.filter(blur))
    return np.asarray(diff).max(axis=2)


def _shift(before: np.ndarray, after: np.ndarray) -> tuple[int, int]:
    """The translation (dx, dy) that best lines `before` up with `after` (phase correlation)."""
    a = before - before.mean()
    b = after - after.mean()
    cross = np.fft.fft2(b) * np.conj(np.fft.fft2(a))
    cross /= np.abs(cross) + 1e-9
    peak = np.unravel_index(np.argmax(np.abs(np.fft.ifft2(cross))), a.shape)
    dy, dx = (int(p) if p <= n // 2 else int(p) - n for p, n in zip(peak, a.shape, strict=True))
    return dx, dy


def _shifted_share(before: Image.Image, after: Image.Image, dx: int, dy: int) -> float:
    """The changed share of the overlap once `before` is moved by (dx, dy)."""
    width, height = after.size
    box = (max(0, dx), max(0, dy), width + min(0, dx), height + min(0, dy))
    if box[2] - box[0] < 8 or box[3] - box[1] < 8:
        return 1.0
    moved = before.crop((box[0] - dx, box[1] - dy, box[2] - dx, box[3] - dy))
    return float((_difference(moved, after.crop(box)) > THRESHOLD).mean())


def _grown(region: Image.Image, size: tuple[int, int], reach: int) -> np.ndarray:
    """The region (white: painted) at `size`, grown by `reach` px: where a region edit may change."""
    small = region.convert("L").resize(size, Image.Resampling.BOX).point(lambda v: 255 if v > 0 else 0)
    if reach > 0:
        small = small.filter(ImageFilter.MaxFilter(2 * reach + 1))
    return np.asarray(small) > 0


def find_changes(before: Image.Image, after: Image.Image, region: Image.Image | None = None) -> Changes:
    """Compare 图1 (`before`, any size: it is fitted into the result's frame here) with the result.

    `region` is a region edit's mask (white: painted, any size: it covers the result's frame); the
    changed share outside it (beyond the blend band and the blur) is then reported too.
    """
    size = analysis_size(after.size)
    scale = size[0] / after.size[0]
    after_small = after.convert("RGB").resize(size, Image.Resampling.BOX)
    before_small = fit_into(before, size)
    changed = _difference(before_small, after_small) > THRESHOLD
    share = float(changed.mean())
    outside = None
    if region is not None:
        reach = int(np.ceil(REGION_REACH * scale)) + BLUR_RADIUS + 1
        away = ~_grown(region, size, reach)
        outside = float(changed[away].sum() / changed.size) if away.any() else 0.0
    moved, shift = share > MOVED_SHARE, None
    if not moved and region is None and share > 0.02:
        # edges everywhere differ a little when the picture slid: try lining it up once
        gray = [np.asarray(image.convert("L"), dtype=np.float32) for image in (before_small, after_small)]
        dx, dy = _shift(*gray)
        if (dx, dy) != (0, 0) and _shifted_share(before_small, after_small, dx, dy) < share * SHIFT_GAIN:
            moved, shift = True, (dx, dy)
    mask = Image.fromarray(changed.astype(np.uint8) * 255, "L")
    return Changes(mask=mask, share=share, moved=moved, shift=shift, outside=outside)


def region_outline(region: Image.Image, size: tuple[int, int], width: int = 2) -> Image.Image:
    """The border of a painted region at `size`: "L", 255 on a band `width` px wide around it."""
    inside = region.convert("L").resize(size, Image.Resampling.BOX).point(lambda v: 255 if v > 127 else 0)
    grown = inside.filter(ImageFilter.MaxFilter(2 * width + 1))
    return ImageChops.subtract(grown, inside)


def render_overlay(after: Image.Image, changes: Changes, region: Image.Image | None = None) -> Image.Image:
    """The result at the analysis scale: dimmed where unchanged, tinted where changed, and a painted
    region outlined. For a picture that moved as a whole nothing is tinted: a diff would mislead."""
    size = changes.mask.size
    base = after.convert("RGB").resize(size, Image.Resampling.BOX)
    dimmed = Image.eval(base, lambda v: int(v * DIM))
    if changes.moved:
        picture = dimmed
    else:
        tinted = Image.blend(base, Image.new("RGB", size, HIGHLIGHT), 0.35)
        picture = Image.composite(tinted, dimmed, changes.mask)
    if region is not None:
        picture.paste(OUTLINE, (0, 0, *size), region_outline(region, size, max(2, max(size) // 300)))
    return picture


def box_mask(box: tuple[int, int, int, int], frame: tuple[int, int], size: tuple[int, int]) -> Image.Image:
    """A painted box given in a frame's pixels, as a mask ("L", white inside) of `size`."""
    sx, sy = size[0] / frame[0], size[1] / frame[1]
    mask = Image.new("L", size, 0)
    left, top, right, bottom = box
    mask.paste(255, (int(left * sx), int(top * sy), max(int(left * sx) + 1, round(right * sx)),
                     max(int(top * sy) + 1, round(bottom * sy))))  # fmt: skip
    return mask


def painted_box(sidecar: str | Path | None, limit: int = 1024 * 1024) -> tuple[int, int, int, int] | None:
    """A region edit's painted box (in the result's pixels: a region result has 图1's size) from the
    result's JSON sidecar; None for a whole-image edit or an unreadable sidecar."""
    try:
        path = Path(sidecar) if sidecar else None
        if path is None or path.stat().st_size > limit:
            return None
        box = (json.loads(path.read_text(encoding="utf-8")).get("region") or {}).get("painted_box")
    except (OSError, ValueError, AttributeError):
        return None
    if isinstance(box, list) and len(box) == 4 and all(type(v) is int for v in box) and box[0] < box[2]:
        return tuple(box) if box[1] < box[3] else None
    return None


def what_changed(
    before: str | Path,
    after: str | Path,
    folder: str | Path,
    region: tuple[int, int, int, int] | None = None,
) -> tuple[str, Changes]:
    """Compare the files, save the overlay as a new PNG in `folder`; return its path and the
    changes. `region` is a region edit's painted box in the result's pixels. File and CPU work: run
    it in a worker thread."""
    with Image.open(after) as opened:
        frame = opened.size
        target = analysis_size(frame)
        opened.draft("RGB", target)  # a 12-MP JPEG decodes at 1/2..1/8 scale: the bulk of the saving
        result = ImageOps.exif_transpose(opened).convert("RGB")
    if (result.width > result.height) != (frame[0] > frame[1]):
        frame = frame[::-1]  # the box is in upright pixels; the file may be stored turned
    with Image.open(before) as opened:
        opened.draft("RGB", target)
        picture = ImageOps.exif_transpose(opened).convert("RGB")
    mask = box_mask(region, frame, target) if region else None
    changes = find_changes(picture, result, mask)
    out = Path(folder) / "juhe-changes" / secrets.token_hex(16) / "changes.png"
    out.parent.mkdir(parents=True)
    render_overlay(result, changes, mask).save(out, compress_level=1)
    return str(out), changes
