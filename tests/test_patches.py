"""Every replacement of a Gradio internal (`webapp.patches`) on its own: the start-up check of the
targets, the gate in front of `process_api`, no server-side fetch of a link, light sessions, fast
failed imports and Pillow's decoding bound. No server; the link tests send outbound HTTP to a
loopback `probe` (see `linkprobe`) so a fetch that slipped through would show as a hit."""

from __future__ import annotations

import asyncio
import functools
import inspect
import typing

import gradio as gr
import pytest
from gradio import helpers as gradio_helpers
from gradio import processing_utils
from gradio import utils as gradio_utils
from gradio.components.image_editor import ImageEditor
from gradio.state_holder import SessionState
from helpers.apphost import is_bilingual

from webapp import patches
from webapp.gate import Gate, Issued
from webapp.patches import (
    GradioChangedError,
    check_targets,
    install_gate,
    install_light_sessions,
    refuse_server_fetches,
    remember_type_hints,
)

LINK_REFUSED = "send links as plain strings"


def run(coroutine):
    return asyncio.run(coroutine)


def file_data(path: str) -> dict:
    return {"path": path, "meta": {"_type": "gradio.FileData"}}


# --- the start-up check --------------------------------------------------------------------------


def test_the_installed_gradio_has_every_target():
    check_targets()


async def _process_api(self, block_fn, inputs, request=None):  # a Gradio that reordered its parameters
    return {}


def _preprocess(self, payload):
    return payload


def _accept_blobs(self, data):
    return None


def _special_args(fn, inputs=None, request=None, event_data=None, component_props=None, token=None):
    return typing.get_type_hints(fn)  # reads the hints another way: the remembered ones go unused


