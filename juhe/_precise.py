"""The local work around one edit: region edits, size="original", clean inputs, labelled results.

Before the request, `plan_edit` (CPU and local file reads, nothing sent) reads each input once and
hashes it; for size="original" it reads 图1's upright size from its header and asks for the
nearest valid size; for a region edit it checks the mask against 图1, plans the crop and cuts it
to send as 图1 (图2/图3 go as they are). What a download needs later is a `LocalJob`: 图1 and
the mask as given (their bytes, not their decoded pixels: an edit in flight holds a few MB, not
the 50 MB a decoded 12-MP photo takes), the plan and 图1's size.

After each download, `finish_image` strips the provider's image of its metadata (reading its own
AIGC label first), stitches it into 图1 or resizes it to 图1's size, and writes the GB 45438-2025
label into what is saved, without re-encoding. It never raises: when the stitch or the resize
cannot be done, the provider's image is saved as the result and a warning says why.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

from PIL import Image

from ._exceptions import invalid, scrub_text
from ._formats import open_image, sniff_heif, upright_size
from ._heic import heif_size
from ._images import ImageInput, PreparedImage, pixel_work, read_input
from ._metadata import ORIENTATION_TAG, png_chunks, strip_metadata
from ._models import EditResult
from ._provenance import MAX_ID_CHARS, build_provenance, read_provenance, sha256_hex, write_provenance
from ._region import (
    PNG_COMPRESS_LEVEL,
    UNTOUCHED_DISTANCE,
    RegionPlan,
    crop_image,
    encode_result,
    nearest_size,
    prepare_region,
    resize_to,
    stitch,
)
from ._request import EditParams

# A region edit of a 12-MP photo peaked at 130 to 176 MB over its start (图1 decoded, the mask,
# the blend, the stitched copy and its encoding: tests/benchmarks/region.py), about 14 bytes a
# pixel of 图1; the decode budget caps any one hold at its whole 256 MB.
REGION_BYTES_PER_PIXEL = 14
RESIZE_BYTES_PER_PIXEL = 8  # the resized result as RGBA, and its encoding
# A result brought to a photo's size is saved as JPEG at this quality (a 12-MP PNG would be 17 MB
# and take 0.7 s to write, for pixels that were upscaled from about 1 MP anyway).
RESIZED_JPEG_QUALITY = 95
PROVIDER_NAME = "juhe.cn image_edit (1985)"  # the label's `provider`; its `endpoint` says where
PROVIDER_SUFFIX = "_provider"  # the provider's own image, kept beside a stitched or resized one
PHOTO_FORMATS = frozenset({"JPEG", "MPO", "HEIF"})
LABELLED_FORMATS = frozenset({"PNG", "JPEG"})
# What a producer field of the standard holds (printable ASCII without space, quote or backslash),
# at most MAX_ID_CHARS: a provider's label is copied only when it keeps to that.
_LABEL_VALUE = re.compile(rf"[!#-\[\]-~]{{0,{MAX_ID_CHARS}}}")


@dataclass(frozen=True)
class LocalJob:
    """What a download needs to finish an edit (kept on the result, out of its JSON)."""

    inputs_sha256: tuple[str | None, ...] = ()  # of each image as given; None for a link or PIL image
    image1: bytes | Image.Image | None = None  # as given, for the stitch
    mask: bytes | Image.Image | None = None
    mask_lenient: bool = False
    plan: RegionPlan | None = None  # None: no region (a plain edit, or a mask covering everything)
    target: tuple[int, int] | None = None  # 图1's upright size, which the result is brought to
    photo: bool = False  # 图1 is a JPEG or HEIC: a resized result is saved as JPEG
    region: dict | None = field(default=None, compare=False)  # for the sidecar
    image1_format: str | None = None

    @property
    def output_size(self) -> str:
        """图1's "W*H" when the result is brought to it, else ""."""
        return f"{self.target[0]}*{self.target[1]}" if self.target else ""


