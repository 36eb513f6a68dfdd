"""The sync and async clients: shared logic in `_BaseClient`, each adds only its I/O."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import httpx

from ._config import CONNECT_TIMEOUT, Settings
from ._download import MAX_DOWNLOAD_BYTES, check_image, check_url, download_error, save_result
from ._exceptions import (
    ConnectError,
    HTTPStatusError,
    InvalidRequestError,
    JuheError,
    ReadTimeoutError,
    TransportError,
)
from ._images import ImageInput, PreparedImage
from ._models import EditResult, now_iso
from ._request import (
    EditParams,
    build_form,
    check_params,
    image_budget,
    parse_response,
    prepare_images,
    scrub,
)

logger = logging.getLogger("juhe")

RETRY_STATUSES = (429, 502, 503, 504)
STATUS_RETRIES = 2
CONNECT_RETRIES = 2
DOWNLOAD_TIMEOUT = 30.0
USER_AGENT = "juhe-image-edit/1.0 (+python-httpx)"


@contextlib.contextmanager
def map_transport_errors(secret: str | None = None) -> Iterator[None]:
    """Translate httpx's exceptions into `juhe` ones: the one boundary where that happens."""
    try:
        yield
    except httpx.TimeoutException as exc:
        if isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout)):
            raise ConnectError(
                "connect failed: 连接服务超时 / could not connect to the provider in time"
            ) from exc
        raise ReadTimeoutError(
            "timeout: 服务响应超时, 请求可能已被处理, 未自动重试 / the provider did not answer in "
            "time; the request may have been processed, so it was not retried"
        ) from exc
    except httpx.ConnectError as exc:
        raise ConnectError(
            f"connect failed: 无法连接服务 / could not reach the provider ({_plain(exc, secret)})"
        ) from exc
    except httpx.RemoteProtocolError as exc:
        raise TransportError(
            "connection dropped: 连接被中断 / the provider closed the connection without an answer"
        ) from exc
    except httpx.HTTPError as exc:
        raise TransportError(
            f"transport error: 网络错误 / {type(exc).__name__}: {_plain(exc, secret)}"
        ) from exc
    except httpx.InvalidURL as exc:  # not an httpx.HTTPError
        raise TransportError(f"bad link: 链接无效 / invalid URL: {_plain(exc, secret)}") from exc


def _plain(exc: Exception, secret: str | None) -> str:
    text = str(exc) or type(exc).__name__
    return text.replace(secret, "***") if secret and len(secret) >= 6 else text


def _status_error(response: httpx.Response) -> HTTPStatusError:
    return HTTPStatusError(
        f"http {response.status_code}: 服务返回 HTTP {response.status_code} / the provider answered "
        f"HTTP {response.status_code} {response.reason_phrase}",
        status_code=response.status_code,
    )


def _stage(callback: Callable[[str], None] | None, stage: str) -> None:
    if callback is not None:
        callback(stage)


class _Download:
    """The bytes of one result link, bounded in size and in total time (a trickling link too)."""

    def __init__(self, result: EditResult, url: str) -> None:
        self.result, self.url = result, url
        self.started = time.monotonic()
        self.chunks: list[bytes] = []
        self.total = 0

    def check_status(self, response: httpx.Response) -> None:
        """Anything but 200 means the link expired or failed."""
        if response.status_code != 200:
            raise download_error(
                self.result, self.url, f"HTTP {response.status_code} (the link may have expired)"
            )

    def add(self, chunk: bytes) -> None:
        """Keep a chunk, or raise once the size cap or the deadline is passed."""
        self.total += len(chunk)
        if self.total > MAX_DOWNLOAD_BYTES:
            raise download_error(self.result, self.url, f"larger than {MAX_DOWNLOAD_BYTES} bytes")
        if time.monotonic() - self.started > DOWNLOAD_TIMEOUT:
            raise download_error(self.result, self.url, f"took longer than {DOWNLOAD_TIMEOUT:g} s")
        self.chunks.append(chunk)

    def data(self) -> bytes:
        """All the bytes received."""
        return b"".join(self.chunks)


def _backoff(attempt: int) -> float:
    return min(8.0, 0.5 * 2**attempt) * (0.5 + random.random() / 2)


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
            raise InvalidRequestError(
                "missing key: 未配置 API key / no API key: set JUHE_API_KEY or pass api_key"
            )
        if not key.isprintable():  # control characters or lone surrogates; never echo the key
            raise InvalidRequestError(
                "invalid key: API key 含有控制字符 / the API key holds control characters"
            )
        return key

    def _check(self, prompt, images, size, model) -> EditParams:
        return check_params(prompt, images, size, model)

    def _prepare(self, params: EditParams, key: str) -> bytes:
        budget = image_budget(self.settings.max_body_bytes, params, key)
        prepared: list[PreparedImage] = prepare_images(params, max_side=self.settings.max_side, budget=budget)
        return build_form(key, params, prepared)

    def _finish(
        self, response: httpx.Response, params: EditParams, key: str, started: float, requested_at: str
    ) -> EditResult:
        if response.status_code != 200:
            raise _status_error(response)
        try:
            result = parse_response(response.content, params)
        except JuheError as exc:
            raise scrub(exc, key) from None
        result.requested_at = requested_at
        result.elapsed_s = round(time.monotonic() - started, 3)
        result.completed_at = now_iso()
        logger.info("edit %s done in %.2fs", result.order_id, result.elapsed_s)
        return result


