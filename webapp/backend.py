"""The app's side of the API: live or offline, the clients (in the edit processes unless turned
off), the slots and limits, results saved on arrival."""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import logging
import os
import secrets
import shutil
import statistics
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from juhe import AsyncImageEditClient, EditResult, Settings, is_http_url
from juhe.simulator import Simulator
from webapp.edit_processes import EditProcesses, ProcessClient, edit_and_download
from webapp.gate import Issued
from webapp.settings import AppSettings
from webapp.spend import SPEND_FILE, DailyLimitError, DailySpend
from webapp.store import Record, ResultStore
from webapp.window import Window

OFFLINE_KEY = "offline-preview"
RECENT_EDITS = 20  # successful edits whose time makes the "usually about N s" estimate
LIVE_TYPICAL_S = 30.0  # before any edit has finished: the provider's usual time
LATE_KEPT_S = 3600.0  # a cancelled edit's result waits this long for its session to collect it
LATE_PER_SESSION = 20
SLOW_FILE_WORK_S = 5.0  # store work a visitor waited this long for is logged
logger = logging.getLogger("webapp")
Client = AsyncImageEditClient | ProcessClient  # the same `edit` and `download`, here or in a child


class BusyError(Exception):
    """More edits are waiting for a slot than the app's queue size allows, or a set of variants asks
    for more slots than the app has (`asked` > `at_most`)."""

    def __init__(self, asked: int = 1, at_most: int | None = None) -> None:
        super().__init__(f"{asked} edits at once, at most {at_most}" if at_most else "too many edits waiting")
        self.asked = asked
        self.at_most = at_most


class SlotPool:
    """`size` edit slots shared by every caller. A set of n edits takes its n slots together or
    waits holding none, first come first served: two sets can never each hold part of what the
    other needs (a deadlock), and a large set is not starved by single edits slipping past it.
    Used on the server's event loop only (no lock needed)."""

    def __init__(self, size: int, queue_size: int) -> None:
        self.size = size
        self.queue_size = queue_size
        self.free = size
        self._waiters: collections.deque[tuple[int, asyncio.Future]] = collections.deque()

    async def acquire(self, n: int = 1) -> None:
        """Take `n` slots; raise `BusyError` when `n` exceeds the pool or `queue_size` already wait."""
        if n > self.size:
            raise BusyError(n, self.size)
        if not self._waiters and self.free >= n:
            self.free -= n
            return
        if len(self._waiters) >= self.queue_size:
            raise BusyError(n)
        entry = (n, asyncio.get_running_loop().create_future())
        self._waiters.append(entry)
        try:
            await entry[1]
        except asyncio.CancelledError:
            if entry[1].done() and not entry[1].cancelled():  # granted as the wait was cancelled
                self.release(n)
            else:
                self._waiters.remove(entry)
                self._grant()  # the next in line may fit now
            raise

    def release(self, n: int = 1) -> None:
        """Give back `n` slots and let in whoever is first in line, if they fit."""
        self.free += n
        self._grant()

    def _grant(self) -> None:
        while self._waiters and self._waiters[0][0] <= self.free:
            n, future = self._waiters.popleft()
            if not future.done():
                self.free -= n
                future.set_result(None)


@dataclass
class Admission:
    """A run of `n` edits let in whole: `n` slots held and, on the server's key, `n` of today's
    edits reserved (`day`); each edit gives back its slot when done, and its reservation when it
    was never sent. `group` names a set of variants (n > 1) in the store."""

    n: int
    day: str | None = None
    group: str | None = None


@dataclass
class SavedEdit:
    """A finished edit: the provider's result, the local files it was saved to, and its record in
    the store (its id is what a visitor's browser keeps)."""

    result: EditResult
    paths: list[Path]
    simulated: bool
    record: Record | None = None


@dataclass
class PendingEdit:
    """An edit running on its own task, so that a visitor who stops waiting does not stop it."""

    session: str | None
    task: asyncio.Task | None = None
    waiting: bool = True  # False once the visitor stopped waiting

    def progress(self, callback: Callable[[str], None] | None) -> Callable[[str], None]:
        """`callback`, called only while the visitor is still waiting."""

        def on_stage(stage: str) -> None:
            if self.waiting and callback is not None:
                callback(stage)

        return on_stage


@dataclass
class _Late:
    edits: list[SavedEdit] = field(default_factory=list)
    running: int = 0
    touched: float = field(default_factory=time.monotonic)


