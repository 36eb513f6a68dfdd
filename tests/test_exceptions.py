"""The exception hierarchy, the code table, and keeping the key out of every error."""

from __future__ import annotations

import asyncio
import pickle
from urllib.parse import quote

import pytest

import juhe
from juhe import (
    ERROR_CODES,
    AuthenticationError,
    ConfigError,
    ConnectError,
    ContentRejectedError,
    DownloadError,
    GenerationFailedError,
    HTTPStatusError,
    InvalidRequestError,
    JuheError,
    MalformedResponseError,
    RateLimitError,
    ReadTimeoutError,
    ServiceUnavailableError,
    TransportError,
    error_for_code,
)
from juhe._exceptions import download_error, invalid, scrub, scrub_text, status_error

KEY = "a1b2c3d4e5f6a7b8c9d0"


def test_families_are_disjoint_outside_transport():
    families = [
        ConfigError,
        InvalidRequestError,
        ContentRejectedError,
        GenerationFailedError,
        AuthenticationError,
        RateLimitError,
        ServiceUnavailableError,
        TransportError,
        DownloadError,
    ]
    for a in families:
        for b in families:
            assert issubclass(a, b) == (a is b)


def test_root_carries_the_providers_fields():
    error = JuheError("次数超限", "quota used up", code=10012, reason="请求超过次数限制", order_id="JH1")
    fields = (error.kind, error.code, error.zh, error.en, error.reason, error.order_id, error.detail)
    assert fields == ("10012", 10012, "次数超限", "quota used up", "请求超过次数限制", "JH1", None)
    assert str(error) == "error 10012: 次数超限 / quota used up (provider: 请求超过次数限制)"
    plain = JuheError("中文", "English")
    assert (plain.code, plain.kind, str(plain)) == (None, "error", "error: 中文 / English")


def test_str_is_built_from_the_fields_and_follows_them():
    error = DownloadError("下载失败", "could not save", order_id="JH2", detail="HTTP 403")
    assert str(error) == "download failed: 下载失败 / could not save: HTTP 403"
    error.detail = None
    assert str(error) == "download failed: 下载失败 / could not save"


@pytest.mark.parametrize(
    ("error", "kind", "label"),
    [
        (ConfigError("配置", "setting"), "config", "bad setting"),
        (ConfigError("无 key", "no key", kind="key"), "key", "missing key"),
        (InvalidRequestError("无效", "invalid"), "invalid", "invalid request"),
        (ConnectError("连不上", "unreachable"), "connect", "connect failed"),
        (ReadTimeoutError("超时", "too slow"), "timeout", "timeout"),
        (TransportError("中断", "dropped", kind="dropped"), "dropped", "connection dropped"),
        (TransportError("网络", "network"), "network", "transport error"),
        (MalformedResponseError("坏", "bad"), "malformed", "malformed response"),
        (DownloadError("下载", "download"), "download", "download failed"),
        (error_for_code(282504), "282504", "error 282504"),
        (error_for_code(424242), "424242", "error 424242"),
    ],
)
def test_every_error_has_a_kind_and_a_label(error, kind, label):
    assert (error.kind, error.label) == (kind, label)
    assert str(error).startswith(f"{label}: {error.zh} / {error.en}")


def test_http_status_error_keeps_the_status():
    error = HTTPStatusError("服务返回 HTTP 502", "the provider answered HTTP 502", status_code=502)
    assert error.status_code == 502 and isinstance(error, TransportError)
    assert (error.kind, error.label, error.code) == ("http502", "http 502", None)
    assert str(error) == "http 502: 服务返回 HTTP 502 / the provider answered HTTP 502"


def test_helpers_build_errors_with_their_fields():
    assert status_error(503, "Service Unavailable").detail == "Service Unavailable"
    failed = download_error("JH9", "https://r.test/a.png?Signature=s3cret", "HTTP 403")
    assert (failed.order_id, failed.detail, failed.kind) == ("JH9", "HTTP 403", "download")
    assert "s3cret" not in str(failed) and "https://r.test/a.png" in failed.en
    assert type(invalid("中", "en")) is InvalidRequestError


