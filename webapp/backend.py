"""The app's side of the API: live or offline, one shared async client, results saved on arrival."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from juhe import AsyncImageEditClient, EditResult
from juhe.simulator import Simulator
from webapp.settings import AppSettings
from webapp.spend import SPEND_FILE, DailySpend

OFFLINE_KEY = "offline-preview"


class BusyError(Exception):
    """More edits are waiting for a slot than the app's queue size allows."""


@dataclass
class SavedEdit:
    """A finished edit: the provider's result and the local files it was saved to."""

    result: EditResult
    paths: list[Path]
    simulated: bool


class Backend:
    """Chooses the live API or the built-in simulator and owns the clients (built lazily)."""

    def __init__(self, settings: AppSettings) -> None:
        self.settings = settings
        self.offline = settings.offline
        self.output_dir = settings.output_dir.resolve()
        self._live: AsyncImageEditClient | None = None
        self._offline: AsyncImageEditClient | None = None
        self._simulator: Simulator | None = None
        self._lock = threading.Lock()
        self._slots: asyncio.Semaphore | None = None
        self._waiting = 0
        live_cap = settings.daily_limit and not self.offline
        self.spend = DailySpend(self.output_dir / SPEND_FILE, settings.daily_limit) if live_cap else None

    def _live_client(self) -> AsyncImageEditClient:
        with self._lock:
            if self._live is None:
                self._live = AsyncImageEditClient(settings=self.settings.client)
            return self._live

    def _offline_client(self) -> AsyncImageEditClient:
        with self._lock:
            if self._offline is None:
                self._simulator = Simulator(latency=self.settings.sim_latency).start()
                offline = replace(self.settings.client, api_key=OFFLINE_KEY, api_url=self._simulator.url)
                self._offline = AsyncImageEditClient(settings=offline)
            return self._offline

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of `concurrency` edit slots; raise `BusyError` when `queue_size` edits already wait.

        Queued events are bounded by Gradio's queue too; MCP calls run outside it, so this is the
        bound every caller shares.
        """
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.settings.concurrency)
        if self._slots.locked() and self._waiting >= self.settings.queue_size:
            raise BusyError
        self._waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        try:
            yield
        finally:
            self._slots.release()

    async def edit(
        self,
        prompt: str,
        images: Sequence[object],
        size: str | None,
        model: str | None,
        visitor_key: str | None = None,
        on_stage: Callable[[str], None] | None = None,
    ) -> SavedEdit:
        """Run one edit and save its images; a visitor's own key always goes to the live API."""
        simulated = self.offline and not visitor_key
        client = self._offline_client() if simulated else self._live_client()
        if self.spend is not None and not visitor_key:  # the server's key: within today's cap
            self.spend.check()
            on_stage = self.spend.guard(on_stage)
        async with self.slot():
            result = await client.edit(
                prompt, images, size, model, api_key=visitor_key or None, on_stage=on_stage
            )
            if on_stage:
                on_stage("saving")
            paths = await client.download(result, self.output_dir)
        return SavedEdit(result, paths, simulated)

    def display_path(self, path: Path, cache_dir: str | os.PathLike) -> str:
        """Link (else copy) a result into a fresh folder inside Gradio's cache dir; return its path.

        Gradio hashes and copies every returned file that lies outside that folder, on the server's
        event loop, stalling every visitor; a file inside is served as is. File work: call it from a
        worker thread.
        """
        resolved = path.resolve()
        shown = Path(cache_dir).resolve() / "juhe-results" / secrets.token_hex(16) / resolved.name
        shown.parent.mkdir(parents=True)
        try:
            os.link(resolved, shown)
        except OSError:  # another file system, or no hard links there
            shutil.copyfile(resolved, shown)
        return str(shown)

    def close(self) -> None:
        """Stop the offline simulator, if one was started."""
        if self._simulator is not None:
            self._simulator.stop()
