"""The web app of the Juhe AI image-edit API: edit one to three images in the browser.

Live with JUHE_API_KEY (environment, .env or a Space secret); otherwise an offline preview
against the built-in simulator. Run: `python app.py`.
"""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

import gradio as gr
from gradio.utils import get_upload_folder
from starlette.middleware import Middleware

from juhe import JuheError, parse_size
from webapp.backend import Backend
from webapp.components import checked_image
from webapp.limits import RateLimiter, client_address, forwarded_allow_ips, parse_trusted_proxies
from webapp.memory import return_large_buffers
from webapp.routes import CloseRoutes
from webapp.texts import I18N, say, wants_chinese

# --- constants ---------------------------------------------------------------------------------

EXAMPLES_DIR = Path(__file__).parent / "examples"
CONCURRENCY = int(os.environ.get("JUHE_CONCURRENCY", "16"))  # bound by a remote API, not our CPU
QUEUE_SIZE = int(os.environ.get("JUHE_QUEUE_SIZE", "64"))
MAX_UPLOAD = os.environ.get("JUHE_MAX_UPLOAD", "20mb")
RATE_LIMIT = int(os.environ.get("JUHE_RATE_LIMIT", "0"))  # edits per minute per visitor; 0 = off
TRUSTED_PROXIES = parse_trusted_proxies(os.environ.get("JUHE_TRUSTED_PROXIES", ""))
ACCESS_PASSWORD = os.environ.get("JUHE_ACCESS_PASSWORD", "")
HISTORY_KEPT = 60
PROMPT_LIMIT = 800
NAMES_AN_IMAGE = re.compile(r"图\s*[123一二三]|(image|picture|photo|pic|img)\s*#?\s*[123]", re.IGNORECASE)

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
PRESET_SIZES = {value for _, value in SIZE_CHOICES}

# (label, 图1, 图2, prompt, size)
EXAMPLES = [
    ("🐱→🐶 换物体 · Object swap", "cat.jpg", None, "将图中的小猫换成小狗", "auto"),
    ("🎨 Style · 风格", "coffee.jpg", None, "Turn this photo into a watercolor painting", "auto"),
    ("🪐 换背景 · Background", "astronaut.jpg", None, "把背景换成火星表面, 人物保持不变", "1024*1024"),
    ("🔤 Text · 改文字", "coffee_sign.jpg", None, "Change the word “COFFEE” on the sign to “TEA”", "auto"),
    (
        "🚀 两图合成 · 图1+图2",
        "astronaut.jpg",
        "rocket.jpg",
        "让图1中的宇航员站在图2的火箭发射场前",
        "1248*832",
    ),
    (
        "☕ Two images · 图1+图2",
        "cat.jpg",
        "coffee.jpg",
        "Put the cat from 图1 on the table beside the cup in 图2",
        "auto",
    ),
    ("🌌 夜空 · Night sky", "rocket.jpg", None, "把天空改成布满星星的夜空", "auto"),
]

# Live character count and a hint when several images are named in no way (runs in the browser).
COUNTER_JS = """
(text, a, b, c) => {
  const zh = (navigator.language || "").toLowerCase().startsWith("zh");
  const n = [...(text || "")].length;
  const images = [a, b, c].filter(Boolean).length;
  const named = /图\\s*[123一二三]|(image|picture|photo|pic|img)\\s*#?\\s*[123]/i.test(text || "");
  let out = `<span class="${n > 800 ? 'over' : ''}">${n} / 800</span>`;
  if (n > 800) out += zh ? " · 超出部分会被截断" : " · the rest will be cut off";
  if (images >= 2 && !named && n > 0)
    out += zh ? " · 多图编辑请用 图1、图2、图3 指代图片" : " · with several images, name them 图1, 图2, 图3";
  return out;
}
"""

# A double click on the run button is one edit. trigger_mode="once" skips clicks only once the first
# call is registered, which the page does after an await; a quick second click (more so while 图1 is
# still uploading) slips in before that and starts a second paid call. This drops a double click's
# second click before Gradio sees it; keyboard activation (detail 0) is untouched. It goes in `head`
# rather than `js`: head scripts run before the button is rendered, `js` sometimes after.
RUN_ONCE_HEAD = """<script>
document.addEventListener("click", (event) => {
  if (event.detail > 1 && event.target instanceof Element && event.target.closest("#run")) {
    event.stopImmediatePropagation();
    event.preventDefault();
  }
}, true);
</script>"""