def _sendable(read: tuple[bytes | None, Image.Image | None, str | None]) -> ImageInput:
    data, image, url = read
    return data if data is not None else image if image is not None else url


def _layout(source: bytes | Image.Image) -> tuple[tuple[int, int], str | None]:
    """图1's upright size, read from its header, and its format."""
    if isinstance(source, Image.Image):
        return upright_size(source), source.format
    if sniff_heif(source) == "HEIF":
        return heif_size(source), "HEIF"
    image = open_image(source)
    if image.format == "PNG":  # Pillow would decode a whole PNG to find an eXIf chunk after its pixels
        return _png_upright_size(source, image.size), "PNG"
    return upright_size(image), image.format


def _png_upright_size(data: bytes, size: tuple[int, int]) -> tuple[int, int]:
    """A PNG's size once its eXIf orientation (if any) is applied, read from its chunks."""
    try:
        payloads = [data[start + 8 : end - 4] for kind, start, end in png_chunks(data) if kind == b"eXIf"]
        exif = Image.Exif()
        if payloads:
            exif.load(payloads[0])
        orientation = int(exif.get(ORIENTATION_TAG, 1) or 1)
    except Exception:  # a broken eXIf chunk must not stop the edit; the pixels stay as stored
        orientation = 1
    return (size[1], size[0]) if orientation in (5, 6, 7, 8) else size


def plan_edit(params: EditParams) -> tuple[EditParams, LocalJob]:
    """Read and hash the inputs; settle the size to ask for and, for a region, cut the crop.

    Returns the parameters to send (each image read once, as bytes, a PIL image or a link; for
    a region edit the crop as 图1 and its planned size) and the job a download finishes.
    Raises InvalidRequestError for a wrong-size or empty mask, or an unreadable 图1.
    """
    reads = [read_input(item) for item in params.images]
    hashes = tuple(sha256_hex(data) if data is not None else None for data, _, _ in reads)
    images = [_sendable(read) for read in reads]
    if not params.original:
        return replace(params, images=tuple(images)), LocalJob(inputs_sha256=hashes)
    source = images[0]  # bytes or a PIL image: check_params refused a link
    target, fmt = _layout(source)
    photo = fmt in PHOTO_FORMATS
    job = LocalJob(hashes, target=target, photo=photo, image1_format=fmt)
    if params.mask is None:
        return replace(params, images=tuple(images), size=nearest_size(*target)), job
    mask_data, mask_image, _ = read_input(params.mask)
    mask = mask_data if mask_data is not None else mask_image
    with pixel_work(REGION_BYTES_PER_PIXEL * target[0] * target[1]):
        region = prepare_region(source, mask, lenient=params.mask_lenient)
        plan, notes, target = region.plan, region.warnings, region.image.size
        crop = crop_image(region) if plan is not None else None
        del region  # 图1 decoded is not needed past the crop: free it before the crop is encoded
    record = {
        "image1_size": f"{target[0]}*{target[1]}",
        "mask_sha256": sha256_hex(mask_data) if mask_data is not None else None,
        "untouched_distance": UNTOUCHED_DISTANCE,
        "full_mask": plan is None,
    }
    if plan is not None:
        record.update(plan.to_dict())
        images[0] = crop
    size = plan.size if plan is not None else nearest_size(*target)
    job = replace(job, image1=source, mask=mask, mask_lenient=params.mask_lenient, plan=plan, region=record)
    return replace(params, images=tuple(images), size=size, warnings=params.warnings + notes), job


