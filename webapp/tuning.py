"""Two costs Gradio 6.31 pays per call, taken away for a burst of callers.

Sessions: Gradio 6.31's `SessionState.__init__` renders the config of every component of the page for each
new session (`config_values`), and keeps it only to recreate the page for deep links, a route this
app closes (`webapp.routes.CloseRoutes`). With this page's hundred components that was 40 % of the
app's CPU in a burst of new visitors (every gradio_client and MCP caller is a new session). After
`install_light_sessions()`, a session starts with none; Gradio fills in a component's config when it
first needs it (`SessionState._update_value_in_config` already does so for a missing one).

Matplotlib: Gradio wraps every call in `utils.MatplotlibBackendMananger`, which imports matplotlib
twice per call; where it is not installed, each failed import searches the whole `sys.path` again
(5 % of a burst's CPU). After `install_fast_failed_imports()`, a missing matplotlib fails at once.
"""

from __future__ import annotations

import importlib.util
import sys

from gradio.state_holder import SessionState


class _WithoutBlocks:
    """What `SessionState.__init__` reads of a `Blocks`: its default config, and no blocks to render."""

    def __init__(self, blocks) -> None:
        self.default_config = blocks.default_config
        self.blocks: dict = {}


def install_light_sessions() -> None:
    """Make new Gradio sessions start without rendered configs (process-wide; idempotent)."""
    init = SessionState.__init__
    if getattr(init, "_juhe_light", False):
        return

    def light_init(self: SessionState, blocks) -> None:
        init(self, _WithoutBlocks(blocks))

    light_init._juhe_light = True
    SessionState.__init__ = light_init


def install_fast_failed_imports() -> None:
    """Where matplotlib is not installed, make `import matplotlib` fail at once (`sys.modules` None)."""
    if "matplotlib" not in sys.modules and importlib.util.find_spec("matplotlib") is None:
        sys.modules["matplotlib"] = None
