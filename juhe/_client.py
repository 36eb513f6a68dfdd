"""The sync and async clients: shared logic in `_BaseClient`, each adds only its I/O."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx

from ._config import CONNECT_TIMEOUT, Settings
from ._download import MAX_DOWNLOAD_BYTES, ResultSaver, check_image, check_url
from ._exceptions import (
    ConfigError,
    ConnectError,
    DownloadError,
    InvalidRequestError,
    JuheError,
    MalformedResponseError,
    ReadTimeoutError,
    TransportError,
    download_error,
    scrub,
    scrub_text,
    status_error,
)
from ._images import ImageInput
from ._models import EditResult, now_iso
from ._precise import LocalJob, describe_inputs, endpoint_name, plan_edit
from ._request import EditParams, build_form, check_params, image_budget, parse_response, prepare_images
from ._transport import (
    DEFAULT_MAX_CONNECTIONS,
    RetryTransport,
    async_http_transport,
    deadline,
    http_transport,
)
from ._version import __version__

logger = logging.getLogger("juhe")

MAX_ANSWER_BYTES = 1024 * 1024  # the provider's answer is a few hundred bytes of JSON
DOWNLOAD_TIMEOUT = 30.0  # total seconds for one result link, its headers included
# Result bytes an async client holds at once over all its downloads: each reserves its declared
# length (or the whole MAX_DOWNLOAD_BYTES when it declares none) before reading its body.
DOWNLOAD_MEMORY_BYTES = 64 * 1024 * 1024
USER_AGENT = f"juhe-image-edit/{__version__} (+python-httpx)"

Secrets = Sequence[str | None]


@dataclass(frozen=True)
class _Local:
    """What one edit's preparation leaves for its result: the job a download finishes, and how
    each input was sent (for the sidecar)."""

    job: LocalJob
    inputs: list[dict]


def _translate(exc: Exception) -> JuheError:
    """The `juhe` exception for one of httpx's."""
    if isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout)):
        return ConnectError("连接服务超时", "could not connect to the provider in time")
    if isinstance(exc, httpx.TimeoutException):
        return ReadTimeoutError(
            "服务响应超时，请求可能已被处理，未自动重试",
            "the provider did not answer in time; the request may have been processed, so it was not retried",
        )
    if isinstance(exc, httpx.ConnectError):
        return ConnectError("无法连接服务", "could not reach the provider", detail=str(exc) or None)
    if isinstance(exc, httpx.RemoteProtocolError):
        return TransportError(
            "连接被中断", "the provider closed the connection without an answer", kind="dropped"
        )
    if isinstance(exc, httpx.InvalidURL):
        return TransportError("链接无效", "invalid URL", detail=str(exc) or None)
    return TransportError(
        "网络错误", "the exchange with the provider failed", detail=f"{type(exc).__name__}: {exc}"
    )


@contextlib.contextmanager
def provider_boundary(secrets: Secrets) -> Iterator[None]:
    """The one boundary: httpx's exceptions become `juhe` ones, and no error leaves it holding a key."""
    try:
        yield
    except JuheError as exc:
        scrub(exc, *secrets)
        raise
    except (httpx.HTTPError, httpx.InvalidURL) as exc:  # InvalidURL is not an httpx.HTTPError
        raise scrub(_translate(exc), *secrets) from exc


@contextlib.contextmanager
def download_boundary(result: EditResult, url: str, secrets: Secrets) -> Iterator[None]:
    """`provider_boundary` for a result link: every failure becomes a `DownloadError` naming it."""
    try:
        with provider_boundary(secrets):
            yield
    except DownloadError:
        raise
    except TransportError as exc:
        why = f"timeout: took longer than {DOWNLOAD_TIMEOUT:g} s" if exc.kind == "timeout" else str(exc)
        if isinstance(exc.__cause__, httpx.ConnectTimeout):
            why = f"timeout: could not connect within {DOWNLOAD_TIMEOUT:g} s"
        raise scrub(download_error(result.order_id, url, why), *secrets) from exc


class _Body:
    """The bytes of one answer, refused once past `limit` (a declared length is judged first)."""

    def __init__(self, response: httpx.Response, limit: int, too_large: Callable[[], JuheError]) -> None:
        self.limit, self.too_large = limit, too_large
        self.declared = response.headers.get("Content-Length", "").strip()
        if self.declared.isdigit() and int(self.declared) > limit:
            raise too_large()
        self.chunks: list[bytes] = []
        self.size = 0

    @property
    def expected(self) -> int:
        """Bytes this body may take: its declared length, else the limit."""
        return int(self.declared) if self.declared.isdigit() else self.limit

    def add(self, chunk: bytes) -> None:
        """Keep a chunk, or raise once the limit is passed."""
        self.size += len(chunk)
        if self.size > self.limit:
            raise self.too_large()
        self.chunks.append(chunk)

    def data(self) -> bytes:
        """All the bytes received."""
        return b"".join(self.chunks)


