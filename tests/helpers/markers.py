"""The suite's markers by reason, and the fast-lane guard that keeps unmarked tests pure.

Each marker names why a test is not in the fast lane. A fixture that needs one is declared with
`marked_fixture`, and every test that uses it, directly or through another fixture, gets the marker
at collection. The guard is the backstop for what a declaration forgets: while a test without the
right marker is set up and run, opening a listening socket or connecting one fails it (that needs
`loopback`, `app` or `browser`), and so does starting a child process (`subprocess` or `browser`;
the app's edit processes, started through `multiprocessing`, with any of the markers).
"""

from __future__ import annotations

import contextlib
import multiprocessing.process
import socket
import subprocess
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest

# name -> why; the text pyproject.toml registers (`--strict-markers` refuses any other name)
REASONS = {
    "browser": "drives Debian's chromium through Playwright",
    "app": "launches the Gradio app in this process",
    "subprocess": "runs a child process, a venv or the command line",
    "loopback": "starts or talks to a loopback server (the simulator, a hostile provider, a proxy)",
    "slow": "full-size photos, or a few tenths of a second of CPU or more",
}
# The marker every test carried before the reasons: other branches still use it. A test marked
# e2e is kept out of the fast lane and may do anything; every test with a reason is also marked
# e2e, so the old `-m "not e2e"` still selects the fast lane.
LEGACY = "e2e"
HEAVY = frozenset(REASONS) | {LEGACY}
SOCKETS_ALLOWED = frozenset({"loopback", "app", "browser", LEGACY})
PROCESSES_ALLOWED = frozenset({"subprocess", "browser", LEGACY})

# fixture name -> the marker a test using it needs; filled by `marked_fixture`
FIXTURE_MARKERS: dict[str, str] = {}


def marked_fixture(reason: str, **options: Any) -> Callable[[Callable], Any]:
    """`pytest.fixture(**options)` that also marks every test using the fixture with `reason`."""
    if reason not in REASONS:
        raise ValueError(f"unknown marker {reason!r}; one of {sorted(REASONS)}")

    def declare(function: Callable) -> Any:
        FIXTURE_MARKERS[options.get("name", function.__name__)] = reason
        return pytest.fixture(**options)(function)

    return declare


def markers_for(fixturenames: Iterable[str]) -> set[str]:
    """The markers a test needs because of the fixtures it uses."""
    return {FIXTURE_MARKERS[name] for name in fixturenames if name in FIXTURE_MARKERS}


class FastLaneViolationError(Exception):
    """A test without the marker it needs opened a socket or started a process."""


@contextlib.contextmanager
def fast_lane_guard(nodeid: str, markers: set[str]) -> Iterator[list[str]]:
    """Refuse, while inside, what `markers` do not allow; yield the list of refusals.

    A refusal raises in the thread that tried (the test's own, usually) and is also recorded, since
    a server thread may swallow the exception; the caller fails the test on any record."""
    refused: list[str] = []
    lock = threading.Lock()
    patches: list[tuple[Any, str, Any, bool]] = []
    # threads left running by earlier tests (an app's heartbeat, a server winding down) are theirs,
    # not this test's: only this thread and the threads started while it runs are watched
    earlier = set(threading.enumerate()) - {threading.current_thread()}

    def refuse(what: str, needs: frozenset[str]) -> None:
        names = " or ".join(sorted(needs - {LEGACY}))
        message = f"{nodeid} {what} but is not marked {names} (see tests/helpers/markers.py)"
        with lock:
            refused.append(message)
        raise FastLaneViolationError(message)

    if not markers & SOCKETS_ALLOWED:
        for method in ("listen", "connect", "connect_ex"):
            original = getattr(socket.socket, method)

            def guarded(self, *args, _method=method, _original=original):
                ours = threading.current_thread() not in earlier
                if ours and self.family in (socket.AF_INET, socket.AF_INET6):
                    refuse(f"called socket.{_method}{args}", SOCKETS_ALLOWED)
                return _original(self, *args)

            patches.append((socket.socket, method, original, method in vars(socket.socket)))
            setattr(socket.socket, method, guarded)
    if not markers & PROCESSES_ALLOWED:
        original_init = subprocess.Popen.__init__

        def guarded_init(self, args, *rest, **options):
            if threading.current_thread() in earlier:
                return original_init(self, args, *rest, **options)
            refuse(f"started a process {args!r}", PROCESSES_ALLOWED)

        patches.append((subprocess.Popen, "__init__", original_init, True))
        subprocess.Popen.__init__ = guarded_init
    if not markers & HEAVY:
        # the app's edit processes (multiprocessing, not subprocess.Popen): any heavy marker allows
        # them, since every app and loopback test may start them through its backend
        original_start = multiprocessing.process.BaseProcess.start

        def guarded_start(self):
            if threading.current_thread() in earlier:
                return original_start(self)
            refuse(f"started a process {self.name!r}", HEAVY)

        patches.append((multiprocessing.process.BaseProcess, "start", original_start, True))
        multiprocessing.process.BaseProcess.start = guarded_start
    try:
        yield refused
    finally:
        for owner, name, original, own in reversed(patches):
            # a method inherited from the C base goes back to being inherited
            setattr(owner, name, original) if own else delattr(owner, name)
