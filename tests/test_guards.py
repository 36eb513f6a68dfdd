"""The guards of `webapp.guards` on their own: Gradio's fetch path refusing links, and each ASGI
middleware in front of a small recording app (httpx.ASGITransport, no server, fake clocks)."""

from __future__ import annotations

import asyncio

import gradio as gr
import httpx
import pytest
from gradio import processing_utils
from helpers.apphost import is_bilingual
from starlette.requests import Request
from starlette.responses import PlainTextResponse

from webapp.guards import (
    LOGIN_BLOCK_MAX_S,
    LOGIN_BLOCK_S,
    LOGIN_FAILURES,
    LOGIN_MEMORY_S,
    BodyCap,
    LoginBook,
    LoginThrottle,
    RemoteFiles,
    UploadBudget,
    address_key,
    install_download_guard,
    is_remote_file_path,
    max_request_body,
    password_check,
    visitor_address,
)
from webapp.settings import AppSettings, ConfigError

LINK_REFUSED = "send links as plain strings"


class Clock:
    """A clock that moves only when told."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Recorder:
    """The app behind a middleware: reads the whole body, answers 200 (or as `answer` says), and
    records what reached it."""

    def __init__(self, answer=None, delay: float = 0.0) -> None:
        self.calls: list[tuple[str, int]] = []
        self.answer = answer
        self.delay = delay

    async def __call__(self, scope, receive, send) -> None:
        request = Request(scope, receive)
        body = await request.body()
        if self.delay:
            await asyncio.sleep(self.delay)
        self.calls.append((scope["path"], len(body)))
        status = self.answer(body) if self.answer else 200
        await PlainTextResponse("ok", status_code=status)(scope, receive, send)


def client(app, address: str = "198.51.100.7") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://app")


def run(coroutine):
    return asyncio.run(coroutine)


# --- H1: Gradio's own fetch path refuses links ------------------------------------------------------


@pytest.fixture
def guarded(probe, monkeypatch, tmp_path):
    """The guard installed, Gradio's cache in `tmp_path`, and outbound HTTP going to `probe`."""
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))
    install_download_guard()
    return probe


def file_data(path: str) -> dict:
    return {"path": path, "meta": {"_type": "gradio.FileData"}}


@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.parametrize("component", [gr.Image, gr.File, gr.Gallery, gr.Audio, gr.Textbox])
def test_gradios_move_to_cache_refuses_a_link(guarded, tmp_path, scheme, component):
    block = component()
    link = guarded.link("h1.png", scheme)
    with pytest.raises(gr.Error) as info:
        run(processing_utils.async_move_files_to_cache(file_data(link), block, check_in_upload_folder=True))
    assert LINK_REFUSED in info.value.message and is_bilingual(info.value.message)
    with pytest.raises(gr.Error, match=LINK_REFUSED):
        processing_utils.move_files_to_cache(file_data(link), block)
    assert guarded.hits == []
    assert not any(tmp_path.iterdir())  # not even the download's folder was made


def test_every_gradio_fetch_function_refuses(guarded):
    link = guarded.link("h1.svg")
    block = gr.Image()
    for fetch in (
        lambda: run(block.async_move_resource_to_block_cache(link)),
        lambda: block.move_resource_to_block_cache(link),
        lambda: run(processing_utils.async_ssrf_protected_get(link)),
        lambda: processing_utils.save_url_to_cache(link, "/tmp"),
        lambda: processing_utils.ssrf_protected_download(link, "/tmp"),
    ):
        with pytest.raises(gr.Error, match=LINK_REFUSED):
            fetch()
    assert guarded.hits == []


def test_local_files_still_move_to_the_cache(guarded, tmp_path):
    upload = tmp_path / "up.png"
    upload.write_bytes(b"\x89PNG\r\n\x1a\n")
    moved = run(processing_utils.async_move_files_to_cache(file_data(str(upload)), gr.Image()))
    assert moved["path"] == str(upload)


# --- who is asking ----------------------------------------------------------------------------------

TRUSTED = ("10.0.0.0/8", "127.0.0.1")


