"""The exceptions of the `juhe` package: one root, one subclass per family.

    JuheError                      .kind .code .zh .en .reason .order_id .detail
    ├── ConfigError                a bad setting, or no API key
    ├── InvalidRequestError        282501 282502 282506, local validation
    ├── ContentRejectedError       282504 (never retried)
    ├── GenerationFailedError      282505
    ├── AuthenticationError        10001-10009 (key and account)
    ├── RateLimitError             10011-10013 (quota and rate)
    ├── ServiceUnavailableError    282503 10014 10020 10021
    ├── TransportError             no provider code
    │   ├── ConnectError           the provider could not be reached
    │   ├── ReadTimeoutError       no answer in time (never retried)
    │   ├── HTTPStatusError        an HTTP status other than 200
    │   └── MalformedResponseError a body that is not the documented JSON
    └── DownloadError              a result link expired or failed

An error is data: programs format from its fields, never by parsing `str(error)`, which is built
from them as `label: 中文 / English[: detail][ (provider: reason)]`. A code the table does not know
still surfaces as a plain `JuheError` with its number.
"""

from __future__ import annotations

from urllib.parse import quote, quote_plus

from ._urls import public_link

# A key shorter than this is not looked for in texts: replacing a two-letter "key" everywhere would
# mangle every message, and real keys are 32 characters.
MIN_SCRUBBED_KEY = 6
MASK = "***"
# kind -> the label `str()` starts with; provider codes read "error 282504", statuses "http 502"
LABELS = {
    "invalid": "invalid request",
    "config": "bad setting",
    "key": "missing key",
    "timeout": "timeout",
    "connect": "connect failed",
    "dropped": "connection dropped",
    "network": "transport error",
    "malformed": "malformed response",
    "download": "download failed",
}


class JuheError(Exception):
    """Root of every error raised by `juhe`.

    `kind` is a short word a program can switch on: the provider's code as text ("282504"), or
    "timeout", "connect", "http502", "malformed", "dropped", "network", "download", "invalid",
    "config", "key". `zh` and `en` explain it; `reason` and `order_id` are the provider's, and
    `detail` is plain extra text. Provider-given texts never hold the API key.
    """

    kind = "error"

    def __init__(
        self,
        zh: str,
        en: str,
        *,
        kind: str | None = None,
        code: int | None = None,
        reason: str | None = None,
        order_id: str | None = None,
        detail: str | None = None,
    ) -> None:
        super().__init__(zh, en)
        self.zh, self.en = zh, en
        self.code = code
        self.kind = kind or (str(code) if code is not None else type(self).kind)
        self.reason = reason
        self.order_id = order_id
        self.detail = detail

    def __reduce__(self):
        """Pickled with its fields, so that it crosses processes whatever its constructor takes."""
        return (_rebuilt, (type(self), self.args), self.__dict__)

    @property
    def label(self) -> str:
        """What `str()` starts with: "error 282504", "http 502", "timeout", "invalid request", ..."""
        if self.code is not None:
            return f"error {self.code}"
        return LABELS.get(self.kind, self.kind)

    @property
    def explanation(self) -> str:
        """`中文 / English`, then the detail and a provider reason the Chinese does not already say."""
        text = f"{self.zh} / {self.en}"
        if self.detail:
            text += f": {self.detail}"
        if self.reason and self.reason not in self.zh:
            text += f" (provider: {self.reason})"
        return text

    def __str__(self) -> str:
        return f"{self.label}: {self.explanation}"


def _rebuilt(cls: type[JuheError], args: tuple) -> JuheError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    return error


class ConfigError(JuheError):
    """A setting is unusable (kind "config"), or no API key is set (kind "key")."""

    kind = "config"


class InvalidRequestError(JuheError):
    """The request is malformed: empty text or image, bad size, too large, bad input."""

    kind = "invalid"


class ContentRejectedError(JuheError):
    """The provider flagged the prompt or an image as sensitive (282504)."""


class GenerationFailedError(JuheError):
    """The model failed to produce an image (282505)."""


class AuthenticationError(JuheError):
    """The key is wrong, expired, banned or lacks permission (10001-10009)."""


class RateLimitError(JuheError):
    """A request or quota limit was reached (10011-10013)."""


class ServiceUnavailableError(JuheError):
    """The provider had an internal, network or maintenance problem."""


class TransportError(JuheError):
    """The exchange with the provider failed below the API: network, timeout, HTTP, body."""

    kind = "network"


class ConnectError(TransportError):
    """The provider could not be reached (DNS, refused, TLS); the request was not sent."""

    kind = "connect"


class ReadTimeoutError(TransportError):
    """No answer in time. The request may have reached the provider, so it is never retried."""

    kind = "timeout"


class HTTPStatusError(TransportError):
    """The provider answered with an HTTP status other than 200; kind is "http" and the status."""

    def __init__(self, zh: str, en: str, *, status_code: int, **fields) -> None:
        super().__init__(zh, en, kind=f"http{status_code}", **fields)
        self.status_code = status_code

    @property
    def label(self) -> str:
        """ "http 502" and the like."""
        return f"http {self.status_code}"


