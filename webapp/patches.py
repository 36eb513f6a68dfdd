"""Every place this app replaces a part of Gradio (or sets a process-wide Pillow limit), in one module.

`check_targets()` runs first: each replaced name must still exist with the shape this app expects, so
an upgrade of Gradio that moves one fails at start, loudly, instead of silently protecting nothing.

- The gate (`webapp.gate`) in front of `Blocks.process_api`, where every event ends.
- No server-side fetch of a link: Gradio's fetch functions refuse instead.
- Light sessions: Gradio 6.31's `SessionState.__init__` renders the config of every component for
  each new session, and keeps it only for deep links, a route this app closes. That was 40 % of the
  app's CPU in a burst of new visitors (every gradio_client and MCP caller is a new session). Nor
  are an event's values copied into configs rendered for the purpose (`_update_value_in_config`).
- Fast failed imports (`webapp.memory`, which each edit process applies too): Gradio imports
  matplotlib twice per call, and httpcore imports sniffio for every request and every lock it makes
  (14 per edit: the call, the download, the pool's locks); where they are not installed, each
  failed import searched the whole `sys.path` again (5 % of a burst's CPU for matplotlib; sniffio's
  3,700 searches were 0.9 s of the event loop in a burst of 256 edits).
- Remembered type hints: Gradio reads each handler's type hints on every call (`special_args`; with
  postponed annotations every hint is evaluated again); they are read once per function.
- Checked slots: `gr.Image.preprocess` turns an unreadable 图1-图3 into one bilingual error
  (`webapp.components.slot_preprocess`), on the class, as Gradio rebuilds updated components.
- Bounded decoding (`webapp.memory`, in each edit process too): Pillow's `MAX_IMAGE_PIXELS` is
  process-wide and checked in `Image.open`; it raises only above twice its value, so it is set to
  half the input bound: every decode in this process, however it is reached, refuses more than
  `juhe`'s input bound. Between half and the whole bound Pillow warns; those images are allowed,
  so that warning is silenced by name.
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Callable
from typing import Any

import gradio as gr
from gradio import helpers as gradio_helpers
from gradio import processing_utils
from gradio import utils as gradio_utils
from gradio.components.image_editor import ImageEditor
from gradio.state_holder import SessionState

from webapp.components import slot_preprocess
from webapp.errors import in_visitor_language, user_error
from webapp.gate import Gate
from webapp.memory import bound_decoding, install_fast_failed_imports
from webapp.texts import TITLES, error_text, request_chinese, says_language

# The functions through which Gradio fetches a link on the server; module attributes, so every
# caller (Block.async_move_resource_to_block_cache and its sync twin, the file components, SVG and
# audio handling) looks them up at call time.
ASYNC_FETCHES = ("async_ssrf_protected_download", "async_ssrf_protected_get")
SYNC_FETCHES = ("ssrf_protected_download", "save_url_to_cache")
PROCESS_API_PARAMETERS = ("block_fn", "inputs", "state", "request", "iterator", "session_hash")


class GradioChangedError(RuntimeError):
    """A part of Gradio this app replaces is gone or changed shape: upgrade this module with it."""


def check_targets() -> None:
    """Raise `GradioChangedError` unless every target of this module exists as expected."""
    problems = [
        name for name in ASYNC_FETCHES + SYNC_FETCHES if not callable(getattr(processing_utils, name, None))
    ]
    parameters = list(inspect.signature(gr.Blocks.process_api).parameters)[1:]
    if parameters[: len(PROCESS_API_PARAMETERS)] != list(PROCESS_API_PARAMETERS):
        problems.append(f"Blocks.process_api{tuple(parameters)}")
    if list(inspect.signature(SessionState.__init__).parameters) != ["self", "blocks"]:
        problems.append("SessionState.__init__")
    if list(inspect.signature(SessionState._update_value_in_config).parameters) != ["self", "key", "value"]:
        problems.append("SessionState._update_value_in_config")
    if "blob_storage" not in inspect.getsource(ImageEditor.preprocess):
        problems.append("ImageEditor.preprocess")
    if not getattr(ImageEditor.accept_blobs, "_is_server_fn", False):
        problems.append("ImageEditor.accept_blobs")
    if list(inspect.signature(gr.Image.preprocess).parameters) != ["self", "payload"]:
        problems.append("Image.preprocess")
    if "utils.get_type_hints(fn)" not in inspect.getsource(gradio_helpers.special_args):
        problems.append("helpers.special_args")
    if problems:
        raise GradioChangedError(f"gradio {gr.__version__} changed what this app replaces: {problems}")


# --- the gate ------------------------------------------------------------------------------------


def install_gate(demo: gr.Blocks, gate: Gate) -> None:
    """Put `gate` in front of this app's `process_api`: inputs are checked before Gradio reads them,
    and every file an output names is issued to the event's session."""
    original = demo.process_api

    async def process_api(
        block_fn: Any,
        inputs: list[Any],
        state: Any = None,
        request: Any = None,
        iterator: Any = None,
        session_hash: str | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> dict[str, Any]:
        fn = demo.fns[block_fn] if isinstance(block_fn, int) else block_fn
        try:
            if iterator is None:  # a generator's next step sends no inputs
                inputs = gate.check(fn, inputs, session_hash, request)
            result = await original(fn, inputs, state, request, iterator, session_hash, *args, **kwargs)
        except gr.Error as error:
            # every refusal, the gate's and Gradio's preprocessing ones included (an unreadable
            # upload), reads in the visitor's language first; handlers' own are ordered already. A
            # caller that names no language (gradio_client, MCP) keeps the provider's order, 中文 first
            if says_language(request):
                in_visitor_language(error, request_chinese(request))
            raise
        gate.record(result.get("data"), session_hash)
        return result

    demo.process_api = process_api


# --- no server-side fetch of a visitor's link ------------------------------------------------------


def _link_refused() -> gr.Error:
    return user_error(error_text("file_link"), title=TITLES["link"])


async def _refuse_async(*_args: Any, **_kwargs: Any) -> Any:
    raise _link_refused()


def _refuse_sync(*_args: Any, **_kwargs: Any) -> Any:
    raise _link_refused()


def refuse_server_fetches() -> None:
    """Make Gradio refuse, with a bilingual `gr.Error`, every link it would fetch on the server.
    Process-wide and idempotent: this app never wants Gradio to fetch a link."""
    for name in ASYNC_FETCHES:
        setattr(processing_utils, name, _refuse_async)
    for name in SYNC_FETCHES:
        setattr(processing_utils, name, _refuse_sync)


# --- cheaper sessions and calls --------------------------------------------------------------------


class _WithoutBlocks:
    """What `SessionState.__init__` reads of a `Blocks`: its default config, and no blocks to render."""

    def __init__(self, blocks: Any) -> None:
        self.default_config = blocks.default_config
        self.blocks: dict = {}


def install_light_sessions() -> None:
    """Make Gradio sessions keep no rendered configs (process-wide; idempotent): new sessions start
    without them, and an event's values are not copied into them. Only the deep-link route reads
    them, and this app closes it (`webapp.middleware.routes`); rendering a component's config to
    hold a value was 5 % of the event loop's time while a burst of 256 API calls came in."""
    init = SessionState.__init__
    if getattr(init, "_juhe_light", False):
        return

    def light_init(self: SessionState, blocks: Any) -> None:
        init(self, _WithoutBlocks(blocks))

    def keep_no_value(self: SessionState, key: int, value: Any) -> None:
        """Nothing: see `install_light_sessions`."""

    light_init._juhe_light = True  # type: ignore[attr-defined]
    SessionState.__init__ = light_init  # type: ignore[method-assign]
    SessionState._update_value_in_config = keep_no_value  # type: ignore[method-assign]


def remember_type_hints() -> None:
    """Make Gradio read a function's type hints once (process-wide; idempotent)."""
    if not getattr(gradio_utils.get_type_hints, "_juhe_remembered", False):
        gradio_utils.get_type_hints = _remembered_hints(gradio_utils.get_type_hints)


def _remembered_hints(read: Callable[[Any], dict]) -> Callable[[Any], dict]:
    """`read` (Gradio's `utils.get_type_hints`) kept per function, weakly (a demo's handlers go
    with it): a function's hints do not change, and a bound method's are its function's."""
    kept: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def hints(fn: Any) -> dict:
        function = getattr(fn, "__func__", fn)
        if not inspect.isfunction(function):  # a callable object: Gradio reads its __call__
            return read(fn)
        if function not in kept:
            kept[function] = read(fn)
        return dict(kept[function])  # a copy: a caller may change what it is given

    hints._juhe_remembered = True  # type: ignore[attr-defined]
    return hints


def check_slot_images() -> None:
    """Every `gr.Image` of 图1-图3, the session copies Gradio makes included, refuses an unreadable
    upload with one bilingual error instead of a traceback and a bare "Error" (idempotent)."""
    if not getattr(gr.Image.preprocess, "juhe_checked", False):
        gr.Image.preprocess = slot_preprocess(gr.Image.preprocess)


def install_all(demo: gr.Blocks, gate: Gate) -> None:
    """Check the targets, then make every replacement this app needs."""
    check_targets()
    install_gate(demo, gate)
    refuse_server_fetches()
    install_light_sessions()
    remember_type_hints()
    install_fast_failed_imports()
    check_slot_images()
    bound_decoding()
