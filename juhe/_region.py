"""Region edits: only the painted part of 图1 changes (mask -> crop -> edit -> stitch).

    region = prepare_region(image1, mask)      # every check happens here, before anything is sent
    if region.plan is None:                    # the mask covers everything: a plain edit
        warn(FULL_MASK_WARNING)
    crop = crop_image(region)                  # send this as 图1, with size=region.plan.size
    stitched = stitch(region, provider_image)  # 图1's exact size
    data, fmt = encode_result(region, stitched)

How: the painted region's bounding box plus context is cut out of 图1 and grown to the aspect
ratio of a provider size of about one megapixel, the model edits that crop, and its answer (at
whatever size it came) is scaled back to the crop and blended into 图1 through the mask, feathered.

Guarantees: the result has exactly 图1's size (after EXIF orientation), every painted pixel is the
provider's, and every pixel more than UNTOUCHED_DISTANCE (16) px from the painted region is
identical to 图1 as decoded (8-bit, upright). The blend reaches at most 2 * FEATHER = 8 px
(Chebyshev, so at most 11.4 px Euclidean) outside the painted region.

Saved format (`encode_result`):
- A JPEG 图1 gives a JPEG saved with 图1's own quantisation tables and chroma subsampling, in its
  stored orientation (the EXIF orientation tag alone is kept), from the Y/Cb/Cr planes as decoded,
  with no colour conversion. Replacing only the changed JPEG blocks (as `jpegtran -drop` does)
  needs the DCT coefficients, which Pillow does not expose; reaching them in Python means
  Huffman-decoding the scan symbol by symbol up to the region's last block (millions of symbols
  in a 12-MP photo: seconds by estimate, not tried, against about 0.4 s for all the local work),
  and a progressive file needs a whole decoder. So the blocks outside the region are
  re-quantised once, with their own tables. That gives back the same coefficients for most
  blocks but not all (IDCT rounding and clipping, and re-sampled chroma). Measured outside the
  region on generated 12-MP photos at quality 92 (tests/benchmarks/region.py): with 4:2:0
  chroma, mean absolute error 0.08 and 0.28, max 16 and 23, 91% and 74% of pixels bit-identical
  (two scenes; EXIF-rotated the same as upright); with 4:4:4, mean 0.0005, max 3, 99.9%.
  Saving a rotated photo upright instead would shift its 8x8 grid (59% identical in a test).
  What is guaranteed for a JPEG 图1 is its size, quantisation tables, subsampling and block
  grid, not pixel identity.
- Every other 图1 (PNG, WebP, BMP, TIFF, GIF, HEIC, a PIL image), and a JPEG with
  `lossless=True`, gives a lossless PNG: pixel-identical outside the region.
"""

from __future__ import annotations

import functools
import io
import math
from dataclasses import dataclass, field

from PIL import Image, ImageFilter, ImageOps, JpegImagePlugin

from ._exceptions import InvalidRequestError, invalid
from ._formats import UPRIGHT_TURNS, open_image, read_orientation, sniff_heif, upright_size
from ._heic import open_heif
from ._images import ImageInput, read_input
from ._metadata import ORIENTATION_TAG

# The model needs to see around the region to match its light, colour, perspective and style, and
# the blend band must sit well inside what it saw (its own edges are the least reliable part):
# each side gets at least MIN_CONTEXT px, or an eighth of the region's longer side for a large
# region. More context would cost the region resolution, since the provider renders about one
# megapixel however large the crop. A small region gets a crop of at least MIN_CROP_SIDE px (the
# provider's smallest side), so the model sees real surroundings at 1:1 instead of an enlarged
# patch; the crop is then rendered at up to twice its pixels and scaled down.
MIN_CONTEXT = 64
CONTEXT_FRACTION = 1 / 8
MIN_CROP_SIDE = 512
# The blend: the painted region is dilated by FEATHER px, then box-blurred by FEATHER px, so every
# painted pixel takes the provider's value and the fade runs over the 2 * FEATHER px outside it;
# a few pixels hide the seam without reaching the 16-px guarantee (8 * sqrt(2) = 11.3 px).
FEATHER = 4
UNTOUCHED_DISTANCE = 16
# Provider sizes: sides in [512, 2048], multiples of 16, about one megapixel (the model's own).
PROVIDER_MIN_SIDE, PROVIDER_MAX_SIDE, SIZE_STEP = 512, 2048, 16
TARGET_PIXELS = 1024 * 1024
AREA_RANGE = (0.75, 1.35)
# How much a size's distance from one megapixel (in log area) counts against growing the crop:
# 1% more crop weighs as much as a size 20% away from one megapixel.
AREA_WEIGHT = 0.05
MASK_THRESHOLD = 127  # a mask value above this means "change"
# A 12-MP photo: 0.7 s and 17.2 MB, against 2.5 s and 17.3 MB at zlib's default level 6.
PNG_COMPRESS_LEVEL = 1

