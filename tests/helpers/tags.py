"""Per-test tags: how a test tells its own requests apart at a shared provider."""

from __future__ import annotations

import uuid


def marker() -> str:
    """A tag that makes one prompt (and so its requests at the simulator) unique."""
    return "t" + uuid.uuid4().hex[:12]