def describe_inputs(job: LocalJob, prepared: list[PreparedImage]) -> list[dict]:
    """For the sidecar: each input's hash, format, how it was sent and what metadata it lost."""
    described = []
    for index, image in enumerate(prepared):
        removed = list(image.metadata_removed)
        fmt = image.source_format
        if image.mime is None:
            sent = "link, passed to the provider as it is (not fetched here)"
        elif index == 0 and job.plan is not None:
            box = ",".join(str(v) for v in job.plan.box)
            sent = f"the crop ({box}) of 图1 around the painted region, re-encoded"
            fmt = job.image1_format
            if isinstance(job.image1, bytes):
                try:
                    removed = strip_metadata(job.image1)[1]
                except ValueError:
                    removed = []
        elif fmt == "HEIF":
            sent = "converted from HEIC/HEIF to JPEG, upright"
        elif image.passthrough:
            sent = "its pixels unchanged, metadata stripped" if removed else "unchanged"
        else:
            sent = "re-encoded"
        sha = job.inputs_sha256[index] if index < len(job.inputs_sha256) else None
        described.append(
            {"image": index + 1, "sha256": sha, "format": fmt, "sent": sent, "metadata_removed": removed}
        )
    return described


# --- after a download -------------------------------------------------------------------------


@dataclass
class FinishedImage:
    """One downloaded result made ready to save: the result, and the provider's own beside it."""

    data: bytes
    format: str
    kind: str  # "provider" (saved as it came, cleaned), "stitched" or "resized"
    size: tuple[int, int]
    provider: tuple[bytes, str] | None = None  # the provider's own image, when the result differs
    metadata_removed: list[str] = field(default_factory=list)  # from the provider's image
    labelled: bool = False
    warnings: list[str] = field(default_factory=list)


