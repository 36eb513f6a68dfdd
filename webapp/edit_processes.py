"""Edits in child processes: each call to the provider, and each result's download, check, label
and save.

The app's own process runs Gradio (the queue, the event streams, the gate, the store). In a burst
of 256 edits on 2 cores it was bound to one core while the other idled, and half of its work was
the client's: preparing the request, the call, the download and the labelled save. Here that work
runs in child processes (`JUHE_EDIT_PROCESSES`, 2 by default), each with its own interpreter and
event loop (the README's performance section has the figures).

`EditProcesses` owns the children and the pipes to them; `ProcessClient` has the two methods of
`juhe.AsyncImageEditClient` the app calls, `edit` and `download`, and sends each over a pipe as one
call, to the child with the fewest calls in flight. What the client in the app's process promised
still holds:

- a call's stages reach `on_stage` in order and before its outcome (a pipe keeps order); "waiting"
  is reported before the request is sent, so whoever counts sent edits (the daily cap's refunds)
  sees it;
- a cancelled call is cancelled in the child too, and the cancel waits for the child's last word on
  it (at most `CANCEL_WAIT_S`), so the stages it reported are complete when the cancel goes on;
- if a child stops (killed, out of memory), every call in flight there fails with
  `EditProcessError`, and the next call to its place starts a new child. Stages it reported stand,
  and a result it saved stays on disk. In one process the same crash took the whole app down.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import multiprocessing
import pickle
import signal
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from juhe import AsyncImageEditClient, EditResult, JuheError, Settings

logger = logging.getLogger("webapp")

CANCEL_WAIT_S = 5.0  # how long a cancelled call waits for the child's last word on it
STOP_WAIT_S = 5.0  # how long `close` waits for the child to end before killing it
BATCH = 64  # answers a reader thread hands to the event loop at once, at most
BURST = 16  # calls in flight at once after which a child, once idle, trims its heap
BIG_MESSAGE = 256 * 1024  # a call this large (a painted mask, 图1 as bytes) is written off the event loop


class EditProcessError(JuheError):
    """An edit process stopped while a call was in flight, or could not be started."""

    kind = "process"

    @property
    def label(self) -> str:
        """ "edit process"."""
        return "edit process"


def _unreadable(detail: str) -> EditProcessError:
    return EditProcessError(
        "编辑进程的答复无法读取", "the edit process's answer could not be read", detail=detail
    )


def _stopped(detail: str) -> EditProcessError:
    return EditProcessError(
        "编辑进程意外停止，这次编辑可能已经发出",
        "the edit process stopped; this edit may have been sent",
        detail=detail,
    )


@dataclass
class _Call:
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future
    on_stage: Callable[[str], None] | None


@dataclass
class _Child:
    """One started child: its process, the parent's end of the pipe, and the calls it owes."""

    process: Any
    connection: Any
    calls: dict[int, _Call] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)  # one whole message at a time
    gone: bool = False
    closing: bool = False  # `close` asked it to stop
    ended: threading.Event = field(default_factory=threading.Event)  # reaped by its reader thread
    outbox: list[tuple] = field(default_factory=list)  # messages for the next write, in order
    writing: bool = False  # a write is due or under way: later messages wait for the one after

    @property
    def load(self) -> int:
        """Calls in flight; a child that is gone takes none."""
        return 1 << 30 if self.gone else len(self.calls)


