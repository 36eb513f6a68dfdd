"""Both clients against the real simulator over loopback, and the simulator's own validation.

The simulator is shared by the session, so each test finds its own requests by a unique prompt.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import uuid

import httpx
import pytest
from helpers.markers import marked_fixture
from PIL import Image

from juhe import (
    ERROR_CODES,
    AsyncImageEditClient,
    AuthenticationError,
    DownloadError,
    HTTPStatusError,
    JuheError,
    MalformedResponseError,
    ReadTimeoutError,
    TransportError,
)
from juhe.simulator import Simulator, render_result

pytestmark = pytest.mark.usefixtures("clean_env")

KEY = "sim-test-key-123456"


def jpeg(size=(96, 64)) -> bytes:
    image = Image.new("RGB", size, (30, 120, 200))
    image.paste((250, 200, 40), (0, 0, size[0] // 2, size[1]))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


PHOTO = jpeg()


def data_uri(data: bytes, mime: str = "image/jpeg") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def prompt(text: str) -> str:
    """A prompt no other test sends, to find this test's requests in the shared stats."""
    return f"{text} #{uuid.uuid4().hex[:12]}"


def outcomes(sim: Simulator, text: str) -> list[str]:
    return [r["outcome"] for r in sim.stats()["requests"] if r["text"] == text]


def options(sim: Simulator, **extra) -> dict:
    return {"api_key": KEY, "api_url": sim.url, **extra}


def edit(*args, **kwargs):
    def steps(client):
        return (yield client.edit(*args, **kwargs))

    return steps


def fails(expected: type[Exception], *args, **kwargs):
    def steps(client):
        with pytest.raises(expected) as info:
            yield client.edit(*args, **kwargs)
        return info.value

    return steps


def files_in(directory) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


# --- success -------------------------------------------------------------------------------------


def test_edit_then_download_writes_the_image_and_a_sidecar(run_client, simulator, tmp_path):
    text = prompt("把图1的背景换成海边")

    def steps(client):
        result = yield client.edit(text, [PHOTO], size="640*512")
        paths = yield client.download(result, tmp_path / "out")
        return result, paths

    result, (path,) = run_client(steps, **options(simulator))
    assert outcomes(simulator, text) == ["ok"]
    assert result.order_id.startswith("SIM") and len(result.image_urls) == 1
    with Image.open(path) as image:
        assert (image.format, image.size) == ("PNG", (640, 512))
    assert path.name == f"{result.order_id}.png"
    sidecar = json.loads((path.parent / f"{result.order_id}.json").read_text(encoding="utf-8"))
    assert sidecar["order_id"] == result.order_id
    assert (sidecar["prompt"], sidecar["size"], sidecar["model"]) == (text, "640*512", "auto")
    assert sidecar["image_urls"] == result.image_urls
    assert sidecar["files"] == [path.name]
    assert sidecar["requested_at"] <= sidecar["completed_at"] <= sidecar["downloaded_at"]
    assert sidecar["elapsed_s"] >= 0
    assert KEY not in json.dumps(sidecar)
    assert files_in(tmp_path / "out") == sorted([path.name, f"{result.order_id}.json"])


def test_downloads_never_overwrite_an_earlier_file(run_client, simulator, tmp_path):
    def steps(client):
        result = yield client.edit(prompt("p"), PHOTO, size="512*512")
        (tmp_path / f"{result.order_id}.png").write_bytes(b"an earlier file")
        first = yield client.download(result, tmp_path)
        second = yield client.download(result, tmp_path)
        return result, first + second

    result, (first, second) = run_client(steps, **options(simulator))
    assert (tmp_path / f"{result.order_id}.png").read_bytes() == b"an earlier file"
    assert (first.name, second.name) == (f"{result.order_id}-2.png", f"{result.order_id}-3.png")
    assert first.read_bytes() == second.read_bytes() != b"an earlier file"
    assert files_in(tmp_path) == sorted(
        [f"{result.order_id}{s}" for s in (".png", "-2.png", "-3.png", "-2.json", "-3.json")]
    )


def test_several_result_images_are_all_saved_with_one_sidecar(run_client, simulator, tmp_path):
    def steps(client):
        result = yield client.edit(prompt("[sim:images=3] p"), [PHOTO, PHOTO], size="512*512")
        return result, (yield client.download(result, tmp_path))

    result, paths = run_client(steps, **options(simulator))
    assert len(result.image_urls) == 3 and len(set(result.image_urls)) == 3
    assert [p.name for p in paths] == [f"{result.order_id}_{i}.png" for i in (1, 2, 3)]
    sidecar = json.loads((tmp_path / f"{result.order_id}_1.json").read_text(encoding="utf-8"))
    assert sidecar["files"] == [p.name for p in paths]


