"""The page: its layout as small panels, then the wiring of its events, then how it is launched.

Handlers live in `webapp.handlers`; every word shown comes from `webapp.texts`; the page's own
behaviour in the browser (keyboard, counters, notes) is `webapp/static/app.js`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import gradio as gr
from starlette.middleware import Middleware

from juhe import MAX_PROMPT_CHARS, MAX_VARIANTS
from webapp.backend import Backend
from webapp.batch_panel import BatchHandlers, batch_panel, wire_batch
from webapp.board_panel import BoardHandlers, board_panel, wire_boards
from webapp.boards import BoardPages
from webapp.components import checked_image
from webapp.exports import DEFAULT_QUALITY, FORMATS, QUALITY_RANGE
from webapp.gate import Gate
from webapp.handlers import VIEW, Handlers
from webapp.middleware import stack
from webapp.middleware.compress import CompressPage
from webapp.middleware.language import PageLanguage
from webapp.middleware.logins import password_check
from webapp.patches import install_all
from webapp.pictures import accept_heif_uploads
from webapp.settings import AppSettings
from webapp.share import default_public_url
from webapp.sweep import kept_files, sweep_lifespan
from webapp.texts import AUTH_MESSAGE, EXAMPLES, EXAMPLES_DIR, I18N, REGION_EXAMPLE, page_script
from webapp.visitors import forwarded_allow_ips, visitor_key

STATIC = Path(__file__).resolve().parent / "static"
SIZE_CHOICES = [
    (I18N("size_auto"), "auto"),
    (I18N("size_original"), "original"),
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
PRIVATE = {"api_visibility": "private"}  # every page event: not an API endpoint, not an MCP tool
HISTORY_STORAGE_KEY = "juhe-image-edit-history"
QUEUE_STATUS_S = 1.0  # how often a visitor waiting in the queue is told their place


def header(offline: bool) -> gr.Button:
    """Title, the language switch, subtitle and the banner saying whether edits are live or
    simulated; returns the switch."""
    with gr.Row(elem_id="header-row"):
        gr.Markdown(I18N("title"))
        # a presenter shows the page in the audience's language, whatever the browser's
        switch = gr.Button(I18N("language"), size="sm", scale=0, min_width=110, elem_id="language")
    gr.Markdown(I18N("subtitle"))
    mode = "offline" if offline else "live"
    gr.Markdown(I18N(f"{mode}_banner"), elem_id="mode-banner", elem_classes=[mode])
    return switch


def input_panel() -> dict:
    """图1-图3, the instruction, the size, Edit and Cancel, and the advanced options."""
    parts: dict = {}
    with gr.Row(elem_id="slots"):
        parts["images"] = [
            checked_image(
                i,
                label=I18N(f"image{i}"),
                type="filepath",
                image_mode=None,  # keep uploads byte for byte, transparency included
                sources=["upload", "clipboard"],
                height=200,
                min_width=96,
                elem_id=f"image{i}",
            )
            for i in (1, 2, 3)
        ]
    parts.update(reorder_panel())
    parts["link_note"] = gr.HTML("", elem_id="link-note")
    parts["paint"] = gr.Button(I18N("paint"), size="sm", elem_id="paint")
    # the region editor is built only when asked for: it is the page's heaviest part to load
    with gr.Column(visible=False, elem_id="region-panel") as parts["region_panel"]:
        parts["region"] = gr.ImageEditor(
            label=I18N("region"),
            type="pil",
            sources=(),
            transforms=(),
            brush=gr.Brush(colors=[("#ff0080", 0.55)], color_mode="fixed", default_size=40),
            eraser=gr.Eraser(),
            height=360,
            elem_id="region",
        )
        gr.Markdown(I18N("region_info"), elem_id="region-info")
        parts["paint_done"] = gr.Button(I18N("paint_done"), size="sm", elem_id="paint-done")
    parts["prompt"] = gr.Textbox(
        label=I18N("prompt"), placeholder=I18N("prompt_placeholder"), lines=3, max_lines=8, elem_id="prompt"
    )
    parts["count"] = gr.HTML(f"0 / {MAX_PROMPT_CHARS}", elem_id="prompt-count")
    with gr.Row(elem_id="size-row"):
        parts["size"] = gr.Dropdown(SIZE_CHOICES, value="auto", label=I18N("size"), elem_id="size", scale=3)
        with gr.Column(scale=2, min_width=160):
            parts["run"] = gr.Button(I18N("run"), variant="primary", elem_id="run")
            parts["cancel"] = gr.Button(I18N("cancel"), size="sm", interactive=False, elem_id="cancel")
    with gr.Row(visible=False, elem_id="custom-size") as parts["custom_row"]:
        # no minimum/maximum here: Gradio would refuse out-of-range values with a bare "Error"; the
        # page says what is wrong at once (app.js) and the run refuses it in both languages
        parts["width"] = gr.Number(1024, label=I18N("width"), precision=0, elem_id="width")
        parts["height"] = gr.Number(1024, label=I18N("height"), precision=0, elem_id="height")
    parts["size_note"] = gr.HTML("", elem_id="size-note")
    # variants (issue 19): N calls sent at once, each billed, as the info beside the choice says
    # (text choices: the gate passes a Radio's value as one of its choices, text)
    parts["variants"] = gr.Radio(
        [str(n) for n in range(1, MAX_VARIANTS + 1)],
        value="1",
        label=I18N("variants"),
        info=I18N("variants_info"),
        elem_id="variants",
    )
    with gr.Accordion(I18N("advanced"), open=False, elem_id="advanced"):
        parts["links"] = [
            gr.Textbox(label=I18N(f"url{i}"), info=I18N("url_info"), elem_id=f"url{i}") for i in (1, 2, 3)
        ]
        parts["model"] = gr.Textbox("auto", label=I18N("model"), info=I18N("model_info"), elem_id="model")
        parts["api_key"] = gr.Textbox(
            label=I18N("api_key"), info=I18N("api_key_info"), type="password", elem_id="api-key"
        )
    return parts


def result_panel(sharing: bool) -> dict:
    """The status line, the result on show (large), this edit's other results, its actions, the
    before/after slider and the API call. All but an empty-state line appear once there is a
    result, so the first screen stays small and loads fast."""
    parts: dict = {}
    parts["status"] = gr.Markdown("", elem_id="status")
    parts["empty"] = gr.Markdown(I18N("results_empty"), elem_id="results-empty")
    parts["result"] = gr.Image(
        label=I18N("result"),
        type="filepath",
        interactive=False,
        height=460,
        buttons=["download", "fullscreen"],
        alt_text=I18N("result_alt"),  # the image is inside a button, which takes its name from it
        visible=False,
        elem_id="result",
    )
    parts["gallery"] = gr.Gallery(
        label=I18N("results"),
        columns=4,
        height=140,
        object_fit="contain",
        fit_columns=False,
        allow_preview=False,
        buttons=["download_all"],
        interactive=False,
        visible=False,
        elem_id="results",
    )
    with gr.Column(visible=False, elem_id="actions") as parts["actions"]:
        with gr.Row():
            parts["reuse"] = gr.Button(I18N("continue"), size="sm", elem_id="continue")
            parts["share"] = gr.Button(I18N("share"), size="sm", visible=sharing, elem_id="share")
            parts["delete"] = gr.Button(I18N("delete"), size="sm", variant="stop", elem_id="delete")
            # carries the visitor's answer to "Delete this result?" (asked in app.js)
            parts["confirmed"] = gr.Checkbox(False, visible=False)
        with gr.Row():
            parts["share_box"] = gr.Textbox(
                label=I18N("share_link"),
                info=I18N("share_info"),
                buttons=["copy"],
                visible=False,
                scale=4,
                elem_id="share-link",
            )
            parts["revoke"] = gr.Button(I18N("revoke"), size="sm", visible=False, scale=1, elem_id="revoke")
        parts.update(chain_panel())
    # the whole record of the result on show (its provider's words escaped: webapp.opened)
    parts["record"] = gr.Markdown("", visible=False, latex_delimiters=[], elem_id="record")
    parts["compare"] = gr.ImageSlider(
        label=I18N("compare"),
        type="filepath",
        image_mode=None,
        max_height=460,
        visible=False,
        elem_id="compare",
    )
    with gr.Accordion(I18N("api_call"), open=False, visible=False, elem_id="api-call") as parts["api_panel"]:
        parts["curl"] = gr.Code(
            language="shell", label=I18N("api_curl"), buttons=["copy"], elem_id="api-curl"
        )
        parts["python"] = gr.Code(
            language="python", label=I18N("api_python"), buttons=["copy"], elem_id="api-python"
        )
        parts["gradio"] = gr.Code(
            language="python", label=I18N("api_gradio"), buttons=["copy"], elem_id="api-gradio"
        )
        parts["api_files"] = gr.File(
            label=I18N("api_files"),
            file_count="multiple",
            interactive=False,
            visible=False,
            elem_id="api-files",
        )
    return parts


def reorder_panel() -> dict:
    """Swap 图1/图2 or 图2/图3 (upload and link together), and the suggestion to renumber the
    instruction's 图N references after a swap (applied only on click)."""
    parts: dict = {}
    with gr.Row(elem_id="reorder"):
        parts["swap12"] = gr.Button(I18N("swap12"), size="sm", elem_id="swap12")
        parts["swap23"] = gr.Button(I18N("swap23"), size="sm", elem_id="swap23")
    with gr.Column(visible=False, elem_id="renumber") as parts["renumber"]:
        parts["renumber_text"] = gr.HTML("", elem_id="renumber-text")
        with gr.Row():
            parts["renumber_apply"] = gr.Button(I18N("swap_apply"), size="sm", elem_id="renumber-apply")
            parts["renumber_keep"] = gr.Button(I18N("swap_keep"), size="sm", elem_id="renumber-keep")
    return parts