class EditProcesses:
    """`count` child processes that run the clients' calls, each started on first use (or by
    `start`) and again after it stopped; a call goes to the one with the fewest in flight."""

    def __init__(self, count: int = 1) -> None:
        if count < 1:
            raise ValueError(f"count must be at least 1, got {count}")
        self._lock = threading.Lock()  # the list of children
        self._children: list[_Child | None] = [None] * count
        self._closed = False
        self._ids = itertools.count(1)

    def start(self) -> None:
        """Start every child that is not running (they import while the app goes on)."""
        with self._lock:
            if self._closed:
                return
            for index in range(len(self._children)):
                self._running(index)

    def _running(self, index: int) -> _Child:
        child = self._children[index]
        if child is not None and not child.gone:
            return child
        context = multiprocessing.get_context("spawn")  # never fork a process with threads
        ours, theirs = context.Pipe()
        name, parts = f"juhe-edits-{index + 1}", len(self._children)
        process = context.Process(target=serve, args=(theirs, parts), name=name, daemon=True)
        try:
            process.start()
        except OSError as exc:
            ours.close()
            raise EditProcessError(
                "编辑进程无法启动", "the edit process could not be started", detail=exc.strerror or str(exc)
            ) from exc
        finally:
            theirs.close()
        child = self._children[index] = _Child(process, ours)
        threading.Thread(target=self._read, args=(child,), name="juhe-edits-reader", daemon=True).start()
        return child

    def _pick(self, call_id: int, call: _Call) -> _Child:
        with self._lock:
            if self._closed:
                raise EditProcessError(
                    "编辑进程已关闭", "the edit processes are closed", detail="the app is stopping"
                )
            index = min(range(len(self._children)), key=lambda i: getattr(self._children[i], "load", 0))
            child = self._running(index)
            child.calls[call_id] = call  # now, so that a child lost from here on fails this call too
            return child

    async def call(
        self,
        op: str,
        settings: Settings,
        max_connections: int,
        args: tuple,
        kwargs: dict,
        on_stage: Callable[[str], None] | None = None,
    ) -> Any:
        """Run `op` ("edit", "download" or "edit+download") of a client with `settings` in a child;
        its answer."""
        loop = asyncio.get_running_loop()
        call = _Call(loop, loop.create_future(), on_stage)
        call.future.add_done_callback(_retrieve)
        call_id = next(self._ids)
        # the call's id outside its body: a child that cannot read a body still answers the call
        body = pickle.dumps((op, settings, max_connections, args, kwargs), protocol=5)
        child = self._pick(call_id, call)
        if on_stage is not None and op != "download":
            on_stage("preparing")  # said here: the child does not send it (one message fewer)
        self._post(child, loop, ("call", call_id, body))
        try:
            return await asyncio.shield(call.future)
        except asyncio.CancelledError:
            if not call.future.done():
                self._post(child, loop, ("cancel", call_id))
                # its last word: the stages it reports until then still reach on_stage
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await asyncio.wait_for(asyncio.shield(call.future), CANCEL_WAIT_S)
            raise
        finally:
            child.calls.pop(call_id, None)

    def _post(self, child: _Child, loop: asyncio.AbstractEventLoop, message: tuple) -> None:
        """Queue `message` for the child. The calls a turn of the event loop makes go in one write
        at its end (one system call instead of one each, which also woke the reader threads'
        contention for the interpreter); a large write goes on a worker thread, and messages
        queued meanwhile follow it."""
        child.outbox.append(message)
        if not child.writing:
            child.writing = True
            loop.call_soon(self._flush, child, loop)

    def _flush(self, child: _Child, loop: asyncio.AbstractEventLoop) -> None:
        batch, child.outbox = child.outbox, []
        if not batch:
            child.writing = False
            return
        data = pickle.dumps(("batch", batch), protocol=5)
        if len(data) <= BIG_MESSAGE:
            self._send(child, data)
            self._flush(child, loop)  # nothing was queued meanwhile: this ends the write
            return
        written = loop.run_in_executor(None, self._send, child, data)
        written.add_done_callback(lambda _: self._flush(child, loop))

    def _send(self, child: _Child, message: bytes) -> None:
        try:
            with child.lock:
                child.connection.send_bytes(message)
        except (OSError, ValueError) as exc:  # the child is gone; its calls fail
            self._lost(child, f"the pipe to it broke ({type(exc).__name__})")

    def _read(self, child: _Child) -> None:
        """A child's reader thread: hand each answer to the loop of the call it belongs to."""
        while True:
            try:
                # what has arrived, handed over in one turn of the loop (each turn wakes it)
                messages = [child.connection.recv()]
                while len(messages) < BATCH and child.connection.poll():
                    messages.append(child.connection.recv())
            except Exception:  # the pipe closed (EOFError, OSError), or a message is broken
                break
            by_loop: dict[asyncio.AbstractEventLoop, list] = {}
            for kind, call_id, payload in messages:
                call = child.calls.get(call_id)
                if call is not None:
                    by_loop.setdefault(call.loop, []).append((call, kind, payload))
            for loop, answers in by_loop.items():
                loop.call_soon_threadsafe(_deliver_all, answers)
        # this thread alone waits for the process: two waiting at once can miss its exit status
        child.process.join(STOP_WAIT_S)
        if child.process.is_alive():  # its pipe closed, but it hangs
            child.process.kill()
            child.process.join()
        self._lost(child, f"it exited with code {child.process.exitcode}")
        child.ended.set()

    def _lost(self, child: _Child, why: str) -> None:
        with self._lock:
            if child.gone:
                return
            child.gone = True
            calls = list(child.calls.values())
        if calls or not child.closing:
            logger.error("an edit process stopped: %s; %d call(s) in flight failed", why, len(calls))
        for call in calls:
            call.loop.call_soon_threadsafe(_fail, call, _stopped(why))
        with contextlib.suppress(OSError):
            child.connection.close()

    def close(self) -> None:
        """End the children (each stops when asked; killed if still running after `STOP_WAIT_S`)."""
        with self._lock:
            self._closed = True
            children = [child for child in self._children if child is not None]
        for child in children:
            child.closing = True
            self._send(child, pickle.dumps(("stop",)))
        for child in children:
            if not child.ended.wait(STOP_WAIT_S):
                child.process.kill()  # its pipe closes with it, and its reader reaps it
                child.ended.wait(STOP_WAIT_S)


