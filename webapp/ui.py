"""The page: its layout as small panels, then the wiring of its events, then how it is launched.

Handlers live in `webapp.handlers`; every word shown comes from `webapp.texts`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
from starlette.middleware import Middleware

from webapp.backend import Backend
from webapp.components import checked_image
from webapp.guards import guard_middleware, install_download_guard, password_check
from webapp.handlers import Handlers
from webapp.limits import forwarded_allow_ips
from webapp.routes import CloseRoutes, RequireBearer
from webapp.settings import AppSettings
from webapp.sweep import sweep_lifespan
from webapp.texts import AUTH_MESSAGE, EXAMPLES, I18N, limits_script

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES_DIR = ROOT / "examples"
STATIC = Path(__file__).resolve().parent / "static"
SIZE_CHOICES = [
    (I18N("size_auto"), "auto"),
    (I18N("sq1024"), "1024*1024"),
    (I18N("sq1536"), "1536*1536"),
    (I18N("p34"), "768*1024"),
    (I18N("l43"), "1024*768"),
    (I18N("p23"), "832*1248"),
    (I18N("l32"), "1248*832"),
    (I18N("p916"), "720*1280"),
    (I18N("l169"), "1280*720"),
    (I18N("size_custom"), "custom"),
]
MCP_PATH = "/gradio_api/mcp"


@dataclass
class Inputs:
    """The form's components, in the order the run event takes them."""

    images: list[gr.Image]
    prompt: gr.Textbox
    count: gr.HTML
    size: gr.Dropdown
    run: gr.Button
    custom_row: gr.Row
    width: gr.Number
    height: gr.Number
    links: list[gr.Textbox]
    model: gr.Textbox
    api_key: gr.Textbox


@dataclass
class Outputs:
    """Where results are shown."""

    gallery: gr.Gallery
    status: gr.Markdown
    reuse: gr.Button
    compare: gr.ImageSlider


def header(offline: bool) -> None:
    """Title, subtitle and the banner saying whether edits are live or simulated."""
    gr.Markdown(I18N("title"))
    gr.Markdown(I18N("subtitle"))
    mode = "offline" if offline else "live"
    gr.Markdown(I18N(f"{mode}_banner"), elem_id="mode-banner", elem_classes=[mode])


def input_panel() -> Inputs:
    """图1-图3, the instruction, the size, the run button and the advanced options."""
    with gr.Row():
        images = [
            checked_image(
                i,
                label=I18N(f"image{i}"),
                type="filepath",
                image_mode=None,  # keep uploads byte for byte, transparency included
                sources=["upload", "clipboard"],
                height=220,
                min_width=100,
                elem_id=f"image{i}",
            )
            for i in (1, 2, 3)
        ]
    prompt = gr.Textbox(
        label=I18N("prompt"), placeholder=I18N("prompt_placeholder"), lines=3, max_lines=8, elem_id="prompt"
    )
    count = gr.HTML("0 / 800", elem_id="prompt-count")
    with gr.Row():
        size = gr.Dropdown(
            SIZE_CHOICES, value="auto", label=I18N("size"), allow_custom_value=True, elem_id="size", scale=3
        )
        run = gr.Button(I18N("run"), variant="primary", elem_id="run", scale=2)
    with gr.Row(visible=False) as custom_row:
        width = gr.Number(1024, label=I18N("width"), minimum=512, maximum=2048, step=16)
        height = gr.Number(1024, label=I18N("height"), minimum=512, maximum=2048, step=16)
    with gr.Accordion(I18N("advanced"), open=False):
        links = [
            gr.Textbox(label=I18N(f"url{i}"), info=I18N("url_info"), elem_id=f"url{i}") for i in (1, 2, 3)
        ]
        model = gr.Textbox("auto", label=I18N("model"), info=I18N("model_info"), elem_id="model")
        api_key = gr.Textbox(
            label=I18N("api_key"), info=I18N("api_key_info"), type="password", elem_id="api-key"
        )
    return Inputs(images, prompt, count, size, run, custom_row, width, height, links, model, api_key)


def examples_panel(inputs: Inputs) -> None:
    """Examples that fill the form; nothing runs (or is billed) until the visitor presses Edit."""
    gr.Examples(
        [
            [str(EXAMPLES_DIR / one), two and str(EXAMPLES_DIR / two), None, text, size]
            for _, one, two, text, size in EXAMPLES
        ],
        inputs=[*inputs.images, inputs.prompt, inputs.size],
        label=I18N("examples"),
        example_labels=[label for label, *_ in EXAMPLES],
        cache_examples=False,  # Spaces sets GRADIO_CACHE_EXAMPLES: caching would pay for every example
        examples_per_page=8,
    )


def result_panel() -> Outputs:
    """The results gallery, the status line, Continue editing and the before/after slider."""
    gallery = gr.Gallery(
        label=I18N("results"),
        columns=1,
        height="auto",
        object_fit="contain",
        fit_columns=False,
        preview=False,
        buttons=["download", "download_all", "fullscreen"],
        interactive=False,
        elem_id="results",
    )
    status = gr.Markdown(I18N("status_idle"), elem_id="status")
    reuse = gr.Button(I18N("continue"), size="sm", elem_id="continue")
    compare = gr.ImageSlider(
        label=I18N("compare"), type="filepath", image_mode=None, max_height=420, elem_id="compare"
    )
    return Outputs(gallery, status, reuse, compare)


