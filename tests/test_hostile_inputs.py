"""Hostile and odd inputs: each gets a clear bilingual error or a sensible conversion, never a crash,
and an invalid one sends nothing to the provider. Through the `juhe` client against the simulator,
and hostile result links served by a tiny local HTTP server. The same through the app's /edit is in
test_app_hostile.py."""

from __future__ import annotations

import base64
import io
import json
import threading
import time
import tracemalloc
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import httpx
import numpy as np
import pytest
from helpers.apphost import is_bilingual
from helpers.hostile import HTML, RED, SVG, animated, png_declaring, reddish, truncated_jpeg, write
from helpers.images import encode
from helpers.markers import marked_fixture
from helpers.tags import marker
from PIL import Image, ImageFile

import juhe._client
from juhe import DownloadError, EditResult, ImageEditClient, InvalidRequestError, MalformedResponseError
from juhe._images import PreparedImage, prepare_image
from juhe.simulator import Simulator, key_fingerprint

KEY = "sk-hostile-0123456789"


# --- inputs ------------------------------------------------------------------------------------


def palette_png(size: tuple[int, int]) -> bytes:
    """A palette PNG: left half transparent (index 0), right half opaque blue."""
    image = Image.new("P", size, 0)
    image.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    image.paste(1, (size[0] // 2, 0, size[0], size[1]))
    return encode(image, "PNG", transparency=0)


def decoded(prepared: PreparedImage) -> Image.Image:
    head, _, payload = prepared.value.partition(",")
    image = Image.open(io.BytesIO(base64.b64decode(payload)))
    assert head == f"data:{Image.MIME[image.format]};base64"  # the mime matches the bytes
    return image


def prepare(item) -> PreparedImage:
    return prepare_image(item, max_side=2048, budget=10 * 1024 * 1024)


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture
def key() -> str:
    """A key of this test's own: the shared provider's records of this test are those with it."""
    return f"{KEY}-{marker()}"


def sent(provider: Simulator, key: str) -> list[dict]:
    """The provider's records of requests made with `key`."""
    return [r for r in provider.stats()["requests"] if r["key"] == key_fingerprint(key)]


@pytest.fixture
def client(provider, key, clean_env, monkeypatch):
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", False)
    with ImageEditClient(api_key=key, api_url=provider.url, timeout=10) as edit_client:
        yield edit_client


class Wire:
    """A provider double that records each form it receives and answers success."""

    def __init__(self) -> None:
        self.forms: list[dict[str, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        form = {k: v[0] for k, v in parse_qs(request.content.decode(), keep_blank_values=True).items()}
        self.forms.append(form)
        result = {"orderid": "WIRE1", "images": [{"image": "https://results.example/x.png"}]}
        return httpx.Response(200, json={"reason": "成功", "result": result, "error_code": 0})


@pytest.fixture
def wire(clean_env):
    recorder = Wire()
    with ImageEditClient(api_key=KEY, transport=httpx.MockTransport(recorder)) as edit_client:
        yield edit_client, recorder


# --- invalid inputs through the client: a clear error and no request -----------------------------

BAD_IMAGES = {
    "zero-byte file": (lambda d: write(d / "empty.png", b""), "empty"),
    "truncated JPEG": (lambda d: write(d / "cut.jpg", truncated_jpeg()), "truncated or corrupt"),
    "random bytes named .png": (lambda d: write(d / "noise.png", np.random.bytes(4096)), "not a readable"),
    "HTML named .jpg": (lambda d: write(d / "page.jpg", HTML), "not a readable"),
    "SVG named .png": (lambda d: write(d / "vector.png", SVG), "not a readable"),
    "PNG declaring 30000x30000": (lambda d: png_declaring(30000, 30000), "pixels"),
    "PNG declaring 10000x10000": (lambda d: png_declaring(10000, 10000), "pixels"),
    "file:// URL": (lambda d: "file:///etc/passwd", "only http(s)"),
    "javascript: URL": (lambda d: "javascript:alert(1)", "only http(s)"),
    "ftp:// URL": (lambda d: "ftp://x/y.png", "only http(s)"),
    "data URI without base64": (lambda d: "data:image/png,abc", "base64"),
    "data URI with broken base64": (lambda d: "data:image/png;base64,@@@", "invalid base64"),
    "a directory": (lambda d: d, "no image file"),
    "a missing file": (lambda d: d / "missing.png", "no image file"),
    "a number": (lambda d: 42, "int"),
}


@pytest.mark.parametrize("case", BAD_IMAGES, ids=list(BAD_IMAGES))
def test_bad_image_is_refused_before_sending(client, provider, key, tmp_path, case):
    make, expected = BAD_IMAGES[case]
    with pytest.raises(InvalidRequestError) as info:
        client.edit("make the sky purple", [make(tmp_path)])
    assert expected in str(info.value)
    assert is_bilingual(str(info.value))
    assert sent(provider, key) == []


BAD_PARAMETERS = {
    "size abc": {"size": "abc"},
    "size 0*0": {"size": "0*0"},
    "size 99999*1": {"size": "99999*1"},
    "size 1024*1024*1": {"size": "1024*1024*1"},
    "size -512*512": {"size": "-512*512"},
    "size 2049*1024": {"size": "2049*1024"},
    "empty prompt": {"prompt": ""},
    "blank prompt": {"prompt": " \n\t "},
    "prompt of control characters only": {"prompt": "\x00\x07\x1b\x7f"},
    "prompt not text": {"prompt": 123},
    "no image": {"images": []},
    "four images": {"images": "four"},
    "model with a control character": {"model": "auto\x00"},
}


@pytest.mark.parametrize("case", BAD_PARAMETERS, ids=list(BAD_PARAMETERS))
def test_bad_parameter_is_refused_before_sending(client, provider, key, case):
    image = encode(Image.new("RGB", (64, 64), RED), "PNG")
    call = {"prompt": "make it blue", "images": [image], "size": None, "model": None}
    call.update(BAD_PARAMETERS[case])
    if call["images"] == "four":
        call["images"] = [image] * 4
    with pytest.raises(InvalidRequestError) as info:
        client.edit(call["prompt"], call["images"], call["size"], call["model"])
    assert is_bilingual(str(info.value))
    assert sent(provider, key) == []


def test_visitor_key_with_control_characters_is_refused_without_echo(client, provider, key):
    image = encode(Image.new("RGB", (64, 64), RED), "PNG")
    evil = f"sk-evil-{marker()}\r\nX-Injected: 1"
    with pytest.raises(InvalidRequestError) as info:
        client.edit("make it blue", [image], api_key=evil)
    assert "X-Injected" not in str(info.value)
    assert is_bilingual(str(info.value))
    assert sent(provider, key) == [] and sent(provider, evil) == []


def test_decompression_bomb_is_refused_from_its_header(client, provider, key, monkeypatch):
    bomb = png_declaring(30000, 30000)
    assert len(bomb) < 8 * 1024
    prepare(encode(Image.new("RGB", (8, 8)), "PNG"))  # warm-up: Pillow's plugins are imported once
    decodes = []
    real_load = ImageFile.ImageFile.load

    def spy_load(self):
        decodes.append(self.size)
        return real_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy_load)
    tracemalloc.start()
    try:
        with pytest.raises(InvalidRequestError, match="pixels"):
            client.edit("make it blue", [bomb])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # No pixel data was read (Pillow's buffers are C allocations that tracemalloc cannot see, so
    # the spy is the proof), and Python-side allocations stayed tiny next to the 900 MB a decode needs.
    assert decodes == []
    assert peak < 4 * 1024 * 1024
    assert sent(provider, key) == []


# --- odd inputs the client converts ------------------------------------------------------------


def test_cmyk_jpeg_is_sent_as_rgb():
    prepared = prepare(encode(Image.new("CMYK", (64, 64), (0, 255, 255, 0)), "JPEG"))
    image = decoded(prepared)
    assert (prepared.mime, prepared.passthrough, image.mode) == ("image/jpeg", False, "RGB")
    assert reddish(image.getpixel((5, 5)))


def test_16_bit_png_keeps_its_tones():
    ramp = np.tile(np.linspace(0, 65535, 256, dtype=np.uint16), (32, 1))
    source = Image.fromarray(ramp)
    assert source.mode.startswith("I;16")
    image = decoded(prepare(encode(source, "PNG")))
    low, high = image.convert("L").getextrema()
    assert low < 30 and high > 220  # a naive 8-bit conversion clips nearly everything to white


@pytest.mark.parametrize("size", [(64, 64), (3000, 40)], ids=["sent as is", "downscaled"])
def test_palette_png_keeps_its_transparency(size):
    prepared = prepare(palette_png(size))
    image = decoded(prepared)
    alpha = image.convert("RGBA").getchannel("A")
    assert alpha.getextrema() == (0, 255)
    assert alpha.getpixel((2, 2)) == 0 and alpha.getpixel((image.width - 2, 2)) == 255
    assert max(image.size) <= 2048


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_animation_sends_its_first_frame(client, provider, key, tmp_path, fmt):
    data = animated(fmt)
    assert Image.open(io.BytesIO(data)).n_frames == 2
    prepared = prepare(data)
    assert prepared.mime in ("image/jpeg", "image/png", "image/webp")
    assert reddish(decoded(prepared).convert("RGB").getpixel((5, 5)))
    # and the simulator, which draws its result from the image it received, saw the red frame
    result = client.edit("keep it", [data])
    saved = client.download(result, tmp_path)
    assert reddish(Image.open(saved[0]).convert("RGB").getpixel((10, 10)))


@pytest.mark.slow  # full-size photos
def test_huge_tiff_is_scaled_down_within_budget():
    source = Image.new("RGB", (8000, 6000), (20, 160, 60))  # 48 MP: under the 50-MP input bound
    data = encode(source, "TIFF", compression="tiff_deflate")
    budget = 6 * 1024 * 1024
    prepared = prepare_image(data, max_side=2048, budget=budget)
    assert (prepared.mime, prepared.width, prepared.height) == ("image/jpeg", 2048, 1536)
    assert len(prepared.value) <= budget
    assert decoded(prepared).size == (2048, 1536)


def test_mislabelled_data_uri_is_sent_with_the_right_mime(wire):
    client, recorder = wire
    jpeg = encode(Image.new("RGB", (64, 64), RED), "JPEG")
    client.edit("make it blue", ["data:image/png;base64," + base64.b64encode(jpeg).decode()])
    assert recorder.forms[-1]["image1"].startswith("data:image/jpeg;base64,")


def test_long_prompt_is_cut_to_800_with_a_warning(wire):
    client, recorder = wire
    result = client.edit("改" * 10_000, [encode(Image.new("RGB", (64, 64)), "PNG")])
    assert recorder.forms[-1]["text"] == "改" * 800
    assert any("800" in note for note in result.warnings)


def test_control_characters_are_removed_and_emoji_kept(wire):
    client, recorder = wire
    prompt = "把猫🐱换成狗🐶\x00\x1b[31m 👩‍🚀 ok\r\n\tline two"
    result = client.edit(prompt, [encode(Image.new("RGB", (64, 64)), "PNG")])
    assert recorder.forms[-1]["text"] == "把猫🐱换成狗🐶[31m 👩‍🚀 ok\r\n\tline two"
    assert any("control" in note for note in result.warnings)


def test_emoji_count_one_each_toward_800(wire):
    client, recorder = wire
    client.edit("🐱" * 900, [encode(Image.new("RGB", (64, 64)), "PNG")])
    assert recorder.forms[-1]["text"] == "🐱" * 800


@pytest.mark.parametrize("size", ["1024×768", "(1024, 768)", " 1024 x 768 ", "1024X768"])
def test_size_spellings_are_normalised(wire, size):
    client, recorder = wire
    client.edit("make it blue", [encode(Image.new("RGB", (64, 64)), "PNG")], size)
    assert recorder.forms[-1]["size"] == "1024*768"


PRIVATE_LINKS = [
    "http://127.0.0.1:8080/cat.png",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.5/x.png",
    "http://[::1]/x.png",
    "HTTPS://intranet.local/a.jpg?sig=a+b/c=",
]


@pytest.mark.parametrize("link", PRIVATE_LINKS)
def test_private_address_links_pass_through_unchanged(wire, link):
    """Policy: the provider fetches image links, never this server, so they go as given."""
    client, recorder = wire
    client.edit("make it blue", [link])
    assert recorder.forms[-1]["image1"] == link


# --- hostile result links: http(s) only, a size cap, a deadline, an image check -----------------


class _Links(BaseHTTPRequestHandler):
    """POST: a provider whose success names the link path given as the prompt. GET: the links."""

    def log_message(self, format, *args):  # noqa: A002 - stdlib signature
        pass

    def do_POST(self):  # noqa: N802 - stdlib name
        form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        link = form["text"][0]
        if not link.startswith(("ftp:", "file:")):
            link = f"http://127.0.0.1:{self.server.server_address[1]}{link}"
        body = json.dumps({"error_code": 0, "result": {"orderid": "LINK1", "images": [{"image": link}]}})
        self._reply(200, body.encode(), "application/json")

    def _reply(self, status, body, content_type, length=None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802 - stdlib name
        png = encode(Image.new("RGB", (32, 32), RED), "PNG")
        if self.path == "/ok.png":
            self._reply(200, png, "image/png")
        elif self.path == "/html":
            self._reply(200, HTML, "image/png")
        elif self.path == "/svg":
            self._reply(200, SVG, "image/svg+xml")
        elif self.path == "/truncated":
            self._reply(200, png[: len(png) // 2], "image/png")
        elif self.path == "/big":
            self._reply(200, png + b"\x00" * 300_000, "image/png")
        elif self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/ok.png")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/expired":
            self._reply(403, b"<Error><Code>AccessDenied</Code></Error>", "application/xml")
        elif self.path == "/trickle":  # a byte at a time, never finishing within the deadline
            self._reply(200, png[:8], "image/png", length=90_000)  # under the size cap: the deadline ends it
            self._drip(lambda: self.wfile.write(b"\x00"))
        elif self.path == "/silent":  # headers, then nothing
            self._reply(200, b"", "image/png", length=1000)
            self._drip(lambda: None)

    def _drip(self, step) -> None:
        until = time.monotonic() + 20  # bounded: the handler thread never outlives the run by much
        while time.monotonic() < until:
            try:
                step()
                self.wfile.flush()
            except OSError:
                return
            time.sleep(0.05)


@marked_fixture("loopback", scope="module")
def links():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Links)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/edit"
    server.shutdown()
    server.server_close()


@pytest.fixture
def short_limits(monkeypatch):
    monkeypatch.setattr(juhe._client, "MAX_DOWNLOAD_BYTES", 100_000)
    monkeypatch.setattr(juhe._client, "DOWNLOAD_TIMEOUT", 0.5)


BAD_LINKS = {
    "HTML with status 200": ("/html", "did not return an image"),
    "SVG": ("/svg", "did not return an image"),
    "truncated PNG": ("/truncated", "corrupt or truncated"),
    "over the size cap": ("/big", "larger than 100000 bytes"),
    "a redirect": ("/redirect", "HTTP 302"),
    "an expired link": ("/expired", "HTTP 403"),
    "bytes trickling past the deadline": ("/trickle", "took longer than 0.5 s"),
    "no bytes after the headers": ("/silent", "timeout"),
}


@pytest.mark.parametrize("case", BAD_LINKS, ids=list(BAD_LINKS))
def test_bad_result_link_is_not_saved(run_client, clean_env, links, short_limits, tmp_path, case):
    path, expected = BAD_LINKS[case]
    image = encode(Image.new("RGB", (64, 64)), "PNG")

    def steps(client):
        result = yield client.edit(path, [image])
        yield client.download(result, tmp_path / "out")

    with pytest.raises(DownloadError) as info:
        run_client(steps, api_key=KEY, api_url=links)
    assert expected in str(info.value) and "LINK1" in str(info.value)
    assert is_bilingual(str(info.value))
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_good_result_link_is_saved(run_client, clean_env, links, short_limits, tmp_path):
    """The control case: the same server and limits save a real image and its sidecar."""
    image = encode(Image.new("RGB", (64, 64)), "PNG")

    def steps(client):
        result = yield client.edit("/ok.png", [image])
        return (yield client.download(result, tmp_path / "out"))

    saved = run_client(steps, api_key=KEY, api_url=links)
    assert [p.name for p in saved] == ["LINK1.png"]
    assert (tmp_path / "out" / "LINK1.json").is_file()


@pytest.mark.parametrize("link", ["ftp://x/y.png", "file:///etc/passwd"])
def test_result_link_that_is_not_http_is_refused(run_client, clean_env, links, link):
    image = encode(Image.new("RGB", (64, 64)), "PNG")

    def steps(client):
        yield client.edit(link, [image])

    with pytest.raises(MalformedResponseError, match="without image links"):
        run_client(steps, api_key=KEY, api_url=links)


def test_fetch_refuses_a_non_http_link(run_client, clean_env, links):
    def steps(client):
        yield client.fetch(EditResult("X1", ["file:///etc/passwd"]), "file:///etc/passwd")

    with pytest.raises(DownloadError, match=r"http\(s\) links are fetched"):
        run_client(steps, api_key=KEY, api_url=links)
