"""The exceptions of the `juhe` package: one root, one subclass per family.

    JuheError                      .code .reason .order_id
    ├── InvalidRequestError        282501 282502 282506, local validation
    ├── ContentRejectedError       282504 (never retried)
    ├── GenerationFailedError      282505
    ├── AuthenticationError        10001-10009 (key and account)
    ├── RateLimitError             10011-10013 (quota and rate)
    ├── ServiceUnavailableError    282503 10014 10020 10021
    ├── TransportError             no provider code
    │   ├── ConnectError           the provider could not be reached
    │   ├── ReadTimeoutError           no answer in time (never retried)
    │   ├── HTTPStatusError        an HTTP status other than 200
    │   └── MalformedResponseError a body that is not the documented JSON
    └── DownloadError              a result link expired or failed

A code the table does not know still surfaces as a plain `JuheError` with its number.
"""

from __future__ import annotations


class JuheError(Exception):
    """Root of every error raised by `juhe`; carries the provider's code when there is one."""

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        reason: str | None = None,
        order_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.reason = reason
        self.order_id = order_id

    def __str__(self) -> str:
        return self.message


class InvalidRequestError(JuheError):
    """The request is malformed: empty text or image, bad size, too large, bad input."""


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


class ConnectError(TransportError):
    """The provider could not be reached (DNS, refused, TLS); the request was not sent."""


class ReadTimeoutError(TransportError):
    """No answer in time. The request may have reached the provider, so it is never retried."""


class HTTPStatusError(TransportError):
    """The provider answered with an HTTP status other than 200."""

    def __init__(self, message: str, *, status_code: int, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.status_code = status_code


class MalformedResponseError(TransportError):
    """The provider's answer is not the documented JSON."""


class DownloadError(JuheError):
    """A result image could not be saved: its link expired, failed, or is not an image."""


# code -> (family, 原文, English explanation and what to do)
ERROR_CODES: dict[int, tuple[type[JuheError], str, str]] = {
    282501: (InvalidRequestError, "text和image1不可为空", "text and image1 must not be empty"),
    282502: (InvalidRequestError, "size格式错误", "bad size format; use W*H with sides in [512, 2048]"),
    282503: (ServiceUnavailableError, "网络错误", "network error at the provider; try again later"),
    282504: (ContentRejectedError, "包含敏感词", "content flagged as sensitive; change the prompt or image"),
    282505: (GenerationFailedError, "生成失败", "generation failed; try another prompt or image"),
    282506: (InvalidRequestError, "base64字符串大小超限", "an image is too large; use a smaller image"),
    10001: (AuthenticationError, "错误的请求KEY", "wrong API key; check JUHE_API_KEY"),
    10002: (AuthenticationError, "该KEY无请求权限", "this key has no permission for the image-edit API"),
    10003: (AuthenticationError, "KEY过期", "the API key has expired"),
    10004: (AuthenticationError, "错误的OPENID", "wrong OPENID"),
    10005: (
        AuthenticationError,
        "应用未审核超时,请提交认证",
        "application not verified in time; submit verification",
    ),
    10007: (AuthenticationError, "未知的请求源", "unknown request source"),
    10008: (AuthenticationError, "被禁止的IP", "this IP address is banned"),
    10009: (AuthenticationError, "被禁止的KEY", "this API key is banned"),
    10011: (RateLimitError, "当前IP请求超过限制", "this IP is over its request limit; wait and retry"),
    10012: (RateLimitError, "请求超过次数限制", "request quota used up (daily limit)"),
    10013: (RateLimitError, "测试KEY超过请求限制", "the test key is over its request limit"),
    10014: (ServiceUnavailableError, "系统内部异常", "internal error at the provider; try again later"),
    10020: (ServiceUnavailableError, "接口维护", "the API is under maintenance; try again later"),
    10021: (ServiceUnavailableError, "接口停用", "the API is disabled"),
}


def error_for_code(code: int, reason: str | None = None, order_id: str | None = None) -> JuheError:
    """Build the exception for a provider `error_code`, known or not."""
    family, zh, en = ERROR_CODES.get(code, (JuheError, "未知错误", "unknown error code"))
    message = f"error {code}: {zh} / {en}"
    if reason and reason not in zh:
        message += f" (provider: {reason})"
    return family(message, code=code, reason=reason, order_id=order_id)