def endpoint_name(api_url: str) -> str:
    """The endpoint as recorded in a label: scheme, host and path, never a query string."""
    parts = urlsplit(api_url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{parts.path}"


def _encode(image: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info


def _clean(data: bytes, fmt: str) -> tuple[bytes, str, list[str]]:
    """The provider's image without metadata: a PNG or JPEG stripped in place, anything else (or
    a file whose structure the stripper refuses) re-encoded as PNG, pixels as decoded."""
    if fmt in LABELLED_FORMATS:
        try:
            clean, removed = strip_metadata(data)
            return clean, fmt, removed
        except ValueError:
            pass
    image = open_image(data)
    image.seek(0)
    icc = image.info.get("icc_profile")
    image = image.convert("RGBA" if _has_alpha(image) else "RGB")
    note = f"{fmt} converted to PNG, pixels as decoded, with none of its metadata"
    return _encode(image, "PNG", icc_profile=icc), "PNG", [note]


def _stitched(job: LocalJob, provider: bytes) -> tuple[bytes, str]:
    """The provider's crop blended into 图1 (decoded again from the bytes kept)."""
    with pixel_work(REGION_BYTES_PER_PIXEL * job.target[0] * job.target[1]):
        region = prepare_region(job.image1, job.mask, lenient=job.mask_lenient)
        if region.plan != job.plan:
            raise invalid("图1或蒙版在编辑后被修改", "图1 or the mask changed after the edit was sent")
        return encode_result(region, stitch(region, provider))


def _resized(job: LocalJob, provider: bytes) -> tuple[bytes, str]:
    """The provider's image at 图1's exact size: JPEG for a photo, else a lossless PNG."""
    with pixel_work(RESIZE_BYTES_PER_PIXEL * job.target[0] * job.target[1]):
        image = open_image(provider)
        icc = image.info.get("icc_profile")
        alpha = _has_alpha(image)
        image = resize_to(image.convert("RGBA" if alpha else "RGB"), job.target)
        if job.photo and not alpha:
            options = {"quality": RESIZED_JPEG_QUALITY, "optimize": True, "icc_profile": icc}
            return _encode(image, "JPEG", **options), "JPEG"
        return _encode(image, "PNG", compress_level=PNG_COMPRESS_LEVEL, icc_profile=icc), "PNG"


def _label(data: bytes, record: dict) -> tuple[bytes, bool]:
    try:
        return write_provenance(data, record), True
    except ValueError:
        return data, False


def _stored_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size


def _upstream(data: bytes, secrets: Sequence[str | None]) -> dict | None:
    """The provider's own label, when its producer fields are what the standard allows (short
    printable ASCII) and hold no key: they are copied into ours."""
    try:
        label = (read_provenance(data) or {}).get("AIGC") or {}
    except Exception:  # a label we cannot read is the provider's business, not a lost result
        return None
    values = [label.get(name, "") for name in ("ContentProducer", "ProduceID", "ReservedCode1")]
    if not values[0] or not all(_LABEL_VALUE.fullmatch(v) and scrub_text(v, *secrets) == v for v in values):
        return None
    return {"AIGC": label}


def finish_image(
    result: EditResult,
    index: int,
    data: bytes,
    fmt: str,
    *,
    endpoint: str = "",
    secrets: Sequence[str | None] = (),
) -> FinishedImage:
    """Make result image number `index` (from 1) ready to save; never raises.

    `data` is a whole image as checked after download, `fmt` its format; `endpoint` is recorded
    in the label (a simulator's shows as such); a provider's label holding one of `secrets` is
    not copied. The label's ProduceID is the order id (with `-N` when the order has several
    images, and `-provider` on the provider's own copy).
    """
    job: LocalJob = result._job or LocalJob()
    warnings: list[str] = []
    upstream = _upstream(data, secrets)
    try:
        clean, clean_fmt, removed = _clean(data, fmt)
    except Exception as exc:
        clean, clean_fmt, removed = data, fmt, []
        warnings.append(
            f"结果图片的元数据未能删除 / the metadata of result {index} could not be removed; it was saved "
            f"as it came: {exc}"
        )
    finished = FinishedImage(clean, clean_fmt, "provider", (0, 0), metadata_removed=removed)
    if job.target is not None:
        try:
            derived, derived_fmt = _stitched(job, clean) if job.plan is not None else _resized(job, clean)
            finished.provider = (clean, clean_fmt)
            finished.data, finished.format = derived, derived_fmt
            finished.kind = "stitched" if job.plan is not None else "resized"
        except Exception as exc:
            what = "拼回图1" if job.plan is not None else "缩放到图1的尺寸"
            warnings.append(
                f"结果未能{what}，已保存服务商的原图 / result {index} could not be "
                f"{'stitched into' if job.plan is not None else 'resized to'} 图1; the provider's image "
                f"was saved instead: {exc}"
            )
    base = result.order_id if len(result.image_urls) <= 1 else f"{result.order_id}-{index}"
    record_args = {
        "provider": PROVIDER_NAME,
        "order_id": result.order_id,
        "model": result.model,
        "prompt": result.prompt,
        "size": result.size,
        "inputs_sha256": job.inputs_sha256,
        "time": result.completed_at,
        "upstream": upstream,
    }
    try:
        finished.size = job.target if finished.kind != "provider" else _stored_size(finished.data)
        record = build_provenance(produce_id=base, **record_args)
        record["result"] = finished.kind
        record["endpoint"] = endpoint
        if finished.kind != "provider":
            record["output_size"] = f"{finished.size[0]}*{finished.size[1]}"
        finished.data, finished.labelled = _label(finished.data, record)
        if finished.provider is not None:
            own = build_provenance(produce_id=f"{base}-provider", **record_args)
            own["result"], own["endpoint"] = "provider", endpoint
            finished.provider = (_label(finished.provider[0], own)[0], finished.provider[1])
        why = "" if finished.labelled else "the label is written into PNG and JPEG files only"
    except Exception as exc:  # the result is paid for: it is saved unlabelled rather than lost
        why = str(exc)
    if not finished.labelled:
        warnings.append(
            f"结果 {index} 未写入 AIGC 标识 / result {index} was saved without the AIGC label: {why}"
        )
    finished.warnings = warnings
    return finished
