"""Links: which strings count as http(s) URLs, and how a link is named without its signature."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx


def is_http_url(value: object) -> bool:
    """True for an absolute http(s) URL with a host, without spaces or control characters."""
    # the scheme first: a data URI of megabytes is answered at once, not parsed as a URL
    if not isinstance(value, str) or not value[:8].lower().startswith(("http://", "https://")):
        return False
    if not value.isprintable() or any(c.isspace() for c in value):
        return False
    try:
        url = httpx.URL(value)
    except (httpx.InvalidURL, TypeError, ValueError):
        return False
    return url.scheme in ("http", "https") and bool(url.host)


def public_link(url: str) -> str:
    """The link without its query string, which holds the storage signature."""
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return "<invalid link>"
    return f"{parts.scheme}://{parts.netloc}{parts.path}"