def chain_panel() -> dict:
    """Under the result on show: "made from …" with a button that opens the parent, and the owner's
    choice to share the steps of the chain; shown only for a result made by Continue editing."""
    parts: dict = {}
    with gr.Row(elem_id="chain"):
        parts["made_from"] = gr.HTML("", visible=False, elem_id="made-from")
        parts["open_parent"] = gr.Button(I18N("open_parent"), size="sm", visible=False, elem_id="open-parent")
    parts["share_steps"] = gr.Checkbox(
        False, label=I18N("share_steps"), info=I18N("share_steps_info"), visible=False, elem_id="share-steps"
    )
    return parts


def views_panel() -> dict:
    """What changed and Download as (issue 18): under the before/after, shown with a result; the
    comparison is made only when asked for, so the first screen stays light."""
    parts: dict = {}
    with gr.Column(visible=False, elem_id="views") as parts["panel"]:
        parts["show"] = gr.Button(I18N("changes_show"), size="sm", elem_id="changes-show")
        parts["image"] = gr.Image(
            label=I18N("changes_view"),
            type="filepath",
            interactive=False,
            height=460,
            buttons=["fullscreen"],
            alt_text=I18N("changes_alt"),
            visible=False,
            elem_id="changes",
        )
        parts["text"] = gr.Markdown("", visible=False, elem_id="changes-text")
        with gr.Accordion(I18N("export"), open=False, elem_id="export"):
            with gr.Row():
                parts["format"] = gr.Radio(
                    list(FORMATS), value="PNG", label=I18N("export_format"), elem_id="export-format"
                )
                parts["quality"] = gr.Slider(
                    *QUALITY_RANGE,
                    value=DEFAULT_QUALITY,
                    step=1,
                    interactive=False,  # PNG first: lossless
                    label=I18N("export_quality"),
                    elem_id="export-quality",
                )
            parts["make"] = gr.Button(I18N("export_make"), size="sm", elem_id="export-make")
            parts["file"] = gr.File(label=I18N("export_file"), visible=False, elem_id="export-file")
    return parts


