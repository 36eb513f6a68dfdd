"""The page and its config as answered to visitors: the config built once per address
(`webapp.middleware.config.ConfigCache`) and both gzipped (`webapp.middleware.compress`). Pure ASGI
with a counting app behind it, then the same through a running app."""

from __future__ import annotations

import asyncio
import gzip

import httpx
import pytest
from helpers.apphost import running_app
from starlette.middleware.gzip import GZipMiddleware

from webapp.middleware.compress import CompressPage
from webapp.middleware.config import ConfigCache
from webapp.middleware.language import SCRIPT


class CountingConfig:
    """An app answering every request with a body naming its Host and how many times it answered."""

    def __init__(self, status: int = 200, cookie: bool = False, padding: int = 600) -> None:
        self.calls = 0
        self.padding = padding
        self.status = status
        self.cookie = cookie

    async def __call__(self, scope, receive, send) -> None:
        self.calls += 1
        host = dict(scope["headers"]).get(b"host", b"?")
        body = (
            b'{"root": "http://' + host + b'", "n": ' + str(self.calls).encode() + b"}" + b" " * self.padding
        )
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if self.cookie:
            headers.append((b"set-cookie", b"a=b"))
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def get(app, path="/config", headers=(("host", "a.example"),), query=b"", method="GET", root=""):
    """Send one request through `app`; (status, headers, body)."""
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "root_path": root,
        "query_string": query,
        "scheme": "http",
        "server": ("127.0.0.1", 7860),
        "headers": [(k.encode(), v.encode()) for k, v in headers],
    }
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = sent[0]
    return start["status"], dict(start["headers"]), b"".join(m.get("body", b"") for m in sent[1:])


def test_the_same_address_is_answered_once():
    inner = CountingConfig()
    app = ConfigCache(inner)
    first = get(app)
    assert get(app) == first
    assert get(app, "/config/")[2].endswith(b" ") and inner.calls == 2  # its own entry
    assert get(app)[2] == first[2] and inner.calls == 2


@pytest.mark.parametrize(
    "header", [("host", "b.example"), ("x-forwarded-host", "c.example"), ("x-forwarded-proto", "https")]
)
def test_another_address_gets_its_own_answer(header):
    inner = CountingConfig()
    app = ConfigCache(inner)
    get(app)
    headers = (("host", "a.example"), header) if header[0] != "host" else (header,)
    get(app, headers=headers)
    assert inner.calls == 2
    get(app, headers=headers)
    assert inner.calls == 2


@pytest.mark.parametrize(
    "request_options",
    [
        {"query": b"deep_link=x"},
        {"query": b"page=two"},
        {"method": "POST"},
        {"path": "/gradio_api/info"},
        {"headers": (("host", "a.example"), ("host", "b.example"))},  # which one Gradio reads: not guessed
    ],
)
def test_other_requests_are_never_kept(request_options):
    inner = CountingConfig()
    app = ConfigCache(inner)
    get(app, **request_options)
    get(app, **request_options)
    assert inner.calls == 2


@pytest.mark.parametrize("inner", [CountingConfig(status=401), CountingConfig(cookie=True)])
def test_an_answer_that_is_not_a_plain_200_is_not_kept(inner):
    app = ConfigCache(inner)
    get(app)
    get(app)
    assert inner.calls == 2


def test_an_app_with_a_password_is_never_cached():
    inner = CountingConfig()
    app = ConfigCache(inner, enabled=False)
    get(app)
    get(app)
    assert inner.calls == 2


def test_under_a_root_path_too():
    inner = CountingConfig()
    app = ConfigCache(inner)
    get(app, path="/app/config", root="/app")
    get(app, path="/app/config", root="/app")
    assert inner.calls == 1


def test_varying_the_host_only_evicts_the_oldest():
    inner = CountingConfig()
    app = ConfigCache(inner, max_addresses=3)
    for host in ("a", "b", "c", "d"):
        get(app, headers=(("host", host),))
    assert len(app.answers) == 3
    get(app, headers=(("host", "d"),))
    assert inner.calls == 4
    get(app, headers=(("host", "a"),))  # the oldest went
    assert inner.calls == 5


