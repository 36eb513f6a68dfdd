"""One sliding-window counter for every per-minute limit: edits, uploads, bytes, logins, share pages.

Kept on the server on purpose: a limit kept in the visitor's own state could be reset by reloading
the page. Amounts are kept in one-second buckets per key, so a key costs at most 60 small entries;
an amount leaves the window when its second does (up to a second early, never late).
"""

from __future__ import annotations

import collections
import math
import threading
import time
from collections.abc import Callable, Iterable

WINDOW_S = 60.0


class Window:
    """Amounts per key over the last `window_s` seconds. Thread-safe."""

    def __init__(self, window_s: float = WINDOW_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self.clock = clock
        self._buckets: dict[str, collections.deque[list[float]]] = {}
        self._pruned = -math.inf
        self._lock = threading.Lock()

    def add(self, key: str, amount: float = 1) -> None:
        """Count `amount` for `key` now."""
        with self._lock:
            self._add(key, amount, self.clock())

    def total(self, key: str) -> float:
        """What `key` counted within the window."""
        with self._lock:
            self._prune(self.clock())
            return sum(amount for _, amount in self._buckets.get(key, ()))

    def retry_after(self, key: str) -> float:
        """Seconds until the oldest amount of `key` leaves the window (0 for none)."""
        with self._lock:
            buckets = self._buckets.get(key)
            return max(0.0, buckets[0][0] + self.window_s - self.clock()) if buckets else 0.0

    def clear(self, key: str) -> None:
        """Forget what `key` counted."""
        with self._lock:
            self._buckets.pop(key, None)

    def take(self, keys: Iterable[str], limit: float, amount: float = 1) -> float:
        """Atomically: when every key has room for `amount` under `limit`, count it for each and
        return 0; otherwise count nothing and return the seconds until the fullest key has room."""
        keys = list(dict.fromkeys(keys))
        with self._lock:
            now = self.clock()
            self._prune(now)
            wait = 0.0
            for key in keys:
                buckets = self._buckets.get(key, collections.deque())
                while buckets and buckets[0][0] <= now - self.window_s:
                    buckets.popleft()
                if sum(a for _, a in buckets) + amount > limit:
                    wait = max(wait, self._until_room(buckets, limit - amount, now))
            if wait > 0:
                return wait
            for key in keys:
                self._add(key, amount, now)
            return 0.0

    def _until_room(self, buckets, allowed: float, now: float) -> float:
        """Seconds until the buckets hold at most `allowed`, as the oldest leave the window."""
        held = sum(a for _, a in buckets)
        for second, amount in buckets:
            held -= amount
            if held <= allowed:
                return max(0.001, second + self.window_s - now)
        return self.window_s

    def _add(self, key: str, amount: float, now: float) -> None:
        buckets = self._buckets.setdefault(key, collections.deque())
        second = math.floor(now)
        if buckets and buckets[-1][0] == second:
            buckets[-1][1] += amount
        else:
            buckets.append([second, amount])

    def _prune(self, now: float) -> None:
        if now - self._pruned < 1:
            return
        self._pruned = now
        for key in list(self._buckets):
            buckets = self._buckets[key]
            while buckets and buckets[0][0] <= now - self.window_s:
                buckets.popleft()
            if not buckets:
                del self._buckets[key]
