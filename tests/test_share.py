"""The share page middleware in front of a trivial app: what it shows, escapes, refuses and hides."""

from __future__ import annotations

import base64
import hashlib
import io
import re

import pytest
from helpers.saving import save_result
from helpers.share import Html as Page
from helpers.share import client, png, trivial_app
from PIL import Image
from starlette.testclient import TestClient

from juhe import EditResult
from webapp.share import (
    SHARE_RATE_LIMIT,
    SharePages,
    default_public_url,
    public_base,
    share_path,
)
from webapp.store import DAY_S, ResultStore

HOSTILE = "<img src=x onerror=alert(1)> \"quoted\" 'single' </script><script>alert(2)</script> & &amp;"
HAN = re.compile(r"[\u4e00-\u9fff]")


def add(store: ResultStore, prompt: str = "把猫换成狗", before: bytes | None = b"", images: int = 1):
    result = EditResult(order_id="ORDER-12345", image_urls=["https://x/1"] * images, prompt=prompt)
    paths = save_result(
        result, store.folder, [("https://x/1", png(colour=c), "PNG") for c in ["red", "green"][:images]]
    )
    return store.add(
        paths, prompt=prompt, size="1024*1024", model="model-x", completed_at="2025-06-01T08:30:00+00:00",
        order_id=result.order_id, before=png(200, 150, "blue") if before == b"" else before,
    )  # fmt: skip


def shared(store: ResultStore, **options):
    record = add(store, **options)
    return record, store.share(record.id)


# --- the page ----------------------------------------------------------------------------------


