"""The ASGI middleware of `webapp.middleware` on their own, each in front of a small recording app
(httpx.ASGITransport, no server, fake clocks): no relaying of remote files, body caps per route, the
upload allowance, the record of who uploaded what, failed logins, closed and locked routes, and the
stack `launch()` gets. The component server's guard is in test_editor_blobs.py."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from helpers.apphost import is_bilingual
from starlette.requests import Request
from starlette.responses import PlainTextResponse

from webapp.gate import Issued
from webapp.middleware import MCP_PATH, stack
from webapp.middleware._asgi import header, scope_visitor, size_text
from webapp.middleware.bodies import PAGE_BODY, BodyCap, max_request_body
from webapp.middleware.config import ConfigCache
from webapp.middleware.editor import EditorBlobs
from webapp.middleware.files import RemoteFiles, is_remote_file_path
from webapp.middleware.logins import (
    LOGIN_BLOCK_MAX_S,
    LOGIN_BLOCK_S,
    LOGIN_FAILURES,
    LOGIN_MEMORY_S,
    LoginBook,
    LoginThrottle,
    password_check,
)
from webapp.middleware.routes import CloseRoutes, RequireBearer
from webapp.middleware.uploads import Allowance, IssueUploads, UploadBudget
from webapp.settings import AppSettings

MIB = 1024 * 1024
PROXY = "127.0.0.1"  # the trusted proxy every request here comes through


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
        body = await Request(scope, receive).body()
        if self.delay:
            await asyncio.sleep(self.delay)
        self.calls.append((scope["path"], len(body)))
        status = self.answer(body) if self.answer else 200
        await PlainTextResponse("ok", status_code=status)(scope, receive, send)


def settings(**env: str) -> AppSettings:
    return AppSettings.from_mapping({"JUHE_TRUSTED_PROXIES": PROXY, **env})


def client(app, address: str = "198.51.100.7") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://app")


def run(coroutine):
    return asyncio.run(coroutine)


def forwarded(address: str) -> dict:
    return {"X-Forwarded-For": address}


def chunks(total: int, size: int = 65536):
    """A body sent in chunks, without a Content-Length."""

    async def body():
        sent = 0
        while sent < total:
            yield b"x" * min(size, total - sent)
            sent += size

    return body()


# --- shared helpers -------------------------------------------------------------------------------


def test_headers_and_the_visitor_of_a_scope():
    scope = {
        "client": (PROXY, 1),
        "headers": [(b"x-forwarded-for", b"1.2.3.4"), (b"x-forwarded-for", b"203.0.113.9"), (b"a", b"b")],
    }
    assert header(scope, b"x-forwarded-for") == "1.2.3.4, 203.0.113.9"
    assert header(scope, b"missing") is None
    assert scope_visitor(scope, settings()) == "203.0.113.9"
    assert scope_visitor({**scope, "client": ("198.51.100.1", 1)}, settings()) == "198.51.100.1"
    assert scope_visitor({"headers": []}, settings()) == "unknown"
    assert (size_text(81 * MIB), size_text(400 * 1024)) == ("81 MB", "400 KB")


# --- no relaying -----------------------------------------------------------------------------------


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


# --- request bodies, per route --------------------------------------------------------------------


def test_an_image_carrying_body_holds_three_base64_images_and_a_megabyte():
    assert max_request_body(20 * MIB) == 3 * 27_962_028 + 1_048_576
    assert max_request_body(3) == 3 * 4 + 1_048_576


def event_body(fn_index, size: int = 2 * MIB) -> bytes:
    return json.dumps({"fn_index": fn_index, "data": ["x" * size], "session_hash": "s"}).encode()


def body_cap(allowance=None, image_fns=(3,), **env):
    inner = Recorder()
    cap = BodyCap(
        inner, settings(**env), allowance=allowance, image_fns=lambda: image_fns, mcp_prefix=MCP_PATH
    )
    return cap, inner


def post_all(app, requests, address: str = "203.0.113.1"):
    """POST each (path, content) from `address`; the answers."""

    async def main():
        async with client(app, PROXY) as http:
            return [
                await http.post(path, content=content, headers=forwarded(address))
                for path, content in requests
            ]

    return run(main())


@pytest.mark.parametrize(
    "path", ["/gradio_api/queue/join", "/gradio_api/run/predict", "/gradio_api/call/edit_image", "/login"]
)
def test_a_page_body_over_a_megabyte_is_refused(path):
    cap, inner = body_cap()
    sized, streamed, within = post_all(
        cap, [(path, event_body(1)), (path, chunks(2 * MIB)), (path, b"x" * PAGE_BODY)]
    )
    assert sized.status_code == 413 and streamed.status_code == 413
    assert is_bilingual(sized.text) and "at most 1 MB" in sized.text
    assert within.status_code == 200 and inner.calls == [(path, PAGE_BODY)]


@pytest.mark.parametrize(
    "path", ["/gradio_api/call/edit", "/gradio_api/run/edit", "/root/gradio_api/call/edit/", MCP_PATH + "/"]
)
def test_an_image_carrying_api_call_passes_and_is_charged(path):
    clock = Clock()
    cap, inner = body_cap(Allowance(files=10, size=5 * MIB, clock=clock))
    first, streamed, over, other = [
        *post_all(cap, [(path, b"x" * (2 * MIB)), (path, chunks(2 * MIB)), (path, b"x" * (2 * MIB))]),
        *post_all(cap, [(path, b"x" * (2 * MIB))], address="203.0.113.2"),
    ]
    assert first.status_code == 200 and streamed.status_code == 200 and other.status_code == 200
    assert over.status_code == 429 and is_bilingual(over.text) and "5 MB per minute" in over.text
    assert 1 <= int(over.headers["Retry-After"]) <= 61
    assert len(inner.calls) == 3
    clock.now += 62
    assert post_all(cap, [(path, b"x" * (2 * MIB))])[0].status_code == 200


def test_small_bodies_are_not_charged():
    allowance = Allowance(files=10, size=MIB, clock=Clock())
    cap, inner = body_cap(allowance)
    answers = post_all(cap, [("/gradio_api/call/edit", b"x" * 1000)] * 5)
    assert [a.status_code for a in answers] == [200] * 5 and allowance.byte_window.total("203.0.113.1") == 0


def test_an_event_by_index_carries_images_only_when_it_is_the_edit_endpoint():
    cap, inner = body_cap(image_fns=(3,))
    edit, other, no_index, not_json, a_list = post_all(
        cap,
        [
            ("/gradio_api/queue/join", event_body(3)),
            ("/gradio_api/queue/join", event_body(4)),
            ("/gradio_api/run/predict", event_body(None)),
            ("/gradio_api/queue/join", b"{" + b"x" * (2 * MIB)),
            ("/gradio_api/queue/join", b"[" + b"1," * MIB + b"3]"),
        ],
    )
    assert edit.status_code == 200 and inner.calls == [("/gradio_api/queue/join", len(event_body(3)))]
    assert [r.status_code for r in (other, no_index, not_json, a_list)] == [413] * 4


def test_a_body_over_the_whole_cap_is_refused_before_it_is_read():
    cap, inner = body_cap(JUHE_MAX_UPLOAD="1kb")
    limit = max_request_body(1024)
    path = "/gradio_api/call/edit"
    sized, streamed, within = post_all(
        cap, [(path, b"x" * (limit + 1)), (path, chunks(4 * limit)), (path, b"x" * limit)]
    )
    assert sized.status_code == 413 and streamed.status_code == 413 and within.status_code == 200
    assert inner.calls == [(path, limit)]


def test_bodyless_uploads_and_the_component_server_are_left_to_others():
    cap, inner = body_cap()

    async def main():
        async with client(cap) as http:
            return [
                await http.post("/gradio_api/upload", content=b"x" * (2 * MIB)),
                await http.post("/gradio_api/component_server/", content=b"x" * (2 * MIB)),
                await http.request("GET", "/config", content=b"x" * (2 * MIB)),
            ]

    assert [r.status_code for r in run(main())] == [200] * 3
    assert [size for _, size in inner.calls] == [2 * MIB, 2 * MIB, 2 * MIB]


# --- uploads per visitor ------------------------------------------------------------------------------


def upload_budget(clock, files=10, size=1_000_000):
    inner = Recorder()
    return UploadBudget(inner, settings(), Allowance(files, size, clock)), inner


def test_the_allowance_follows_the_rate_limit():
    assert Allowance.for_settings(settings()) is None
    allowance = Allowance.for_settings(settings(JUHE_RATE_LIMIT="2", JUHE_MAX_UPLOAD="1mb"))
    assert (allowance.files, allowance.size) == (20, 8 * MIB)


def test_uploads_over_the_file_budget_get_429_per_address():
    clock = Clock()
    budget, inner = upload_budget(clock)

    async def post(address, n=1):
        async with client(budget, PROXY) as http:
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


def test_bytes_sent_to_the_edit_endpoint_count_against_uploads():
    clock = Clock()
    allowance = Allowance(files=10, size=3 * MIB, clock=clock)
    cap = BodyCap(Recorder(), settings(), allowance=allowance)
    budget = UploadBudget(Recorder(), settings(), allowance)
    assert post_all(cap, [("/gradio_api/call/edit", b"x" * (2 * MIB))])[0].status_code == 200
    upload = post_all(budget, [("/gradio_api/upload", b"x" * (2 * MIB))])[0]
    assert upload.status_code == 429


def test_other_routes_are_not_budgeted():
    budget, inner = upload_budget(Clock(), files=0, size=0)

    async def post():
        async with client(budget) as http:
            return await http.post("/gradio_api/queue/join", content=b"{}")

    assert run(post()).status_code == 200 and inner.calls


# --- who uploaded what --------------------------------------------------------------------------------


class UploadAnswer:
    """Gradio's upload route: answers the paths it stored, as JSON (in two chunks), or an error."""

    def __init__(self, paths, status: int = 200) -> None:
        self.paths, self.status = paths, status

    async def __call__(self, scope, receive, send) -> None:
        await Request(scope, receive).body()
        if self.status != 200:
            await PlainTextResponse("no", status_code=self.status)(scope, receive, send)
            return
        body = json.dumps(self.paths).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body[:5], "more_body": True})
        await send({"type": "http.response.body", "body": body[5:], "more_body": False})