def _deliver_all(answers: list[tuple[_Call, str, Any]]) -> None:
    for call, kind, payload in answers:
        _deliver(call, kind, payload)


def _deliver(call: _Call, kind: str, payload: bytes) -> None:
    """On the call's loop: a stage goes to its callback; an outcome settles the call."""
    if kind == "stage":
        if call.on_stage is not None:
            try:
                call.on_stage(payload)
            except Exception:  # a progress callback must not end the edit
                logger.exception("a stage callback failed")
        return
    if call.future.done():
        return
    if kind == "cancelled":
        call.future.cancel()
        return
    try:
        value = pickle.loads(payload)
    except Exception as exc:  # an answer this process cannot rebuild
        value, kind = _unreadable(type(exc).__name__), "failed"
    if kind == "done":
        call.future.set_result(value)
    else:
        call.future.set_exception(value)


def _retrieve(future: asyncio.Future) -> None:
    """Mark an outcome as seen: one that came after its caller stopped waiting is no error."""
    if not future.cancelled():
        future.exception()


def _fail(call: _Call, error: EditProcessError) -> None:
    if not call.future.done():
        call.future.set_exception(error)


class ProcessClient:
    """`edit` and `download` of a `juhe.AsyncImageEditClient` with `settings`, run in an edit
    process; the signatures, results and errors are the client's."""

    def __init__(self, process: EditProcesses, settings: Settings, max_connections: int) -> None:
        self.process = process
        self.settings = settings
        self.max_connections = max_connections

    def __repr__(self) -> str:
        return f"ProcessClient({self.settings!r})"

    @property
    def api_url(self) -> str:
        """The API address edits go to."""
        return self.settings.api_url

    async def edit(
        self,
        prompt: str,
        images: object,
        size=None,
        model: str | None = None,
        *,
        mask: object | None = None,
        mask_lenient: bool = False,
        api_key: str | None = None,
        on_stage: Callable[[str], None] | None = None,
    ) -> EditResult:
        """`AsyncImageEditClient.edit`, in an edit process."""
        args, options = _edit_arguments(
            prompt, images, size, model, mask=mask, mask_lenient=mask_lenient, api_key=api_key
        )
        return await self._call("edit", args, options, on_stage)

    async def edit_and_download(
        self, directory: str | Path, *args, on_stage: Callable[[str], None] | None = None, **kwargs
    ) -> tuple[EditResult, list[Path]]:
        """`edit` (the same arguments), then `download` into `directory` at once, in one call: the
        download starts as the answer arrives, without a turn through the app's busy event loop
        ("saving" is reported between the two)."""
        args, options = _edit_arguments(*args, **kwargs)
        return await self._call("edit+download", (Path(directory), *args), options, on_stage)

    async def download(
        self, result: EditResult, directory: str | Path, *, stem: str | None = None
    ) -> list[Path]:
        """`AsyncImageEditClient.download`, in an edit process; the warnings it adds land on `result`."""
        paths, warnings = await self._call("download", (result, Path(directory)), {"stem": stem})
        result.warnings[:] = warnings
        return paths

    async def _call(self, op: str, args: tuple, kwargs: dict, on_stage=None) -> Any:
        return await self.process.call(op, self.settings, self.max_connections, args, kwargs, on_stage)