FULL_MASK_WARNING = (
    "蒙版覆盖了整张图1，已按普通编辑处理 / the mask covers all of 图1, so this ran as a plain edit"
)
_BINARY = [0] * (MASK_THRESHOLD + 1) + [255] * (255 - MASK_THRESHOLD)
_STORED = {**UPRIGHT_TURNS, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}  # the way back


@dataclass(frozen=True)
class RegionPlan:
    """Where a region edit cuts 图1 and what it asks the provider for."""

    box: tuple[int, int, int, int]  # the crop in 图1's upright pixels: left, top, right, bottom
    pad: tuple[int, int, int, int]  # repeated edge pixels around the crop: left, top, right, bottom
    size: str  # "W*H" to ask the provider for; its aspect matches the padded crop within 1%
    feather: int  # px of dilation and of blur; the fade reaches 2 * feather px outside the region
    bbox: tuple[int, int, int, int]  # the painted region's bounding box
    notes: tuple[str, ...] = ()  # how the crop was chosen, for the sidecar
    warnings: tuple[str, ...] = ()  # bilingual, for the person: e.g. the crop had to be padded

    def to_dict(self) -> dict:
        """A JSON-ready copy for the sidecar."""
        return {
            "crop_box": list(self.box),
            "padding": list(self.pad),
            "size": self.size,
            "feather": self.feather,
            "painted_box": list(self.bbox),
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class SourceLayout:
    """How 图1 was stored, so the result can be saved the same way."""

    format: str | None  # of 图1's bytes; None for a PIL image
    orientation: int  # EXIF orientation of those bytes
    icc_profile: bytes | None
    jpeg_tables: dict | None = None  # quantisation tables when the result is saved as JPEG
    jpeg_subsampling: int | None = None


@dataclass(frozen=True)
class Region:
    """图1 decoded upright, the mask and the plan: all a region edit needs after the check."""

    image: Image.Image  # working mode: YCbCr for a JPEG 图1 (saved as JPEG), else RGB or RGBA
    mask: Image.Image  # L, 0 or 255, the image's size
    plan: RegionPlan | None  # None when the mask covers all of 图1: run a plain edit instead
    source: SourceLayout
    warnings: tuple[str, ...] = field(default=())


# --- masks ------------------------------------------------------------------------------------


def _mask_values(image: Image.Image) -> Image.Image:
    """The mask as grey levels (L), upright: alpha where it has transparency, else brightness.

    An alpha channel that is opaque everywhere says nothing, so such a mask (a black-and-white
    drawing saved as RGBA) is read by its brightness like an RGB one.
    """
    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        alpha = (
            image.getchannel("A") if image.mode in ("RGBA", "LA") else image.convert("RGBA").getchannel("A")
        )
        if alpha.getextrema()[0] < 255:
            return alpha
    if image.mode.startswith("I"):
        return image.point(lambda v: v / 256).convert("L")  # 16-bit grey: scale, never clip to white
    return image.convert("L")


def load_mask(
    item: ImageInput, size: tuple[int, int], *, lenient: bool = False
) -> tuple[Image.Image, str | None]:
    """Read a mask (path, bytes, PIL image or data URI) as L with 255 where 图1 may change, and a
    note when it had to be scaled.

    For an L or RGB mask a brightness above 127 means change; for a mask with transparency (RGBA,
    LA, P), an alpha above 127. The mask is turned upright by its own EXIF orientation and must be
    `size` (图1's upright size): `lenient` scales it instead (a phone paints on a smaller canvas).
    Raises InvalidRequestError for a link, a wrong size or an empty mask.
    """
    data, image, url = read_input(item)
    if url is not None:
        raise invalid(
            "蒙版必须是文件、图片或 data URI，不能是链接",
            "a mask must be a file, bytes, a PIL image or a data URI, not a link",
        )
    try:
        values = _mask_values(image if image is not None else open_image(data))
    except InvalidRequestError:
        raise
    except Exception:
        raise invalid("蒙版图片已损坏", "the mask image is truncated or corrupt") from None
    note = None
    if values.size != size:
        (mw, mh), (w, h) = values.size, size
        if not lenient:
            raise invalid(
                f"蒙版尺寸 {mw}x{mh} 与图1的 {w}x{h} 不一致",
                f"the mask is {mw}x{mh} but 图1 is {w}x{h} (after EXIF orientation); they must match",
            )
        values = values.resize(size, Image.Resampling.BILINEAR)  # grey edges, then the threshold
        note = f"蒙版已从 {mw}x{mh} 缩放到 {w}x{h} / the mask was scaled from {mw}x{mh} to {w}x{h}"
    mask = values.point(_BINARY)
    if mask.getbbox() is None:
        raise invalid(
            "蒙版为空，没有要修改的区域",
            "the mask is empty: paint the area to change in white (or opaque on a transparent layer)",
        )
    return mask, note


def covers_all(mask: Image.Image) -> bool:
    """True when every pixel of a loaded mask is painted: run a plain edit instead."""
    return mask.getextrema()[0] == 255


# --- the plan ---------------------------------------------------------------------------------


@functools.cache
def provider_sizes() -> tuple[tuple[int, int], ...]:
    """Every provider size (W, H) we ask for: multiples of 16 in [512, 2048], about 1 MP."""
    sides = range(PROVIDER_MIN_SIDE, PROVIDER_MAX_SIDE + 1, SIZE_STEP)
    low, high = (TARGET_PIXELS * bound for bound in AREA_RANGE)
    return tuple((w, h) for w in sides for h in sides if low <= w * h <= high)


def _area_cost(width: int, height: int) -> float:
    return AREA_WEIGHT * abs(math.log(width * height / TARGET_PIXELS))


def nearest_size(width: int, height: int) -> str:
    """The provider size "W*H" nearest the aspect ratio of `width` x `height` (for size="original").

    Beyond the provider's 1:4 and 4:1 it is the extreme (2048*512 or 512*2048), and the result
    must be stretched to 图1's aspect; within that range it matches within 1%.
    """
    aspect = width / height
    best = min(provider_sizes(), key=lambda s: abs(math.log(s[0] / s[1] / aspect)) + _area_cost(*s))
    return f"{best[0]}*{best[1]}"


def resize_to(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """The provider's image scaled to exactly `size` (图1's upright size), itself when it already is."""
    return image if image.size == size else image.resize(size, Image.Resampling.BICUBIC)


def _place(low: int, high: int, length: int, limit: int) -> int:
    """Start of a span of `length` centred on [low, high), shifted to stay inside [0, limit)."""
    start = (low + high - length) // 2
    return max(0, high - length, min(start, low, limit - length))


def plan_region(mask: Image.Image) -> RegionPlan:
    """Choose the crop of 图1 and the provider size for a loaded mask (see the module's notes).

    The crop is the painted box plus context, grown (never shrunk) to the aspect of a provider
    size and shifted to stay inside 图1. Where 图1 itself is too narrow for any provider aspect
    (beyond 1:4), the crop takes 图1's full extent and repeated edge pixels pad it to 1:4; the
    padding is cut away again on the way back. Raises InvalidRequestError for an empty mask.
    """
    width, height = mask.size
    bbox = mask.getbbox()
    if bbox is None:
        raise invalid("蒙版为空，没有要修改的区域", "the mask is empty: paint the area to change")
    x0, y0, x1, y1 = bbox
    margin = max(MIN_CONTEXT, math.ceil(max(x1 - x0, y1 - y0) * CONTEXT_FRACTION))
    w = min(width, max(x1 - x0 + 2 * margin, MIN_CROP_SIDE))
    h = min(height, max(y1 - y0 + 2 * margin, MIN_CROP_SIDE))
    best = None
    for pw, ph in provider_sizes():
        ratio = pw / ph
        # grow the crop's width (or height) as far as 图1 allows; the frame is padded beyond that
        if ratio >= w / h:
            gw, gh = min(width, round(h * ratio)), h
            fw, fh = round(h * ratio), h
        else:
            gw, gh = w, min(height, round(w / ratio))
            fw, fh = w, round(w / ratio)
        cost = fw * fh / (w * h) - 1 + abs(math.log(fw / fh / ratio)) + _area_cost(pw, ph)
        key = (fw * fh - gw * gh, cost)  # real pixels first: pad only when nothing else fits
        if best is None or key < best[0]:
            best = (key, pw, ph, gw, gh, fw, fh)
    _, pw, ph, gw, gh, fw, fh = best
    left, top = _place(x0, x1, gw, width), _place(y0, y1, gh, height)
    pad = ((fw - gw) // 2, (fh - gh) // 2, fw - gw - (fw - gw) // 2, fh - gh - (fh - gh) // 2)
    notes = [f"painted box {x1 - x0}x{y1 - y0}, context {margin} px a side, crop {w}x{h}"]
    if (w, h) != (gw, gh):
        notes.append(f"crop grown to {gw}x{gh} to match the provider size {pw}*{ph}")
    warnings = []
    if any(pad):
        notes.append(f"padded by {fw - gw}x{fh - gh} px of repeated edge to {fw}x{fh}")
        warnings.append(
            f"图1比服务商支持的 1:4 更窄，裁剪区域用重复的边缘像素补足了 {fw - gw + fh - gh} 像素 / "
            f"图1 is narrower than the provider's 1:4 limit: the crop was padded by {fw - gw + fh - gh} px "
            "of repeated edge, which is cut away again"
        )
    return RegionPlan(
        box=(left, top, left + gw, top + gh),
        pad=pad,
        size=f"{pw}*{ph}",
        feather=FEATHER,
        bbox=bbox,
        notes=tuple(notes),
        warnings=tuple(warnings),
    )


# --- 图1 ---------------------------------------------------------------------------------------


def _rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB, or RGBA where there is transparency, as the client decodes images."""
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        return image.convert("RGBA")
    if image.mode.startswith("I"):
        image = image.point(lambda v: v / 256).convert("L")
    return image.convert("RGB")


def _decode(data: bytes | None, image: Image.Image, lossless: bool) -> tuple[Image.Image, SourceLayout]:
    """图1 fully decoded and upright, in the mode the result will be saved from."""
    orientation = read_orientation(image)
    icc = image.info.get("icc_profile")
    fmt = image.format if data is not None else None
    image.seek(0)
    if fmt == "JPEG" and not lossless and image.mode == "RGB":
        subsampling = JpegImagePlugin.get_sampling(image)
        tables = image.quantization
        image.draft("YCbCr", image.size)  # the planes as stored: no colour conversion either way
        image.load()
        if image.mode == "YCbCr" and subsampling in (0, 1, 2):
            turn = UPRIGHT_TURNS.get(orientation)
            upright = image.transpose(turn) if turn else image
            return upright, SourceLayout(fmt, orientation, icc, tables, subsampling)
        image = open_image(data)
    turn = UPRIGHT_TURNS.get(orientation)
    upright = _rgb(image.transpose(turn) if turn else image)
    return upright, SourceLayout(fmt, orientation, icc)


def prepare_region(
    image1: ImageInput, mask: ImageInput, *, lenient: bool = False, lossless: bool = False
) -> Region:
    """Check and decode 图1 and the mask, and plan the crop; raises before anything is sent.

    图1 may be a path, bytes, a PIL image or a data URI (not a link: its pixels are needed), in
    any format the client reads, HEIC included. `lenient` scales a mask of another size (the
    page); the client and API keep the strict check. `lossless` saves a JPEG 图1's result as PNG.
    Raises InvalidRequestError for a link, an unreadable image, a wrong-size or empty mask.
    """
    data, image, url = read_input(image1)
    if url is not None:
        raise invalid(
            "区域编辑需要图1的文件或 data URI，不能是链接",
            "a region edit needs 图1 as a file, bytes, a PIL image or a data URI, not a link",
        )
    if data is not None and sniff_heif(data):
        image = open_heif(data)  # upright already, metadata dropped
        data = None
    elif image is None:
        image = open_image(data)
    loaded, note = load_mask(mask, upright_size(image), lenient=lenient)
    try:
        decoded, source = _decode(data, image, lossless)
    except InvalidRequestError:
        raise
    except Exception:
        raise invalid("图片文件已损坏", "图1 is truncated or corrupt") from None
    warnings = [note] if note else []
    plan = None
    if covers_all(loaded):
        warnings.append(FULL_MASK_WARNING)
    else:
        plan = plan_region(loaded)
        warnings.extend(plan.warnings)
    return Region(decoded, loaded, plan, source, tuple(warnings))


# --- crop, stitch, save -----------------------------------------------------------------------


def _pad_edges(image: Image.Image, pad: tuple[int, int, int, int]) -> Image.Image:
    """`image` with its edge rows and columns repeated outward by `pad` (left, top, right, bottom)."""
    left, top, right, bottom = pad
    if not any(pad):
        return image
    width, height = image.size
    out = Image.new(image.mode, (width + left + right, height + top + bottom))
    out.paste(image, (left, top))
    near = Image.Resampling.NEAREST
    if left:
        out.paste(image.crop((0, 0, 1, height)).resize((left, height), near), (0, top))
    if right:
        out.paste(
            image.crop((width - 1, 0, width, height)).resize((right, height), near), (left + width, top)
        )
    if top:
        out.paste(out.crop((0, top, out.width, top + 1)).resize((out.width, top), near), (0, 0))
    if bottom:
        row = out.crop((0, top + height - 1, out.width, top + height))
        out.paste(row.resize((out.width, bottom), near), (0, top + height))
    return out


def crop_image(region: Region) -> Image.Image:
    """The crop to send as 图1 (RGB or RGBA, padded as planned); ask for `region.plan.size`.

    For a region with a plan; encode it as any input image (the client scales it to 2048).
    """
    crop = region.image.crop(region.plan.box)
    if crop.mode == "YCbCr":
        crop = crop.convert("RGB")
    return _pad_edges(crop, region.plan.pad)


def _feathered(mask: Image.Image, feather: int) -> Image.Image:
    """Blend weights: 255 on the painted pixels, fading to 0 over the 2 * feather px outside.

    The dilation is a box blur whose non-zero pixels are exactly those within `feather` px
    (Chebyshev): a single painted pixel still leaves 255 / 9 / 9 > 0 for feather 4.
    """
    grown = mask.filter(ImageFilter.BoxBlur(feather)).point([0] + [255] * 255)
    return grown.filter(ImageFilter.BoxBlur(feather))


def stitch(region: Region, provider_image: Image.Image | bytes) -> Image.Image:
    """图1 with the provider's edit of the crop blended into the painted region.

    The provider's image may have any size (a provider may ignore `size`): its frame is the
    padded crop's, so it is scaled to it. Returns 图1's exact size in the working mode (YCbCr
    for a JPEG 图1: pass it to `encode_result`; `.convert("RGB")` to show it).
    """
    if isinstance(provider_image, (bytes, bytearray)):
        provider_image = open_image(bytes(provider_image))
    plan = region.plan
    left, top, right, bottom = plan.box
    pad_left, pad_top, pad_right, pad_bottom = plan.pad
    scale_x = provider_image.width / (right - left + pad_left + pad_right)
    scale_y = provider_image.height / (bottom - top + pad_top + pad_bottom)
    # Only the painted box and its fade band can change, so only that part is scaled and blended.
    x0, y0, x1, y1 = plan.bbox
    reach = 2 * plan.feather
    window = (max(left, x0 - reach), max(top, y0 - reach), min(right, x1 + reach), min(bottom, y1 + reach))
    source_box = (
        (window[0] - left + pad_left) * scale_x,
        (window[1] - top + pad_top) * scale_y,
        min(provider_image.width, (window[2] - left + pad_left) * scale_x),
        min(provider_image.height, (window[3] - top + pad_top) * scale_y),
    )
    size = (window[2] - window[0], window[3] - window[1])
    try:
        has_alpha = provider_image.mode in ("RGBA", "LA", "PA") or "transparency" in provider_image.info
        source = provider_image.convert("RGBA" if has_alpha and region.image.mode == "RGBA" else "RGB")
        part = source.resize(size, Image.Resampling.BICUBIC, box=source_box)
    except Exception:
        raise invalid("服务商返回的图片已损坏", "the provider's image is truncated or corrupt") from None
    if region.image.mode == "YCbCr":
        part = part.convert("YCbCr")
    elif region.image.mode == "RGBA" and part.mode == "RGB":
        part.putalpha(region.image.getchannel("A").crop(window))  # 图1's transparency stays
    out = region.image.copy()
    out.paste(part, window[:2], _feathered(region.mask.crop(window), plan.feather))
    return out


def encode_result(region: Region, image: Image.Image) -> tuple[bytes, str]:
    """The stitched image as file bytes and their format ("JPEG" or "PNG"; see the module notes).

    Only 图1's ICC profile (and a JPEG's orientation tag) go in: the provenance label is added
    afterwards without re-encoding.
    """
    source = region.source
    out = io.BytesIO()
    if source.jpeg_tables is not None and image.mode == "YCbCr":
        turn = _STORED.get(source.orientation)
        options = {}
        if turn:
            image = image.transpose(turn)  # back to the stored orientation: the blocks line up
            exif = Image.Exif()
            exif[ORIENTATION_TAG] = source.orientation
            options["exif"] = exif.tobytes()
        image.save(
            out,
            "JPEG",
            qtables=source.jpeg_tables,
            subsampling=source.jpeg_subsampling,
            optimize=True,
            icc_profile=source.icc_profile,
            **options,
        )
        return out.getvalue(), "JPEG"
    image.save(out, "PNG", compress_level=PNG_COMPRESS_LEVEL, icc_profile=source.icc_profile)
    return out.getvalue(), "PNG"
