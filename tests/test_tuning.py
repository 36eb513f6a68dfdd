"""Gradio costs per call taken away for bursts (webapp.tuning), and the client's pool settings."""

from __future__ import annotations

import sys

import gradio as gr
import pytest
from gradio.state_holder import SessionState

import juhe._transport
from juhe import is_http_url
from webapp.tuning import install_fast_failed_imports, install_light_sessions


def test_a_new_session_renders_no_component_config_until_needed():
    install_light_sessions()
    install_light_sessions()  # idempotent
    with gr.Blocks() as demo:
        box = gr.Textbox("hello")
        gr.Image()
    session = SessionState(demo)
    assert session.config_values == {}
    assert session[box._id] is box  # the blocks themselves are all there
    session._update_value_in_config(box._id, "changed")  # what preprocessing does: filled on demand
    assert session.config_values[box._id]["props"]["value"] == "changed"


def test_a_missing_matplotlib_fails_at_once(monkeypatch):
    monkeypatch.delitem(sys.modules, "matplotlib", raising=False)
    install_fast_failed_imports()
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        pass
    else:  # installed here: nothing to speed up, and nothing was hidden
        assert sys.modules["matplotlib"] is not None
        return
    assert sys.modules["matplotlib"] is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("data:image/png;base64," + "A" * 5_000_000, False),
        ("https://example.com/" + "a" * 10_000, True),
        ("HTTP://EXAMPLE.COM/x", True),
        ("http:/example.com", False),
    ],
    ids=["megabyte data URI", "long link", "upper case", "one slash"],
)
def test_links_are_told_from_anything_else(value, expected):
    assert is_http_url(value) is expected


def test_the_pool_keeps_a_bounded_number_of_idle_connections():
    limits = juhe._transport._limits(256)
    assert limits.max_connections == 256
    assert limits.max_keepalive_connections == juhe._transport.KEEPALIVE_CONNECTIONS == 32
    assert juhe._transport._limits(8).max_keepalive_connections == 8
