"""A hostile or broken provider, as a small real HTTP server on 127.0.0.1: crafted status lines and
reason phrases, trickling headers and bodies, huge answers, thousands of links, echoed keys.

Each test runs on the sync and the async client; timeouts are cut to a fraction of a second.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from helpers.markers import marked_fixture
from PIL import Image

import juhe._client
from juhe import (
    AsyncImageEditClient,
    AuthenticationError,
    DownloadError,
    EditResult,
    HTTPStatusError,
    JuheError,
    MalformedResponseError,
    ReadTimeoutError,
)
from juhe._download import MAX_RESULT_PIXELS, ResultSaver
from juhe._precise import LocalJob
from juhe._request import MAX_RESULT_LINKS
from juhe._transport import async_http_transport
from juhe.simulator import Simulator

pytestmark = pytest.mark.usefixtures("clean_env")

CLIENT_KEY = "client-key-0123456789abcdef"
CALL_KEY = "visitor+key/9876543210="


def png(size: tuple[int, int] = (64, 48), colour=(200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()


IMAGE = png()
Route = Callable[[BaseHTTPRequestHandler], None]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format, *args) -> None:  # noqa: A002 - stdlib signature
        """Quiet."""

    def _route(self) -> None:
        self.server.seen.append(self.path)
        route = self.server.routes.get(self.path.split("?")[0]) or self.server.routes.get("*")
        if route is None:
            self.send_error(404)
            return
        route(self)

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        """Read the form, then answer as the route says."""
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._route()

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        """Answer as the route says."""
        self._route()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes: dict[str, Route] = {}
        self.seen: list[str] = []


class Hostile:
    """The running server: `route(path, answer)` returns the URL that answers so."""

    def __init__(self, server: _Server) -> None:
        self.server = server
        self.base = f"http://127.0.0.1:{server.server_address[1]}"

    def route(self, path: str, answer: Route) -> str:
        self.server.routes[path] = answer
        return self.base + path

    @property
    def seen(self) -> list[str]:
        return self.server.seen


@marked_fixture("loopback", scope="module")
def _running() -> _Server:
    server = _Server()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def hostile(_running: _Server) -> Hostile:
    """The module's server with no routes and nothing seen yet."""
    _running.routes.clear()
    _running.seen.clear()
    return Hostile(_running)


# --- answers -------------------------------------------------------------------------------------


def send(
    handler: BaseHTTPRequestHandler, body: bytes, status: int = 200, phrase: str | None = None, **headers
):
    handler.send_response(status, phrase)
    handler.send_header("Content-Type", headers.pop("content_type", "application/json"))
    if "length" not in headers:
        handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def answer_json(payload: dict, status: int = 200, phrase: str | None = None) -> Route:
    return lambda h: send(h, json.dumps(payload).encode(), status, phrase)


def success(order_id: str, links: list[str]) -> Route:
    images = [{"image": link} for link in links]
    return answer_json({"reason": "成功", "result": {"orderid": order_id, "images": images}, "error_code": 0})


def image_route(data: bytes = IMAGE) -> Route:
    return lambda h: send(h, data, content_type="image/png")


def trickle(head: bytes, step: bytes, every: float = 0.05, bound: float = 5.0) -> Route:
    """Send `head`, then `step` every `every` seconds until the client hangs up (at most `bound` s)."""

    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.close_connection = True
        until = time.monotonic() + bound
        try:
            handler.wfile.write(head)
            while time.monotonic() < until:
                time.sleep(every)
                handler.wfile.write(step)
                handler.wfile.flush()
        except OSError:
            return

    return route


def edit_steps(prompt="p", *, api_key=None, directory: Path | None = None):
    """Steps for `run_client`: edit, then download when `directory` is given; return what it got."""

    def steps(client):
        result = yield client.edit(prompt, [IMAGE], api_key=api_key)
        paths = (yield client.download(result, directory)) if directory is not None else None
        return result, paths

    return steps


