"""The suite's own rules (tests/helpers/markers.py): a test that needs a server, a process or a
browser is marked so, the fast lane (`--fast`) holds only unmarked tests, and an unmarked test that
opens a socket or starts a process fails instead of slipping into the fast lane."""

from __future__ import annotations

import multiprocessing
import multiprocessing.process
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.markers import (
    FIXTURE_MARKERS,
    REASONS,
    FastLaneViolationError,
    fast_lane_guard,
    marked_fixture,
    markers_for,
)

ROOT = Path(__file__).resolve().parents[1]


def test_the_registered_markers_are_the_reasons(pytestconfig: pytest.Config):
    """pyproject.toml registers what helpers.markers enforces, in the same words, and the old e2e."""
    registered = dict(line.split(": ", 1) for line in pytestconfig.getini("markers") if ": " in line)
    assert {name: registered.get(name) for name in REASONS} == REASONS
    assert "e2e" in registered
    assert "--strict-markers" in pytestconfig.getini("addopts")


def test_a_declared_fixture_marks_its_users():
    @marked_fixture("loopback")
    def a_server_for_this_test():
        """Never run: only declared."""

    try:
        assert markers_for(["tmp_path", "a_server_for_this_test"]) == {"loopback"}
        assert markers_for(["tmp_path"]) == set()
    finally:
        del FIXTURE_MARKERS["a_server_for_this_test"]
    with pytest.raises(ValueError, match="unknown marker 'lopback'"):
        marked_fixture("lopback")


def test_the_guard_refuses_a_listening_socket_a_connection_and_a_process():
    before = socket.socket.listen, socket.socket.connect, subprocess.Popen.__init__
    start = multiprocessing.process.BaseProcess.start
    with fast_lane_guard("t", set()) as refused, socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        with pytest.raises(FastLaneViolationError, match="not marked app or browser or loopback"):
            server.listen()
        with pytest.raises(FastLaneViolationError):
            server.connect(("127.0.0.1", 9))
        with pytest.raises(FastLaneViolationError, match="not marked browser or subprocess"):
            subprocess.run(["true"], check=False)
        with pytest.raises(FastLaneViolationError, match="started a process 'juhe-edits-1'"):
            multiprocessing.get_context("spawn").Process(target=print, name="juhe-edits-1").start()
    assert len(refused) == 4
    # and it puts back what it replaced
    assert (socket.socket.listen, socket.socket.connect, subprocess.Popen.__init__) == before
    assert multiprocessing.process.BaseProcess.start is start


@pytest.mark.loopback  # so that the suite's own guard around this test lets the inner one be tested
def test_the_guard_watches_the_tests_threads_not_ones_left_by_earlier_tests():
    """An earlier app test's heartbeat thread may still connect while a pure test runs: not blamed.
    A thread the test starts is watched as the test itself is."""
    import threading

    go, done = threading.Event(), threading.Event()
    outcomes: dict[str, str] = {}

    def connect(name: str, wait: threading.Event | None = None) -> None:
        if wait is not None:
            wait.wait(10)
        with socket.socket() as client:
            client.settimeout(1)
            try:
                client.connect_ex(("127.0.0.1", 9))
                outcomes[name] = "let through"
            except FastLaneViolationError:
                outcomes[name] = "refused"
        if wait is not None:
            done.set()

    leftover = threading.Thread(target=connect, args=("leftover", go))
    leftover.start()
    with fast_lane_guard("t", set()) as refused:
        go.set()
        done.wait(10)
        own = threading.Thread(target=connect, args=("own",))
        own.start()
        own.join(10)
    leftover.join(10)
    assert outcomes == {"leftover": "let through", "own": "refused"}
    assert len(refused) == 1


def test_a_marker_allows_only_what_it_names():
    """(What a marker does allow is run in the scratch project below: this test is unmarked.)"""
    for markers in ({"slow"}, {"subprocess"}):
        with (
            fast_lane_guard("t", markers),
            socket.socket() as client,
            pytest.raises(FastLaneViolationError),
        ):
            client.connect(("127.0.0.1", 9))


SCRATCH_TESTS = """
import socket
import subprocess

import pytest


def test_pure():
    assert 1 + 1 == 2


def test_uses_the_provider(provider):
    assert provider.url.startswith("http://127.0.0.1:")


def test_unmarked_listen():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()


def test_unmarked_process():
    subprocess.run(["true"], check=True)


@pytest.mark.loopback
def test_marked_listen():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()


@pytest.mark.e2e
def test_old_marker():
    subprocess.run(["true"], check=True)
"""


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project with this suite's conftest, helpers and pytest settings, and the tests above."""
    project = tmp_path_factory.mktemp("scratch")
    shutil.copy(ROOT / "pyproject.toml", project)
    shutil.copy(ROOT / "tests" / "conftest.py", project / "conftest.py")
    shutil.copytree(ROOT / "tests" / "helpers", project / "helpers")
    (project / "tests").mkdir()
    shutil.move(project / "conftest.py", project / "tests" / "conftest.py")
    shutil.move(project / "helpers", project / "tests" / "helpers")
    (project / "tests" / "test_scratch.py").write_text(SCRATCH_TESTS, encoding="utf-8")
    return project


def outcomes(project: Path, *options: str) -> dict[str, str]:
    """Run pytest in `project`; return each test's outcome by name."""
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rA", *options],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    found = {}
    for line in done.stdout.splitlines():
        outcome, _, rest = line.partition(" ")
        if outcome in ("PASSED", "FAILED", "ERROR") and "::" in rest:
            found[rest.split("::")[1].split(" ")[0]] = outcome
    assert found or done.returncode == 5, done.stdout + done.stderr
    return found


@pytest.mark.subprocess
def test_an_unmarked_test_that_opens_a_socket_or_a_process_fails(scratch: Path):
    assert outcomes(scratch) == {
        "test_pure": "PASSED",
        "test_uses_the_provider": "PASSED",  # marked loopback by its fixture
        "test_unmarked_listen": "FAILED",
        "test_unmarked_process": "FAILED",
        "test_marked_listen": "PASSED",
        "test_old_marker": "PASSED",
    }


@pytest.mark.subprocess
def test_the_fast_lane_keeps_only_unmarked_tests(scratch: Path):
    fast = {"test_pure": "PASSED", "test_unmarked_listen": "FAILED", "test_unmarked_process": "FAILED"}
    assert outcomes(scratch, "--fast") == fast
    assert outcomes(scratch, "-m", "not e2e") == fast  # the old command still means the fast lane
    assert outcomes(scratch, "-m", "loopback") == {
        "test_uses_the_provider": "PASSED",
        "test_marked_listen": "PASSED",
    }
