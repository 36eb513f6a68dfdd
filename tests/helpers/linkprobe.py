"""A loopback HTTP proxy that records every request sent through it: the app's outbound fetches,
made visible. Not a test module.

With HTTP_PROXY and HTTPS_PROXY pointing at it (loopback excepted), a fetch of a link on a host
Gradio trusts (`huggingface.co`, fetched without its own address checks) arrives here and nowhere
else; nothing leaves the machine. Every request is answered 502.
"""

from __future__ import annotations

import http.server
import socketserver
import threading

import pytest

# A host on Gradio's allow-list: its fetches go through the environment's proxy with no DNS lookup.
TRUSTED_HOST = "huggingface.co"
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")


class LinkProbe:
    """The proxy's address and the request lines it received."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        probe = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _record(self) -> None:
                probe.hits.append(self.requestline)
                self.send_response(502)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_HEAD = do_POST = do_CONNECT = _record  # noqa: N815 - BaseHTTPRequestHandler's names

            def log_message(self, *_args) -> None:
                pass

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()

    def link(self, name: str, scheme: str = "http") -> str:
        """A link that, fetched by this process, reaches only the probe."""
        return f"{scheme}://{TRUSTED_HOST}/{name}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def routed_through(monkeypatch: pytest.MonkeyPatch) -> LinkProbe:
    """Start a probe and send this process's outbound HTTP to it (loopback goes direct)."""
    probe = LinkProbe()
    for name in PROXY_VARIABLES:
        monkeypatch.setenv(name, probe.url)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")
    return probe
