"""The value objects the clients return."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from typing import Any


def now_iso() -> str:
    """The current UTC time as ISO 8601 with seconds."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class EditResult:
    """A successful edit: the order id, the result links, and the parameters that produced it."""

    order_id: str
    image_urls: list[str]
    prompt: str = ""
    size: str = ""  # what the provider was asked for; "" means it kept the input's aspect ratio
    model: str = "auto"
    warnings: list[str] = field(default_factory=list)
    requested_at: str = field(default_factory=now_iso)
    completed_at: str = field(default_factory=now_iso)
    elapsed_s: float = 0.0
    output_size: str = ""  # "W*H" of 图1 when the saved result is brought to it (region, "original")
    region: dict | None = None  # a region edit's plan: crop box, padding, feather, painted box, ...
    inputs: list[dict] = field(default_factory=list)  # per image: SHA-256, how sent, metadata removed
    # What `download` needs to stitch or resize (图1 and the mask as given): not part of the JSON
    _job: Any = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        """A JSON-ready copy."""
        public = (f.name for f in fields(self) if not f.name.startswith("_"))
        return {name: copy.deepcopy(getattr(self, name)) for name in public}