def issue_uploads(issued: Issued, paths, status: int = 200, path: str = "/gradio_api/upload"):
    app = IssueUploads(UploadAnswer(paths, status), settings(), issued)
    return post_all(app, [(path, b"file")])[0]


def test_an_upload_is_issued_to_its_uploader_only(tmp_path):
    issued = Issued()
    paths = [str(tmp_path / "a.png"), str(tmp_path / "b.png")]
    answer = issue_uploads(issued, [*paths, 7, None])
    assert answer.status_code == 200 and answer.json() == [*paths, 7, None]  # passed on unchanged
    assert all(issued.admits(p, None, "203.0.113.1") for p in paths)
    assert not any(issued.admits(p, None, "203.0.113.2") for p in paths)
    assert not any(issued.admits(p, "a-session", None) for p in paths)
    assert issued.files() == set(paths)


@pytest.mark.parametrize(
    ("paths", "status", "path"),
    [
        (["/tmp/x.png"], 413, "/gradio_api/upload"),
        ({"path": "/tmp/x.png"}, 200, "/gradio_api/upload"),
        (["/tmp/x.png"], 200, "/gradio_api/queue/join"),
    ],
    ids=["refused upload", "not a list", "not an upload"],
)
def test_nothing_else_is_issued(paths, status, path):
    issued = Issued()
    issue_uploads(issued, paths, status, path)
    assert issued.files() == set()