def _headers() -> dict[str, str]:
    return {"Content-Type": "application/x-www-form-urlencoded", "User-Agent": USER_AGENT}


class ImageEditClient(_BaseClient):
    """Blocking client of the image-edit API."""

    def __init__(
        self,
        api_key: str | None = None,
        api_url: str | None = None,
        timeout: float | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        **kwargs,
    ) -> None:
        super().__init__(api_key, api_url, timeout, **kwargs)
        self._http = httpx.Client(
            timeout=self._timeout(),
            transport=transport or httpx.HTTPTransport(retries=CONNECT_RETRIES),
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
        api_key: str | None = None,
        on_stage: Callable[[str], None] | None = None,
    ) -> EditResult:
        """Edit 1-3 images as `prompt` says; `size` is `W*H`, `(W, H)` or None to keep the aspect.

        `api_key` overrides the client's key for this call only; `on_stage` is told
        "preparing" and then "waiting" as the call moves on.
        """
        params = self._check(prompt, images, size, model)
        key = self._key(api_key)
        started, requested_at = time.monotonic(), now_iso()
        _stage(on_stage, "preparing")
        body = self._prepare(params, key)
        _stage(on_stage, "waiting")
        return self._finish(self._post(body, key), params, key, started, requested_at)

    def _post(self, body: bytes, key: str) -> httpx.Response:
        for attempt in range(STATUS_RETRIES + 1):
            with map_transport_errors(key):
                response = self._http.post(self.api_url, content=body, headers=_headers())
            if response.status_code not in RETRY_STATUSES or attempt == STATUS_RETRIES:
                return response
            time.sleep(_backoff(attempt))
        raise AssertionError("unreachable")

    def fetch(self, result: EditResult, url: str) -> tuple[str, bytes, str]:
        """Download one result link, checked to be a whole image under the size cap."""
        check_url(result, url)
        body = _Download(result, url)
        try:
            with map_transport_errors(), self._http.stream("GET", url, timeout=DOWNLOAD_TIMEOUT) as response:
                body.check_status(response)
                for chunk in response.iter_bytes():
                    body.add(chunk)
        except TransportError as exc:
            raise download_error(result, url, str(exc)) from exc
        data = body.data()
        return url, data, check_image(result, url, data)

    def download(
        self, result: EditResult, directory: str | os.PathLike, *, stem: str | None = None
    ) -> list[Path]:
        """Save every result image and a JSON sidecar into `directory`; return the image paths."""
        images = [self.fetch(result, url) for url in result.image_urls]
        return save_result(result, directory, images, stem)


class AsyncImageEditClient(_BaseClient):
    """Asyncio client of the image-edit API; image work runs in a thread, off the event loop."""

    def __init__(
        self,
        api_key: str | None = None,
        api_url: str | None = None,
        timeout: float | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        **kwargs,
    ) -> None:
        super().__init__(api_key, api_url, timeout, **kwargs)
        self._http = httpx.AsyncClient(
            timeout=self._timeout(),
            transport=transport or httpx.AsyncHTTPTransport(retries=CONNECT_RETRIES),
            follow_redirects=False,
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=40),
        )

    async def __aenter__(self) -> AsyncImageEditClient:
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def edit(
        self,
        prompt: str,
        images: ImageInput | Sequence[ImageInput],
        size=None,
        model: str | None = None,
        *,
        api_key: str | None = None,
        on_stage: Callable[[str], None] | None = None,
    ) -> EditResult:
        """Edit 1-3 images as `prompt` says; `size` is `W*H`, `(W, H)` or None to keep the aspect.

        `api_key` overrides the client's key for this call only; `on_stage` is told
        "preparing" and then "waiting" as the call moves on.
        """
        params = self._check(prompt, images, size, model)
        key = self._key(api_key)
        started, requested_at = time.monotonic(), now_iso()
        _stage(on_stage, "preparing")
        body = await asyncio.to_thread(self._prepare, params, key)
        _stage(on_stage, "waiting")
        return self._finish(await self._post(body, key), params, key, started, requested_at)

    async def _post(self, body: bytes, key: str) -> httpx.Response:
        for attempt in range(STATUS_RETRIES + 1):
            with map_transport_errors(key):
                response = await self._http.post(self.api_url, content=body, headers=_headers())
            if response.status_code not in RETRY_STATUSES or attempt == STATUS_RETRIES:
                return response
            await asyncio.sleep(_backoff(attempt))
        raise AssertionError("unreachable")

    async def fetch(self, result: EditResult, url: str) -> tuple[str, bytes, str]:
        """Download one result link, checked to be a whole image under the size cap."""
        check_url(result, url)
        body = _Download(result, url)
        try:
            with map_transport_errors():
                async with self._http.stream("GET", url, timeout=DOWNLOAD_TIMEOUT) as response:
                    body.check_status(response)
                    async for chunk in response.aiter_bytes():
                        body.add(chunk)
        except TransportError as exc:
            raise download_error(result, url, str(exc)) from exc
        data = body.data()
        return url, data, await asyncio.to_thread(check_image, result, url, data)

    async def download(
        self, result: EditResult, directory: str | os.PathLike, *, stem: str | None = None
    ) -> list[Path]:
        """Save every result image and a JSON sidecar into `directory`; return the image paths."""
        images = await asyncio.gather(*(self.fetch(result, url) for url in result.image_urls))
        return await asyncio.to_thread(save_result, result, directory, list(images), stem)
