"""Placeholder page until the web app lands."""

import gradio as gr

with gr.Blocks(title="Juhe AI image edit") as demo:
    gr.Markdown("# Juhe AI image edit\nThe web app is being built.")

if __name__ == "__main__":
    demo.launch()