# --- failed logins ---------------------------------------------------------------------------------


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


def test_failures_leave_the_window_after_a_minute():
    clock = Clock()
    book = LoginBook(clock)
    for _ in range(LOGIN_FAILURES - 1):
        book.begin("a")
        book.end("a", succeeded=False)
    clock.now += 62
    assert fail_until_blocked(book, "a") == LOGIN_BLOCK_S


def login_app(clock, delay=0.0):
    inner = Recorder(lambda body: 200 if b"password=right" in body else 400, delay=delay)
    return LoginThrottle(inner, settings(JUHE_ACCESS_PASSWORD="right"), LoginBook(clock)), inner


async def login(http, address, password):
    form = {"username": "x", "password": password}
    return await http.post("/login", data=form, headers=forwarded(address))


def test_the_attacker_is_throttled_and_another_address_logs_in():
    throttle, _ = login_app(Clock())

    async def attack():
        async with client(throttle, PROXY) as http:
            wrong = [await login(http, "203.0.113.66", f"guess{i}") for i in range(LOGIN_FAILURES)]
            blocked = await login(http, "203.0.113.66", "guess")
            blocked_right = await login(http, "203.0.113.66", "right")
            other = await login(http, "203.0.113.5", "right")
            page = await http.get("/login")
            return wrong, blocked, blocked_right, other, page

    wrong, blocked, blocked_right, other, page = run(attack())
    assert [r.status_code for r in wrong] == [400] * LOGIN_FAILURES
    assert blocked.status_code == 429 and blocked.headers["Retry-After"] == "60"
    assert is_bilingual(blocked.text)
    assert blocked_right.status_code == 429
    assert other.status_code == 200
    assert page.status_code == 400  # not 429: only POST /login is throttled (it reached the app)