def test_concurrent_edits_on_one_async_client(simulator):
    texts = [prompt(f"concurrent {i}") for i in range(4)]

    async def main():
        async with AsyncImageEditClient(**options(simulator)) as client:
            return await asyncio.gather(*(client.edit(t, PHOTO, size="512*512") for t in texts))

    results = asyncio.run(main())
    assert [r.prompt for r in results] == texts
    assert len({r.order_id for r in results}) == 4
    assert all(outcomes(simulator, t) == ["ok"] for t in texts)


# --- injected faults -----------------------------------------------------------------------------


@pytest.mark.parametrize("code", sorted(ERROR_CODES))
def test_each_error_code_raises_its_family(run_client, simulator, code):
    text = prompt(f"[sim:{code}] p")
    error = run_client(fails(JuheError, text, PHOTO), **options(simulator))
    assert type(error) is ERROR_CODES[code][0]
    assert error.code == code and str(code) in str(error)
    assert outcomes(simulator, text) == [str(code)]


def test_http_500_is_not_retried(run_client, simulator, no_backoff):
    text = prompt("[sim:http500] p")
    error = run_client(fails(HTTPStatusError, text, PHOTO), **options(simulator))
    assert error.status_code == 500
    assert outcomes(simulator, text) == ["http500"]


@pytest.mark.parametrize("status", [502, 504])
def test_a_gateway_error_is_not_retried(run_client, simulator, no_backoff, status):
    """The edit behind a 502 or 504 may have run and been billed."""
    text = prompt(f"[sim:http{status}] p")
    error = run_client(fails(HTTPStatusError, text, PHOTO), **options(simulator))
    assert error.status_code == status
    assert outcomes(simulator, text) == [f"http{status}"]


def test_http_503_is_retried_then_succeeds(run_client, simulator, no_backoff):
    text = prompt("p")
    simulator.inject("http503")
    result = run_client(edit(text, PHOTO, size="512*512"), **options(simulator))
    assert result.order_id.startswith("SIM")
    assert outcomes(simulator, text) == ["http503", "ok"]


def test_persistent_503_gives_up_after_three_posts(run_client, simulator, no_backoff):
    text = prompt("[sim:http503] p")
    error = run_client(fails(HTTPStatusError, text, PHOTO), **options(simulator))
    assert error.status_code == 503
    assert outcomes(simulator, text) == ["http503"] * 3


def test_malformed_answer(run_client, simulator):
    text = prompt("[sim:malformed] p")
    run_client(fails(MalformedResponseError, text, PHOTO), **options(simulator))
    assert outcomes(simulator, text) == ["malformed"]


def test_dropped_connection_is_a_transport_error_and_not_retried(run_client, simulator):
    text = prompt("[sim:drop] p")
    error = run_client(fails(TransportError, text, PHOTO), **options(simulator))
    assert type(error) is TransportError and "closed the connection" in str(error)
    assert outcomes(simulator, text) == ["drop"]


def test_slow_answer_times_out_after_exactly_one_post(run_client, simulator):
    text = prompt("[sim:slow=2] p")  # the simulator stalls 2 s; the client waits 0.3 s
    error = run_client(fails(ReadTimeoutError, text, PHOTO), **options(simulator, timeout=0.3))
    assert "not retried" in str(error)
    assert outcomes(simulator, text).count("slow") == 1


def test_expired_link_is_a_download_error_naming_the_order(run_client, simulator, tmp_path):
    def steps(client):
        result = yield client.edit(prompt("[sim:expired] p"), PHOTO, size="512*512")
        with pytest.raises(DownloadError) as info:
            yield client.download(result, tmp_path / "out")
        return result, info.value

    result, error = run_client(steps, **options(simulator))
    assert error.order_id == result.order_id and result.order_id in str(error)
    assert "403" in str(error) and "Signature" not in str(error)
    assert files_in(tmp_path / "out") == []


# --- the simulator's own validation --------------------------------------------------------------


def post_form(sim: Simulator, **fields: str) -> httpx.Response:
    form = {"key": KEY, "text": prompt("p"), "image1": data_uri(PHOTO), "image2": "", "image3": ""}
    form |= {"size": "", "model": ""} | fields
    return httpx.post(sim.url, data=form, timeout=10)


@marked_fixture("loopback", scope="module")
def keyed_simulator():
    """A simulator that accepts one key only."""
    with Simulator(keys={"the-right-key"}) as sim:
        yield sim


def test_wrong_key_is_10001_and_the_key_is_not_kept(run_client, keyed_simulator):
    sim = keyed_simulator
    error = run_client(
        fails(AuthenticationError, prompt("p"), PHOTO), api_key="the-wrong-key", api_url=sim.url
    )
    assert error.code == 10001
    result = run_client(edit(prompt("p"), PHOTO, size="512*512"), api_key="the-right-key", api_url=sim.url)
    assert result.order_id.startswith("SIM")
    stats = json.dumps(sim.stats())
    assert "the-wrong-key" not in stats and "the-right-key" not in stats


