"""The public `/edit` endpoint through `gradio_client`, against the app launched in this process.

Offline mode uses the app's own built-in simulator; live mode talks to a separate `Simulator` over
loopback HTTP, as it would to the provider. Faults are triggered by `[sim:...]` marks in the prompt;
every prompt carries a unique marker so each test finds its own requests.
"""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from helpers.apphost import SERVER_KEY, RunningApp, is_bilingual, running_app
from helpers.paths import CAT, COFFEE
from helpers.tags import marker
from PIL import Image

import juhe._transport
from juhe.simulator import Simulator, key_fingerprint

pytestmark = [pytest.mark.app, pytest.mark.loopback, pytest.mark.timeout(120)]

VISITOR_KEY = "visitor-key-AAAAAAAAAAAAAAAAAAAA"
ORDER_ID = re.compile(r"SIM\d{14}[0-9a-f]{6}")
RECORD_KEYS = {"order_id", "images", "size", "model", "elapsed_s", "simulated", "warnings"}


def edit(client: Client, prompt: str, image1: object = CAT, **params) -> tuple[str, dict]:
    """Call `/edit`; `Path` images are uploaded, everything else is passed as it is."""
    for slot in ("image2", "image3"):
        if isinstance(params.get(slot), Path):
            params[slot] = handle_file(str(params[slot]))
    if isinstance(image1, Path):
        image1 = handle_file(str(image1))
    image, record = client.predict(image1=image1, prompt=prompt, api_name="/edit", **params)
    return image, record


def edit_error(client: Client, prompt: str, **params) -> AppError:
    """Call `/edit` expecting the app to refuse; return the client's `AppError`."""
    with pytest.raises(AppError) as info:
        edit(client, prompt, **params)
    assert is_bilingual(info.value.message), info.value.message
    return info.value


def _client(running: RunningApp, name: str) -> Client:
    folder = running.temp_dir.parent / name
    folder.mkdir(exist_ok=True)
    return running.client(downloads=folder)


# --- offline: no server key, the built-in simulator --------------------------------------------


@pytest.fixture(scope="module")
def offline(tmp_path_factory: pytest.TempPathFactory, provider: Simulator) -> Iterator[RunningApp]:
    # No key, but an API address: a visitor's own key must go there, never to the simulator.
    with running_app(tmp_path_factory.mktemp("offline"), live=False, JUHE_API_URL=provider.url) as running:
        assert running.backend.offline
        yield running


class TestOffline:
    def test_edit_returns_the_saved_result_and_a_record(self, offline: RunningApp):
        client = _client(offline, "a")
        prompt = f"replace the cat with a dog {marker()}"
        image, record = edit(client, prompt, size="1024*1024")

        assert set(record) == RECORD_KEYS
        order_id = record["order_id"]
        assert ORDER_ID.fullmatch(order_id) and Path(image).stem == order_id
        with Image.open(image) as result:
            assert result.size == (1024, 1024)
        saved = offline.output_dir / f"{order_id}.png"
        assert saved.read_bytes() == Path(image).read_bytes()
        assert offline.sidecar(order_id)["prompt"] == prompt
        assert record["size"] == "1024*1024" and record["model"] == "auto"
        assert record["simulated"] is True and record["warnings"] == []
        assert record["elapsed_s"] >= 0
        [link] = record["images"]  # an absolute link that serves the same image
        assert link.startswith(offline.url)
        assert httpx.get(link, timeout=10).content == saved.read_bytes()

    def test_visitor_key_goes_to_the_live_api_not_the_simulator(self, offline: RunningApp, provider):
        tag = marker()
        _, record = edit(_client(offline, "b"), f"visitor edit {tag}", api_key=VISITOR_KEY)
        [sent] = [r for r in provider.stats()["requests"] if tag in r["text"]]
        assert sent["key"] == key_fingerprint(VISITOR_KEY)
        assert record["simulated"] is False
        assert VISITOR_KEY not in repr(record)


# --- live: the server's key, a separate simulator as the provider -------------------------------


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, provider: Simulator) -> Iterator[RunningApp]:
    with running_app(tmp_path_factory.mktemp("live"), provider=provider) as running:
        assert not running.backend.offline
        yield running


