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
        answer = json.loads(run.stdout)
        assert answer["error_code"] == 0, answer
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