def _edit_arguments(
    prompt, images, size=None, model=None, *, mask=None, mask_lenient=False, api_key=None
) -> tuple[tuple, dict]:
    if isinstance(images, Sequence) and not isinstance(images, str | bytes):
        images = list(images)  # a tuple or a list of what Gradio gave; never a generator
    return (prompt, images, size, model), {"mask": mask, "mask_lenient": mask_lenient, "api_key": api_key}


async def edit_and_download(
    client: AsyncImageEditClient | ProcessClient,
    directory: Path,
    *args,
    on_stage: Callable[[str], None],
    **kwargs,
) -> tuple[EditResult, list[Path]]:
    """One edit and the download of its result with either client: in one call to an edit process,
    or as the client's two calls here; "saving" is reported between them."""
    if isinstance(client, ProcessClient):
        return await client.edit_and_download(directory, *args, on_stage=on_stage, **kwargs)
    result = await client.edit(*args, on_stage=on_stage, **kwargs)
    on_stage("saving")
    return result, await client.download(result, directory)


# --- the child -----------------------------------------------------------------------------------


def serve(connection, parts: int = 1) -> None:
    """The child's main: answer calls until the pipe closes. It is one of `parts` edit processes:
    its budgets (decoded pixels, downloads, re-encodes at once) are that share of one process's, so
    that all together hold and run no more than the app's process alone did."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the app, which closes the pipe
    from webapp.memory import (
        bound_decoding,
        calm_collector,
        install_fast_failed_imports,
        return_large_buffers,
        trim_heap,
    )

    return_large_buffers()
    install_fast_failed_imports()
    bound_decoding()
    from juhe._client import DOWNLOAD_MEMORY_BYTES
    from juhe._images import share_image_work

    share_image_work(parts)
    calm_collector()
    asyncio.run(_Server(connection, DOWNLOAD_MEMORY_BYTES // parts, trim_heap).run())


class _Server:
    """The child's side: one task per call, one client per (settings, pool size)."""

    def __init__(self, connection, download_memory: int, on_idle: Callable[[], object]) -> None:
        self.connection = connection
        self.download_memory = download_memory
        self.on_idle = on_idle
        self.most = 0  # the most calls in flight at once since the last trim
        self.lock = threading.Lock()
        self.clients: dict[tuple[Settings, int], Any] = {}
        self.tasks: dict[int, asyncio.Task] = {}
        self.cancelled: set[int] = set()
        self.closed = asyncio.Event()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        closed = self.closed

        def read() -> None:
            while True:
                try:
                    message = pickle.loads(self.connection.recv_bytes())
                except Exception as exc:  # the app is gone (EOFError, OSError), or a message broke
                    if not isinstance(exc, EOFError | OSError):  # its calls then fail, told plainly
                        logger.exception("edit process: a message from the app could not be read")
                    loop.call_soon_threadsafe(closed.set)
                    return
                loop.call_soon_threadsafe(self.receive, message)

        threading.Thread(target=read, name="juhe-edits-reader", daemon=True).start()
        await closed.wait()
        for task in self.tasks.values():
            task.cancel()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        for client in self.clients.values():
            await client.aclose()

    def receive(self, message: tuple) -> None:
        if message[0] == "batch":
            for each in message[1]:
                self.receive(each)
        elif message[0] == "call":
            call_id = message[1]
            task = asyncio.create_task(self.answer(call_id, message[2]))
            task.add_done_callback(lambda task: self.ended(call_id, task))
            self.tasks[call_id] = task
            self.most = max(self.most, len(self.tasks))
        elif message[0] == "cancel" and message[1] in self.tasks:
            self.cancelled.add(message[1])
            self.tasks[message[1]].cancel()
        elif message[0] == "stop":
            self.closed.set()

    def send(self, kind: str, call_id: int, payload: object) -> None:
        try:
            with self.lock:
                self.connection.send((kind, call_id, payload))
        except OSError:  # the app is gone; its end of the pipe closing ends this process too
            pass

    def client(self, settings: Settings, max_connections: int):
        from juhe import AsyncImageEditClient
        from juhe._transport import async_http_transport

        key = (settings, max_connections)
        if key not in self.clients:
            # this loop has nothing else to do: downloads need no threads (the async transport),
            # and a result is checked and saved on it too, unless it is stitched or resized
            transport = async_http_transport(max_connections)
            self.clients[key] = AsyncImageEditClient(
                settings=settings,
                transport=transport,
                download_memory=self.download_memory,
                save_on_loop=True,
            )
        return self.clients[key]

    async def answer(self, call_id: int, body: bytes) -> None:
        def on_stage(stage: str) -> None:
            if stage != "preparing":  # the app said it when it sent the call
                self.send("stage", call_id, stage)

        op = "call"
        try:
            op, settings, max_connections, args, kwargs = pickle.loads(body)
            client = self.client(settings, max_connections)
            if op == "edit":
                value = await client.edit(*args, on_stage=on_stage, **kwargs)
            elif op == "edit+download":
                directory, *args = args
                result = await client.edit(*args, on_stage=on_stage, **kwargs)
                on_stage("saving")
                paths = await client.download(result, directory)
                result._job = None  # 图1 and the mask for the stitch: done with, and not small
                value = (result, paths)
            else:
                result = args[0]
                paths = await client.download(*args, **kwargs)
                value = (paths, result.warnings)
            self.send("done", call_id, pickle.dumps(value, protocol=5))
        except Exception as exc:
            if not isinstance(exc, JuheError):
                logger.exception("edit process: %s failed", op)
            self.send("failed", call_id, _pickled_error(exc))

    def ended(self, call_id: int, task: asyncio.Task) -> None:
        """A call's task is over. A cancelled one is reported here rather than in `answer`: a
        cancel that comes in the same turn of the loop as its call stops the task before its first
        line, where no `except` of its own can see it, and the app would wait for a word in vain."""
        self.tasks.pop(call_id, None)
        if call_id in self.cancelled:
            self.cancelled.discard(call_id)
            if task.cancelled():
                self.send("cancelled", call_id, b"")
        if not self.tasks and self.most >= BURST:
            self.most = 0
            self.on_idle()  # what a burst freed goes back to the system


def _pickled_error(exc: Exception) -> bytes:
    """`exc` pickled, checked to load again; one that does not travels as its type's name only (its
    text is not known to be free of secrets)."""
    try:
        data = pickle.dumps(exc, protocol=5)
        pickle.loads(data)
        return data
    except Exception:
        return pickle.dumps(_unreadable(type(exc).__name__), protocol=5)
