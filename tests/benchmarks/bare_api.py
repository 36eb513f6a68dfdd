"""The floor for the burst benchmark: the smallest `edit` endpoint a user could write with Gradio.

The same inputs as app.py's `edit` (gr.api, queue=False, the same concurrency), an async handler
that only sleeps as long as the simulated provider takes (BARE_APP_SLEEP, default 2 s) and returns
a small image and a record. When BARE_APP_ARRIVALS names a file, each call appends the moment its
sleep starts (the bare endpoint's "reaching the provider") to it. Run: `python bare_api.py`
(GRADIO_SERVER_PORT picks the port).
"""

import asyncio
import os
import time
from pathlib import Path

import gradio as gr
from gradio.data_classes import FileData

SLEEP_S = float(os.environ.get("BARE_APP_SLEEP", "2"))
CONCURRENCY = int(os.environ.get("JUHE_CONCURRENCY", "16"))
ARRIVALS = os.environ.get("BARE_APP_ARRIVALS")
RESULT = Path(__file__).resolve().parents[2] / "examples" / "cat.jpg"


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
    """Wait like the provider, then hand back an image and a record."""
    if ARRIVALS:  # one short line: the benchmark's measure, not part of the floor's work
        with open(ARRIVALS, "a") as noted:
            noted.write(f"{time.time()}\n")
    await asyncio.sleep(SLEEP_S)
    return FileData(path=str(RESULT)), {"order_id": "bare", "size": "451*300"}


with gr.Blocks(title="bare api") as demo:
    gr.api(edit, api_name="edit", queue=False, concurrency_limit=CONCURRENCY, concurrency_id="edit")
    demo.queue(max_size=int(os.environ.get("JUHE_QUEUE_SIZE", "64")), default_concurrency_limit=CONCURRENCY)

if __name__ == "__main__":
    demo.launch(max_threads=max(40, CONCURRENCY + 8), allowed_paths=[str(RESULT.parent)])