@pytest.mark.parametrize(
    ("peer", "forwarded", "behind", "expected"),
    [
        ("203.0.113.9", None, False, "203.0.113.9"),  # direct
        ("203.0.113.9", "1.2.3.4", False, "203.0.113.9"),  # forged by an untrusted peer
        ("10.1.2.3", "1.2.3.4, 203.0.113.9", False, "203.0.113.9"),  # trusted proxy: right-most
        ("10.1.2.3", "1.2.3.4, 203.0.113.9", True, "203.0.113.9"),  # Space, proxy trusted
        ("203.0.113.9", "1.2.3.4, 203.0.113.9", True, "203.0.113.9"),  # Space, uvicorn rewrote the peer
        ("10.1.2.3", "203.0.113.9, 10.9.9.9", True, "203.0.113.9"),  # trusted hops skipped
        ("172.31.0.5", "203.0.113.9", True, None),  # Space, proxy not trusted: its address is no one's
        ("172.31.0.5", "172.31.0.5, 203.0.113.9", True, None),  # ... even if a visitor writes it in
        ("10.1.2.3", None, True, None),  # Space, nothing forwarded
    ],
)
def test_visitor_address(peer, forwarded, behind, expected):
    assert visitor_address(peer, forwarded, TRUSTED, behind) == expected


def test_an_ipv6_visitor_is_counted_by_their_64():
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1")
    assert address_key("::ffff:203.0.113.9") == "203.0.113.9"
    assert address_key("203.0.113.9") == "203.0.113.9"


# --- M1: no relaying ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/gradio_api/file=https://example.org/big.bin",
        "/gradio_api/file=http://example.org/big.bin",
        "/gradio_api/file=HTTPS://example.org/x",
        "/gradio_api/file=https%3A%2F%2Fexample.org/x",
        "/gradio_api/file=https%253A%252F%252Fexample.org/x",
        "/gradio_api/file=//example.org/x",
        "/gradio_api/file/https://example.org/x",
        "/file=https://example.org/x",
        "/root/gradio_api/file=ftp://example.org/x",
        "/gradio_api/proxy=https://owner-space.hf.space/gradio_api/file=/etc/passwd",
    ],
)
def test_remote_file_routes_are_refused(path):
    inner = Recorder()

    async def get():
        async with client(RemoteFiles(inner)) as http:
            return await http.get(path)

    response = run(get())
    assert response.status_code == 403 and is_bilingual(response.text)
    assert "relay" in response.text and inner.calls == []


@pytest.mark.parametrize(
    "path", ["/gradio_api/file=/tmp/gradio/abc/cat.png", "/gradio_api/file=outputs/x.png", "/config"]
)
def test_local_file_routes_pass(path):
    assert not is_remote_file_path(path)
    inner = Recorder()

    async def get():
        async with client(RemoteFiles(inner)) as http:
            return await http.get(path)

    assert run(get()).status_code == 200 and inner.calls


# --- 6: request bodies --------------------------------------------------------------------------------


def test_the_body_cap_holds_three_base64_images_and_a_megabyte():
    assert max_request_body(20 * 1024 * 1024) == 3 * 27_962_028 + 1_048_576
    assert max_request_body(3) == 3 * 4 + 1_048_576


def chunks(total: int, size: int = 65536):
    async def body():
        sent = 0
        while sent < total:
            yield b"x" * min(size, total - sent)
            sent += size

    return body()


@pytest.mark.parametrize("path", ["/gradio_api/mcp/", "/gradio_api/queue/join", "/gradio_api/call/edit"])
def test_a_body_over_the_cap_is_refused_with_413(path):
    inner = Recorder()

    async def post():
        async with client(BodyCap(inner, limit=100_000)) as http:
            sized = await http.post(path, content=b"x" * 100_001)
            streamed = await http.post(path, content=chunks(10_000_000))
            within = await http.post(path, content=chunks(100_000))
            return sized, streamed, within

    sized, streamed, within = run(post())
    assert sized.status_code == 413 and streamed.status_code == 413 and is_bilingual(sized.text)
    assert "98 KB" in sized.text
    assert within.status_code == 200
    assert inner.calls == [(path, 100_000)]  # only the one within the cap reached the app whole