@pytest.mark.parametrize(("field", "value"), [("text", ""), ("text", "   "), ("image1", "")])
def test_empty_text_or_image_is_282501(simulator, field, value):
    answer = post_form(simulator, **{field: value})
    assert answer.status_code == 200 and answer.json()["error_code"] == 282501


@pytest.mark.parametrize("size", ["100*100", "1024x1024", "abc", "2049*512", "1024*1024*1"])
def test_bad_size_is_282502(simulator, size):
    answer = post_form(simulator, size=size)
    assert answer.json() == {"reason": "size格式错误", "result": None, "error_code": 282502}


def test_good_form_posted_directly_succeeds(simulator):
    body = post_form(simulator, size="512*768").json()
    assert body["error_code"] == 0 and body["result"]["images"][0]["image"].startswith(simulator.base_url)


def test_body_over_6_mib_is_413(simulator):
    answer = httpx.post(
        simulator.url,
        content=b"key=k&text=p&image1=" + b"A" * (6 * 1024 * 1024),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=10,
    )
    assert answer.status_code == 413


@pytest.mark.parametrize(
    "image1",
    [
        data_uri(b"\xff\xd8\xff\xe0 not really a jpeg"),
        data_uri(PHOTO, "image/png"),  # the mime must match the bytes
        data_uri(PHOTO, "image/gif"),
        "data:image/jpeg;base64,@@not-base64@@",
        "data:image/jpeg," + base64.b64encode(PHOTO).decode(),
    ],
    ids=["garbage", "wrong-mime", "unsupported-mime", "bad-base64", "no-base64-marker"],
)
def test_undecodable_image_is_282505(simulator, image1):
    assert post_form(simulator, image1=image1).json()["error_code"] == 282505


def test_unescaped_plus_in_base64_corrupts_the_image(simulator):
    encoded = base64.b64encode(PHOTO).decode()
    assert "+" in encoded
    raw = f"key={KEY}&text=p&image1=data:image/jpeg;base64,{encoded}&image2=&image3=&size=&model="
    answer = httpx.post(
        simulator.url,
        content=raw.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=10,
    )
    assert answer.json()["error_code"] == 282505


@pytest.mark.loopback
def test_render_once_serves_one_rendering_per_image_and_size_and_records_arrivals():
    """The load-test mode: the second request with the same 图1 and size gets the same bytes."""
    import httpx

    with Simulator(render_once=True) as sim:
        links = []
        for prompt in ("first", "second"):
            answer = httpx.post(
                sim.url,
                data={"key": "k", "text": prompt, "image1": "https://example.com/a.png", "size": "512*512"},
                timeout=10,
            ).json()
            links.append(answer["result"]["images"][0]["image"])
        first, second = (httpx.get(link, timeout=10).content for link in links)
        stats = sim.stats()
    assert first == second and first.startswith(b"\x89PNG")
    assert links[0] != links[1]
    assert len(stats["arrivals"]) == 2


# --- a provider that ignores size, and where its mark goes ---------------------------------------


def result_size(answer: httpx.Response) -> tuple[int, int]:
    link = answer.json()["result"]["images"][0]["image"]
    return Image.open(io.BytesIO(httpx.get(link, timeout=10).content)).size


@pytest.mark.parametrize(
    ("mark", "size", "expected"),
    [
        ("[sim:anysize]", "640*512", (1024, 1024)),
        ("[sim:anysize]", "1024*1024", (896, 1152)),
        ("[sim:anysize=600x400]", "1024*768", (600, 400)),
        ("", "640*512", (640, 512)),
    ],
)
def test_anysize_answers_at_another_size_than_asked(simulator, mark, size, expected):
    assert result_size(post_form(simulator, text=prompt(f"p {mark}"), size=size)) == expected


def test_the_simulated_result_is_changed_everywhere_and_marked_in_the_middle():
    """Any part of it a region edit keeps shows the change: a colour cast all over, a panel in the
    middle, a band along the bottom."""
    source = Image.new("RGB", (800, 600), (30, 120, 200))
    result = Image.open(io.BytesIO(render_result(source, "p", "800*600"))).convert("RGB")

    def distance(pixel):
        return sum(abs(a - b) for a, b in zip(pixel, (30, 120, 200), strict=True))

    centre = [result.getpixel((x, y)) for x in (250, 400, 550) for y in (200, 300, 380)]
    corners = [result.getpixel(point) for point in ((10, 10), (790, 10), (10, 400), (790, 400))]
    assert all(distance(pixel) > 60 for pixel in centre)
    assert all(distance(pixel) > 30 and pixel[0] > 30 for pixel in corners)  # washed, still recognisable
    assert sum(result.getpixel((400, 590))) < sum(corners[0])  # the bottom band is still there
