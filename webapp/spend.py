"""The spend cap of a public demo: live edits per UTC day on the server's key, across every visitor
and API or MCP caller, kept across restarts in a small file in the output folder.

A run's edits (one, or a set of variants) are reserved together under a lock just before they are
sent, so a burst cannot overshoot and a set is never sent in part; an edit the client refused before
sending is refunded, while one that then fails, times out or is cancelled still counts, as the
provider may have billed it. Visitors' own keys and the offline simulator are neither counted nor refused.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

SPEND_FILE = ".daily-spend.json"

log = logging.getLogger(__name__)


class DailyLimitError(Exception):
    """Today's (UTC) edits on the server's key are used up, or fewer are `left` than a set asked for."""

    def __init__(self, limit: int, left: int = 0, asked: int = 1) -> None:
        if left:
            super().__init__(
                f"only {left} of today's {limit} edits on the server's key are left, {asked} asked"
            )
        else:
            super().__init__(f"the daily limit of {limit} edits on the server's key is used up")
        self.limit = limit
        self.left = left
        self.asked = asked


def utc_now() -> datetime:
    """The current time in UTC."""
    return datetime.now(timezone.utc)


class DailySpend:
    """Edits sent on the server's key today (UTC), at most `limit`, saved in `path` at every change."""

    def __init__(self, path: Path, limit: int, clock: Callable[[], datetime] = utc_now) -> None:
        self.path = path
        self.limit = limit
        self.clock = clock
        self._lock = threading.Lock()
        self._day, self._used = self._load()

    def used(self) -> int:
        """Edits counted today."""
        with self._lock:
            self._roll()
            return self._used

    def check(self, n: int = 1) -> None:
        """Raise `DailyLimitError` if fewer than `n` are left today; takes nothing."""
        left = max(0, self.limit - self.used())
        if left < n:
            raise DailyLimitError(self.limit, left, n)

    def reserve(self, n: int = 1) -> str:
        """Take `n` of today's edits at once, or none and raise `DailyLimitError` (a set of variants
        is sent whole or not at all); saved before it returns. Returns the day counted, for `refund`."""
        with self._lock:
            self._roll()
            left = max(0, self.limit - self._used)
            if left < n:
                raise DailyLimitError(self.limit, left, n)
            self._used += n
            self._save()
            return self._day

    def refund(self, n: int, day: str) -> None:
        """Give back `n` edits reserved on `day` that were never sent; a reservation of an earlier
        day is not refunded, as that day's count is gone."""
        with self._lock:
            self._roll()
            if n <= 0 or day != self._day:
                return
            self._used = max(0, self._used - n)
            self._save()

    def guard(self, on_stage: Callable[[str], None] | None) -> Callable[[str], None]:
        """An `on_stage` callback for the client that takes a slot just before the request is sent
        (raising there aborts the call with nothing sent), then tells `on_stage`."""

        def staged(stage: str) -> None:
            if stage == "waiting":
                self.reserve()
            if on_stage is not None:
                on_stage(stage)

        return staged

    def _today(self) -> str:
        return self.clock().astimezone(timezone.utc).date().isoformat()

    def _roll(self) -> None:
        today = self._today()
        if today != self._day:
            self._day, self._used = today, 0

    def _load(self) -> tuple[str, int]:
        today = self._today()
        try:
            saved = json.loads(self.path.read_text(encoding="utf-8"))
            day, used = saved["day"], saved["used"]
            if not isinstance(day, str) or not isinstance(used, int) or isinstance(used, bool) or used < 0:
                raise ValueError("unexpected values")
        except FileNotFoundError:
            return today, 0
        except (OSError, ValueError, KeyError, TypeError) as exc:
            # Written atomically, so only a hand edit or a disk fault gets here; counting restarts.
            log.warning("spend cap: %s is unreadable (%s); counting today's edits from 0", self.path, exc)
            return today, 0
        return (day, used) if day == today else (today, 0)

    def _save(self) -> None:
        """Write the count to a temporary file beside `path`, then rename it over `path`: a reader
        (or a restart after a crash) sees the old count or the new, never a part."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, staging = tempfile.mkstemp(dir=self.path.parent, prefix=f"{self.path.name}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    json.dump({"day": self._day, "used": self._used, "limit": self.limit}, handle)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(staging, self.path)
            except BaseException:
                Path(staging).unlink(missing_ok=True)
                raise
        except OSError as exc:  # the count still holds in memory until a restart
            log.warning("spend cap: could not save %s (%s)", self.path, exc)
