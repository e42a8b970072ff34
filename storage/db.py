"""Database engine, sessions and migrations (SQLite by default, PostgreSQL in production)."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import event, inspect, text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

DEFAULT_URL = "sqlite+aiosqlite:///motcua.sqlite3"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# The PostgreSQL advisory lock key that serialises migrations ("motcua" in ASCII).
MIGRATION_LOCK = 0x6D6F74637561


def async_url(url: str | None) -> str:
    """The async-driver form of a database URL ("postgresql://" → "postgresql+asyncpg://")."""
    url = url or DEFAULT_URL
    for plain, driver in (("postgresql://", "postgresql+asyncpg://"),
                          ("postgres://", "postgresql+asyncpg://"),
                          ("sqlite://", "sqlite+aiosqlite://")):
        if url.startswith(plain):
            return driver + url[len(plain):]
    return url


def _sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
    """Foreign keys on; WAL so that readers do not wait for the writer."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(url: str | None = None) -> AsyncEngine:
    """An async engine for ``url`` (default: the embedded SQLite file)."""
    url = async_url(url)
    # aiosqlite's debug lines repeat every statement with its parameters (personal data).
    logging.getLogger("aiosqlite").setLevel(max(logging.INFO,
                                                logging.getLogger("aiosqlite").level))
    if url.startswith("sqlite"):
        # SQLite has one writer at a time: queueing for a single connection is fairer and
        # faster than many connections retrying a locked database with growing sleeps.
        engine = create_async_engine(url, pool_size=1, max_overflow=0, pool_timeout=60,
                                     hide_parameters=True)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    # A server can restart under us: test pooled connections before use. Statement parameters
    # hold personal data (names, phones, messages): never put them in errors or logs.
    return create_async_engine(url, pool_pre_ping=True, hide_parameters=True)


def make_sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Session factory; objects stay usable after commit (no lazy loads in async code)."""
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


@asynccontextmanager
async def session_scope(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One transaction: committed on success, rolled back on error."""
    async with sessions() as session, session.begin():
        yield session


# SQLSTATEs (PostgreSQL) that mean "not now" rather than "wrong": connection exceptions (08),
# insufficient resources such as too many connections (53), operator intervention such as a
# shutdown or terminated backend (57P), a read-only transaction or standby (25006), and a
# database that does not accept connections (55000, ``ALLOW_CONNECTIONS false``).
_UNAVAILABLE_STATES = ("08", "53", "57P", "25006", "55000")


def unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be used right now (worth trying again):
    refused, terminated, not accepting connections, read-only, pool timeout, locked."""
    seen: set[int] = set()
    error: BaseException | None = exc
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, DBAPIError) and error.connection_invalidated:
            return True
        # SQLite reports a locked, read-only or vanished file as OperationalError.
        if isinstance(error, OSError | OperationalError | InterfaceError | PoolTimeout):
            return True
        state = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
        if isinstance(state, str) and state.startswith(_UNAVAILABLE_STATES):
            return True
        error = getattr(error, "orig", None) or error.__cause__ or error.__context__
    return False


def alembic_config(url: str | None = None) -> Config:
    """Alembic configuration for our migrations, without an ini file."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", async_url(url).replace("%", "%%"))
    return config


async def upgrade(url: str | None = None) -> None:
    """Bring the database schema to the newest migration."""
    # Alembic's env runs its own event loop: give it a thread of its own.
    await asyncio.to_thread(command.upgrade, alembic_config(url), "head")


async def downgrade(url: str | None, revision: str) -> None:
    """Take the database schema back to ``revision``, for an older release (a rollback)."""
    await asyncio.to_thread(command.downgrade, alembic_config(url), revision)


@functools.cache
def head_revisions() -> frozenset[str]:
    """The newest migrations' revisions (one, unless branches were left unmerged)."""
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


async def schema_revisions(session: AsyncSession) -> frozenset[str]:
    """The revisions the database was migrated to (an error when it never was)."""
    connection = await session.connection()
    rows = await connection.execute(text("SELECT version_num FROM alembic_version"))
    return frozenset(str(row[0]) for row in rows.all())


async def revision(url: str | None = None) -> str:
    """The migration the database schema is at, for ``db revision`` ("" before the first)."""
    engine = make_engine(url)
    try:
        async with make_sessions(engine)() as session:
            connection = await session.connection()
            migrated = await connection.run_sync(
                lambda sync: inspect(sync).has_table("alembic_version"))
            return ", ".join(sorted(await schema_revisions(session))) if migrated else ""
    finally:
        await engine.dispose()


def upsert(session: AsyncSession, table: type[SQLModel]) -> Any:
    """``INSERT … ON CONFLICT`` for the session's database (SQLite or PostgreSQL)."""
    dialect = session.bind.dialect.name if session.bind is not None else ""
    return (postgresql_insert if dialect == "postgresql" else sqlite_insert)(table)
