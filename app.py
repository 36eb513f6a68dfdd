"""The web app of the Juhe AI image-edit API: edit one to three images in the browser, or call it as
the `edit` endpoint (gradio_client) and MCP tool.

    python app.py

Live with JUHE_API_KEY (environment, `.env` or a Space secret); otherwise an offline preview against
the built-in simulator. Every setting is in the README and `.env.example`.
"""

from __future__ import annotations

import os
import sys

from webapp.folders import place_folders
from webapp.settings import AppSettings, SettingsError


def main() -> None:
    """Settings, then the folders (the start's effects on the disk and the environment), then the
    demo, then launch."""
    try:
        settings = AppSettings.load()
    except SettingsError as exc:
        sys.exit(f"config error: {exc}")
    settings = place_folders(settings)
    # Gradio reads GRADIO_TEMP_DIR when it is imported: set before that (also when it came from .env)
    os.environ["GRADIO_TEMP_DIR"] = str(settings.cache_dir)

    from webapp.backend import Backend
    from webapp.memory import calm_collector, return_large_buffers
    from webapp.ui import build_demo, launch_options  # imports Gradio: after the settings are known good

    return_large_buffers()
    for line in settings.summary():  # for the operator: the page never shows these
        print(line, flush=True)
    backend = Backend(settings)
    backend.start_edit_processes()  # they import while the page is built
    demo = build_demo(settings, backend)
    calm_collector()  # after start-up: what is alive now stays
    demo.launch(**launch_options(settings, backend, demo))


if __name__ == "__main__":
    main()