def failure(run_client, steps, expected: type[Exception] = JuheError, **options) -> JuheError:
    with pytest.raises(expected) as info:
        run_client(steps, **options)
    return info.value


# --- M4: an echoed key leaks nowhere ------------------------------------------------------------

KEYS = {"client's key": (CLIENT_KEY, None), "per-call key": (CALL_KEY, CALL_KEY)}


def _echo(sent: str) -> str:
    return f"{sent}|{CLIENT_KEY}"  # the provider echoes the key sent and the client's own


def assert_no_key(*texts: object, folder: Path | None = None, logs: str = "") -> None:
    everything = [str(t) for t in texts] + [logs]
    if folder is not None and folder.exists():
        for path in folder.rglob("*"):
            everything.append(path.name)
            if path.is_file():
                everything.append(path.read_text("utf-8", "replace"))
    for key in (CLIENT_KEY, CALL_KEY, "visitor%2Bkey%2F9876543210%3D"):
        assert all(key not in text for text in everything), (key, everything)


def watch_logs(caplog: pytest.LogCaptureFixture) -> None:
    """Every juhe log line and httpx's request lines (httpcore's DEBUG trace shows raw bytes)."""
    caplog.set_level(logging.DEBUG, logger="juhe")
    caplog.set_level(logging.INFO)


def fields(error: JuheError) -> list[object]:
    return [
        str(error),
        repr(error),
        *error.args,
        error.zh,
        error.en,
        error.reason,
        error.order_id,
        error.detail,
    ]


ECHOES = {
    "reason phrase": lambda key: lambda h: send(h, b"<html>busy</html>", 500, f"Bad key {key}"),
    "reason": lambda key: answer_json(
        {"reason": f"错误的请求KEY {key}", "result": {"orderid": f"JH{key}"}, "error_code": 10001}
    ),
    "non-JSON snippet": lambda key: (
        lambda h: send(h, f"<html>key={key}</html>".encode(), content_type="text/html")
    ),
    "huge JSON error": lambda key: answer_json(
        {"reason": "x" * 100 + key, "result": {"orderid": key * 20}, "error_code": 282505}
    ),
}


@pytest.mark.parametrize("echo", ECHOES, ids=list(ECHOES))
@pytest.mark.parametrize("who", KEYS, ids=["client-key", "call-key"])
def test_an_echoed_key_is_in_no_error_field_or_log(run_client, hostile, caplog, echo, who):
    watch_logs(caplog)
    sent, per_call = KEYS[who]
    url = hostile.route("/edit", ECHOES[echo](_echo(sent)))
    error = failure(run_client, edit_steps(api_key=per_call), api_key=CLIENT_KEY, api_url=url)
    assert "***" in str(error) or echo == "reason phrase"  # the standard phrase replaces the provider's
    assert_no_key(*fields(error), logs=caplog.text)


@pytest.mark.parametrize("who", KEYS, ids=["client-key", "call-key"])
def test_an_echoed_key_in_an_order_id_and_link_reaches_no_file_sidecar_or_log(
    run_client, hostile, caplog, tmp_path, who
):
    watch_logs(caplog)
    sent, per_call = KEYS[who]
    hostile.route("*", image_route())
    link = f"{hostile.base}/results/{_echo(sent)}.png?Signature={_echo(sent)}"
    url = hostile.route("/edit", success(f"JH-{_echo(sent)}", [link, link]))
    result, paths = run_client(
        edit_steps(api_key=per_call, directory=tmp_path / "out"), api_key=CLIENT_KEY, api_url=url
    )
    assert result.order_id == "JH-***|***" and all("***" in u for u in result.image_urls)
    assert len(paths) == 2 and all(p.is_file() for p in paths)
    assert_no_key(result, result.to_dict(), *paths, folder=tmp_path, logs=caplog.text)
    assert_no_key(*hostile.seen)  # the result host is never even asked for the key


