"""Variants (issue 19) through the public `/edit` endpoint: N calls sent at once, admitted whole.

Live apps talk to their own loopback `Simulator` (the daily cap applies to the server's key only),
so a test sees exactly what was sent; every prompt carries the test's own marker and the counts
are of that marker's requests, never global totals.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from helpers.apphost import RunningApp, is_bilingual, running_app
from helpers.paths import CAT
from helpers.tags import marker

from juhe.simulator import Simulator

pytestmark = [pytest.mark.app, pytest.mark.loopback, pytest.mark.timeout(120)]


def edit(running: RunningApp, prompt: str, headers: dict | None = None, **params) -> tuple[str, dict]:
    """One `/edit` call from a new session; returns (image, record)."""
    client = running.client(headers=headers) if headers else running.client()
    return client.predict(handle_file(str(CAT)), prompt, api_name="/edit", **params)


def refused(running: RunningApp, prompt: str, **params) -> str:
    """Call `/edit` expecting a refusal; return its (bilingual) message."""
    with pytest.raises(AppError) as info:
        edit(running, prompt, **params)
    assert is_bilingual(info.value.message), info.value.message
    return info.value.message


def fault(provider: Simulator, *faults: str) -> None:
    """Queue faults for the provider's next requests, in order."""
    httpx.post(
        f"{provider.base_url}/_sim/faults", json={"next": list(faults)}, timeout=10, trust_env=False
    ).raise_for_status()


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> Iterator[RunningApp]:
    with running_app(tmp_path_factory.mktemp("variants"), JUHE_CONCURRENCY="4") as running:
        yield running


def test_three_variants_give_three_files_and_links_in_the_record(live):
    tag = marker()
    image, record = edit(live, f"variants {tag}", variants=3)
    assert len(live.requests_with(tag)) == 3  # three billed calls, one image each
    assert len(record["images"]) == 3 and len(set(record["images"])) == 3
    assert [v["index"] for v in record["variants"]] == [0, 1, 2]
    orders = {v["order_id"] for v in record["variants"]}
    assert len(orders) == 3 and record["order_id"] == record["variants"][0]["order_id"]
    for link in record["images"]:
        answer = httpx.get(link, timeout=10, trust_env=False)
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("image/")
    # the image output is the first variant's
    first = httpx.get(record["variants"][0]["images"][0], timeout=10, trust_env=False).content
    assert httpx.get(image["url"], timeout=10, trust_env=False).content == first


def test_one_variant_keeps_the_record_callers_knew(live):
    tag = marker()
    _, record = edit(live, f"single {tag}")
    assert "variants" not in record and len(record["images"]) == 1
    assert len(live.requests_with(tag)) == 1


@pytest.mark.parametrize("value", [True, 2.5, 2.0, 0, 5, -1, "2"], ids=repr)
def test_a_bad_variants_value_is_refused_before_anything_is_sent(live, value):
    tag = marker()
    message = refused(live, f"bad variants {tag}", variants=value)
    assert "variants must be a whole number from 1 to 4" in message and "变体数" in message
    assert live.requests_with(tag) == []


def test_a_failed_variant_leaves_the_others(tmp_path):
    with running_app(tmp_path, JUHE_CONCURRENCY="3") as running:
        tag = marker()
        fault(running.provider, "282504")  # the first request the provider sees fails
        _, record = edit(running, f"one fails {tag}", variants=3)
        assert len(running.requests_with(tag)) == 3
        errors = [v for v in record["variants"] if "error" in v]
        made = [v for v in record["variants"] if "order_id" in v]
        assert len(errors) == 1 and errors[0]["error"]["code"] == 282504
        assert len(made) == 2 and len(record["images"]) == 2


def test_the_daily_cap_admits_a_set_whole_or_not_at_all(tmp_path):
    """JUHE_DAILY_LIMIT=5 on the server's key: 4, then 4 more is refused before anything is sent,
    saying only 1 is left; 1 still fits, and then nothing does. The provider saw 5, never more."""
    with running_app(tmp_path, JUHE_DAILY_LIMIT="5", JUHE_CONCURRENCY="4") as running:
        tag = marker()
        _, record = edit(running, f"cap a {tag}", variants=4)
        assert len(record["images"]) == 4
        message = refused(running, f"cap b {tag}", variants=4)
        assert "Only 1 left today" in message and "nothing was sent" in message
        assert "只剩 1 次" in message
        assert len(running.requests_with(f"cap b {tag}")) == 0  # no part of the set went out
        _, record = edit(running, f"cap c {tag}", variants=1)
        assert len(record["images"]) == 1
        assert "daily quota of 5 edits is used up" in refused(running, f"cap d {tag}", variants=2)
        assert len(running.requests_with(tag)) == 5
        assert running.backend.spend.used() == 5


def test_the_rate_limit_counts_every_variant(tmp_path):
    with running_app(tmp_path, JUHE_RATE_LIMIT="3", JUHE_CONCURRENCY="4") as running:
        tag = marker()
        headers = {"X-Forwarded-For": "198.51.100.9"}  # one visitor (its address is 127.0.0.1 anyway)
        message = refused(running, f"rate a {tag}", variants=4)
        assert "At most 3 edits per minute: 4 variants" in message
        _, record = edit(running, f"rate b {tag}", headers=headers, variants=2)
        assert len(record["images"]) == 2
        message = refused(running, f"rate c {tag}", variants=2)
        assert "Only 1 left this minute" in message
        assert len(running.requests_with(tag)) == 2  # only the admitted set went out


def test_more_variants_than_slots_are_refused_with_what_fits(tmp_path):
    with running_app(tmp_path, JUHE_CONCURRENCY="2") as running:
        tag = marker()
        message = refused(running, f"busy {tag}", variants=3)
        assert "at most 2 edits at once; try fewer variants" in message
        assert running.requests_with(tag) == []