CSS = """
#mode-banner {padding: 10px 14px; border-radius: 10px;}
#mode-banner.offline {background: #fff7e0; border: 1px solid #f0c36d; color: #5c4400;}
#mode-banner.live {background: #e9f7ef; border: 1px solid #8fd19e; color: #1d5130;}
.dark #mode-banner.offline {background: #3a3000; color: #ffe9a8;}
.dark #mode-banner.live {background: #0f2e1b; color: #b8f0c8;}
#prompt-count {font-size: 0.85em; opacity: 0.8; margin-top: -6px;}
#prompt-count .over {color: #c0392b; font-weight: 600;}
#run {min-height: 52px; font-size: 1.1em;}
"""

backend = Backend()
limiter = RateLimiter(RATE_LIMIT)


# --- handlers ----------------------------------------------------------------------------------


def user_error(message: str, title: str = "错误 · Error", duration: float | None = 10) -> gr.Error:
    """A visitor-facing error: shown as a toast, not logged with a traceback (it is expected)."""
    return gr.Error(message, title=title, duration=duration, print_exception=False)


def _collect_images(slots: list[str | None], links: list[str | None]) -> list[str]:
    """One input per slot (a link wins over an upload); 图 numbers must not shift."""
    for number, link in enumerate(links, start=1):
        # Only http(s): the client also reads local paths and data URIs, and a path typed here
        # would make the server read its own files (another visitor's results) and send them out.
        if (link or "").strip() and not (link or "").strip().lower().startswith(("http://", "https://")):
            raise user_error(
                f"图{number}的链接必须以 http:// 或 https:// 开头 / The 图{number} (Image {number}) link "
                "must be a public http:// or https:// URL.",
                title="链接 · Link",
            )
    chosen = [(link or "").strip() or upload for upload, link in zip(slots, links, strict=True)]
    while chosen and not chosen[-1]:
        chosen.pop()
    if not chosen:
        raise user_error("请在图1中放入图片 / Put an image in 图1 (Image 1).", title="图1 · Image 1")
    if not all(chosen):
        missing = next(i for i, item in enumerate(chosen, start=1) if not item)
        raise user_error(
            f"图{missing}为空, 但后面的图片已设置; 请按顺序放入图片 / 图{missing} (Image {missing}) is "
            "empty while a later slot is set; fill the slots in order.",
            title="图片顺序 · Image order",
        )
    return chosen


def _error_message(exc: JuheError) -> tuple[str, str]:
    """Title and text of the toast for a `JuheError`."""
    title = f"错误 Error {exc.code}" if exc.code else "错误 Error"
    return title, str(exc)


async def edit(
    image1: str | None,
    image2: str | None = None,
    image3: str | None = None,
    prompt: str = "",
    size: str | None = "auto",
    model: str | None = "auto",
    url1: str | None = None,
    url2: str | None = None,
    url3: str | None = None,
    api_key: str | None = None,
    history: list | None = None,
    request: gr.Request = None,
    progress: gr.Progress = gr.Progress(),
):
    """Edit one to three images as the instruction says, save the results and return them.

    Args:
        image1: 图1, the image to edit (required): a file or an uploaded image.
        image2: 图2, an optional second image; name it "图2" in the prompt.
        image3: 图3, an optional third image; name it "图3" in the prompt.
        prompt: The edit instruction in Chinese or English, at most 800 characters, e.g.
            "把图中的小猫换成小狗". With several images, refer to them as 图1, 图2, 图3.
        size: Output size "W*H" with sides in [512, 2048], e.g. "1024*1024"; "auto" keeps the
            aspect ratio of 图1.
        model: The provider's model name; "auto" unless the account has another one enabled.
        url1: A public http(s) link used instead of image1.
        url2: A public http(s) link used instead of image2.
        url3: A public http(s) link used instead of image3.
        api_key: Your own Juhe API key for this call only; never stored.
    """
    chinese = wants_chinese(request.headers.get("accept-language") if request else None)
    images = _collect_images([image1, image2, image3], [url1, url2, url3])
    if RATE_LIMIT and request is not None:
        address = client_address(
            request.client.host if request.client else None,
            request.headers.get("x-forwarded-for"),
            TRUSTED_PROXIES,
        )
        wait = limiter.retry_after(f"session:{request.session_hash}", f"address:{address}")
        if wait:
            raise user_error(
                f"编辑太频繁, 请 {wait:.0f} 秒后再试 / Too many edits: at most {RATE_LIMIT} per minute. "
                f"Try again in {wait:.0f} s.",
                title="限流 · Rate limit",
            )
    if len(images) >= 2 and not NAMES_AN_IMAGE.search(prompt or ""):
        gr.Warning(
            "多图编辑时请用 图1、图2、图3 指代图片, 否则结果不可预测 / With several images, name them "
            "图1, 图2, 图3 in the instruction; otherwise the result is unpredictable."
        )
    if size == "custom":
        size = "auto"

    def on_stage(stage: str) -> None:
        share = {"preparing": 0.05, "waiting": 0.3, "saving": 0.9}[stage]
        progress(share, desc=say(stage, chinese))

    try:
        saved = await backend.edit(prompt, images, size, model, (api_key or "").strip() or None, on_stage)
    except JuheError as exc:
        title, message = _error_message(exc)
        raise user_error(message, title=title, duration=None) from None

    cache_dir = get_upload_folder()  # results inside it are served without hashing on the event loop
    shown = await asyncio.to_thread(lambda: [backend.display_path(p, cache_dir) for p in saved.paths])
    result = saved.result
    history = [(path, result.prompt) for path in shown] + list(history or [])
    history = history[:HISTORY_KEPT]
    for note in result.warnings:
        gr.Warning(note)
    status = (
        f"✅ **{say('done', chinese)}** · {say('order', chinese)} `{result.order_id}` · "
        f"{result.elapsed_s:.1f} s · {say('saved', chinese)} `{_relative(saved.paths[0])}`"
        + (f" · *{say('simulated', chinese)}*" if saved.simulated else "")
    )
    before = image1 if image1 and not (url1 or "").strip() else None
    compare = (before, shown[0]) if before else None
    return shown, compare, status, history, history, shown


