"""The visitor's chosen language on the server (issue 18): the `juhe-lang` cookie wins over
Accept-Language for runtime phrases, and the page carries the choice to Gradio before it starts."""

from __future__ import annotations

from types import SimpleNamespace

from starlette.applications import Starlette
from starlette.responses import HTMLResponse, PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from webapp.middleware.language import SCRIPT, PageLanguage
from webapp.texts import chosen_language, request_chinese, says_language


def visitor(**headers: str) -> SimpleNamespace:
    return SimpleNamespace(headers=headers)


def test_the_chosen_language_wins_over_the_browsers():
    assert request_chinese(visitor(cookie="a=1; juhe-lang=zh", **{"accept-language": "en-US,en"}))
    assert not request_chinese(visitor(cookie="juhe-lang=en", **{"accept-language": "zh-CN,zh"}))
    assert request_chinese(visitor(**{"accept-language": "zh-CN,zh"}))  # no choice: the browser's
    assert not request_chinese(visitor(cookie="juhe-lang=fr", **{"accept-language": "en"}))
    assert not request_chinese(None)
    assert chosen_language("juhe-lang=zh-CN") is None  # only the two values the page writes


def _app() -> TestClient:
    page = "<!doctype html><html><head><title>x</title></head><body></body></html>"
    app = Starlette(
        routes=[
            Route("/", lambda request: HTMLResponse(page)),
            Route("/other", lambda request: HTMLResponse(page)),
            Route("/text", lambda request: PlainTextResponse("<head>")),
        ]
    )
    return TestClient(PageLanguage(app))


def test_a_program_that_names_no_language_keeps_the_providers_order():
    """Browsers send Accept-Language (and the switch its cookie): their errors are put in their
    order. gradio_client and MCP clients send neither, and keep 中文 / English as the provider has it."""
    assert says_language(visitor(**{"accept-language": "en-US,en;q=0.9"}))
    assert says_language(visitor(cookie="juhe-lang=zh"))
    assert not says_language(visitor(cookie="other=1"))
    assert not says_language(visitor())
    assert not says_language(None)


def test_the_page_carries_the_choice_ahead_of_gradio():
    client = _app()
    response = client.get("/")
    assert response.text.startswith("<!doctype html><html><head>" + SCRIPT.decode())
    assert int(response.headers["content-length"]) == len(response.content)
    assert "localStorage" not in client.get("/other").text  # only the page itself
    assert "localStorage" not in client.get("/text").text
