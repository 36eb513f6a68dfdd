"""The implicit AI-content label of GB 45438-2025 (《人工智能生成合成内容标识办法》, in force since
2025-09-01), written into every saved result and read back.

The standard's metadata is one `AIGC` entry of seven string fields, stored in XMP as the property
`TC260:AIGC` (namespace http://www.tc260.org.cn/ns/AIGC/1.0/) whose value is their JSON:

    Label              "1": the content is AI-generated or synthesised
    ContentProducer    name or code of the service that generated it
    ProduceID          the producer's unique id of this file
    ReservedCode1      the producer's integrity code (left empty: we sign nothing)
    ContentPropagator  name or code of a service that spreads it (empty: we do not)
    PropagateID        the propagator's id of this file
    ReservedCode2      the propagator's integrity code

Our own fields (provider, order id, model, prompt, size, time, SHA-256 of each input) sit beside
it as the JSON value of `juhe:Provenance` in our own namespace, so readers of the standard see
exactly its seven fields.

- PNG: an iTXt `XML:com.adobe.xmp` chunk holding the XMP packet, and a tEXt `AIGC` chunk holding
  `{"AIGC": {...}}` for readers that look for the text chunk; both right after IHDR.
- JPEG: an XMP APP1 segment after the JFIF/EXIF segments. Nothing is re-encoded: the image data
  of both formats stays byte-identical.

When the provider's own file already carries a label, `build_provenance(upstream=...)` keeps its
producer fields (deleting a label is what the rules forbid) and records us as the propagator.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import xml.etree.ElementTree as ElementTree
import zlib
from collections.abc import Sequence
from pathlib import Path
from xml.sax.saxutils import escape

from ._metadata import (
    EXIF_HEADER,
    XMP_EXTENSION_HEADER,
    XMP_HEADER,
    jpeg_segment,
    jpeg_segments,
    png_chunk,
    png_chunks,
)
from ._models import now_iso

AIGC_NAMESPACE = "http://www.tc260.org.cn/ns/AIGC/1.0/"
JUHE_NAMESPACE = "urn:x-juhe-image-edit:provenance:1.0/"
AIGC_FIELDS = (
    "Label",
    "ContentProducer",
    "ProduceID",
    "ReservedCode1",
    "ContentPropagator",
    "PropagateID",
    "ReservedCode2",
)
AI_GENERATED = "1"
# Set it to the service's registered code (TC260-PG-20258A) where there is one.
DEFAULT_PRODUCER = "juhe-image-edit"
XMP_KEYWORD = b"XML:com.adobe.xmp"
# An XMP packet larger than this is not parsed (ours is a few kB; a JPEG segment holds 64 kB).
MAX_XMP_BYTES = 1024 * 1024
# The standard's fields hold printable ASCII without space, quote or backslash.
_FIELD_VALUE = re.compile(r"^[!#-\[\]-~]*$")
MAX_ID_CHARS = 128
# Characters XML 1.0 cannot carry; JSON writes them as \uXXXX escapes inside the strings
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_DTD = re.compile(rb"<!(DOCTYPE|ENTITY)", re.IGNORECASE)


def sha256_hex(data: bytes) -> str:
    """The SHA-256 of `data` as 64 hex digits, as recorded for each input."""
    return hashlib.sha256(data).hexdigest()


def _checked(name: str, value: str) -> str:
    if not isinstance(value, str) or not _FIELD_VALUE.match(value):
        raise ValueError(
            f"标识字段 {name} 只能包含可打印 ASCII 字符 / the label field {name} takes printable ASCII "
            f"without spaces, quotes or backslashes, got {value!r}"
        )
    return value


def build_provenance(
    *,
    provider: str,
    order_id: str,
    model: str,
    prompt: str,
    size: str,
    inputs_sha256: Sequence[str | None],
    produce_id: str | None = None,
    producer: str = DEFAULT_PRODUCER,
    time: str | None = None,
    upstream: dict | None = None,
) -> dict:
    """The record to write: the standard's `AIGC` entry and our own fields.

    `produce_id` defaults to the order id (give `ORDER-2` for a second image of one order); the
    characters the standard does not allow are dropped from it, since it comes from the provider.
    `upstream` is what `read_provenance` found in the provider's file: its producer fields are
    kept and we become the propagator. Raises ValueError for a `producer` the standard cannot hold.
    """
    our_producer = _checked("ContentProducer", producer)
    our_id = "".join(c for c in (produce_id or order_id) if _FIELD_VALUE.match(c))[:MAX_ID_CHARS] or "unknown"
    label = dict.fromkeys(AIGC_FIELDS, "")
    label["Label"] = AI_GENERATED
    previous = (upstream or {}).get("AIGC") or {}
    if previous.get("ContentProducer"):
        for name in ("ContentProducer", "ProduceID", "ReservedCode1"):
            label[name] = str(previous.get(name, ""))
        label["ContentPropagator"], label["PropagateID"] = our_producer, our_id
    else:
        label["ContentProducer"], label["ProduceID"] = our_producer, our_id
    return {
        "AIGC": label,
        "provider": provider,
        "order_id": order_id,
        "model": model,
        "prompt": prompt,
        "size": size,
        "time": time or now_iso(),
        "inputs_sha256": list(inputs_sha256),
    }


def _json_for_xml(value: object) -> str:
    """JSON whose every character XML 1.0 can hold, escaped for element content."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    text = _NOT_XML.sub(lambda m: f"\\u{ord(m.group()):04x}", text)  # only ever inside JSON strings
    return escape(text)


