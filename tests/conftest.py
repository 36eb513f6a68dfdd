"""Shared fixtures: a provider simulator, isolation from the developer's settings, both clients."""

from __future__ import annotations

import asyncio
import os
import struct
import uuid
import zlib
from collections.abc import Callable, Generator, Iterator
from typing import Any

import pytest

# No test reaches beyond this machine: huggingface_hub (under gradio_client) would otherwise look up
# huggingface.co the first time a Client is made, and Gradio would send analytics.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
from linkprobe import LinkProbe, routed_through

import juhe._transport
from juhe import AsyncImageEditClient, ImageEditClient
from juhe.simulator import Simulator

Steps = Callable[[Any], Generator[Any, Any, Any]]


@pytest.fixture(scope="session")
def simulator() -> Iterator[Simulator]:
    """One simulator on a free loopback port for the whole run; tests tell their requests apart by
    a unique prompt, never by global counts."""
    with Simulator() as sim:
        yield sim


@pytest.fixture
def probe(monkeypatch: pytest.MonkeyPatch) -> Iterator[LinkProbe]:
    """A loopback proxy that this process's outbound HTTP goes to (see `linkprobe`)."""
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


# --- steps shared by the app tests ---------------------------------------------------------------


T0 = 1_750_000_000.0


class Clock:
    """A settable clock, in seconds since the epoch."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    """The result store's clock, moved by the test."""
    return Clock()


@pytest.fixture
def store(tmp_path, clock: Clock):
    """An empty result store in the test's folder: 30 days' retention, no size bound."""
    from webapp.store import ResultStore

    return ResultStore(tmp_path / "outputs", keep_days=30, max_bytes=0, clock=clock)


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares `width` x `height` grey pixels and holds none: what `Image.open` reads (the
    header) of a huge image, in 60 bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )


def marker() -> str:
    """A tag that makes one prompt (and so its requests at the simulator) unique."""
    return "t" + uuid.uuid4().hex[:12]


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]


@pytest.fixture(scope="module")
def browser():
    """Debian's chromium driven by Playwright, one per test module (each test opens its own
    context: its own cookies, storage and session).

    Module scope, not session: Playwright's sync API keeps an event loop running in this thread
    while it is open, and later modules call asyncio.run()."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


# Fixtures that start a real HTTP server on loopback (the simulator, a hostile provider, a link
# server): a test using one waits on real sockets and real time, so it runs in the full suite only.
SERVER_FIXTURES = {
    "simulator",
    "sim",
    "shared_sim",
    "own_sim",
    "keyed_simulator",
    "hostile",
    "links",
    "probe",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses a loopback server `e2e`, as well as app, browser and subprocess
    tests (marked in their modules): `-m "not e2e"` is the fast lane of pure tests."""
    for item in items:
        if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.e2e)
