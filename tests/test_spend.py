"""The spend cap on its own: today's edits on the server's key, taken atomically, kept in a file."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone

import pytest

from webapp.spend import SPEND_FILE, DailyLimitError, DailySpend


class Clock:
    """A UTC clock that moves only when told."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 27, 23, 59, 0, tzinfo=timezone.utc))


def test_reserve_counts_up_to_the_limit_then_refuses(tmp_path, clock):
    spend = DailySpend(tmp_path / SPEND_FILE, 3, clock)
    for _ in range(3):
        spend.reserve()
    with pytest.raises(DailyLimitError) as info:
        spend.reserve()
    assert info.value.limit == 3 and spend.used() == 3
    with pytest.raises(DailyLimitError):
        spend.check()


def test_the_count_starts_over_at_midnight_utc(tmp_path, clock):
    spend = DailySpend(tmp_path / SPEND_FILE, 1, clock)
    spend.reserve()
    with pytest.raises(DailyLimitError):
        spend.reserve()
    clock.now += timedelta(minutes=1)  # 00:00 UTC, though 08:00 in Beijing since the day before
    spend.reserve()
    assert spend.used() == 1


def test_a_local_clock_is_read_as_utc(tmp_path):
    beijing = timezone(timedelta(hours=8))
    clock = Clock(datetime(2026, 11, 28, 7, 0, tzinfo=beijing))  # 2026-11-27 23:00 UTC
    DailySpend(tmp_path / SPEND_FILE, 5, clock).reserve()
    assert json.loads((tmp_path / SPEND_FILE).read_text())["day"] == "2026-11-27"


def test_the_count_survives_a_restart(tmp_path, clock):
    path = tmp_path / "out" / SPEND_FILE
    first = DailySpend(path, 2, clock)
    first.reserve()
    first.reserve()
    again = DailySpend(path, 2, clock)
    assert again.used() == 2
    with pytest.raises(DailyLimitError):
        again.reserve()
    clock.now += timedelta(days=1)
    assert DailySpend(path, 2, clock).used() == 0  # yesterday's count is not today's
    assert [p.name for p in path.parent.iterdir()] == [SPEND_FILE]  # no staging file left behind


@pytest.mark.parametrize(
    "content",
    ["", "{", "[]", '{"day": "2026-11-27"}', '{"day": 5, "used": 1}', '{"day": "2026-11-27", "used": -3}'],
)
def test_a_corrupt_file_is_tolerated_and_rewritten(tmp_path, clock, caplog, content):
    path = tmp_path / SPEND_FILE
    path.write_text(content)
    spend = DailySpend(path, 2, clock)
    assert spend.used() == 0 and "unreadable" in caplog.text
    spend.reserve()
    assert json.loads(path.read_text())["used"] == 1


def test_a_burst_cannot_overshoot(tmp_path, clock):
    spend = DailySpend(tmp_path / SPEND_FILE, 10, clock)
    taken, refused = [], []
    start = threading.Barrier(40)

    def one() -> None:
        start.wait()
        try:
            spend.reserve()
            taken.append(1)
        except DailyLimitError:
            refused.append(1)

    threads = [threading.Thread(target=one) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (len(taken), len(refused)) == (10, 30)
    assert json.loads((tmp_path / SPEND_FILE).read_text())["used"] == 10


def test_guard_takes_a_slot_only_when_the_request_is_about_to_be_sent(tmp_path, clock):
    spend = DailySpend(tmp_path / SPEND_FILE, 1, clock)
    stages: list[str] = []
    on_stage = spend.guard(stages.append)
    on_stage("preparing")
    assert spend.used() == 0
    on_stage("waiting")
    assert spend.used() == 1 and stages == ["preparing", "waiting"]
    second = spend.guard(stages.append)
    second("preparing")
    with pytest.raises(DailyLimitError):
        second("waiting")  # raised before the client sends: nothing goes out
    assert stages == ["preparing", "waiting", "preparing"]
    spend.guard(None)("preparing")  # no callback of its own


def test_a_set_is_reserved_whole_and_unsent_ones_are_refunded(tmp_path):
    spend = DailySpend(tmp_path / "spend.json", 5)
    day = spend.reserve(4)
    with pytest.raises(DailyLimitError) as info:
        spend.reserve(4)  # only 1 left: nothing taken
    assert (info.value.left, info.value.asked) == (1, 4) and spend.used() == 4
    spend.refund(2, day)  # two of the set were never sent
    assert spend.used() == 2
    spend.refund(1, "1999-01-01")  # a reservation of another day gives nothing back today
    assert spend.used() == 2
