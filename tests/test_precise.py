"""Region edits, size="original", HEIC inputs, metadata and the AIGC label through both clients.

Against the simulator over loopback (`[sim:anysize]` makes it ignore the asked size), and a
`MockTransport` where the test must see the exact bytes sent or return crafted result files. Each
test that takes `run_client` runs on the sync and on the async client.
"""

from __future__ import annotations

import base64
import io
import json
import re
import uuid

import httpx
import numpy as np
import pillow_heif
import pytest
from helpers.images import (
    XMP,
    decoded,
    ellipse_mask,
    encode,
    exif_with_gps,
    jpeg_errors,
    photo,
    scan_data,
    within,
    within_box,
)
from helpers.mock_provider import Provider, form_of, ok
from PIL import Image, ImageCms, PngImagePlugin

from juhe import EditResult, ImageEditClient, InvalidRequestError, read_provenance
from juhe._download import ResultSaver
from juhe._metadata import jpeg_segments, png_chunks
from juhe._precise import LocalJob
from juhe._provenance import build_provenance, sha256_hex, write_provenance
from juhe._region import FEATHER, FULL_MASK_WARNING, UNTOUCHED_DISTANCE, nearest_size

pytestmark = pytest.mark.usefixtures("clean_env")

KEY = "precise-test-key-123456"
ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
GPS_IFD = 0x8825
RESULT_URL = "https://results.test/r/1.png?Expires=1&Signature=s"


def prompt(text: str) -> str:
    """A prompt no other test sends, to find this test's requests at the shared simulator."""
    return f"{text} #{uuid.uuid4().hex[:12]}"


def sent(simulator, text: str) -> list[dict]:
    return [r for r in simulator.stats()["requests"] if r["text"] == text]


def options(simulator) -> dict:
    return {"api_key": KEY, "api_url": simulator.url}


def edit_and_download(directory, *args, **kwargs):
    """Steps: one edit, then its download into `directory`; returns (result, paths)."""

    def steps(client):
        result = yield client.edit(*args, **kwargs)
        paths = yield client.download(result, directory)
        return result, paths

    return steps


def edit_raises(*args, **kwargs):
    def steps(client):
        with pytest.raises(InvalidRequestError) as info:
            yield client.edit(*args, **kwargs)
        return info.value

    return steps


def sidecar_of(path) -> dict:
    return json.loads(path.with_suffix(".json").read_text("utf-8"))


