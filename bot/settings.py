"""Runtime settings, read once from the environment (and a ``.env`` file if present)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.limits import Network, parse_limit, parse_networks
from storage.db import DEFAULT_URL as DEFAULT_DATABASE_URL
from storage.importfile import ImportLimits
from storage.retention import RetentionPeriods, periods_from_env


def read_dotenv(path: Path) -> dict[str, str]:
    """``KEY=value`` lines of a ``.env`` file; comments and blank lines are skipped."""
    if not path.is_file():
        return {}
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#"):
            values[key.strip()] = value.strip().strip("\"'")
    return values


def environment(dotenv: Path = Path(".env")) -> dict[str, str]:
    """The process environment over the ``.env`` file."""
    return {**read_dotenv(dotenv), **os.environ}


@dataclass(frozen=True)
class Settings:
    """Everything configurable."""

    database_url: str = DEFAULT_DATABASE_URL
    host: str = "127.0.0.1"
    port: int = 8080
    commune: str = "hat-mon"
    portal_files: tuple[Path, ...] = ()
    # Imports (MOTCUA_IMPORT_MAX_ROWS, MOTCUA_IMPORT_MAX_MB) and retention (MOTCUA_KEEP_*_DAYS).
    import_limits: ImportLimits = field(default_factory=ImportLimits)
    retention: RetentionPeriods = field(default_factory=RetentionPeriods)
    # Web protection (bot/web.py, bot/limits.py); limits are "N/second|minute|hour|day".
    redis_url: str = ""  # shared rate-limit counts when several instances run
    secret_key: str = field(default="", repr=False)  # signs web chat sessions; see bot/web.py
    trusted_proxies: tuple[Network, ...] = ()  # their X-Forwarded-For names the client
    embed_origins: tuple[str, ...] = ()  # sites that may embed the chat (widget.js)
    limit_chat_user: str = "20/minute"
    limit_chat_address: str = "60/minute"
    limit_api_key: str = "600/minute"
    limit_address: str = "120/minute"
    keepalive_timeout: float = 15.0  # idle connection, and a request's headers, in seconds
    body_timeout: float = 10.0  # reading a request's body, in seconds
    refusal_delay: float = 1.0  # a 429 is held this long (seconds): flooders wait too
    # The outbox tries a failed message again after this many seconds (times its attempts);
    # also how long a channel that is sending a reply holds it before the outbox may.
    outbox_retry: float = 60.0

    @classmethod
    def from_env(
        cls, environ: dict[str, str] | None = None, dotenv: Path = Path(".env")
    ) -> Settings:
        """Settings from ``environ`` (default: the process environment) over ``.env``."""
        env = environment(dotenv) if environ is None else environ
        portal = tuple(Path(p) for p in env.get("MOTCUA_PORTAL_FILES", "").split(os.pathsep) if p)
        try:
            port = int(env.get("MOTCUA_PORT", "8080"))
        except ValueError:
            raise SystemExit("MOTCUA_PORT must be a port number") from None
        return cls(
            database_url=env.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
            host=env.get("MOTCUA_HOST") or "127.0.0.1",
            port=port,
            commune=env.get("MOTCUA_COMMUNE") or "hat-mon",
            portal_files=portal,
            **_data_handling(env),
            **_web_protection(env),
        )


def _web_protection(env: dict[str, str]) -> dict[str, Any]:
    """The rate limit, proxy, embedding and timeout settings, checked (SystemExit names the
    variable that is wrong)."""
    values: dict[str, Any] = {
        "redis_url": env.get("MOTCUA_REDIS_URL", ""),
        "secret_key": env.get("MOTCUA_SECRET_KEY", ""),
        "embed_origins": tuple(env.get("MOTCUA_EMBED_ORIGINS", "").replace(",", " ").split()),
    }
    try:
        values["trusted_proxies"] = parse_networks(env.get("MOTCUA_TRUSTED_PROXIES", ""))
    except ValueError:
        raise SystemExit("MOTCUA_TRUSTED_PROXIES must be addresses or CIDRs") from None
    for key, name in (("limit_chat_user", "MOTCUA_LIMIT_CHAT_USER"),
                      ("limit_chat_address", "MOTCUA_LIMIT_CHAT_ADDRESS"),
                      ("limit_api_key", "MOTCUA_LIMIT_API_KEY"),
                      ("limit_address", "MOTCUA_LIMIT_ADDRESS")):
        if value := env.get(name):
            try:
                parse_limit(value)
            except ValueError:
                raise SystemExit(f"{name} must read like 20/minute") from None
            values[key] = value
    for key, name in (("keepalive_timeout", "MOTCUA_KEEPALIVE_TIMEOUT"),
                      ("body_timeout", "MOTCUA_BODY_TIMEOUT"),
                      ("refusal_delay", "MOTCUA_REFUSAL_DELAY"),
                      ("outbox_retry", "MOTCUA_OUTBOX_RETRY_SECONDS")):
        if value := env.get(name):
            try:
                values[key] = float(value)
            except ValueError:
                raise SystemExit(f"{name} must be a number of seconds") from None
            if not values[key] >= (0 if key == "refusal_delay" else 0.001):
                raise SystemExit(f"{name} must be a number of seconds")
    return values


def _data_handling(env: dict[str, str]) -> dict[str, Any]:
    """The import limits and retention periods, checked (SystemExit names a wrong variable)."""
    limits: dict[str, int] = {}
    for key, name, scale in (("max_rows", "MOTCUA_IMPORT_MAX_ROWS", 1),
                             ("max_bytes", "MOTCUA_IMPORT_MAX_MB", 2**20)):
        if value := env.get(name, "").strip():
            if not value.isdigit() or int(value) < 1:
                raise SystemExit(f"{name} must be a positive whole number")
            limits[key] = int(value) * scale
    try:
        retention = periods_from_env(env)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    return {"import_limits": ImportLimits(**limits), "retention": retention}