def wire_views(handlers: Handlers, shown: dict, state: dict, views: dict) -> None:
    """The events of `views_panel`: it follows the result on show; what changed and the file are made
    on demand, in worker threads (webapp.changes, webapp.exports)."""
    shown["result"].change(
        handlers.reset_views,
        inputs=state["open_state"],
        outputs=[views["panel"], views["image"], views["text"], views["file"]],
        queue=False,
        **PRIVATE,
    )
    views["show"].click(
        handlers.show_changes,
        inputs=state["open_state"],
        outputs=[views["image"], views["text"]],
        show_progress_on=[views["image"]],
        **PRIVATE,
    )
    views["format"].change(
        lambda fmt: gr.update(interactive=fmt != "PNG"),
        inputs=views["format"],
        outputs=views["quality"],
        queue=False,
        **PRIVATE,
    )
    views["make"].click(
        handlers.export_file,
        inputs=[state["open_state"], views["format"], views["quality"]],
        outputs=views["file"],
        **PRIVATE,
    )


def examples_panel(form: dict) -> None:
    """Examples that fill the form; nothing runs (or is billed) until the visitor presses Edit."""
    gr.Examples(
        [
            [str(EXAMPLES_DIR / one), two and str(EXAMPLES_DIR / two), None, text, size]
            for _, one, two, text, size in EXAMPLES
        ],
        inputs=[*form["images"], form["prompt"], form["size"]],
        label=I18N("examples"),
        example_labels=[label for label, *_ in EXAMPLES],
        cache_examples=False,  # Spaces sets GRADIO_CACHE_EXAMPLES: caching would pay for every example
        examples_per_page=8,
        api_visibility="private",
    )


