"""Gradio costs per call taken away for bursts (webapp.tuning), and the client's pool settings."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
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


class Lookups(importlib.abc.MetaPathFinder):
    """A finder first on `sys.meta_path` that finds nothing and records each name looked up."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def find_spec(self, name, path=None, target=None):
        self.names.append(name)


def test_a_missing_matplotlib_fails_without_searching_the_path(monkeypatch):
    if importlib.util.find_spec("matplotlib") is not None:
        pytest.skip("matplotlib is installed here: nothing is missing, so nothing to speed up")
    # put sys.modules back as it was, with or without the entry the tuning adds
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.delitem(sys.modules, "matplotlib")
    lookups = Lookups()
    monkeypatch.setattr(sys, "meta_path", [lookups, *sys.meta_path])
    with pytest.raises(ImportError):
        importlib.import_module("matplotlib")
    assert lookups.names == ["matplotlib"]  # untuned, every failed import searches the path again
    install_fast_failed_imports()
    lookups.names.clear()
    with pytest.raises(ImportError):
        importlib.import_module("matplotlib")
    assert lookups.names == []


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
