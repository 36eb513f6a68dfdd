"""What the page shows of a result on show (issue 18): its whole record as a small Markdown panel, and
the API call that would make it again, rebuilt from the record for a result opened from the history.

Pure functions but `sidecar_facts`, which reads the result's JSON sidecar (bounded): call it from a
worker thread.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from webapp import snippets
from webapp.store import Record
from webapp.texts import record_say

MAX_SIDECAR_BYTES = 1024 * 1024  # a larger sidecar is not read: the call is then shown for 图1 alone
MAX_IMAGES = 3
# Every ASCII punctuation mark may be backslash-escaped in Markdown: escaped, none of the provider's
# or the visitor's text can become a link, an image, emphasis or HTML
_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")


def md_text(text: str, limit: int = 2000) -> str:
    """Text from outside (an instruction) as plain Markdown text on one line: every mark escaped,
    line breaks and runs of spaces made one space (an indented line would become a code block)."""
    return _PUNCTUATION.sub(r"\\\1", " ".join(str(text).split())[:limit])


def md_code(text: str) -> str:
    """Provider text (an order id, a model name, a time) as Markdown code: nothing in it can close
    the span or become markup."""
    return "`" + re.sub(r"[^\w.:+*-]", "_", str(text))[:80] + "`"


def record_text(record: Record | None, chinese: bool, prompt: str = "", order: str = "") -> str:
    """The record panel: instruction, size, model, time and order id of a result. `prompt` and
    `order` are what the page itself knows, used when the store no longer has the record."""
    unknown = record_say("unknown", chinese)
    if record is None:
        fields = [("prompt", md_text(prompt) or unknown), ("order", md_code(order) if order else unknown)]
    else:
        size = f"{record.width}×{record.height}" if record.width and record.height else unknown
        if record.size:
            size += f" ({record_say('asked', chinese, size=md_code(record.size))})"
        fields = [
            ("prompt", md_text(record.prompt) or unknown),
            ("size", size),
            ("model", md_code(record.model) if record.model else unknown),
            ("time", md_code(record.completed_at) if record.completed_at else unknown),
            ("order", md_code(record.order_id) if record.order_id else unknown),
        ]
    colon = "：" if chinese else ": "
    # a hard line break ("\\" at the end of a line) per field: one short line each, even on a phone
    return "\\\n".join(f"**{record_say(key, chinese)}**{colon}{value}" for key, value in fields)


def sidecar_facts(sidecar: Path | None) -> dict:
    """What the result's JSON sidecar says about the call: how many images were sent, whether the
    answer was brought to 图1's size, and a region edit's plan. Empty when it cannot be read."""
    try:
        if sidecar is None or sidecar.stat().st_size > MAX_SIDECAR_BYTES:
            return {}
        data = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def record_call(record: Record, facts: dict, *, endpoint: str, app_url: str, offline: bool) -> snippets.Call:
    """The API call of a result opened again, from its record and sidecar. The page no longer knows the
    files the visitor chose: they are named image1.png, image2.png… (what the snippets then read)."""
    inputs = facts.get("inputs_sha256")
    count = min(max(len(inputs), 1), MAX_IMAGES) if isinstance(inputs, list) else 1
    names = tuple(f"image{n}.png" for n in range(1, count + 1))
    region = facts.get("region") if isinstance(facts.get("region"), dict) else None
    return snippets.Call(
        prompt=record.prompt,
        images=names,
        mimes=("image/png",) * count,
        size=record.size,  # what the provider was sent, as in the call made at the time
        model=record.model or "auto",
        endpoint=endpoint,
        app_url=app_url,
        original=region is not None or facts.get("result") in ("stitched", "resized"),
        region=region,
        offline=offline,
    )
