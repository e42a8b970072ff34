"""Readiness (/readyz), request ids and the log formats."""

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from alembic import command
from alembic.script import ScriptDirectory

from bot.logs import make_handler
from bot.settings import Settings
from bot.web import create_app
from handlers.applications import Office
from knowledge.answer import Assistant
from storage.db import alembic_config, head_revisions, make_engine, make_sessions
from tests.conftest import scratch_database

SETTINGS = Settings(secret_key="test-secret")


def office_on(url: str, office: Office) -> Office:
    """The commune's office with its sessions on another database."""
    return replace(office, sessions=make_sessions(make_engine(url)))


async def readiness(assistant: Assistant, office: Office) -> tuple[int, dict[str, object]]:
    async with TestClient(TestServer(create_app(assistant, office, settings=SETTINGS))) as http:
        response = await http.get("/readyz")
        return response.status, await response.json()


async def test_ready_when_the_database_is_at_head(assistant: Assistant, office: Office) -> None:
    assert await readiness(assistant, office) == (200, {"status": "ok",
                                                        "revision": "".join(head_revisions())})


def previous_revision() -> str:
    """The revision the newest migration starts from."""
    [head] = head_revisions()
    down = ScriptDirectory.from_config(alembic_config()).get_revision(head).down_revision
    assert isinstance(down, str)
    return down


@pytest.fixture(params=["sqlite", "postgresql"])
async def behind_head(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A database migrated to the revision before the newest."""
    async with scratch_database(request.param, tmp_path, "motcua_old") as url:
        await asyncio.to_thread(command.upgrade, alembic_config(url), previous_revision())
        yield url


async def test_not_ready_behind_head_or_never_migrated(
        assistant: Assistant, office: Office, behind_head: str, tmp_path: Path) -> None:
    [head] = head_revisions()
    status, body = await readiness(assistant, office_on(behind_head, office))
    assert (status, body) == (503, {"status": "migrations not at head",
                                    "current": [previous_revision()], "head": [head]})
    empty = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    assert await readiness(assistant, office_on(empty, office)) == (
        503, {"status": "database not migrated"})


@pytest.mark.parametrize("url", [
    "postgresql://postgres@127.0.0.1:1/motcua",  # nothing listens there
    "sqlite:////nonexistent-directory/motcua.sqlite3",
])
async def test_not_ready_when_the_database_is_gone(assistant: Assistant, office: Office,
                                                   url: str) -> None:
    assert await readiness(assistant, office_on(url, office)) == (
        503, {"status": "database unreachable"})


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """What the server logs, as ``MOTCUA_LOG_FORMAT=json`` writes it."""
    stream = io.StringIO()
    handler = make_handler("json", stream)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield stream
    finally:
        root.removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict[str, str]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_a_json_log_line_carries_the_request_id_of_the_response(
        assistant: Assistant, office: Office, json_log: io.StringIO) -> None:
    gone = office_on("sqlite:////nonexistent-directory/motcua.sqlite3", office)
    async with TestClient(TestServer(create_app(assistant, gone, settings=SETTINGS))) as http:
        response = await http.get("/readyz")
        generated = response.headers["X-Request-Id"]
        kept = await http.get("/healthz", headers={"X-Request-Id": "lb-7f3a.42"})
        odd = await http.get("/healthz", headers={"X-Request-Id": "x" * 200})
    assert len(generated) == 32
    assert kept.headers["X-Request-Id"] == "lb-7f3a.42"
    assert odd.headers["X-Request-Id"] not in ("x" * 200, generated)
    logged = [line for line in lines(json_log) if line["logger"].startswith("bot.")]
    assert [(line["level"], line["message"], line["request_id"]) for line in logged] == [
        ("WARNING", "readiness: database unreachable: OperationalError", generated),
        ("WARNING", "health check: database unreachable: OperationalError", "lb-7f3a.42"),
        ("WARNING", "health check: database unreachable: OperationalError",
         odd.headers["X-Request-Id"]),
    ]
    assert all(line["time"].endswith("+00:00") for line in logged)


def test_log_formats() -> None:
    record = logging.LogRecord("bot.web", logging.INFO, __file__, 1, "chat %s", ("ok",), None)
    text = make_handler("text", io.StringIO())
    assert text.format(record).endswith(" INFO bot.web: chat ok")
    outside = make_handler("json", io.StringIO())
    assert outside.filter(record)
    assert json.loads(outside.format(record)) == {
        "time": json.loads(outside.format(record))["time"], "level": "INFO",
        "logger": "bot.web", "message": "chat ok"}  # no request id outside a request
    with pytest.raises(SystemExit, match="MOTCUA_LOG_FORMAT"):
        make_handler("xml")