def region_example_panel(form: dict, state: dict, handlers: Handlers) -> None:
    """One region edit to try: fills 图1 and the instruction, and paints the example's mask."""
    label, image, _mask, text = REGION_EXAMPLE  # the mask is chosen on the server, never sent
    gr.Examples(
        [[str(EXAMPLES_DIR / image), text]],
        inputs=[form["images"][0], form["prompt"]],
        outputs=[
            form["region_panel"],
            form["region"],
            form["paint"],
            state["painting"],
            state["preset_mask"],
        ],
        fn=handlers.load_region_example,
        run_on_click=True,
        cache_examples=False,
        api_visibility="private",
        label=I18N("region_example"),
        example_labels=[label],
    )


def history_panel() -> gr.Gallery:
    """This browser's results, newest first; a click opens one in the result panel."""
    return gr.Gallery(
        label=I18N("history"),
        columns=8,
        height=190,
        object_fit="cover",
        fit_columns=False,
        allow_preview=False,
        interactive=False,
        visible=False,
        elem_id="history",
    )


def build_demo(settings: AppSettings, backend: Backend | None = None) -> gr.Blocks:
    """The whole app: the page for people and the `edit` endpoint for scripts and agents."""
    accept_heif_uploads()  # iPhone photos: Gradio's upload check opens them; the page shows a JPEG
    for note in settings.notes:
        logging.getLogger("webapp").warning(note)
    backend = backend or Backend(settings)
    handlers = Handlers(settings, backend)
    # The title stays a plain string: it is also the MCP server's name (app.js translates the tab).
    with gr.Blocks(title="AI Image Edit · Juhe API") as demo:
        state = {
            "painting": gr.State(False),
            "preset_mask": gr.State(None),  # the region example's mask, painted in for the visitor
            "history_state": gr.State([]),
            "results_state": gr.State([]),
            "open_state": gr.State(None),
            "chain_state": gr.State(None),  # {"id", "path"} of the result Continue editing put in 图1
            "swap_order": gr.State([1, 2, 3]),  # where each slot's image went since the last renumber
            "browser_ids": gr.BrowserState(
                [],
                storage_key=HISTORY_STORAGE_KEY,
                secret=backend.store.browser_secret(settings.browser_secret),
            ),
            "timer": gr.Timer(2.0, active=False),  # collects results of cancelled edits
        }
        language = header(settings.offline)
        language.click(None, js="() => window.juheSwitchLanguage()", **PRIVATE)
        with gr.Row(equal_height=False, elem_id="workspace"):
            with gr.Column(scale=5, elem_id="form-panel"):
                form = input_panel()
            with gr.Column(scale=4, elem_id="results-panel"):
                shown = result_panel(settings.sharing)
                views = views_panel()
        batch = batch_panel(SIZE_CHOICES)  # one instruction over many photos (issue 19), closed at first
        history = history_panel()
        board = board_panel()  # share several results as one link (issue 19)
        examples_panel(form)
        region_example_panel(form, state, handlers)
        wire(demo, settings, handlers, form, shown, history, state)
        wire_views(handlers, shown, state, views)
        wire_boards(BoardHandlers(settings, backend), board, state["history_state"], shown["status"])
        wire_batch(BatchHandlers(settings, backend, handlers), batch, form, history, state)
    # a waiting visitor's place in the queue, sent every QUEUE_STATUS_S; Gradio's default ("auto")
    # sent every waiting visitor a new one each time an event started: with 256 joining at once,
    # tens of thousands of messages per burst (a fifth of the app's process's CPU)
    demo.queue(
        max_size=settings.queue_size,
        default_concurrency_limit=settings.concurrency,
        status_update_rate=QUEUE_STATUS_S,
    )
    # every event's values pass the gate; the files the app keeps in its cache are anyone's to send
    backend.issued.public = lambda: kept_files(demo)
    install_all(demo, Gate(backend.issued, request_visitor(settings)))
    return demo


