"""Both clients on `httpx.MockTransport`: what is sent, retries, error mapping, settings, the key.

Each test that takes `run_client` runs twice, on the sync and on the async client.
"""

from __future__ import annotations

import io
import json

import httpx
import pytest
from helpers.mock_provider import RESULT_URL, Provider, form_of, ok
from PIL import Image

import juhe._client
from juhe import (
    DEFAULT_API_URL,
    ERROR_CODES,
    ConfigError,
    ConnectError,
    DownloadError,
    EditResult,
    HTTPStatusError,
    ImageEditClient,
    InvalidRequestError,
    JuheError,
    MalformedResponseError,
    ReadTimeoutError,
    Settings,
    TransportError,
    dotenv_file,
)
from juhe._metadata import png_chunks
from juhe._provenance import read_provenance

pytestmark = pytest.mark.usefixtures("clean_env")

KEY = "k3y-0123456789abcdef"
API_URL = "https://provider.test/image_edit/edit"


def png(size=(32, 24), colour=(255, 0, 0)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()


IMAGE = png()


def error(code: int, reason: str | None = None) -> httpx.Response:
    reason = reason or ERROR_CODES[code][1]
    return httpx.Response(200, json={"reason": reason, "result": None, "error_code": code})


def edit_steps(*args, **kwargs):
    """Steps for `run_client` that make one edit and return its result."""

    def steps(client):
        return (yield client.edit(*args, **kwargs))

    return steps


def raising_steps(expected: type[Exception], *args, **kwargs):
    """Steps that make one edit and return the error it raised, which must be an `expected`."""

    def steps(client):
        with pytest.raises(expected) as info:
            yield client.edit(*args, **kwargs)
        return info.value

    return steps


# --- the request ---------------------------------------------------------------------------------


def test_edit_posts_the_documented_form_and_returns_the_result(run_client):
    provider = Provider(ok("JH825251202145803Ae61U"))
    result = run_client(
        edit_steps(" 把图中的小猫换成小狗 ", [IMAGE], size=(1024, 768), model="auto"),
        api_key=KEY,
        api_url=API_URL,
        transport=provider.transport,
    )
    (request,) = provider.requests
    assert (request.method, str(request.url)) == ("POST", API_URL)
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    form = form_of(request)
    assert list(form) == ["key", "text", "image1", "image2", "image3", "size", "model"]
    assert form["key"] == KEY and form["text"] == "把图中的小猫换成小狗"
    assert form["image1"].startswith("data:image/png;base64,")
    assert (form["image2"], form["image3"], form["size"], form["model"]) == ("", "", "1024*768", "auto")
    assert isinstance(result, EditResult)
    assert (result.order_id, result.image_urls) == ("JH825251202145803Ae61U", [RESULT_URL])
    assert (result.prompt, result.size, result.model) == ("把图中的小猫换成小狗", "1024*768", "auto")
    assert result.elapsed_s >= 0 and result.requested_at <= result.completed_at


def test_long_prompt_is_sent_truncated_and_the_result_says_so(run_client):
    provider = Provider(ok())
    result = run_client(edit_steps("猫" * 900, IMAGE), api_key=KEY, transport=provider.transport)
    assert form_of(provider.requests[0])["text"] == "猫" * 800
    assert len(result.warnings) == 1 and "800" in result.warnings[0]


def test_per_call_key_overrides_the_clients_key(run_client):
    provider = Provider(ok())
    run_client(edit_steps("p", IMAGE, api_key="per-call-key"), api_key=KEY, transport=provider.transport)
    assert form_of(provider.requests[0])["key"] == "per-call-key"


def test_timeouts_reach_the_request(run_client):
    provider = Provider(ok())
    run_client(edit_steps("p", IMAGE), api_key=KEY, timeout=33, transport=provider.transport)
    timeout = provider.requests[0].extensions["timeout"]
    assert timeout["read"] == 33 and timeout["connect"] == juhe._client.CONNECT_TIMEOUT


def test_stages_are_reported_before_the_request(run_client):
    provider = Provider(ok())
    seen = []
    run_client(
        edit_steps("p", IMAGE, on_stage=lambda stage: seen.append((stage, len(provider.requests)))),
        api_key=KEY,
        transport=provider.transport,
    )
    assert seen == [("preparing", 0), ("waiting", 0)]


def test_requested_at_is_taken_before_the_request_and_completed_at_after(run_client, monkeypatch):
    ticks = iter(range(1000))  # a fake clock that reads earlier than any real one
    monkeypatch.setattr(juhe._client, "now_iso", lambda: f"1999-01-01T00:00:{next(ticks):03d}")
    sent_at = []

    def provider(request):
        sent_at.append(juhe._client.now_iso())
        return ok()

    result = run_client(edit_steps("p", IMAGE), api_key=KEY, transport=httpx.MockTransport(provider))
    assert result.requested_at < sent_at[0] < result.completed_at


# --- retries -------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 503])
def test_retries_a_refusal_before_any_work_then_succeeds(run_client, no_backoff, status):
    provider = Provider(httpx.Response(status), ok("JH2"))
    result = run_client(edit_steps("p", IMAGE), api_key=KEY, transport=provider.transport)
    assert result.order_id == "JH2"
    assert len(provider.posts) == 2 and no_backoff == [0]
    assert provider.posts[0].content == provider.posts[1].content


def test_gives_up_after_two_retries(run_client, no_backoff):
    provider = Provider(httpx.Response(503))
    error = run_client(raising_steps(HTTPStatusError, "p", IMAGE), api_key=KEY, transport=provider.transport)
    assert error.status_code == 503 and "503" in str(error)
    assert len(provider.posts) == 3 and no_backoff == [0, 1]


@pytest.mark.parametrize("status", [400, 401, 404, 413, 500, 502, 504])
def test_other_statuses_are_not_retried(run_client, no_backoff, status):
    """502 and 504 come from a gateway after the edit may have run (and been billed)."""
    provider = Provider(httpx.Response(status, text="<html>nope</html>"), ok())
    error = run_client(raising_steps(HTTPStatusError, "p", IMAGE), api_key=KEY, transport=provider.transport)
    assert error.status_code == status
    assert len(provider.posts) == 1 and no_backoff == []


def test_no_retry_after_a_read_timeout(run_client, no_backoff):
    provider = Provider(httpx.ReadTimeout("timed out"), ok())
    error = run_client(raising_steps(ReadTimeoutError, "p", IMAGE), api_key=KEY, transport=provider.transport)
    assert "not retried" in str(error)
    assert len(provider.posts) == 1 and no_backoff == []


@pytest.mark.parametrize("code", sorted(ERROR_CODES))
def test_provider_errors_are_never_retried(run_client, no_backoff, code):
    family = ERROR_CODES[code][0]
    provider = Provider(error(code), ok())
    raised = run_client(raising_steps(family, "p", IMAGE), api_key=KEY, transport=provider.transport)
    assert raised.code == code
    assert len(provider.posts) == 1 and no_backoff == []


# --- errors below the API ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raised", "expected", "kind", "sent"),
    [
        (httpx.ConnectError("refused"), ConnectError, "connect", 3),
        (httpx.ConnectTimeout("slow dns"), ConnectError, "connect", 3),
        (httpx.PoolTimeout("pool"), ConnectError, "connect", 1),
        (httpx.ReadTimeout("read"), ReadTimeoutError, "timeout", 1),
        (httpx.WriteTimeout("write"), ReadTimeoutError, "timeout", 1),
        (
            httpx.RemoteProtocolError("Server disconnected without sending a response."),
            TransportError,
            "dropped",
            1,
        ),
        (httpx.ReadError("reset by peer"), TransportError, "network", 1),
        (httpx.ProxyError("proxy"), TransportError, "network", 1),
        (httpx.InvalidURL("Invalid port"), TransportError, "network", 1),
    ],
)
def test_every_httpx_error_is_translated(run_client, no_backoff, raised, expected, kind, sent):
    """Only a connection that never opened is tried again (twice): the edit surely never arrived."""
    provider = Provider(raised)
    error = run_client(raising_steps(JuheError, "p", IMAGE), api_key=KEY, transport=provider.transport)
    assert type(error) is expected and error.kind == kind
    assert isinstance(error.__cause__, type(raised))
    assert len(provider.posts) == sent


