"""deploy/backup.sh and deploy/restore.sh on PostgreSQL: a backup restored into a new database
holds the applications and the conversations; old backups are deleted, the others kept."""

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from handlers.applications import Office
from handlers.conversation import Dialogue, IncomingMessage
from knowledge.answer import Assistant
from knowledge.workdays import WorkCalendar
from storage import applications as repo
from storage.db import make_engine, make_sessions, session_scope, upgrade
from tests.conftest import POSTGRES, admin
from tests.samples import CODE, T0, record

ROOT = Path(__file__).resolve().parents[1]
DAY = 86400


@pytest.fixture
async def databases() -> AsyncIterator[tuple[str, str]]:
    """The production database, migrated, and a new empty one to restore into."""
    names = [f"motcua_backup_{uuid.uuid4().hex[:12]}" for _ in range(2)]
    for name in names:
        await admin(f'CREATE DATABASE "{name}"')
    await upgrade(f"{POSTGRES}/{names[0]}")
    yield f"{POSTGRES}/{names[0]}", f"{POSTGRES}/{names[1]}"
    for name in names:
        await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def talk(url: str, assistant: Assistant, text: str, *, seed: bool = False) -> str:
    """One web chat message from the same citizen to the office on ``url``; the reply.
    ``seed`` first records the sample application."""
    engine = make_engine(url)
    try:
        sessions = make_sessions(engine)
        async with session_scope(sessions) as session:
            commune = await repo.ensure_commune(session, slug="hat-mon", name="Xã Hát Môn")
            if seed:
                await repo.upsert_applications(session, commune_id=commune, actor="test",
                                               now=T0, records=[record(CODE)])
        office = Office(sessions, commune, assistant.kb, WorkCalendar.for_commune("hat-mon"))
        [reply] = await Dialogue(assistant, office).handle(
            IncomingMessage("web", "citizen-7", text=text))
        return reply.text
    finally:
        await engine.dispose()


def script(name: str, *args: str, database: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", str(ROOT / "deploy" / name), *args], capture_output=True,
                          text=True, env={**os.environ, "DATABASE_URL": database, **env})


async def test_a_restored_backup_holds_applications_and_conversations(
        databases: tuple[str, str], assistant: Assistant, tmp_path: Path) -> None:
    production, restored = databases
    first = await talk(production, assistant, "làm giấy khai sinh cho bé cần gì", seed=True)
    assert "Làm giấy khai sinh" in first
    backups = tmp_path / "backups"
    backups.mkdir()
    old, recent = backups / "motcua-20261101T000000Z.dump", backups / "motcua-recent.dump"
    for path, age in ((old, 3 * DAY), (recent, DAY // 2)):
        path.write_bytes(b"an earlier backup")
        os.utime(path, (time.time() - age, time.time() - age))

    made = script("backup.sh", str(backups), BACKUP_KEEP_DAYS="2",
                  database=production.replace("postgresql://", "postgresql+asyncpg://"))
    assert made.returncode == 0, made.stderr
    dump = Path(made.stdout.strip())
    assert dump.parent == backups and dump.stat().st_size > 10_000
    assert oct(dump.stat().st_mode & 0o777) == "0o600"  # personal data
    assert sorted(backups.iterdir()) == sorted([dump, recent])  # the 3-day-old one is gone

    refused = script("restore.sh", str(dump), database=production)
    assert refused.returncode == 1 and "new, empty one" in refused.stderr
    done = script("restore.sh", str(dump), database=restored)
    assert done.returncode == 0, done.stderr

    status = subprocess.run([sys.executable, "-m", "bot", "status", CODE, "--phone",
                             "0912 345 678", "--json"], capture_output=True, text=True,
                            cwd=tmp_path, env={**os.environ, "DATABASE_URL": restored})
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["found"] is True
    # The citizen's conversation goes on where it was: the topic came back with the backup.
    assert (await talk(restored, assistant, "còn phí?")).startswith(
        "Lệ phí — Làm giấy khai sinh")


def test_backup_refuses_a_database_that_is_not_postgresql(tmp_path: Path) -> None:
    made = script("backup.sh", str(tmp_path), database="sqlite:///motcua.sqlite3")
    assert made.returncode == 2 and "not a PostgreSQL database" in made.stderr
    assert list(tmp_path.iterdir()) == []
