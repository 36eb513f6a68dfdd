"""Helpers shared by the app's API and browser tests: `app.py` launched in this process, isolated.

The app's handler reads the module-level `app.backend` when it runs, so one launched app at a time:
`launched_app()` swaps in a `Backend(env)`, builds a fresh demo, launches it on a free loopback
port and puts everything back when the block ends.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before `app` builds its first Blocks

import app  # noqa: E402
from juhe.simulator import Simulator, key_fingerprint  # noqa: E402
from webapp.backend import Backend  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CAT = ROOT / "examples" / "cat.jpg"
COFFEE = ROOT / "examples" / "coffee.jpg"
SERVER_KEY = "server-key-0123456789abcdef"
# Every setting the backend reads, so a developer's `.env` or environment cannot leak in.
JUHE_NAMES = ("JUHE_API_KEY", "JUHE_API_URL", "JUHE_TIMEOUT", "JUHE_MAX_BODY_BYTES", "JUHE_MAX_SIDE")


def backend_env(output_dir: Path, **settings: str) -> dict[str, str]:
    """The environment of a `Backend`: every JUHE_* setting explicit (empty means default)."""
    env = dict.fromkeys(JUHE_NAMES, "")
    env.update(JUHE_OUTPUT_DIR=str(output_dir), JUHE_SIM_LATENCY="0")
    env.update(settings)
    return env


def live_env(output_dir: Path, provider: Simulator, **settings: str) -> dict[str, str]:
    """A live backend talking to `provider` with the server's key."""
    return backend_env(output_dir, JUHE_API_KEY=SERVER_KEY, JUHE_API_URL=provider.url, **settings)


@dataclass
class LaunchedApp:
    """A running app: its address, its backend and where its results are saved."""

    url: str
    backend: Backend
    output_dir: Path
    tmp: Path


@contextlib.contextmanager
def launched_app(tmp: Path, env: Mapping[str, str]) -> Iterator[LaunchedApp]:
    """Launch `app.build_demo()` over `Backend(env)`, with Gradio's files kept under `tmp`."""
    output_dir = Path(env["JUHE_OUTPUT_DIR"])
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GRADIO_TEMP_DIR", str(tmp / "gradio"))
        mp.setenv("GRADIO_ANALYTICS_ENABLED", "False")
        mp.setenv("JUHE_OUTPUT_DIR", str(output_dir))
        mp.setenv("JUHE_SIM_LATENCY", "0")
        backend = Backend(env)
        mp.setattr(app, "backend", backend)
        demo = app.build_demo()
        _, url, _ = demo.launch(
            prevent_thread_lock=True, quiet=True, server_name="127.0.0.1", **app.launch_options()
        )
        try:
            yield LaunchedApp(url.rstrip("/"), backend, output_dir, tmp)
        finally:
            demo.close()
            simulator = getattr(backend, "_simulator", None)  # the offline preview's, if one started
            if simulator is not None:
                simulator.stop()


def requests_with(provider: Simulator, marker: str) -> list[dict]:
    """The provider's recorded requests whose prompt contains `marker`."""
    return [r for r in provider.stats()["requests"] if marker in r["text"]]


def sidecar_for(output_dir: Path, order_id: str) -> dict:
    """The JSON sidecar saved next to the result of `order_id`."""
    return json.loads((output_dir / f"{order_id}.json").read_text(encoding="utf-8"))


__all__ = [
    "CAT",
    "COFFEE",
    "ROOT",
    "SERVER_KEY",
    "LaunchedApp",
    "Simulator",
    "backend_env",
    "key_fingerprint",
    "launched_app",
    "live_env",
    "requests_with",
    "sidecar_for",
]
