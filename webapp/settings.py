"""The app's settings: one object, built once at start from the environment over a `.env` file.

Every `JUHE_*` variable the README lists is read here and nowhere else; a bad value stops the app
with one line naming the variable and what it accepts.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dotenv import dotenv_values

from juhe import JuheError, Settings
from webapp.limits import parse_trusted_proxies
from webapp.share import check_public_url
from webapp.store import default_output_dir

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|k|mb|m|gb|g)?\s*$", re.IGNORECASE)
_UNITS = {None: 1, "b": 1, "k": 1024, "kb": 1024, "m": 1024**2, "mb": 1024**2, "g": 1024**3, "gb": 1024**3}
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}
# On a Hugging Face Space (SPACE_ID set) with the server's key: edits per minute per visitor unless
# JUHE_RATE_LIMIT says otherwise.
SPACE_RATE_LIMIT = 10
# On a Space, JUHE_TRUSTED_PROXIES defaults to the private networks: the container is reachable only
# through the platform's proxy, which connects from such an address and appends the visitor's own
# address to X-Forwarded-For. Trusting it makes per-address limits per visitor; without it every
# visitor would share the proxy's address and one could lock all others out.
SPACE_TRUSTED_PROXIES = (
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "::1/128",
    "fc00::/7",
)


class ConfigError(ValueError):
    """A setting the app cannot start with; the message names the variable and what it accepts."""


@dataclass(frozen=True)
class AppSettings:
    """Everything the app is configured with. Secrets are kept out of `repr`."""

    client: Settings = field(default_factory=Settings)
    output_dir: Path = Path("outputs")
    concurrency: int = 16
    queue_size: int = 64
    max_upload_bytes: int = 20 * 1024 * 1024
    rate_limit: int = 0
    trusted_proxies: tuple[str, ...] = ()
    access_password: str | None = field(default=None, repr=False)
    sim_latency: float = 1.5
    mcp: bool = True
    mcp_token: str | None = field(default=None, repr=False)
    keep_days: float = 30.0
    output_max_bytes: int = 5 * 1024**3
    sharing: bool = True
    public_url: str | None = None
    browser_secret: str | None = field(default=None, repr=False)
    on_space: bool = False
    space_rate_default: bool = False
    daily_limit: int = 0
    cache_hours: float = 24.0

    @property
    def offline(self) -> bool:
        """True without a server key: edits go to the built-in simulator."""
        return self.client.api_key is None

    @property
    def mcp_enabled(self) -> bool:
        """MCP is served unless turned off, or unless the page is password-locked without a token
        (Gradio's MCP route has no login check)."""
        return self.mcp and (not self.access_password or bool(self.mcp_token))

    @property
    def notes(self) -> list[str]:
        """Lines to log at start about defaults chosen for the platform."""
        if self.space_rate_default:
            return [
                f"Hugging Face Space with a server key and no JUHE_RATE_LIMIT: at most {self.rate_limit} "
                "edits per minute per visitor (set JUHE_RATE_LIMIT to change; 0 turns it off)"
            ]
        return []

    @property
    def cache_dir(self) -> Path | None:
        """Where Gradio's cache should be when the system's temp folder is on another file system
        than the output folder (shown results could then only be copies): beside the output folder."""
        folder = self.output_dir.resolve().parent
        try:
            if folder.stat().st_dev == Path(tempfile.gettempdir()).stat().st_dev:
                return None
        except OSError:
            return None
        return folder / "gradio-cache"

    def summary(self) -> list[str]:
        """What an operator should know at start: the mode, where results go, the limits."""
        if self.offline:
            mode = (
                "offline preview: results are simulated; set JUHE_API_KEY (environment or .env) "
                "for real edits"
            )
        else:
            mode = f"live: edits go to {self.client.api_url}"
        mib = self.max_upload_bytes / 1024**2
        limits = [
            f"{self.concurrency} edits at once, {self.queue_size} waiting",
            f"uploads up to {mib:g} MiB",
            f"{self.rate_limit} edits per minute per visitor" if self.rate_limit else "no rate limit",
            f"{self.daily_limit} live edits per day" if self.daily_limit else "no daily cap",
        ]
        keep = f"kept {self.keep_days:g} days" if self.keep_days else "kept for ever"
        size = (
            f"at most {self.output_max_bytes / 1024**3:g} GiB" if self.output_max_bytes else "no size limit"
        )
        lines = [
            f"juhe-image-edit: {mode}",
            f"results saved in {self.output_dir.resolve()} ({keep}, {size})",
            "limits: " + ", ".join(limits),
            "page password: "
            + ("on" if self.access_password else "off")
            + "; MCP: "
            + ("on" if self.mcp_enabled else "off")
            + "; share links: "
            + ("on" if self.sharing else "off"),
        ]
        return lines

    @classmethod
    def load(
        cls, environ: Mapping[str, str] | None = None, dotenv: Path | None = Path(".env")
    ) -> AppSettings:
        """Build from `environ` (default: the process environment) over the `dotenv` file; validate."""
        values = {k: v for k, v in dotenv_values(dotenv).items() if v is not None} if dotenv else {}
        values.update(os.environ if environ is None else environ)
        return cls.from_mapping(values)

    @classmethod
    def from_mapping(cls, env: Mapping[str, str]) -> AppSettings:
        """Build from one mapping of variables; raise `ConfigError` naming the first bad one."""
        defaults = Settings()
        try:  # every value explicit, so the client reads no other `.env`
            client = Settings.resolve(
                api_key=_text(env, "JUHE_API_KEY"),
                api_url=_text(env, "JUHE_API_URL") or defaults.api_url,
                timeout=_number(env, "JUHE_TIMEOUT", defaults.timeout, 1.0, 3600.0),
                max_body_bytes=_integer(env, "JUHE_MAX_BODY_BYTES", defaults.max_body_bytes, 1024, 1024**3),
                max_side=_integer(env, "JUHE_MAX_SIDE", defaults.max_side, 512, 8192),
                environ={},
            )
        except JuheError as exc:
            raise ConfigError(str(exc)) from None
        try:
            proxies = tuple(parse_trusted_proxies(_text(env, "JUHE_TRUSTED_PROXIES")))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        on_space = bool(_text(env, "SPACE_ID"))
        space_rate_default = on_space and client.api_key is not None and not _text(env, "JUHE_RATE_LIMIT")
        return cls(
            client=client,
            output_dir=default_output_dir(_text(env, "JUHE_OUTPUT_DIR") or None),
            concurrency=_integer(env, "JUHE_CONCURRENCY", 16, 1, 1024),
            queue_size=_integer(env, "JUHE_QUEUE_SIZE", 64, 1, 100_000),
            max_upload_bytes=_byte_size(env, "JUHE_MAX_UPLOAD", 20 * 1024 * 1024),
            rate_limit=_integer(
                env, "JUHE_RATE_LIMIT", SPACE_RATE_LIMIT if space_rate_default else 0, 0, 100_000
            ),
            trusted_proxies=proxies or (SPACE_TRUSTED_PROXIES if on_space else ()),
            access_password=_text(env, "JUHE_ACCESS_PASSWORD") or None,
            sim_latency=_number(env, "JUHE_SIM_LATENCY", 1.5, 0.0, 600.0),
            mcp=_flag(env, "JUHE_MCP", True),
            mcp_token=_text(env, "JUHE_MCP_TOKEN") or None,
            keep_days=_number(env, "JUHE_KEEP_DAYS", 30.0, 0.0, 36_500.0),
            output_max_bytes=int(_number(env, "JUHE_OUTPUT_MAX_GB", 5.0, 0.0, 100_000.0) * 1024**3),
            sharing=_flag(env, "JUHE_SHARING", True),
            public_url=_public_url(env),
            browser_secret=_text(env, "JUHE_BROWSER_SECRET") or None,
            on_space=on_space,
            space_rate_default=space_rate_default,
            daily_limit=_integer(env, "JUHE_DAILY_LIMIT", 0, 0, 1_000_000),
            cache_hours=_number(env, "JUHE_CACHE_HOURS", 24.0, 0.0, 8760.0),
        )


def _text(env: Mapping[str, str], name: str) -> str:
    return (env.get(name) or "").strip()


def _integer(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = _text(env, name)
    if not raw:
        return default
    if not re.fullmatch(r"\d+", raw) or not low <= int(raw) <= high:
        raise ConfigError(f"{name} must be a whole number from {low} to {high}, got {raw!r}")
    return int(raw)


def _number(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = _text(env, name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not low <= value <= high:  # NaN fails too
        raise ConfigError(f"{name} must be a number from {low:g} to {high:g}, got {raw!r}")
    return value


def _byte_size(env: Mapping[str, str], name: str, default: int) -> int:
    raw = _text(env, name)
    if not raw:
        return default
    match = _SIZE.match(raw)
    value = int(float(match[1]) * _UNITS[(match[2] or "").lower() or None]) if match else 0
    if not 1024 <= value <= 1024**3:
        raise ConfigError(f"{name} must be a size from 1kb to 1gb such as 20mb or 5242880, got {raw!r}")
    return value


def _public_url(env: Mapping[str, str]) -> str | None:
    try:
        return check_public_url(_text(env, "JUHE_PUBLIC_URL") or None)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = _text(env, name).lower()
    if not raw:
        return default
    if raw not in _TRUE | _FALSE:
        raise ConfigError(f"{name} must be 1 or 0 (also true/false, yes/no, on/off), got {raw!r}")
    return raw in _TRUE