@pytest.fixture(scope="module")
def client(live: RunningApp) -> Client:
    return _client(live, "client")


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries after HTTP 503 wait 0 s (the app runs in this process)."""
    monkeypatch.setattr(juhe._transport, "_backoff", lambda attempt: 0.0)


def assert_success(client: Client, running: RunningApp) -> str:
    """One plain edit works after a failure: its result is saved. Returns the order id."""
    _, record = edit(client, f"make it blue {marker()}")
    assert (running.output_dir / f"{record['order_id']}.png").is_file()
    return record["order_id"]


# (prompt mark, what the message must name, a Chinese and an English fragment, requests sent)
PROVIDER_ERRORS = [
    pytest.param("282501", "282501", "text 和 image1 不可为空", "must not be empty", 1, id="282501"),
    pytest.param("282504", "282504", "包含敏感词", "flagged as sensitive", 1, id="282504"),
    pytest.param("10001", "10001", "错误的请求 KEY", "wrong API key", 1, id="10001-auth"),
    pytest.param("10012", "10012", "请求超过次数限制", "quota", 1, id="10012-rate"),
    pytest.param("282503", "282503", "网络错误", "try again later", 1, id="282503-unavailable"),
    pytest.param("http500", "500", "服务返回 HTTP 500", "answered HTTP 500", 1, id="http500"),
    pytest.param("http502", "502", "服务返回 HTTP 502", "answered HTTP 502", 1, id="http502-once"),
    pytest.param("http503", "503", "服务返回 HTTP 503", "answered HTTP 503", 3, id="http503-retried"),
    pytest.param("malformed", "malformed", "不是 JSON", "is not JSON", 1, id="malformed"),
    pytest.param("drop", "connection dropped", "连接被中断", "closed the connection", 1, id="drop"),
]


class TestLive:
    def test_edit_uses_the_server_key(self, live: RunningApp, client: Client):
        tag = marker()
        image, record = edit(client, f"add a hat {tag}")
        [sent] = live.requests_with(tag)
        assert sent["key"] == key_fingerprint(SERVER_KEY)
        assert sent["outcome"] == "ok" and sent["images"] == 1
        assert record["simulated"] is False
        assert live.sidecar(record["order_id"])["prompt"] == f"add a hat {tag}"

    @pytest.mark.parametrize(("fault", "code", "chinese", "english", "sent"), PROVIDER_ERRORS)
    @pytest.mark.usefixtures("no_backoff")
    def test_provider_error_is_a_bilingual_app_error(self, live, client, fault, code, chinese, english, sent):
        tag = marker()
        error = edit_error(client, f"edit [sim:{fault}] {tag}")
        assert code in error.message
        assert chinese in error.message and english in error.message
        if code.isdigit() and len(code) > 3:
            assert code in error.title
        assert len(live.requests_with(tag)) == sent
        assert_success(client, live)

    def test_calls_in_one_session_keep_their_shape(self, live: RunningApp, client: Client):
        """Call 1 and call 6 return the same: one image and a record, never the caller's own image."""
        own = CAT.read_bytes()
        shapes = []
        for n in range(6):
            image, record = edit(client, f"call {n} {marker()}")
            assert Path(image).read_bytes() != own
            shapes.append((Path(image).suffix, sorted(record), len(record["images"])))
        assert shapes == [shapes[0]] * 6

    def test_empty_prompt_is_refused_before_sending(self, live, client):
        error = edit_error(client, "   ")
        assert "提示词不能为空" in error.message and "must not be empty" in error.message
        assert live.blank_prompts() == []

    def test_expired_link_is_a_download_error_naming_the_order(self, live, client):
        tag = marker()
        error = edit_error(client, f"edit [sim:expired] {tag}")
        assert "结果图片下载失败" in error.message and "could not save the result" in error.message
        order_ids = set(ORDER_ID.findall(error.message))
        assert len(order_ids) == 1, error.message
        assert "Signature" not in error.message  # the link is named without its signature
        assert not list(live.output_dir.glob(f"{order_ids.pop()}*"))
        assert_success(client, live)

    def test_visitor_key_is_used_for_that_call_only(self, live, client):
        visitor_tag, server_tag = marker(), marker()
        edit(client, f"visitor {visitor_tag}", api_key=VISITOR_KEY)
        edit(client, f"server {server_tag}")
        assert live.requests_with(visitor_tag)[0]["key"] == key_fingerprint(VISITOR_KEY)
        assert live.requests_with(server_tag)[0]["key"] == key_fingerprint(SERVER_KEY)

    @pytest.mark.parametrize(
        ("slots", "empty"),
        [
            pytest.param({"image1": None, "image2": CAT}, 1, id="image2-without-image1"),
            pytest.param({"image1": CAT, "image3": COFFEE}, 2, id="image3-without-image2"),
            pytest.param({"image1": "", "image2": "https://example.com/a.jpg"}, 1, id="link2-without-image1"),
        ],
    )
    def test_image_slots_must_be_filled_in_order(self, live, client, slots, empty):
        tag = marker()
        error = edit_error(client, f"combine 图1 and 图2 {tag}", **slots)
        assert f"图{empty}为空" in error.message and "fill the slots in order" in error.message
        assert live.requests_with(tag) == []

    def test_two_images_by_upload_and_by_link(self, live, client):
        tag = marker()
        edit(client, f"put 图1 into 图2 {tag}", image2="https://example.com/scene.jpg")
        [sent] = live.requests_with(tag)
        assert sent["images"] == 2

    def test_a_data_uri_is_an_image(self, live, client):
        tag = marker()
        uri = "data:image/jpeg;base64," + base64.b64encode(CAT.read_bytes()).decode()
        _, record = edit(client, f"from a data URI {tag}", image1=uri)
        assert live.requests_with(tag)[0]["outcome"] == "ok" and record["order_id"]

    @pytest.mark.parametrize(
        "value", ["/etc/passwd", "examples/cat.jpg", "file:///etc/passwd", "ftp://x/y.png", "javascript:x"]
    )
    def test_an_image_string_that_is_not_a_link_or_data_uri_is_refused(self, live, client, value):
        tag = marker()
        error = edit_error(client, f"steal {tag}", image1=value)
        assert "send links as plain strings" in error.message
        assert live.requests_with(tag) == []

    @pytest.mark.parametrize(("size", "sent"), [("1000*1000", "1000*1000"), ("1536x1024", "1536*1024")])
    def test_free_text_size(self, live, client, size, sent):
        tag = marker()
        image, record = edit(client, f"resize {tag}", size=size)
        assert live.requests_with(tag)[0]["size"] == sent
        assert record["size"] == sent
        with Image.open(image) as result:
            assert f"{result.width}*{result.height}" == sent

    @pytest.mark.parametrize("size", ["100*9999", "100*100", "4096*1024", "huge", "1024*", "custom"])
    def test_bad_size_is_refused_before_sending(self, live, client, size):
        tag = marker()
        error = edit_error(client, f"resize {tag}", size=size)
        assert "尺寸" in error.message and "size" in error.message
        assert live.requests_with(tag) == []