def test_non_json_answer_is_malformed(run_client):
    provider = Provider(httpx.Response(200, text="<html>upstream error</html>"))
    error = run_client(
        raising_steps(MalformedResponseError, "p", IMAGE), api_key=KEY, transport=provider.transport
    )
    assert "upstream error" in str(error)


# --- checked before sending ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "images", "size", "match"),
    [
        ("", [IMAGE], None, "empty"),
        ("   ", [IMAGE], None, "empty"),
        (None, [IMAGE], None, "string"),
        ("p", [], None, "1 to 3"),
        ("p", [IMAGE] * 4, None, "1 to 3"),
        ("p", [IMAGE], "abc", "size"),
        ("p", [IMAGE], "4096*4096", "size"),
        ("p", [b""], None, "empty"),
        ("p", [b"not an image at all"], None, "not a readable image"),
        ("p", ["missing-file.png"], None, "no image file"),
        ("p", ["ftp://example.com/a.png"], None, "http"),
        ("p", [IMAGE, IMAGE[: len(IMAGE) // 2]], None, "invalid request"),
    ],
)
def test_bad_input_raises_before_any_request(run_client, prompt, images, size, match):
    provider = Provider(AssertionError("no request may be sent"))
    error = run_client(
        raising_steps(InvalidRequestError, prompt, images, size), api_key=KEY, transport=provider.transport
    )
    assert match in str(error)
    assert provider.requests == []


def test_missing_key_raises_before_any_request(run_client):
    provider = Provider(AssertionError("no request may be sent"))
    error = run_client(raising_steps(ConfigError, "p", IMAGE), transport=provider.transport)
    assert error.kind == "key" and "JUHE_API_KEY" in str(error)
    assert provider.requests == []


# --- the key stays secret ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        error(10001, f"错误的请求KEY {KEY}"),
        httpx.Response(200, text=f"<html>bad key {KEY}</html>"),
        httpx.Response(500, text=f"key={KEY}"),
        httpx.ConnectError(f"could not send key={KEY}"),
        httpx.ReadError(f"reset while sending key={KEY}"),
        httpx.ReadTimeout(f"timed out, key={KEY}"),
    ],
    ids=["echoed-reason", "echoed-body", "http500", "connect", "read", "timeout"],
)
def test_the_key_never_appears_in_an_error(run_client, no_backoff, answer):
    provider = Provider(answer)
    error = run_client(raising_steps(JuheError, "p", IMAGE), api_key=KEY, transport=provider.transport)
    assert KEY not in str(error) and KEY not in repr(error)
    assert all(KEY not in str(arg) for arg in error.args)


