"""Keys stay secret: the server's key and a visitor's own key never show up in the page, the API
description, the logs, error messages, saved files, or another visitor's session.

One scenario runs once for the module (the app live against a simulator, two visitors, successes
and every kind of failure, with all output of the process captured); each test checks one place.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, quote_plus

import httpx
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from helpers.apphost import SERVER_KEY, captured_output, image_file, running_app
from helpers.markers import marked_fixture

from juhe import ImageEditClient, JuheError
from juhe.simulator import key_fingerprint

VISITOR_KEY = "sk-visitor-PRIVATE-fedcba9876543210"
KEYS = {"server": SERVER_KEY, "visitor": VISITOR_KEY}
PAGES = (
    "/",
    "/config",
    "/gradio_api/info",
    "/gradio_api/info?all_endpoints=true",
    "/gradio_api/openapi.json",
    "/openapi.json",
    "/gradio_api/mcp/schema",
)
# (visitor, prompt, uses own key, size) in the order they run; A and C use the server's key
STEPS = [
    ("A", "A-ok-1", False, "auto"),
    ("A", "[sim:10001] A-auth", False, "auto"),
    ("A", "[sim:malformed] A-malformed", False, "auto"),
    ("A", "[sim:drop] A-drop", False, "auto"),
    ("A", "[sim:expired] A-expired", False, "auto"),
    ("A", "[sim:http500] A-http500", False, "auto"),
    ("A", "[sim:slow=3] A-slow", False, "auto"),
    ("A", "A-size", False, "abc"),
    ("B", "B-ok-1", True, "auto"),
    ("B", "[sim:10001] B-auth", True, "auto"),
    ("B", "[sim:drop] B-drop", True, "auto"),
    ("A", "A-ok-2", False, "auto"),
    ("C", "C-ok-1", False, "auto"),
]


def forms(key: str) -> list[str]:
    """The key as it could be written: raw, form-encoded, percent-encoded."""
    return sorted({key, quote_plus(key), quote(key, safe="")})


@dataclass
class Scenario:
    pages: dict[str, httpx.Response] = field(default_factory=dict)
    results: dict[str, str] = field(default_factory=dict)  # prompt -> JSON of what /edit returned
    errors: dict[str, str] = field(default_factory=dict)  # prompt -> the message the visitor saw
    requests: list[dict] = field(default_factory=list)  # what the simulator received
    files: dict[Path, bytes] = field(default_factory=dict)  # every file the app wrote
    deep_link_status: int = 0
    log: str = ""


@marked_fixture("app", scope="module")
def scenario(tmp_path_factory) -> Scenario:
    root = tmp_path_factory.mktemp("secrets")
    upload = handle_file(str(image_file(root / "cat.jpg")))
    seen = Scenario()
    capture = captured_output(root / "captured.log")
    with capture as log_path, running_app(root, JUHE_TIMEOUT="1", JUHE_MCP="1", quiet=False) as hosted:
        visitors = {name: hosted.client() for name in "ABC"}
        for who, prompt, own_key, size in STEPS:
            key = VISITOR_KEY if own_key else None
            try:
                outputs = visitors[who].predict(
                    upload, prompt=prompt, size=size, api_key=key, api_name="/edit"
                )
                seen.results[prompt] = json.dumps(outputs, ensure_ascii=False)
            except AppError as exc:
                seen.errors[prompt] = str(exc)
        with httpx.Client(base_url=hosted.url, timeout=30) as http:
            session = visitors["B"].session_hash
            seen.deep_link_status = http.get(
                "/gradio_api/deep_link", params={"session_hash": session}
            ).status_code
            for page in PAGES:  # after every edit: a leak into shared state would show here
                seen.pages[page] = http.get(page)
        seen.requests = hosted.provider.stats()["requests"]
        for folder in (hosted.output_dir, hosted.temp_dir):
            for path in folder.rglob("*"):
                if path.is_file():
                    seen.files[path] = path.read_bytes()
    seen.log = Path(log_path).read_text(encoding="utf-8", errors="replace")
    return seen


def test_scenario_ran_as_planned(scenario):
    """The other tests mean something only if each step succeeded or failed as intended."""
    assert set(scenario.results) == {"A-ok-1", "B-ok-1", "A-ok-2", "C-ok-1"}
    assert set(scenario.errors) == {prompt for _, prompt, _, _ in STEPS} - set(scenario.results)
    assert "10001" in scenario.errors["[sim:10001] A-auth"]
    assert "timeout" in scenario.errors["[sim:slow=3] A-slow"]
    assert "download failed" in scenario.errors["[sim:expired] A-expired"]


@pytest.mark.parametrize("who", KEYS)
@pytest.mark.parametrize("page", PAGES)
def test_key_not_in_pages(scenario, page, who):
    response = scenario.pages[page]
    if page in ("/", "/config", "/gradio_api/info"):
        assert response.status_code == 200 and len(response.text) > 1000
    for form in forms(KEYS[who]):
        assert form not in response.text


def test_api_description_names_the_key_parameter_without_a_value(scenario):
    info = scenario.pages["/gradio_api/info"].json()
    parameters = {p["parameter_name"]: p for p in info["named_endpoints"]["/edit"]["parameters"]}
    assert parameters["api_key"]["parameter_default"] in (None, "")


@pytest.mark.parametrize("who", KEYS)
def test_key_not_in_logs_or_output(scenario, who):
    # the capture really caught the process: Gradio's banner (stdout) and httpx's request log
    assert "Running on local URL" in scenario.log
    assert "HTTP Request: POST" in scenario.log
    for form in forms(KEYS[who]):
        assert form not in scenario.log


@pytest.mark.parametrize("who", KEYS)
def test_key_not_in_messages_shown(scenario, who):
    for prompt, message in scenario.errors.items():
        for form in forms(KEYS[who]):
            assert form not in message, prompt
    for prompt, outputs in scenario.results.items():
        for form in forms(KEYS[who]):
            assert form not in outputs, prompt


@pytest.mark.parametrize("who", KEYS)
def test_key_not_on_disk(scenario, who):
    sidecars = [p for p in scenario.files if p.suffix == ".json" and p.parent.name == "outputs"]
    assert len(sidecars) == 4  # one per successful edit
    assert any("gradio" in p.parts for p in scenario.files)  # uploads and served copies
    for path, data in scenario.files.items():
        for form in forms(KEYS[who]):
            assert form.encode() not in data, path
            assert form not in str(path)


def test_each_visitor_is_billed_to_the_right_key(scenario):
    """B's own key went with B's calls only; A and C, before and after B, used the server's."""
    fingerprints = {key_fingerprint(SERVER_KEY): "server", key_fingerprint(VISITOR_KEY): "visitor"}
    used = {r["text"].split()[-1]: fingerprints.get(r["key"]) for r in scenario.requests}
    assert used["B-ok-1"] == used["B-auth"] == used["B-drop"] == "visitor"
    assert used["A-ok-1"] == used["A-auth"] == used["A-ok-2"] == used["C-ok-1"] == "server"
    assert "A-size" not in used  # refused before sending