def test_page_shows_comparison_instruction_details_and_download(store):
    record, token = shared(store)
    response = client(store).get(f"/share/{token}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    page = Page(response.text)
    sources = [a["src"] for a in page.find("img")]
    assert sources == [f"/share/{token}/result/1", f"/share/{token}/before.jpg"]
    assert page.find("input", type="range")
    text = " ".join(page.text)
    shown_size = "320 × 240 px（请求 1024 × 1024 · requested 1024 × 1024）"
    for shown in ("把猫换成狗", shown_size, "model-x", "2025-06-01 08:30 UTC"):
        assert shown in text
    assert page.find("a", href=f"/share/{token}/download/1")


def test_page_reveals_no_paths_ids_or_inputs(store, tmp_path):
    record, token = shared(store)
    body = client(store).get(f"/share/{token}").text
    for secret in (str(tmp_path), record.id, "ORDER-12345", record.images[0].name, "outputs", ".juhe-store"):
        assert secret not in body


def test_every_image_of_the_page_is_served_with_its_type(store):
    record, token = shared(store)
    web = client(store)
    expected = {
        f"/share/{token}/result/1": ("image/png", record.images[0].read_bytes()),
        f"/share/{token}/before.jpg": ("image/jpeg", store.before_copy(record.id).read_bytes()),
        f"/share/{token}/thumb.jpg": ("image/jpeg", record.thumbnail.read_bytes()),
        f"/share/{token}/download/1": ("image/png", record.images[0].read_bytes()),
    }
    for url, (kind, data) in expected.items():
        response = web.get(url)
        assert (response.status_code, response.headers["content-type"], response.content) == (200, kind, data)
        assert response.headers["x-content-type-options"] == "nosniff"
    assert web.get(f"/share/{token}/download/1").headers["content-disposition"] == (
        'attachment; filename="juhe-edit-1.png"'
    )
    assert web.get(f"/share/{token}/result/2").status_code == 404
    assert web.get(f"/share/{token}/result/0").status_code == 404


def test_a_result_of_two_images_shows_both(store):
    record, token = shared(store, images=2)
    page = Page(client(store).get(f"/share/{token}").text)
    assert f"/share/{token}/result/2" in [a["src"] for a in page.find("img")]
    assert page.find("a", href=f"/share/{token}/download/2")
    assert client(store).get(f"/share/{token}/result/2").content == record.images[1].read_bytes()


def test_without_a_before_image_there_is_no_slider_and_no_script(store):
    record, token = shared(store, before=None)
    page = Page(client(store).get(f"/share/{token}").text)
    assert [a["src"] for a in page.find("img")] == [f"/share/{token}/result/1"]
    assert not page.find("input") and not page.scripts
    assert client(store).get(f"/share/{token}/before.jpg").status_code == 404


def test_the_before_copy_is_made_when_the_share_page_first_asks(store):
    record, token = shared(store)
    assert not record.before.exists()  # neither the edit nor the link made it
    page = Page(client(store).get(f"/share/{token}").text)
    assert f"/share/{token}/before.jpg" in [a["src"] for a in page.find("img")]
    assert record.before.is_file()  # made for the page, which offers it
    response = client(store).get(f"/share/{token}/before.jpg")
    assert response.status_code == 200 and response.content == record.before.read_bytes()


def test_the_before_image_alone_is_made_on_request_too(store):
    record, token = shared(store)
    response = client(store).get(f"/share/{token}/before.jpg")
    assert response.status_code == 200 and response.content[:3] == b"\xff\xd8\xff"
    assert response.content == record.before.read_bytes()


def test_an_image1_that_turns_out_unreadable_gives_the_result_alone(store):
    record, token = shared(store, before=b"not an image")
    page = Page(client(store).get(f"/share/{token}").text)
    assert [a["src"] for a in page.find("img")] == [f"/share/{token}/result/1"]
    assert not page.find("input") and not page.scripts
    assert client(store).get(f"/share/{token}/before.jpg").status_code == 404


def test_a_hostile_prompt_is_only_text(store):
    record, token = shared(store, prompt=HOSTILE)
    body = client(store).get(f"/share/{token}").text
    page = Page(body)
    assert [t for t, _ in page.tags].count("script") == 1  # the page's own slider script only
    assert all("onerror" not in attrs for _, attrs in page.tags)
    assert [a["src"] for a in page.find("img")] == [f"/share/{token}/result/1", f"/share/{token}/before.jpg"]
    assert HOSTILE in page.text  # shown exactly as typed, as text
    assert page.meta("og:description") == HOSTILE  # and exactly as typed in the preview
    assert "</script><script>" not in body


def test_open_graph_tags_point_at_an_absolute_thumbnail(store):
    record, token = shared(store)
    page = Page(client(store).get(f"/share/{token}", headers={"host": "edit.example.org:8443"}).text)
    assert page.meta("og:type") == "website"
    assert page.meta("og:title")
    assert page.meta("og:description") == "把猫换成狗"
    assert page.meta("og:image") == f"http://edit.example.org:8443/share/{token}/thumb.jpg"
    assert page.meta("twitter:card") == "summary_large_image"
    thumb = client(store).get(page.meta("og:image").removeprefix("http://edit.example.org:8443"))
    with Image.open(io.BytesIO(thumb.content)) as image:
        assert image.format == "JPEG" and max(image.size) <= 600


def test_og_image_uses_the_public_url_when_set(store):
    record, token = shared(store)
    page = Page(client(store, public_url="https://juhe.example.com/app/").get(f"/share/{token}").text)
    assert page.meta("og:image") == f"https://juhe.example.com/app/share/{token}/thumb.jpg"


def test_forwarded_host_and_proto_count_only_from_a_trusted_proxy(store):
    record, token = shared(store)
    forged = {"host": "app.internal", "x-forwarded-host": "evil.example", "x-forwarded-proto": "https"}
    untrusted = client(store, trusted_proxies=["10.0.0.0/8"], client=("203.0.113.9", 1))
    assert (
        Page(untrusted.get(f"/share/{token}", headers=forged).text)
        .meta("og:image")
        .startswith("http://app.internal/")
    )
    proxied = client(store, trusted_proxies=["10.0.0.0/8"], client=("10.1.2.3", 1))
    headers = {
        "host": "app.internal",
        "x-forwarded-host": "forged.example, edit.example.org",
        "x-forwarded-proto": "https",
    }
    og_image = Page(proxied.get(f"/share/{token}", headers=headers).text).meta("og:image")
    assert og_image == f"https://edit.example.org/share/{token}/thumb.jpg"


def test_a_malformed_host_gives_no_og_image_rather_than_a_bad_one(store):
    record, token = shared(store)
    page = Page(client(store).get(f"/share/{token}", headers={"host": 'x"><script>'}).text)
    assert page.meta("og:image") is None
    assert page.meta("og:title")


# --- headers -----------------------------------------------------------------------------------


def test_security_and_cache_headers(store):
    record, token = shared(store)
    web = client(store)
    page = web.get(f"/share/{token}")
    for name, value in {
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
        "cache-control": "no-store",
        "x-frame-options": "DENY",
    }.items():
        assert page.headers[name] == value
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    image = web.get(f"/share/{token}/result/1")
    assert image.headers["cache-control"].startswith("private")
    assert image.headers["referrer-policy"] == "no-referrer"
    assert "sandbox" in image.headers["content-security-policy"]


def test_the_csp_allows_exactly_the_page_own_script_and_style(store):
    record, token = shared(store)
    response = client(store).get(f"/share/{token}")
    page = Page(response.text)
    csp = response.headers["content-security-policy"]

    def allowed(source: str) -> str:
        return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode() + "'"

    assert len(page.scripts) == 1 and f"script-src {allowed(page.scripts[0])}" in csp
    assert len(page.styles) == 1 and f"style-src {allowed(page.styles[0])}" in csp


def test_head_gives_the_headers_of_get_without_a_body(store):
    record, token = shared(store)
    web = client(store)
    for url in (f"/share/{token}", f"/share/{token}/result/1", "/share/" + "x" * 32):
        got, head = web.get(url), web.head(url)
        assert head.status_code == got.status_code
        assert head.content == b""
        assert head.headers["content-length"] == got.headers["content-length"] == str(len(got.content))


def test_other_methods_are_refused(store):
    record, token = shared(store)
    response = client(store).post(f"/share/{token}")
    assert response.status_code == 405 and response.headers["allow"] == "GET, HEAD"


# --- links that show nothing -------------------------------------------------------------------


def assert_bilingual_page(response, status: int, *words: str) -> None:
    assert response.status_code == status
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    text = " ".join(Page(response.text).text)
    assert HAN.search(text)
    for word in words:
        assert word in text
    assert "Traceback" not in response.text


def test_unknown_and_malformed_links_give_a_bilingual_404(store):
    shared(store)
    web = client(store)
    for url in (
        "/share/" + "A" * 32,
        "/share/abc",
        "/share/",
        "/share",
        "/share/..%2F..%2Fetc%2Fpasswd",
        "/share/a/b/c",
    ):
        assert_bilingual_page(web.get(url), 404, "does not exist", "找不到")


def test_a_revoked_link_gives_a_bilingual_410_everywhere(store):
    record, token = shared(store)
    store.revoke(token)
    web = client(store)
    assert_bilingual_page(web.get(f"/share/{token}"), 410, "revoked", "撤销")
    for part in ("result/1", "before.jpg", "thumb.jpg", "download/1"):
        response = web.get(f"/share/{token}/{part}")
        assert response.status_code == 410 and not response.headers["content-type"].startswith("image/")


def test_an_expired_link_gives_a_bilingual_410(store, clock):
    record, token = shared(store)
    clock.now += 30 * DAY_S
    assert_bilingual_page(client(store).get(f"/share/{token}"), 410, "expired", "过期")
    store.sweep()
    assert_bilingual_page(client(store).get(f"/share/{token}"), 410, "expired", "过期")


def test_a_deleted_result_answers_404_on_every_url_that_served_it(store):
    record, token = shared(store)
    web = client(store)
    urls = [f"/share/{token}"] + [
        f"/share/{token}/{p}" for p in ("result/1", "before.jpg", "thumb.jpg", "download/1")
    ]
    assert [web.get(u).status_code for u in urls] == [200] * 5
    store.delete(record.id)
    assert [web.get(u).status_code for u in urls] == [404] * 5


def test_a_file_gone_from_disk_is_a_404_not_an_error(store):
    record, token = shared(store)
    record.images[0].unlink()
    assert client(store).get(f"/share/{token}/result/1").status_code == 404


def test_a_failure_inside_gives_a_plain_500_page_without_a_trace(store, monkeypatch):
    record, token = shared(store)

    def broken(_token):
        raise RuntimeError("internal detail /srv/secret/path")

    monkeypatch.setattr(store, "resolve", broken)
    response = client(store).get(f"/share/{token}")
    assert_bilingual_page(response, 500, "went wrong")
    assert "/srv/secret" not in response.text and "RuntimeError" not in response.text


# --- switches, limits and the rest of the app --------------------------------------------------


def test_sharing_disabled_answers_404_and_leaves_the_app_alone(store):
    record, token = shared(store)
    web = client(store, enabled=False)
    for url in (f"/share/{token}", f"/share/{token}/result/1", f"/share/{token}/thumb.jpg"):
        assert web.get(url).status_code == 404
    assert web.get("/").text == "the app: /"


def test_other_paths_reach_the_app(store):
    web = client(store)
    for path in ("/", "/shared", "/sharex/abc", "/gradio_api/info", "/x/share/abc"):
        assert web.get(path).text == f"the app: {path}"


def test_share_requests_are_rate_limited_per_address_apart_from_the_app(store):
    record, token = shared(store)
    web = client(store, rate_limit=3)
    assert [web.get(f"/share/{token}").status_code for _ in range(3)] == [200] * 3
    refused = web.get(f"/share/{token}/result/1")
    assert_bilingual_page(refused, 429, "Too many requests")
    assert 0 < int(refused.headers["retry-after"]) <= 60
    assert web.get("/").status_code == 200  # the app's own routes are not counted
    other = TestClient(web.app, client=("198.51.100.7", 1))
    assert other.get(f"/share/{token}").status_code == 200


def test_the_default_rate_limit_is_60_per_minute():
    assert SHARE_RATE_LIMIT == 60


def test_under_a_root_path(store):
    record, token = shared(store)
    web = TestClient(SharePages(trivial_app, store=store), root_path="/edit")
    response = web.get(f"/share/{token}")
    assert response.status_code == 200
    page = Page(response.text)
    assert page.find("img")[0]["src"] == f"/edit/share/{token}/result/1"
    assert page.meta("og:image") == f"http://testserver/edit/share/{token}/thumb.jpg"
    assert web.get(f"/share/{token}/result/1").status_code == 200


# --- helpers -----------------------------------------------------------------------------------


def test_default_public_url_on_a_space():
    assert default_public_url(None, "user-app.hf.space") == "https://user-app.hf.space"
    assert default_public_url("https://mine.example", "user-app.hf.space") == "https://mine.example"
    assert default_public_url(None, None) is None


def test_share_path_and_public_base():
    assert share_path("T" * 32) == "/share/" + "T" * 32
    assert share_path("T" * 32, "/edit/") == "/edit/share/" + "T" * 32
    assert public_base(None, "http", {"host": "h.example"}, "1.2.3.4") == "http://h.example"
    assert public_base("https://p.example", "http", {"host": "h.example"}, "1.2.3.4") == "https://p.example"
    assert public_base(None, "http", {"host": "bad host"}, "1.2.3.4") is None


# --- the page's language (issue 18) -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "cookie", "shown", "absent"),
    [
        ("?lang=zh", None, ["指令", "下载", "原图", "English"], ["Instruction", "Download"]),
        ("?lang=en", None, ["Instruction", "Download", "Before", "中文"], ["指令", "下载"]),
        ("", "juhe-lang=zh", ["指令", "下载"], ["Instruction", "Download"]),  # opened in the same browser
        ("?lang=en", "juhe-lang=zh", ["Instruction"], ["指令"]),  # the link says which
    ],
)
def test_a_share_page_in_the_language_of_its_link(store, query, cookie, shown, absent):
    _, token = shared(store)
    web = client(store)
    response = web.get(f"/share/{token}{query}", headers={"cookie": cookie} if cookie else {})
    assert response.status_code == 200
    text = " ".join(Page(response.text).text)
    assert all(word in text for word in shown), text
    assert not any(word in text for word in absent), text
    other = "en" if "指令" in text else "zh"
    assert f'href="/share/{token}?lang={other}"' in response.text  # the reader can switch


def test_a_share_page_without_a_language_says_both(store):
    _, token = shared(store)
    text = " ".join(Page(client(store).get(f"/share/{token}").text).text)
    assert "指令 · Instruction" in text and "?lang=" not in text


def test_a_message_page_in_the_language_of_its_link(store):
    text = " ".join(Page(client(store).get("/share/nosuchtoken?lang=en").text).text)
    assert "This share link does not exist" in text and not HAN.search(text)
