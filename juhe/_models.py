"""The value objects the clients return."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone


def now_iso() -> str:
    """The current UTC time as ISO 8601 with seconds."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class EditResult:
    """A successful edit: the order id, the result links, and the parameters that produced it."""

    order_id: str
    image_urls: list[str]
    prompt: str = ""
    size: str = ""  # "" means the provider kept the input's aspect ratio
    model: str = "auto"
    warnings: list[str] = field(default_factory=list)
    requested_at: str = field(default_factory=now_iso)
    completed_at: str = field(default_factory=now_iso)
    elapsed_s: float = 0.0

    def to_dict(self) -> dict:
        """A JSON-ready copy."""
        return asdict(self)