def painted_and_far(mask: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    painted = np.asarray(mask) > 127
    return painted, ~within(painted, UNTOUCHED_DISTANCE)


# --- region edits -------------------------------------------------------------------------------


@pytest.mark.parametrize("anysize", [False, True], ids=["asked-size", "provider-ignores-size"])
def test_png_region_edit_changes_only_the_painted_area(run_client, simulator, tmp_path, anysize):
    original = photo(640, 480, seed=11)
    source = encode(original, "PNG", icc_profile=ICC)
    mask = ellipse_mask((640, 480), (250, 170, 390, 300))
    text = prompt("把圈出的部分换成花" + (" [sim:anysize]" if anysize else ""))

    result, [path] = run_client(
        edit_and_download(tmp_path, text, [source], mask=encode(mask, "PNG")), **options(simulator)
    )

    [request] = sent(simulator, text)
    assert request["size"] == result.size == result.region["size"]  # the planned size was asked
    saved = Image.open(path)
    assert path.suffix == ".png" and saved.size == (640, 480) and result.output_size == "640*480"
    assert saved.info["icc_profile"] == ICC
    out, before = decoded(path.read_bytes()), np.asarray(original).astype(int)
    painted, far = painted_and_far(mask)
    assert far.sum() > 0.5 * far.size
    assert np.array_equal(out[far], before[far])  # more than 16 px away: identical
    changed = np.any(out != before, axis=-1)
    assert not np.any(changed & ~within_box(painted, 2 * FEATHER))  # the fade stays within 8 px
    centre = (slice(225, 245), slice(310, 330))  # the SIMULATED panel sits in the crop's middle
    assert np.abs(out[centre] - before[centre]).mean() > 20

    sidecar = sidecar_of(path)
    [provider_file] = sidecar["provider_files"]
    assert provider_file == f"{path.stem}_provider.png"
    with Image.open(tmp_path / provider_file) as own:  # the provider's own image, as it answered
        asked = tuple(int(side) for side in result.size.split("*"))
        assert (own.size != asked) if anysize else (own.size == asked)
    region = sidecar["region"]
    assert region["feather"] == FEATHER and region["untouched_distance"] == UNTOUCHED_DISTANCE
    left, top, right, bottom = region["crop_box"]
    assert left <= 250 and top <= 170 and right >= 390 and bottom >= 300
    assert region["painted_box"] == list(mask.getbbox()) and region["full_mask"] is False
    assert sidecar["results"][0]["kind"] == "stitched" and sidecar["results"][0]["size"] == "640*480"
    assert sidecar["inputs"][0]["sent"].startswith("the crop (")
    assert read_provenance(path)["result"] == "stitched"
    assert read_provenance(tmp_path / provider_file)["result"] == "provider"


def test_jpeg_region_edit_keeps_tables_grid_and_nearly_every_far_pixel(run_client, simulator, tmp_path):
    source = encode(photo(800, 600, seed=12), "JPEG", quality=92, icc_profile=ICC)  # 4:2:0
    mask = ellipse_mask((800, 600), (300, 200, 460, 330))

    result, [path] = run_client(
        edit_and_download(tmp_path, prompt("换成一只猫 [sim:anysize]"), [source], mask=mask),
        **options(simulator),
    )

    saved, original = Image.open(path), Image.open(io.BytesIO(source))
    assert path.suffix == ".jpg" and saved.size == (800, 600)
    assert saved.quantization == original.quantization and saved.layer == original.layer
    assert saved.info["icc_profile"] == ICC
    painted, far = painted_and_far(mask)
    mean, worst, identical = jpeg_errors(decoded(path.read_bytes()), decoded(source), far)
    # what _region states for a JPEG 图1: its blocks re-quantised once with its own tables
    assert mean < 0.1 and identical > 0.9 and worst <= 24
    label = read_provenance(path)  # written into the JPEG without re-encoding it
    assert label["result"] == "stitched" and label["output_size"] == "800*600"
    assert label["inputs_sha256"] == [sha256_hex(source)]


def test_a_rotated_jpeg_region_edit_comes_back_upright_size(run_client, simulator, tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6
    source = encode(photo(640, 480, seed=13), "JPEG", quality=90, exif=exif.tobytes())
    mask = ellipse_mask((480, 640), (150, 250, 260, 380))  # upright: portrait

    result, [path] = run_client(
        edit_and_download(tmp_path, prompt("turn it gold"), [source], mask=mask), **options(simulator)
    )

    assert result.output_size == "480*640"
    assert decoded(path.read_bytes()).shape == (640, 480, 3)


def test_a_full_mask_runs_a_plain_edit_at_image1s_size(run_client, simulator, tmp_path):
    source = encode(photo(700, 500, seed=14), "PNG")
    result, [path] = run_client(
        edit_and_download(tmp_path, prompt("all of it"), [source], mask=Image.new("L", (700, 500), 255)),
        **options(simulator),
    )
    assert FULL_MASK_WARNING in result.warnings
    assert result.region["full_mask"] is True and "crop_box" not in result.region
    assert result.size == nearest_size(700, 500) and Image.open(path).size == (700, 500)
    assert sidecar_of(path)["results"][0]["kind"] == "resized"


def test_a_lenient_mask_is_scaled_and_says_so(run_client, simulator, tmp_path):
    source = encode(photo(800, 600, seed=15), "PNG")
    small = ellipse_mask((400, 300), (150, 100, 250, 200))  # a phone's canvas at half the size
    result, [path] = run_client(
        edit_and_download(tmp_path, prompt("phone"), [source], mask=small, mask_lenient=True),
        **options(simulator),
    )
    assert any("400x300" in w and "800x600" in w for w in result.warnings)
    assert Image.open(path).size == (800, 600)


@pytest.mark.slow  # full-size photos
def test_references_go_as_they_are_beside_the_crop(run_client, tmp_path):
    reference = encode(photo(300, 200, seed=16), "PNG")
    provider = Provider(ok("JH7"), httpx.Response(200, content=encode(photo(1024, 1024), "PNG")))
    source = encode(photo(900, 600, seed=17), "PNG")
    mask = ellipse_mask((900, 600), (100, 100, 200, 200))

    result, _ = run_client(
        edit_and_download(tmp_path, "把图2的花放进图1", [source, reference], mask=mask),
        api_key=KEY,
        transport=provider.transport,
    )

    form = form_of(provider.posts[0])
    sent_reference = base64.b64decode(form["image2"].split(",", 1)[1])
    assert sent_reference == reference  # 图2 unchanged
    crop = Image.open(io.BytesIO(base64.b64decode(form["image1"].split(",", 1)[1])))
    left, top, right, bottom = result.region["crop_box"]
    assert crop.size == (right - left, bottom - top) and form["size"] == result.region["size"]
    assert [i["sent"] for i in result.inputs][1] == "unchanged"


@pytest.mark.parametrize(
    ("images", "kwargs", "message"),
    [
        ("png", {"mask": Image.new("L", (64, 48), 0)}, "蒙版为空.* / the mask is empty"),
        (
            "png",
            {"mask": Image.new("L", (48, 64), 255)},
            "蒙版尺寸 48x64 与图1的 64x48 不一致 / the mask is",
        ),
        ("png", {"mask": "https://example.com/mask.png"}, "蒙版必须是.* / a mask must be .* not a link"),
        ("png", {"mask": 42}, "不支持的蒙版类型 / a mask must be a path"),
        ("png", {"mask": Image.new("L", (64, 48), 255), "size": "1024*1024"}, "/ a region edit always"),
        ("link", {"mask": Image.new("L", (64, 48), 255)}, "需要图1的文件或 data URI.* / region edits and"),
        ("link", {"size": "original"}, "/ region edits and size='original' need 图1 as a file"),
        ("png", {"mask": "no-such-mask.png"}, "找不到图片文件 .* / no image file"),
    ],
    ids=[
        "empty",
        "wrong-size",
        "mask-link",
        "mask-type",
        "size-with-mask",
        "link-mask",
        "link-original",
        "gone",
    ],
)
def test_bad_region_requests_are_clear_errors_and_send_nothing(run_client, images, kwargs, message):
    provider = Provider(ok())
    image = "https://example.com/cat.jpg" if images == "link" else encode(photo(64, 48), "PNG")
    error = run_client(edit_raises("p", [image], **kwargs), api_key=KEY, transport=provider.transport)
    assert error.kind == "invalid" and re.search(message, str(error)), str(error)
    assert provider.requests == []


# --- size="original" ----------------------------------------------------------------------------


@pytest.mark.parametrize("anysize", [False, True], ids=["asked-size", "provider-ignores-size"])
@pytest.mark.parametrize(("fmt", "suffix"), [("JPEG", ".jpg"), ("PNG", ".png")])
def test_original_size_comes_back_at_image1s_exact_size(
    run_client, simulator, tmp_path, anysize, fmt, suffix
):
    source = encode(photo(1000, 750, seed=18), fmt)
    text = prompt("original" + (" [sim:anysize]" if anysize else ""))

    result, [path] = run_client(
        edit_and_download(tmp_path, text, [source], size="original"), **options(simulator)
    )

    [request] = sent(simulator, text)
    assert request["size"] == result.size == nearest_size(1000, 750)
    assert result.output_size == "1000*750" and result.region is None
    assert path.suffix == suffix and Image.open(path).size == (1000, 750)  # a photo stays a JPEG
    provider_file = tmp_path / sidecar_of(path)["provider_files"][0]
    asked = tuple(int(side) for side in result.size.split("*"))
    assert (Image.open(provider_file).size != asked) if anysize else (Image.open(provider_file).size == asked)
    assert read_provenance(path)["result"] == "resized"


def test_original_size_of_an_extreme_aspect_is_stretched_back(run_client, simulator, tmp_path):
    source = encode(photo(1200, 200, seed=19), "PNG")  # 6:1, beyond the provider's 4:1
    result, [path] = run_client(
        edit_and_download(tmp_path, prompt("banner"), [source], size="ORIGINAL"), **options(simulator)
    )
    assert result.size == "2048*512" and Image.open(path).size == (1200, 200)


# --- HEIC ---------------------------------------------------------------------------------------


def heic(image: Image.Image, orientation: int = 6) -> bytes:
    """An iPhone-like HEIC: stored sideways with EXIF orientation 6, with GPS."""
    out = io.BytesIO()
    exif = exif_with_gps(orientation).tobytes()
    pillow_heif.encode(image.mode, image.size, image.tobytes(), out, quality=90, exif=exif)
    return out.getvalue()


@pytest.mark.slow  # a few tenths of a second of image work: out of the fast lane
def test_heic_is_sent_upright_as_jpeg_without_its_metadata(run_client, tmp_path):
    stored = photo(320, 240, seed=20)  # stored landscape; upright it is 240x320
    provider = Provider(ok("JH8"), httpx.Response(200, content=encode(photo(512, 640), "PNG")))
    path = tmp_path / "IMG_0001.HEIC"
    path.write_bytes(heic(stored))

    result, _ = run_client(
        edit_and_download(tmp_path / "out", "oil painting", [path]), api_key=KEY, transport=provider.transport
    )

    value = form_of(provider.posts[0])["image1"]
    assert value.startswith("data:image/jpeg;base64,")
    sent_jpeg = base64.b64decode(value.split(",", 1)[1])
    image = Image.open(io.BytesIO(sent_jpeg))
    assert image.size == (240, 320) and not image.getexif()
    assert b"PhoneMaker" not in sent_jpeg
    [described] = result.inputs
    assert described["format"] == "HEIF" and described["sha256"] == sha256_hex(path.read_bytes())
    assert described["sent"].startswith("converted from HEIC")


def test_heic_region_and_original_edits_come_back_at_its_upright_size(run_client, simulator, tmp_path):
    data = heic(photo(400, 300, seed=21))
    mask = ellipse_mask((300, 400), (100, 150, 200, 250))
    region, [stitched] = run_client(
        edit_and_download(tmp_path, prompt("heic region"), [data], mask=mask), **options(simulator)
    )
    original, [resized] = run_client(
        edit_and_download(tmp_path, prompt("heic original"), [data], size="original"), **options(simulator)
    )
    assert Image.open(stitched).size == Image.open(resized).size == (300, 400)
    assert stitched.suffix == ".png" and resized.suffix == ".jpg"  # lossless stitch; a photo resized
    assert region.output_size == original.output_size == "300*400"


# --- metadata -----------------------------------------------------------------------------------


def png_with_metadata(image: Image.Image) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "at home")
    info.add_itxt("XML:com.adobe.xmp", XMP.decode())
    return encode(image, "PNG", pnginfo=info, exif=exif_with_gps().tobytes(), icc_profile=ICC)


@pytest.mark.slow  # a few tenths of a second of image work: out of the fast lane
def test_gps_never_reaches_the_provider_and_the_pixels_stay_byte_identical(run_client, tmp_path):
    jpeg = encode(photo(800, 600, seed=22), "JPEG", quality=90, exif=exif_with_gps().tobytes(), xmp=XMP,
                  comment=b"at home", icc_profile=ICC)  # fmt: skip
    png = png_with_metadata(photo(300, 200, seed=23))
    provider = Provider(ok("JH9"), httpx.Response(200, content=encode(photo(512, 512), "PNG")))

    result, _ = run_client(
        edit_and_download(tmp_path, "p", [jpeg, png]), api_key=KEY, transport=provider.transport
    )

    form = form_of(provider.posts[0])
    sent_jpeg = base64.b64decode(form["image1"].split(",", 1)[1])
    sent_png = base64.b64decode(form["image2"].split(",", 1)[1])
    for secret in (b"PhoneMaker", b"Exif", b"creator", b"at home"):
        assert secret not in sent_jpeg and secret not in sent_png
    assert scan_data(sent_jpeg) == scan_data(jpeg)  # tables, frame and scan data byte for byte
    assert Image.open(io.BytesIO(sent_jpeg)).info["icc_profile"] == ICC
    idat = [png[s:e] for k, s, e in png_chunks(png) if k == b"IDAT"]
    assert [sent_png[s:e] for k, s, e in png_chunks(sent_png) if k == b"IDAT"] == idat
    assert {k for k, _, _ in png_chunks(sent_png)} >= {b"iCCP"}
    first, second = result.inputs
    assert first["sent"] == second["sent"] == "its pixels unchanged, metadata stripped"
    assert any(r.startswith("EXIF, with GPS") for r in first["metadata_removed"])
    assert any(r.startswith("EXIF, with GPS") for r in second["metadata_removed"])
    assert first["sha256"] == sha256_hex(jpeg) and second["sha256"] == sha256_hex(png)


@pytest.mark.parametrize("fmt", ["TIFF", "WEBP"])
def test_other_inputs_with_gps_are_stripped_or_re_encoded(run_client, tmp_path, fmt):
    data = encode(photo(300, 200, seed=24), fmt, exif=exif_with_gps().tobytes())
    assert b"PhoneMaker" in data
    provider = Provider(ok("JH10"), httpx.Response(200, content=encode(photo(512, 512), "PNG")))
    result, _ = run_client(
        edit_and_download(tmp_path, "p", [data]), api_key=KEY, transport=provider.transport
    )
    sent_bytes = base64.b64decode(form_of(provider.posts[0])["image1"].split(",", 1)[1])
    assert b"PhoneMaker" not in sent_bytes and not Image.open(io.BytesIO(sent_bytes)).getexif()
    assert result.inputs[0]["metadata_removed"]


def test_results_lose_the_providers_metadata_and_keep_its_label(run_client, tmp_path):
    upstream = build_provenance(
        provider="x", order_id="UP1", model="m", prompt="p", size="", inputs_sha256=[], producer="juhe.cn"
    )
    png = write_provenance(png_with_metadata(photo(512, 512, seed=25)), upstream)
    jpeg = encode(photo(512, 512, seed=26), "JPEG", exif=exif_with_gps().tobytes(), xmp=XMP)
    links = ("https://results.test/1.png", "https://results.test/2.jpg")
    provider = Provider(
        ok("JH11", links), httpx.Response(200, content=png), httpx.Response(200, content=jpeg)
    )

    result, paths = run_client(
        edit_and_download(tmp_path, "p", [encode(photo(64, 64), "PNG")]),
        api_key=KEY,
        transport=provider.transport,
    )

    saved_png, saved_jpeg = (p.read_bytes() for p in paths)
    for saved in (saved_png, saved_jpeg):
        assert b"PhoneMaker" not in saved and b"creator" not in saved and b"at home" not in saved
    assert b"eXIf" not in {k for k, _, _ in png_chunks(saved_png)}
    assert [saved_png[s:e] for k, s, e in png_chunks(saved_png) if k == b"IDAT"] == [
        png[s:e] for k, s, e in png_chunks(png) if k == b"IDAT"
    ]
    assert scan_data(saved_jpeg) == scan_data(jpeg)
    assert not Image.open(io.BytesIO(saved_jpeg)).getexif()
    label = read_provenance(saved_png)
    # the provider's own label is kept as the producer's, and we are the propagator
    assert label["AIGC"]["ContentProducer"] == "juhe.cn" and label["AIGC"]["ProduceID"] == "UP1"
    assert label["AIGC"]["PropagateID"] == "JH11-1" and label["order_id"] == "JH11"
    assert read_provenance(saved_jpeg)["AIGC"]["ProduceID"] == "JH11-2"
    sidecar = sidecar_of(paths[0])
    assert any(r.startswith("EXIF, with GPS") for r in sidecar["results"][0]["metadata_removed"])
    assert all(r["labelled"] for r in sidecar["results"]) and sidecar["provider_files"] == []


# --- the label ----------------------------------------------------------------------------------


def test_a_plain_edit_is_labelled_with_its_provenance(run_client, simulator, tmp_path):
    source = encode(photo(640, 480, seed=27), "JPEG")
    reference = tmp_path / "ref.png"
    reference.write_bytes(encode(photo(200, 200, seed=28), "PNG"))
    text = prompt('把图2放进图1 <&>\n"quoted"')

    result, [path] = run_client(
        edit_and_download(tmp_path / "out", text, [source, reference], "640*512", "auto"),
        **options(simulator),
    )

    label = read_provenance(path)
    assert label["AIGC"]["Label"] == "1" and label["AIGC"]["ProduceID"] == result.order_id
    assert (label["order_id"], label["prompt"], label["size"], label["model"]) == (
        result.order_id, text, "640*512", "auto"
    )  # fmt: skip
    assert label["inputs_sha256"] == [sha256_hex(source), sha256_hex(reference.read_bytes())]
    assert label["time"] == result.completed_at and label["result"] == "provider"
    assert label["endpoint"] == simulator.url and KEY not in path.read_bytes().decode("latin-1")
    assert sidecar_of(path)["results"][0]["labelled"] is True


def test_the_job_stays_out_of_the_json_and_the_repr(run_client, simulator, tmp_path):
    source = encode(photo(640, 480, seed=29), "PNG")
    result, [path] = run_client(
        edit_and_download(tmp_path, prompt("json"), [source], mask=ellipse_mask((640, 480), (9, 9, 99, 99))),
        **options(simulator),
    )
    assert "_job" not in result.to_dict() and "_job" not in sidecar_of(path)
    assert len(repr(result)) < 5000 and json.dumps(result.to_dict())


@pytest.mark.slow  # full-size photos
def test_a_result_that_cannot_be_stitched_is_still_saved(tmp_path):
    """The caller painted more on its mask (a PIL image) before the download: the plan no longer
    fits, so the provider's image is saved as the result, with a warning saying why."""
    provider = Provider(ok("JH12"), httpx.Response(200, content=encode(photo(1024, 1024), "PNG")))
    mask = ellipse_mask((640, 480), (200, 200, 300, 300))
    with ImageEditClient(api_key=KEY, transport=provider.transport) as client:
        result = client.edit("p", [photo(640, 480)], mask=mask)
        mask.paste(255, (0, 0, 40, 40))
        [path] = client.download(result, tmp_path)
    assert Image.open(path).size == (1024, 1024)
    assert any("could not be stitched" in w and "changed after the edit" in w for w in result.warnings)
    assert read_provenance(path)["result"] == "provider"
    assert sidecar_of(path)["provider_files"] == []


def test_a_taken_provider_name_moves_the_pair_on(tmp_path):
    (tmp_path / "JH13_provider.png").write_bytes(b"an earlier file")
    result = EditResult("JH13", ["https://r.test/1.png"])
    saver = ResultSaver(result, tmp_path)
    result._job = LocalJob(target=(600, 400))
    path = saver.save(1, encode(photo(512, 512), "PNG"), "PNG")
    assert path.name == "JH13-2.png" and (tmp_path / "JH13-2_provider.png").exists()
    assert not (tmp_path / "JH13.png").exists()
    assert (tmp_path / "JH13_provider.png").read_bytes() == b"an earlier file"
    with Image.open(path) as saved:
        assert saved.size == (600, 400)


def test_jpeg_segments_of_a_labelled_result_are_in_order(run_client, simulator, tmp_path):
    source = encode(photo(640, 480, seed=31), "JPEG", quality=92)
    _, [path] = run_client(
        edit_and_download(tmp_path, prompt("order"), [source], size="original"), **options(simulator)
    )
    markers = [m for m, _, _ in jpeg_segments(path.read_bytes())]
    assert markers[0] == 0xD8 and markers[-1] == 0xD9 and 0xE1 in markers[: markers.index(0xDA)]


def test_a_png_with_an_exif_orientation_comes_back_upright_size(run_client, simulator, tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6
    source = encode(photo(600, 400, seed=32), "PNG", exif=exif.tobytes())  # stored 600x400, upright 400x600
    result, [path] = run_client(
        edit_and_download(tmp_path, prompt("turned"), [source], size="original"), **options(simulator)
    )
    assert result.output_size == "400*600" and result.size == nearest_size(400, 600)
    assert Image.open(path).size == (400, 600)


@pytest.mark.parametrize("produce_id", [KEY, "x" * 5000], ids=["echoes-the-key", "oversized"])
def test_a_providers_label_is_copied_only_when_it_is_clean(run_client, tmp_path, produce_id):
    upstream = build_provenance(
        provider="x", order_id="UP2", model="m", prompt="p", size="", inputs_sha256=[], producer="juhe.cn"
    )
    upstream["AIGC"]["ProduceID"] = produce_id  # what a hostile provider's own file might hold
    answer = write_provenance(encode(photo(512, 512, seed=33), "PNG"), upstream)
    provider = Provider(ok("JH14"), httpx.Response(200, content=answer))

    _, [path] = run_client(edit_and_download(tmp_path, "p", [encode(photo(64, 64), "PNG")]), api_key=KEY,
                           transport=provider.transport)  # fmt: skip

    label = read_provenance(path)
    assert label["AIGC"]["ContentProducer"] == "juhe-image-edit" and label["AIGC"]["ProduceID"] == "JH14"
    assert KEY.encode() not in path.read_bytes()
