"""The app's settings: every JUHE_* variable read once, from the environment over `.env`, validated
with a message naming the variable; and `python app.py` honouring a `.env` in its working folder."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from helpers.net import free_port
from helpers.paths import CAT, ROOT

from juhe.simulator import Simulator
from webapp.settings import AppSettings, SettingsError, check_public_url, parse_trusted_proxies

EVERY_SETTING = {
    "JUHE_API_KEY": "k-123456",
    "JUHE_API_URL": "http://127.0.0.1:9/image_edit/edit",
    "JUHE_TIMEOUT": "30",
    "JUHE_MAX_BODY_BYTES": "4000000",
    "JUHE_MAX_SIDE": "1024",
    "JUHE_OUTPUT_DIR": "results",
    "JUHE_CONCURRENCY": "4",
    "JUHE_QUEUE_SIZE": "9",
    "JUHE_MAX_UPLOAD": "5mb",
    "JUHE_RATE_LIMIT": "3",
    "JUHE_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.1",
    "JUHE_ACCESS_PASSWORD": "pw-secret",
    "JUHE_SIM_LATENCY": "0.25",
    "JUHE_MCP": "off",
    "JUHE_MCP_TOKEN": "tok-secret",
}


def test_every_setting_is_read():
    settings = AppSettings.from_mapping(EVERY_SETTING)
    assert (settings.client.api_key, settings.client.api_url) == ("k-123456", EVERY_SETTING["JUHE_API_URL"])
    assert (settings.client.timeout, settings.client.max_body_bytes, settings.client.max_side) == (
        30,
        4_000_000,
        1024,
    )
    assert settings.output_dir == Path("results")
    assert (settings.concurrency, settings.queue_size, settings.rate_limit) == (4, 9, 3)
    assert settings.max_upload_bytes == 5 * 1024 * 1024
    assert settings.trusted_proxies == ("10.0.0.0/8", "192.168.1.1")
    assert settings.access_password == "pw-secret" and settings.sim_latency == 0.25
    assert settings.mcp is False and settings.mcp_token == "tok-secret"
    assert "pw-secret" not in repr(settings) and "tok-secret" not in repr(settings)
    assert "k-123456" not in repr(settings)


def test_defaults_are_safe():
    settings = AppSettings.from_mapping({})
    assert settings.offline and settings.client.api_key is None
    assert (settings.concurrency, settings.queue_size, settings.rate_limit) == (16, 64, 0)
    assert settings.max_upload_bytes == 20 * 1024 * 1024
    assert settings.trusted_proxies == () and settings.access_password is None
    assert settings.mcp_enabled


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("JUHE_CONCURRENCY", "many", "whole number from 1 to 1024"),
        ("JUHE_CONCURRENCY", "0", "whole number from 1 to 1024"),
        ("JUHE_QUEUE_SIZE", "-1", "whole number"),
        ("JUHE_RATE_LIMIT", "1.5", "whole number"),
        ("JUHE_MAX_UPLOAD", "9tb", "such as 20mb"),
        ("JUHE_MAX_UPLOAD", "10", "such as 20mb"),
        ("JUHE_TIMEOUT", "nan", "number from 1 to 3600"),
        ("JUHE_SIM_LATENCY", "-2", "number from 0 to 600"),
        ("JUHE_MCP", "maybe", "1 or 0"),
        ("JUHE_TRUSTED_PROXIES", "proxy.local", "'proxy.local' is not an IP address"),
        ("JUHE_API_URL", "ftp://example.com", "http:// or https://"),
        ("JUHE_MAX_SIDE", "100", "from 512"),
    ],
)
def test_a_bad_value_names_the_variable_and_what_it_accepts(name, value, says):
    with pytest.raises(SettingsError) as info:
        AppSettings.from_mapping({name: value})
    assert name in str(info.value) and says in str(info.value)


def test_trusted_proxies_are_addresses_or_networks():
    assert parse_trusted_proxies(" 10.0.0.0/8, 192.168.1.1 ,::1,") == ("10.0.0.0/8", "192.168.1.1", "::1")
    assert parse_trusted_proxies("") == ()
    with pytest.raises(SettingsError, match="'proxy.local' is not an IP address"):
        parse_trusted_proxies("10.0.0.1, proxy.local")


def test_public_url_is_checked_and_named_in_the_error():
    assert check_public_url(None) is None and check_public_url(" ") is None
    assert check_public_url("https://a.example/app/") == "https://a.example/app"
    for bad in (
        "ftp://a.example",
        "a.example",
        "https://",
        "https://a.example/?q=1",
        "https://u:p@a.example",
    ):
        with pytest.raises(SettingsError, match="JUHE_PUBLIC_URL"):
            check_public_url(bad)


def test_unset_variables_keep_the_dataclass_defaults():
    """One place per default: parsing an empty environment gives exactly the field defaults."""
    assert AppSettings.from_mapping({}) == AppSettings()


def test_parsing_reads_no_file_and_imports_nothing_of_the_app(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("JUHE_API_KEY=from-dotenv\nJUHE_TIMEOUT=5\n", encoding="utf-8")
    parsed = AppSettings.from_mapping({})
    assert parsed.client.api_key is None and parsed.output_dir is None  # neither .env nor /data looked at
    assert AppSettings.load(environ={}).client.api_key == "from-dotenv"  # load reads the working folder's
    assert AppSettings.load(environ={}, dotenv=False).client.api_key is None
    source = ast.parse((ROOT / "webapp" / "settings.py").read_text(encoding="utf-8"))
    imported = {node.module for node in ast.walk(source) if isinstance(node, ast.ImportFrom)} | {
        alias.name for node in ast.walk(source) if isinstance(node, ast.Import) for alias in node.names
    }
    assert not {name for name in imported if name.split(".")[0] in ("webapp", "gradio")}


def test_real_variables_win_over_dotenv(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("JUHE_RATE_LIMIT=5\nJUHE_QUEUE_SIZE=7\nJUHE_OUTPUT_DIR=from-dotenv\n", encoding="utf-8")
    settings = AppSettings.load(environ={"JUHE_OUTPUT_DIR": "from-env"}, dotenv=dotenv)
    assert settings.output_dir == Path("from-env")
    assert (settings.rate_limit, settings.queue_size) == (5, 7)


def test_a_password_keeps_mcp_off_unless_a_token_is_set():
    assert not AppSettings.from_mapping({"JUHE_ACCESS_PASSWORD": "pw"}).mcp_enabled
    assert AppSettings.from_mapping({"JUHE_ACCESS_PASSWORD": "pw", "JUHE_MCP_TOKEN": "t"}).mcp_enabled
    assert not AppSettings.from_mapping({"JUHE_MCP": "0"}).mcp_enabled


# --- python app.py ---------------------------------------------------------------------------------


def app_environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUHE_", "GRADIO_"))}
    env.update(
        GRADIO_ANALYTICS_ENABLED="False",
        GRADIO_TEMP_DIR=str(tmp_path / "gradio"),
        GRADIO_SERVER_NAME="127.0.0.1",
        PYTHONPATH=str(ROOT),
        **extra,
    )
    return env


@pytest.mark.subprocess
def test_a_bad_setting_stops_the_app_with_one_line(tmp_path):
    run = subprocess.run(
        [sys.executable, str(ROOT / "app.py")],
        cwd=tmp_path,
        env=app_environment(tmp_path, JUHE_CONCURRENCY="lots"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode != 0
    assert run.stderr.strip().splitlines() == [
        "config error: JUHE_CONCURRENCY must be a whole number from 1 to 1024, got 'lots'"
    ]


@pytest.mark.subprocess
@pytest.mark.loopback
@pytest.mark.timeout(180)
def test_dotenv_in_the_working_folder_configures_the_app(tmp_path):
    """Password, output folder and rate limit from `.env` take effect; a real variable wins."""
    with Simulator() as provider:
        (tmp_path / ".env").write_text(
            "\n".join(
                [
                    "JUHE_API_KEY=dotenv-key-123456",
                    f"JUHE_API_URL={provider.url}",
                    "JUHE_ACCESS_PASSWORD=open-sesame",
                    "JUHE_OUTPUT_DIR=from-dotenv",
                    "JUHE_RATE_LIMIT=1",
                    "JUHE_MCP=0",
                ]
            ),
            encoding="utf-8",
        )
        port = free_port()
        env = app_environment(tmp_path, GRADIO_SERVER_PORT=str(port), JUHE_OUTPUT_DIR="from-env")
        url = f"http://127.0.0.1:{port}"
        with subprocess.Popen(
            [sys.executable, str(ROOT / "app.py")],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        ) as server:
            try:
                deadline = time.monotonic() + 60
                while True:
                    assert server.poll() is None, server.stdout.read().decode()
                    try:
                        page = httpx.get(url + "/", timeout=2)
                        break
                    except httpx.TransportError:
                        assert time.monotonic() < deadline, "the app did not start within 60 s"
                        time.sleep(0.2)
                assert re.search(r"(?i)login|password", page.text)  # locked
                assert httpx.get(url + "/config", timeout=10).status_code == 401
                client = Client(url, auth=("anyone", "open-sesame"), verbose=False, download_files=False)
                _, record = client.predict(handle_file(str(CAT)), "from dotenv", api_name="/edit")
                assert (tmp_path / "from-env" / f"{record['order_id']}.png").is_file()
                assert not (tmp_path / "from-dotenv").exists()
                with pytest.raises(AppError, match="Too many edits"):
                    client.predict(handle_file(str(CAT)), "again", api_name="/edit")
            finally:
                server.terminate()
                server.wait(timeout=30)


def test_the_operator_is_told_the_mode_the_folder_and_the_limits():
    offline = "\n".join(AppSettings.from_mapping({"JUHE_OUTPUT_DIR": "results"}).summary())
    assert "offline preview" in offline and "JUHE_API_KEY" in offline
    assert str(Path("results").resolve()) in offline and "no rate limit" in offline
    live = "\n".join(AppSettings.from_mapping(EVERY_SETTING | {"JUHE_DAILY_LIMIT": "50"}).summary())
    assert "live: edits go to http://127.0.0.1:9/image_edit/edit" in live
    assert "3 edits per minute per visitor" in live and "50 live edits per day" in live
    assert "4 edits at once, 9 waiting" in live and "uploads up to 5 MiB" in live
    assert "pw-secret" not in live and "k-123456" not in live


def test_every_setting_is_documented():
    """Each JUHE_* variable the app reads is in .env.example and in the README's settings table."""
    read = set()
    for source in ("webapp/settings.py", "juhe/_config.py"):
        read |= set(re.findall(r'"(JUHE_[A-Z_]+)"', (ROOT / source).read_text(encoding="utf-8")))
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("## Settings") : readme.index("## Hosting on Hugging Face Spaces")]
    assert len(read) >= 20
    assert sorted(name for name in read if f"\n{name}=" not in example) == []
    assert sorted(name for name in read if f"| `{name}` |" not in table) == []