def _answer_too_large() -> MalformedResponseError:
    return MalformedResponseError(
        "服务返回的内容过大", f"the provider's answer is larger than {MAX_ANSWER_BYTES:,} bytes"
    )


def _download_too_large(result: EditResult, url: str) -> Callable[[], DownloadError]:
    return lambda: download_error(result.order_id, url, f"larger than {MAX_DOWNLOAD_BYTES} bytes")


def _check_download_status(result: EditResult, url: str, response: httpx.Response) -> None:
    """Anything but 200 means the link expired or failed."""
    if response.status_code != 200:
        why = f"HTTP {response.status_code} (the link may have expired)"
        raise download_error(result.order_id, url, why)


def _stage(callback: Callable[[str], None] | None, stage: str) -> None:
    if callback is not None:
        callback(stage)


def _headers() -> dict[str, str]:
    # identity: an honest server then sends no compressed body to inflate past the caps
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "User-Agent": USER_AGENT,
        "Accept-Encoding": "identity",
    }


class _BaseClient:
    """Everything that does no I/O: settings, validation, request building, parsing."""

    def __init__(
        self,
        api_key: str | None = None,
        api_url: str | None = None,
        timeout: float | None = None,
        *,
        max_body_bytes: int | None = None,
        max_side: int | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.settings = settings or Settings.resolve(
            api_key=api_key,
            api_url=api_url,
            timeout=timeout,
            max_body_bytes=max_body_bytes,
            max_side=max_side,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.settings!r})"

    @property
    def api_url(self) -> str:
        """The endpoint this client posts to."""
        return self.settings.api_url

    def _timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.settings.timeout, connect=CONNECT_TIMEOUT)

    def _key(self, api_key: str | None) -> str:
        key = (api_key or self.settings.api_key or "").strip()
        if not key:
            raise ConfigError("未配置 API key", "no API key: set JUHE_API_KEY or pass api_key", kind="key")
        if not key.isprintable():  # control characters or lone surrogates; never echo the key
            raise InvalidRequestError("API key 含有控制字符", "the API key holds control characters")
        return key

    def _secrets(self, key: str) -> tuple[str | None, ...]:
        """Every key a provider might echo: the one sent and the client's own."""
        return (key, self.settings.api_key)

    def _check(self, prompt, images, size, model, mask, mask_lenient) -> EditParams:
        return check_params(prompt, images, size, model, mask=mask, mask_lenient=mask_lenient)

    def _prepare(self, params: EditParams, key: str) -> tuple[bytes, EditParams, _Local]:
        """The body to send, the parameters as sent (size settled, 图1 cut for a region), and what
        the result must carry for its download. CPU work and local reads only."""
        params, job = plan_edit(params)
        budget = image_budget(self.settings.max_body_bytes, params, key)
        prepared = prepare_images(params, max_side=self.settings.max_side, budget=budget)
        return build_form(key, params, prepared), params, _Local(job, describe_inputs(job, prepared))

    def _check_status(self, response: httpx.Response, secrets: Secrets) -> _Body:
        if response.status_code != 200:
            raise status_error(response.status_code, scrub_text(response.reason_phrase, *secrets))
        return _Body(response, MAX_ANSWER_BYTES, _answer_too_large)

    def _finish(
        self,
        answer: bytes,
        params: EditParams,
        local: _Local,
        secrets: Secrets,
        started: float,
        requested_at: str,
    ) -> EditResult:
        result = parse_response(answer, params, secrets)
        result.output_size = local.job.output_size
        result.region = local.job.region
        result.inputs = local.inputs
        result._job = local.job
        result.requested_at = requested_at
        result.elapsed_s = round(time.monotonic() - started, 3)
        result.completed_at = now_iso()
        logger.info("edit %s done in %.2fs", result.order_id, result.elapsed_s)
        return result


def _check_transport(transport: object, max_connections: int | None) -> int:
    if transport is not None and max_connections is not None:
        raise ValueError("max_connections sizes the built-in transport; size your own transport's pool")
    if max_connections is not None and max_connections < 1:
        raise ValueError(f"max_connections must be at least 1, got {max_connections}")
    return max_connections or DEFAULT_MAX_CONNECTIONS