def request_visitor(settings: AppSettings):
    """The gate's name for the caller of an event: the visitor key every limit counts by."""

    def visitor(request) -> str | None:
        if isinstance(request, list):
            request = request[0] if request else None
        if request is None:
            return None
        client = getattr(request, "client", None)
        headers = getattr(request, "headers", None) or {}
        return visitor_key(
            client.host if client else None,
            headers.get("x-forwarded-for"),
            settings.trusted_proxies,
            settings.on_space,
        )

    return visitor


def wire(demo: gr.Blocks, settings: AppSettings, handlers: Handlers, form, shown, history, state) -> None:
    """Every event of the page (private: only `edit` is an endpoint for programs), and the public
    `edit` endpoint."""
    page = {**shown, **state, "history": history, "cancel": form["cancel"]}
    outputs = [page[name] for name in VIEW]

    gr.api(
        handlers.edit,
        api_name="edit",
        queue=False,  # MCP runs it directly: a fresh session and the caller's own address
        concurrency_limit=settings.concurrency,
        concurrency_id="edit",
    )
    # "Editing…" and Cancel from the click on, not once the server's first answer arrives (wired
    # before the run: the page starts a click's events in order, each after the last one's request)
    form["run"].click(
        None,
        inputs=shown["status"],
        outputs=[shown["status"], form["cancel"]],
        js="(status) => window.juheRunStarts(status)",
        **PRIVATE,
    )
    run = form["run"].click(
        handlers.edit_image,
        inputs=[
            *form["images"],
            form["prompt"],
            form["size"],
            form["width"],
            form["height"],
            form["model"],
            *form["links"],
            form["api_key"],
            form["region"],
            state["painting"],
            state["preset_mask"],
            state["history_state"],
            state["browser_ids"],
            state["chain_state"],
            form["variants"],
        ],
        outputs=outputs,
        concurrency_limit=settings.concurrency,
        concurrency_id="edit",
        trigger_mode="once",
        **PRIVATE,
        # Gradio's tracker would cover the result on show with "Error" until dismissed: progress and
        # failures are said in the status line by the handler instead (a gr.Error still toasts)
        show_progress="hidden",
    )
    # a run refused before its handler (the gate, an unreadable image) leaves nothing to cancel, and
    # the status it found stands
    run.failure(
        None,
        inputs=shown["status"],
        outputs=[shown["status"], form["cancel"]],
        js="(status) => window.juheRunRefused(status)",
        **PRIVATE,
    )
    form["cancel"].click(None, js="() => window.juheStopWaiting()", **PRIVATE)
    form["cancel"].click(handlers.cancel_edit, outputs=outputs, cancels=[run], queue=False, **PRIVATE)
    # what a Cancel said stands against the cancelled run's late progress (app.js)
    shown["status"].change(
        None,
        inputs=shown["status"],
        outputs=shown["status"],
        js="(status) => window.juheStatusShown(status)",
        **PRIVATE,
    )
    state["timer"].tick(
        handlers.collect_late,
        inputs=[state["history_state"], state["browser_ids"]],
        outputs=outputs,
        **PRIVATE,
    )
    demo.load(handlers.restore_history, inputs=state["browser_ids"], outputs=outputs, **PRIVATE)
    demo.load(None, js="() => window.juheTitle()", **PRIVATE)

    shown["gallery"].select(handlers.open_result, inputs=state["results_state"], outputs=outputs, **PRIVATE)
    history.select(handlers.open_history, inputs=state["history_state"], outputs=outputs, **PRIVATE)
    region = [form["region_panel"], form["region"], form["paint"], state["painting"], state["preset_mask"]]
    shown["reuse"].click(
        handlers.reuse_result,
        inputs=state["open_state"],
        outputs=[form["images"][0], form["links"][0], *region],
        **PRIVATE,
    )
    shown["share"].click(
        handlers.share_result, inputs=[state["open_state"], shown["share_steps"]], outputs=outputs, **PRIVATE
    )
    shown["revoke"].click(handlers.revoke_share, inputs=state["open_state"], outputs=outputs, **PRIVATE)
    shown["delete"].click(
        handlers.delete_result,
        inputs=[
            shown["confirmed"],
            state["open_state"],
            state["history_state"],
            state["results_state"],
            state["browser_ids"],
            *form["images"],
        ],
        outputs=[*outputs, *form["images"]],
        js="(...values) => window.juheConfirmDelete(...values)",
        **PRIVATE,
    )

    uploads = []
    for image in form["images"]:
        # Gradio checks an image when an event takes it: done at upload, a bad file is refused at
        # once; an iPhone photo (HEIC, which browsers cannot show) is replaced by a JPEG of it
        uploads.append(image.upload(handlers.accept_upload, inputs=image, outputs=image, **PRIVATE))
        uploads[-1].failure(lambda: None, outputs=image, queue=False, **PRIVATE)
    form["paint"].click(handlers.open_region, inputs=form["images"][0], outputs=region, **PRIVATE)
    form["paint_done"].click(handlers.close_region, outputs=region, queue=False, **PRIVATE)
    # the visitor's own new 图1 (not one an example or Continue editing puts there): after the upload's
    # own event, and only when it passed, so a bad file is checked (and refused) once
    follow = {
        "fn": handlers.follow_image1,
        "inputs": [form["images"][0], state["painting"]],
        "outputs": region,
    }
    uploads[0].success(**follow, **PRIVATE)
    form["images"][0].clear(**follow, **PRIVATE)
    gr.on(
        [form["prompt"].change, *(image.change for image in form["images"])],
        None,
        inputs=[form["prompt"], *form["images"]],
        outputs=form["count"],
        js="(...values) => window.juheCount(...values)",
        **PRIVATE,
    )
    gr.on(
        [link.change for link in form["links"]],
        None,
        inputs=form["links"],
        outputs=form["link_note"],
        js="(...links) => window.juheLinkNote(...links)",
        **PRIVATE,
    )
    form["size"].change(
        handlers.show_custom_size, inputs=form["size"], outputs=form["custom_row"], queue=False, **PRIVATE
    )
    gr.on(
        [form["size"].change, form["width"].change, form["height"].change],
        None,
        inputs=[form["size"], form["width"], form["height"]],
        outputs=[form["size_note"], form["run"]],  # the note that says "nothing is sent" disables Edit
        js="(size, width, height) => window.juheSizeCheck(size, width, height)",
        **PRIVATE,
    )
    wire_chains(handlers, form, shown, history, state, outputs)