def test_uploads_are_left_to_their_own_budget():
    inner = Recorder()

    async def post():
        async with client(BodyCap(inner, limit=1000)) as http:
            return await http.post("/gradio_api/upload", content=b"x" * 5000)

    assert run(post()).status_code == 200 and inner.calls == [("/gradio_api/upload", 5000)]


# --- M2: uploads per address ------------------------------------------------------------------------


def upload_budget(clock, files=10, size=1_000_000, **env):
    settings = AppSettings.from_mapping({"JUHE_TRUSTED_PROXIES": "127.0.0.1", **env})
    inner = Recorder()
    return UploadBudget(inner, settings, files=files, size=size, clock=clock), inner


def forwarded(address: str) -> dict:
    return {"X-Forwarded-For": address}


def test_uploads_over_the_file_budget_get_429_per_address():
    clock = Clock()
    budget, inner = upload_budget(clock)

    async def post(address, n=1):
        async with client(budget, "127.0.0.1") as http:
            files = [("files", (f"f{i}.png", b"png")) for i in range(n)]
            return await http.post("/gradio_api/upload", files=files, headers=forwarded(address))

    assert [run(post("203.0.113.1")).status_code for _ in range(10)] == [200] * 10
    refused = run(post("203.0.113.1"))
    assert refused.status_code == 429 and is_bilingual(refused.text)
    assert "at most 10 files" in refused.text and 1 <= int(refused.headers["Retry-After"]) <= 61
    assert run(post("203.0.113.2")).status_code == 200  # another visitor is not affected
    clock.now += 62
    assert run(post("203.0.113.1")).status_code == 200  # a minute later
    assert len(inner.calls) == 12


def test_many_files_in_one_request_are_cut():
    budget, inner = upload_budget(Clock())

    async def post():
        async with client(budget) as http:
            files = [("files", (f"f{i}.png", b"png" * 100)) for i in range(11)]
            return await http.post("/gradio_api/upload", files=files)

    assert run(post()).status_code == 429
    assert inner.calls == []  # the app got a disconnect, never the whole body


def test_bytes_over_the_budget_are_refused_by_length_or_while_streaming():
    budget, inner = upload_budget(Clock(), size=100_000)
    headers = {"Content-Type": "multipart/form-data; boundary=b0"}

    async def post():
        async with client(budget) as http:
            sized = await http.post("/gradio_api/upload", content=b"x" * 100_001, headers=headers)
            streamed = await http.post("/gradio_api/upload", content=chunks(1_000_000), headers=headers)
            return sized, streamed

    sized, streamed = run(post())
    assert sized.status_code == 429 and streamed.status_code == 429
    assert "98 KB" in sized.text
    assert inner.calls == []


def test_other_routes_are_not_budgeted():
    budget, inner = upload_budget(Clock(), files=0, size=0)

    async def post():
        async with client(budget) as http:
            return await http.post("/gradio_api/queue/join", content=b"{}")

    assert run(post()).status_code == 200 and inner.calls


# --- M3: failed logins ---------------------------------------------------------------------------------


def test_password_check_is_right_only_for_the_password():
    check = password_check("pässwörd")
    assert check("anyone", "pässwörd") and check("", "pässwörd")
    assert not check("anyone", "pässwörd ") and not check("anyone", "") and not check("x", "\udcff")


def fail_until_blocked(book: LoginBook, key: str) -> float:
    for _ in range(LOGIN_FAILURES):
        assert book.begin(key) == 0
        book.end(key, succeeded=False)
    return book.begin(key)


def test_failed_logins_block_an_address_for_a_growing_time():
    clock = Clock()
    book = LoginBook(clock)
    waits = []
    for _ in range(8):
        waits.append(fail_until_blocked(book, "a"))
        assert book.begin("b") == 0  # another address
        book.end("b", succeeded=False)
        clock.now += waits[-1]
    assert waits == [LOGIN_BLOCK_S * 2**n for n in range(6)] + [LOGIN_BLOCK_MAX_S] * 2
    clock.now += LOGIN_MEMORY_S  # an hour after the last block ended, it starts over
    assert fail_until_blocked(book, "a") == LOGIN_BLOCK_S


