"""Runtime settings, read once from the environment (and a ``.env`` file if present)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from storage.db import DEFAULT_URL as DEFAULT_DATABASE_URL


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
        )
