"""The command line against the simulator on loopback: most tests call `juhe.cli.main(argv)` in this
process; the few marked subprocess run `python -m juhe` as a real subprocess (Ctrl-C, the simulator
command, the module entry point)."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pillow_heif
import pytest
from helpers.images import ellipse_mask, photo, within
from helpers.markers import marked_fixture
from helpers.tags import marker
from PIL import Image

from juhe import read_provenance
from juhe._region import UNTOUCHED_DISTANCE, nearest_size
from juhe.cli import main
from juhe.simulator import Simulator, key_fingerprint

ROOT = Path(__file__).resolve().parents[1]
KEY = "test-key-123456"
HAN = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture
def sim(provider, monkeypatch):
    """The shared provider with no faults and no latency, and a key of this test's own as `KEY`:
    the provider's records of this test are the ones made with it (`edit_requests`)."""
    reset = {"reset": True, "latency": 0, "rate": 0}
    httpx.post(f"{provider.base_url}/_sim/faults", json=reset, trust_env=False).raise_for_status()
    monkeypatch.setitem(globals(), "KEY", f"test-key-{marker()}")
    return provider


@marked_fixture("loopback")
def own_sim():
    """A simulator of this test alone, for calls that outlive the test (slow faults)."""
    with Simulator() as simulator:
        yield simulator