class MalformedResponseError(TransportError):
    """The provider's answer is not the documented JSON, or is larger than any real answer."""

    kind = "malformed"


class DownloadError(JuheError):
    """A result image could not be saved: its link expired, failed, or is not a usable image."""

    kind = "download"


# code -> (family, 原文, English explanation and what to do)
ERROR_CODES: dict[int, tuple[type[JuheError], str, str]] = {
    282501: (InvalidRequestError, "text 和 image1 不可为空", "text and image1 must not be empty"),
    282502: (InvalidRequestError, "size 格式错误", "bad size format; use W*H with sides in [512, 2048]"),
    282503: (ServiceUnavailableError, "网络错误", "network error at the provider; try again later"),
    282504: (ContentRejectedError, "包含敏感词", "content flagged as sensitive; change the prompt or image"),
    282505: (GenerationFailedError, "生成失败", "generation failed; try another prompt or image"),
    282506: (InvalidRequestError, "base64 字符串大小超限", "an image is too large; use a smaller image"),
    10001: (AuthenticationError, "错误的请求 KEY", "wrong API key; check JUHE_API_KEY"),
    10002: (AuthenticationError, "该 KEY 无请求权限", "this key has no permission for the image-edit API"),
    10003: (AuthenticationError, "KEY 过期", "the API key has expired"),
    10004: (AuthenticationError, "错误的 OPENID", "wrong OPENID"),
    10005: (
        AuthenticationError,
        "应用未审核超时，请提交认证",
        "application not verified in time; submit verification",
    ),
    10007: (AuthenticationError, "未知的请求源", "unknown request source"),
    10008: (AuthenticationError, "被禁止的 IP", "this IP address is banned"),
    10009: (AuthenticationError, "被禁止的 KEY", "this API key is banned"),
    10011: (RateLimitError, "当前 IP 请求超过限制", "this IP is over its request limit; wait and retry"),
    10012: (RateLimitError, "请求超过次数限制", "request quota used up (daily limit)"),
    10013: (RateLimitError, "测试 KEY 超过请求限制", "the test key is over its request limit"),
    10014: (ServiceUnavailableError, "系统内部异常", "internal error at the provider; try again later"),
    10020: (ServiceUnavailableError, "接口维护", "the API is under maintenance; try again later"),
    10021: (ServiceUnavailableError, "接口停用", "the API is disabled"),
}


def error_for_code(code: int, reason: str | None = None, order_id: str | None = None) -> JuheError:
    """Build the exception for a provider `error_code`, known or not."""
    family, zh, en = ERROR_CODES.get(code, (JuheError, "未知错误", "unknown error code"))
    return family(zh, en, code=code, reason=reason, order_id=order_id)


def invalid(zh: str, en: str) -> InvalidRequestError:
    """A local validation error, raised before anything is sent."""
    return InvalidRequestError(zh, en)


def config_error(name: str, zh: str, en: str) -> ConfigError:
    """A setting `name` is unusable; the texts say what it accepts."""
    return ConfigError(f"{name} {zh}", f"{name} {en}")


def status_error(status: int, phrase: str = "") -> HTTPStatusError:
    """The provider answered HTTP `status`; `phrase` is its reason phrase (scrub it first)."""
    return HTTPStatusError(
        f"服务返回 HTTP {status}",
        f"the provider answered HTTP {status}",
        status_code=status,
        detail=phrase or None,
    )


def download_error(order_id: str, url: str, why: str) -> DownloadError:
    """A result of order `order_id` could not be saved from `url` (named without its signature)."""
    return DownloadError(
        f"结果图片下载失败（订单 {order_id}）",
        f"could not save the result of order {order_id} from {public_link(url)}",
        order_id=order_id,
        detail=why,
    )


def _forms(secrets: tuple[str | None, ...]) -> list[str]:
    """Each key long enough to look for, as given and as a URL or a form would escape it."""
    found = set()
    for secret in secrets:
        if secret and len(secret) >= MIN_SCRUBBED_KEY:
            found.update((secret, quote(secret, safe=""), quote(secret), quote_plus(secret, safe="")))
    return sorted(found, key=len, reverse=True)


def scrub_text(text: str, *secrets: str | None) -> str:
    """A provider-given text made safe to show and store: every key masked, and control,
    format and surrogate characters (terminal escapes, bidi overrides) replaced.

    The one place where provider-given strings are cleaned; everything else calls this.
    """
    for form in _forms(secrets):
        text = text.replace(form, MASK)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else " " if c.isspace() else "\ufffd" for c in text)


def scrub(error: JuheError, *secrets: str | None) -> JuheError:
    """Clean every text field of `error` with `scrub_text` (in place) and return it."""
    for name in ("zh", "en", "reason", "order_id", "detail"):
        value = getattr(error, name)
        if isinstance(value, str):
            setattr(error, name, scrub_text(value, *secrets))
    error.args = (error.zh, error.en)
    return error
