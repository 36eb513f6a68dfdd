"""The pure core: parameter checks, the exact form bytes, and the reading of the provider's answer."""

from __future__ import annotations

import io
import json
import random
from urllib.parse import parse_qs, parse_qsl, quote

import pytest
from PIL import Image

from juhe import (
    ERROR_CODES,
    MAX_MODEL_CHARS,
    ContentRejectedError,
    InvalidRequestError,
    JuheError,
    MalformedResponseError,
    is_http_url,
    parse_size,
)
from juhe._images import PreparedImage
from juhe._request import (
    MAX_PROMPT_CHARS,
    build_form,
    check_params,
    image_budget,
    parse_response,
    prepare_images,
)


def data_image(value: str) -> PreparedImage:
    return PreparedImage(value, "image/png", 1, 1, True, 1)


# --- form building -------------------------------------------------------------------------------


def test_form_bytes_escape_base64_and_send_unused_images_empty_in_document_order():
    params = check_params("把图中的小猫换成小狗", ["unused"], size="1024*768")
    body = build_form("k3y", params, [data_image("data:image/png;base64,ab+/cd==")])
    assert body == (
        b"key=k3y"
        b"&text=%E6%8A%8A%E5%9B%BE%E4%B8%AD%E7%9A%84%E5%B0%8F%E7%8C%AB%E6%8D%A2%E6%88%90%E5%B0%8F%E7%8B%97"
        b"&image1=data%3Aimage%2Fpng%3Bbase64%2Cab%2B%2Fcd%3D%3D"
        b"&image2=&image3="
        b"&size=1024%2A768"
        b"&model=auto"
    )


def test_form_round_trips_through_a_standard_form_parser():
    params = check_params("a+b & c=d 图1 100%", ["unused", "unused", "unused"], model="qwen-image-edit")
    images = [
        data_image("data:image/jpeg;base64,/9j/4AAQ+Sk=="),
        data_image("https://example.com/a.png?x=1&y=a+b"),
        data_image("data:image/webp;base64,UklGR+//"),
    ]
    fields = parse_qsl(build_form("secret+/=&key", params, images).decode("ascii"), keep_blank_values=True)
    assert fields == [
        ("key", "secret+/=&key"),
        ("text", "a+b & c=d 图1 100%"),
        ("image1", "data:image/jpeg;base64,/9j/4AAQ+Sk=="),
        ("image2", "https://example.com/a.png?x=1&y=a+b"),
        ("image3", "data:image/webp;base64,UklGR+//"),
        ("size", ""),
        ("model", "qwen-image-edit"),
    ]


@pytest.mark.parametrize("prompt", ["data:x,a&b=c+d", "data:image/png;base64,把图中的猫换成狗 & more"])
def test_a_prompt_that_looks_like_a_data_uri_is_escaped_as_text(prompt):
    body = build_form("k", check_params(prompt, ["unused"]), [data_image("data:image/png;base64,AA==")])
    form = parse_qs(body.decode("ascii"), keep_blank_values=True)
    assert form["text"] == [prompt]
    assert list(form) == ["key", "text", "image1", "image2", "image3", "size", "model"]


def test_form_carries_the_truncated_prompt():
    params = check_params("x" * 900, ["unused"])
    form = parse_qs(build_form("k", params, [data_image("data:image/png;base64,AA==")]).decode())
    assert form["text"] == ["x" * MAX_PROMPT_CHARS]


# --- prompt --------------------------------------------------------------------------------------


def test_prompt_is_stripped():
    assert check_params("  \n 换成小狗 \t", ["a.png"]).prompt == "换成小狗"


@pytest.mark.parametrize("prompt", ["", "   ", "\n\t", None, 42])
def test_empty_or_non_text_prompt_is_rejected(prompt):
    with pytest.raises(InvalidRequestError, match="prompt"):
        check_params(prompt, ["a.png"])


