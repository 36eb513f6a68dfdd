"""Shared fixtures (the provider simulator, isolation from the developer's settings, both clients,
the browser) and the suite's rules: markers by reason, the fast lane, and its guard."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Generator, Iterator
from typing import Any

import pytest

# No test reaches beyond this machine: huggingface_hub (under gradio_client) would otherwise look up
# huggingface.co the first time a Client is made, and Gradio would send analytics.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
from helpers.clock import T0, Clock
from helpers.linkprobe import LinkProbe, routed_through
from helpers.markers import HEAVY, LEGACY, REASONS, fast_lane_guard, marked_fixture, markers_for
from helpers.paths import CHROMIUM, CHROMIUM_ARGS
from helpers.tags import marker

import juhe._transport
from juhe import AsyncImageEditClient, ImageEditClient
from juhe.simulator import Simulator

# Transition: branches written before tests/helpers import these from conftest.
__all__ = ["T0", "marker"]

Steps = Callable[[Any], Generator[Any, Any, Any]]


# --- markers and the fast lane -------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    """`--fast`: only the tests with none of the markers (the fast lane)."""
    parser.addoption(
        "--fast",
        action="store_true",
        help=f"run only the tests marked none of {', '.join(sorted(REASONS))} (the fast lane)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with what its fixtures need; with `--fast`, keep only unmarked tests."""
    kept, dropped = [], []
    for item in items:
        for reason in sorted(markers_for(getattr(item, "fixturenames", ()))):
            item.add_marker(reason)
        names = {mark.name for mark in item.iter_markers()}
        if names & HEAVY and LEGACY not in names:
            item.add_marker(LEGACY)  # the old `-m "not e2e"` still means the fast lane
        (dropped if names & HEAVY else kept).append(item)
    if config.getoption("fast") and dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def _guarded(item: pytest.Item) -> Generator[None, Any, Any]:
    names = {mark.name for mark in item.iter_markers()}
    with fast_lane_guard(item.nodeid, names) as refused:
        result = yield
    if refused:
        pytest.fail(refused[0], pytrace=False)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, Any, Any]:
    """Fixtures set up for a test are held to the test's markers (see helpers.markers)."""
    if "browser" in item.keywords:
        from helpers.browser import JOURNAL

        JOURNAL.clear()  # the journal of this test only
    return (yield from _guarded(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Generator[None, Any, Any]:
    """A failed browser test's report shows what its pages said (`helpers.browser.JOURNAL`)."""
    report = yield
    if report.failed and "browser" in item.keywords:
        from helpers.browser import JOURNAL

        report.sections.append(("what the pages said", "\n".join(JOURNAL) or "nothing"))
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, Any]:
    """The test body is held to the test's markers (see helpers.markers)."""
    return (yield from _guarded(item))


# --- the provider and the network ----------------------------------------------------------------


@marked_fixture("loopback", scope="session")
def provider() -> Iterator[Simulator]:
    """The one simulator of the run, on a free loopback port: the stand-in for the provider.

    Shared by every test that needs a provider and nothing special of it: a test tells its own
    requests apart by a tag (`helpers.tags.marker`) in its prompt or key, never by global counts."""
    with Simulator() as sim:
        yield sim


@marked_fixture("loopback")
def simulator(provider: Simulator) -> Simulator:
    """The shared `provider`, under the name the client and simulator tests use."""
    return provider


@marked_fixture("loopback")
def probe(monkeypatch: pytest.MonkeyPatch) -> Iterator[LinkProbe]:
    """A loopback proxy that this process's outbound HTTP goes to (see `helpers.linkprobe`)."""
    probe = routed_through(monkeypatch)
    yield probe
    probe.close()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """No JUHE_* variable and no `.env` from the developer's machine: cwd is an empty folder."""
    for name in ("JUHE_API_KEY", "JUHE_API_URL", "JUHE_TIMEOUT", "JUHE_MAX_BODY_BYTES", "JUHE_MAX_SIDE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Retries wait 0 s; returns the attempts the client backed off after."""
    attempts: list[int] = []

    def backoff(attempt: int) -> float:
        attempts.append(attempt)
        return 0.0

    monkeypatch.setattr(juhe._transport, "_backoff", backoff)
    return attempts


# --- both clients --------------------------------------------------------------------------------


def _drive_sync(steps: Generator) -> Any:
    value = None
    while True:
        try:
            value = steps.send(value)
        except StopIteration as stop:
            return stop.value


async def _drive_async(steps: Generator) -> Any:
    value, error = None, None
    while True:
        try:
            awaitable = steps.throw(error) if error else steps.send(value)
        except StopIteration as stop:
            return stop.value
        try:
            value, error = await awaitable, None
        except Exception as exc:  # delivered at the `yield`, as the sync client would raise it there
            value, error = None, exc


@pytest.fixture(params=["sync", "async"])
def run_client(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """Run one test body on a fresh `ImageEditClient` and, as a second case, `AsyncImageEditClient`.

    The body is a generator that yields each client call and gets its result back (awaited when the
    client is async); errors are raised at the `yield`:

        def steps(client):
            result = yield client.edit("prompt", [image])
            return result

        result = run_client(steps, api_key="k", transport=transport)
    """

    def run(steps: Steps, **options: Any) -> Any:
        if request.param == "sync":
            with ImageEditClient(**options) as client:
                return _drive_sync(steps(client))

        async def main() -> Any:
            async with AsyncImageEditClient(**options) as client:
                return await _drive_async(steps(client))

        return asyncio.run(main())

    return run


# --- the app's parts -----------------------------------------------------------------------------


@pytest.fixture
def clock() -> Clock:
    """The result store's clock, moved by the test."""
    return Clock()


@pytest.fixture
def store(tmp_path, clock: Clock):
    """An empty result store in the test's folder: 30 days' retention, no size bound."""
    from webapp.store import ResultStore

    return ResultStore(tmp_path / "outputs", keep_days=30, max_bytes=0, clock=clock)


@marked_fixture("browser", scope="module")
def browser():
    """Debian's chromium driven by Playwright, one per test module (each test opens its own
    context: its own cookies, storage and session); the test skips, saying why, without it.

    Module scope, not session: Playwright's sync API keeps an event loop running in this thread
    while it is open, and later modules call asyncio.run()."""
    if not CHROMIUM.exists():
        pytest.skip(f"browser tests need Debian's chromium at {CHROMIUM}")
    from helpers.browser import WAIT_MS, keep_journal
    from playwright.sync_api import expect, sync_playwright

    # every expectation waits as long as a page's actions do (ending as soon as it holds): on two
    # loaded cores the region editor takes more than Playwright's default 5 s to draw
    expect.set_options(timeout=WAIT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        keep_journal(browser)
        yield browser
        browser.close()