@pytest.mark.parametrize("who", KEYS, ids=["client-key", "call-key"])
def test_an_echoed_key_in_an_expired_result_is_in_no_download_error(run_client, hostile, tmp_path, who):
    sent, per_call = KEYS[who]
    hostile.route("*", lambda h: send(h, f"<Error>{sent}</Error>".encode(), 403, f"Denied {sent}"))
    url = hostile.route("/edit", success(f"JH{sent}", [f"{hostile.base}/r/{sent}.png"]))
    error = failure(
        run_client,
        edit_steps(api_key=per_call, directory=tmp_path),
        DownloadError,
        api_key=CLIENT_KEY,
        api_url=url,
    )
    assert error.order_id == "JH***" and "HTTP 403" in error.detail
    assert_no_key(*fields(error), folder=tmp_path)


# --- M5: the answer is capped and the timeout is the call's total time ---------------------------


def test_an_answer_over_1_mb_is_refused_from_its_declared_length(run_client, hostile):
    body = json.dumps({"reason": "x" * (2 * juhe._client.MAX_ANSWER_BYTES), "error_code": 0}).encode()
    url = hostile.route("/edit", lambda h: send(h, body))
    error = failure(run_client, edit_steps(), MalformedResponseError, api_key=CLIENT_KEY, api_url=url)
    assert error.kind == "malformed" and "larger than 1,048,576 bytes" in str(error)


def test_an_endless_answer_without_a_length_is_cut_at_1_mb(run_client, hostile):
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
    url = hostile.route("/edit", trickle(head + b'{"reason": "', b"x" * 65536, every=0.001))
    started = time.monotonic()
    error = failure(run_client, edit_steps(), MalformedResponseError, api_key=CLIENT_KEY, api_url=url)
    assert "larger than 1,048,576 bytes" in str(error) and time.monotonic() - started < 3


