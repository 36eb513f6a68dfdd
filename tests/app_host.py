"""The app run in this process against its own provider simulator, for the reliability tests.

Not a test module: test_hostile_inputs, test_secrets, test_isolation and test_limits import it.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import pytest
from gradio_client import Client
from PIL import Image

import app
from juhe.simulator import Simulator
from webapp.backend import Backend

SERVER_KEY = "sk-test-SECRET-0123456789abcdef"
JUHE_NAMES = ("JUHE_API_KEY", "JUHE_API_URL", "JUHE_TIMEOUT", "JUHE_MAX_BODY_BYTES", "JUHE_MAX_SIDE")
HAN = re.compile(r"[\u4e00-\u9fff]")
ENGLISH = re.compile(r"\b[A-Za-z]{2,} [A-Za-z]{2,}\b")


@dataclass
class HostedApp:
    """A running app: its URL, the simulator behind it and the folders it writes to."""

    url: str
    demo: gr.Blocks
    sim: Simulator
    output_dir: Path
    temp_dir: Path

    def client(self, **options) -> Client:
        """A new visitor (one Gradio session) that leaves result files on the server."""
        return Client(self.url, verbose=False, download_files=False, **options)

    def sent(self) -> int:
        """Edit requests the simulator has answered so far, whatever the outcome."""
        return sum(self.sim.stats()["counts"].values())


@contextlib.contextmanager
def hosted_app(
    root: Path,
    *,
    api_key: str | None = SERVER_KEY,
    output_dir: str | None = None,
    backend_env: dict[str, str] | None = None,
    constants: dict[str, object] | None = None,
    quiet: bool = True,
    **sim_options,
) -> Iterator[HostedApp]:
    """Launch `app.build_demo()` live against a fresh simulator; `constants` replaces app settings
    (QUEUE_SIZE, CONCURRENCY, MAX_UPLOAD...) before the page is built. Everything is undone after."""
    with Simulator(**sim_options) as sim, pytest.MonkeyPatch.context() as patch:
        temp_dir = root / "gradio"
        patch.setenv("GRADIO_TEMP_DIR", str(temp_dir))
        patch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
        # launch_options() sets FORWARDED_ALLOW_IPS when unset; restore the original afterwards
        patch.setenv("FORWARDED_ALLOW_IPS", "")
        patch.delenv("FORWARDED_ALLOW_IPS")
        env = dict.fromkeys(JUHE_NAMES, "")  # explicit, so a developer's `.env` cannot leak in
        env.update(JUHE_API_URL=sim.url, JUHE_OUTPUT_DIR=output_dir or str(root / "outputs"))
        if api_key:
            env["JUHE_API_KEY"] = api_key
        env.update(backend_env or {})
        backend = Backend(env=env)
        patch.setattr(app, "backend", backend)
        for name, value in (constants or {}).items():
            patch.setattr(app, name, value)
        demo = app.build_demo()
        _, url, _ = demo.launch(prevent_thread_lock=True, quiet=quiet, **app.launch_options())
        try:
            yield HostedApp(url, demo, sim, backend.output_dir, temp_dir)
        finally:
            demo.close()


def image_file(path: Path, size: tuple[int, int] = (64, 48), color: str = "red", fmt: str = "JPEG") -> Path:
    """Write a small plain image and return its path."""
    Image.new("RGB", size, color).save(path, fmt)
    return path


def is_bilingual(message: str) -> bool:
    """True for "中文 / English", the form of every error here: Chinese, then an English phrase."""
    chinese, slash, english = message.partition(" / ")
    return bool(slash and HAN.search(chinese) and ENGLISH.search(english))


class _Tee(io.TextIOBase):
    def __init__(self, sink: io.TextIOBase) -> None:
        self.sink = sink

    def write(self, text: str) -> int:
        self.sink.write(text)
        self.sink.flush()
        return len(text)


@contextlib.contextmanager
def captured_output(path: Path) -> Iterator[Path]:
    """Send everything the process prints or logs to `path`: file descriptors 1 and 2 (C code and
    subprocesses), `sys.stdout`/`sys.stderr`, and every logger, turned down to DEBUG meanwhile."""
    sink = open(path, "w", encoding="utf-8", errors="replace")  # noqa: SIM115 - closed below
    saved_fds = os.dup(1), os.dup(2)
    handler = logging.StreamHandler(sink)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    loggers = [root] + [
        log for log in logging.root.manager.loggerDict.values() if isinstance(log, logging.Logger)
    ]
    saved_levels = [(log, log.level) for log in loggers]
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(sink.fileno(), 1)
    os.dup2(sink.fileno(), 2)
    root.addHandler(handler)
    for log in loggers:
        log.setLevel(logging.DEBUG)
    try:
        with contextlib.redirect_stdout(_Tee(sink)), contextlib.redirect_stderr(_Tee(sink)):
            yield path
    finally:
        root.removeHandler(handler)
        for log, level in saved_levels:
            log.setLevel(level)
        sink.flush()
        os.dup2(saved_fds[0], 1)
        os.dup2(saved_fds[1], 2)
        for fd in saved_fds:
            os.close(fd)
        sink.close()
