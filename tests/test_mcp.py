"""The `edit` tool through the official `mcp` client (streamable HTTP), as an agent would call it."""

from __future__ import annotations

import asyncio
import base64
import io
import json
from collections.abc import Iterator

import httpx
import pytest
from gradio_client import handle_file
from helpers.apphost import SERVER_KEY, RunningApp, running_app
from helpers.paths import CAT
from helpers.tags import marker
from mcp import ClientSession
from mcp.client.streamable_http import streamablehttp_client
from PIL import Image

pytestmark = [pytest.mark.app, pytest.mark.loopback, pytest.mark.timeout(120)]

CAT_URI = "data:image/jpeg;base64," + base64.b64encode(CAT.read_bytes()).decode()


def mcp_url(running: RunningApp) -> str:
    return running.url + "/gradio_api/mcp/"


async def _session_call(url: str, work, headers: dict | None = None):
    async with (
        streamablehttp_client(url, headers=headers) as (read, write, _),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        return await work(session)


def call(running: RunningApp, arguments: dict, *, progress: bool = False, headers: dict | None = None):
    """One tool call in a fresh MCP session; returns (result, progress messages)."""
    messages: list[str] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        messages.append(message or "")

    async def work(session: ClientSession):
        return await session.call_tool("edit", arguments, progress_callback=on_progress if progress else None)

    return asyncio.run(_session_call(mcp_url(running), work, headers)), messages


def record_of(result) -> dict:
    """The record the tool returns as its last text: a JSON object."""
    return json.loads(result.content[-1].text)


def links_of(result) -> list[str]:
    """Every link in an answer: the "Image URL: …" line Gradio adds and the record's images."""
    [url_line] = [c.text for c in result.content if c.type == "text" and c.text.startswith("Image URL: ")]
    return [url_line.removeprefix("Image URL: "), *record_of(result)["images"]]


def shown_pixels(data: bytes) -> tuple[tuple[int, int], bytes]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size, image.convert("RGB").tobytes()


@pytest.fixture(scope="module")
def running(tmp_path_factory, provider) -> Iterator[RunningApp]:
    with running_app(tmp_path_factory.mktemp("mcp"), provider=provider, JUHE_MCP="1") as app:
        yield app


def test_the_tool_is_listed_with_whole_descriptions(running):
    tools = asyncio.run(_session_call(mcp_url(running), lambda s: s.list_tools())).tools
    [tool] = tools
    assert tool.name == "edit"
    assert "data:image" in tool.description and "Returns" in tool.description
    properties = tool.inputSchema["properties"]
    assert set(properties) == {
        "image1",
        "prompt",
        "image2",
        "image3",
        "size",
        "model",
        "api_key",
        "mask",
        "variants",
    }
    assert list(properties)[-1] == "variants"  # after the existing parameters: current callers keep working
    assert properties["variants"]["type"] == "integer" and properties["variants"].get("default") == 1
    assert tool.inputSchema["required"] == ["image1", "prompt"]
    for name, schema in properties.items():
        assert schema["description"].endswith("."), (name, schema["description"])  # not cut mid-sentence
    assert "图1, 图2, 图3" in properties["prompt"]["description"]
    assert "800" in properties["prompt"]["description"]
    size = properties["size"]
    assert size["type"] == "string" and "enum" not in size  # any valid W*H, not a fixed list
    assert "512" in size["description"] and "2048" in size["description"]
    assert SERVER_KEY not in json.dumps([t.model_dump() for t in tools])


@pytest.mark.parametrize("progress", [False, True], ids=["no-progress-token", "progress-token"])
def test_a_call_returns_the_image_and_a_record(running, progress):
    tag = marker()
    result, _ = call(
        running, {"image1": CAT_URI, "prompt": f"make it blue {tag}", "size": "1000*1000"}, progress=progress
    )
    assert not result.isError, result.content
    image, link, record_text = result.content
    assert image.type == "image" and image.mimeType == "image/png"
    with Image.open(io.BytesIO(base64.b64decode(image.data))) as shown:
        assert shown.size == (1000, 1000)
    assert link.text.startswith("Image URL: " + running.url)
    record = record_of(result)
    assert running.sidecar(record["order_id"])["prompt"] == f"make it blue {tag}"
    assert record["size"] == "1000*1000" and record["simulated"] is False
    assert all(url.startswith(running.url) for url in record["images"])
    assert SERVER_KEY not in repr(result.content[1:])


def test_two_agents_see_only_their_own_results(running):
    tags = [marker(), marker()]

    async def both():
        async def one(tag):
            async def work(session):
                return await session.call_tool("edit", {"image1": CAT_URI, "prompt": f"agent {tag}"})

            return await _session_call(mcp_url(running), work)

        return await asyncio.gather(*(one(tag) for tag in tags))

    results = asyncio.run(both())
    for tag, result in zip(tags, results, strict=True):
        texts = " ".join(c.text for c in result.content if c.type == "text")
        record = record_of(result)
        assert running.sidecar(record["order_id"])["prompt"] == f"agent {tag}"
        other = next(t for t in tags if t != tag)
        assert other not in texts


def test_a_provider_error_names_its_code_and_is_sent_once(running):
    tag = marker()
    result, _ = call(running, {"image1": CAT_URI, "prompt": f"[sim:282504] {tag}"})
    assert result.isError
    text = result.content[0].text
    assert "282504" in text and "包含敏感词" in text and "flagged as sensitive" in text
    assert len(running.requests_with(tag)) == 1


def test_a_link_is_handed_to_the_provider_not_fetched(running):
    tag = marker()
    result, _ = call(running, {"image1": "https://images.example/cat.png", "prompt": f"by link {tag}"})
    assert not result.isError, result.content
    assert running.requests_with(tag)[0]["images"] == 1


def test_a_local_path_is_refused(running):
    tag = marker()
    result, _ = call(running, {"image1": "/etc/passwd", "prompt": f"steal {tag}"})
    assert result.isError and "send links as plain strings" in result.content[0].text
    assert running.requests_with(tag) == []


def test_rate_limit_applies_per_calling_address(tmp_path, provider):
    env = {"JUHE_MCP": "1", "JUHE_RATE_LIMIT": "1", "JUHE_TRUSTED_PROXIES": "127.0.0.1"}
    with running_app(tmp_path, provider=provider, **env) as app:
        first, _ = call(app, {"image1": CAT_URI, "prompt": "one"}, headers={"X-Forwarded-For": "203.0.113.7"})
        again, _ = call(app, {"image1": CAT_URI, "prompt": "two"}, headers={"X-Forwarded-For": "203.0.113.7"})
        other, _ = call(
            app, {"image1": CAT_URI, "prompt": "three"}, headers={"X-Forwarded-For": "203.0.113.8"}
        )
    assert not first.isError and not other.isError
    assert again.isError and "Too many edits" in again.content[0].text


def test_mcp_can_be_turned_off(tmp_path, provider):
    with running_app(tmp_path, provider=provider, JUHE_MCP="0") as app:
        assert httpx.post(mcp_url(app), json={}, timeout=10).status_code == 404


def test_a_password_keeps_mcp_off_unless_a_token_is_set(tmp_path, provider):
    with running_app(tmp_path / "a", provider=provider, JUHE_MCP="1", JUHE_ACCESS_PASSWORD="pw") as app:
        assert httpx.post(mcp_url(app), json={}, timeout=10).status_code == 404
    env = {"JUHE_MCP": "1", "JUHE_ACCESS_PASSWORD": "pw", "JUHE_MCP_TOKEN": "tok-123"}
    with running_app(tmp_path / "b", provider=provider, **env) as app:
        assert httpx.post(mcp_url(app), json={}, timeout=10).status_code == 401
        with pytest.raises(Exception):  # noqa: B017 - the mcp client raises its own error types
            call(app, {"image1": CAT_URI, "prompt": "no token"})
        result, _ = call(
            app, {"image1": CAT_URI, "prompt": "with token"}, headers={"Authorization": "Bearer tok-123"}
        )
        assert not result.isError


def test_an_agent_can_make_a_region_edit_with_a_data_uri_mask(running):
    source = Image.new("RGB", (640, 480), (20, 90, 160))
    mask = Image.new("L", source.size, 0)
    mask.paste(255, (260, 190, 380, 290))

    def uri(image: Image.Image) -> str:
        out = io.BytesIO()
        image.save(out, "PNG")
        return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()

    result, _ = call(running, {"image1": uri(source), "prompt": f"region {marker()}", "mask": uri(mask)})
    assert not result.isError, result.content
    with Image.open(io.BytesIO(base64.b64decode(result.content[0].data))) as shown:
        assert shown.size == (640, 480)
        assert shown.convert("RGB").getpixel((10, 10)) == (20, 90, 160)  # far from the mask: untouched
    assert record_of(result)["size"] == "640*480"


def test_every_link_in_an_answer_opens_its_image_without_a_login(running):
    result, _ = call(running, {"image1": CAT_URI, "prompt": f"links {marker()}", "size": "800*600"})
    assert not result.isError, result.content
    expected = shown_pixels(base64.b64decode(result.content[0].data))
    links = links_of(result)
    assert len(links) == 2
    for link in links:
        assert link.startswith(running.url + "/gradio_api/file="), link
        assert "/gradio_api/mcp" not in link  # the mount's prefix, doubled before (404)
        # a fresh client: no cookie, no session, no header of the MCP call
        answer = httpx.get(link, timeout=10, trust_env=False)
        assert answer.status_code == 200, (link, answer.status_code)
        assert shown_pixels(answer.content) == expected


def test_the_record_is_json_for_agents_and_a_dict_for_gradio_client(running, tmp_path):
    result, _ = call(running, {"image1": CAT_URI, "prompt": f"json {marker()}"})
    text = result.content[-1].text
    assert text.startswith('{"order_id": "')  # JSON, not a Python repr ('order_id')
    assert json.loads(text)["simulated"] is False
    image, record = running.client().predict(
        image1=handle_file(str(CAT)), prompt=f"client {marker()}", api_name="/edit"
    )
    assert isinstance(record, dict) and record["images"][0].startswith(running.url + "/gradio_api/file=")
    assert httpx.get(record["images"][0], timeout=10, trust_env=False).status_code == 200


def test_with_a_password_the_image_is_in_the_answer_and_its_links_need_a_login(tmp_path, provider):
    env = {"JUHE_MCP": "1", "JUHE_ACCESS_PASSWORD": "pw-links", "JUHE_MCP_TOKEN": "tok-links"}
    with running_app(tmp_path, provider=provider, **env) as app:
        result, _ = call(
            app,
            {"image1": CAT_URI, "prompt": f"locked {marker()}"},
            headers={"Authorization": "Bearer tok-links"},
        )
        assert not result.isError, result.content
        expected = shown_pixels(base64.b64decode(result.content[0].data))  # the image itself, inline
        for link in links_of(result):
            assert httpx.get(link, timeout=10, trust_env=False).status_code in (401, 403)
        with httpx.Client(base_url=app.url, timeout=10, trust_env=False) as person:
            person.post("/login", data={"username": "agent", "password": "pw-links"}).raise_for_status()
            for link in links_of(result):
                assert shown_pixels(person.get(link).content) == expected


def test_two_variants_give_two_links_that_open(running):
    tag = marker()
    result, _ = call(running, {"image1": CAT_URI, "prompt": f"variants {tag}", "variants": 2})
    assert not result.isError, result.content
    assert result.content[0].type == "image"  # the first variant is the image an agent sees
    record = record_of(result)
    assert len(record["images"]) == 2 and [v["index"] for v in record["variants"]] == [0, 1]
    assert len(running.requests_with(tag)) == 2
    for link in record["images"]:
        answer = httpx.get(link, timeout=10, trust_env=False)
        assert answer.status_code == 200, (link, answer.status_code)
        assert answer.headers["content-type"].startswith("image/")


@pytest.mark.parametrize("value", [True, 1.5, 9])
def test_a_bad_variants_value_is_refused_and_nothing_is_sent(running, value):
    tag = marker()
    result, _ = call(running, {"image1": CAT_URI, "prompt": f"bad {tag}", "variants": value})
    # the MCP layer refuses a value of the wrong JSON type itself; the app refuses the rest
    text = result.content[0].text
    assert result.isError and (
        "variants must be a whole number from 1 to 4" in text or "'integer'" in text
    ), text
    assert running.requests_with(tag) == []