@pytest.mark.parametrize(
    ("codes", "family"),
    [
        ((282501, 282502, 282506), InvalidRequestError),
        ((282504,), ContentRejectedError),
        ((282505,), GenerationFailedError),
        ((10001, 10002, 10003, 10004, 10005, 10007, 10008, 10009), AuthenticationError),
        ((10011, 10012, 10013), RateLimitError),
        ((282503, 10014, 10020, 10021), ServiceUnavailableError),
    ],
)
def test_code_families_match_the_documented_hierarchy(codes, family):
    for code in codes:
        assert ERROR_CODES[code][0] is family


@pytest.mark.parametrize("code", sorted(ERROR_CODES))
def test_error_for_code(code):
    family, zh, en = ERROR_CODES[code]
    error = error_for_code(code, zh, "JH7")
    assert type(error) is family
    assert (error.code, error.reason, error.order_id) == (code, zh, "JH7")
    assert str(error) == f"error {code}: {zh} / {en}"


def test_error_for_code_appends_a_different_provider_reason():
    error = error_for_code(10014, "系统内部异常(调用充值类业务时,请务必联系客服)")
    assert "10014" in str(error) and "(provider: 系统内部异常(调用充值类业务时" in str(error)


def test_error_for_unknown_code_is_the_root_with_its_number():
    error = error_for_code(123456)
    assert type(error) is JuheError
    assert error.code == 123456 and "123456" in str(error)


def test_scrub_removes_an_echoed_key_from_str_and_repr():
    error = scrub(error_for_code(10001, f"错误的请求KEY: {KEY}"), KEY)
    assert KEY not in str(error) and KEY not in repr(error) and "***" in str(error)
    assert all(KEY not in str(arg) for arg in error.args)


def test_scrub_cleans_every_text_field_of_both_keys():
    other = "visitor+key/98=7654321"
    error = DownloadError(f"{KEY} 中", f"{other} en", reason=KEY, order_id=f"JH{other}", detail=quote(other))
    scrub(error, KEY, other)
    fields = (error.zh, error.en, error.reason, error.order_id, error.detail)
    assert all(KEY not in f and other not in f and "***" in f for f in fields), fields


def test_scrub_text_replaces_terminal_escapes_and_lone_surrogates():
    assert scrub_text("ok\x1b[2J\u202ebad\ud800 \u3000x\n") == "ok\ufffd[2J\ufffdbad\ufffd  x "
    assert scrub_text("short key ab", "ab") == "short key ab"  # keys under 6 characters are not sought


def test_settings_and_clients_never_show_the_key(clean_env):
    settings = juhe.Settings.resolve(api_key=KEY)
    assert KEY not in repr(settings) and KEY not in str(settings)
    assert "api_key=<set>" in repr(settings)
    with juhe.ImageEditClient(api_key=KEY) as client:
        assert KEY not in repr(client) and KEY not in str(client)
    async_client = juhe.AsyncImageEditClient(api_key=KEY)
    assert KEY not in repr(async_client) and KEY not in str(async_client)
    asyncio.run(async_client.aclose())


@pytest.mark.parametrize("family", sorted({family for family, _, _ in ERROR_CODES.values()}, key=str))
def test_every_error_crosses_a_process_boundary_whole(family):
    """Pickled (a process pool, the app's edit process) and loaded again, an error keeps its type,
    its fields and its text."""
    error = family("中文", "English", kind="x", code=1, reason="r", order_id="JH1", detail="d")
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is family and back.__dict__ == error.__dict__ and str(back) == str(error)


def test_an_http_status_error_crosses_a_process_boundary_whole():
    error = status_error(502, "Bad Gateway")
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is HTTPStatusError and back.status_code == 502 and str(back) == str(error)
