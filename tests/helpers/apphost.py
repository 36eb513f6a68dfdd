"""The one app test harness: `webapp.ui.build_demo` launched in this process over its own settings.

Not a test module. Every `JUHE_*` setting is given explicitly (a developer's `.env` or environment
cannot leak in); Gradio's files go under the test's folder. Live apps talk to a `Simulator` over
loopback HTTP, as they would to the provider, so tests see exactly what was sent (keys only as
fingerprints); offline apps use their own built-in simulator.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import logging
import os
import queue
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import pytest
from gradio_client import Client
from PIL import Image

from helpers.net import free_port
from juhe.simulator import Simulator
from webapp.backend import Backend
from webapp.settings import AppSettings
from webapp.ui import build_demo, launch_options

SERVER_KEY = "sk-test-SECRET-0123456789abcdef"
HAN = re.compile(r"[\u4e00-\u9fff]")
ENGLISH = re.compile(r"\b[A-Za-z]{2,} [A-Za-z]{2,}\b")


@dataclass
class RunningApp:
    """A launched app: its address, settings, backend, the provider behind it and its folders."""

    url: str
    demo: gr.Blocks
    settings: AppSettings
    backend: Backend
    provider: Simulator | None
    output_dir: Path
    temp_dir: Path

    def client(self, downloads: Path | None = None, **options) -> Client:
        """A new visitor (one Gradio session); files are downloaded into `downloads` if given.

        gradio_client sends telemetry to huggingface.co unless told not to: tests talk to loopback only.
        """
        options.setdefault("analytics_enabled", False)
        return Client(
            self.url, verbose=False, download_files=str(downloads) if downloads else False, **options
        )

    def requests_with(self, marker: str) -> list[dict]:
        """The provider's recorded requests whose prompt contains `marker` (see `conftest.marker`).

        The provider may be shared by other tests, some still running in the app's threads: a test
        counts only the requests its own tag reached, never the provider's total."""
        assert self.provider is not None, "an offline app has no separate provider"
        return [r for r in self.provider.stats()["requests"] if marker in r["text"]]

    def blank_prompts(self) -> list[dict]:
        """The provider's recorded requests with a blank prompt, which the app must never send.

        For a test whose request cannot carry a tag (its prompt is blank, or it has none)."""
        assert self.provider is not None, "an offline app has no separate provider"
        return [r for r in self.provider.stats()["requests"] if not r["text"].strip()]

    def sidecar(self, order_id: str) -> dict:
        """The JSON sidecar saved next to the result of `order_id`."""
        return json.loads((self.output_dir / f"{order_id}.json").read_text(encoding="utf-8"))


_LIVE_TEMP: list[str] = []  # upload folders of the apps running now, innermost last


@contextlib.contextmanager
def running_app(
    tmp: Path,
    *,
    live: bool = True,
    provider: Simulator | None = None,
    api_key: str = SERVER_KEY,
    quiet: bool = True,
    sim_options: dict | None = None,
    port: int | None = None,
    **env: str,
) -> Iterator[RunningApp]:
    """Launch the app with `env` as its only settings, on `port` when given, else on a port the system
    says is free (not Gradio's scan from 7860: suites run side by side raced for the same ports, and
    an app whose first start failed could not start its MCP server again). Live apps use `provider`,
    or a fresh simulator (made with `sim_options`) that lives as long as the app."""
    values = {"JUHE_OUTPUT_DIR": str(tmp / "outputs"), "JUHE_SIM_LATENCY": "0", "JUHE_MCP": "0"}
    port = port or free_port()
    with contextlib.ExitStack() as stack, pytest.MonkeyPatch.context() as patch:
        if live:
            if provider is None:
                provider = stack.enter_context(Simulator(**(sim_options or {})))
            values.update(JUHE_API_KEY=api_key, JUHE_API_URL=provider.url)
        values.update(env)
        settings = AppSettings.from_mapping(values)
        # Gradio reads GRADIO_TEMP_DIR at every upload, so a process has one upload folder: an app
        # launched while another runs shares it, or the first one's uploads would be refused
        temp_dir = Path(_LIVE_TEMP[-1]) if _LIVE_TEMP else tmp / "gradio"
        patch.setenv("GRADIO_TEMP_DIR", str(temp_dir))
        _LIVE_TEMP.append(str(temp_dir))
        stack.callback(_LIVE_TEMP.pop)
        patch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
        # launch_options() sets FORWARDED_ALLOW_IPS when unset; put the original back afterwards
        patch.setenv("FORWARDED_ALLOW_IPS", "")
        patch.delenv("FORWARDED_ALLOW_IPS")
        # the app sets Pillow's process-wide pixel bound; put it back for the tests that follow
        patch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)
        backend = Backend(settings)
        demo = build_demo(settings, backend)
        _, url, _ = demo.launch(
            prevent_thread_lock=True,
            quiet=quiet,
            server_name="127.0.0.1",
            server_port=port,
            **launch_options(settings, backend, demo),
        )
        try:
            yield RunningApp(
                url.rstrip("/"),
                demo,
                settings,
                backend,
                provider if live else None,
                backend.output_dir,
                temp_dir,
            )
        finally:
            demo.close()
            backend.close()


@contextlib.contextmanager
def answers_of(app: RunningApp, handler: str) -> Iterator[queue.Queue]:
    """While inside, every answer the page event handled by `handler` returns is put on the queue.

    A test that expects an event to change nothing waits for its answer first (`browser.next_answer`):
    the handler then ran to its end, so "nothing happened" is a fact, not a guess after a delay."""
    [function] = [f for f in app.demo.fns.values() if f.name == handler]
    answers: queue.Queue = queue.Queue()
    original = function.fn

    @functools.wraps(original)  # Gradio reads the handler's signature through __wrapped__
    async def recorded(*args, **kwargs):
        answer = await original(*args, **kwargs)
        answers.put(answer)
        return answer

    function.fn = recorded
    try:
        yield answers
    finally:
        function.fn = original


def image_file(path: Path, size: tuple[int, int] = (64, 48), color: str = "red", fmt: str = "JPEG") -> Path:
    """Write a small plain image and return its path."""
    Image.new("RGB", size, color).save(path, fmt)
    return path


def is_bilingual(message: str) -> bool:
    """True for "中文 / English" or "English / 中文" (the visitor's language first): both languages."""
    first, slash, second = message.partition(" / ")

    def english(text: str) -> bool:  # English words, and Han at most here and there (图1, a label)
        return bool(ENGLISH.search(text)) and len(re.findall(r"[A-Za-z]", text)) > 3 * len(HAN.findall(text))

    if not slash:
        return False
    return bool(HAN.search(first) and english(second)) or bool(english(first) and HAN.search(second))


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
