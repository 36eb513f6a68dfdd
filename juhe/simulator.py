"""A local stand-in for the provider: the same protocol over real HTTP, with honest fake results.

    python -m juhe.simulator --port 8765         # then JUHE_API_URL=http://127.0.0.1:8765/image_edit/edit

It validates requests as the provider's document says, answers with links it serves itself, and
can inject faults. Its result is the first input fitted to the requested size with a visible
"SIMULATED" panel over its middle half (so a region edit shows it inside the painted area) and a
band with the prompt along the bottom: it never pretends to be an AI edit.

Faults, either in the prompt (`[sim:282504]`) or queued with POST /_sim/faults {"next": [...]}:
  an error code (`282504`), `http500` (any status), `malformed`, `drop` (close without answer),
  `slow=SECONDS`, `expired` (the result link answers 403), `images=N` (N result images),
  `anysize` (ignore `size` and answer at 1024*1024, or 896*1152 when that was asked;
  `anysize=WxH` picks the size), as a provider that ignores `size` would.
POST /_sim/faults {"rate": 0.2, "seed": 1} injects a random fault into that share of requests.
GET /_sim/stats reports counts, the recent requests (keys only as fingerprints) and the most edit
calls it was answering at once.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import collections
import hashlib
import io
import json
import random
import re
import secrets
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from PIL import Image, ImageDraw, ImageFont, ImageOps

EDIT_PATH = "/image_edit/edit"
MAX_BODY_BYTES = 6 * 1024 * 1024
MAX_IMAGE_BYTES = 10 * 1024 * 1024
MIMES = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/bmp": "BMP",
    "image/tiff": "TIFF",
    "image/webp": "WEBP",
}
REASONS = {
    0: "成功",
    282501: "text和image1不可为空",
    282502: "size格式错误",
    282503: "网络错误",
    282504: "包含敏感词",
    282505: "生成失败",
    282506: "base64字符串大小超限",
    10001: "错误的请求KEY",
    10002: "该KEY无请求权限",
    10003: "KEY过期",
    10004: "错误的OPENID",
    10005: "应用未审核超时,请提交认证",
    10007: "未知的请求源",
    10008: "被禁止的IP",
    10009: "被禁止的KEY",
    10011: "当前IP请求超过限制",
    10012: "请求超过次数限制",
    10013: "测试KEY超过请求限制",
    10014: "系统内部异常",
    10020: "接口维护",
    10021: "接口停用",
}
RANDOM_FAULTS = [str(c) for c in REASONS if c] + [
    "http500",
    "http502",
    "malformed",
    "drop",
    "slow",
    "expired",
]
_MARK = re.compile(r"\[sim:([a-z0-9=.]+)\]", re.IGNORECASE)
_FONT_PATHS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
)
RESULTS_KEPT = 256
WASH, WASH_SHARE = (255, 0, 160), 0.22  # the simulated result's colour cast: plainly not 图1


def key_fingerprint(key: str) -> str:
    """A short one-way tag of a key, so stats can tell keys apart without holding them."""
    return hashlib.sha256(key.encode()).hexdigest()[:10] if key else ""


def _font(size: int) -> ImageFont.ImageFont:
    for path in _FONT_PATHS:
        if Path(path).exists():
            return ImageFont.truetype(path, size)
    return ImageFont.load_default(size=size)


def _output_size(size: str, source: Image.Image) -> tuple[int, int]:
    if size:
        width, height = (int(v) for v in size.split("*"))
        return width, height
    # the provider keeps the aspect ratio at about one megapixel, sides multiples of 16
    ratio = source.width / source.height
    width = (1024 * ratio**0.5) // 16 * 16
    height = (1024 / ratio**0.5) // 16 * 16
    return int(max(512, min(2048, width))), int(max(512, min(2048, height)))


def anysize(fault: str | None, asked: str) -> str:
    """The size an `anysize` fault answers at, ignoring the one asked: `anysize=WxH`, or else
    1024*1024 (896*1152 when that was asked), so a client must cope with another size."""
    if fault and (match := re.fullmatch(r"anysize(?:=(\d+)x(\d+))?", fault)):
        if match.group(1):
            width, height = (max(16, min(4096, int(side))) for side in match.groups())
            return f"{width}*{height}"
        return "896*1152" if asked == "1024*1024" else "1024*1024"
    return asked


def _centre_mark(draw: ImageDraw.ImageDraw, width: int, height: int) -> None:
    """A tinted, framed panel over the middle half, saying SIMULATED: whatever part of the image
    a client keeps (a region edit keeps the crop's centre), the change is plain to see."""
    box = (width // 4, height // 4, width - width // 4, height - height // 4)
    draw.rectangle(box, fill=(255, 0, 170, 110), outline=(255, 210, 0, 255), width=max(2, width // 160))
    font = _font(max(12, (box[2] - box[0]) // 7))
    draw.text(
        ((box[0] + box[2]) // 2, (box[1] + box[3]) // 2), "SIMULATED", font=font, fill=(255, 255, 255, 255),
        anchor="mm", stroke_width=2, stroke_fill=(0, 0, 0, 255),
    )  # fmt: skip


def render_result(source: Image.Image, prompt: str, size: str) -> bytes:
    """The first input fitted to the output size, washed with a light magenta all over (so any part
    of it a region edit keeps shows that it changed), marked SIMULATED in the middle and, with the
    prompt, along the bottom; PNG bytes."""
    source = ImageOps.exif_transpose(source).convert("RGB")
    canvas = ImageOps.fit(source, _output_size(size, source), Image.Resampling.BILINEAR)
    canvas = Image.blend(canvas, Image.new("RGB", canvas.size, WASH), WASH_SHARE)
    draw = ImageDraw.Draw(canvas, "RGBA")
    width, height = canvas.size
    _centre_mark(draw, width, height)
    band = max(56, height // 7)
    draw.rectangle((0, height - band, width, height), fill=(0, 0, 0, 170))
    draw.text((16, height - band + 8), "SIMULATED · 模拟结果", font=_font(band // 3), fill=(255, 210, 0, 255))
    text = prompt if len(prompt) <= 60 else prompt[:57] + "..."
    draw.text((16, height - band // 2 + 4), text, font=_font(max(14, band // 5)), fill=(255, 255, 255, 255))
    out = io.BytesIO()
    canvas.save(out, "PNG", compress_level=1)
    return out.getvalue()


def _placeholder(url: str) -> Image.Image:
    image = Image.new("RGB", (1024, 768), (90, 100, 120))
    ImageDraw.Draw(image).text((24, 24), f"input link: {url[:80]}", font=_font(24), fill="white")
    return image


class SimulatorState:
    """What the simulator remembers: faults to inject, results to serve, counts."""

    def __init__(
        self,
        latency: float = 0.0,
        keys: set[str] | None = None,
        fault_rate: float = 0.0,
        seed: int | None = None,
        slow_seconds: float = 120.0,
        render_once: bool = False,
    ) -> None:
        self.latency = latency
        self.keys = keys
        self.fault_rate = fault_rate
        self.slow_seconds = slow_seconds
        # For load tests: one rendered result per distinct 图1 and size, served to every later request
        # (without the prompt drawn on it). The real provider renders on its own machines; rendering
        # here would spend the very CPU a load test measures the app on.
        self.render_once = render_once
        self.rendered: dict[tuple[str, str], bytes] = {}
        self.random = random.Random(seed)
        self.queued: collections.deque[str] = collections.deque()
        self.results: collections.OrderedDict[str, bytes | None] = collections.OrderedDict()
        self.requests: collections.deque[dict] = collections.deque(maxlen=2000)
        self.counts: collections.Counter[str] = collections.Counter()
        self.in_flight = 0  # edit calls being answered now, and the most at once
        self.peak_in_flight = 0
        # when each edit arrived: its request line and headers read, before its body is read and
        # parsed (this process's own work, which a benchmark must not count against the caller)
        self.arrivals: collections.deque[float] = collections.deque(maxlen=2000)
        self.lock = threading.Lock()

    def next_fault(self, prompt: str) -> str | None:
        """The fault for this request: prompt mark, then the queue, then the random rate."""
        match = _MARK.search(prompt)
        with self.lock:
            if match:
                return match.group(1).lower()
            if self.queued:
                return self.queued.popleft()
            if self.fault_rate and self.random.random() < self.fault_rate:
                return self.random.choice(RANDOM_FAULTS)
        return None

    def store(self, data: bytes | None) -> str:
        """Keep a result (None: an expired link) and return its id."""
        token = secrets.token_hex(12)
        with self.lock:
            self.results[token] = data
            while len(self.results) > RESULTS_KEPT:
                self.results.popitem(last=False)
        return token


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    # headers and body go out in two writes; with Nagle's algorithm on, the body of an answer on a
    # kept-alive connection waited for the client's delayed ACK of the headers: 40 ms on Linux
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - stdlib signature
        """Quiet: tests and the app print their own lines."""

    def _send(self, status: int, body: bytes, content_type: str = "application/json;charset=utf-8") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, payload: dict, status: int = 200) -> None:
        self._send(status, json.dumps(payload, ensure_ascii=False).encode())

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        """Serve result images and stats."""
        state = self.server.state
        path = urlsplit(self.path).path
        if path == "/_sim/stats":
            with state.lock:
                payload = {
                    "counts": dict(state.counts),
                    "requests": list(state.requests),
                    "peak_in_flight": state.peak_in_flight,
                    "arrivals": list(state.arrivals),
                }
            return self._json(payload)
        match = re.fullmatch(r"/results/([0-9a-f]+)\.png", path)
        if match:
            with state.lock:
                data = state.results.get(match.group(1), b"")
            if data:
                return self._send(200, data, "image/png")
            if data is None:  # like the provider's storage once a signed link has expired
                return self._send(
                    403,
                    b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>",
                    "application/xml",
                )
        return self._send(404, b"not found", "text/plain")

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        """The edit endpoint and the fault control."""
        state = self.server.state
        arrived = time.time()
        path = urlsplit(self.path).path
        body = self._read_body()
        if path == "/_sim/faults":
            config = json.loads(body or b"{}")
            with state.lock:
                state.queued.extend(str(f) for f in config.get("next", []))
                if "rate" in config:
                    state.fault_rate = float(config["rate"])
                if "seed" in config:
                    state.random.seed(config["seed"])
                if "latency" in config:
                    state.latency = float(config["latency"])
                if config.get("reset"):
                    state.queued.clear()
                    state.counts.clear()
                    state.requests.clear()
                    state.peak_in_flight = state.in_flight
            return self._json({"ok": True})
        if not path.endswith(EDIT_PATH):
            return self._send(404, b"not found", "text/plain")
        if len(body) > MAX_BODY_BYTES:
            self._count("http413", {})
            return self._send(413, b"<html><body>413 Request Entity Too Large</body></html>", "text/html")
        received = time.monotonic()
        form = {k: v[0] for k, v in parse_qs(body.decode("ascii", "replace"), keep_blank_values=True).items()}
        with state.lock:
            state.in_flight += 1
            state.peak_in_flight = max(state.peak_in_flight, state.in_flight)
            state.arrivals.append(arrived)
        try:
            self._edit(state, form, len(body), received)
        finally:
            with state.lock:
                state.in_flight -= 1

    def _count(self, outcome: str, form: dict, size: int = 0) -> None:
        state = self.server.state
        with state.lock:
            state.counts[outcome] += 1
            state.requests.append(
                {
                    "outcome": outcome,
                    "key": key_fingerprint(form.get("key", "")),
                    "text": form.get("text", "")[:200],
                    "size": form.get("size", ""),
                    "model": form.get("model", ""),
                    "images": sum(1 for f in ("image1", "image2", "image3") if form.get(f)),
                    "body_bytes": size,
                    "time": time.time(),
                }
            )

    def _error(self, code: int, form: dict, size: int) -> None:
        self._count(str(code), form, size)
        self._json({"reason": REASONS.get(code, "未知错误"), "result": None, "error_code": code})

    def _edit(self, state: SimulatorState, form: dict, size: int, received: float) -> None:
        key, text = form.get("key", ""), form.get("text", "")
        if not key or (state.keys is not None and key not in state.keys):
            return self._error(10001, form, size)
        if not text.strip() or not form.get("image1"):
            return self._error(282501, form, size)
        out_size = form.get("size", "")
        if out_size and not _valid_size(out_size):
            return self._error(282502, form, size)
        fault = state.next_fault(text)
        # `latency` is the whole time an edit takes once its body has arrived: the parsing, decoding
        # and drawing happen within it, as the provider's do on its own machines, not on top of it
        deadline = received + state.latency
        if fault and self._inject(state, fault, form, size, deadline):
            return
        once = (hashlib.sha256(form["image1"].encode()).hexdigest(), out_size) if state.render_once else None
        if once in state.rendered and not fault:
            return self._answer(state, [state.rendered[once]], form, size, deadline)
        images = []
        for field in ("image1", "image2", "image3"):
            value = form.get(field, "")
            if not value:
                continue
            decoded = _decode_image(value)
            if isinstance(decoded, int):
                _wait_until(deadline)
                return self._error(decoded, form, size)
            images.append(decoded)
        count = 1
        if fault and fault.startswith("images="):
            count = max(1, min(4, int(fault.split("=", 1)[1])))
        expired = fault == "expired"
        drawn = "" if once else text[:800]
        results = [
            None if expired else render_result(images[0], drawn, anysize(fault, out_size))
            for _ in range(count)
        ]
        if once and not fault:
            state.rendered[once] = results[0]
        self._answer(state, results, form, size, deadline)

    def _answer(self, state: SimulatorState, results: list, form: dict, size: int, deadline: float) -> None:
        """Store the results (None: an expired link) and answer with their links at `deadline`."""
        base = f"http://{self.headers.get('Host', '127.0.0.1')}/results/"
        links = [
            {"image": f"{base}{state.store(data)}.png?Expires={int(time.time()) + 86400}&Signature=sim"}
            for data in results
        ]
        order_id = "SIM" + time.strftime("%Y%m%d%H%M%S") + secrets.token_hex(3)
        _wait_until(deadline)
        self._count("ok" if all(results) else "expired", form, size)
        self._json({"reason": "成功", "result": {"orderid": order_id, "images": links}, "error_code": 0})

    def _inject(self, state: SimulatorState, fault: str, form: dict, size: int, deadline: float) -> bool:
        """Answer with the fault once `deadline` is reached and return True, or return False to go on
        normally."""
        _wait_until(deadline)
        if fault.isdigit():
            self._error(int(fault), form, size)
        elif fault.startswith("http") and fault[4:].isdigit():
            self._count(fault, form, size)
            self._send(int(fault[4:]), b"<html><body>Bad Gateway</body></html>", "text/html")
        elif fault == "malformed":
            self._count(fault, form, size)
            self._send(200, b"<html>upstream error</html>", "text/html")
        elif fault == "drop":
            self._count(fault, form, size)
            self.close_connection = True
        elif fault.startswith("slow"):
            self._count("slow", form, size)
            seconds = float(fault.split("=", 1)[1]) if "=" in fault else state.slow_seconds
            time.sleep(seconds)
            return False
        else:
            return False
        return True


def _wait_until(deadline: float) -> None:
    delay = deadline - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def _valid_size(size: str) -> bool:
    match = re.fullmatch(r"(\d+)\*(\d+)", size)
    return bool(match) and all(512 <= int(v) <= 2048 for v in match.groups())


def _decode_image(value: str) -> Image.Image | int:
    """The image of a form field, or the error code the provider gives for it."""
    if value.startswith(("http://", "https://")):
        return _placeholder(value)
    match = re.fullmatch(r"data:([a-z/]+);base64,(.*)", value, re.DOTALL)
    if not match or match.group(1) not in MIMES:
        return 282505
    payload = match.group(2)
    if len(payload) * 3 // 4 > MAX_IMAGE_BYTES:
        return 282506
    try:
        data = base64.b64decode(payload, validate=True)
        image = Image.open(io.BytesIO(data))
        image.load()
    except (binascii.Error, ValueError, OSError, Image.DecompressionBombError):
        return 282505
    if image.format != MIMES[match.group(1)]:
        return 282505
    return image


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default backlog is 5: a burst of new connections overflows it and the kernel
    # drops the extra handshakes, which clients retry only after a second
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], state: SimulatorState) -> None:
        super().__init__(address, _Handler)
        self.state = state

    def handle_error(self, request, client_address) -> None:
        """Stay quiet when the client hung up first, as it does after its own timeout."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class Simulator:
    """The simulator run in a background thread: `with Simulator() as sim: sim.url`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **state_options) -> None:
        self.state = SimulatorState(**state_options)
        self._server = _Server((host, port), self.state)
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """`http://host:port` of the running server."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def url(self) -> str:
        """The edit endpoint, for JUHE_API_URL."""
        return self.base_url + EDIT_PATH

    def start(self) -> Simulator:
        """Serve in a daemon thread."""
        self._thread = threading.Thread(target=self._server.serve_forever, name="juhe-simulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def inject(self, *faults: str) -> None:
        """Queue faults for the next requests, in order."""
        with self.state.lock:
            self.state.queued.extend(faults)

    def stats(self) -> dict:
        """Counts by outcome, the recent requests, the most edit calls in flight at once, and when
        each edit arrived (epoch seconds)."""
        with self.state.lock:
            return {
                "counts": dict(self.state.counts),
                "requests": list(self.state.requests),
                "peak_in_flight": self.state.peak_in_flight,
                "arrivals": list(self.state.arrivals),
            }


def main(argv: list[str] | None = None, prog: str = "python -m juhe.simulator") -> None:
    """Command line: serve the simulator until Ctrl-C. `prog` is how the usage line names it (`juhe
    simulator` when the `juhe` command line runs it)."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Serve a local simulator of the Juhe image-edit API.",
        epilog="example: python -m juhe.simulator --port 8765 --latency 2\n"
        "then: JUHE_API_URL=http://127.0.0.1:8765/image_edit/edit JUHE_API_KEY=test python app.py",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds each edit takes")
    parser.add_argument(
        "--fault-rate", type=float, default=0.0, help="share of requests given a random fault"
    )
    parser.add_argument("--seed", type=int, default=None, help="seed for random faults")
    parser.add_argument("--slow-seconds", type=float, default=120.0, help="how long a 'slow' fault stalls")
    parser.add_argument(
        "--render-once",
        action="store_true",
        help="load tests: render one result per distinct image and size, and serve it again",
    )
    parser.add_argument(
        "--keys", default=None, help="comma-separated keys to accept (default: any non-empty)"
    )
    args = parser.parse_args(argv)
    keys = set(args.keys.split(",")) if args.keys else None
    sim = Simulator(
        args.host,
        args.port,
        latency=args.latency,
        keys=keys,
        fault_rate=args.fault_rate,
        seed=args.seed,
        slow_seconds=args.slow_seconds,
        render_once=args.render_once,
    )
    print(f"simulator listening: JUHE_API_URL={sim.url}", flush=True)
    try:
        sim._server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        sim._server.server_close()


if __name__ == "__main__":
    main()
