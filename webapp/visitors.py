"""Who is asking: one visitor key for every limit (edits, uploads, logins, share pages, the gate).

Directly reachable, a visitor is their connection's address; `X-Forwarded-For` counts only when the
connection comes from a trusted proxy (the right-most hop that is not itself a trusted proxy: what
the proxy saw; anything left of it the client could write). Behind a platform's proxy (a Space)
every connection comes from that proxy, so an address counts only when a trusted proxy appended it;
otherwise it would be the proxy's own, shared by every visitor, and the key falls back to the peer.
An IPv6 visitor is counted by their /64, the network one subscriber gets, so cycling through their
own addresses does not dodge a limit.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

IPV6_PREFIX = 64

Networks = Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]


def networks(entries: Iterable[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The networks of JUHE_TRUSTED_PROXIES entries (addresses or networks, checked at start)."""
    return [ipaddress.ip_network(entry, strict=False) for entry in entries if entry]


def within(address: str | None, nets: Networks) -> bool:
    """True when `address` is an IP address inside one of `nets`."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    return any(ip in net for net in nets)


def visitor_address(
    peer: str | None, forwarded_for: str | None, trusted: Iterable[str], behind_proxy: bool = False
) -> str | None:
    """The visitor's own address, or None where it cannot be told (behind a proxy that added none)."""
    nets = networks(trusted)
    hops = [hop.strip() for hop in (forwarded_for or "").split(",") if hop.strip()]
    appended = next((hop for hop in reversed(hops) if not within(hop, nets)), None)
    if within(peer, nets) and appended is not None:
        return appended
    if behind_proxy:  # the peer counts only where uvicorn already replaced it by the appended hop
        return peer if peer and peer == appended else None
    return peer or None


def address_key(address: str) -> str:
    """What per-address limits count an address as: itself, or for IPv6 its /64 network."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/{IPV6_PREFIX}", strict=False))
    return str(ip)


def visitor_key(
    peer: str | None, forwarded_for: str | None, trusted: Iterable[str], behind_proxy: bool = False
) -> str:
    """The one key every per-visitor limit counts by: the visitor's address (IPv6 by /64), else the
    direct peer's, else "unknown"."""
    address = visitor_address(peer, forwarded_for, trusted, behind_proxy)
    return address_key(address or peer or "unknown")


def forwarded_allow_ips(trusted: Iterable[str]) -> str:
    """The same proxies as uvicorn's FORWARDED_ALLOW_IPS (comma-separated networks; "" trusts none).

    Left unset, uvicorn trusts X-Forwarded-For from 127.0.0.1, so behind any local tunnel (an SSH
    forward, a share link) a visitor could write their own address.
    """
    return ",".join(str(net) for net in networks(trusted))