class ImageEditClient(_BaseClient):
    """Blocking client of the image-edit API.

    `max_connections` sizes the connection pool (default 100); `transport` replaces httpx's own
    (retries still apply around it).
    """

    def __init__(
        self,
        api_key: str | None = None,
        api_url: str | None = None,
        timeout: float | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        max_connections: int | None = None,
        **kwargs,
    ) -> None:
        pool_size = _check_transport(transport, max_connections)
        super().__init__(api_key, api_url, timeout, **kwargs)
        self._http = httpx.Client(
            timeout=self._timeout(),
            transport=RetryTransport(transport or http_transport(pool_size)),
            follow_redirects=False,
        )

    def __enter__(self) -> ImageEditClient:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def edit(
        self,
        prompt: str,
        images: ImageInput | Sequence[ImageInput],
        size=None,
        model: str | None = None,
        *,
        mask: ImageInput | None = None,
        mask_lenient: bool = False,
        api_key: str | None = None,
        on_stage: Callable[[str], None] | None = None,
    ) -> EditResult:
        """Edit 1-3 images as `prompt` says; `size` is `W*H`, `(W, H)`, None to keep the aspect, or
        "original" for a result at 图1's exact pixel size.

        `mask` (a path, bytes, a PIL image or a data URI, the size of 图1 once upright; white or
        opaque means change) makes it a region edit: only the painted part of 图1 changes and the
        saved result has 图1's size. `mask_lenient` scales a mask of another size instead of
        refusing it. Both need 图1 as a file, bytes, a PIL image or a data URI, not a link.
        `api_key` overrides the client's key for this call only; `on_stage` is told
        "preparing" and then "waiting" as the call moves on. The call, answer included, takes at
        most the settings' `timeout` once the images are prepared.
        """
        params = self._check(prompt, images, size, model, mask, mask_lenient)
        key = self._key(api_key)
        secrets = self._secrets(key)
        started, requested_at = time.monotonic(), now_iso()
        _stage(on_stage, "preparing")
        body, params, local = self._prepare(params, key)
        _stage(on_stage, "waiting")
        with provider_boundary(secrets), deadline(self.settings.timeout):
            with self._http.stream("POST", self.api_url, content=body, headers=_headers()) as response:
                answer = self._check_status(response, secrets)
                for chunk in response.iter_bytes():
                    answer.add(chunk)
            return self._finish(answer.data(), params, local, secrets, started, requested_at)

    def fetch(self, result: EditResult, url: str) -> tuple[str, bytes, str]:
        """Download one result link: (url, bytes, format), a whole image within the caps."""
        check_url(result, url)
        with (
            download_boundary(result, url, self._secrets(None)),
            deadline(DOWNLOAD_TIMEOUT),
            self._http.stream("GET", url, headers={"Accept-Encoding": "identity"}) as response,
        ):
            _check_download_status(result, url, response)
            body = _Body(response, MAX_DOWNLOAD_BYTES, _download_too_large(result, url))
            for chunk in response.iter_bytes():
                body.add(chunk)
        data = body.data()
        return url, data, check_image(result, url, data)

    def download(
        self, result: EditResult, directory: str | os.PathLike, *, stem: str | None = None
    ) -> list[Path]:
        """Save each result image (one at a time) and a JSON sidecar into `directory`.

        Every saved image carries the AIGC label and none of the provider's metadata; a region
        edit is saved stitched into 图1, a size="original" one at 图1's size, with the provider's
        own image beside it (`<name>_provider.<ext>`). Returns the saved results' paths (not the
        provider's copies, which the sidecar lists). A link that fails is named in
        `result.warnings` and the others are still saved; `DownloadError` only when none could be.
        """
        saver = ResultSaver(result, directory, stem, endpoint_name(self.api_url), self._secrets(None))
        for index, url in enumerate(result.image_urls, start=1):
            try:
                _, data, fmt = self.fetch(result, url)
            except DownloadError as exc:
                saver.fail(index, exc)
                continue
            saver.save(index, data, fmt)
        return saver.finish()


class _ByteBudget:
    """Bytes the downloads of one async client hold at once, however many run."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.free = total
        self._changed: asyncio.Condition | None = None  # made in the loop that first uses it

    @contextlib.asynccontextmanager
    async def hold(self, nbytes: int) -> AsyncIterator[None]:
        """Wait until `nbytes` (at most the whole budget) are free, and hold them inside."""
        nbytes = min(nbytes, self.total)
        self._changed = self._changed or asyncio.Condition()
        async with self._changed:
            await self._changed.wait_for(lambda: self.free >= nbytes)
            self.free -= nbytes
        try:
            yield
        finally:
            self.free += nbytes
            async with self._changed:
                self._changed.notify_all()


class _BlockingByteBudget:
    """`_ByteBudget` for downloads read on worker threads."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.free = total
        self._changed = threading.Condition()

    @contextlib.contextmanager
    def hold(self, nbytes: int) -> Iterator[None]:
        """Wait until `nbytes` (at most the whole budget) are free, and hold them inside."""
        nbytes = min(nbytes, self.total)
        with self._changed:
            self._changed.wait_for(lambda: self.free >= nbytes)
            self.free -= nbytes
        try:
            yield
        finally:
            with self._changed:
                self.free += nbytes
                self._changed.notify_all()