def test_prompt_of_exactly_800_characters_is_kept_without_warning():
    params = check_params("  " + "猫" * 800 + "  ", ["a.png"])
    assert params.prompt == "猫" * 800
    assert params.warnings == ()


def test_long_prompt_is_cut_to_800_characters_with_a_visible_bilingual_warning():
    params = check_params("猫" * 801, ["a.png"])  # characters are counted, not bytes
    assert params.prompt == "猫" * 800
    (warning,) = params.warnings
    assert "801" in warning and "800" in warning
    assert "截断" in warning and "cut" in warning


def test_truncation_warning_reaches_the_result():
    params = check_params("y" * 1000, ["a.png"])
    body = json.dumps({"error_code": 0, "result": {"orderid": "o", "images": [{"image": "https://r/1.png"}]}})
    assert parse_response(body.encode(), params).warnings == list(params.warnings) != []


# --- size ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ("1024*768", "1024*768"),
        ("1024x768", "1024*768"),
        ("1024X768", "1024*768"),
        ("1024×768", "1024*768"),
        (" 1024 * 768 ", "1024*768"),
        ("(1024, 768)", "1024*768"),
        ((1024, 768), "1024*768"),
        ([512, 2048], "512*2048"),
        (("2048", "512"), "2048*512"),
        ("512*512", "512*512"),
        ("2048*2048", "2048*2048"),
        ("auto", ""),
        ("AUTO", ""),
        ("", ""),
        ("   ", ""),
        (None, ""),
    ],
)
def test_size_forms_accepted(size, expected):
    assert parse_size(size) == expected
    assert check_params("p", ["a.png"], size=size).size == expected


@pytest.mark.parametrize("size", ["abc", "1024*1024*1", "-512*512", "0*0", "99999*1", (511, 512)])
def test_size_errors_state_the_accepted_format(size):
    with pytest.raises(InvalidRequestError, match=r"\[512, 2048\]"):
        parse_size(size)


@pytest.mark.parametrize(
    "size",
    [
        "abc",
        "0*0",
        "99999*1",
        "1024*1024*1",
        "-512*512",
        "512*-512",
        (-512, 512),
        "511*512",
        "512*2049",
        (2049, 1024),
        (1024,),
        (1024, 768, 1),
        ("a", "b"),
        1024,
        "1024*",
        "*768",
    ],
)
def test_bad_sizes_are_rejected_with_a_bilingual_message(size):
    with pytest.raises(InvalidRequestError) as info:
        parse_size(size)
    assert "尺寸" in str(info.value) and "size" in str(info.value)
    with pytest.raises(InvalidRequestError):
        check_params("p", ["a.png"], size=size)


# --- images and model ----------------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 2, 3])
def test_one_to_three_images_accepted(count):
    assert len(check_params("p", [f"{i}.png" for i in range(count)]).images) == count


@pytest.mark.parametrize("images", [[], [None, ""], ["1.png", "2.png", "3.png", "4.png"]])
def test_zero_or_more_than_three_images_rejected(images):
    with pytest.raises(InvalidRequestError, match="1 to 3 images"):
        check_params("p", images)


@pytest.mark.parametrize("single", ["cat.jpg", b"\x89PNG...", bytearray(b"raw")])
def test_a_single_image_is_not_iterated(single):
    assert check_params("p", single).images == (single,)


def test_empty_slots_are_skipped():
    assert check_params("p", [None, "a.png", "", "b.png"]).images == ("a.png", "b.png")


@pytest.mark.parametrize(
    ("model", "expected"), [(None, "auto"), ("", "auto"), ("  ", "auto"), (" m1 ", "m1")]
)
def test_model_defaults_to_auto(model, expected):
    assert check_params("p", ["a.png"], model=model).model == expected


# --- parse_response ------------------------------------------------------------------------------

