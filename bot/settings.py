"""Runtime settings, read once from the environment (and a ``.env`` file if present)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
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


DEFAULT_TELEGRAM_API = "https://api.telegram.org"
DEFAULT_ZALO_API = "https://openapi.zalo.me"
DEFAULT_ZALO_OAUTH = "https://oauth.zaloapp.com"
DEFAULT_ZALO_TRANSACTION_TEMPLATE = "transaction_order"  # an order's status: the closest kind
ZALO_ENV = ("ZALO_APP_ID", "ZALO_APP_SECRET", "ZALO_OA_SECRET_KEY", "ZALO_ACCESS_TOKEN",
            "ZALO_REFRESH_TOKEN")
# Telegram accepts 1–256 of these characters as a webhook secret; fewer than 16 can be guessed.
WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{16,256}")
NEW_SECRET = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
LOOPBACK = parse_networks("127.0.0.0/8 ::1")


@dataclass(frozen=True)
class TelegramConfig:
    """The Telegram settings; the token and secret never appear in ``repr``."""

    token: str = field(repr=False)
    webhook_secret: str = field(default="", repr=False)
    api_base_url: str = DEFAULT_TELEGRAM_API
    staff_chat_id: str = ""
    public_base_url: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> TelegramConfig | None:
        """The configuration, or None when no bot token is set (the channel is off)."""
        token = env.get("TELEGRAM_BOT_TOKEN", "")
        if not token:
            return None
        api = env.get("TELEGRAM_API_BASE_URL") or DEFAULT_TELEGRAM_API
        return cls(token=token, webhook_secret=env.get("TELEGRAM_WEBHOOK_SECRET", ""),
                   api_base_url=api.rstrip("/"),
                   staff_chat_id=env.get("TELEGRAM_STAFF_CHAT_ID", ""),
                   public_base_url=env.get("PUBLIC_BASE_URL", "").rstrip("/"))


@dataclass(frozen=True)
class ZaloConfig:
    """Credentials and endpoints of one Official Account; secrets stay out of ``repr``."""

    app_id: str
    app_secret: str = field(repr=False)
    oa_secret_key: str = field(repr=False)
    access_token: str = field(repr=False)  # initial value; the database holds the current one
    refresh_token: str = field(repr=False)  # likewise
    api_base_url: str = DEFAULT_ZALO_API
    oauth_base_url: str = DEFAULT_ZALO_OAUTH
    # Zalo lets this OA send transaction messages ("tin giao dịch"): status notifications and
    # reminders then reach followers beyond the 48-hour window, in this template type.
    transaction_messages: bool = False
    transaction_template: str = DEFAULT_ZALO_TRANSACTION_TEMPLATE

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ZaloConfig | None:
        """The OA's configuration, or None when the channel is not configured."""
        values = {name: env.get(name, "").strip() for name in ZALO_ENV}
        missing = [name for name, value in values.items() if not value]
        if missing:  # off; half configured is refused by Settings.problems
            return None
        return cls(
            app_id=values["ZALO_APP_ID"],
            app_secret=values["ZALO_APP_SECRET"],
            oa_secret_key=values["ZALO_OA_SECRET_KEY"],
            access_token=values["ZALO_ACCESS_TOKEN"],
            refresh_token=values["ZALO_REFRESH_TOKEN"],
            api_base_url=(env.get("ZALO_API_BASE_URL") or DEFAULT_ZALO_API).rstrip("/"),
            oauth_base_url=(env.get("ZALO_OAUTH_BASE_URL")
                            or DEFAULT_ZALO_OAUTH).rstrip("/"),
            transaction_messages=env.get("ZALO_TRANSACTION_MESSAGES", "").strip() == "1",
            transaction_template=(env.get("ZALO_TRANSACTION_TEMPLATE", "").strip()
                                  or DEFAULT_ZALO_TRANSACTION_TEMPLATE),
        )


