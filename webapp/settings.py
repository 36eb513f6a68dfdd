"""The app's settings: one object, built once at start from the environment over a `.env` file.

Every `JUHE_*` variable the README lists is read here and nowhere else; a bad value stops the app
with one line naming the variable and what it accepts. A leaf: it imports nothing of the app, and
parsing touches no disk. The folders whose default depends on the machine (persistent storage, the
cache) are chosen by `webapp.folders` when the app starts.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dotenv import dotenv_values

from juhe import JuheError, Settings, dotenv_file

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|k|mb|m|gb|g)?\s*$", re.IGNORECASE)
_UNITS = {None: 1, "b": 1, "k": 1024, "kb": 1024, "m": 1024**2, "mb": 1024**2, "g": 1024**3, "gb": 1024**3}
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}
# A URL's host part: a name or a bracketed IPv6 address, with an optional port (no user part)
HOST_FORM = re.compile(
    r"(?:[A-Za-z0-9-]{1,63}\.)*[A-Za-z0-9-]{1,63}(?::[0-9]{1,5})?|\[[0-9A-Fa-f:.]{2,45}\](?::[0-9]{1,5})?"
)
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


class SettingsError(ValueError):
    """A setting the app cannot start with; the message names the variable and what it accepts.

    Not `juhe.ConfigError` (a client's bad setting, with texts in both languages): this one is only
    ever shown to the operator, as the one line the app stops with.
    """


@dataclass(frozen=True)
class AppSettings:
    """Everything the app is configured with. Secrets are kept out of `repr`."""

    client: Settings = field(default_factory=Settings)
    # JUHE_OUTPUT_DIR; None until `webapp.folders.place_folders` picks the default at start
    output_dir: Path | None = None
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
    # GRADIO_TEMP_DIR; None until `place_folders` gives the app a cache folder of its own
    cache_dir: Path | None = None
    owns_cache: bool = False  # cache_dir is the app's own, not one the operator named: all of it may go
    edit_processes: int = 2  # JUHE_EDIT_PROCESSES: child processes for the clients' calls; 0: none

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
            f"{self.edit_processes} edit processes" if self.edit_processes else "edits in the app's process",
        ]
        keep = f"kept {self.keep_days:g} days" if self.keep_days else "kept for ever"
        size = (
            f"at most {self.output_max_bytes / 1024**3:g} GiB" if self.output_max_bytes else "no size limit"
        )
        lines = [
            f"juhe-image-edit: {mode}",
            f"results saved in {self.output_dir.resolve() if self.output_dir else 'the default folder'} "
            f"({keep}, {size})",
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
    def load(cls, environ: Mapping[str, str] | None = None, dotenv: Path | bool = True) -> AppSettings:
        """Build from `environ` (default: the process environment) over a `.env` file; validate.

        `dotenv`: True reads the file `juhe.dotenv_file()` finds (the working folder's `.env`), the
        client's rule too; a path reads that file; False reads none.
        """
        path = dotenv_file() if dotenv is True else dotenv or None
        values = {k: v for k, v in dotenv_values(path).items() if v is not None} if path else {}
        values.update(os.environ if environ is None else environ)
        return cls.from_mapping(values)

    @classmethod
    def from_mapping(cls, env: Mapping[str, str]) -> AppSettings:
        """Build from one mapping of variables, touching no disk; raise `SettingsError` naming the
        first bad one. A variable left unset keeps the field's default."""
        try:
            client = Settings(
                **_given(
                    api_key=_text(env, "JUHE_API_KEY") or None,
                    api_url=_text(env, "JUHE_API_URL") or None,
                    timeout=_number(env, "JUHE_TIMEOUT", 1.0, 3600.0),
                    max_body_bytes=_integer(env, "JUHE_MAX_BODY_BYTES", 1024, 1024**3),
                    max_side=_integer(env, "JUHE_MAX_SIDE", 512, 8192),
                )
            )
        except JuheError as exc:
            raise SettingsError(str(exc)) from None
        on_space = bool(_text(env, "SPACE_ID"))
        space_rate_default = on_space and client.api_key is not None and not _text(env, "JUHE_RATE_LIMIT")
        output_gib = _number(env, "JUHE_OUTPUT_MAX_GB", 0.0, 100_000.0)
        return cls(
            client=client,
            on_space=on_space,
            space_rate_default=space_rate_default,
            **_given(
                output_dir=_path(env, "JUHE_OUTPUT_DIR"),
                concurrency=_integer(env, "JUHE_CONCURRENCY", 1, 1024),
                queue_size=_integer(env, "JUHE_QUEUE_SIZE", 1, 100_000),
                max_upload_bytes=_byte_size(env, "JUHE_MAX_UPLOAD"),
                rate_limit=(
                    SPACE_RATE_LIMIT if space_rate_default else _integer(env, "JUHE_RATE_LIMIT", 0, 100_000)
                ),
                trusted_proxies=(
                    parse_trusted_proxies(_text(env, "JUHE_TRUSTED_PROXIES"))
                    or (SPACE_TRUSTED_PROXIES if on_space else None)
                ),
                access_password=_text(env, "JUHE_ACCESS_PASSWORD") or None,
                sim_latency=_number(env, "JUHE_SIM_LATENCY", 0.0, 600.0),
                mcp=_flag(env, "JUHE_MCP"),
                mcp_token=_text(env, "JUHE_MCP_TOKEN") or None,
                keep_days=_number(env, "JUHE_KEEP_DAYS", 0.0, 36_500.0),
                output_max_bytes=None if output_gib is None else int(output_gib * 1024**3),
                sharing=_flag(env, "JUHE_SHARING"),
                public_url=check_public_url(_text(env, "JUHE_PUBLIC_URL")),
                browser_secret=_text(env, "JUHE_BROWSER_SECRET") or None,
                daily_limit=_integer(env, "JUHE_DAILY_LIMIT", 0, 1_000_000),
                cache_hours=_number(env, "JUHE_CACHE_HOURS", 0.0, 8760.0),
                cache_dir=_path(env, "GRADIO_TEMP_DIR"),
                edit_processes=_integer(env, "JUHE_EDIT_PROCESSES", 0, 8),
            ),
        )


def parse_trusted_proxies(spec: str) -> tuple[str, ...]:
    """The entries of JUHE_TRUSTED_PROXIES (comma-separated addresses or networks), checked at start.

    A bad entry raises `SettingsError` naming it, rather than failing every visitor's edit later.
    """
    entries = tuple(p.strip() for p in spec.split(",") if p.strip())
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise SettingsError(
                f"JUHE_TRUSTED_PROXIES: {entry!r} is not an IP address or network "
                "(expected e.g. 10.0.0.1 or 10.0.0.0/8, comma-separated)"
            ) from None
    return entries


def check_public_url(value: str | None) -> str | None:
    """JUHE_PUBLIC_URL without its trailing slash, or None when unset; `SettingsError` (a
    `ValueError`) naming it if it is not an http(s) URL with a host and nothing after the path."""
    if not value or not value.strip():
        return None
    value = value.strip()
    try:
        parts = urlsplit(value)
        valid = (
            parts.scheme in ("http", "https")
            and parts.hostname
            and not (parts.username or parts.password or parts.query or parts.fragment)
            and HOST_FORM.fullmatch(parts.netloc)
        )
    except ValueError:
        valid = False
    if not valid:
        raise SettingsError(
            f"JUHE_PUBLIC_URL: {value!r} is not a public address of the app "
            "(expected e.g. https://example.org or https://example.org/edit)"
        )
    return value.rstrip("/")


def _given(**values: Any) -> dict[str, Any]:
    """The values that were set: the rest keep the dataclass's defaults, the one place they are."""
    return {name: value for name, value in values.items() if value is not None}


def _text(env: Mapping[str, str], name: str) -> str:
    return (env.get(name) or "").strip()


def _integer(env: Mapping[str, str], name: str, low: int, high: int) -> int | None:
    raw = _text(env, name)
    if not raw:
        return None
    if not re.fullmatch(r"\d+", raw) or not low <= int(raw) <= high:
        raise SettingsError(f"{name} must be a whole number from {low} to {high}, got {raw!r}")
    return int(raw)


def _number(env: Mapping[str, str], name: str, low: float, high: float) -> float | None:
    raw = _text(env, name)
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not low <= value <= high:  # NaN fails too
        raise SettingsError(f"{name} must be a number from {low:g} to {high:g}, got {raw!r}")
    return value


def _byte_size(env: Mapping[str, str], name: str) -> int | None:
    raw = _text(env, name)
    if not raw:
        return None
    match = _SIZE.match(raw)
    value = int(float(match[1]) * _UNITS[(match[2] or "").lower() or None]) if match else 0
    if not 1024 <= value <= 1024**3:
        raise SettingsError(f"{name} must be a size from 1kb to 1gb such as 20mb or 5242880, got {raw!r}")
    return value


def _flag(env: Mapping[str, str], name: str) -> bool | None:
    raw = _text(env, name).lower()
    if not raw:
        return None
    if raw not in _TRUE | _FALSE:
        raise SettingsError(f"{name} must be 1 or 0 (also true/false, yes/no, on/off), got {raw!r}")
    return raw in _TRUE


def _path(env: Mapping[str, str], name: str) -> Path | None:
    raw = _text(env, name)
    return Path(raw) if raw else None