def test_the_key_is_not_in_a_clients_repr():
    with ImageEditClient(api_key=KEY) as client:
        assert KEY not in repr(client) and "api_key=<set>" in repr(client)


# --- downloads -----------------------------------------------------------------------------------


def download_steps(directory, result):
    def steps(client):
        with pytest.raises(DownloadError) as info:
            yield client.download(result, directory)
        return info.value

    return steps


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(403, text="<Error><Code>AccessDenied</Code></Error>"),
        httpx.Response(200, text="<html>not an image</html>"),
        httpx.Response(200, content=IMAGE[: len(IMAGE) // 2]),
        httpx.ReadTimeout("read"),
        httpx.ConnectError("refused"),
    ],
    ids=["expired", "not-image", "truncated", "timeout", "connect"],
)
def test_failed_download_names_the_order_and_writes_nothing(run_client, no_backoff, tmp_path, answer):
    result = EditResult(order_id="JH42", image_urls=[RESULT_URL])
    error = run_client(download_steps(tmp_path / "out", result), transport=Provider(answer).transport)
    assert error.order_id == "JH42" and "JH42" in str(error)
    assert "Signature" not in str(error)  # the link is named without its signature
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


@pytest.mark.parametrize(
    "url", ["ftp://results.test/1.png", "https://[::1/x.png", "https://a.test:1/\x01.png"]
)
def test_download_of_an_unusable_link_is_a_download_error(run_client, tmp_path, url):
    provider = Provider(httpx.Response(200, content=IMAGE))
    result = EditResult(order_id="JH43", image_urls=[url])
    error = run_client(download_steps(tmp_path, result), transport=provider.transport)
    assert error.order_id == "JH43"
    assert provider.requests == []


def test_download_saves_the_image_and_a_sidecar(run_client, tmp_path):
    provider = Provider(httpx.Response(200, content=IMAGE))
    result = EditResult(order_id="JH44", image_urls=[RESULT_URL], prompt="p")

    def steps(client):
        return (yield client.download(result, tmp_path))

    (path,) = run_client(steps, transport=provider.transport)
    assert path.name == "JH44.png"
    # the provider's image plus the AIGC label: its image data is untouched
    assert image_chunks(path.read_bytes()) == image_chunks(IMAGE)
    assert read_provenance(path)["order_id"] == "JH44"
    assert str(provider.requests[0].url) == RESULT_URL  # the signed query string is not re-encoded
    sidecar = json.loads((tmp_path / "JH44.json").read_text())
    assert sidecar["order_id"] == "JH44" and sidecar["files"] == ["JH44.png"]


