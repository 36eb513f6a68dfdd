"""Settings read from the environment and a `.env` file when a client is built."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from dotenv import dotenv_values, find_dotenv

from ._exceptions import config_error
from ._urls import is_http_url

DEFAULT_API_URL = "https://gpt.juhe.cn/image_edit/edit"
DEFAULT_TIMEOUT = 90.0  # total time of one call, answer included; the provider recommends 60 s
CONNECT_TIMEOUT = 10.0
DEFAULT_MAX_BODY_BYTES = 6 * 1024 * 1024  # the gateway is reported to reject larger bodies
DEFAULT_MAX_SIDE = 2048  # the model works at about one megapixel


def load_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return `.env` values overlaid by the real environment (real variables win)."""
    path = find_dotenv(usecwd=True)
    values = {k: v for k, v in dotenv_values(path).items() if v is not None} if path else {}
    values.update(os.environ if environ is None else environ)
    return values


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise config_error(name, "必须是数字", f"must be a number, got {raw!r}") from None
    if value <= 0:
        raise config_error(name, "必须是正数", f"must be positive, got {raw!r}")
    return value


@dataclass(frozen=True)
class Settings:
    """Connection settings of a client; the key is kept out of `repr`."""

    api_key: str | None = None
    api_url: str = DEFAULT_API_URL
    timeout: float = DEFAULT_TIMEOUT
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_side: int = DEFAULT_MAX_SIDE

    def __repr__(self) -> str:
        key = "set" if self.api_key else "missing"
        return (
            f"Settings(api_key=<{key}>, api_url={self.api_url!r}, timeout={self.timeout}, "
            f"max_body_bytes={self.max_body_bytes}, max_side={self.max_side})"
        )

    @classmethod
    def resolve(
        cls,
        api_key: str | None = None,
        api_url: str | None = None,
        timeout: float | None = None,
        max_body_bytes: int | None = None,
        max_side: int | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Settings:
        """Fill each `None` from JUHE_* variables (and `.env`), then validate; raise `ConfigError`."""
        env = load_environment(environ)
        settings = cls(
            api_key=(api_key if api_key is not None else env.get("JUHE_API_KEY", "")).strip() or None,
            api_url=(api_url or env.get("JUHE_API_URL", "").strip() or DEFAULT_API_URL),
            timeout=float(timeout) if timeout is not None else _number(env, "JUHE_TIMEOUT", DEFAULT_TIMEOUT),
            max_body_bytes=int(max_body_bytes or _number(env, "JUHE_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES)),
            max_side=int(max_side or _number(env, "JUHE_MAX_SIDE", DEFAULT_MAX_SIDE)),
        )
        if not is_http_url(settings.api_url):
            raise config_error(
                "JUHE_API_URL",
                "必须是带主机名的 http:// 或 https:// 链接",
                f"must be an http:// or https:// URL with a host, got {settings.api_url!r}",
            )
        if settings.timeout <= 0:
            raise config_error("JUHE_TIMEOUT", "必须是正数", f"must be positive, got {settings.timeout!r}")
        if settings.max_side < 512:
            raise config_error(
                "JUHE_MAX_SIDE", "至少为 512", f"must be at least 512, got {settings.max_side}"
            )
        return settings