def wire_chains(handlers: Handlers, form: dict, shown: dict, history, state: dict, outputs: list) -> None:
    """Edit chains and reordering 图1-图3 (issue 18)."""
    image1 = form["images"][0]
    shown["reuse"].click(
        handlers.remember_parent, inputs=state["open_state"], outputs=state["chain_state"], **PRIVATE
    )
    # the visitor's own new 图1 ends the chain (an example or a swap is caught at the run: see chain_parent)
    gr.on([image1.upload, image1.clear], handlers.forget_parent, outputs=state["chain_state"], **PRIVATE)
    state["open_state"].change(
        handlers.show_made_from,
        inputs=[state["open_state"], state["history_state"]],
        outputs=[shown["made_from"], shown["open_parent"], shown["share_steps"]],
        **PRIVATE,
    )
    shown["open_parent"].click(
        handlers.open_parent, inputs=[state["open_state"], state["history_state"]], outputs=outputs, **PRIVATE
    )
    suggestion = [form["renumber_text"], form["renumber"]]
    region = [form["region_panel"], form["region"], form["paint"], state["painting"], state["preset_mask"]]
    for a, b in ((1, 2), (2, 3)):
        swap = form[f"swap{a}{b}"].click(
            handlers.swapper(a, b),
            inputs=[
                form["images"][a - 1],
                form["images"][b - 1],
                form["links"][a - 1],
                form["links"][b - 1],
                form["prompt"],
                state["swap_order"],
            ],
            outputs=[
                form["images"][a - 1],
                form["images"][b - 1],
                form["links"][a - 1],
                form["links"][b - 1],
                state["swap_order"],
                *suggestion,
            ],
            **PRIVATE,
        )
        if a == 1:  # a painting was made for the old 图1: paint on the new one
            swap.then(handlers.follow_image1, inputs=[image1, state["painting"]], outputs=region, **PRIVATE)
    form["prompt"].blur(
        handlers.suggest_renumber, inputs=[form["prompt"], state["swap_order"]], outputs=suggestion, **PRIVATE
    )
    form["renumber_apply"].click(
        handlers.apply_renumber,
        inputs=[form["prompt"], state["swap_order"]],
        outputs=[form["prompt"], state["swap_order"], *suggestion],
        **PRIVATE,
    )
    form["renumber_keep"].click(handlers.keep_prompt, outputs=[state["swap_order"], *suggestion], **PRIVATE)


