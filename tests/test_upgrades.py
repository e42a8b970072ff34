"""Upgrades and rollbacks as README's Production section runs them: ``db revision`` before an
upgrade, ``db downgrade`` to go back, applications kept both ways."""

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage import applications as repo
from storage.db import make_engine, make_sessions, session_scope, upgrade
from tests.conftest import scratch_database
from tests.samples import CODE, T0, record


@pytest.fixture(params=["sqlite", "postgresql"])
async def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A database of its own (others' are shared by the session), migrated."""
    async with scratch_database(request.param, tmp_path, "motcua_upgrades") as url:
        await upgrade(url)
        yield url


def bot(url: str, cwd: Path, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "bot", *args], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, "DATABASE_URL": url})
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


async def test_a_rollback_and_the_upgrade_again_keep_the_applications(
        fresh_url: str, tmp_path: Path) -> None:
    engine = make_engine(fresh_url)
    async with session_scope(make_sessions(engine)) as session:
        commune = await repo.ensure_commune(session, slug="hat-mon", name="Xã Hát Môn")
        await repo.upsert_applications(session, commune_id=commune, actor="test", now=T0,
                                       records=[record(CODE)])
    await engine.dispose()
    head = bot(fresh_url, tmp_path, "db", "revision")
    assert head.isdigit() and int(head) > 1

    # Every migration since the first can be undone.
    assert bot(fresh_url, tmp_path, "db", "downgrade", "0001") == "database schema is at 0001"
    assert bot(fresh_url, tmp_path, "db", "revision") == "0001"
    bot(fresh_url, tmp_path, "db", "upgrade")
    assert bot(fresh_url, tmp_path, "db", "revision") == head
    found = bot(fresh_url, tmp_path, "status", CODE, "--phone", "0912345678", "--json")
    assert json.loads(found)["found"] is True