DOCUMENT_SAMPLE = """{
    "reason": "成功",
    "result": {
        "orderid": "JH825251202145803Ae61U",
        "images": [
            {
                "image": "https://dashscope-result-hz.oss-cn-hangzhou.aliyuncs.com/7d/d4/20251202/31eda923/ba7d2168-3a8b-4ea3-8178-ad09a469c536-1.png?Expires=1765264493&OSSAccessKeyId=LTAI5tKPD3TMqf2Lna1fASuh&Signature=NPsuaaiBwgzbOQsHf4w1W7B3ZDY%3D"
            }
        ]
    },
    "error_code": 0
}"""


def test_parse_the_documents_success_sample_keeping_the_signed_link_verbatim():
    params = check_params("把猫换成狗", ["a.png"], size="1024*1024", model="m")
    result = parse_response(DOCUMENT_SAMPLE.encode(), params)
    assert result.order_id == "JH825251202145803Ae61U"
    assert result.image_urls == [json.loads(DOCUMENT_SAMPLE)["result"]["images"][0]["image"]]
    assert result.image_urls[0].endswith("Signature=NPsuaaiBwgzbOQsHf4w1W7B3ZDY%3D")
    assert (result.prompt, result.size, result.model) == ("把猫换成狗", "1024*1024", "m")


def test_parse_success_with_several_images_and_no_params():
    body = {
        "reason": "成功",
        "error_code": 0,
        "result": {"orderid": "O1", "images": [{"image": "https://a/1.png"}, {"image": "http://a/2.png"}]},
    }
    result = parse_response(json.dumps(body).encode())
    assert result.image_urls == ["https://a/1.png", "http://a/2.png"]
    assert (result.order_id, result.prompt, result.size, result.model) == ("O1", "", "", "auto")


@pytest.mark.parametrize("code", sorted(ERROR_CODES))
def test_every_documented_code_raises_its_family_with_code_and_bilingual_text(code):
    family, zh, en = ERROR_CODES[code]
    body = {"reason": zh, "result": {"orderid": "JH1"} if code == 282505 else None, "error_code": code}
    with pytest.raises(JuheError) as info:
        parse_response(json.dumps(body, ensure_ascii=False).encode("utf-8"))
    error = info.value
    assert type(error) is family
    assert error.code == code and error.reason == zh
    assert str(code) in str(error) and zh in str(error) and en in str(error)
    assert error.order_id == ("JH1" if code == 282505 else None)


def test_the_documented_table_has_twenty_codes():
    service = {282501, 282502, 282503, 282504, 282505, 282506}
    system = {10001, 10002, 10003, 10004, 10005, 10007, 10008, 10009, 10011, 10012, 10013, 10014}
    assert set(ERROR_CODES) == service | system | {10020, 10021}


def test_error_code_as_a_string_is_read():
    with pytest.raises(JuheError) as info:
        parse_response(b'{"error_code": "282504", "reason": "x"}')
    assert info.value.code == 282504


def test_unknown_code_surfaces_its_number_as_a_plain_juhe_error():
    with pytest.raises(JuheError) as info:
        parse_response('{"reason": "新错误", "result": null, "error_code": 282599}'.encode())
    assert type(info.value) is JuheError
    assert info.value.code == 282599
    assert "282599" in str(info.value) and "新错误" in str(info.value)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<html><body>502 Bad Gateway</body></html>",
        b"\xff\xfe\x00garbage",
        b"[]",
        b"null",
        b'"error_code"',
        '{"reason": "成功"}'.encode(),
        b'{"error_code": null}',
        b'{"error_code": "zero"}',
        b'{"error_code": [0]}',
        b'{"error_code": 0}',
        b'{"error_code": 0, "result": null}',
        b'{"error_code": 0, "result": {"orderid": "o"}}',
        b'{"error_code": 0, "result": {"orderid": "o", "images": []}}',
        b'{"error_code": 0, "result": {"orderid": "o", "images": "https://a/1.png"}}',
        b'{"error_code": 0, "result": {"orderid": "o", "images": [{"url": "https://a/1.png"}]}}',
        b'{"error_code": 0, "result": {"orderid": "o", "images": [{"image": "ftp://a/1.png"}]}}',
        b'{"error_code": 0, "result": {"orderid": "o", "images": [{"image": "https://a"}, {"image": 7}]}}',
        b'{"error_code": 0, "result": {"orderid": "o", "images": [{"image": "https://a/1.png"}]',
    ],
)
def test_malformed_bodies_raise_malformed_response_error(body):
    with pytest.raises(MalformedResponseError, match="malformed response"):
        parse_response(body)