@pytest.mark.parametrize(
    ("accept", "zipped"),
    [
        ("gzip, deflate, br", True),
        ("br;q=1.0, gzip;q=0.5", True),
        ("gzip;q=0", False),
        ("br", False),
        ("", False),
    ],
)
def test_a_kept_answer_is_gzipped_for_whoever_accepts_it(accept, zipped):
    inner = CountingConfig()
    app = ConfigCache(inner)
    plain = get(app)
    status, headers, body = get(app, headers=(("host", "a.example"), ("accept-encoding", accept)))
    assert status == 200 and inner.calls == 1
    assert headers[b"vary"] == b"Accept-Encoding"
    assert headers[b"content-length"] == str(len(body)).encode()
    assert (headers.get(b"content-encoding") == b"gzip") is zipped
    assert (gzip.decompress(body) if zipped else body) == plain[2]


def test_compression_outside_gets_a_fresh_copy_each_time():
    """GZip (like Gradio's Brotli) rewrites the start message's headers in place: the kept answer
    must not carry the first request's encoding into a request that did not ask for it."""
    inner = CountingConfig()
    app = GZipMiddleware(ConfigCache(inner), minimum_size=10)
    zipped = get(app, headers=(("host", "a.example"), ("accept-encoding", "gzip")))
    assert zipped[1].get(b"content-encoding") == b"gzip"
    plain = get(app)
    assert b"content-encoding" not in plain[1]
    assert plain[2].startswith(b'{"root": "http://a.example", "n": 1}')
    assert plain[1][b"content-length"] == str(len(plain[2])).encode()
    assert inner.calls == 1


@pytest.mark.app
@pytest.mark.loopback
def test_a_running_app_answers_its_config_for_each_address(tmp_path):
    """Through the real stack (Gradio's compression outside): the plain answer, then the kept one
    gzipped, decode to the same config, and a forwarded host gets links under its own root, also
    when asked again."""
    with running_app(tmp_path, live=False) as app, httpx.Client(base_url=app.url, timeout=30) as http:
        plain = http.get("/config", headers={"accept-encoding": "identity"})
        compressed = http.get("/config", headers={"accept-encoding": "br, gzip"})
        proxied = [http.get("/config", headers={"x-forwarded-host": "demo.example"}) for _ in range(2)]
    assert compressed.headers.get("content-encoding") == "gzip"
    assert compressed.num_bytes_downloaded < plain.num_bytes_downloaded / 5
    assert "content-encoding" not in plain.headers
    assert compressed.json() == plain.json()
    assert plain.json()["root"] == app.url
    assert [answer.json()["root"] for answer in proxied] == ["http://demo.example"] * 2
    assert proxied[0].content == proxied[1].content


def test_the_page_is_gzipped_for_whoever_accepts_it():
    inner = CountingConfig(padding=4000)  # over the 1 KiB below which compressing does not pay
    app = CompressPage(inner)
    status, headers, body = get(app, "/", headers=(("host", "a.example"), ("accept-encoding", "gzip")))
    assert headers[b"content-encoding"] == b"gzip"
    assert gzip.decompress(body).startswith(b'{"root": "http://a.example"')
    assert b"content-encoding" not in get(app, "/")[1]  # not asked for


@pytest.mark.parametrize("path", ["/config", "/gradio_api/queue/data", "/file=a.png"])
def test_nothing_but_the_page_is_compressed_here(path):
    app = CompressPage(CountingConfig(padding=4000))
    assert b"content-encoding" not in get(app, path, headers=(("accept-encoding", "gzip"),))[1]


@pytest.mark.app
@pytest.mark.loopback
def test_a_running_app_sends_its_page_gzipped_with_the_language_script(tmp_path):
    with running_app(tmp_path, live=False) as app, httpx.Client(base_url=app.url, timeout=30) as http:
        plain = http.get("/", headers={"accept-encoding": "identity"})
        zipped = http.get("/", headers={"accept-encoding": "gzip, deflate, br"})
    assert zipped.headers["content-encoding"] == "gzip" and "content-encoding" not in plain.headers
    assert zipped.num_bytes_downloaded < plain.num_bytes_downloaded / 4
    for page in (plain, zipped):
        assert SCRIPT.decode() in page.text and "window.gradio_config" in page.text


@pytest.mark.app
@pytest.mark.loopback
def test_behind_a_password_the_login_page_is_gzipped_with_its_login_script(tmp_path):
    """The login script is written into the page inside the compression, not skipped by it."""
    options = {"JUHE_ACCESS_PASSWORD": "pw-" + "x" * 12}
    with (
        running_app(tmp_path, live=False, **options) as app,
        httpx.Client(base_url=app.url, timeout=30) as http,
    ):
        page = http.get("/", headers={"accept-encoding": "gzip", "accept": "text/html"})
    assert page.headers["content-encoding"] == "gzip"
    assert "login-wait" in page.text
