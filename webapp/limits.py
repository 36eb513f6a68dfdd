"""Abuse limits for a public app: edits per minute per session and per client address."""

from __future__ import annotations

import collections
import ipaddress
import threading
import time
from collections.abc import Iterable

WINDOW_S = 60.0


def parse_trusted_proxies(spec: str) -> list[str]:
    """The entries of JUHE_TRUSTED_PROXIES (comma-separated addresses or networks), checked at startup.

    A bad entry raises `ValueError` naming it, rather than failing every visitor's edit later.
    """
    entries = [p.strip() for p in spec.split(",") if p.strip()]
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ValueError(
                f"JUHE_TRUSTED_PROXIES: {entry!r} is not an IP address or network "
                "(expected e.g. 10.0.0.1 or 10.0.0.0/8, comma-separated)"
            ) from None
    return entries


def forwarded_allow_ips(trusted_proxies: Iterable[str]) -> str:
    """The same proxies as uvicorn's FORWARDED_ALLOW_IPS (comma-separated networks; "" trusts none).

    Left unset, uvicorn trusts X-Forwarded-For from 127.0.0.1, so behind any local tunnel (an SSH
    forward, a share link) a visitor could write their own address.
    """
    return ",".join(str(ipaddress.ip_network(p, strict=False)) for p in trusted_proxies if p)


def client_address(peer: str | None, forwarded_for: str | None, trusted_proxies: Iterable[str]) -> str:
    """The visitor's address: `X-Forwarded-For` counts only when the direct peer is a trusted proxy.

    The right-most address not itself a trusted proxy is the one the proxy saw; anything left of it
    was written by the client and can be forged.
    """
    peer = peer or "unknown"
    networks = [ipaddress.ip_network(p, strict=False) for p in trusted_proxies if p]
    if not forwarded_for or not _in(peer, networks):
        return peer
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        if not _in(hop, networks):
            return hop
    return peer


def _in(address: str, networks: list) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


class RateLimiter:
    """A sliding one-minute window per key; `limit=0` turns it off.

    This bookkeeping is server-side on purpose: a limit kept in the visitor's own state could be
    reset by reloading the page.
    """

    def __init__(self, limit: int, window_s: float = WINDOW_S) -> None:
        self.limit = limit
        self.window_s = window_s
        self._hits: dict[str, collections.deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, *keys: str, now: float | None = None) -> float:
        """Seconds to wait if any key is over the limit (nothing recorded), else 0 (recorded)."""
        if self.limit <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        with self._lock:
            self._prune(now)
            wait = 0.0
            for key in keys:
                hits = self._hits.get(key)
                if hits is not None and len(hits) >= self.limit:
                    wait = max(wait, hits[0] + self.window_s - now)
            if wait > 0:
                return wait
            for key in keys:
                self._hits.setdefault(key, collections.deque()).append(now)
        return 0.0

    def _prune(self, now: float) -> None:
        for key in list(self._hits):
            hits = self._hits[key]
            while hits and hits[0] <= now - self.window_s:
                hits.popleft()
            if not hits:
                del self._hits[key]