# A commune's own channels: these variables with "__" and the slug in capitals after them
# (TELEGRAM_BOT_TOKEN__PHUC_THO for phuc-tho); the first commune's may also go without it.
COMMUNE_ENV = ("TELEGRAM_BOT_TOKEN", "TELEGRAM_WEBHOOK_SECRET", "TELEGRAM_STAFF_CHAT_ID",
               "TELEGRAM_BOT_USERNAME", *ZALO_ENV, "ZALO_OA_ID", "ZALO_TRANSACTION_MESSAGES",
               "ZALO_TRANSACTION_TEMPLATE")
SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def env_suffix(slug: str) -> str:
    """What a commune's own variables end with: "phuc-tho" → "__PHUC_THO"."""
    return "__" + slug.upper().replace("-", "_")


def commune_environment(env: Mapping[str, str], slug: str, *, first: bool) -> dict[str, str]:
    """``env`` as one commune sees it: its own channel variables under their plain names,
    everything else shared by the deployment."""
    seen = {name: value for name, value in env.items() if name not in COMMUNE_ENV}
    for name in COMMUNE_ENV:
        value = env.get(name + env_suffix(slug)) or (env.get(name, "") if first else "")
        if value:
            seen[name] = value
    return seen


@dataclass(frozen=True)
class CommuneSettings:
    """One commune the deployment serves, with its own Telegram bot and Zalo OA (None: off)."""

    slug: str = "hat-mon"
    telegram: TelegramConfig | None = None
    zalo: ZaloConfig | None = None
    # Where the notice-board QR codes point (bot/posters.py, with public_base_url); empty
    # leaves a code out.
    telegram_bot_username: str = ""  # TELEGRAM_BOT_USERNAME, without @
    zalo_oa_id: str = ""  # ZALO_OA_ID: https://zalo.me/<id>

    @classmethod
    def from_env(cls, env: Mapping[str, str], slug: str, *, first: bool) -> CommuneSettings:
        """The commune's channels from its variables (``commune_environment``)."""
        own = commune_environment(env, slug, first=first)
        return cls(slug=slug, telegram=TelegramConfig.from_env(own), zalo=ZaloConfig.from_env(own),
                   telegram_bot_username=own.get("TELEGRAM_BOT_USERNAME", "").strip().lstrip("@"),
                   zalo_oa_id=own.get("ZALO_OA_ID", "").strip())

    @property
    def path(self) -> str:
        """Where its public pages and webhooks are served: ``/c/<slug>``."""
        return f"/c/{self.slug}"


