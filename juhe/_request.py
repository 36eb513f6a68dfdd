"""Pure functions: check the parameters, build the form body, parse the provider's answer.

No I/O here; both clients call these and only add the sending.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import quote, quote_plus

from PIL import Image

from ._exceptions import MalformedResponseError, error_for_code, invalid, scrub_text
from ._images import ImageInput, PreparedImage, prepare_image
from ._models import EditResult
from ._urls import is_http_url

MAX_PROMPT_CHARS = 800
MIN_SIDE, MAX_SIDE = 512, 2048
MAX_IMAGES = 3
MAX_MODEL_CHARS = 64  # model names are short words such as "auto"
MAX_RESULT_LINKS = 8  # the model returns one image; more links are cut, with a warning
MAX_PROVIDER_TEXT = 256  # characters kept of a provider's reason or order id
SNIPPET_CHARS = 80  # characters of a non-JSON answer quoted in the error
ORIGINAL_SIZE = "original"  # size="original": ask for the nearest valid size, return 图1's exact one
_SIZE_RE = re.compile(r"^\s*\(?\s*(\d+)\s*(?:\*|x|X|×|,)\s*(\d+)\s*\)?\s*$")
# key=...&text=...&image1=&image2=&image3=&size=...&model=... without the field values
_FORM_OVERHEAD = 64
# Control characters (tab and line breaks aside) and lone surrogates, which UTF-8 cannot encode
_UNSENDABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


@dataclass(frozen=True)
class EditParams:
    """Validated parameters of one edit call."""

    prompt: str
    images: tuple[ImageInput, ...]
    size: str  # "W*H" or "" for keep-aspect
    model: str
    warnings: tuple[str, ...] = field(default=())
    original: bool = False  # size="original" or a mask: the saved result has 图1's exact size
    mask: ImageInput | None = None  # a region edit: only the painted part of 图1 changes
    mask_lenient: bool = False  # scale a mask of another size to 图1 instead of refusing it


def normalise_prompt(prompt: object) -> tuple[str, list[str]]:
    """Strip the prompt and cut it to 800 characters, returning the warnings that caused."""
    if not isinstance(prompt, str):
        raise invalid("提示词必须是文本", f"the prompt must be a string, not {type(prompt).__name__}")
    cleaned = _UNSENDABLE.sub("", prompt)
    text = cleaned.strip()
    if not text:
        raise invalid("提示词不能为空", "the prompt must not be empty")
    notes = []
    if cleaned != prompt:
        notes.append("提示词中的控制字符已删除 / control characters were removed from the prompt")
    if len(text) > MAX_PROMPT_CHARS:
        notes.append(
            f"提示词超过 {MAX_PROMPT_CHARS} 字符，已截断 / the prompt has {len(text)} characters; "
            f"it was cut to {MAX_PROMPT_CHARS}"
        )
        text = text[:MAX_PROMPT_CHARS]
    return text, notes


def parse_size(size: object) -> str:
    """Return `W*H` from `W*H`, `WxH` or `(W, H)`, or `""` for auto; sides must be in [512, 2048]."""
    if size is None or (isinstance(size, str) and size.strip().lower() in ("", "auto")):
        return ""
    if isinstance(size, (tuple, list)) and len(size) == 2:
        parts = size
    elif isinstance(size, str) and (match := _SIZE_RE.match(size)):
        parts = match.groups()
    else:
        raise invalid(
            f"尺寸格式错误 {size!r}",
            f"size must be W*H, WxH or (W, H) with sides in [{MIN_SIDE}, {MAX_SIDE}], got {size!r}",
        )
    try:
        width, height = (int(p) for p in parts)
    except (TypeError, ValueError):
        raise invalid("尺寸必须是整数", f"size sides must be integers, got {size!r}") from None
    if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
        raise invalid(
            f"尺寸 {width}*{height} 超出范围",
            f"each side of size must be in [{MIN_SIDE}, {MAX_SIDE}], got {width}*{height}",
        )
    return f"{width}*{height}"


def is_original(size: object) -> bool:
    """True for size="original": the result at 图1's exact pixel size."""
    return isinstance(size, str) and size.strip().lower() == ORIGINAL_SIZE


