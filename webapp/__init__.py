"""What the Gradio app needs besides its layout: texts, limits and the backend. No HTTP here."""
