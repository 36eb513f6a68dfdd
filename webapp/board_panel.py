"""Share several results as one board (issue 19): the panel under the history, its handlers, its wiring.

The owner ticks results of this browser's history and gets one link to a read-only board
(`webapp.boards`). Only results of the session's own history can go on a board: the picker's choices
stand for ids kept in a `gr.State` (filled from the history State on the server), and the browser
sends back only which choices are ticked. The board's token stays in the session too, so Revoke
never takes a token from a request.
"""

from __future__ import annotations

import gradio as gr

from webapp.backend import Backend
from webapp.boards import board_path
from webapp.errors import user_error
from webapp.handlers import _root_url
from webapp.settings import AppSettings
from webapp.store import MAX_BOARD
from webapp.texts import I18N, error_text, request_chinese, say

PRIVATE = {"api_visibility": "private"}
CAPTION_CHARS = 80


def board_choices(history: list | None) -> tuple[list[tuple[str, str]], list[str]]:
    """The picker's choices for a history (one per result, newest first, as the history shows them)
    and the result ids they stand for, in the same order. Entries with no id (a result that could
    not be registered) cannot be shared and are left out."""
    ids: list[str] = []
    captions: list[str] = []
    for entry in history or []:
        rid = entry.get("id") if isinstance(entry, dict) else None
        if not isinstance(rid, str) or rid in ids:
            continue
        prompt = " ".join(str(entry.get("prompt") or "").split())
        text = prompt[:CAPTION_CHARS] + ("…" if len(prompt) > CAPTION_CHARS else "")
        ids.append(rid)
        captions.append(f"{len(ids)}. {text or '—'}")
    return [(caption, f"r{k}") for k, caption in enumerate(captions)], ids


def picked_ids(picked: list | None, ids: list | None) -> list[str]:
    """The ids of the ticked choices (indices into `ids`), in the picker's order; anything else is
    ignored. At most `MAX_BOARD`."""
    ids = ids or []
    chosen = sorted({i for i in picked or [] if type(i) is int and 0 <= i < len(ids)})
    return [ids[i] for i in chosen][:MAX_BOARD]


class BoardHandlers:
    """The board panel's events, bound to the app's settings and backend."""

    def __init__(self, settings: AppSettings, backend: Backend) -> None:
        self.settings = settings
        self.backend = backend

    def follow_history(self, history: list | None):
        """The history changed: the picker lists its results again (nothing ticked), and the
        "Share several" button shows once there are two results or more."""
        choices, ids = board_choices(history)
        return (
            gr.update(visible=self.settings.sharing and len(ids) > 1),
            gr.update(choices=choices, value=[]),
            ids,
        )

    def open_picker(self, history: list | None):
        """ "Share several…": show the picker, filled from the session's history."""
        return gr.update(visible=True), *self.follow_history(history)[1:]

    async def share_board(self, picked: list | None, ids: list | None, request: gr.Request = None):
        """A new board of the ticked results; show its link (in the page's language) and Revoke."""
        chinese = request_chinese(request)
        if not self.settings.sharing:
            raise user_error(error_text("no_result"))
        chosen = picked_ids(picked, ids)
        if not chosen:
            raise user_error(error_text("board_none"))  # both languages, as every refusal
        token = await self.backend.run_file_work(self.backend.store.share_board, chosen)
        if token is None:  # every ticked result was deleted or expired meanwhile
            raise user_error(error_text("no_result"))
        base = self.settings.public_url or _root_url(request)
        link = f"{base}{board_path(token)}?lang={'zh' if chinese else 'en'}"
        return gr.update(value=link, visible=True), gr.update(visible=True), token

    async def revoke_board(self, token: str | None, request: gr.Request = None):
        """Revoke this session's board (its token from the session, never from the request)."""
        done = bool(token) and await self.backend.run_file_work(self.backend.store.revoke_board, token)
        status = say("board_revoked" if done else "board_no_link", request_chinese(request))
        return status, gr.update(value="", visible=False), gr.update(visible=False), None


def board_panel() -> dict:
    """Under the history: "Share several as a board…", then the picker, the button, the link and
    Revoke. Hidden until the history holds two results."""
    parts: dict = {}
    parts["open"] = gr.Button(I18N("board_open"), size="sm", visible=False, elem_id="board-open")
    with gr.Column(visible=False, elem_id="board-panel") as parts["panel"]:
        parts["pick"] = gr.CheckboxGroup(
            [], type="index", label=I18N("board_pick"), info=I18N("board_pick_info"), elem_id="board-pick"
        )
        parts["make"] = gr.Button(I18N("board_make"), size="sm", variant="primary", elem_id="board-make")
        with gr.Row():
            parts["link"] = gr.Textbox(
                label=I18N("board_link"),
                info=I18N("board_info"),
                buttons=["copy"],
                visible=False,
                scale=4,
                elem_id="board-link",
            )
            parts["revoke"] = gr.Button(
                I18N("board_revoke"), size="sm", visible=False, scale=1, elem_id="board-revoke"
            )
    parts["ids"] = gr.State([])  # the ids the picker's choices stand for, from the session's history
    parts["token"] = gr.State(None)  # the board this session made last, for Revoke
    return parts


def wire_boards(handlers: BoardHandlers, board: dict, history_state: gr.State, status: gr.Markdown) -> None:
    """The board panel's events (private: no API endpoint, no MCP tool)."""
    picker = [board["open"], board["pick"], board["ids"]]
    history_state.change(handlers.follow_history, inputs=history_state, outputs=picker, **PRIVATE)
    board["open"].click(
        handlers.open_picker,
        inputs=history_state,
        outputs=[board["panel"], board["pick"], board["ids"]],
        **PRIVATE,
    )
    board["make"].click(
        handlers.share_board,
        inputs=[board["pick"], board["ids"]],
        outputs=[board["link"], board["revoke"], board["token"]],
        **PRIVATE,
    )
    board["revoke"].click(
        handlers.revoke_board,
        inputs=board["token"],
        outputs=[status, board["link"], board["revoke"], board["token"]],
        **PRIVATE,
    )
