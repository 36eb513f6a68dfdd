"""The floor for the app benchmarks: a Gradio app with app.py's `/edit` endpoint that does nothing.

The endpoint has the same inputs and outputs as app.py's (three images, prompt, size, model, three
links, key and history in; result gallery, before/after slider, status, history gallery and two
states out) and the same queue and concurrency settings, so gradio_client uploads, waits and
downloads the same way. Its async handler only sleeps as long as the simulated provider takes
(BARE_APP_SLEEP, default 2 s) and returns the input image wherever app.py returns a result.
Run: `python bare_app.py` (GRADIO_SERVER_PORT picks the port).

With BARE_APP_MINIMAL=1 the endpoint is the smallest possible instead: one image in, the same image
out (used for a reported side measure).
"""

from __future__ import annotations

import asyncio
import os

import gradio as gr

SLEEP_S = float(os.environ.get("BARE_APP_SLEEP", "2"))
CONCURRENCY = int(os.environ.get("JUHE_CONCURRENCY", "16"))
MINIMAL = os.environ.get("BARE_APP_MINIMAL") == "1"


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
):
    """Wait like the provider, then hand the first image back as the result."""
    await asyncio.sleep(SLEEP_S)
    shown = [image1]
    history = [(image1, prompt)] + list(history or [])
    return shown, (image1, image1), "done", history, history, shown


async def echo(image1: str | None, prompt: str = ""):
    """The minimal endpoint: wait like the provider, return the image."""
    await asyncio.sleep(SLEEP_S)
    return image1


def build_minimal() -> gr.Blocks:
    with gr.Blocks(title="bare minimal") as minimal:
        image = gr.Image(type="filepath", image_mode=None, label="image1")
        prompt_box = gr.Textbox(label="prompt")
        result = gr.Image(type="filepath", label="result")
        gr.Button("run").click(
            echo, inputs=[image, prompt_box], outputs=result, api_name="edit", concurrency_limit=CONCURRENCY
        )
        minimal.queue(max_size=64, default_concurrency_limit=CONCURRENCY)
    return minimal


with gr.Blocks(title="bare") as demo:
    history_state = gr.State([])
    results_state = gr.State([])
    image_boxes = [gr.Image(type="filepath", image_mode=None, label=f"image{i}") for i in (1, 2, 3)]
    prompt_box = gr.Textbox(label="prompt")
    size_box = gr.Dropdown(["auto", "1024*1024"], value="auto", label="size", allow_custom_value=True)
    model_box = gr.Textbox("auto", label="model")
    url_boxes = [gr.Textbox(label=f"url{i}") for i in (1, 2, 3)]
    key_box = gr.Textbox(label="api key", type="password")
    run_button = gr.Button("run")
    results_gallery = gr.Gallery(label="results")
    compare_slider = gr.ImageSlider(label="compare", type="filepath", image_mode=None)
    status_md = gr.Markdown()
    history_gallery = gr.Gallery(label="history")
    run_button.click(
        edit,
        inputs=[*image_boxes, prompt_box, size_box, model_box, *url_boxes, key_box, history_state],
        outputs=[results_gallery, compare_slider, status_md, history_gallery, history_state, results_state],
        api_name="edit",
        concurrency_limit=CONCURRENCY,
    )
    demo.queue(max_size=64, default_concurrency_limit=CONCURRENCY)

if __name__ == "__main__":
    (build_minimal() if MINIMAL else demo).launch(max_threads=max(40, CONCURRENCY + 8))
