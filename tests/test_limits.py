"""Abuse limits, pure: edits per minute per key, and the client address (X-Forwarded-For only from
trusted proxies). The same limits in a running app are in test_app_limits.py."""

from __future__ import annotations

import threading

import pytest

from webapp.limits import RateLimiter, client_address, forwarded_allow_ips, parse_trusted_proxies

# --- RateLimiter -------------------------------------------------------------------------------


def test_limit_zero_is_off():
    limiter = RateLimiter(0)
    assert all(limiter.retry_after("session:s", "address:a", now=0.0) == 0 for _ in range(1000))


def test_limit_allows_n_per_window_then_says_how_long_to_wait():
    limiter = RateLimiter(3)
    assert [limiter.retry_after("k", now=t) for t in (0.0, 1.0, 2.0)] == [0, 0, 0]
    assert limiter.retry_after("k", now=3.0) == pytest.approx(57.0)
    assert limiter.retry_after("k", now=59.0) == pytest.approx(1.0)


def test_window_slides_and_refusals_are_not_counted():
    limiter = RateLimiter(2)
    limiter.retry_after("k", now=0.0)
    limiter.retry_after("k", now=10.0)
    for t in (11.0, 20.0, 59.0):  # refused: must not push the window further out
        assert limiter.retry_after("k", now=t) > 0
    assert limiter.retry_after("k", now=60.5) == 0  # the hit at 0 has left the window
    assert limiter.retry_after("k", now=61.0) == pytest.approx(9.0)  # hits at 10 and 60.5


def test_any_key_over_the_limit_refuses_and_records_nothing():
    limiter = RateLimiter(2)
    assert limiter.retry_after("session:1", "address:x", now=0.0) == 0
    assert limiter.retry_after("session:2", "address:x", now=1.0) == 0
    assert limiter.retry_after("session:3", "address:x", now=2.0) > 0  # a new session, same address
    assert limiter.retry_after("session:3", "address:y", now=3.0) == 0  # session 3 was not charged
    assert limiter.retry_after("session:3", "address:y", now=4.0) == 0
    assert limiter.retry_after("session:3", "address:z", now=5.0) > 0  # now session 3 is over


def test_old_keys_are_forgotten():
    limiter = RateLimiter(1)
    for n in range(1000):
        limiter.retry_after(f"address:{n}", now=0.0)
    limiter.retry_after("address:new", now=61.0)
    assert len(limiter._hits) == 1  # memory stays bounded by the visitors of the last minute


def test_limit_holds_under_concurrency():
    limiter = RateLimiter(50)
    allowed = []
    barrier = threading.Barrier(8)

    def hammer():
        barrier.wait()
        allowed.extend(1 for _ in range(100) if limiter.retry_after("address:a", now=0.0) == 0)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(allowed) == 50


# --- client addresses ----------------------------------------------------------------------------

ADDRESSES = [
    # peer, X-Forwarded-For, trusted proxies, the visitor's address
    ("203.0.113.5", None, [], "203.0.113.5"),
    ("203.0.113.5", "1.2.3.4", [], "203.0.113.5"),
    ("203.0.113.5", "1.2.3.4", ["10.0.0.0/8"], "203.0.113.5"),
    ("10.0.0.2", "1.2.3.4", ["10.0.0.0/8"], "1.2.3.4"),
    ("10.0.0.2", "6.6.6.6, 1.2.3.4", ["10.0.0.0/8"], "1.2.3.4"),
    ("10.0.0.2", "1.2.3.4, 10.0.0.9", ["10.0.0.0/8"], "1.2.3.4"),
    ("10.0.0.2", "10.0.0.7, 10.0.0.9", ["10.0.0.0/8"], "10.0.0.2"),
    ("10.0.0.2", "", ["10.0.0.0/8"], "10.0.0.2"),
    ("10.0.0.2", "garbage, 1.2.3.4", ["10.0.0.0/8"], "1.2.3.4"),
    ("::1", "2001:db8::1", ["::1"], "2001:db8::1"),
    (None, "1.2.3.4", [], "unknown"),
]


@pytest.mark.parametrize(("peer", "forwarded", "proxies", "expected"), ADDRESSES)
def test_client_address(peer, forwarded, proxies, expected):
    assert client_address(peer, forwarded, proxies) == expected


def test_trusted_proxies_are_checked_when_read():
    assert parse_trusted_proxies(" 10.0.0.0/8, 192.168.1.1 ,::1,") == ["10.0.0.0/8", "192.168.1.1", "::1"]
    assert parse_trusted_proxies("") == []
    with pytest.raises(ValueError, match="'proxy.local' is not an IP address"):
        parse_trusted_proxies("10.0.0.1, proxy.local")


def test_uvicorn_is_told_the_same_proxies():
    assert forwarded_allow_ips([]) == ""
    assert forwarded_allow_ips(["10.0.0.1", "10.1.2.3/8", "::1"]) == "10.0.0.1/32,10.0.0.0/8,::1/128"


def test_the_page_script_gets_limits_and_words_from_python_safely():
    """app.js types no figure or word: both come from juhe and texts.py, and no text can end the
    <script> they are written into."""
    import json

    from webapp.texts import PAGE_SCRIPT_TEXTS, page_script

    script = page_script()
    assert script.startswith("<script>window.JUHE = ") and script.count("</script>") == 1
    payload = json.loads(script.removeprefix("<script>window.JUHE = ").split("; window.JUHE_LIMITS")[0])
    assert payload["limits"] == {"promptChars": 800, "minSide": 512, "maxSide": 2048}
    assert set(payload["texts"]) == set(PAGE_SCRIPT_TEXTS)