def xmp_packet(record: dict) -> bytes:
    """The XMP packet holding `record`: `TC260:AIGC` and `juhe:Provenance`, each a JSON value."""
    ours = {key: value for key, value in record.items() if key != "AIGC"}
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        f'<rdf:Description rdf:about="" xmlns:TC260="{AIGC_NAMESPACE}" xmlns:juhe="{JUHE_NAMESPACE}">\n'
        f"<TC260:AIGC>{_json_for_xml(record['AIGC'])}</TC260:AIGC>\n"
        f"<juhe:Provenance>{_json_for_xml(ours)}</juhe:Provenance>\n"
        "</rdf:Description>\n"
        "</rdf:RDF>\n"
        "</x:xmpmeta>\n"
        '<?xpacket end="w"?>'
    ).encode()


def _itxt_keyword(payload: bytes) -> bytes:
    return payload.split(b"\x00", 1)[0]


def _write_png(data: bytes, record: dict) -> bytes:
    chunks = png_chunks(data)
    label = json.dumps({"AIGC": record["AIGC"]}, ensure_ascii=True, separators=(",", ":"))
    ours = [
        png_chunk(b"tEXt", b"AIGC\x00" + label.encode("latin-1")),
        png_chunk(b"iTXt", XMP_KEYWORD + b"\x00\x00\x00\x00\x00" + xmp_packet(record)),
    ]
    out = [data[: chunks[0][2]], *ours]  # the signature and IHDR, then the label
    for kind, start, end in chunks[1:]:
        old = kind in (b"tEXt", b"zTXt", b"iTXt") and _itxt_keyword(data[start + 8 : end - 4]) in (
            XMP_KEYWORD,
            b"AIGC",
        )
        if not old:
            out.append(data[start:end])
    return b"".join(out)


def _write_jpeg(data: bytes, record: dict) -> bytes:
    segments = jpeg_segments(data)
    segment = jpeg_segment(0xE1, XMP_HEADER + xmp_packet(record))
    out = [data[:2]]
    placed = False
    for marker, start, end in segments[1:]:
        payload = data[start + 4 : end]
        if marker == 0xE1 and payload.startswith((XMP_HEADER, XMP_EXTENSION_HEADER)):
            continue  # the old packet is replaced, never left to contradict ours
        heading = marker == 0xE0 or (marker == 0xE1 and payload.startswith(EXIF_HEADER))
        if not placed and not heading:
            out.append(segment)
            placed = True
        out.append(data[start:end])
    out.append(data[segments[-1][2] :])
    return b"".join(out)


def write_provenance(data: bytes, record: dict) -> bytes:
    """Return a PNG or JPEG with `record` embedded, its image data unchanged.

    An earlier XMP packet or AIGC text is replaced. Raises ValueError for another format or a
    malformed file (the caller then saves the result without the label and says so).
    """
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return _write_png(data, record)
    if data.startswith(b"\xff\xd8"):
        return _write_jpeg(data, record)
    raise ValueError("只能在 PNG 和 JPEG 中写入标识 / the label is written into PNG and JPEG files only")