def image_chunks(data: bytes) -> list[bytes]:
    """A PNG's chunks but its text and XMP ones (where the label goes)."""
    return [data[start:end] for kind, start, end in png_chunks(data) if kind not in (b"tEXt", b"iTXt")]


# --- settings ------------------------------------------------------------------------------------


def write_dotenv(directory, **values) -> None:
    (directory / ".env").write_text("".join(f"{k}={v}\n" for k, v in values.items()))


def test_settings_default_without_environment():
    settings = Settings.resolve()
    assert settings.api_key is None and settings.api_url == DEFAULT_API_URL
    assert settings.timeout >= 60 and settings.max_body_bytes == 6 * 1024 * 1024


def test_settings_come_from_dotenv_and_the_real_environment_wins(tmp_path, monkeypatch):
    write_dotenv(tmp_path, JUHE_API_KEY="from-dotenv", JUHE_API_URL=API_URL, JUHE_TIMEOUT="75")
    assert Settings.resolve().api_key == "from-dotenv"
    monkeypatch.setenv("JUHE_API_KEY", "from-env")
    monkeypatch.setenv("JUHE_TIMEOUT", "80")
    settings = Settings.resolve()
    assert (settings.api_key, settings.api_url, settings.timeout) == ("from-env", API_URL, 80.0)


def test_explicit_arguments_win_over_environment_and_dotenv(tmp_path, monkeypatch):
    write_dotenv(tmp_path, JUHE_API_KEY="from-dotenv", JUHE_MAX_SIDE="1024")
    monkeypatch.setenv("JUHE_API_KEY", "from-env")
    settings = Settings.resolve(api_key="explicit", max_side=1536)
    assert (settings.api_key, settings.max_side) == ("explicit", 1536)


def test_dotenv_is_read_from_the_working_folder_only(tmp_path, monkeypatch):
    """A parent folder's `.env` may be another project's: its key is not picked up."""
    write_dotenv(tmp_path, JUHE_API_KEY="parent-dotenv")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    assert dotenv_file() is None and Settings.resolve().api_key is None
    assert dotenv_file(tmp_path) == tmp_path / ".env"
    (tmp_path / "sub" / ".env").mkdir()  # not a file
    assert dotenv_file() is None


def test_settings_check_themselves_however_they_are_built():
    with pytest.raises(ConfigError, match="JUHE_API_URL"):
        Settings(api_url="ftp://example.com")
    with pytest.raises(ConfigError, match="JUHE_MAX_SIDE"):
        Settings(max_side=100)
    with pytest.raises(ConfigError, match="JUHE_TIMEOUT"):
        Settings(timeout=0)


def test_client_sends_with_settings_from_the_environment(run_client, tmp_path, monkeypatch):
    write_dotenv(tmp_path, JUHE_API_KEY="from-dotenv", JUHE_API_URL=API_URL, JUHE_TIMEOUT="75")
    monkeypatch.setenv("JUHE_API_KEY", "from-env")
    provider = Provider(ok())
    run_client(edit_steps("p", IMAGE), transport=provider.transport)
    (request,) = provider.requests
    assert str(request.url) == API_URL
    assert form_of(request)["key"] == "from-env"
    assert request.extensions["timeout"]["read"] == 75


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("JUHE_TIMEOUT", "abc"),
        ("JUHE_TIMEOUT", "-5"),
        ("JUHE_MAX_BODY_BYTES", "lots"),
        ("JUHE_MAX_SIDE", "100"),
        ("JUHE_API_URL", "ftp://provider.test/edit"),
        ("JUHE_API_URL", "gpt.juhe.cn/image_edit/edit"),
        ("JUHE_API_URL", "http://[::1/image_edit/edit"),
        ("JUHE_API_URL", "https:///image_edit/edit"),
    ],
)
def test_bad_settings_are_refused_when_the_client_is_built(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name) as info:
        ImageEditClient()
    assert info.value.kind == "config" and not isinstance(info.value, InvalidRequestError)
    assert name in info.value.zh and name in info.value.en


def test_settings_repr_hides_the_key():
    assert KEY not in repr(Settings.resolve(api_key=KEY))
