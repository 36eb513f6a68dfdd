"""The GB 45438-2025 implicit label: written into generated PNG and JPEG files without touching
their image data, in the standard's form, and read back exactly."""

from __future__ import annotations

import hashlib
import io
import json
import xml.etree.ElementTree as ElementTree
import zlib

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from juhe._metadata import jpeg_segments, png_chunk, png_chunks
from juhe._provenance import (
    AIGC_FIELDS,
    AIGC_NAMESPACE,
    DEFAULT_PRODUCER,
    build_provenance,
    read_provenance,
    sha256_hex,
    write_provenance,
)

HOSTILE_PROMPT = (
    '把图1的"猫"换成 <b>狗</b> & 加上 ]]> 和 <?xpacket end="w"?>\n第二行\t制表符 \\ 反斜杠 '
    'emoji 🐱‍👤🏳️‍🌈 </TC260:AIGC> {"Label":"0"}'
)


def record(**changes) -> dict:
    fields = {
        "provider": "juhe.cn image_edit (1985)",
        "order_id": "JH825251202145803Ae61U",
        "model": "auto",
        "prompt": HOSTILE_PROMPT,
        "size": "1024*768",
        "inputs_sha256": [sha256_hex(b"image one"), None],
        "time": "2026-01-02T03:04:05+00:00",
    }
    return build_provenance(**{**fields, **changes})


def image_bytes(fmt: str, **options) -> bytes:
    rng = np.random.default_rng(1)
    out = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)).save(out, fmt, **options)
    return out.getvalue()


def image_data(data: bytes) -> list[bytes]:
    """What makes the pixels: IDAT chunks, or JPEG tables, frame and scan data."""
    if data.startswith(b"\x89PNG"):
        return [data[s:e] for k, s, e in png_chunks(data) if k in (b"IHDR", b"IDAT", b"IEND")]
    return [data[s:e] for m, s, e in jpeg_segments(data) if m in (0xC0, 0xC4, 0xDB, 0xDA, 0)]


def test_the_record_has_the_standards_seven_fields_and_ours():
    made = record()
    assert tuple(made["AIGC"]) == AIGC_FIELDS
    assert made["AIGC"]["Label"] == "1"
    assert made["AIGC"]["ContentProducer"] == DEFAULT_PRODUCER
    assert made["AIGC"]["ProduceID"] == "JH825251202145803Ae61U"
    assert made["AIGC"]["ContentPropagator"] == made["AIGC"]["ReservedCode1"] == ""
    assert made["inputs_sha256"] == [hashlib.sha256(b"image one").hexdigest(), None]
    assert made["prompt"] == HOSTILE_PROMPT


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_label_round_trips_exactly_and_image_data_is_untouched(fmt, tmp_path):
    source = image_bytes(fmt)
    made = record()

    labelled = write_provenance(source, made)

    assert read_provenance(labelled) == made
    path = tmp_path / f"result.{fmt.lower()}"
    path.write_bytes(labelled)
    assert read_provenance(path) == made and read_provenance(str(path)) == made
    assert image_data(labelled) == image_data(source)
    assert np.array_equal(
        np.asarray(Image.open(io.BytesIO(labelled))), np.asarray(Image.open(io.BytesIO(source)))
    )


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_the_xmp_is_the_standards_form_readable_by_pillow(fmt):
    labelled = write_provenance(image_bytes(fmt), record())

    xmp = Image.open(io.BytesIO(labelled)).info.get("xmp") or Image.open(io.BytesIO(labelled)).info.get(
        "XML:com.adobe.xmp"
    )
    root = ElementTree.fromstring(xmp)
    (element,) = root.iter(f"{{{AIGC_NAMESPACE}}}AIGC")
    label = json.loads(element.text)
    assert list(label) == list(AIGC_FIELDS) and all(isinstance(v, str) for v in label.values())
    assert label["Label"] == "1" and label["ProduceID"] == "JH825251202145803Ae61U"
    assert "猫" not in element.text  # our own fields stay out of the standard's entry


def test_png_also_carries_the_aigc_text_chunk():
    labelled = write_provenance(image_bytes("PNG"), record())

    text = Image.open(io.BytesIO(labelled)).text["AIGC"]
    assert json.loads(text) == {"AIGC": record()["AIGC"]}
    kinds = [kind for kind, _, _ in png_chunks(labelled)]
    assert kinds[:3] == [b"IHDR", b"tEXt", b"iTXt"]  # before the image data


