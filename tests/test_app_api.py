"""The app's `/edit` endpoint through `gradio_client`, against `app.py` launched in this process.

Offline mode uses the app's own built-in simulator; live mode talks to a separate `Simulator` over
loopback HTTP, as it would to the provider, so the tests can see exactly what was sent (keys only as
fingerprints). Faults are triggered by `[sim:...]` marks in the prompt; every prompt carries a
unique marker so each test finds its own requests.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from app_fixtures import (
    CAT,
    COFFEE,
    SERVER_KEY,
    LaunchedApp,
    Simulator,
    backend_env,
    key_fingerprint,
    launched_app,
    live_env,
    requests_with,
    sidecar_for,
)
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

import app
import juhe._transport
from webapp.backend import Backend

pytestmark = pytest.mark.timeout(120)

VISITOR_KEY = "visitor-key-AAAAAAAAAAAAAAAAAAAA"
ORDER_ID = re.compile(r"SIM\d{14}[0-9a-f]{6}")
HAS_CJK = re.compile(r"[\u4e00-\u9fff]")
HAS_LATIN_WORDS = re.compile(r"[A-Za-z]{3,}(\s+[A-Za-z]{2,}){2,}")


def marker() -> str:
    """A tag that makes one prompt (and so its requests at the simulator) unique."""
    return "t" + uuid.uuid4().hex[:12]


def edit(client: Client, prompt: str, image1: Path | None = CAT, **params) -> tuple:
    """Call `/edit`; image paths are uploaded, everything else is passed through."""
    for slot in ("image2", "image3"):
        if isinstance(params.get(slot), Path):
            params[slot] = handle_file(str(params[slot]))
    return client.predict(
        image1=handle_file(str(image1)) if image1 else None, prompt=prompt, api_name="/edit", **params
    )


def edit_error(client: Client, prompt: str, **params) -> AppError:
    """Call `/edit` expecting the app to refuse; return the client's `AppError`."""
    with pytest.raises(AppError) as info:
        edit(client, prompt, **params)
    return info.value


def assert_bilingual(message: str) -> None:
    assert HAS_CJK.search(message), f"no Chinese in {message!r}"
    assert HAS_LATIN_WORDS.search(message), f"no English sentence in {message!r}"


def assert_success(client: Client, output_dir: Path) -> str:
    """One plain edit works: its result is saved and named in the status. Returns the order id."""
    gallery, _compare, status, _history = edit(client, f"make it blue {marker()}")
    order_id = Path(gallery[0]["image"]).stem
    assert order_id in status
    assert (output_dir / f"{order_id}.png").is_file()
    return order_id


def request_count(provider: Simulator) -> int:
    return len(provider.stats()["requests"])


@pytest.fixture(scope="module")
def provider() -> Iterator[Simulator]:
    """The stand-in for the provider in live mode (the offline preview has its own)."""
    with Simulator() as sim:
        yield sim


def _client(running: LaunchedApp, name: str) -> Client:
    folder = running.tmp / name
    folder.mkdir(exist_ok=True)
    return Client(running.url, verbose=False, download_files=str(folder))


# --- offline: no server key, the built-in simulator --------------------------------------------


@pytest.fixture(scope="class")
def offline(tmp_path_factory: pytest.TempPathFactory, provider: Simulator) -> Iterator[LaunchedApp]:
    tmp = tmp_path_factory.mktemp("offline")
    # No key, but an API address: a visitor's own key must go there, never to the simulator.
    env = backend_env(tmp / "outputs", JUHE_API_URL=provider.url)
    with launched_app(tmp, env) as running:
        assert running.backend.offline
        yield running


@pytest.fixture(scope="class")
def offline_client(offline: LaunchedApp) -> Client:
    return _client(offline, "client")


class TestOffline:
    def test_edit_saves_the_result_and_its_sidecar(self, offline: LaunchedApp, offline_client: Client):
        prompt = f"replace the cat with a dog {marker()}"
        gallery, compare, status, history = edit(offline_client, prompt, size="1024*1024")

        returned = Path(gallery[0]["image"])
        with Image.open(returned) as image:
            image.verify()
        with Image.open(returned) as image:
            assert image.size == (1024, 1024)
        order_id = returned.stem
        assert ORDER_ID.fullmatch(order_id)

        saved = offline.output_dir / f"{order_id}.png"
        assert saved.is_file()
        assert saved.read_bytes() == returned.read_bytes()
        sidecar = sidecar_for(offline.output_dir, order_id)
        assert sidecar["order_id"] == order_id
        assert sidecar["prompt"] == prompt
        assert sidecar["files"] == [saved.name]

        assert order_id in status
        assert "simulated" in status
        assert compare[0] and Path(compare[1]).name == saved.name  # before / after
        assert history[0]["caption"] == prompt

    def test_visitor_key_goes_to_the_live_api_not_the_simulator(
        self, offline: LaunchedApp, offline_client: Client, provider: Simulator
    ):
        tag = marker()
        _, _, status, _ = edit(offline_client, f"visitor edit {tag}", api_key=VISITOR_KEY)
        [sent] = requests_with(provider, tag)
        assert sent["key"] == key_fingerprint(VISITOR_KEY)
        assert "simulated" not in status
        assert VISITOR_KEY not in status


