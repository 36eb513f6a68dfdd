"""The one sliding-window counter (`webapp.window.Window`) behind every per-minute limit, and the edit
limit it keeps per visitor and per session (`Handlers.check_rate`). Fake clocks, no server."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import gradio as gr
import pytest

from webapp.handlers import Handlers
from webapp.settings import AppSettings
from webapp.window import Window


class Clock:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def at(clock: Clock, now: float) -> Clock:
    clock.now = now
    return clock


@pytest.fixture
def clock() -> Clock:
    return Clock()


# --- take: a limit over one or more keys --------------------------------------------------------


def test_take_allows_n_per_window_then_says_how_long_to_wait(clock):
    window = Window(clock=clock)
    taken = []
    for t in (0.0, 1.0, 2.0):
        at(clock, t)
        taken.append(window.take(["k"], 3))
    assert taken == [0, 0, 0]
    at(clock, 3.0)  # amounts are kept per second: the one of second 0 leaves the window at 60
    assert window.take(["k"], 3) == pytest.approx(57.0)
    at(clock, 59.0)
    assert window.take(["k"], 3) == pytest.approx(1.0)


def test_the_window_slides_and_refusals_are_not_counted(clock):
    window = Window(clock=clock)
    assert window.take(["k"], 2) == 0
    at(clock, 10.0)
    assert window.take(["k"], 2) == 0
    for t in (11.0, 20.0, 59.0, 59.5):  # refused: must not push the window further out
        at(clock, t)
        assert window.take(["k"], 2) > 0
    at(clock, 60.0)  # the amount of second 0 has left the window
    assert window.take(["k"], 2) == 0
    at(clock, 60.5)
    assert window.take(["k"], 2) == pytest.approx(9.5)  # the amounts of seconds 10 and 60 remain


def test_any_key_over_the_limit_refuses_and_counts_nothing(clock):
    window = Window(clock=clock)
    assert window.take(["session:1", "visitor:x"], 2) == 0
    assert window.take(["session:2", "visitor:x"], 2) == 0
    assert window.take(["session:3", "visitor:x"], 2) > 0  # a new session, same visitor
    assert window.total("session:3") == 0  # session 3 was not charged
    assert window.take(["session:3", "visitor:y"], 2) == 0
    assert window.take(["session:3", "visitor:y"], 2) == 0
    assert window.take(["session:3", "visitor:z"], 2) > 0  # now session 3 is over
    assert window.take(["k", "k"], 1) == 0 and window.total("k") == 1  # a key named twice counts once


def test_an_amount_larger_than_the_limit_is_never_taken(clock):
    window = Window(clock=clock)
    assert window.take(["bytes"], 100, amount=101) == 60.0
    assert window.total("bytes") == 0
    assert window.take(["bytes"], 100, amount=60) == 0
    assert window.take(["bytes"], 100, amount=41) > 0
    assert window.take(["bytes"], 100, amount=40) == 0 and window.total("bytes") == 100


def test_add_total_retry_after_and_clear(clock):
    window = Window(clock=clock)
    assert window.total("a") == 0 and window.retry_after("a") == 0
    window.add("a", 2.5)
    at(clock, 0.4)
    window.add("a")  # the same second: one bucket
    at(clock, 30.0)
    window.add("a", 4)
    assert window.total("a") == 7.5
    assert window.retry_after("a") == pytest.approx(30.0)  # when second 0 leaves
    at(clock, 61.0)
    assert window.total("a") == 4
    window.clear("a")
    assert window.total("a") == 0 and window.retry_after("a") == 0


def test_old_keys_are_forgotten(clock):
    window = Window(clock=clock)
    for n in range(1000):
        window.take([f"visitor:{n}"], 1)
    at(clock, 61.0)
    window.take(["visitor:new"], 1)
    assert list(window._buckets) == ["visitor:new"]  # memory stays bounded by the last minute's keys


def test_a_key_costs_at_most_one_bucket_per_second(clock):
    window = Window(clock=clock)
    for step in range(10 * 200):
        at(clock, step / 10)
        window.add("busy")
        assert window.total("busy") <= 610  # what the upload budget does after each chunk
    assert len(window._buckets["busy"]) <= 61


def test_the_limit_holds_under_concurrency(clock):
    window = Window(clock=clock)
    allowed = []
    barrier = threading.Barrier(8)

    def hammer():
        barrier.wait()
        allowed.extend(1 for _ in range(100) if window.take(["visitor:a"], 50) == 0)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(allowed) == 50 and window.total("visitor:a") == 50


# --- the edit limit ----------------------------------------------------------------------------


def handlers(clock: Clock, **env: str) -> Handlers:
    settings = AppSettings.from_mapping({"JUHE_TRUSTED_PROXIES": "10.0.0.1", **env})
    handlers = Handlers(settings, backend=None)
    handlers.edits = Window(clock=clock)
    return handlers


def request(address: str, session: str | None, peer: str = "10.0.0.1") -> SimpleNamespace:
    return SimpleNamespace(
        client=SimpleNamespace(host=peer), headers={"x-forwarded-for": address}, session_hash=session
    )


def test_a_rate_limit_of_zero_is_off(clock):
    limits = handlers(clock)
    for n in range(200):
        limits.check_rate(request("203.0.113.1", f"s{n % 3}"))
    limits.check_rate(None)


def test_edits_are_limited_per_visitor_and_per_session(clock):
    limits = handlers(clock, JUHE_RATE_LIMIT="2")
    limits.check_rate(request("203.0.113.1", "a"))
    limits.check_rate(request("203.0.113.1", "b"))
    with pytest.raises(gr.Error, match="Too many edits") as info:
        limits.check_rate(request("203.0.113.1", "c"))  # a new session, the same visitor
    assert "Try again in 60 s" in info.value.message  # when second 0 leaves the window
    limits.check_rate(request("203.0.113.2", "c"))  # session c was not charged
    limits.check_rate(request("203.0.113.3", "c"))
    with pytest.raises(gr.Error, match="Too many edits"):
        limits.check_rate(request("203.0.113.4", "c"))  # a new address, the same session
    limits.check_rate(request("203.0.113.5", None))  # MCP: no session, the visitor counts
    limits.check_rate(request("2001:db8::1", None))
    limits.check_rate(request("2001:db8::1:2", None))
    with pytest.raises(gr.Error, match="Too many edits"):  # the same /64
        limits.check_rate(request("2001:db8::2", None))
    with pytest.raises(gr.Error, match="Too many edits"):  # a forged left-most hop changes nothing
        limits.check_rate(request("198.51.100.1, 203.0.113.1", "d"))
    at(clock, 62.0)
    limits.check_rate(request("203.0.113.1", "c"))


def test_behind_an_untrusted_proxy_edits_are_limited_per_session_not_for_everyone(clock):
    space = {"SPACE_ID": "me/demo", "JUHE_API_KEY": "k-1", "JUHE_RATE_LIMIT": "1"}
    limits = handlers(clock, **space, JUHE_TRUSTED_PROXIES="10.9.9.9")
    proxy = "172.31.0.5"  # the platform's proxy, not trusted: its address is no visitor's
    limits.check_rate(request("203.0.113.7", "a", peer=proxy))
    with pytest.raises(gr.Error, match="Too many edits"):
        limits.check_rate(request("203.0.113.7", "a", peer=proxy))
    limits.check_rate(request("203.0.113.8", "b", peer=proxy))  # another visitor is not locked out
    limits.check_rate(request("203.0.113.9", None, peer=proxy))  # calls with neither share one key
    with pytest.raises(gr.Error, match="Too many edits"):
        limits.check_rate(request("203.0.113.10", None, peer=proxy))
