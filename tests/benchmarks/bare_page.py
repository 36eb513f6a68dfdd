"""The simplest page a user could build instead of app.py, for the first-open benchmark: three image
inputs, a prompt, a button and a gallery. Run: `python bare_page.py` (GRADIO_SERVER_PORT picks the port).
"""

from __future__ import annotations

import gradio as gr


def edit(image1, image2, image3, prompt):
    """Hand the first image back."""
    return [image1] if image1 else []


with gr.Blocks(title="bare page") as demo:
    with gr.Row():
        images = [gr.Image(type="filepath", label=f"图{i}") for i in (1, 2, 3)]
    prompt = gr.Textbox(label="prompt", lines=3)
    run = gr.Button("Edit", variant="primary", elem_id="run")
    gallery = gr.Gallery(label="results")
    run.click(edit, inputs=[*images, prompt], outputs=gallery)

if __name__ == "__main__":
    demo.launch()