def test_deep_link_route_is_closed(scenario):
    """Gradio's deep-link route would write B's inputs, B's key among them, to GRADIO_TEMP_DIR."""
    assert scenario.deep_link_status == 404
    assert not any("deep_links" in p.parts for p in scenario.files)


# --- the client scrubs a key a provider echoes ----------------------------------------------------


def echoing(body: bytes, status: int = 200) -> httpx.MockTransport:
    return httpx.MockTransport(lambda request: httpx.Response(status, content=body))


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"error_code": 10001, "reason": f"错误的请求KEY: {SERVER_KEY}", "result": None}).encode(),
        f"<html>bad key {SERVER_KEY}</html>".encode(),
        json.dumps({"error_code": "x" + SERVER_KEY}).encode(),
    ],
    ids=["in the reason", "in a body that is not JSON", "in a bad error_code"],
)
def test_client_scrubs_a_key_the_provider_echoes(clean_env, body):
    client = ImageEditClient(api_key=SERVER_KEY, transport=echoing(body))
    with client, pytest.raises(JuheError) as info:
        client.edit("make it blue", ["https://example.com/cat.png"])
    assert SERVER_KEY not in str(info.value) and SERVER_KEY not in repr(info.value.args)
    assert SERVER_KEY not in (info.value.reason or "")
    assert SERVER_KEY not in repr(client)