def test_success_without_links_keeps_the_order_id():
    with pytest.raises(MalformedResponseError) as info:
        parse_response(b'{"error_code": 0, "result": {"orderid": "JH9", "images": []}}')
    assert info.value.order_id == "JH9"


@pytest.mark.parametrize("raw", ["false", "true", "0.5", '""', '"x"', "null", "[0]"])
def test_an_error_code_that_is_not_an_integer_is_malformed(raw):
    body = (
        '{"reason": "成功", "error_code": ' + raw + ', "result": {"orderid": "A", '
        '"images": [{"image": "https://x/y.png"}]}}'
    ).encode()
    with pytest.raises(MalformedResponseError):
        parse_response(body)


def test_an_error_code_given_as_a_digit_string_counts():
    body = b'{"reason": "x", "error_code": "282504", "result": null}'
    with pytest.raises(ContentRejectedError) as info:
        parse_response(body)
    assert info.value.code == 282504


# --- the model name ------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["m" * 65, "m" * 7_000_000, "a\nb", "a\x00b", 42])
def test_a_long_or_unprintable_model_name_is_refused_before_anything_is_sent(model):
    with pytest.raises(InvalidRequestError) as info:
        check_params("p", ["a.png"], model=model)
    assert info.value.kind == "invalid" and len(str(info.value)) < 300


def test_a_model_name_of_64_characters_is_accepted():
    assert check_params("p", ["a.png"], model="图" * MAX_MODEL_CHARS).model == "图" * 64
    assert MAX_MODEL_CHARS == 64


def test_the_model_name_counts_in_the_body_budget():
    """A budget that exactly fits the image with model "auto" must shrink for a 64-character model."""
    image = _noisy_png()
    key = "k" * 32
    short = check_params("p", [image], size="512*512", model="auto")
    long = check_params("p", [image], size="512*512", model="图" * MAX_MODEL_CHARS)
    [unchanged] = prepare_images(short, max_side=2048, budget=10**7)
    fixed = 10**7 - image_budget(10**7, short, key)
    max_body = len(quote(unchanged.value, safe="")) + fixed  # the image just fits with model "auto"
    assert prepare_images(short, max_side=2048, budget=image_budget(max_body, short, key))[0].passthrough
    assert len(build_form(key, short, [unchanged])) <= max_body
    prepared = prepare_images(long, max_side=2048, budget=image_budget(max_body, long, key))
    assert len(build_form(key, long, prepared)) <= max_body


def _noisy_png() -> bytes:
    out = io.BytesIO()
    Image.frombytes("RGB", (96, 96), random.Random(1).randbytes(96 * 96 * 3)).save(out, "PNG")
    return out.getvalue()


# --- links ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://example.com/a.png?x=1", True),
        ("HTTP://EXAMPLE.COM/a.png", True),
        ("http://10.0.0.5/a.png", True),
        ("ftp://example.com/a.png", False),
        ("https:///a.png", False),
        ("http://[::1/a.png", False),
        ("https://a.test/\x01.png", False),
        (" https://a.test/a.png", False),
        ("https://a.test/a b.png", False),
        ("javascript:alert(1)", False),
        ("example.com/a.png", False),
        (b"https://a.test/a.png", False),
        (None, False),
    ],
)
def test_is_http_url(value, expected):
    assert is_http_url(value) is expected


def test_a_malformed_http_link_is_refused_as_an_image(tmp_path):
    with pytest.raises(InvalidRequestError, match="not a valid http"):
        prepare_images(check_params("p", ["http://[::1/a.png"]), max_side=2048, budget=10**6)