def test_a_success_clears_an_address():
    clock = Clock()
    book = LoginBook(clock)
    for _ in range(LOGIN_FAILURES - 1):
        book.begin("a")
        book.end("a", succeeded=False)
    assert book.begin("a") == 0
    book.end("a", succeeded=True)
    for _ in range(LOGIN_FAILURES):
        assert book.begin("a") == 0
        book.end("a", succeeded=False)


def login_app(clock, delay=0.0):
    env = {"JUHE_TRUSTED_PROXIES": "127.0.0.1", "JUHE_ACCESS_PASSWORD": "right"}
    settings = AppSettings.from_mapping(env)
    inner = Recorder(lambda body: 200 if b"password=right" in body else 400, delay=delay)
    return LoginThrottle(inner, settings, LoginBook(clock)), inner


async def login(http, address, password):
    form = {"username": "x", "password": password}
    return await http.post("/login", data=form, headers=forwarded(address))


def test_the_attacker_is_throttled_and_another_address_logs_in():
    throttle, _ = login_app(Clock())

    async def attack():
        async with client(throttle, "127.0.0.1") as http:
            wrong = [await login(http, "203.0.113.66", f"guess{i}") for i in range(LOGIN_FAILURES)]
            blocked = await login(http, "203.0.113.66", "guess")
            blocked_right = await login(http, "203.0.113.66", "right")
            other = await login(http, "203.0.113.5", "right")
            return wrong, blocked, blocked_right, other

    wrong, blocked, blocked_right, other = run(attack())
    assert [r.status_code for r in wrong] == [400] * LOGIN_FAILURES
    assert blocked.status_code == 429 and blocked.headers["Retry-After"] == "60"
    assert is_bilingual(blocked.text)
    assert blocked_right.status_code == 429
    assert other.status_code == 200


def test_attempts_sent_at_once_are_counted_before_they_finish():
    throttle, inner = login_app(Clock(), delay=0.05)

    async def burst():
        async with client(throttle, "127.0.0.1") as http:
            return await asyncio.gather(*(login(http, "203.0.113.66", f"g{i}") for i in range(40)))

    codes = [r.status_code for r in run(burst())]
    assert codes.count(400) == LOGIN_FAILURES and codes.count(429) == 40 - LOGIN_FAILURES
    assert len(inner.calls) == LOGIN_FAILURES


# --- the settings behind the guards ---------------------------------------------------------------


def test_a_space_trusts_its_proxy_and_limits_edits_by_default():
    settings = AppSettings.from_mapping({"SPACE_ID": "me/demo", "JUHE_API_KEY": "k-1"})
    assert settings.on_space and settings.rate_limit == 10 and settings.notes
    assert "10.0.0.0/8" in settings.trusted_proxies and "127.0.0.0/8" in settings.trusted_proxies
    assert visitor_address("10.20.30.40", "203.0.113.9", settings.trusted_proxies, True) == "203.0.113.9"
    env = {"SPACE_ID": "me/demo", "JUHE_API_KEY": "k-1", "JUHE_RATE_LIMIT": "3"}
    explicit = AppSettings.from_mapping({**env, "JUHE_TRUSTED_PROXIES": "10.9.9.9"})
    assert (explicit.rate_limit, explicit.trusted_proxies, explicit.notes) == (3, ("10.9.9.9",), [])
    offline = AppSettings.from_mapping({"SPACE_ID": "me/demo"})
    assert offline.rate_limit == 0 and not offline.notes
    anywhere = AppSettings.from_mapping({"JUHE_API_KEY": "k-1"})
    assert (anywhere.on_space, anywhere.rate_limit, anywhere.trusted_proxies) == (False, 0, ())


def test_the_new_settings_are_read_and_checked():
    settings = AppSettings.from_mapping({"JUHE_DAILY_LIMIT": "50", "JUHE_CACHE_HOURS": "6"})
    assert (settings.daily_limit, settings.cache_hours) == (50, 6.0)
    defaults = AppSettings.from_mapping({})
    assert (defaults.daily_limit, defaults.cache_hours) == (0, 24.0)
    for name, value in [("JUHE_DAILY_LIMIT", "-1"), ("JUHE_DAILY_LIMIT", "lots"), ("JUHE_CACHE_HOURS", "x")]:
        with pytest.raises(ConfigError, match=name):
            AppSettings.from_mapping({name: value})
