"""Settings read from the environment and a `.env` file when a client is built, and the one rule
for finding that file, which the app follows too."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dotenv import dotenv_values

from ._exceptions import config_error
from ._urls import is_http_url

DEFAULT_API_URL = "https://gpt.juhe.cn/image_edit/edit"
DEFAULT_TIMEOUT = 90.0  # total time of one call, answer included; the provider recommends 60 s
CONNECT_TIMEOUT = 10.0
DEFAULT_MAX_BODY_BYTES = 6 * 1024 * 1024  # the gateway is reported to reject larger bodies
DEFAULT_MAX_SIDE = 2048  # the model works at about one megapixel


def dotenv_file(folder: str | os.PathLike | None = None) -> Path | None:
    """The `.env` file settings are read from, the one rule of the client and the app: `.env` in
    `folder` (default: the working folder) if it is a file, else None.

    Parent folders are not searched: a `.env` above the folder one starts from may belong to
    another project, and its key would be used without a word.
    """
    path = Path(folder or ".") / ".env"
    return path if path.is_file() else None


def load_environment(
    environ: Mapping[str, str] | None = None, dotenv: str | os.PathLike | None = None
) -> dict[str, str]:
    """Return the values of the `dotenv` file (default: `dotenv_file()`) overlaid by `environ`
    (default: the real environment), which wins."""
    path = dotenv if dotenv is not None else dotenv_file()
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

    def __post_init__(self) -> None:
        """Refuse values no client can work with; the `ConfigError` names the variable."""
        if not is_http_url(self.api_url):
            raise config_error(
                "JUHE_API_URL",
                "必须是带主机名的 http:// 或 https:// 链接",
                f"must be an http:// or https:// URL with a host, got {self.api_url!r}",
            )
        if self.timeout <= 0:
            raise config_error("JUHE_TIMEOUT", "必须是正数", f"must be positive, got {self.timeout!r}")
        if self.max_side < 512:
            raise config_error("JUHE_MAX_SIDE", "至少为 512", f"must be at least 512, got {self.max_side}")

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
        """Fill each `None` from JUHE_* variables (and `dotenv_file()`); raise `ConfigError` if unusable."""
        env = load_environment(environ)
        return cls(
            api_key=(api_key if api_key is not None else env.get("JUHE_API_KEY", "")).strip() or None,
            api_url=(api_url or env.get("JUHE_API_URL", "").strip() or DEFAULT_API_URL),
            timeout=float(timeout) if timeout is not None else _number(env, "JUHE_TIMEOUT", DEFAULT_TIMEOUT),
            max_body_bytes=int(max_body_bytes or _number(env, "JUHE_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES)),
            max_side=int(max_side or _number(env, "JUHE_MAX_SIDE", DEFAULT_MAX_SIDE)),
        )