# --- live: the server's key, a separate simulator as the provider -------------------------------


@pytest.fixture(scope="class")
def live(tmp_path_factory: pytest.TempPathFactory, provider: Simulator) -> Iterator[LaunchedApp]:
    tmp = tmp_path_factory.mktemp("live")
    with launched_app(tmp, live_env(tmp / "outputs", provider)) as running:
        assert not running.backend.offline
        yield running


@pytest.fixture(scope="class")
def client(live: LaunchedApp) -> Client:
    return _client(live, "client")


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries after HTTP 503 wait 0 s (the app runs in this process)."""
    monkeypatch.setattr(juhe._transport, "_backoff", lambda attempt: 0.0)


# (prompt mark, what the message must name, a Chinese and an English fragment, requests sent)
PROVIDER_ERRORS = [
    pytest.param("282501", "error 282501", "text和image1不可为空", "must not be empty", 1, id="282501"),
    pytest.param("282504", "error 282504", "包含敏感词", "flagged as sensitive", 1, id="282504"),
    pytest.param("10001", "error 10001", "错误的请求KEY", "wrong API key", 1, id="10001-auth"),
    pytest.param("10012", "error 10012", "请求超过次数限制", "quota", 1, id="10012-rate"),
    pytest.param("282503", "error 282503", "网络错误", "try again later", 1, id="282503-unavailable"),
    pytest.param("http500", "http 500", "服务返回 HTTP 500", "answered HTTP 500", 1, id="http500"),
    pytest.param("http502", "http 502", "服务返回 HTTP 502", "answered HTTP 502", 1, id="http502-once"),
    pytest.param("http503", "http 503", "服务返回 HTTP 503", "answered HTTP 503", 3, id="http503-retried"),
    pytest.param("malformed", "malformed response", "不是 JSON", "is not JSON", 1, id="malformed"),
    pytest.param("drop", "connection dropped", "连接被中断", "closed the connection", 1, id="drop"),
]


class TestLive:
    def test_edit_uses_the_server_key(self, live: LaunchedApp, client: Client, provider: Simulator):
        tag = marker()
        gallery, _, status, _ = edit(client, f"add a hat {tag}")
        [sent] = requests_with(provider, tag)
        assert sent["key"] == key_fingerprint(SERVER_KEY)
        assert sent["outcome"] == "ok" and sent["images"] == 1
        order_id = Path(gallery[0]["image"]).stem
        assert order_id in status and "simulated" not in status
        assert sidecar_for(live.output_dir, order_id)["prompt"] == f"add a hat {tag}"

    @pytest.mark.parametrize(("fault", "code", "chinese", "english", "sent"), PROVIDER_ERRORS)
    @pytest.mark.usefixtures("no_backoff")
    def test_provider_error_is_a_bilingual_app_error(
        self, live, client, provider, fault, code, chinese, english, sent
    ):
        tag = marker()
        error = edit_error(client, f"edit [sim:{fault}] {tag}")
        assert code in error.message
        assert chinese in error.message and english in error.message
        assert_bilingual(error.message)
        if code.startswith("error "):
            assert code.split()[1] in error.title
        assert len(requests_with(provider, tag)) == sent
        assert_success(client, live.output_dir)

    def test_empty_prompt_is_refused_before_sending(self, live, client, provider):
        before = request_count(provider)
        error = edit_error(client, "   ")
        assert "invalid request" in error.message
        assert "提示词不能为空" in error.message and "must not be empty" in error.message
        assert request_count(provider) == before
        assert_success(client, live.output_dir)

    def test_timeout(self, live, client, provider, tmp_path, monkeypatch: pytest.MonkeyPatch):
        # Same app, a backend with a 1 s read timeout; the provider stalls for 3 s.
        monkeypatch.setattr(app, "backend", Backend(live_env(live.output_dir, provider, JUHE_TIMEOUT="1")))
        tag = marker()
        error = edit_error(client, f"slow edit [sim:slow=3] {tag}")
        assert error.message.startswith("timeout")
        assert "服务响应超时" in error.message and "did not answer in time" in error.message
        assert_bilingual(error.message)
        assert len(requests_with(provider, tag)) == 1  # a timeout is never retried
        assert_success(client, live.output_dir)

    def test_expired_link_is_a_download_error_naming_the_order(self, live, client, provider):
        tag = marker()
        error = edit_error(client, f"edit [sim:expired] {tag}")
        assert "download failed" in error.message
        assert "结果图片下载失败" in error.message and "could not save the result" in error.message
        order_ids = set(ORDER_ID.findall(error.message))
        assert len(order_ids) == 1, error.message
        order_id = order_ids.pop()
        assert f"订单 {order_id}" in error.message and f"order {order_id}" in error.message
        assert "Signature" not in error.message  # the link is named without its signature
        assert not list(live.output_dir.glob(f"{order_id}*"))
        assert_success(client, live.output_dir)

    def test_visitor_key_is_used_for_that_sessions_call_only(self, live, client, provider):
        other = _client(live, "other")
        start = request_count(provider)
        visitor_tag, server_tag = marker(), marker()
        with_key = client.submit(
            image1=handle_file(str(CAT)),
            prompt=f"visitor {visitor_tag}",
            api_key=VISITOR_KEY,
            api_name="/edit",
        )
        without_key = other.submit(
            image1=handle_file(str(CAT)), prompt=f"server {server_tag}", api_name="/edit"
        )
        outputs = [with_key.result(timeout=60), without_key.result(timeout=60)]

        [visitor_request] = requests_with(provider, visitor_tag)
        [server_request] = requests_with(provider, server_tag)
        assert visitor_request["key"] == key_fingerprint(VISITOR_KEY)
        assert server_request["key"] == key_fingerprint(SERVER_KEY)

        # The key is not remembered: the same session's next call is made with the server's key.
        again = marker()
        edit(client, f"again {again}")
        assert requests_with(provider, again)[0]["key"] == key_fingerprint(SERVER_KEY)

        since = provider.stats()["requests"][start:]
        assert [r for r in since if r["key"] == key_fingerprint(VISITOR_KEY)] == [visitor_request]
        assert VISITOR_KEY not in repr(outputs)

    @pytest.mark.parametrize(
        ("slots", "empty"),
        [
            pytest.param({"image1": None, "image2": CAT}, 1, id="image2-without-image1"),
            pytest.param({"image1": None, "image3": CAT}, 1, id="image3-without-image1"),
            pytest.param({"image1": CAT, "image3": COFFEE}, 2, id="image3-without-image2"),
            pytest.param({"image1": None, "url2": "https://example.com/a.jpg"}, 1, id="url2-without-image1"),
        ],
    )
    def test_image_slots_must_be_filled_in_order(self, live, client, provider, slots, empty):
        before = request_count(provider)
        error = edit_error(client, f"combine 图1 and 图2 {marker()}", **slots)
        assert f"图{empty}为空" in error.message
        assert f"Image {empty}) is empty" in error.message and "fill the slots in order" in error.message
        assert request_count(provider) == before

    def test_no_image_at_all_is_refused(self, live, client, provider):
        before = request_count(provider)
        error = edit_error(client, f"anything {marker()}", image1=None)
        assert "请在图1中放入图片" in error.message and "Put an image in 图1" in error.message
        assert request_count(provider) == before

    def test_custom_size_from_the_api(self, live, client, provider):
        tag = marker()
        gallery, _, status, _ = edit(client, f"widen {tag}", size="1536*1024")
        [sent] = requests_with(provider, tag)
        assert sent["size"] == "1536*1024"
        with Image.open(gallery[0]["image"]) as image:
            assert image.size == (1536, 1024)
        assert sidecar_for(live.output_dir, Path(gallery[0]["image"]).stem)["size"] == "1536*1024"

    @pytest.mark.parametrize("size", ["100*100", "4096*1024", "huge", "1024*"])
    def test_bad_size_is_refused_before_sending(self, live, client, provider, size):
        before = request_count(provider)
        error = edit_error(client, f"resize {marker()}", size=size)
        assert "invalid request" in error.message
        assert "尺寸" in error.message and "size" in error.message
        assert_bilingual(error.message)
        assert request_count(provider) == before