T = TypeVar("T")


async def _file_work(on_loop: bool, fn: Callable[..., T], *args: object) -> T:
    """`fn(*args)` on the event loop itself (`on_loop`) or on a worker thread."""
    return fn(*args) if on_loop else await asyncio.to_thread(fn, *args)


class AsyncImageEditClient(_BaseClient):
    """Asyncio client of the image-edit API; image work runs in a thread, off the event loop.

    `max_connections` sizes the connection pool (default 100): the most edits and downloads in
    flight at once. `transport` replaces httpx's own (retries still apply around it).
    `download_memory` bounds the bytes of results held at once while they are read, checked and
    saved (default 64 MiB; a larger result goes alone).

    With httpx's own transport, result links are downloaded, checked and saved on worker threads
    (as many as `max_connections`) through a blocking pool of the same size: a result of a megabyte
    read on the event loop took some 15 reads, each resuming and pausing the socket's reader, and
    in a burst of 256 edits the downloads were 16 % of the loop's time, holding up every other
    caller. With a transport of the caller's (an async one) they stay on the event loop, and each
    result is checked and saved on a worker thread, or with `save_on_loop=True` on the event loop
    itself unless it must be stitched or resized into 图1: for a loop that serves nothing else (the
    app's edit processes), where the hand-off to a thread and back cost more than the few
    milliseconds of the work (10 % of such a process's CPU in a burst of edits).
    """

    def __init__(
        self,
        api_key: str | None = None,
        api_url: str | None = None,
        timeout: float | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        max_connections: int | None = None,
        download_memory: int | None = None,
        save_on_loop: bool = False,
        **kwargs,
    ) -> None:
        pool_size = _check_transport(transport, max_connections)
        if not isinstance(save_on_loop, bool):
            raise ValueError(f"save_on_loop must be True or False, got {save_on_loop!r}")
        if download_memory is None:
            download_memory = DOWNLOAD_MEMORY_BYTES
        if isinstance(download_memory, bool) or not isinstance(download_memory, int) or download_memory < 1:
            raise ValueError(f"download_memory must be a positive number of bytes, got {download_memory!r}")
        super().__init__(api_key, api_url, timeout, **kwargs)
        self._http = httpx.AsyncClient(
            timeout=self._timeout(),
            transport=RetryTransport(transport or async_http_transport(pool_size)),
            follow_redirects=False,
        )
        self._download_memory = _ByteBudget(download_memory)
        self._save_on_loop = save_on_loop
        self._blocking: httpx.Client | None = None
        self._threads: ThreadPoolExecutor | None = None
        if transport is None:
            self._blocking = httpx.Client(
                timeout=self._timeout(),
                transport=RetryTransport(http_transport(pool_size)),
                follow_redirects=False,
            )
            # threads start as downloads need them, up to one per connection
            self._threads = ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix="juhe-download")
            self._blocking_memory = _BlockingByteBudget(download_memory)

    async def __aenter__(self) -> AsyncImageEditClient:
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pools and the download threads."""
        await self._http.aclose()
        if self._blocking is not None:
            self._threads.shutdown(wait=False)
            self._blocking.close()

    async def edit(
        self,
        prompt: str,
        images: ImageInput | Sequence[ImageInput],
        size=None,
        model: str | None = None,
        *,
        mask: ImageInput | None = None,
        mask_lenient: bool = False,
        api_key: str | None = None,
        on_stage: Callable[[str], None] | None = None,
    ) -> EditResult:
        """Edit 1-3 images as `prompt` says; `size` is `W*H`, `(W, H)`, None to keep the aspect, or
        "original" for a result at 图1's exact pixel size.

        `mask` (a path, bytes, a PIL image or a data URI, the size of 图1 once upright; white or
        opaque means change) makes it a region edit: only the painted part of 图1 changes and the
        saved result has 图1's size. `mask_lenient` scales a mask of another size instead of
        refusing it. Both need 图1 as a file, bytes, a PIL image or a data URI, not a link.
        `api_key` overrides the client's key for this call only; `on_stage` is told
        "preparing" and then "waiting" as the call moves on. The call, answer included, takes at
        most the settings' `timeout` once the images are prepared.
        """
        params = self._check(prompt, images, size, model, mask, mask_lenient)
        key = self._key(api_key)
        secrets = self._secrets(key)
        started, requested_at = time.monotonic(), now_iso()
        _stage(on_stage, "preparing")
        body, params, local = await asyncio.to_thread(self._prepare, params, key)
        _stage(on_stage, "waiting")
        with provider_boundary(secrets), deadline(self.settings.timeout):
            async with self._http.stream("POST", self.api_url, content=body, headers=_headers()) as response:
                answer = self._check_status(response, secrets)
                async for chunk in response.aiter_bytes():
                    answer.add(chunk)
            return self._finish(answer.data(), params, local, secrets, started, requested_at)

    @contextlib.asynccontextmanager
    async def _fetching(
        self, result: EditResult, url: str, on_loop: bool = False
    ) -> AsyncIterator[tuple[bytes, str]]:
        """The bytes and format of one result link, held within the client's download memory;
        checked on the event loop (`on_loop`) or a worker thread."""
        check_url(result, url)
        with download_boundary(result, url, self._secrets(None)), deadline(DOWNLOAD_TIMEOUT):
            async with self._http.stream("GET", url, headers={"Accept-Encoding": "identity"}) as response:
                _check_download_status(result, url, response)
                body = _Body(response, MAX_DOWNLOAD_BYTES, _download_too_large(result, url))
                async with self._download_memory.hold(body.expected):
                    async for chunk in response.aiter_bytes():
                        body.add(chunk)
                    data = body.data()
                    del body
                    yield data, await _file_work(on_loop, check_image, result, url, data)

    @contextlib.contextmanager
    def _fetched(self, result: EditResult, url: str) -> Iterator[tuple[bytes, str]]:
        """`_fetching` on a worker thread, through the blocking pool."""
        check_url(result, url)
        with (
            download_boundary(result, url, self._secrets(None)),
            deadline(DOWNLOAD_TIMEOUT),
            self._blocking.stream("GET", url, headers={"Accept-Encoding": "identity"}) as response,
        ):
            _check_download_status(result, url, response)
            body = _Body(response, MAX_DOWNLOAD_BYTES, _download_too_large(result, url))
            with self._blocking_memory.hold(body.expected):
                for chunk in response.iter_bytes():
                    body.add(chunk)
                data = body.data()
                del body
                yield data, check_image(result, url, data)

    def _save_one(self, saver: ResultSaver, result: EditResult, index: int, url: str) -> None:
        """Download, check and save result image `index` on a worker thread."""
        try:
            with self._fetched(result, url) as (data, fmt):
                saver.save(index, data, fmt)
        except DownloadError as exc:
            saver.fail(index, exc)

    async def fetch(self, result: EditResult, url: str) -> tuple[str, bytes, str]:
        """Download one result link: (url, bytes, format), a whole image within the caps."""
        async with self._fetching(result, url) as (data, fmt):
            return url, data, fmt

    async def download(
        self, result: EditResult, directory: str | os.PathLike, *, stem: str | None = None
    ) -> list[Path]:
        """Save each result image (side by side, within the download memory) and a JSON sidecar.

        Every saved image carries the AIGC label and none of the provider's metadata; a region
        edit is saved stitched into 图1, a size="original" one at 图1's size, with the provider's
        own image beside it (`<name>_provider.<ext>`). Returns the saved results' paths (not the
        provider's copies, which the sidecar lists). A link that fails is named in
        `result.warnings` and the others are still saved; `DownloadError` only when none could be.
        """
        saver = ResultSaver(result, directory, stem, endpoint_name(self.api_url), self._secrets(None))
        if self._blocking is not None:  # off the event loop (see the class's docstring)
            loop = asyncio.get_running_loop()
            links = enumerate(result.image_urls, start=1)
            save_one = self._save_one
            await asyncio.gather(
                *(loop.run_in_executor(self._threads, save_one, saver, result, i, url) for i, url in links)
            )
            return await asyncio.to_thread(saver.finish)

        # stitching or resizing into 图1 can take a second: never on the loop
        on_loop = self._save_on_loop and (result._job is None or result._job.target is None)

        async def save(index: int, url: str) -> None:
            try:
                async with self._fetching(result, url, on_loop) as (data, fmt):
                    await _file_work(on_loop, saver.save, index, data, fmt)
            except DownloadError as exc:
                saver.fail(index, exc)

        await asyncio.gather(*(save(i, url) for i, url in enumerate(result.image_urls, start=1)))
        return await _file_work(on_loop, saver.finish)
