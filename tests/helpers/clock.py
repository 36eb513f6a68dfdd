"""A clock the test moves by hand, for the result store, the sweep and the spend guard."""

from __future__ import annotations

T0 = 1_750_000_000.0


class Clock:
    """A settable clock, in seconds since the epoch."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