def cli_env(sim: Simulator | None, **overrides: str) -> dict[str, str]:
    """The environment of a CLI run: the simulator's URL, none of the caller's JUHE_* or proxies."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUHE_") and "proxy" not in k.lower()}
    env.update(PYTHONPATH=str(ROOT), PYTHONIOENCODING="utf-8", PYTHONUNBUFFERED="1")
    if sim is not None:
        env.update(JUHE_API_URL=sim.url, JUHE_API_KEY=KEY)
    env.update(overrides)
    return env


@dataclass
class Done:
    """What one in-process run of the command line did."""

    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    """Run `main(argv)` in `tmp_path` with `env` (as `cli_env` builds it) as the only JUHE_* settings."""

    def run(*args: str, env: dict[str, str]) -> Done:
        for name in list(os.environ):
            if name.startswith("JUHE_") or "proxy" in name.lower():
                monkeypatch.delenv(name)
        for name, value in env.items():
            if name.startswith("JUHE_"):
                monkeypatch.setenv(name, value)
        monkeypatch.chdir(tmp_path)
        capsys.readouterr()
        try:
            code = main(list(args))
        except SystemExit as exit_:  # argparse: usage errors and --help
            code = exit_.code
        out, err = capsys.readouterr()
        return Done(code, out, err)

    return run


def juhe(cwd: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run `python -m juhe ARGS` in `cwd` as a real subprocess and wait for it."""
    return subprocess.run(
        [sys.executable, "-m", "juhe", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
    )


@contextlib.contextmanager
def sigint_deliverable():
    """Children inherit an ignored SIGINT (shells do that to background jobs); un-ignore it."""
    previous = signal.getsignal(signal.SIGINT)
    if previous == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        if previous == signal.SIG_IGN:
            signal.signal(signal.SIGINT, previous)


def make_image(path: Path, color: tuple[int, int, int] = (200, 40, 40)) -> Path:
    """A small real image; the format follows the suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (64, 48), color).save(path)
    return path


def edit_requests(sim: Simulator, key: str | None = None) -> list[dict]:
    """The edit calls the simulator received with `key` (this test's `KEY` unless given), oldest
    first: a count of what this test caused, never of everything the shared simulator saw."""
    fingerprint = key_fingerprint(KEY if key is None else key)
    return [r for r in sim.stats()["requests"] if r["key"] == fingerprint]


def results(out: Path) -> tuple[list[Path], list[Path]]:
    """(images, sidecars) in a result folder."""
    files = sorted(out.iterdir()) if out.is_dir() else []
    return [p for p in files if p.suffix == ".png"], [p for p in files if p.suffix == ".json"]


def assert_complete(out: Path) -> None:
    """Every file in `out` is a whole image or a sidecar, and every sidecar's images exist."""
    images, sidecars = results(out)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in images + sidecars)
    named = set()
    for sidecar in sidecars:
        files = json.loads(sidecar.read_text("utf-8"))["files"]
        named.update(files)
        for name in files:
            with Image.open(out / name) as image:
                image.verify()
    assert named == {p.name for p in images}


# ---------------------------------------------------------------- edit


@pytest.mark.subprocess
def test_edit_saves_the_result_and_prints_its_path(sim, tmp_path):
    make_image(tmp_path / "cat.jpg")
    args = ["edit", "cat.jpg", "--prompt", "把小猫换成小狗", "--size", "512*640", "--out", "out"]
    done = juhe(tmp_path, *args, env=cli_env(sim))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1
    image_path = tmp_path / lines[0]
    with Image.open(image_path) as image:
        assert image.size == (512, 640)
    sidecar = json.loads(image_path.with_suffix(".json").read_text("utf-8"))
    assert sidecar["prompt"] == "把小猫换成小狗"
    assert image_path.stem == sidecar["order_id"]
    [request] = edit_requests(sim)
    assert (request["outcome"], request["size"], request["images"]) == ("ok", "512*640", 1)
    assert request["key"] == key_fingerprint(KEY)


def test_edit_json_with_two_images_and_a_model(sim, tmp_path, cli):
    make_image(tmp_path / "a.png")
    make_image(tmp_path / "b.jpg", (20, 90, 200))
    args = ["edit", "a.png", "b.jpg", "--prompt", "把图1放进图2", "--model", "m2", "--json"]
    done = cli(*args, env=cli_env(sim))
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["order_id"].startswith("SIM")
    assert [Path(p).parent.name for p in summary["paths"]] == ["outputs"]
    assert all(link.startswith(sim.base_url + "/results/") for link in summary["links"])
    sidecar = json.loads((tmp_path / summary["paths"][0]).with_suffix(".json").read_text("utf-8"))
    assert sidecar["order_id"] == summary["order_id"]
    [request] = edit_requests(sim)
    assert (request["images"], request["model"]) == (2, "m2")


def test_edit_reads_settings_from_dotenv(sim, tmp_path, cli):
    make_image(tmp_path / "cat.jpg")
    dotenv_key = f"from-dotenv-{marker()}"
    (tmp_path / ".env").write_text(f"JUHE_API_URL={sim.url}\nJUHE_API_KEY={dotenv_key}\n")
    done = cli("edit", "cat.jpg", "--prompt", "hi", env=cli_env(None))
    assert done.returncode == 0, done.stderr
    assert len(edit_requests(sim, key=dotenv_key)) == 1


ERRORS = [
    # simulator fault, CODE of the error line, a piece of its Chinese text
    ("282504", "282504", "包含敏感词"),
    ("282505", "282505", "生成失败"),
    ("282506", "282506", "base64 字符串大小超限"),
    ("10001", "10001", "错误的请求 KEY"),
    ("10012", "10012", "请求超过次数限制"),
    ("10020", "10020", "接口维护"),
    ("http500", "http500", "服务返回 HTTP 500"),
    ("malformed", "malformed", "不是 JSON"),
    ("drop", "dropped", "连接被中断"),
    ("expired", "download", "下载失败"),
]


@pytest.mark.parametrize(("fault", "word", "chinese"), ERRORS, ids=[e[0] for e in ERRORS])
def test_edit_error_families(sim, tmp_path, fault, word, chinese, cli):
    make_image(tmp_path / "cat.jpg")
    done = cli("edit", "cat.jpg", "--prompt", f"edit [sim:{fault}]", "--out", "out", env=cli_env(sim))
    assert done.returncode == 1
    assert done.stdout == ""
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith(f"error {word}: ")
    zh, _, en = line.partition(" / ")  # bilingual: 中文 / English
    assert chinese in zh and re.search(r"[A-Za-z]{3,} [A-Za-z]{2,}", en)
    assert results(tmp_path / "out") == ([], [])
    assert len(edit_requests(sim)) == 1  # sent once, never retried


def test_edit_timeout_is_not_retried(own_sim, tmp_path, cli):
    make_image(tmp_path / "cat.jpg")
    env = cli_env(own_sim, JUHE_TIMEOUT="0.5")
    done = cli("edit", "cat.jpg", "--prompt", "edit [sim:slow=2]", "--out", "out", env=env)
    assert done.returncode == 1
    assert done.stderr.startswith("error timeout: 服务响应超时")
    assert "may have been processed" in done.stderr
    assert [r["outcome"] for r in edit_requests(own_sim)] == ["slow"]
    assert results(tmp_path / "out") == ([], [])


@pytest.mark.loopback  # connects to a loopback port nobody listens on
def test_edit_connect_error(tmp_path, cli, no_backoff):
    make_image(tmp_path / "cat.jpg")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = cli_env(None, JUHE_API_URL=f"http://127.0.0.1:{port}/image_edit/edit", JUHE_API_KEY=KEY)
    done = cli("edit", "cat.jpg", "--prompt", "hi", env=env)
    assert done.returncode == 1
    assert done.stderr.startswith("error connect: 无法连接服务 / could not reach the provider")


@pytest.mark.parametrize("command", ["edit", "batch"])
@pytest.mark.parametrize(
    ("setting", "word"),
    [({"JUHE_API_KEY": ""}, "key"), ({"JUHE_TIMEOUT": "soon"}, "config")],
    ids=["key", "config"],
)
def test_setup_errors_send_nothing(sim, tmp_path, command, setting, word, cli):
    make_image(tmp_path / "cat.jpg")
    done = cli(command, "cat.jpg", "--prompt", "hi", env=cli_env(sim, **setting))
    assert done.returncode == 1
    assert done.stderr.startswith(f"error {word}: ")
    assert HAN.search(done.stderr)
    assert edit_requests(sim) == [] and edit_requests(sim, key="") == []  # the "key" case sends none


USAGE_ERRORS = {
    "no command": [],
    "no prompt": ["edit", "cat.jpg"],
    "blank prompt": ["edit", "cat.jpg", "--prompt", "   "],
    "four images": ["edit", "cat.jpg", "cat.jpg", "cat.jpg", "cat.jpg", "--prompt", "hi"],
    "missing image": ["edit", "dog.jpg", "--prompt", "hi"],
    "size too small": ["edit", "cat.jpg", "--prompt", "hi", "--size", "100*100"],
    "size not a size": ["edit", "cat.jpg", "--prompt", "hi", "--size", "big"],
    "jobs zero": ["batch", "cat.jpg", "--prompt", "hi", "-j", "0"],
    "missing path": ["batch", "nowhere/", "--prompt", "hi"],
    "empty folder": ["batch", "empty", "--prompt", "hi"],
    "out is input": ["batch", ".", "--prompt", "hi", "--out", "."],
    "variants zero": ["edit", "cat.jpg", "--prompt", "hi", "--variants", "0"],
    "variants five": ["edit", "cat.jpg", "--prompt", "hi", "--variants", "5"],
    "variants not a number": ["edit", "cat.jpg", "--prompt", "hi", "-n", "two"],
}


@pytest.mark.parametrize("args", USAGE_ERRORS.values(), ids=USAGE_ERRORS.keys())
def test_bad_arguments_are_usage_errors_and_send_nothing(sim, tmp_path, args, cli):
    make_image(tmp_path / "cat.jpg")
    (tmp_path / "empty").mkdir()
    done = cli(*args, env=cli_env(sim))
    assert done.returncode == 2
    assert "usage: python -m juhe" in done.stderr
    assert done.stdout == ""
    assert edit_requests(sim) == []
    assert not (tmp_path / "outputs").exists()


@pytest.mark.parametrize(
    "command", [[], ["edit"], ["batch"], ["simulator"]], ids=["main", "edit", "batch", "sim"]
)
def test_help_shows_examples(tmp_path, command, cli):
    done = cli(*command, "--help", env=cli_env(None))
    assert done.returncode == 0
    assert re.search(r"^examples?:", done.stdout, re.MULTILINE)
    assert "python -m juhe" in done.stdout


def test_variants_out_of_range_names_the_range_in_both_languages(tmp_path, cli):
    make_image(tmp_path / "cat.jpg")
    done = cli("edit", "cat.jpg", "--prompt", "hi", "--variants", "9", env=cli_env(None))
    assert done.returncode == 2
    assert (
        "变体数量须为 1 到 4 的整数（每个变体单独计费） / must be a whole number from 1 to 4" in done.stderr
    )


# ---------------------------------------------------------------- variants


@pytest.mark.loopback
def test_edit_variants_sends_all_at_once_and_a_failure_keeps_its_own_line(sim, tmp_path, cli):
    make_image(tmp_path / "cat.jpg")
    sim.state.latency = 1.0  # long enough for all three to be in flight together
    sim.inject("282505")  # whichever call arrives first fails
    args = ["edit", "cat.jpg", "--prompt", "水彩", "--size", "512*512", "--variants", "3", "--out", "out"]

    done = cli(*args, env=cli_env(sim))

    assert done.returncode == 1
    paths = [tmp_path / line for line in done.stdout.splitlines()]
    assert len(paths) == 2 and len({p.name for p in paths}) == 2
    for path in paths:
        assert read_provenance(path)["AIGC"]["Label"] == "1"
    [failure] = re.findall(r"^variant [123]/3: error 282505: 生成失败 / .+$", done.stderr, re.MULTILINE)
    assert done.stderr.strip().endswith("variants: 2 saved, 1 failed")
    assert len(edit_requests(sim)) == 3 and sim.stats()["peak_in_flight"] == 3


@pytest.mark.subprocess
@pytest.mark.loopback
def test_edit_variants_json_and_batch_as_real_commands(tmp_path):
    make_image(tmp_path / "cat.jpg")
    make_image(tmp_path / "in" / "a.jpg")
    make_image(tmp_path / "in" / "b.png", (0, 0, 255))
    with Simulator() as own:
        args = ["edit", "cat.jpg", "--prompt", "p", "--variants", "3", "--json", "--out", "v"]
        variants = juhe(tmp_path, *args, env=cli_env(own))
        batch = juhe(tmp_path, "batch", "in", "--prompt", "p", "--out", "b", "-j", "2", env=cli_env(own))
        assert len(edit_requests(own)) == 5

    assert variants.returncode == 0, variants.stderr
    summaries = [json.loads(line) for line in variants.stdout.splitlines()]
    assert sorted(s["variant"] for s in summaries) == [1, 2, 3]
    assert len({s["order_id"] for s in summaries}) == 3
    assert all(read_provenance(tmp_path / s["paths"][0])["order_id"] == s["order_id"] for s in summaries)
    assert "variants: 3 saved, 0 failed" in variants.stderr
    assert batch.returncode == 0, batch.stderr
    assert "batch: 2 inputs -> b (0 already done, 2 to edit, 2 at a time)" in batch.stderr
    assert "2 edited, 0 skipped (already done), 0 failed" in batch.stderr
    assert_complete(tmp_path / "b")
    assert len(results(tmp_path / "b")[0]) == 2


# ---------------------------------------------------------------- batch


def test_batch_edits_files_and_folders_under_unique_names(sim, tmp_path, cli):
    make_image(tmp_path / "in" / "a.jpg")
    make_image(tmp_path / "in" / "b.png")
    (tmp_path / "in" / "notes.txt").write_text("not an image")
    make_image(tmp_path / "other" / "a.jpg", (0, 0, 255))
    inputs = ["in", "other/a.jpg", "in/a.jpg"]  # in/a.jpg twice: edited once
    args = ["--prompt", "水彩", "--size", "512*512", "--out", "out", "-j", "2"]
    done = cli("batch", *inputs, *args, env=cli_env(sim))
    assert done.returncode == 0, done.stderr
    images, sidecars = results(tmp_path / "out")
    assert sorted(p.name.split("-")[0] for p in images) == ["a", "a", "b"]
    assert len({p.stem for p in images}) == 3 and len(sidecars) == 3
    assert_complete(tmp_path / "out")
    assert len(edit_requests(sim)) == 3
    assert re.search(r"\] 3/3 100% [\d.]+/(s|min) elapsed \d+:\d\d ETA \d+:\d\d", done.stderr)
    assert "3 edited, 0 skipped (already done), 0 failed" in done.stderr


def test_batch_resumes_after_a_partial_run(sim, tmp_path, cli):
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        make_image(tmp_path / "in" / name)
    args = ["batch", "in", "--prompt", "水彩", "--size", "512*512", "--out", "out", "-j", "1"]
    sim.inject("282505")  # the first call (a.jpg, inputs go in name order) fails

    first = cli(*args, env=cli_env(sim))
    assert first.returncode == 1
    assert re.search(r"^failed in[/\\]a\.jpg: error 282505: 生成失败", first.stderr, re.MULTILINE)
    assert "2 edited, 0 skipped (already done), 1 failed" in first.stderr
    kept = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()}
    assert len(kept) == 4

    second = cli(*args, env=cli_env(sim))
    assert second.returncode == 0, second.stderr
    assert "1 edited, 2 skipped (already done), 0 failed" in second.stderr
    requests = edit_requests(sim)
    assert len(requests) == 4  # 3 + only the failed one again
    assert all(p.read_bytes() == data for name, data in kept.items() for p in [tmp_path / "out" / name])
    assert_complete(tmp_path / "out")
    assert len(results(tmp_path / "out")[0]) == 3

    third = cli(*args, env=cli_env(sim))
    assert third.returncode == 0 and "nothing to do" in third.stderr
    new_prompt = cli(*args[:3], "油画", *args[4:], env=cli_env(sim))
    assert new_prompt.returncode == 0 and "3 edited" in new_prompt.stderr
    assert len(edit_requests(sim)) == 7  # a new prompt is new work; the same one is not


