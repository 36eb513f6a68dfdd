"""Who is asking (`webapp.visitors`): one visitor key for every limit; X-Forwarded-For only from
trusted proxies; IPv6 by /64; uvicorn told the same proxies. Pure functions."""

from __future__ import annotations

import pytest

from webapp.settings import AppSettings
from webapp.visitors import (
    address_key,
    forwarded_allow_ips,
    networks,
    visitor_address,
    visitor_key,
    within,
)

TRUSTED = ("10.0.0.0/8", "127.0.0.1")


@pytest.mark.parametrize(
    ("peer", "forwarded", "behind", "expected"),
    [
        ("203.0.113.9", None, False, "203.0.113.9"),  # direct
        ("203.0.113.9", "1.2.3.4", False, "203.0.113.9"),  # forged by an untrusted peer
        ("10.1.2.3", "1.2.3.4, 203.0.113.9", False, "203.0.113.9"),  # trusted proxy: right-most
        ("10.1.2.3", "1.2.3.4, 203.0.113.9", True, "203.0.113.9"),  # Space, proxy trusted
        ("203.0.113.9", "1.2.3.4, 203.0.113.9", True, "203.0.113.9"),  # Space, uvicorn rewrote the peer
        ("1.2.3.4", "1.2.3.4, 203.0.113.9", True, None),  # ... to a hop the visitor wrote: not theirs
        ("10.1.2.3", "203.0.113.9, 10.9.9.9", True, "203.0.113.9"),  # trusted hops skipped
        ("10.1.2.3", "garbage, 1.2.3.4", False, "1.2.3.4"),
        ("10.1.2.3", "10.0.0.7, 10.0.0.9", False, "10.1.2.3"),  # only trusted hops: the peer
        ("10.1.2.3", "", False, "10.1.2.3"),
        ("172.31.0.5", "203.0.113.9", True, None),  # Space, proxy not trusted: its address is no one's
        ("172.31.0.5", "172.31.0.5, 203.0.113.9", True, None),  # ... even if a visitor writes it in
        ("10.1.2.3", None, True, None),  # Space, nothing forwarded
        (None, "1.2.3.4", False, None),
    ],
)
def test_visitor_address(peer, forwarded, behind, expected):
    assert visitor_address(peer, forwarded, TRUSTED, behind) == expected


@pytest.mark.parametrize(
    ("peer", "forwarded", "proxies", "behind", "expected"),
    [
        ("203.0.113.5", None, [], False, "203.0.113.5"),
        ("203.0.113.5", "1.2.3.4", ["10.0.0.0/8"], False, "203.0.113.5"),
        ("10.0.0.2", "6.6.6.6, 1.2.3.4", ["10.0.0.0/8"], False, "1.2.3.4"),
        ("::1", "2001:db8::1", ["::1"], False, "2001:db8::/64"),
        ("2001:db8:0:0:1::5", None, [], False, "2001:db8::/64"),
        ("::ffff:203.0.113.9", None, [], False, "203.0.113.9"),
        # behind an untrusted proxy: the peer's address, so no visitor locks out another through it
        ("172.31.0.5", "203.0.113.9", ["10.0.0.0/8"], True, "172.31.0.5"),
        (None, "1.2.3.4", [], False, "unknown"),
        ("not-an-address", None, [], False, "not-an-address"),
    ],
)
def test_visitor_key(peer, forwarded, proxies, behind, expected):
    assert visitor_key(peer, forwarded, proxies, behind) == expected


def test_an_ipv6_visitor_is_counted_by_their_64():
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1")
    assert address_key("::ffff:203.0.113.9") == "203.0.113.9"
    assert address_key("203.0.113.9") == "203.0.113.9"


def test_networks_and_within():
    nets = networks(["10.0.0.0/8", "", "192.168.1.1", "::1"])
    assert [str(net) for net in nets] == ["10.0.0.0/8", "192.168.1.1/32", "::1/128"]
    assert within("10.200.0.1", nets) and within("::1", nets) and within("192.168.1.1", nets)
    assert not within("192.168.1.2", nets) and not within(None, nets) and not within("garbage", nets)
    assert not within("10.0.0.1", [])


def test_uvicorn_is_told_the_same_proxies():
    assert forwarded_allow_ips([]) == ""
    assert forwarded_allow_ips(["10.0.0.1", "10.1.2.3/8", "::1"]) == "10.0.0.1/32,10.0.0.0/8,::1/128"


def test_a_space_trusts_its_proxy():
    settings = AppSettings.from_mapping({"SPACE_ID": "me/demo", "JUHE_API_KEY": "k-1"})
    assert settings.on_space
    assert visitor_key("10.20.30.40", "203.0.113.9", settings.trusted_proxies, True) == "203.0.113.9"
    assert visitor_key("127.0.0.1", "1.2.3.4, 203.0.113.9", settings.trusted_proxies, True) == "203.0.113.9"
    # uvicorn, told the same proxies, hands the app the visitor's address as the peer
    assert visitor_key("203.0.113.9", "203.0.113.9", settings.trusted_proxies, True) == "203.0.113.9"
