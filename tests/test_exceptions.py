"""The exception hierarchy, the code table, and keeping the key out of every error."""

from __future__ import annotations

import asyncio
import inspect

import pytest

import juhe
from juhe import (
    ERROR_CODES,
    AuthenticationError,
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
from juhe._request import scrub

KEY = "a1b2c3d4e5f6a7b8c9d0"


@pytest.mark.parametrize(
    ("cls", "parent"),
    [
        (InvalidRequestError, JuheError),
        (ContentRejectedError, JuheError),
        (GenerationFailedError, JuheError),
        (AuthenticationError, JuheError),
        (RateLimitError, JuheError),
        (ServiceUnavailableError, JuheError),
        (TransportError, JuheError),
        (ConnectError, TransportError),
        (ReadTimeoutError, TransportError),
        (HTTPStatusError, TransportError),
        (MalformedResponseError, TransportError),
        (DownloadError, JuheError),
    ],
)
def test_hierarchy(cls, parent):
    assert cls.__bases__ == (parent,)
    assert issubclass(cls, Exception)
    assert cls.__doc__ and cls.__doc__.strip()


def test_families_are_disjoint_outside_transport():
    families = [
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
    error = JuheError("msg", code=10012, reason="请求超过次数限制", order_id="JH1")
    assert (str(error), error.message, error.code, error.reason, error.order_id) == (
        "msg",
        "msg",
        10012,
        "请求超过次数限制",
        "JH1",
    )
    assert JuheError("plain").code is None


def test_http_status_error_keeps_the_status():
    error = HTTPStatusError("http 502", status_code=502)
    assert error.status_code == 502 and isinstance(error, TransportError)


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


def test_settings_and_clients_never_show_the_key(clean_env):
    settings = juhe.Settings.resolve(api_key=KEY)
    assert KEY not in repr(settings) and KEY not in str(settings)
    assert "api_key=<set>" in repr(settings)
    with juhe.ImageEditClient(api_key=KEY) as client:
        assert KEY not in repr(client) and KEY not in str(client)
    async_client = juhe.AsyncImageEditClient(api_key=KEY)
    assert KEY not in repr(async_client) and KEY not in str(async_client)
    asyncio.run(async_client.aclose())


def test_every_public_exception_is_exported():
    exported = {name for name in juhe.__all__ if name.endswith("Error")}
    defined = {
        name
        for name, obj in inspect.getmembers(juhe._exceptions, inspect.isclass)
        if issubclass(obj, JuheError)
    }
    assert exported == defined


def test_all_is_sorted_and_importable():
    def isort_order(name: str) -> tuple[int, str]:  # CONSTANTS, then Classes, then functions
        return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)

    assert juhe.__all__ == sorted(set(juhe.__all__), key=isort_order)
    for name in juhe.__all__:
        assert hasattr(juhe, name)