def test_a_space_trusts_its_proxy_and_limits_edits_by_default():
    settings = AppSettings.from_mapping({"SPACE_ID": "me/demo", "JUHE_API_KEY": "k-1"})
    assert settings.on_space and settings.rate_limit == 10 and settings.notes
    assert "10.0.0.0/8" in settings.trusted_proxies and "127.0.0.0/8" in settings.trusted_proxies
    env = {"SPACE_ID": "me/demo", "JUHE_API_KEY": "k-1", "JUHE_RATE_LIMIT": "3"}
    explicit = AppSettings.from_mapping({**env, "JUHE_TRUSTED_PROXIES": "10.9.9.9"})
    assert (explicit.rate_limit, explicit.trusted_proxies, explicit.notes) == (3, ("10.9.9.9",), [])
    offline = AppSettings.from_mapping({"SPACE_ID": "me/demo"})
    assert offline.rate_limit == 0 and not offline.notes
    anywhere = AppSettings.from_mapping({"JUHE_API_KEY": "k-1"})
    assert (anywhere.on_space, anywhere.rate_limit, anywhere.trusted_proxies) == (False, 0, ())


def test_the_daily_limit_and_cache_hours_are_read_and_checked():
    settings = AppSettings.from_mapping({"JUHE_DAILY_LIMIT": "50", "JUHE_CACHE_HOURS": "6"})
    assert (settings.daily_limit, settings.cache_hours) == (50, 6.0)
    defaults = AppSettings.from_mapping({})
    assert (defaults.daily_limit, defaults.cache_hours) == (0, 24.0)
    for name, value in [("JUHE_DAILY_LIMIT", "-1"), ("JUHE_DAILY_LIMIT", "lots"), ("JUHE_CACHE_HOURS", "x")]:
        with pytest.raises(SettingsError, match=name):
            AppSettings.from_mapping({name: value})


def test_the_page_script_gets_limits_and_words_from_python_safely():
    """app.js types no figure or word: both come from juhe and texts.py, and no text can end the
    <script> they are written into."""
    import json

    from webapp.texts import PAGE_SCRIPT_TEXTS, page_script

    script = page_script()
    assert script.startswith("<script>window.JUHE = ") and script.count("</script>") == 1
    payload = json.loads(script.removeprefix("<script>window.JUHE = ").split("; window.JUHE_LIMITS")[0])
    assert payload["limits"] == {"promptChars": 800, "minSide": 512, "maxSide": 2048}
    assert set(payload["texts"]) == set(PAGE_SCRIPT_TEXTS)