@dataclass(frozen=True)
class Settings:
    """Everything configurable."""

    database_url: str = DEFAULT_DATABASE_URL
    host: str = "127.0.0.1"
    port: int = 8080
    # The communes served (MOTCUA_COMMUNES, else MOTCUA_COMMUNE); the first is also served at
    # the root paths and is the commands' default. Their profiles: MOTCUA_COMMUNE_PROFILES, a
    # folder of <slug>.toml (and <slug>.days.toml), else the bundled ones.
    communes: tuple[CommuneSettings, ...] = (CommuneSettings(),)
    commune_profiles: Path | None = None
    portal_files: tuple[Path, ...] = ()
    # Imports (MOTCUA_IMPORT_MAX_ROWS, MOTCUA_IMPORT_MAX_MB) and retention (MOTCUA_KEEP_*_DAYS).
    import_limits: ImportLimits = field(default_factory=ImportLimits)
    retention: RetentionPeriods = field(default_factory=RetentionPeriods)
    # Web protection (bot/web.py, bot/limits.py); limits are "N/second|minute|hour|day".
    redis_url: str = ""  # shared rate-limit counts when several instances run
    secret_key: str = field(default="", repr=False)  # signs web chat sessions; see bot/web.py
    trusted_proxies: tuple[Network, ...] = ()  # their X-Forwarded-For names the client
    embed_origins: tuple[str, ...] = ()  # sites that may embed the chat (widget.js)
    # Where citizens and staff reach the server; https:// makes console cookies Secure.
    public_base_url: str = ""
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
    # Delivery limits (bot/outbox.py): Telegram's messages/s overall and to one chat; days a
    # message is tried before it expires; local quiet hours ("21:00-07:00", "" for none).
    telegram_rate: float = 30.0
    telegram_chat_rate: float = 1.0
    staff_chat_rate: float = 20.0  # messages a minute to the staff group (Telegram: about 20)
    outbox_expiry_days: float = 3.0
    quiet_hours: str = "21:00-07:00"
    # Who may read GET /metrics (bot/observability.py): these networks (MOTCUA_METRICS_NETWORKS,
    # default loopback), or anyone sending "Authorization: Bearer <MOTCUA_METRICS_TOKEN>".
    metrics_networks: tuple[Network, ...] = field(default_factory=lambda: LOOPBACK)
    metrics_token: str = field(default="", repr=False)
    # What would leave a channel failing silently, each naming its variable: serve refuses it.
    problems: tuple[str, ...] = ()
    # Server processes behind the one port (MOTCUA_WORKERS, serve --workers; bot/workers.py).
    workers: int = 1

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
        workers = env.get("MOTCUA_WORKERS", "").strip() or "1"
        if not workers.isdigit() or int(workers) < 1:
            raise SystemExit("MOTCUA_WORKERS must be a whole number of processes, 1 or more")
        return cls(
            workers=int(workers),
            database_url=env.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
            host=env.get("MOTCUA_HOST") or "127.0.0.1",
            port=port,
            portal_files=portal,
            **_communes(env),
            **_data_handling(env),
            **_web_protection(env),
            **_metrics_access(env),
            problems=tuple(problem for i, slug in enumerate(_slugs(env))
                           for problem in channel_problems(
                               commune_environment(env, slug, first=i == 0),
                               "" if i == 0 else env_suffix(slug))),
        )

    def commune(self, slug: str | None = None) -> CommuneSettings:
        """The served commune ``slug`` (default: the first); SystemExit for another."""
        found = next((c for c in self.communes if slug in (None, c.slug)), None)
        if found is None:
            raise SystemExit(f"commune '{slug}' is not served here (MOTCUA_COMMUNES: "
                             f"{','.join(c.slug for c in self.communes)})")
        return found


def _slugs(env: Mapping[str, str]) -> list[str]:
    """The communes served: MOTCUA_COMMUNES (comma separated), else MOTCUA_COMMUNE alone."""
    listed = env.get("MOTCUA_COMMUNES", "").replace(" ", "")
    slugs = [s for s in listed.split(",") if s] or [env.get("MOTCUA_COMMUNE") or "hat-mon"]
    wrong = [s for s in slugs if not SLUG.fullmatch(s)]
    if wrong:
        raise SystemExit(f"MOTCUA_COMMUNES: '{wrong[0]}' is no commune slug (lower-case "
                         "letters and digits joined by '-', as its profile's file name)")
    if len(set(slugs)) < len(slugs):
        raise SystemExit("MOTCUA_COMMUNES names a commune twice")
    return slugs


def _communes(env: Mapping[str, str]) -> dict[str, Any]:
    """The communes served, each with its channels, and the folder of their profiles
    (checked: SystemExit names the variable that is wrong)."""
    communes = tuple(CommuneSettings.from_env(env, slug, first=i == 0)
                     for i, slug in enumerate(_slugs(env)))
    folder = env.get("MOTCUA_COMMUNE_PROFILES", "").strip()
    if folder and not Path(folder).is_dir():
        raise SystemExit("MOTCUA_COMMUNE_PROFILES must be a folder of commune profiles")
    tokens = [c.telegram.token for c in communes if c.telegram]
    oas = [c.zalo.oa_secret_key for c in communes if c.zalo]
    if len(set(tokens)) < len(tokens) or len(set(oas)) < len(oas):
        # One bot's updates carry no commune: each commune needs a bot (and an OA) of its own.
        raise SystemExit("two communes have the same Telegram bot or Zalo OA: give each its "
                         "own (TELEGRAM_BOT_TOKEN__<SLUG>, ZALO_*__<SLUG>)")
    return {"communes": communes, "commune_profiles": Path(folder) if folder else None}