def test_writing_twice_replaces_the_label():
    first = write_provenance(image_bytes("PNG"), record(order_id="FIRST"))
    second = write_provenance(first, record(order_id="SECOND"))
    assert read_provenance(second)["order_id"] == "SECOND"
    assert second.count(b"XML:com.adobe.xmp") == 1 and second.count(b"AIGC\x00") == 1

    jpeg = write_provenance(write_provenance(image_bytes("JPEG"), record(order_id="A")), record(order_id="B"))
    assert read_provenance(jpeg)["order_id"] == "B"
    assert jpeg.count(b"http://ns.adobe.com/xap/1.0/\x00") == 1


def test_jpeg_label_goes_after_jfif_and_exif():
    exif = Image.Exif()
    exif[0x0112] = 1
    labelled = write_provenance(image_bytes("JPEG", exif=exif.tobytes()), record())
    markers = [(m, labelled[s + 4 : s + 8]) for m, s, _ in jpeg_segments(labelled)[1:4]]
    assert markers == [(0xE0, b"JFIF"), (0xE1, b"Exif"), (0xE1, b"http")]


def test_a_providers_own_label_is_kept_and_we_become_the_propagator():
    theirs = {"Label": "1", "ContentProducer": "001191101085500000000X00001", "ProduceID": "dash-42"}
    theirs |= {"ReservedCode1": "c2lnbmVk", "ContentPropagator": "", "PropagateID": "", "ReservedCode2": ""}
    provider_png = write_provenance(image_bytes("PNG"), {"AIGC": theirs})
    upstream = read_provenance(provider_png)
    assert upstream == {"AIGC": theirs}

    ours = record(upstream=upstream)

    assert ours["AIGC"]["ContentProducer"] == theirs["ContentProducer"]
    assert ours["AIGC"]["ProduceID"] == "dash-42" and ours["AIGC"]["ReservedCode1"] == "c2lnbmVk"
    assert ours["AIGC"]["ContentPropagator"] == DEFAULT_PRODUCER
    assert ours["AIGC"]["PropagateID"] == "JH825251202145803Ae61U"


def test_labels_written_by_others_are_read():
    label = {"Label": "1", "ContentProducer": "doubao", "ProduceID": "x1"}
    escaped = json.dumps(label).replace('"', "&quot;")
    xmp = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        f'<rdf:Description rdf:about="" xmlns:TC260="{AIGC_NAMESPACE}" TC260:AIGC="{escaped}"/>'
        "</rdf:RDF></x:xmpmeta>"
    )
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", xmp, zip=True)  # an attribute, in a compressed chunk
    assert read_provenance(image_bytes("PNG", pnginfo=info)) == {"AIGC": label}

    text_only = PngImagePlugin.PngInfo()
    text_only.add_text("AIGC", json.dumps({"AIGC": label}))
    assert read_provenance(image_bytes("PNG", pnginfo=text_only)) == {"AIGC": label}


def test_no_label_and_hostile_xmp_read_as_none():
    assert read_provenance(image_bytes("PNG")) is None
    assert read_provenance(image_bytes("JPEG")) is None
    assert read_provenance(b"not an image") is None
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>'
        f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><TC260:AIGC xmlns:TC260="{AIGC_NAMESPACE}">&b;</TC260:AIGC>'
        "</x:xmpmeta>"
    )
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", bomb)
    assert read_provenance(image_bytes("PNG", pnginfo=info)) is None
    huge = image_bytes("PNG")
    packet = b'<x:xmpmeta xmlns:x="adobe:ns:meta/">' + b" " * (2 * 1024 * 1024) + b"</x:xmpmeta>"
    chunk = png_chunk(b"iTXt", b"XML:com.adobe.xmp\x00\x01\x00\x00\x00" + zlib.compress(packet))
    assert read_provenance(huge[:33] + chunk + huge[33:]) is None
    not_json = write_provenance(image_bytes("PNG"), record()).replace(b'"Label":"1"', b'"Label":"1"}{')
    assert read_provenance(not_json) is None


def test_fields_the_standard_cannot_hold_are_refused_or_cleaned():
    with pytest.raises(ValueError, match="ContentProducer"):
        record(producer="my company")
    assert record(order_id='JH"1 2<3>')["AIGC"]["ProduceID"] == "JH12<3>"  # space and quote dropped
    assert record(order_id="订单")["AIGC"]["ProduceID"] == "unknown"
    assert record(produce_id="JH1-2")["AIGC"]["ProduceID"] == "JH1-2"


def test_other_formats_and_broken_files_are_refused():
    with pytest.raises(ValueError, match="PNG"):
        write_provenance(image_bytes("WEBP"), record())
    with pytest.raises(ValueError, match="malformed"):
        write_provenance(image_bytes("PNG")[:-20], record())


def test_characters_xml_cannot_hold_still_round_trip():
    made = record(prompt="nul\x00 bell\x07 lone\ud800 surrogate \ufffe end")
    for fmt in ("PNG", "JPEG"):
        assert read_provenance(write_provenance(image_bytes(fmt), made)) == made