TRICKLES = {
    "body": b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{",
    "headers": b"HTTP/1.1 200 OK\r\n",
}


@pytest.mark.parametrize("part", TRICKLES, ids=list(TRICKLES))
def test_a_trickling_answer_ends_at_the_total_timeout(run_client, hostile, part):
    step = b" " if part == "body" else b"X-Slow: 1\r\n"
    url = hostile.route("/edit", trickle(TRICKLES[part], step, every=0.05))
    started = time.monotonic()
    error = failure(run_client, edit_steps(), ReadTimeoutError, api_key=CLIENT_KEY, api_url=url, timeout=0.6)
    elapsed = time.monotonic() - started
    assert 0.5 < elapsed < 1.5, elapsed  # a byte every 50 ms never trips a per-read timeout
    assert error.kind == "timeout"


@pytest.mark.parametrize("part", TRICKLES, ids=list(TRICKLES))
def test_a_result_link_that_trickles_ends_at_the_download_deadline(run_client, hostile, monkeypatch, part):
    monkeypatch.setattr(juhe._client, "DOWNLOAD_TIMEOUT", 0.5)
    step = b"\0" if part == "body" else b"X-Slow: 1\r\n"
    link = hostile.route(
        "/slow.png", trickle(TRICKLES[part].replace(b"application/json", b"image/png"), step)
    )

    def steps(client):
        return (yield client.fetch(EditResult("JH5", [link]), link))

    started = time.monotonic()
    error = failure(run_client, steps, DownloadError)
    assert time.monotonic() - started < 1.5
    assert error.order_id == "JH5" and "took longer than 0.5 s" in str(error)


# --- L2: result links are capped; one failure costs no other result -----------------------------


def test_thousands_of_links_are_cut_to_eight_with_a_warning(run_client, hostile):
    links = [f"{hostile.base}/r/{i}.png" for i in range(3000)]
    url = hostile.route("/edit", success("JH3000", links))
    result, _ = run_client(edit_steps(), api_key=CLIENT_KEY, api_url=url)
    assert result.image_urls == links[:MAX_RESULT_LINKS] == links[:8]
    assert any("3000" in w and "first 8" in w for w in result.warnings)


def test_one_failed_link_is_named_and_the_others_are_saved(run_client, hostile, tmp_path):
    hostile.route("/ok.png", image_route())
    hostile.route("/gone.png", lambda h: send(h, b"<Error/>", 403, content_type="application/xml"))
    links = [f"{hostile.base}/ok.png", f"{hostile.base}/gone.png?Signature=s", f"{hostile.base}/ok.png"]
    url = hostile.route("/edit", success("JH77", links))
    result, paths = run_client(edit_steps(directory=tmp_path), api_key=CLIENT_KEY, api_url=url)
    assert [p.name for p in paths] == ["JH77_1.png", "JH77_3.png"]
    [warning] = [w for w in result.warnings if "was not saved" in w]
    assert (
        "result 2 of 3" in warning and "JH77" in warning and "/gone.png" in warning and "HTTP 403" in warning
    )
    sidecar = json.loads((tmp_path / "JH77_1.json").read_text("utf-8"))
    assert sidecar["files"] == ["JH77_1.png", "JH77_3.png"] and warning in sidecar["warnings"]


def test_when_every_link_fails_the_error_names_the_order_and_link(run_client, hostile, tmp_path):
    hostile.route("*", lambda h: send(h, b"nope", 404, content_type="text/plain"))
    links = [f"{hostile.base}/a.png", f"{hostile.base}/b.png"]
    url = hostile.route("/edit", success("JH78", links))
    error = failure(
        run_client, edit_steps(directory=tmp_path), DownloadError, api_key=CLIENT_KEY, api_url=url
    )
    assert error.order_id == "JH78" and "/a.png" in str(error) and "all 2 result links failed" in str(error)
    assert list(tmp_path.iterdir()) == []


def test_concurrent_downloads_stay_within_the_clients_download_memory(hostile, tmp_path, monkeypatch):
    """Four 100 kB results and room for one: their bodies are read one after another."""
    noise = Image.frombytes("RGB", (200, 170), bytes(range(256)) * 400)
    data = io.BytesIO()
    noise.save(data, "PNG", compress_level=0)
    body = data.getvalue()
    assert 100_000 < len(body) < 150_000

    def slow_image(handler):  # the body in ten parts, 30 ms apart
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        for i in range(10):
            handler.wfile.write(body[i * len(body) // 10 : (i + 1) * len(body) // 10])
            handler.wfile.flush()
            time.sleep(0.03)

    hostile.route("*", slow_image)
    reading, peak = set(), []
    real_add = juhe._client._Body.add

    def add(self, chunk):
        reading.add(id(self))
        peak.append(len(reading))
        real_add(self, chunk)
        if self.size == len(body):
            reading.discard(id(self))

    monkeypatch.setattr(juhe._client._Body, "add", add)
    result = EditResult("JH4", [f"{hostile.base}/{i}.png" for i in range(4)])

    async def main():
        async with AsyncImageEditClient(api_key=CLIENT_KEY, download_memory=150_000) as client:
            return await client.download(result, tmp_path)

    assert len(asyncio.run(main())) == 4
    assert max(peak) == 1


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "64mb"])
def test_the_download_memory_must_be_a_positive_number_of_bytes(bad):
    with pytest.raises(ValueError, match="download_memory must be a positive number of bytes"):
        AsyncImageEditClient(api_key=CLIENT_KEY, download_memory=bad)


# --- L3/L4: odd order ids still save, with their sidecar ----------------------------------------


@pytest.mark.parametrize("order_id", ["𝟘" * 64, "JH\ud800x", "a/../../b", "..", "\x1b[2J" * 30])
def test_odd_order_ids_save_the_image_and_the_sidecar(run_client, hostile, tmp_path, order_id):
    hostile.route("/r.png", image_route())
    url = hostile.route("/edit", success(order_id, [f"{hostile.base}/r.png"]))
    result, [path] = run_client(edit_steps(directory=tmp_path), api_key=CLIENT_KEY, api_url=url)
    assert path.parent == tmp_path
    with Image.open(path) as saved:  # the provider's image with the AIGC label added
        assert saved.tobytes() == Image.open(io.BytesIO(IMAGE)).tobytes()
    assert len(path.name.encode()) <= 255
    sidecar = json.loads(path.with_suffix(".json").read_text("utf-8"))
    assert sidecar["files"] == [path.name] and sidecar["order_id"] == result.order_id


def test_a_sidecar_never_fails_on_a_lone_surrogate(tmp_path):
    result = EditResult("JH\ud800", ["https://r.test/a.png"], prompt="p\udc80")
    saver = ResultSaver(result, tmp_path)
    saver.save(1, IMAGE, "PNG")
    [path] = saver.finish()
    sidecar = json.loads(path.with_suffix(".json").read_text("utf-8"))
    assert sidecar["order_id"] == "JH\ud800" and path.name == "JH.png"


def test_a_sidecar_that_cannot_be_written_costs_no_image(tmp_path, monkeypatch):
    real_write = juhe._download._write_new

    def write(directory, stem, suffix, data):
        if suffix == ".json":
            raise OSError(28, "No space left on device")
        return real_write(directory, stem, suffix, data)

    monkeypatch.setattr(juhe._download, "_write_new", write)
    result = EditResult("JH6", ["https://r.test/a.png"])
    saver = ResultSaver(result, tmp_path)
    saver.save(1, IMAGE, "PNG")
    assert saver.finish() == [tmp_path / "JH6.png"]
    assert any("sidecar" in w and "No space left" in w for w in result.warnings)


# --- L7: a result over the pixel bound is refused from its header --------------------------------


def declared_png(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares `width` x `height` (its pixel data is short)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 100))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(("width", "height"), [(13000, 13000), (2300, 2300)])
def test_a_result_over_the_pixel_bound_is_refused_naming_the_order(
    run_client, hostile, tmp_path, width, height
):
    assert width * height > MAX_RESULT_PIXELS
    hostile.route("/big.png", image_route(declared_png(width, height)))
    url = hostile.route("/edit", success("JH169", [f"{hostile.base}/big.png"]))
    error = failure(
        run_client, edit_steps(directory=tmp_path), DownloadError, api_key=CLIENT_KEY, api_url=url
    )
    assert error.order_id == "JH169" and "JH169" in str(error) and "pixels" in str(error)
    assert list(tmp_path.iterdir()) == []