def test_attempts_sent_at_once_are_counted_before_they_finish():
    throttle, inner = login_app(Clock(), delay=0.05)

    async def burst():
        async with client(throttle, PROXY) as http:
            return await asyncio.gather(*(login(http, "203.0.113.66", f"g{i}") for i in range(40)))

    codes = [r.status_code for r in run(burst())]
    assert codes.count(400) == LOGIN_FAILURES and codes.count(429) == 40 - LOGIN_FAILURES
    assert len(inner.calls) == LOGIN_FAILURES


# --- closed and locked routes ------------------------------------------------------------------------


def get_all(app, paths, headers=None):
    async def main():
        async with client(app) as http:
            return [await http.get(path, headers=headers) for path in paths]

    return run(main())


def test_deep_links_are_closed():
    inner = Recorder()
    answers = get_all(
        CloseRoutes(inner),
        [
            "/gradio_api/deep_link",
            "/gradio_api/deep_link/",
            "/root/gradio_api/deep_link?session_hash=x",
            "/config",
        ],
    )
    assert [a.status_code for a in answers] == [404, 404, 404, 200] and inner.calls == [("/config", 0)]


def test_mcp_needs_the_bearer_token():
    inner = Recorder()
    app = RequireBearer(inner, prefix=MCP_PATH, token="tok-1")
    bare = get_all(app, [MCP_PATH + "/"])[0]
    wrong = get_all(app, [MCP_PATH + "/"], {"Authorization": "Bearer tok-2"})[0]
    assert bare.status_code == 401 and bare.headers["WWW-Authenticate"] == "Bearer"
    assert wrong.status_code == 401 and inner.calls == []
    right = get_all(app, [MCP_PATH + "/"], {"Authorization": "Bearer tok-1"})[0]
    assert right.status_code == 200 and get_all(app, ["/config"])[0].status_code == 200


# --- the stack -----------------------------------------------------------------------------------------


def test_the_stack_has_what_the_settings_call_for():
    issued = Issued()
    plain = stack(settings(), issued)
    guards = [RemoteFiles, BodyCap, EditorBlobs, IssueUploads, CloseRoutes]
    assert [m.cls for m in plain] == [*guards, ConfigCache]
    assert plain[-1].kwargs["enabled"] is True
    locked = settings(JUHE_RATE_LIMIT="2", JUHE_ACCESS_PASSWORD="pw", JUHE_MCP_TOKEN="tok")
    share = object()
    full = stack(locked, issued, share=share)
    assert [m.cls for m in full[:-1]] == [
        RemoteFiles,
        RequireBearer,  # before any body is read
        BodyCap,
        EditorBlobs,
        UploadBudget,
        IssueUploads,
        LoginThrottle,
        CloseRoutes,
        ConfigCache,
    ]
    assert full[-2].kwargs["enabled"] is False  # behind a password the config names the user
    assert full[-1] is share
    allowances = {id(m.kwargs["allowance"]) for m in full[:-1] if "allowance" in m.kwargs}
    assert len(allowances) == 1  # one allowance: uploads, edit bodies and canvases share it
    assert all(m.kwargs["issued"] is issued for m in full[:-1] if "issued" in m.kwargs)
    no_mcp = stack(settings(JUHE_MCP="0", JUHE_MCP_TOKEN="tok"), issued)
    assert RequireBearer not in [m.cls for m in no_mcp]


def test_an_upload_through_the_stack_is_issued_to_its_visitor(tmp_path):
    issued = Issued()
    path = str(tmp_path / "up.png")
    app = UploadAnswer([path])
    for middleware in reversed(stack(settings(JUHE_RATE_LIMIT="1"), issued)):
        app = middleware.cls(app, *middleware.args, **middleware.kwargs)

    async def upload(address):
        async with client(app, PROXY) as http:
            files = {"files": ("up.png", b"png")}
            return await http.post("/gradio_api/upload", files=files, headers=forwarded(address))

    assert [run(upload("203.0.113.1")).status_code for _ in range(11)] == [200] * 10 + [429]
    assert issued.admits(path, None, "203.0.113.1") and not issued.admits(path, None, "203.0.113.2")