def mark_failed(results: list[str] | None, request: gr.Request = None):
    """After a failed edit: keep the earlier results on show and say they are the earlier ones."""
    chinese = wants_chinese(request.headers.get("accept-language") if request else None)
    return results or [], f"⚠️ {say('failed', chinese)}"


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def select_result(results: list[str] | None, image1: str | None, evt: gr.SelectData):
    """Remember the clicked result and show it against 图1."""
    chosen = (results or [None])[evt.index] if results and evt.index < len(results) else None
    compare = (image1, chosen) if image1 and chosen else gr.skip()
    return chosen, compare


def reuse_result(selected: str | None, results: list[str] | None):
    """Make the selected (or first) result the new 图1."""
    chosen = selected or (results[0] if results else None)
    if not chosen:
        raise user_error("还没有结果 / There is no result to continue from yet.")
    return chosen


def pick_size(choice: str):
    """Show the width and height boxes for a custom size and write their value into `size`."""
    if choice == "custom":
        return gr.update(visible=True), "1024*1024", 1024, 1024
    if choice in PRESET_SIZES:
        return gr.update(visible=False), gr.skip(), gr.skip(), gr.skip()
    try:  # a typed "W*H": show it in the width and height boxes
        width, height = parse_size(choice).split("*")
    except (JuheError, ValueError):
        return gr.update(visible=True), gr.skip(), gr.skip(), gr.skip()
    return gr.update(visible=True), gr.skip(), int(width), int(height)


def set_custom_size(width: float | None, height: float | None) -> str:
    """The `W*H` of the custom width and height."""
    return f"{int(width or 1024)}*{int(height or 1024)}"


# --- layout ------------------------------------------------------------------------------------


