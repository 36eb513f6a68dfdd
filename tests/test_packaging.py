"""`pip install .` gives the `juhe` client and command and nothing else: the wheel is built, read, and
installed into a fresh virtual environment (subprocesses, about 10 s in all)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from juhe import __version__

ROOT = Path(__file__).resolve().parents[1]
DIST_INFO = f"juhe_image_edit-{__version__}.dist-info"

pytestmark = pytest.mark.subprocess


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel `pip` builds from the checkout (the build backend comes from the package index)."""
    out = tmp_path_factory.mktemp("wheel")
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", out, ROOT, cwd=out)
    [built] = out.glob("*.whl")
    return built


def test_the_wheel_holds_the_juhe_package_only(wheel: Path):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(f"{DIST_INFO}/METADATA").decode()
        entry_points = archive.read(f"{DIST_INFO}/entry_points.txt").decode()
    assert {name.split("/")[0] for name in names} == {"juhe", DIST_INFO}
    shipped = {name for name in names if name.startswith("juhe/")}
    assert shipped == {f"juhe/{p.name}" for p in (ROOT / "juhe").glob("*.py")}
    assert f"Version: {__version__}" in metadata.splitlines()
    requires = {
        line.split(":", 1)[1].strip().split(">")[0].split("<")[0].split("=")[0].lower()
        for line in metadata.splitlines()
        if line.startswith("Requires-Dist:")
    }
    assert requires == {"httpx", "pillow", "pillow-heif", "python-dotenv"}
    assert "juhe = juhe.cli:main" in entry_points


def test_a_fresh_venv_gets_import_juhe_and_the_juhe_command_without_gradio(wheel: Path, tmp_path: Path):
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    python, command = venv / "bin" / "python", venv / "bin" / "juhe"
    # The dependencies come from the packages this test runs with, so nothing is downloaded. Not
    # `--system-site-packages`: that exposes the *base* interpreter's packages, which inside a venv
    # (the README's quickstart) lack httpx. A .pth file appends this process's own site folders after
    # the venv's own, so the wheel's `juhe` wins and pip sees the dependencies as installed.
    site_folders = [p for p in sys.path if Path(p).name in ("site-packages", "dist-packages")]
    [venv_site] = (venv / "lib").glob("python*/site-packages")
    (venv_site / "_test_dependencies.pth").write_text("\n".join(site_folders) + "\n", encoding="utf-8")
    # no --no-deps: pip must find every requirement of the wheel already satisfied, offline
    run(python, "-m", "pip", "install", "--no-index", wheel, cwd=tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}

    shown = run(command, "--help", cwd=tmp_path, env=env).stdout
    assert shown.startswith("usage: juhe ") and "examples:" in shown and "batch" in shown
    assert run(command, "--version", cwd=tmp_path, env=env).stdout.strip() == f"juhe-image-edit {__version__}"

    probe = "import sys, juhe, juhe.cli; print(juhe.__file__, juhe.__version__, 'gradio' in sys.modules)"
    where, version, gradio = run(python, "-c", probe, cwd=tmp_path, env=env).stdout.split()
    assert Path(where).is_relative_to(venv) and version == __version__ and gradio == "False"