def _itxt_text(payload: bytes) -> bytes | None:
    """The text of an iTXt chunk, inflated to at most MAX_XMP_BYTES + 1 bytes; None if broken."""
    keyword, _, rest = payload.partition(b"\x00")
    compressed, rest = rest[:1] == b"\x01", rest[2:]
    text = rest.split(b"\x00", 2)[-1]  # after the language tag and the translated keyword
    if not compressed:
        return text
    try:
        return zlib.decompressobj().decompress(text, MAX_XMP_BYTES + 1)
    except zlib.error:
        return None


def _label_sources(data: bytes) -> list[tuple[str, bytes]]:
    """("xmp", packet) and ("text", JSON) found in a PNG or JPEG, the XMP first."""
    packets, texts = [], []
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        for kind, start, end in png_chunks(data):
            payload = data[start + 8 : end - 4]
            keyword = _itxt_keyword(payload)
            if kind == b"iTXt" and keyword == XMP_KEYWORD and (text := _itxt_text(payload)) is not None:
                packets.append(("xmp", text))
            elif kind == b"tEXt" and keyword == b"AIGC":
                texts.append(("text", payload[len(keyword) + 1 :]))
    elif data.startswith(b"\xff\xd8"):
        for marker, start, end in jpeg_segments(data):
            if marker == 0xDA:
                break
            if marker == 0xE1 and data[start + 4 : end].startswith(XMP_HEADER):
                packets.append(("xmp", data[start + 4 + len(XMP_HEADER) : end]))
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        packets.extend(("xmp", packet) for packet in _webp_xmp(data))
    return packets + texts


def _webp_xmp(data: bytes) -> list[bytes]:
    """The `XMP ` chunks of a WebP (a labelled WebP is written by Pillow's encoder with `xmp=`)."""
    found, pos, end = [], 12, min(len(data), 8 + int.from_bytes(data[4:8], "little"))
    while pos + 8 <= end:
        kind, length = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        if pos + 8 + length > end:
            raise ValueError("a WebP chunk runs past the end")
        if kind == b"XMP ":
            found.append(data[pos + 8 : pos + 8 + length])
        pos += 8 + length + (length & 1)
    return found


def _properties(packet: bytes) -> dict[str, str]:
    """Values of TC260:AIGC and juhe:Provenance in an XMP packet, as elements or attributes."""
    if len(packet) > MAX_XMP_BYTES or _DTD.search(packet):
        return {}
    try:
        root = ElementTree.fromstring(packet)
    except ElementTree.ParseError:
        return {}
    wanted = {f"{{{AIGC_NAMESPACE}}}AIGC": "AIGC", f"{{{JUHE_NAMESPACE}}}Provenance": "juhe"}
    values = {}
    for element in root.iter():
        if element.tag in wanted and element.text:
            values.setdefault(wanted[element.tag], element.text)
        for name, value in element.attrib.items():
            if name in wanted:
                values.setdefault(wanted[name], value)
    return values


def _label(text: str) -> dict | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if isinstance(value, dict) and isinstance(value.get("AIGC"), dict):
        value = value["AIGC"]  # the wrapped form of the PNG text chunk
    if not isinstance(value, dict) or "Label" not in value:
        return None
    return {name: value[name] for name in AIGC_FIELDS if isinstance(value.get(name), str)}


def read_provenance(source: bytes | str | os.PathLike) -> dict | None:
    """The label of a PNG, JPEG or WebP file or its bytes: `{"AIGC": {...}, **our fields}`, or None.

    A file labelled by someone else gives only its `AIGC` entry. Unsafe or oversized XMP (a DTD,
    entities, over MAX_XMP_BYTES) is ignored, never expanded.
    """
    data = bytes(source) if isinstance(source, (bytes, bytearray, memoryview)) else Path(source).read_bytes()
    try:
        sources = _label_sources(data)
    except ValueError:
        return None
    for kind, payload in sources:
        values = _properties(payload) if kind == "xmp" else {"AIGC": payload.decode("latin-1")}
        label = _label(values.get("AIGC", ""))
        if label is None:
            continue
        record: dict = {"AIGC": label}
        try:
            ours = json.loads(values.get("juhe", "null"))
        except ValueError:
            ours = None
        if isinstance(ours, dict):
            record.update((key, value) for key, value in ours.items() if key != "AIGC")
        return record
    return None