def middleware(settings: AppSettings, backend: Backend, demo: gr.Blocks | None = None) -> list[Middleware]:
    """The ASGI middleware in front of Gradio (`webapp.middleware`), share pages included."""
    share = Middleware(
        BoardPages,  # share pages, boards' pages too
        store=backend.store,
        enabled=settings.sharing,
        public_url=default_public_url(settings.public_url, os.environ.get("SPACE_HOST")),
        trusted_proxies=settings.trusted_proxies,
        behind_proxy=settings.on_space,
    )
    guards = stack(
        settings,
        backend.issued,
        editor=lambda: _find(demo, "region"),
        image_fns=lambda: [i for i, fn in (demo.fns.items() if demo else ()) if fn.api_name == "edit"],
        share=share,
    )
    # the page is compressed outermost, after every middleware that writes into it (the login
    # script, the language switch's choice) has done so: they leave an encoded page alone
    return [Middleware(CompressPage), *guards, Middleware(PageLanguage)]


def _find(demo: gr.Blocks | None, elem_id: str):
    """The component of `demo` with this elem_id, or None."""
    blocks = demo.blocks.values() if demo is not None else ()
    return next((block for block in blocks if getattr(block, "elem_id", None) == elem_id), None)


def launch_options(settings: AppSettings, backend: Backend, demo: gr.Blocks | None = None) -> dict:
    """Keyword arguments of `demo.launch()` for these settings and this backend."""
    # uvicorn rewrites the client address from X-Forwarded-For itself; make it trust the same
    # proxies as the rate limit (an explicit FORWARDED_ALLOW_IPS still wins).
    os.environ.setdefault("FORWARDED_ALLOW_IPS", forwarded_allow_ips(settings.trusted_proxies))
    options = {
        "i18n": I18N,
        "css_paths": [STATIC / "app.css"],
        "head": page_script() + f"<script>{(STATIC / 'app.js').read_text(encoding='utf-8')}</script>",
        "theme": gr.themes.Soft(primary_hue="orange", secondary_hue="amber"),
        "max_file_size": settings.max_upload_bytes,
        "max_threads": max(40, settings.concurrency + 8),
        "footer_links": ["api"],
        # Gradio's run history keeps every call's inputs in the browser's localStorage in plain
        # text, the visitor's own API key included; the page promises that key is never stored.
        "run_history": False,
        # Gradio's deep-link route would write a session's inputs, that key too, to disk: closed.
        "app_kwargs": {
            "middleware": middleware(settings, backend, demo),
            "lifespan": sweep_lifespan(settings, backend.issued.files),
        },
        "mcp_server": settings.mcp_enabled,
        # Client-side rendering, chosen rather than inherited: the Spaces image sets
        # GRADIO_SSR_MODE=true, and under SSR the public port is a Node proxy that never forwards
        # /share/... (a share link opened the app) and adds no X-Forwarded-For (every visitor of a
        # self-hosted app became 127.0.0.1: one key for rate limits, uploads and the login
        # throttle). Measured, SSR opened the page no faster. An explicit False wins over the variable.
        "ssr_mode": False,
    }
    if settings.access_password:
        options["auth"] = password_check(settings.access_password)
        options["auth_message"] = AUTH_MESSAGE
    return options
