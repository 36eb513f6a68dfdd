"""The errors a visitor sees: one toast each, both languages, one log line, never a traceback."""

from __future__ import annotations

import html
import logging

import gradio as gr

from juhe import JuheError
from webapp.texts import TITLES, visitor_order

logger = logging.getLogger("webapp")


def user_error(message: str, title: str = TITLES["error"], duration: float | None = 10) -> gr.Error:
    """A visitor's mistake or a refusal: a toast and one log line, never a traceback."""
    logger.info("refused: %s", message.partition(" / ")[2] or message)
    return gr.Error(message, title=title, duration=duration, print_exception=False)


def juhe_error(exc: JuheError) -> gr.Error:
    """The toast for a failed edit, made from the error's fields: its label (the provider's code, or
    a word such as "timeout") and both languages. Toasts render HTML, and the text may hold the
    provider's words: escaped."""
    title = f"错误 Error {exc.code}" if exc.code else TITLES["error"]
    message = f"{exc.label}: {exc.explanation}"
    error = user_error(html.escape(message, quote=False), title=title, duration=None)
    error.juhe_source = exc  # so that it can be put in the visitor's order, label first
    return error


def in_visitor_language(error: gr.Error, chinese: bool, exc: Exception | None = None) -> gr.Error:
    """The same bilingual error ("中文 / English") with the visitor's language first, both kept; a
    failed edit's keeps its label first ("error 282504: …"). Done once per error: one already put
    in order is left as it is."""
    if getattr(error, "juhe_ordered", False):
        return error
    exc = exc if exc is not None else getattr(error, "juhe_source", None)
    if isinstance(exc, JuheError):
        tail = exc.explanation.removeprefix(f"{exc.zh} / {exc.en}")
        first, second = (exc.zh, exc.en) if chinese else (exc.en, exc.zh)
        error.message = html.escape(f"{exc.label}: {first} / {second}{tail}", quote=False)
    else:
        error.message = visitor_order(str(error.message), chinese)
    if error.title:
        error.title = visitor_order(str(error.title), chinese, " · ")
    error.juhe_ordered = True
    return error