def _check_local(items: tuple, size: object, mask: object) -> None:
    """Region edits and size="original" need 图1's pixels, so neither takes a link."""
    if mask is not None and (is_http_url(mask) or (isinstance(mask, str) and "://" in mask[:12])):
        raise invalid(
            "蒙版必须是文件、图片或 data URI，不能是链接",
            "a mask must be a file, bytes, a PIL image or a data URI, not a link",
        )
    mask_types = (str, os.PathLike, bytes, bytearray, memoryview, Image.Image)
    if mask is not None and not isinstance(mask, mask_types):
        raise invalid(
            "不支持的蒙版类型",
            f"a mask must be a path, bytes, a PIL image or a data URI, not {type(mask).__name__}",
        )
    if mask is not None and not is_original(size) and parse_size(size):
        raise invalid(
            "区域编辑的结果总是图1的尺寸，请不要指定 size",
            f"a region edit always comes back at 图1's size: leave size empty (or 'original'), not {size!r}",
        )
    if (mask is not None or is_original(size)) and isinstance(items[0], str) and "://" in items[0][:12]:
        raise invalid(
            "区域编辑和原尺寸输出需要图1的文件或 data URI，不能是链接",
            "region edits and size='original' need 图1 as a file, bytes, a PIL image or a data URI, "
            "not a link",
        )


def check_params(
    prompt: object,
    images: object,
    size: object = None,
    model: object = None,
    *,
    mask: object = None,
    mask_lenient: bool = False,
) -> EditParams:
    """Validate everything that needs no image decoding; raise before any I/O.

    `size` may also be "original" (图1's exact size); `mask` makes it a region edit, whose result
    always has 图1's size. Both need 图1 as a file, bytes, a PIL image or a data URI.
    """
    text, notes = normalise_prompt(prompt)
    if isinstance(images, (str, bytes, bytearray)) or not isinstance(images, Sequence):
        images = [images]
    items = tuple(i for i in images if i is not None and i != "")
    if not 1 <= len(items) <= MAX_IMAGES:
        raise invalid("需要 1 到 3 张图片", f"an edit takes 1 to {MAX_IMAGES} images, got {len(items)}")
    _check_local(items, size, mask)
    original = is_original(size)
    return EditParams(
        text,
        items,
        "" if original else parse_size(size),
        check_model(model),
        tuple(notes),
        original=original or mask is not None,
        mask=mask,
        mask_lenient=bool(mask_lenient),
    )


def check_model(model: object) -> str:
    """The model name, "auto" when empty; at most 64 printable characters."""
    if model is not None and not isinstance(model, str):
        raise invalid("模型名必须是文本", f"the model name must be a string, not {type(model).__name__}")
    name = (model or "").strip() or "auto"
    if len(name) > MAX_MODEL_CHARS:
        raise invalid(
            f"模型名超过 {MAX_MODEL_CHARS} 个字符",
            f"the model name has {len(name)} characters; at most {MAX_MODEL_CHARS} are accepted",
        )
    if not name.isprintable():
        raise invalid("模型名含有控制字符", "the model name holds control characters")
    return name


def _escaped_size(value: str) -> int:
    """Bytes `value` takes once form-escaped: at most 3 per UTF-8 byte."""
    return 3 * len(value.encode("utf-8", "surrogatepass"))


def image_budget(max_body_bytes: int, params: EditParams, api_key: str) -> int:
    """Escaped bytes each data image may take so the whole body stays within `max_body_bytes`."""
    texts = [api_key, params.prompt, params.size, params.model]
    urls = [i for i in params.images if is_http_url(i)]
    fixed = _FORM_OVERHEAD + sum(_escaped_size(t) for t in texts + urls)
    data_images = len(params.images) - len(urls)
    return (max_body_bytes - fixed) // max(1, data_images)


def prepare_images(params: EditParams, *, max_side: int, budget: int) -> list[PreparedImage]:
    """Prepare every image of `params` (CPU work; run it off the event loop).

    Several images are prepared side by side, one per core: Pillow releases the GIL while it
    decodes, scales and encodes, so three phone photos take little longer than one.
    """

    def prepare(item: ImageInput) -> PreparedImage:
        return prepare_image(item, max_side=max_side, budget=budget)

    workers = min(len(params.images), os.cpu_count() or 1)
    if workers <= 1:
        return [prepare(item) for item in params.images]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="juhe-image") as pool:
        return list(pool.map(prepare, params.images))


