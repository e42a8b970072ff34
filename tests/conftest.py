"""Shared fixtures: one loaded assistant; databases (SQLite and PostgreSQL) for storage tests."""

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.settings import CommuneSettings
from bot.web import add_commune, create_app
from handlers.applications import Office
from knowledge.answer import Assistant
from knowledge.loader import load_commune, load_knowledge
from knowledge.workdays import WorkCalendar
from storage import applications as repo
from storage.db import make_engine, make_sessions, session_scope, upgrade
from tests.samples import CODE, T0, record

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "dichvucong"
# The second commune of a deployment under test: Xã Phúc Thọ, an operator's profile.
PROFILES = Path(__file__).resolve().parent / "data" / "communes"
# The PostgreSQL server the tests create throwaway databases on (.ci/run starts it).
POSTGRES = os.environ.get("MOTCUA_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")


@pytest.fixture(scope="session")
def assistant() -> Assistant:
    return Assistant(load_knowledge())


async def admin(sql: str) -> None:
    """Run one statement on the PostgreSQL server's ``postgres`` database."""
    connection = await asyncpg.connect(f"{POSTGRES}/postgres")
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@contextlib.asynccontextmanager
async def scratch_database(kind: str, folder: Path, prefix: str) -> AsyncIterator[str]:
    """The URL of a database of its own (the others are shared by the session): a SQLite file
    in ``folder``, or a new PostgreSQL database dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / f'{prefix}.sqlite3'}"
        return
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    await admin(f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES}/{name}"
    finally:
        await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgresql_url() -> Iterator[str]:
    """A fresh PostgreSQL database, migrated, dropped after the run."""
    name = f"motcua_test_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    except OSError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {POSTGRES} ({exc}); start it "
                    "(.ci/run does) or point MOTCUA_TEST_POSTGRES at a server")
    url = f"{POSTGRES}/{name}"
    asyncio.run(upgrade(url))
    yield url
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A fresh SQLite database file, migrated."""
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'motcua.sqlite3'}"
    asyncio.run(upgrade(url))
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each storage test runs on both databases."""
    return str(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on an empty, migrated database."""
    engine = make_engine(database_url)
    async with engine.begin() as connection:
        for table in reversed(SQLModel.metadata.sorted_tables):
            await connection.execute(table.delete())
    yield make_sessions(engine)
    await engine.dispose()


@pytest.fixture
async def empty_office(sessions: async_sessionmaker[AsyncSession], assistant: Assistant
                       ) -> Office:
    """Hát Môn's office on an empty database."""
    async with session_scope(sessions) as s:
        commune = await repo.ensure_commune(s, slug="hat-mon", name="Xã Hát Môn")
    return Office(sessions, commune, assistant.kb, WorkCalendar.for_commune("hat-mon"))


@pytest.fixture
async def office(empty_office: Office) -> Office:
    """Hát Môn's office holding the sample application ``tests.samples.CODE``."""
    async with session_scope(empty_office.sessions) as s:
        await repo.upsert_applications(s, commune_id=empty_office.commune_id, actor="test",
                                       now=T0, records=[record(CODE)])
    return empty_office


@pytest.fixture
async def phuc_tho(office: Office) -> Office:
    """Phúc Thọ's office (``tests/data/communes``) in Hát Môn's database, empty."""
    profile = load_commune("phuc-tho", PROFILES)
    async with session_scope(office.sessions) as s:
        commune = await repo.ensure_commune(s, slug="phuc-tho", name=profile.name)
    return Office(office.sessions, commune, replace(office.kb, commune=profile),
                  WorkCalendar.for_commune("phuc-tho", PROFILES))


def deployment(assistant: Assistant, *offices: Office, **options: Any) -> web.Application:
    """The web application of a deployment serving these communes (the first also at the
    root paths), as ``bot.app.serve`` builds it; ``options`` go to ``create_app``."""
    first = offices[0]
    app = create_app(assistant.for_commune(first.kb.commune, first.kb.procedures), first,
                     **options)
    for other in offices[1:]:
        commune = CommuneSettings(other.kb.commune.slug)
        app.add_subapp(commune.path, add_commune(
            app, assistant.for_commune(other.kb.commune, other.kb.procedures), other, commune,
            staff_channel=options.get("staff_channel", False)))
    return app
