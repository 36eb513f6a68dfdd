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

from ._exceptions import JuheError, MalformedResponseError, error_for_code
from ._images import ImageInput, PreparedImage, invalid, prepare_image
from ._models import EditResult

MAX_PROMPT_CHARS = 800
MIN_SIDE, MAX_SIDE = 512, 2048
MAX_IMAGES = 3
AUTO_SIZES = (None, "", "auto")
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
            f"提示词超过 {MAX_PROMPT_CHARS} 字符, 已截断 / the prompt has {len(text)} characters; "
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


def check_params(prompt: object, images: object, size: object = None, model: object = None) -> EditParams:
    """Validate everything that needs no image decoding; raise before any I/O."""
    text, notes = normalise_prompt(prompt)
    if isinstance(images, (str, bytes, bytearray)) or not isinstance(images, Sequence):
        images = [images]
    items = tuple(i for i in images if i is not None and i != "")
    if not 1 <= len(items) <= MAX_IMAGES:
        raise invalid("需要 1 到 3 张图片", f"an edit takes 1 to {MAX_IMAGES} images, got {len(items)}")
    model_name = "auto" if model is None else str(model).strip() or "auto"
    if not model_name.isprintable():
        raise invalid("模型名含有控制字符", "the model name holds control characters")
    return EditParams(text, items, parse_size(size), model_name, tuple(notes))


def image_budget(max_body_bytes: int, params: EditParams, api_key: str) -> int:
    """Escaped bytes each data image may take so the whole body stays within `max_body_bytes`."""
    fixed = _FORM_OVERHEAD + 3 * len(api_key) + 9 * len(params.prompt.encode()) + 64
    urls = [i for i in params.images if isinstance(i, str) and i.lower().startswith("http")]
    fixed += sum(3 * len(u) for u in urls)
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


def parse_response(body: bytes, params: EditParams | None = None) -> EditResult:
    """Turn the provider's JSON into an `EditResult`, or raise the matching `JuheError`."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        snippet = body[:80].decode("utf-8", "replace")
        raise MalformedResponseError(
            f"malformed response: 服务返回的不是 JSON / the provider's answer is not JSON: {snippet!r}"
        ) from None
    if not isinstance(payload, dict) or "error_code" not in payload:
        raise MalformedResponseError(
            "malformed response: 缺少 error_code / the provider's answer has no error_code"
        )
    raw_code = payload["error_code"]
    # an integer, or a string of digits; true, 0.5 or "" must not read as success
    if isinstance(raw_code, bool) or not (
        isinstance(raw_code, int) or (isinstance(raw_code, str) and raw_code.strip().isdigit())
    ):
        raise MalformedResponseError(f"malformed response: error_code 无效 / bad error_code {raw_code!r}")
    code = int(raw_code)
    reason = payload.get("reason")
    result = payload.get("result")
    order_id = result.get("orderid") if isinstance(result, dict) else None
    if code != 0:
        raise error_for_code(code, reason if isinstance(reason, str) else None, order_id)
    images = result.get("images") if isinstance(result, dict) else None
    urls = [i.get("image") for i in images if isinstance(i, dict)] if isinstance(images, list) else []
    if not urls or not all(isinstance(u, str) and u.startswith(("http://", "https://")) for u in urls):
        raise MalformedResponseError(
            "malformed response: 成功但没有图片链接 / success without image links",
            order_id=order_id,
        )
    return EditResult(
        order_id=str(order_id or ""),
        image_urls=urls,
        prompt=params.prompt if params else "",
        size=params.size if params else "",
        model=params.model if params else "auto",
        warnings=list(params.warnings) if params else [],
    )


def scrub(error: JuheError, secret: str | None) -> JuheError:
    """Remove a secret from an error's message, in case a server echoed it."""
    if secret and len(secret) >= 6 and secret in error.message:
        error.message = error.message.replace(secret, "***")
        error.args = (error.message,)
    if secret and len(secret) >= 6 and error.reason and secret in error.reason:
        error.reason = error.reason.replace(secret, "***")
    return error
