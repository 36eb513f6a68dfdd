"""The app's side of the API: live or offline, one shared async client, results saved on arrival."""

from __future__ import annotations

import os
import secrets
import shutil
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from juhe import AsyncImageEditClient, EditResult, Settings
from juhe.simulator import Simulator

OFFLINE_KEY = "offline-preview"
DEFAULT_SIM_LATENCY = 1.5  # seconds: enough to see the progress stages in the offline preview


@dataclass
class SavedEdit:
    """A finished edit: the provider's result and the local files it was saved to."""

    result: EditResult
    paths: list[Path]
    simulated: bool


class Backend:
    """Chooses the live API or the built-in simulator and owns the clients (built lazily)."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        self.settings = Settings.resolve(environ=env)
        self.offline = self.settings.api_key is None
        self.output_dir = Path(env.get("JUHE_OUTPUT_DIR") or "outputs").resolve()
        self.sim_latency = float(env.get("JUHE_SIM_LATENCY") or DEFAULT_SIM_LATENCY)
        self._live: AsyncImageEditClient | None = None
        self._offline: AsyncImageEditClient | None = None
        self._simulator: Simulator | None = None
        self._lock = threading.Lock()

    def _live_client(self) -> AsyncImageEditClient:
        with self._lock:
            if self._live is None:
                self._live = AsyncImageEditClient(settings=self.settings)
            return self._live

    def _offline_client(self) -> AsyncImageEditClient:
        with self._lock:
            if self._offline is None:
                self._simulator = Simulator(latency=self.sim_latency).start()
                self._offline = AsyncImageEditClient(
                    settings=Settings(
                        api_key=OFFLINE_KEY,
                        api_url=self._simulator.url,
                        timeout=self.settings.timeout,
                        max_body_bytes=self.settings.max_body_bytes,
                        max_side=self.settings.max_side,
                    )
                )
            return self._offline

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
