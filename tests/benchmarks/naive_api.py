"""The naive app for the burst benchmark: what a user would write in Gradio to call the same API.

The same inputs as app.py's `edit` (gr.api, queue=False, the same concurrency). The handler posts
the form to the provider with one shared httpx client (图1 as the data URI it was given), downloads
the first result link, writes it to a file and returns it with the provider's answer. No checks,
no label, no store, no limits: the floor of doing the same calls. Run: `python naive_api.py`, with
JUHE_API_URL and JUHE_API_KEY naming the provider (GRADIO_SERVER_PORT picks the port).
"""

import os
import tempfile
import uuid
from pathlib import Path

import gradio as gr
import httpx
from gradio.data_classes import FileData

CONCURRENCY = int(os.environ.get("JUHE_CONCURRENCY", "16"))
API_URL = os.environ["JUHE_API_URL"]
API_KEY = os.environ["JUHE_API_KEY"]
OUTPUT = Path(os.environ.get("JUHE_OUTPUT_DIR") or tempfile.mkdtemp(prefix="naive-"))
OUTPUT.mkdir(parents=True, exist_ok=True)
LIMITS = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
client = httpx.AsyncClient(timeout=120, limits=LIMITS)


async def edit(
    image1: str,
    prompt: str,
    image2: str | None = None,
    image3: str | None = None,
    size: str = "auto",
    model: str = "auto",
    api_key: str | None = None,
    mask: str | None = None,
    variants: int = 1,
) -> tuple[FileData, dict]:
    """Post the form, download the first image, save it, return it."""
    form = {"key": API_KEY, "text": prompt, "image1": image1, "image2": image2 or "", "image3": image3 or ""}
    answer = (await client.post(API_URL, data=form)).json()
    link = answer["result"]["images"][0]["image"]
    image = await client.get(link)
    path = OUTPUT / f"{uuid.uuid4().hex}.png"
    path.write_bytes(image.content)
    return FileData(path=str(path)), answer


with gr.Blocks(title="naive api") as demo:
    gr.api(edit, api_name="edit", queue=False, concurrency_limit=CONCURRENCY, concurrency_id="edit")
    demo.queue(max_size=int(os.environ.get("JUHE_QUEUE_SIZE", "64")), default_concurrency_limit=CONCURRENCY)

if __name__ == "__main__":
    demo.launch(max_threads=max(40, CONCURRENCY + 8), allowed_paths=[str(OUTPUT)])