def test_batch_resume_finds_results_of_several_images(sim, tmp_path, cli):
    make_image(tmp_path / "in" / "a.jpg")
    args = ["batch", "in", "--prompt", "two [sim:images=2]", "--out", "out", "--size", "512*512"]
    first = cli(*args, env=cli_env(sim))
    assert first.returncode == 0, first.stderr
    images, sidecars = results(tmp_path / "out")
    assert [p.stem[-2:] for p in images] == ["_1", "_2"] and len(sidecars) == 1
    again = cli(*args, env=cli_env(sim))
    assert again.returncode == 0 and "nothing to do" in again.stderr
    assert len(edit_requests(sim)) == 1


def test_batch_lists_local_failures_with_codes(sim, tmp_path, cli):
    make_image(tmp_path / "in" / "good.jpg")
    (tmp_path / "in" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    done = cli("batch", "in", "--prompt", "hi", "--out", "out", env=cli_env(sim))
    assert done.returncode == 1
    assert re.search(r"^failed in[/\\]broken\.jpg: error invalid: ", done.stderr, re.MULTILINE)
    assert "(1 failed)" in done.stderr  # on the progress bar
    assert len(edit_requests(sim)) == 1  # the broken file was refused before sending
    assert len(results(tmp_path / "out")[0]) == 1


@pytest.mark.loopback  # waits on real time for calls in flight
def test_batch_stops_starting_calls_after_an_account_error(tmp_path, cli):
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        make_image(tmp_path / "in" / name)
    with Simulator(keys={"the-right-key"}) as strict:
        done = cli("batch", "in", "--prompt", "hi", "-j", "1", env=cli_env(strict))
        assert [r["outcome"] for r in edit_requests(strict)] == ["10001"]
    assert done.returncode == 1
    assert "0 edited, 0 skipped (already done), 1 failed, 2 not started" in done.stderr
    assert "stopped early after error 10001: 错误的请求 KEY" in done.stderr


def concurrency(sim: Simulator, starts: list[float]) -> int:
    """Most edit calls the simulator was serving at once, from start and finish timestamps."""
    events = [(t, 1) for t in starts] + [(r["time"], -1) for r in edit_requests(sim)]
    peak = running = 0
    for _, step in sorted(events):  # at a tie a finish (-1) sorts before a start
        running += step
        peak = max(peak, running)
    return peak


@pytest.mark.parametrize(("jobs", "count"), [(3, 6), (1, 2)])
def test_batch_jobs_overlap_calls(sim, tmp_path, monkeypatch, jobs, count, cli):
    sim.state.latency = 0.8 if jobs > 1 else 0.3
    starts: list[float] = []
    next_fault = sim.state.next_fault

    def recording(prompt: str):
        starts.append(time.time())  # called as a call starts, before the simulated latency
        return next_fault(prompt)

    monkeypatch.setattr(sim.state, "next_fault", recording)
    for i in range(count):
        make_image(tmp_path / "in" / f"{i}.jpg", (i * 40, 80, 80))
    args = ["batch", "in", "--prompt", "hi", "--size", "512*512", "-j", str(jobs)]
    done = cli(*args, env=cli_env(sim))
    assert done.returncode == 0, done.stderr
    assert len(starts) == count == len(edit_requests(sim))
    assert concurrency(sim, starts) == jobs


@pytest.mark.subprocess
def test_ctrl_c_keeps_finished_results_and_leaves_no_partial_file(own_sim, tmp_path):
    sim = own_sim
    for name in ("a.jpg", "b.jpg", "c.jpg", "d.jpg"):
        make_image(tmp_path / "in" / name)
    # two calls answer at once, the next two hang until long after Ctrl-C
    sim.inject("images=1", "images=1", "slow=10", "slow=10")
    args = ["batch", "in", "--prompt", "hi", "--size", "512*512", "--out", "out", "-j", "2"]
    with sigint_deliverable():
        proc = subprocess.Popen(
            [sys.executable, "-m", "juhe", *args],
            cwd=tmp_path,
            env=cli_env(sim),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
    try:
        deadline = time.monotonic() + 30
        while not (
            len(results(tmp_path / "out")[1]) == 2 and sim.stats()["counts"].get("slow") == 2
        ):  # two results saved and both later calls in flight
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert (
        "interrupted after" in stderr
        and "2 edited" in stderr
        and "2 calls in flight were abandoned" in stderr
    )
    assert_complete(tmp_path / "out")  # no .partial-* file, no image without its sidecar
    kept = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()}
    assert len(kept) == 4

    again = juhe(tmp_path, *args, env=cli_env(sim))
    assert again.returncode == 0, again.stderr
    assert "2 edited, 2 skipped (already done), 0 failed" in again.stderr
    assert all((tmp_path / "out" / name).read_bytes() == data for name, data in kept.items())
    assert_complete(tmp_path / "out")
    assert len(results(tmp_path / "out")[0]) == 4


# ---------------------------------------------------------------- simulator


@pytest.mark.subprocess
def test_simulator_command_serves_edits(tmp_path):
    make_image(tmp_path / "cat.jpg")
    with sigint_deliverable():
        server = subprocess.Popen(
            [sys.executable, "-m", "juhe", "simulator", "--port", "0"],
            cwd=tmp_path,
            env=cli_env(None),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    try:
        banner = server.stdout.readline()
        url = re.search(r"JUHE_API_URL=(\S+)", banner).group(1)
        env = cli_env(None, JUHE_API_URL=url, JUHE_API_KEY=KEY)
        done = juhe(tmp_path, "edit", "cat.jpg", "--prompt", "hi", env=env)
        assert done.returncode == 0, done.stderr
        assert (tmp_path / done.stdout.strip()).is_file()
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=20) == 0
    finally:
        if server.poll() is None:
            server.kill()
        server.communicate()


# ---------------------------------------------------------------- region edits, original size, info


def write_photo(path: Path, size: tuple[int, int], fmt: str | None = None) -> Path:
    """A generated photo (smooth shapes and noise) saved at `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    photo(*size, seed=len(path.name)).save(path, fmt)
    return path


def test_edit_with_a_mask_changes_only_the_painted_area(sim, tmp_path, cli):
    write_photo(tmp_path / "photo.png", (640, 480))
    mask = ellipse_mask((640, 480), (260, 180, 380, 300))
    mask.save(tmp_path / "mask.png")
    args = ["edit", "photo.png", "--mask", "mask.png", "--prompt", "换成花 [sim:anysize]", "--json"]

    done = cli(*args, env=cli_env(sim))

    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    [path] = [tmp_path / p for p in summary["paths"]]
    [own] = [tmp_path / p for p in summary["provider_paths"]]
    assert own.name == f"{path.stem}_provider.png" and summary["output_size"] == "640*480"
    with Image.open(path) as out, Image.open(tmp_path / "photo.png") as before:
        out, before = (np.asarray(image.convert("RGB")).astype(int) for image in (out, before))
    far = ~within(np.asarray(mask) > 127, UNTOUCHED_DISTANCE)
    assert out.shape == (480, 640, 3) and np.array_equal(out[far], before[far])
    assert not np.array_equal(out, before)
    [request] = edit_requests(sim)
    asked = tuple(int(side) for side in summary["size"].split("*"))
    assert request["size"] == summary["size"] and Image.open(own).size != asked  # it ignored the size


def test_edit_and_batch_at_the_original_size(sim, tmp_path, cli):
    write_photo(tmp_path / "in" / "wide.jpg", (900, 600))
    write_photo(tmp_path / "in" / "tall.png", (500, 800))
    done = cli("edit", "in/wide.jpg", "--prompt", "p", "--size", "original", env=cli_env(sim))
    assert done.returncode == 0, done.stderr
    assert Image.open(tmp_path / done.stdout.strip()).size == (900, 600)

    args = ["batch", "in", "--prompt", "水彩", "--size", "original", "--out", "out"]
    first = cli(*args, env=cli_env(sim))
    assert first.returncode == 0, first.stderr
    sizes = {}
    for sidecar in sorted((tmp_path / "out").glob("*.json")):
        [name] = json.loads(sidecar.read_text("utf-8"))["files"]
        sizes[name.split("-")[0]] = Image.open(tmp_path / "out" / name).size
    assert sizes == {"tall": (500, 800), "wide": (900, 600)}
    expected = [nearest_size(900, 600)] * 2 + [nearest_size(500, 800)]
    assert sorted(r["size"] for r in edit_requests(sim)) == sorted(expected)
    again = cli(*args, env=cli_env(sim))
    assert "nothing to do: all 2 inputs already have results" in again.stderr


def test_edit_accepts_an_iphone_heic(sim, tmp_path, cli):
    image = photo(400, 300)
    buffer = io.BytesIO()
    pillow_heif.encode("RGB", image.size, image.tobytes(), buffer, quality=90)
    (tmp_path / "IMG_0001.HEIC").write_bytes(buffer.getvalue())
    done = cli("edit", "IMG_0001.HEIC", "--prompt", "p", "--size", "original", env=cli_env(sim))
    assert done.returncode == 0, done.stderr
    assert Image.open(tmp_path / done.stdout.strip()).size == (400, 300)


@pytest.mark.parametrize(
    "args",
    [
        ["edit", "https://example.com/cat.jpg", "--mask", "mask.png", "--prompt", "p"],
        ["edit", "https://example.com/cat.jpg", "--size", "original", "--prompt", "p"],
        ["edit", "photo.png", "--mask", "missing.png", "--prompt", "p"],
        ["info", "missing.png"],
    ],
    ids=["mask-on-a-link", "original-of-a-link", "no-mask-file", "no-file"],
)
def test_region_arguments_that_cannot_work_are_usage_errors(sim, tmp_path, cli, args):
    write_photo(tmp_path / "photo.png", (64, 48))
    ellipse_mask((64, 48), (1, 1, 20, 20)).save(tmp_path / "mask.png")
    done = cli(*args, env=cli_env(sim))
    assert done.returncode == 2 and edit_requests(sim) == []
    assert "link" in done.stderr or "no such file" in done.stderr


def test_an_empty_mask_is_a_bilingual_error_and_sends_nothing(sim, tmp_path, cli):
    write_photo(tmp_path / "photo.png", (64, 48))
    Image.new("L", (64, 48), 0).save(tmp_path / "mask.png")
    done = cli("edit", "photo.png", "--mask", "mask.png", "--prompt", "p", env=cli_env(sim))
    assert done.returncode == 1 and edit_requests(sim) == []
    assert done.stderr.startswith("error invalid: 蒙版为空") and "/ the mask is empty" in done.stderr


def test_info_prints_the_label_of_a_saved_result(sim, tmp_path, cli):
    write_photo(tmp_path / "photo.jpg", (640, 480))
    done = cli("edit", "photo.jpg", "--prompt", "把天空换成晚霞\x1b[2J", env=cli_env(sim))
    path = done.stdout.strip()

    shown = cli("info", path, env=cli_env(None))
    assert shown.returncode == 0, shown.stderr
    assert "AIGC label (GB 45438-2025): AI-generated / 人工智能生成" in shown.stdout
    assert re.search(r"^  ContentProducer\s+juhe-image-edit$", shown.stdout, re.MULTILINE)
    digest = hashlib.sha256((tmp_path / "photo.jpg").read_bytes()).hexdigest()
    assert f"图1 sha256 {digest}" in shown.stdout and "把天空换成晚霞" in shown.stdout
    assert "\x1b" not in shown.stdout  # a control character from the file is shown escaped

    as_json = cli("info", path, "photo.jpg", "--json", env=cli_env(None))
    labelled, unlabelled = (json.loads(line) for line in as_json.stdout.splitlines())
    assert labelled["label"]["order_id"] == Path(path).stem and labelled["label"]["AIGC"]["Label"] == "1"
    assert unlabelled == {"file": "photo.jpg", "label": None} and as_json.returncode == 1
    plain = cli("info", "photo.jpg", env=cli_env(None))
    assert plain.returncode == 1 and "no AIGC label / 没有 AIGC 标识" in plain.stdout


# ---------------------------------------------------------------- first steps (issue 17, part 5)


def test_no_key_names_the_simulator_as_a_way_to_try(sim, tmp_path, cli):
    make_image(tmp_path / "cat.jpg")
    done = cli("edit", "cat.jpg", "--prompt", "hi", env=cli_env(sim, JUHE_API_KEY=""))
    assert done.returncode == 1 and edit_requests(sim) == []
    assert "JUHE_API_KEY" in done.stderr and "python -m juhe simulator" in done.stderr
    assert "JUHE_API_URL=http://127.0.0.1:8765/image_edit/edit" in done.stderr
    assert "模拟器" in done.stderr


def test_simulator_help_names_the_command_it_was_started_by(tmp_path, cli):
    done = cli("simulator", "--help", env=cli_env(None))
    assert done.returncode == 0
    assert done.stdout.startswith("usage: python -m juhe simulator ")
    assert "juhe.simulator" not in done.stdout.partition("\n")[0]


def test_info_says_auto_for_an_auto_size_edit(sim, tmp_path, cli):
    write_photo(tmp_path / "photo.jpg", (640, 480))
    path = cli("edit", "photo.jpg", "--prompt", "p", env=cli_env(sim)).stdout.strip()
    shown = cli("info", path, env=cli_env(None))
    assert shown.returncode == 0, shown.stderr
    [size_line] = [line for line in shown.stdout.splitlines() if line.split()[:1] == ["size"]]
    assert size_line.split(None, 1)[1].startswith("auto")
