"""The page's "API call" panel: each snippet is quoted safely, holds no key, and really runs, here
against the simulator (curl and the juhe client) and against the app (gradio_client)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from helpers.apphost import running_app
from helpers.paths import CAT, COFFEE, ROOT
from PIL import Image

from juhe.simulator import Simulator
from webapp import snippets

HOSTILE = 'It\'s "quoted" $(touch pwned) `touch pwned2` \\ 把图1换成图2的风格\n第二行 🐶'
KEY = "sk-snippet-0123456789"


def call(endpoint: str, images=("cat.jpg",), mimes=("image/jpeg",), **changes) -> snippets.Call:
    values = dict(
        prompt=HOSTILE,
        images=tuple(images),
        mimes=tuple(mimes),
        size="1024*768",
        model="auto",
        endpoint=endpoint,
        app_url="http://127.0.0.1:7860",
    )
    values.update(changes)
    return snippets.Call(**values)


def test_file_names_keep_links_and_make_file_names_unique():
    names = snippets.file_names(["/tmp/a/image.png", "https://x.example/b.png", "/tmp/c/image.png"])
    assert names == ("image.png", "https://x.example/b.png", "image-3.png")


def test_no_key_in_any_snippet_even_with_the_visitors_own():
    own = call("https://gpt.juhe.cn/image_edit/edit", own_key=True)
    for text in (snippets.curl(own), snippets.python_client(own), snippets.gradio_client(own)):
        assert KEY not in text and "sk-" not in text
    assert '"key=$JUHE_API_KEY"' in snippets.curl(own)
    assert 'api_key=os.environ["JUHE_API_KEY"]' in snippets.gradio_client(own)


def test_python_snippets_are_valid_python_with_the_prompt_intact():
    for text in (snippets.python_client(call("x")), snippets.gradio_client(call("x"))):
        tree = compile(text, "<snippet>", "exec", flags=0x400, dont_inherit=True)  # PyCF_ONLY_AST
        literals = [
            n.value for n in __import__("ast").walk(tree) if isinstance(n, __import__("ast").Constant)
        ]
        assert HOSTILE in literals


def test_curl_reads_each_image_from_a_file_and_passes_links_as_they_are():
    text = snippets.curl(call("x", images=("cat.jpg", "https://x.example/b.png"), mimes=("image/jpeg", None)))
    assert "--data-urlencode image1@image1.txt" in text
    assert "base64 < cat.jpg" in text and "data:image/jpeg;base64," in text
    assert "--data-urlencode image2=https://x.example/b.png" in text
    assert "image2.txt" not in text


# --- the snippets run -------------------------------------------------------------------------------


@pytest.fixture
def workdir(tmp_path):
    shutil.copy(CAT, tmp_path / "cat.jpg")
    shutil.copy(COFFEE, tmp_path / "coffee.jpg")
    return tmp_path


def opens_as_image(path) -> bool:
    with Image.open(path) as image:
        image.load()
        return image.width > 0


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUHE_", "GRADIO_"))}
    env.update(PYTHONPATH=str(ROOT), GRADIO_ANALYTICS_ENABLED="False", **extra)
    return env


@pytest.mark.subprocess
@pytest.mark.loopback
def test_the_curl_snippet_runs_against_the_provider(workdir):
    with Simulator() as provider:
        text = snippets.curl(call(provider.url, images=("cat.jpg", "coffee.jpg"), mimes=("image/jpeg",) * 2))
        run = subprocess.run(
            ["bash", "-c", text],
            cwd=workdir,
            env=environment(JUHE_API_KEY=KEY),
            capture_output=True,
            timeout=60,
        )
        assert run.returncode == 0, run.stderr
        answer = json.loads((workdir / "answer.json").read_text())
        assert answer["error_code"] == 0, answer
        assert run.stdout.strip() == b"result.png" and opens_as_image(workdir / "result.png")
        [sent] = provider.stats()["requests"]
    assert sent["text"] == HOSTILE[:200] and sent["images"] == 2 and sent["size"] == "1024*768"
    assert not (workdir / "pwned").exists() and not (workdir / "pwned2").exists()


@pytest.mark.subprocess
@pytest.mark.loopback
def test_the_juhe_snippet_runs_against_the_provider(workdir):
    with Simulator() as provider:
        text = snippets.python_client(call(provider.url))
        env = environment(JUHE_API_KEY=KEY, JUHE_API_URL=provider.url)
        run = subprocess.run(
            [sys.executable, "-c", text], cwd=workdir, env=env, capture_output=True, timeout=60
        )
        assert run.returncode == 0, run.stderr
        [sent] = provider.stats()["requests"]
    assert sent["text"] == HOSTILE[:200] and sent["outcome"] == "ok"
    assert list((workdir / "outputs").glob("*.png"))


@pytest.mark.subprocess
@pytest.mark.app
@pytest.mark.timeout(120)
def test_the_gradio_client_snippet_runs_against_the_app(workdir, tmp_path_factory):
    with running_app(tmp_path_factory.mktemp("snippet-app")) as app:
        text = snippets.gradio_client(call(app.provider.url, app_url=app.url))
        run = subprocess.run(
            [sys.executable, "-c", text], cwd=workdir, env=environment(), capture_output=True, timeout=90
        )
        assert run.returncode == 0, run.stderr
        [sent] = app.provider.stats()["requests"]
    assert sent["text"] == HOSTILE[:200] and sent["size"] == "1024*768"


# --- offline preview: the snippets as the page shows them, run as copied ---------------------------


@pytest.fixture
def reader_simulator(tmp_path_factory):
    """The simulator a reader starts as the snippets say (`python -m juhe simulator`), as a real
    subprocess; on a free port, since 8765 may be taken by another run on this machine."""
    server = subprocess.Popen(
        [sys.executable, "-m", "juhe", "simulator", "--port", "0"],
        cwd=tmp_path_factory.mktemp("simulator"),
        env=environment(),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        banner = server.stdout.readline()
        assert "JUHE_API_URL=" in banner, banner
        yield banner.split("JUHE_API_URL=", 1)[1].strip()
    finally:
        server.terminate()
        server.wait(timeout=20)


def as_copied(text: str, simulator_url: str) -> str:
    """The snippet with only the simulator's port changed to the one this test's simulator got."""
    assert text.count(snippets.SIMULATOR_URL) == 1
    return text.replace(snippets.SIMULATOR_URL, simulator_url)


def offline_call(**changes) -> snippets.Call:
    return call("https://gpt.juhe.cn/image_edit/edit", offline=True, **changes)


def test_offline_snippets_say_they_target_the_simulator_and_what_to_install():
    for text in (snippets.curl(offline_call()), snippets.python_client(offline_call())):
        assert "python -m juhe simulator" in text and "pip install ." in text
        assert "gpt.juhe.cn" not in text and "JUHE_API_KEY" not in text
        assert "Run it in a folder holding cat.jpg" in text
    live = snippets.curl(call("https://gpt.juhe.cn/image_edit/edit"))
    assert "https://gpt.juhe.cn/image_edit/edit" in live and '"key=$JUHE_API_KEY"' in live
    assert "simulator" not in live


@pytest.mark.subprocess
@pytest.mark.loopback
def test_offline_curl_snippet_runs_as_copied_and_saves_an_image(workdir, reader_simulator):
    text = as_copied(snippets.curl(offline_call()), reader_simulator)
    run = subprocess.run(
        ["bash", "-c", text], cwd=workdir, env=environment(), capture_output=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == b"result.png", run.stdout
    assert opens_as_image(workdir / "result.png")


@pytest.mark.subprocess
@pytest.mark.loopback
def test_offline_juhe_snippet_runs_as_copied_and_saves_an_image(workdir, reader_simulator):
    text = as_copied(snippets.python_client(offline_call()), reader_simulator)
    # PYTHONPATH stands for the README's `pip install .`; the folder is outside the checkout
    run = subprocess.run(
        [sys.executable, "-c", text], cwd=workdir, env=environment(), capture_output=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    [image] = list((workdir / "outputs").glob("*.png"))
    assert opens_as_image(image)


@pytest.mark.app
@pytest.mark.subprocess
@pytest.mark.timeout(120)
def test_offline_gradio_client_snippet_runs_as_copied_against_the_preview(workdir, tmp_path_factory):
    with running_app(tmp_path_factory.mktemp("offline-app"), live=False) as app:
        text = snippets.gradio_client(offline_call(app_url=app.url))
        run = subprocess.run(
            [sys.executable, "-c", text], cwd=workdir, env=environment(), capture_output=True, timeout=90
        )
    assert run.returncode == 0, run.stderr
    assert "simulated" in text and b"'simulated': True" in run.stdout