def test_the_largest_size_one_can_ask_for_is_saved(run_client, hostile, tmp_path):
    hostile.route("/2048.png", image_route(png((2048, 2048))))
    url = hostile.route("/edit", success("JH2048", [f"{hostile.base}/2048.png"]))
    _, [path] = run_client(edit_steps(directory=tmp_path), api_key=CLIENT_KEY, api_url=url)
    assert path.name == "JH2048.png"


# --- the pool: as many edits in flight as asked -------------------------------------------------


@pytest.mark.loopback
@pytest.mark.slow  # a load test: 200 connections to a simulator, about 3.5 s
def test_200_edits_at_once_are_all_in_flight_at_the_simulator():
    """httpx ignores a client's `limits` when it is given a transport; the pool is the transport's."""
    with Simulator(latency=2.0) as sim:

        async def main():
            async with AsyncImageEditClient(
                api_key=CLIENT_KEY, api_url=sim.url, max_connections=200
            ) as client:
                return await asyncio.gather(
                    *(client.edit(f"edit {i} [sim:expired]", [IMAGE]) for i in range(200))
                )

        results = asyncio.run(main())
        assert len({r.order_id for r in results}) == 200
        assert sim.stats()["peak_in_flight"] == 200


def test_an_http_status_error_keeps_the_status_and_the_standard_phrase(run_client, hostile):
    url = hostile.route("/edit", lambda h: send(h, b"", 502, f"Bad Gateway \x1b[31m{CLIENT_KEY}"))
    error = failure(run_client, edit_steps(), HTTPStatusError, api_key=CLIENT_KEY, api_url=url)
    assert (error.status_code, error.kind, error.detail) == (502, "http502", "Bad Gateway")
    assert len([p for p in hostile.seen if p == "/edit"]) == 1  # a 502 is never retried


