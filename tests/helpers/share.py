"""Share pages in tests: an HTML reader for the pages, a share app in front of a trivial one, and
the browser steps that open the app and make a share link."""

from __future__ import annotations

import io
import re
from html.parser import HTMLParser

from PIL import Image
from playwright.sync_api import BrowserContext, Page, expect
from starlette.responses import PlainTextResponse
from starlette.testclient import TestClient

from helpers.browser import WAIT_MS
from webapp.share import SharePages
from webapp.store import ResultStore


class Html(HTMLParser):
    """The parts of a page the tests look at: tags with their attributes, the text, script bodies."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.scripts: list[str] = []
        self.styles: list[str] = []
        self._inside: str | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._inside = tag

    def handle_endtag(self, tag):
        self._inside = None

    def handle_data(self, data):
        if self._inside == "script":
            self.scripts.append(data)
        elif self._inside == "style":
            self.styles.append(data)
        else:
            self.text.append(data)

    def find(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())]

    def meta(self, prop: str) -> str | None:
        found = self.find("meta", property=prop) or self.find("meta", name=prop)
        return found[0]["content"] if found else None


def png(width: int = 320, height: int = 240, colour: str = "red") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "PNG")
    return out.getvalue()


async def trivial_app(scope, receive, send):
    await PlainTextResponse(f"the app: {scope['path']}")(scope, receive, send)


def client(store: ResultStore, **options) -> TestClient:
    client_at = options.pop("client", ("203.0.113.5", 40000))
    return TestClient(SharePages(trivial_app, store=store, **options), client=client_at)


def visit(context: BrowserContext, url: str) -> Page:
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(url)
    expect(page.locator("button#run")).to_be_enabled()
    return page


def share_link(page: Page) -> str:
    page.locator("#share").click()
    box = page.locator("#share-link textarea, #share-link input").first
    expect(box).to_have_value(re.compile(r"/share/[A-Za-z0-9_-]{32}\?lang=en$"))
    return box.input_value()