def _escape_value(value: str, *, image: bool = False) -> bytes:
    """Form-escape one value; an image's base64 payload takes a fast path that escapes only `+ / =`."""
    if image and value.startswith("data:"):
        head, sep, payload = value.partition(",")
        # on bytes, which replace faster than str: this is a megabyte or more per image
        escaped = payload.encode("ascii").replace(b"+", b"%2B").replace(b"/", b"%2F").replace(b"=", b"%3D")
        return quote(head + sep, safe="").encode("ascii") + escaped
    return quote_plus(value, safe="").encode("ascii")


def build_form(api_key: str, params: EditParams, images: Sequence[PreparedImage]) -> bytes:
    """The urlencoded body, fields in the document's order, unused images as empty strings."""
    values = [img.value for img in images] + [""] * (MAX_IMAGES - len(images))
    fields = [
        ("key", api_key),
        ("text", params.prompt),
        ("image1", values[0]),
        ("image2", values[1]),
        ("image3", values[2]),
        ("size", params.size),
        ("model", params.model),
    ]
    parts = []
    for name, value in fields:  # one join: each image's text is copied once more, not three times
        parts += [b"&", name.encode(), b"=", _escape_value(value, image=name.startswith("image"))]
    return b"".join(parts[1:])


def _scrubbed(value: object, secrets: Sequence[str | None]) -> object:
    """The decoded JSON with every string cleaned by `scrub_text`."""
    if isinstance(value, str):
        return scrub_text(value, *secrets)
    if isinstance(value, list):
        return [_scrubbed(item, secrets) for item in value]
    if isinstance(value, dict):
        return {key: _scrubbed(item, secrets) for key, item in value.items()}
    return value


def _short(text: object) -> str | None:
    if text is None or text == "":
        return None
    text = str(text)
    return text if len(text) <= MAX_PROVIDER_TEXT else text[: MAX_PROVIDER_TEXT - 1] + "…"


def parse_response(
    body: bytes, params: EditParams | None = None, secrets: Sequence[str | None] = ()
) -> EditResult:
    """Turn the provider's JSON into an `EditResult`, or raise the matching `JuheError`.

    Every string the provider gave is cleaned of `secrets` (the API keys) first.
    """
    try:
        payload = _scrubbed(json.loads(body), secrets)
    except (ValueError, UnicodeDecodeError, RecursionError):
        # scrub a wide window before cutting, so a key across the cut is still masked
        snippet = scrub_text(body[: 4 * SNIPPET_CHARS + 1024].decode("utf-8", "replace"), *secrets)
        raise MalformedResponseError(
            "服务返回的不是 JSON", "the provider's answer is not JSON", detail=repr(snippet[:SNIPPET_CHARS])
        ) from None
    if not isinstance(payload, dict) or "error_code" not in payload:
        raise MalformedResponseError("缺少 error_code", "the provider's answer has no error_code")
    raw_code = payload["error_code"]
    # an integer, or a string of digits; true, 0.5 or "" must not read as success
    if isinstance(raw_code, bool) or not (
        isinstance(raw_code, int) or (isinstance(raw_code, str) and raw_code.strip().isdigit())
    ):
        raise MalformedResponseError("error_code 无效", "bad error_code", detail=_short(repr(raw_code)))
    code = int(raw_code)
    reason = payload.get("reason")
    result = payload.get("result")
    order_id = _short(result.get("orderid")) if isinstance(result, dict) else None
    if code != 0:
        raise error_for_code(code, _short(reason) if isinstance(reason, str) else None, order_id)
    images = result.get("images") if isinstance(result, dict) else None
    entries = [i for i in images if isinstance(i, dict)] if isinstance(images, list) else []
    urls = [entry.get("image") for entry in entries[:MAX_RESULT_LINKS]]
    if not urls or not all(is_http_url(u) for u in urls):
        raise MalformedResponseError("成功但没有图片链接", "success without image links", order_id=order_id)
    warnings = list(params.warnings) if params else []
    if len(entries) > MAX_RESULT_LINKS:
        warnings.append(
            f"服务返回了 {len(entries)} 个结果链接，只保留前 {MAX_RESULT_LINKS} 个 / the provider returned "
            f"{len(entries)} result links; only the first {MAX_RESULT_LINKS} are kept"
        )
    return EditResult(
        order_id=order_id or "",
        image_urls=urls,
        prompt=params.prompt if params else "",
        size=params.size if params else "",
        model=params.model if params else "auto",
        warnings=warnings,
    )