def test_timeout_is_reported_and_not_retried(tmp_path, provider):
    with running_app(tmp_path, provider=provider, JUHE_TIMEOUT="1") as running:
        tag = marker()
        error = edit_error(running.client(), f"slow edit [sim:slow=3] {tag}")
        assert "服务响应超时" in error.message and "did not answer in time" in error.message
        assert len(running.requests_with(tag)) == 1  # a timeout is never retried


def test_edit_is_the_only_endpoint(tmp_path, provider):
    """The page's own events are private: a program sees one endpoint, and no gr.State in it."""
    with running_app(tmp_path, provider=provider) as running:
        info = httpx.get(running.url + "/gradio_api/info", timeout=10).json()
    assert list(info["named_endpoints"]) == ["/edit"] and info["unnamed_endpoints"] == {}
    returned = [r["component"] for r in info["named_endpoints"]["/edit"]["returns"]]
    assert "State" not in returned and len(returned) == 2


# --- region edits, original size, phone photos (issue 12) ------------------------------------------


def png_uri(image: Image.Image) -> str:
    out = io.BytesIO()
    image.save(out, "PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def scene(size=(900, 600)) -> Image.Image:
    """A PNG 图1 with detail everywhere, so a changed pixel cannot hide."""
    rng = np.random.default_rng(3)
    return Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))


class TestPrecise:
    def test_a_region_edit_changes_only_the_painted_area(self, live, client, tmp_path):
        original = scene()
        mask = Image.new("L", original.size, 0)
        mask.paste(255, (380, 250, 520, 350))
        tag = marker()
        image, record = edit(client, f"only here {tag}", image1=png_uri(original), mask=png_uri(mask))
        with Image.open(image) as result:
            assert result.size == original.size
            result = np.asarray(result.convert("RGB")).astype(int)
        assert record["size"] == "900*600"
        far = np.ones((600, 900), bool)
        far[250 - 16 : 350 + 16, 380 - 16 : 520 + 16] = False
        assert (result[far] == np.asarray(original)[far]).all()  # every pixel away from it untouched
        assert (result[~far] != np.asarray(original)[~far]).any()  # and the region changed
        [sent] = live.requests_with(tag)
        assert sent["size"] and sent["size"] != "900*600"  # the provider got the crop, not 图1

    @pytest.mark.parametrize("mask", ["https://example.com/mask.png", "/etc/passwd"])
    def test_a_mask_must_be_a_file_or_data_uri(self, live, client, mask):
        tag = marker()
        error = edit_error(client, f"masked {tag}", mask=mask)
        assert "mask" in error.message and "data:image" in error.message
        assert live.requests_with(tag) == []

    def test_original_size_gives_image1_its_own_size_back(self, live, client):
        image, record = edit(client, f"same size {marker()}", size="original")
        with Image.open(image) as result, Image.open(CAT) as source:
            assert result.size == source.size == (451, 300)
        assert record["size"] == "451*300"

    def test_an_iphone_photo_is_accepted(self, live, client, tmp_path):
        pillow_heif = pytest.importorskip("pillow_heif")
        pillow_heif.register_heif_opener()
        photo = tmp_path / "photo.heic"
        Image.open(COFFEE).save(photo, quality=70)
        tag = marker()
        _, record = edit(client, f"heic {tag}", image1=photo)
        assert live.requests_with(tag)[0]["outcome"] == "ok" and record["order_id"]