def build_demo() -> gr.Blocks:
    """The page: inputs on the left, results on the right, history and examples below."""
    with gr.Blocks(title="AI Image Edit · Juhe API") as demo:
        history_state = gr.State([])
        results_state = gr.State([])
        selected_state = gr.State(None)

        gr.Markdown(I18N("title"))
        gr.Markdown(I18N("subtitle"))
        gr.Markdown(
            I18N("offline_banner" if backend.offline else "live_banner"),
            elem_id="mode-banner",
            elem_classes=["offline" if backend.offline else "live"],
        )
        with gr.Row(equal_height=False):
            with gr.Column(scale=5):
                with gr.Row():
                    image_boxes = [
                        checked_image(
                            i,
                            label=I18N(f"image{i}"),
                            type="filepath",
                            image_mode=None,
                            sources=["upload", "clipboard"],
                            height=220,
                            min_width=100,
                            elem_id=f"image{i}",
                        )
                        for i in (1, 2, 3)
                    ]
                prompt_box = gr.Textbox(
                    label=I18N("prompt"),
                    placeholder=I18N("prompt_placeholder"),
                    lines=3,
                    max_lines=8,
                    elem_id="prompt",
                )
                count_html = gr.HTML("0 / 800", elem_id="prompt-count")
                with gr.Row():
                    size_box = gr.Dropdown(
                        SIZE_CHOICES,
                        value="auto",
                        label=I18N("size"),
                        allow_custom_value=True,
                        elem_id="size",
                        scale=3,
                    )
                    run_button = gr.Button(I18N("run"), variant="primary", elem_id="run", scale=2)
                with gr.Row(visible=False) as custom_row:
                    width_box = gr.Number(1024, label=I18N("width"), minimum=512, maximum=2048, step=16)
                    height_box = gr.Number(1024, label=I18N("height"), minimum=512, maximum=2048, step=16)
                with gr.Accordion(I18N("advanced"), open=False):
                    url_boxes = [
                        gr.Textbox(label=I18N(f"url{i}"), info=I18N("url_info"), elem_id=f"url{i}")
                        for i in (1, 2, 3)
                    ]
                    model_box = gr.Textbox(
                        "auto", label=I18N("model"), info=I18N("model_info"), elem_id="model"
                    )
                    key_box = gr.Textbox(
                        label=I18N("api_key"),
                        info=I18N("api_key_info"),
                        type="password",
                        elem_id="api-key",
                    )
                gr.Examples(
                    [
                        [str(EXAMPLES_DIR / one), two and str(EXAMPLES_DIR / two), None, text, size]
                        for _, one, two, text, size in EXAMPLES
                    ],
                    inputs=[*image_boxes, prompt_box, size_box],
                    label=I18N("examples"),
                    example_labels=[label for label, *_ in EXAMPLES],
                    cache_examples=False,
                    examples_per_page=8,
                )

            with gr.Column(scale=4):
                results_gallery = gr.Gallery(
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
                status_md = gr.Markdown(I18N("status_idle"), elem_id="status")
                continue_button = gr.Button(I18N("continue"), size="sm", elem_id="continue")
                compare_slider = gr.ImageSlider(
                    label=I18N("compare"),
                    type="filepath",
                    image_mode=None,
                    max_height=420,
                    elem_id="compare",
                )
        history_gallery = gr.Gallery(
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

        # --- wiring ---
        run_button.click(
            edit,
            inputs=[*image_boxes, prompt_box, size_box, model_box, *url_boxes, key_box, history_state],
            outputs=[
                results_gallery,
                compare_slider,
                status_md,
                history_gallery,
                history_state,
                results_state,
            ],
            api_name="edit",
            concurrency_limit=CONCURRENCY,
            concurrency_id="edit",
            trigger_mode="once",
            show_progress_on=[results_gallery],
        ).failure(
            mark_failed,
            inputs=results_state,
            outputs=[results_gallery, status_md],
            api_visibility="private",
            queue=False,
        )
        for source in (prompt_box, *image_boxes):
            source.change(
                None,
                inputs=[prompt_box, *image_boxes],
                outputs=count_html,
                js=COUNTER_JS,
                queue=False,
                api_visibility="private",
            )
        results_gallery.select(
            select_result,
            inputs=[results_state, image_boxes[0]],
            outputs=[selected_state, compare_slider],
            api_visibility="private",
        )
        continue_button.click(
            reuse_result,
            inputs=[selected_state, results_state],
            outputs=image_boxes[0],
            api_visibility="private",
        )
        size_box.input(
            pick_size,
            inputs=size_box,
            outputs=[custom_row, size_box, width_box, height_box],
            api_visibility="private",
            queue=False,
        )
        for box in (width_box, height_box):
            box.input(
                set_custom_size,
                inputs=[width_box, height_box],
                outputs=size_box,
                api_visibility="private",
                queue=False,
            )
    demo.queue(max_size=QUEUE_SIZE, default_concurrency_limit=CONCURRENCY)
    return demo


def launch_options() -> dict:
    """Keyword arguments of `demo.launch()`, shared by `__main__` and the tests."""
    # uvicorn rewrites the client address from X-Forwarded-For itself; make it trust the same
    # proxies as the rate limit (an explicit FORWARDED_ALLOW_IPS still wins).
    os.environ.setdefault("FORWARDED_ALLOW_IPS", forwarded_allow_ips(TRUSTED_PROXIES))
    options = {
        "i18n": I18N,
        "css": CSS,
        "head": RUN_ONCE_HEAD,
        "theme": gr.themes.Soft(primary_hue="orange", secondary_hue="amber"),
        "max_file_size": MAX_UPLOAD,
        "max_threads": max(40, CONCURRENCY + 8),
        "footer_links": ["api"],
        # Gradio's run history keeps every call's inputs in the browser's localStorage in plain
        # text, the visitor's own API key included; the page promises that key is never stored.
        "run_history": False,
        # Gradio's deep-link route would write a session's inputs, that key too, to disk: closed.
        "app_kwargs": {"middleware": [Middleware(CloseRoutes)]},
    }
    if ACCESS_PASSWORD:
        options["auth"] = lambda _user, password: password == ACCESS_PASSWORD
        options["auth_message"] = "输入访问密码 (用户名任意) / Enter the access password (any user name)."
    return options


demo = build_demo()

if __name__ == "__main__":
    return_large_buffers()
    demo.launch(**launch_options())