def test_an_error_reason_with_the_key_keeps_the_code(run_client, hostile):
    reason = f"错误的请求KEY {CLIENT_KEY}"
    url = hostile.route("/edit", answer_json({"reason": reason, "result": None, "error_code": 10001}))
    error = failure(run_client, edit_steps(), AuthenticationError, api_key=CLIENT_KEY, api_url=url)
    assert (error.code, error.kind, error.reason) == (10001, "10001", "错误的请求KEY ***")


def test_the_async_client_downloads_and_saves_off_the_event_loop(hostile, tmp_path, monkeypatch):
    """With its own transport the async client reads, checks and saves each result on a worker
    thread of its own, never on the event loop's thread (issue 19: a burst of edits)."""
    hostile.route("*", image_route())
    where = []
    real_save = ResultSaver.save

    def save(self, index, data, fmt):
        where.append(threading.current_thread().name)
        return real_save(self, index, data, fmt)

    monkeypatch.setattr(ResultSaver, "save", save)
    read_on = set()
    real_add = juhe._client._Body.add

    def add(self, chunk):
        read_on.add(threading.current_thread().name)  # the body's bytes, as they are read
        real_add(self, chunk)

    monkeypatch.setattr(juhe._client._Body, "add", add)
    result = EditResult("JH5", [f"{hostile.base}/{i}.png" for i in range(3)])

    async def main():
        loop_thread = threading.current_thread().name
        async with AsyncImageEditClient(api_key=CLIENT_KEY, max_connections=4) as client:
            return loop_thread, await client.download(result, tmp_path)

    loop_thread, paths = asyncio.run(main())
    assert len(paths) == 3 and all(path.is_file() for path in paths)
    assert len(where) == 3 and all(name.startswith("juhe-download") for name in where)
    assert loop_thread not in where and read_on and all(n.startswith("juhe-download") for n in read_on)


@pytest.mark.parametrize("stitched", [False, True], ids=["plain", "resized-to-image1"])
def test_save_on_loop_saves_a_plain_result_on_the_loop_and_a_resized_one_on_a_thread(
    hostile, tmp_path, monkeypatch, stitched
):
    """For a loop that serves nothing else (the app's edit processes): no hand-off to a thread for
    the check and save of a plain result; bringing a result to 图1's size can take a second and
    still goes to a thread."""
    hostile.route("*", image_route())
    where = []
    real_save, real_finish = ResultSaver.save, ResultSaver.finish

    def save(self, index, data, fmt):
        where.append(threading.current_thread().name)
        return real_save(self, index, data, fmt)

    def finish(self):
        where.append(threading.current_thread().name)
        return real_finish(self)

    monkeypatch.setattr(ResultSaver, "save", save)
    monkeypatch.setattr(ResultSaver, "finish", finish)
    result = EditResult("JH6", [f"{hostile.base}/{i}.png" for i in range(2)])
    if stitched:
        result._job = LocalJob(target=(64, 48))

    async def main():
        async with AsyncImageEditClient(
            api_key=CLIENT_KEY, transport=async_http_transport(4), save_on_loop=True
        ) as client:
            return threading.current_thread().name, await client.download(result, tmp_path)

    loop_thread, paths = asyncio.run(main())
    assert len(paths) == 2 and all(path.is_file() for path in paths)
    assert len(where) == 3  # two saves and the sidecar
    if stitched:
        assert loop_thread not in where
    else:
        assert set(where) == {loop_thread}


@pytest.mark.parametrize("bad", ["yes", 1, None])
def test_save_on_loop_must_be_a_bool(bad):
    with pytest.raises(ValueError, match="save_on_loop must be True or False"):
        AsyncImageEditClient(api_key=CLIENT_KEY, save_on_loop=bad)