def _web_protection(env: dict[str, str]) -> dict[str, Any]:
    """The rate limit, proxy, embedding and timeout settings, checked (SystemExit names the
    variable that is wrong)."""
    values: dict[str, Any] = {
        "redis_url": env.get("MOTCUA_REDIS_URL", ""),
        "secret_key": env.get("MOTCUA_SECRET_KEY", ""),
        "embed_origins": tuple(env.get("MOTCUA_EMBED_ORIGINS", "").replace(",", " ").split()),
        "public_base_url": (env.get("MOTCUA_PUBLIC_BASE_URL")
                            or env.get("PUBLIC_BASE_URL", "")).rstrip("/"),
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
                      ("outbox_retry", "MOTCUA_OUTBOX_RETRY_SECONDS"),
                      ("telegram_rate", "MOTCUA_TELEGRAM_RATE"),
                      ("telegram_chat_rate", "MOTCUA_TELEGRAM_CHAT_RATE"),
                      ("staff_chat_rate", "MOTCUA_STAFF_CHAT_RATE"),
                      ("outbox_expiry_days", "MOTCUA_OUTBOX_EXPIRY_DAYS")):
        if value := env.get(name):
            try:
                values[key] = float(value)
            except ValueError:
                raise SystemExit(f"{name} must be a number") from None
            if not values[key] >= (0 if key == "refusal_delay" else 0.001):
                raise SystemExit(f"{name} must be a number of seconds")
    if (quiet := env.get("MOTCUA_QUIET_HOURS")) is not None:
        if quiet and not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d", quiet):
            raise SystemExit("MOTCUA_QUIET_HOURS must read like 21:00-07:00 (or be empty)")
        values["quiet_hours"] = quiet
    return values


def _metrics_access(env: dict[str, str]) -> dict[str, Any]:
    """Who may read ``/metrics``, checked (SystemExit names the variable that is wrong)."""
    values: dict[str, Any] = {"metrics_token": env.get("MOTCUA_METRICS_TOKEN", "").strip()}
    if (networks := env.get("MOTCUA_METRICS_NETWORKS")) is not None:
        try:
            values["metrics_networks"] = parse_networks(networks)
        except ValueError:
            raise SystemExit("MOTCUA_METRICS_NETWORKS must be addresses or CIDRs") from None
    folder = env.get("PROMETHEUS_MULTIPROC_DIR", "")
    if folder and not (Path(folder).is_dir() and os.access(folder, os.W_OK)):
        # Every count would fail (prometheus-client writes there on first use).
        raise SystemExit("PROMETHEUS_MULTIPROC_DIR must be a writable directory")
    if values["metrics_token"] and len(values["metrics_token"]) < 16:
        raise SystemExit(f"MOTCUA_METRICS_TOKEN must be 16 characters or more: {NEW_SECRET}")
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


def channel_problems(env: Mapping[str, str], suffix: str = "") -> list[str]:
    """What in one commune's channel settings (``commune_environment``) would leave a channel
    failing silently, each naming the variable to set (its name ends with ``suffix``)."""
    problems = []
    secret = env.get("TELEGRAM_WEBHOOK_SECRET", "")
    if env.get("TELEGRAM_BOT_TOKEN") and env.get("PUBLIC_BASE_URL") and not secret:
        problems.append(
            f"TELEGRAM_WEBHOOK_SECRET{suffix} is not set: with TELEGRAM_BOT_TOKEN{suffix} and "
            "PUBLIC_BASE_URL the webhook is registered with Telegram, and every update would "
            f"be refused (403). Set it to a new random value: {NEW_SECRET}")
    elif secret and not WEBHOOK_SECRET.fullmatch(secret):
        problems.append(
            f"TELEGRAM_WEBHOOK_SECRET{suffix} must be 16 to 256 characters, only A-Z, a-z, "
            f"0-9, _ and - (Telegram refuses others; a short one can be guessed): {NEW_SECRET}")
    missing = [name + suffix for name in ZALO_ENV if not env.get(name, "").strip()]
    if 0 < len(missing) < len(ZALO_ENV):
        problems.append(f"Zalo is half configured: {', '.join(missing)} not set "
                        "(set all five to turn Zalo on, or none to leave it off)")
    return problems