class Backend:
    """Chooses the live API or the built-in simulator and owns the clients (built lazily)."""

    def __init__(self, settings: AppSettings) -> None:
        self.settings = settings
        self.offline = settings.offline
        self.output_dir = settings.output_dir.resolve()
        self._live: Client | None = None
        self._offline: Client | None = None
        # the clients' calls run in child processes, unless JUHE_EDIT_PROCESSES=0
        count = settings.edit_processes
        self.edit_processes = EditProcesses(count) if count else None
        self._simulator: Simulator | None = None
        self._lock = threading.Lock()
        self.pool = SlotPool(settings.concurrency, settings.queue_size)
        self._recent: collections.deque[float] = collections.deque(maxlen=RECENT_EDITS)
        self._late: dict[str, _Late] = {}
        self._background: set[asyncio.Task] = set()  # runs nobody awaits any more (a batch left mid-way)
        # edits per minute, per visitor and per session: the page, the API and batches count in one
        # window; `sleep` is how a paced batch waits for its turn (both replaceable by a test's clock)
        self.edits = Window()
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        self.issued = Issued()  # cache files handed to each session and visitor (webapp.gate)
        self.store = ResultStore(
            self.output_dir, keep_days=settings.keep_days, max_bytes=settings.output_max_bytes
        )
        # file work of the store (index load, retention sweeps) runs here, never on the event loop
        self._files = ThreadPoolExecutor(max_workers=1, thread_name_prefix="juhe-store")
        self._files.submit(self._sweep)
        live_cap = settings.daily_limit and not self.offline
        self.spend = DailySpend(self.output_dir / SPEND_FILE, settings.daily_limit) if live_cap else None

    def _sweep(self) -> None:
        try:
            deleted = self.store.sweep()
        except Exception:  # a sweep must never take the app down; it runs again after the next save
            logger.exception("retention sweep failed")
            return
        if deleted:
            logger.info("retention: deleted %d old results", len(deleted))

    def _client(self, settings: Settings) -> Client:
        # the connection pool follows the app's concurrency: every slot can be in flight
        if self.edit_processes is not None:
            return ProcessClient(self.edit_processes, settings, self.settings.concurrency)
        return AsyncImageEditClient(settings=settings, max_connections=self.settings.concurrency)

    def _live_client(self) -> Client:
        with self._lock:
            if self._live is None:
                self._live = self._client(self.settings.client)
            return self._live

    def _offline_client(self) -> Client:
        with self._lock:
            if self._offline is None:
                self._simulator = Simulator(latency=self.settings.sim_latency).start()
                offline = replace(self.settings.client, api_key=OFFLINE_KEY, api_url=self._simulator.url)
                self._offline = self._client(offline)
            return self._offline

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of `concurrency` edit slots; raise `BusyError` when `queue_size` edits already wait.

        Queued events are bounded by Gradio's queue too; MCP calls run outside it, so this is the
        bound every caller shares.
        """
        await self.pool.acquire(1)
        try:
            yield
        finally:
            self.pool.release(1)

    async def admit(self, n: int, visitor_key: str | None = None) -> Admission:
        """Let in a run of `n` edits (a set of variants) whole, or refuse it before anything is sent:
        `DailyLimitError` when fewer than `n` of today's edits are left on the server's key (saying
        how many are), `BusyError` when `n` exceeds the slots or too many runs wait. Waits, holding
        nothing, until `n` slots are free; only then reserves `n` edits of the cap, so a run still
        waiting never blocks the cap for others."""
        counted = self.spend is not None and not visitor_key
        if counted:
            self.spend.check(n)  # said at once, not after waiting for slots
        await self.pool.acquire(n)
        try:
            day = self.spend.reserve(n) if counted else None
        except DailyLimitError:  # others took the rest meanwhile
            self.pool.release(n)
            raise
        return Admission(n, day, secrets.token_urlsafe(16) if n > 1 else None)

    def reserve(self, n: int, visitor_key: str | None = None, group: str | None = None) -> Admission:
        """Reserve `n` of today's edits on the server's key for a batch, holding no slot (each of its
        edits takes one when it goes): `DailyLimitError`, saying how many are left, when fewer than `n`
        are. Nothing is counted for a visitor's own key or the offline preview. `group` names the
        batch in the store (a retry keeps its batch's; a new one by default)."""
        counted = self.spend is not None and not visitor_key
        day = self.spend.reserve(n) if counted and n > 0 else None
        return Admission(n, day, group or secrets.token_urlsafe(16))

    def client_for(self, visitor_key: str | None) -> tuple[Client, bool]:
        """The client an edit goes through, and whether it is simulated: the offline preview's
        simulator unless a visitor's own key sends it live."""
        simulated = self.offline and not visitor_key
        return (self._offline_client() if simulated else self._live_client()), simulated

    def refund(self, admission: Admission, n: int = 1) -> None:
        """Give back `n` of a run's reserved edits that were never sent."""
        if admission.day is not None and self.spend is not None:
            self.spend.refund(n, admission.day)

    async def keep_result(self, saved: SavedEdit, image1: object, group: str | None) -> Record | None:
        """Register a saved edit in the store (with a small copy of 图1 for its before/after) as a
        page's edit is, count its time for the estimate, and sweep the folder afterwards."""
        self._recent.append(saved.result.elapsed_s)
        record = await asyncio.to_thread(self._register, saved, image1, None, group)
        self._files.submit(self._sweep)
        return record

    def keep_running(self, task: asyncio.Task) -> None:
        """Hold a task nobody awaits any more until it ends (the loop keeps only weak references)."""
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def edit(
        self,
        prompt: str,
        images: Sequence[object],
        size: str | None,
        model: str | None,
        visitor_key: str | None = None,
        on_stage: Callable[[str], None] | None = None,
        page: bool = True,
        mask: object | None = None,
        parent: str | None = None,
    ) -> SavedEdit:
        """Run one edit, save its images and register them in the store; a visitor's own key always
        goes to the live API. For the page (`page`) the record, with a small copy of 图1 for the
        before/after, is made before this returns: the browser keeps its id. For a program it is
        made in the background, only for the retention of the output folder. With a `mask` it is a
        region edit (the page's mask is scaled to 图1 when it was painted on a smaller canvas). `parent`
        is the id of the result 图1 came from ("Continue editing"), kept in the record."""
        admission = await self.admit(1, visitor_key)
        return await self.run(
            admission, prompt, images, size, model, visitor_key, on_stage, page, mask, parent
        )

    async def run(
        self,
        admission: Admission,
        prompt: str,
        images: Sequence[object],
        size: str | None,
        model: str | None,
        visitor_key: str | None = None,
        on_stage: Callable[[str], None] | None = None,
        page: bool = True,
        mask: object | None = None,
        parent: str | None = None,
    ) -> SavedEdit:
        """One edit of an admitted run (see `edit`): it holds one of the run's slots and, on the
        server's key, one of its reserved edits, given back when it was never sent (refused before
        the client's "waiting" stage, or cancelled before it)."""
        client, simulated = self.client_for(visitor_key)
        sent = False

        def staged(stage: str) -> None:
            nonlocal sent
            sent = sent or stage == "waiting"  # the request goes out right after this stage
            if on_stage is not None:
                on_stage(stage)

        try:
            result, paths = await edit_and_download(
                client,
                self.output_dir,
                prompt,
                images,
                size,
                model,
                mask=mask,
                mask_lenient=page,
                api_key=visitor_key or None,
                on_stage=staged,
            )
        finally:
            self.pool.release(1)
            if admission.day is not None and not sent:
                self.spend.refund(1, admission.day)
        self._recent.append(result.elapsed_s)
        saved = SavedEdit(result, paths, simulated)
        if page:
            image1 = images[0] if images else None
            saved.record = await asyncio.to_thread(self._register, saved, image1, parent, admission.group)
        else:
            self._files.submit(self._register, saved, None, None, admission.group)
        self._files.submit(self._sweep)
        return saved

    def start_set(self, admission: Admission, session: str | None, *args, **options) -> list[PendingEdit]:
        """Start the `admission.n` edits of an admitted run at once, each on its own task (the
        arguments of `run`); each goes on if the visitor cancels, and is collected later."""
        pending = []
        for _ in range(admission.n):
            one = PendingEdit(session)
            one.task = asyncio.create_task(self.run(admission, *args, **options))
            pending.append(one)
        return pending

    async def edit_set(
        self, n: int, *args, visitor_key: str | None = None, **options
    ) -> AsyncIterator[tuple[int, SavedEdit | Exception]]:
        """A set of `n` variants for a program: admitted whole (or refused, raising, with nothing
        sent), sent at once, yielding `(index, saved or the error of that edit)` as each completes.
        The edits are tasks of their own: a caller who stops listening leaves them to finish and
        be saved."""
        admission = await self.admit(n, visitor_key)
        tasks = {
            asyncio.create_task(self.run(admission, *args, visitor_key=visitor_key, **options)): index
            for index in range(n)
        }
        waiting = set(tasks)
        while waiting:
            done, waiting = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            for task in sorted(done, key=tasks.get):
                yield tasks[task], task.exception() or task.result()

    async def run_file_work(self, function: Callable, *args):
        """Run store and file work on the store's own thread; work that took the visitor longer
        than `SLOW_FILE_WORK_S` is logged with the time it waited for the thread and ran."""
        asked = time.monotonic()
        began = 0.0

        def timed():
            nonlocal began
            began = time.monotonic()
            return function(*args)

        try:
            return await asyncio.get_running_loop().run_in_executor(self._files, timed)
        finally:
            ended = time.monotonic()
            if ended - asked > SLOW_FILE_WORK_S:
                name = getattr(function, "__name__", "file work")
                waited, ran = (began or ended) - asked, ended - (began or ended)
                logger.warning("slow store work: %s waited %.1f s and ran %.1f s", name, waited, ran)

    def _register(
        self, saved: SavedEdit, image1: object, parent: str | None = None, group: str | None = None
    ) -> Record | None:
        try:
            return self.store.add(
                saved.paths,
                prompt=saved.result.prompt,
                size=saved.result.size,
                model=saved.result.model,
                completed_at=saved.result.completed_at,
                order_id=saved.result.order_id,
                before=_local_image(image1),
                thumbnail=False,  # made on the first share
                parent=parent,
                group=group,
            )
        except (OSError, ValueError):  # the result is saved; only its history entry is lost
            logger.exception("could not register result %s", saved.result.order_id)
            return None

    def show(self, saved_paths: Sequence[Path], record: Record | None) -> list[str]:
        """Copies of saved images inside Gradio's cache, remembered by the store so that deleting the
        result deletes them too. File work: call it from a worker thread."""
        from gradio.utils import get_upload_folder  # the cache folder depends on GRADIO_TEMP_DIR

        shown = [self.display_path(path, get_upload_folder()) for path in saved_paths]
        if record is not None and shown:
            self.store.register_copy(record.id, *shown)  # one write of the record for them all
        return shown

    def typical_seconds(self) -> float:
        """How long an edit usually takes here: the median of recent ones, or a first guess."""
        if self._recent:
            return statistics.median(self._recent)
        return self.settings.sim_latency + 0.5 if self.offline else LIVE_TYPICAL_S

    def start(
        self,
        session: str | None,
        prompt: str,
        images: Sequence[object],
        size: str | None,
        model: str | None,
        visitor_key: str | None = None,
        on_stage: Callable[[str], None] | None = None,
        mask: object | None = None,
        parent: str | None = None,
    ) -> PendingEdit:
        """Start a page's edit on its own task; it goes on (holding its slot) if the visitor cancels."""
        pending = PendingEdit(session)
        pending.task = asyncio.create_task(
            self.edit(
                prompt, images, size, model, visitor_key, pending.progress(on_stage), mask=mask, parent=parent
            )
        )
        return pending

    def abandon(self, pending: PendingEdit) -> None:
        """The visitor stopped waiting: keep the result for the session when it arrives."""
        pending.waiting = False
        if pending.session is None:
            return
        late = self._late.setdefault(pending.session, _Late())
        late.running += 1
        pending.task.add_done_callback(lambda task: self._deliver(pending.session, task))

    def _deliver(self, session: str, task: asyncio.Task) -> None:
        late = self._late.setdefault(session, _Late())
        late.running -= 1
        late.touched = time.monotonic()
        if task.cancelled():
            return
        if task.exception() is not None:
            logger.info("a cancelled edit failed after all: %s", type(task.exception()).__name__)
            return
        late.edits = (late.edits + [task.result()])[-LATE_PER_SESSION:]
        now = time.monotonic()
        for key in [k for k, v in self._late.items() if not v.running and now - v.touched > LATE_KEPT_S]:
            del self._late[key]

    def collect_late(self, session: str | None) -> tuple[list[SavedEdit], bool]:
        """The results of this session's cancelled edits that have arrived, and whether more may."""
        late = self._late.get(session or "")
        if late is None:
            return [], False
        edits, late.edits = late.edits, []
        if not late.running:
            del self._late[session]
        return edits, late.running > 0

    def display_path(self, path: Path, cache_dir: str | os.PathLike) -> str:
        """Link (else copy) a result into a fresh folder inside Gradio's cache dir; return its path.

        Gradio hashes and copies every returned file that lies outside that folder, on the server's
        event loop, stalling every visitor; a file inside is served as is. File work: call it from a
        worker thread.
        """
        resolved = path.resolve()
        shown = Path(cache_dir).resolve() / "juhe-results" / secrets.token_hex(16) / resolved.name
        shown.parent.mkdir(parents=True)
        try:
            os.link(resolved, shown)
        except OSError:  # another file system, or no hard links there
            shutil.copyfile(resolved, shown)
        return str(shown)

    def start_edit_processes(self) -> None:
        """Start the edit processes now rather than at the first edit (they import while the app starts)."""
        if self.edit_processes is not None:
            self.edit_processes.start()

    def close(self) -> None:
        """Stop the edit processes, the offline simulator (if one was started) and the store's thread."""
        if self.edit_processes is not None:
            self.edit_processes.close()
        if self._simulator is not None:
            self._simulator.stop()
        self._files.shutdown(wait=True)


def _local_image(value: object) -> bytes | Path | None:
    """图1 as the store can read it for the share page's "before": a file, or a data URI's bytes."""
    if isinstance(value, Path):
        return value
    if isinstance(value, str) and value.startswith("data:") and ";base64," in value[:64]:
        try:
            return base64.b64decode(value.partition(",")[2], validate=True)
        except ValueError:
            return None
    if isinstance(value, str) and not is_http_url(value):
        return Path(value)
    return None