def history_panel() -> gr.Gallery:
    """Every edit of this session, newest first."""
    return gr.Gallery(
        label=I18N("history"),
        columns=8,
        height=200,
        object_fit="cover",
        fit_columns=False,
        preview=False,
        buttons=["download", "fullscreen"],
        interactive=False,
        elem_id="history",
    )


def build_demo(settings: AppSettings, backend: Backend | None = None) -> gr.Blocks:
    """The whole app: the page for people and the `edit` endpoint for scripts and agents."""
    install_download_guard()  # no event makes the server fetch a visitor's link
    for note in settings.notes:
        logging.getLogger("webapp").warning(note)
    handlers = Handlers(settings, backend or Backend(settings))
    # The title stays a plain string: it is also the MCP server's name.
    with gr.Blocks(title="AI Image Edit · Juhe API") as demo:
        history_state = gr.State([])
        results_state = gr.State([])
        selected_state = gr.State(None)

        header(settings.offline)
        with gr.Row(equal_height=False):
            with gr.Column(scale=5):
                inputs = input_panel()
                examples_panel(inputs)
            with gr.Column(scale=4):
                outputs = result_panel()
        history = history_panel()

        # --- wiring ---
        gr.api(
            handlers.edit,
            api_name="edit",
            queue=False,  # MCP runs it directly: a fresh session and the caller's own address
            concurrency_limit=settings.concurrency,
            concurrency_id="edit",
        )
        inputs.run.click(
            handlers.edit_image,
            inputs=[
                *inputs.images,
                inputs.prompt,
                inputs.size,
                inputs.model,
                *inputs.links,
                inputs.api_key,
                history_state,
            ],
            outputs=[outputs.gallery, outputs.compare, outputs.status, history, history_state, results_state],
            api_visibility="private",
            concurrency_limit=settings.concurrency,
            concurrency_id="edit",
            trigger_mode="once",
            show_progress_on=[outputs.gallery],
        ).failure(
            handlers.mark_failed,
            inputs=results_state,
            outputs=[outputs.gallery, outputs.status],
            api_visibility="private",
            queue=False,
        )
        gr.on(
            [inputs.prompt.change, *(image.change for image in inputs.images)],
            None,
            inputs=[inputs.prompt, *inputs.images],
            outputs=inputs.count,
            js="(...values) => window.juheCount(...values)",
            queue=False,
            api_visibility="private",
        )
        outputs.gallery.select(
            handlers.select_result,
            inputs=[results_state, inputs.images[0]],
            outputs=[selected_state, outputs.compare],
            api_visibility="private",
        )
        outputs.reuse.click(
            handlers.reuse_result,
            inputs=[selected_state, results_state],
            outputs=inputs.images[0],
            api_visibility="private",
        )
        inputs.size.input(
            handlers.pick_size,
            inputs=inputs.size,
            outputs=[inputs.custom_row, inputs.size, inputs.width, inputs.height],
            api_visibility="private",
            queue=False,
        )
        gr.on(
            [inputs.width.input, inputs.height.input],
            handlers.set_custom_size,
            inputs=[inputs.width, inputs.height],
            outputs=inputs.size,
            api_visibility="private",
            queue=False,
        )
    demo.queue(max_size=settings.queue_size, default_concurrency_limit=settings.concurrency)
    return demo


def launch_options(settings: AppSettings) -> dict:
    """Keyword arguments of `demo.launch()` for these settings."""
    # uvicorn rewrites the client address from X-Forwarded-For itself; make it trust the same
    # proxies as the rate limit (an explicit FORWARDED_ALLOW_IPS still wins).
    os.environ.setdefault("FORWARDED_ALLOW_IPS", forwarded_allow_ips(settings.trusted_proxies))
    middleware = [*guard_middleware(settings), Middleware(CloseRoutes)]
    if settings.mcp_enabled and settings.mcp_token:
        middleware.append(Middleware(RequireBearer, prefix=MCP_PATH, token=settings.mcp_token))
    options = {
        "i18n": I18N,
        "css_paths": [STATIC / "app.css"],
        "head": limits_script() + f"<script>{(STATIC / 'app.js').read_text(encoding='utf-8')}</script>",
        "theme": gr.themes.Soft(primary_hue="orange", secondary_hue="amber"),
        "max_file_size": settings.max_upload_bytes,
        "max_threads": max(40, settings.concurrency + 8),
        "footer_links": ["api"],
        # Gradio's run history keeps every call's inputs in the browser's localStorage in plain
        # text, the visitor's own API key included; the page promises that key is never stored.
        "run_history": False,
        # Gradio's deep-link route would write a session's inputs, that key too, to disk: closed.
        "app_kwargs": {"middleware": middleware, "lifespan": sweep_lifespan(settings)},
        "mcp_server": settings.mcp_enabled,
    }
    if settings.access_password:
        options["auth"] = password_check(settings.access_password)
        options["auth_message"] = AUTH_MESSAGE
    return options
