"""Parsing JUHE_TRUSTED_PROXIES (moves into webapp.settings)."""

from __future__ import annotations

import ipaddress


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
