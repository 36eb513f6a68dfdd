"""The floor for the app benchmarks: the smallest Gradio app a user could write instead.

One image in, one image out: its async handler only sleeps as long as the simulated provider takes
(BARE_APP_SLEEP, default 2 s) and hands the input back. The same queue and concurrency settings as
app.py, so gradio_client uploads, waits and downloads the same way.
Run: `python bare_app.py` (GRADIO_SERVER_PORT picks the port).
"""

from __future__ import annotations

import asyncio
import os

import gradio as gr

SLEEP_S = float(os.environ.get("BARE_APP_SLEEP", "2"))
CONCURRENCY = int(os.environ.get("JUHE_CONCURRENCY", "16"))


async def edit(image1: str | None, prompt: str = ""):
    """Wait like the provider, then hand the image back as the result."""
    await asyncio.sleep(SLEEP_S)
    return image1


with gr.Blocks(title="bare") as demo:
    image = gr.Image(type="filepath", image_mode=None, label="image1")
    prompt_box = gr.Textbox(label="prompt")
    result = gr.Image(type="filepath", label="result")
    gr.Button("run").click(
        edit, inputs=[image, prompt_box], outputs=result, api_name="edit", concurrency_limit=CONCURRENCY
    )
    demo.queue(max_size=64, default_concurrency_limit=CONCURRENCY)

if __name__ == "__main__":
    demo.launch(max_threads=max(40, CONCURRENCY + 8))