@pytest.mark.parametrize(
    ("owner", "name", "replacement", "named"),
    [
        (processing_utils, "async_ssrf_protected_download", None, "async_ssrf_protected_download"),
        (processing_utils, "save_url_to_cache", None, "save_url_to_cache"),
        (processing_utils, "ssrf_protected_download", "not callable", "ssrf_protected_download"),
        (gr.Blocks, "process_api", _process_api, "Blocks.process_api"),
        (SessionState, "__init__", lambda self, blocks, extra=None: None, "SessionState.__init__"),
        (
            SessionState,
            "_update_value_in_config",
            lambda self, key: None,
            "SessionState._update_value_in_config",
        ),
        (ImageEditor, "preprocess", _preprocess, "ImageEditor.preprocess"),
        (ImageEditor, "accept_blobs", _accept_blobs, "ImageEditor.accept_blobs"),
        (gradio_helpers, "special_args", _special_args, "helpers.special_args"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_a_target_gone_or_changed_stops_the_app(monkeypatch, owner, name, replacement, named):
    if replacement is None:
        monkeypatch.delattr(owner, name)
    else:
        monkeypatch.setattr(owner, name, replacement)
    with pytest.raises(GradioChangedError, match=named) as info:
        check_targets()
    assert gr.__version__ in str(info.value)


def test_install_all_checks_first(monkeypatch):
    monkeypatch.delattr(processing_utils, "async_ssrf_protected_get")
    with gr.Blocks() as demo:
        gr.Textbox()
    original = demo.process_api
    with pytest.raises(GradioChangedError):
        patches.install_all(demo, Gate(Issued(), lambda request: None))
    assert demo.process_api == original  # nothing replaced


# --- remembered type hints ------------------------------------------------------------------------


class Handlers:
    def shout(self, text: str | None, request: gr.Request) -> str:
        """Annotations are strings here (postponed): Gradio evaluates them on every call."""
        return (text or "").upper()


def test_gradio_reads_a_handlers_hints_once(monkeypatch):
    reads = []

    def counted(fn):
        reads.append(fn)
        return typing.get_type_hints(fn)

    monkeypatch.setattr(gradio_utils, "get_type_hints", counted)
    handlers = Handlers()
    remember_type_hints()
    request = gr.Request()
    first, *_ = gradio_helpers.special_args(handlers.shout, ["hi"], request)
    hints = gradio_utils.get_type_hints(handlers.shout)
    hints["text"] = int  # a caller changing what it was given changes nothing kept
    again, *_ = gradio_helpers.special_args(handlers.shout, ["hi"], request)
    assert first == again == ["hi", request]  # the request still found by its hint
    assert reads == [handlers.shout]  # read once, then remembered
    assert gradio_utils.get_type_hints(handlers.shout)["text"] == str | None
    remember_type_hints()  # idempotent: not wrapped twice
    assert gradio_utils.get_type_hints(handlers.shout) and reads == [handlers.shout]


def test_a_wrapped_handler_keeps_its_own_signature():
    """functools.wraps of a bound handler (as tests record answers) must not gain `self`."""
    handlers = Handlers()
    remember_type_hints()

    @functools.wraps(handlers.shout)
    def recorded(*args, **kwargs):
        return handlers.shout(*args, **kwargs)

    assert list(inspect.signature(recorded).parameters) == ["text", "request"]


# --- the gate in front of process_api ------------------------------------------------------------


@pytest.fixture
def gated(tmp_path):
    """A small app whose `process_api` records its calls and answers one output file."""
    with gr.Blocks() as demo:
        prompt = gr.Textbox()
        image = gr.Image()
        prompt.submit(lambda text: None, prompt, image)
    calls = []
    output = str(tmp_path / "out.png")

    async def process_api(block_fn, inputs, state=None, request=None, iterator=None, session_hash=None, **kw):
        calls.append((block_fn, inputs, iterator, session_hash))
        return {"data": [file_data(output)]}

    demo.process_api = process_api  # what install_gate wraps
    issued = Issued()
    install_gate(demo, Gate(issued, lambda request: "203.0.113.1"))
    return demo, calls, issued, output


def test_the_gate_checks_inputs_and_issues_outputs(gated):
    demo, calls, issued, output = gated
    fn = demo.fns[0]
    run(demo.process_api(0, ["make it blue"], None, None, None, "s1"))
    assert calls == [(fn, ["make it blue"], None, "s1")]  # by index or by function, Gradio gets one
    assert issued.admits(output, "s1", None) and not issued.admits(output, "s2", None)
    assert issued.seen("s1")
    run(demo.process_api(fn, ["again"], session_hash="s1"))
    assert calls[-1][0] is fn


def test_a_refused_input_never_reaches_gradio(gated):
    demo, calls, issued, output = gated
    with pytest.raises(gr.Error, match="text expected") as info:
        run(demo.process_api(0, [file_data("/etc/passwd")], None, None, None, "s1"))
    assert is_bilingual(info.value.message)
    assert calls == [] and not issued.seen("s1") and not issued.admits(output, "s1", None)


def test_a_generators_next_step_sends_no_inputs(gated):
    demo, calls, _, _ = gated
    iterator = object()
    run(demo.process_api(0, None, None, None, iterator, "s1"))
    assert calls == [(demo.fns[0], None, iterator, "s1")]


# --- no server-side fetch of a visitor's link --------------------------------------------------------


@pytest.fixture
def refusing(monkeypatch, tmp_path):
    """Gradio's fetches refused, its cache in `tmp_path`."""
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))
    refuse_server_fetches()
    refuse_server_fetches()  # idempotent


@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.parametrize("component", [gr.Image, gr.File, gr.Gallery, gr.Audio, gr.Textbox])
def test_gradios_move_to_cache_refuses_a_link(refusing, probe, tmp_path, scheme, component):
    block = component()
    link = probe.link("h1.png", scheme)
    with pytest.raises(gr.Error) as info:
        run(processing_utils.async_move_files_to_cache(file_data(link), block, check_in_upload_folder=True))
    assert LINK_REFUSED in info.value.message and is_bilingual(info.value.message)
    with pytest.raises(gr.Error, match=LINK_REFUSED):
        processing_utils.move_files_to_cache(file_data(link), block)
    assert probe.hits == []
    assert not any(tmp_path.iterdir())  # not even the download's folder was made


def test_every_gradio_fetch_function_refuses(refusing, probe):
    link = probe.link("h1.svg")
    block = gr.Image()
    for fetch in (
        lambda: run(block.async_move_resource_to_block_cache(link)),
        lambda: block.move_resource_to_block_cache(link),
        lambda: run(processing_utils.async_ssrf_protected_get(link)),
        lambda: run(processing_utils.async_ssrf_protected_download(link, "/tmp")),
        lambda: processing_utils.save_url_to_cache(link, "/tmp"),
        lambda: processing_utils.ssrf_protected_download(link, "/tmp"),
    ):
        with pytest.raises(gr.Error, match=LINK_REFUSED):
            fetch()
    assert probe.hits == []


def test_local_files_still_move_to_the_cache(refusing, tmp_path):
    upload = tmp_path / "up.png"
    upload.write_bytes(b"\x89PNG\r\n\x1a\n")
    moved = run(processing_utils.async_move_files_to_cache(file_data(str(upload)), gr.Image()))
    assert moved["path"] == str(upload)


# --- cheaper sessions and calls --------------------------------------------------------------------


def test_a_session_renders_no_component_config():
    install_light_sessions()
    install_light_sessions()  # idempotent: not wrapped twice
    assert SessionState.__init__._juhe_light
    assert SessionState.__init__.__closure__[0].cell_contents.__name__ == "__init__"
    with gr.Blocks() as demo:
        box = gr.Textbox("hello")
        gr.Image()
    session = SessionState(demo)
    assert session.config_values == {}
    assert session[box._id] is box  # the blocks themselves are all there
    session._update_value_in_config(box._id, "changed")  # what preprocessing does: nothing kept
    assert session.config_values == {}
    assert box.value == "hello"  # the component is left as it was
