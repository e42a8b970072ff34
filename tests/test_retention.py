"""Retention: records past their period are purged, recent ones and applications stay."""

import asyncio
import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.settings import Settings
from handlers.applications import Office
from storage import applications as repo
from storage.db import make_engine, make_sessions, session_scope, upgrade
from storage.models import (
    Application,
    Conversation,
    Feedback,
    LookupAttempt,
    Notification,
    Rating,
    SeenEvent,
    StatusChange,
    Unanswered,
)
from storage.retention import RetentionPeriods, purge
from tests.samples import CODE

ROOT = Path(__file__).resolve().parents[1]
NOW = dt.datetime(2026, 12, 6, 9, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def records(commune: int, tag: str, age: dt.timedelta, now: dt.datetime = NOW
            ) -> list[SQLModel]:
    """One record of each purged kind, last touched ``age`` before ``now``."""
    at = now - age
    return [
        Conversation(commune_id=commune, channel="web", user_id=f"u-{tag}", last_seen_at=at),
        Unanswered(commune_id=commune, channel="web", user_id=f"u-{tag}", text="?", at=at),
        LookupAttempt(commune_id=commune, user_key=f"web:u-{tag}", receipt_code=CODE,
                      success=False, at=at),
        Notification(commune_id=commune, channel="telegram", recipient="1", text="sent",
                     idempotency_key=f"sent:{tag}", created_at=at - DAY, sent_at=at),
        Notification(commune_id=commune, channel="zalo", recipient="2", text="never sent",
                     idempotency_key=f"unsent:{tag}", created_at=at, attempts=5),
        SeenEvent(channel="telegram", event_id=f"{commune}-{tag}", at=at),
    ]


async def left(sessions: async_sessionmaker[AsyncSession], table: type[SQLModel]
               ) -> list[SQLModel]:
    async with sessions() as session:
        return list((await session.exec(select(table))).all())


@pytest.fixture
async def filled(office: Office) -> Office:
    """Hát Môn with old and recent records; a second commune with old ones."""
    async with session_scope(office.sessions) as session:
        other = await repo.ensure_commune(session, slug="phuc-loc", name="Xã Phúc Lộc")
        session.add_all([
            *records(office.commune_id, "old", dt.timedelta(days=400)),
            *records(office.commune_id, "recent", dt.timedelta(days=5)),
            *records(other, "other-old", dt.timedelta(days=400)),
        ])
    return office


async def test_old_records_go_recent_ones_and_applications_stay(
        filled: Office) -> None:
    office = filled
    async with session_scope(office.sessions) as session:
        counts = await purge(session, commune_id=office.commune_id, now=NOW,
                             periods=RetentionPeriods())
    # The events of both communes go: they belong to no commune.
    assert counts == {"conversations": 1, "unanswered": 1, "lookups": 1, "notifications": 2,
                      "events": 2, "jobs": 0, "feedback": 0, "ratings": 0}
    for table in (Conversation, Unanswered, LookupAttempt):
        kept = [r.model_dump() for r in await left(office.sessions, table)]
        assert sorted(r.get("user_id") or r["user_key"].removeprefix("web:") for r in kept
                      ) == ["u-other-old", "u-recent"]
    notifications = await left(office.sessions, Notification)
    assert sorted(n.model_dump()["idempotency_key"] for n in notifications) == [
        "sent:other-old", "sent:recent", "unsent:other-old", "unsent:recent"]
    assert [e.model_dump()["event_id"] for e in await left(office.sessions, SeenEvent)] == [
        f"{office.commune_id}-recent"]
    assert len(await left(office.sessions, Application)) == 1
    assert len(await left(office.sessions, StatusChange)) == 1


async def test_each_period_applies_to_its_own_kind(filled: Office) -> None:
    office = filled
    periods = RetentionPeriods(conversations=3, unanswered=0, lookups=365, notifications=30,
                               events=30)
    async with session_scope(office.sessions) as session:
        counts = await purge(session, commune_id=None, now=NOW, periods=periods)
    # 5-day-old conversations are past 3 days; unanswered questions are kept forever.
    assert counts == {"conversations": 3, "lookups": 2, "notifications": 4, "events": 2,
                      "jobs": 0, "feedback": 0, "ratings": 0}
    assert len(await left(office.sessions, Conversation)) == 0
    assert len(await left(office.sessions, Unanswered)) == 3
    assert len(await left(office.sessions, LookupAttempt)) == 1


async def test_feedback_goes_after_three_years_once_closed_and_ratings_after_two(
        office: Office) -> None:
    def report(status: str, age: dt.timedelta) -> Feedback:
        return Feedback(commune_id=office.commune_id, channel="web", recipient="u",
                        description=f"{status} {age.days}", status=status, created_at=NOW - age)
    async with session_scope(office.sessions) as session:
        session.add_all([
            report("closed", 4 * 365 * DAY), report("open", 4 * 365 * DAY),
            report("closed", 365 * DAY),
            Rating(commune_id=office.commune_id, channel="web", recipient="u", subject="a:1",
                   score=5, asked_at=NOW - 3 * 365 * DAY, rated_at=NOW - 3 * 365 * DAY),
            Rating(commune_id=office.commune_id, channel="web", recipient="u", subject="a:2",
                   score=2, asked_at=NOW - 30 * DAY, rated_at=NOW - 30 * DAY)])
    async with session_scope(office.sessions) as session:
        counts = await purge(session, commune_id=office.commune_id, now=NOW,
                             periods=RetentionPeriods())
    assert (counts["feedback"], counts["ratings"]) == (1, 1)
    # A report nobody closed stays, however old: it is still owed an answer.
    assert sorted(f.model_dump()["description"] for f in await left(office.sessions, Feedback)
                  ) == ["closed 365", "open 1460"]
    assert [r.model_dump()["score"] for r in await left(office.sessions, Rating)] == [2]


async def test_a_dry_run_counts_and_deletes_nothing(filled: Office) -> None:
    office = filled
    async with session_scope(office.sessions) as session:
        counts = await purge(session, commune_id=office.commune_id, now=NOW,
                             periods=RetentionPeriods(), dry_run=True)
    assert counts == {"conversations": 1, "unanswered": 1, "lookups": 1, "notifications": 2,
                      "events": 2, "jobs": 0, "feedback": 0, "ratings": 0}
    assert len(await left(office.sessions, Conversation)) == 3
    assert len(await left(office.sessions, SeenEvent)) == 3


def test_periods_come_from_the_environment_and_are_checked() -> None:
    settings = Settings.from_env({"MOTCUA_KEEP_CONVERSATIONS_DAYS": "30",
                                  "MOTCUA_KEEP_UNANSWERED_DAYS": "0"})
    assert settings.retention == RetentionPeriods(conversations=30, unanswered=0)
    assert Settings.from_env({}).retention == RetentionPeriods(
        conversations=180, unanswered=365, lookups=365, notifications=90, events=7, jobs=30,
        feedback=1095, ratings=730)
    # Shorter than the lookup limits count failures: guessers would get a fresh budget.
    with pytest.raises(SystemExit, match="MOTCUA_KEEP_LOOKUPS_DAYS must be a number of days, "
                                         r"at least 31 \(or 0 to keep them forever\)"):
        Settings.from_env({"MOTCUA_KEEP_LOOKUPS_DAYS": "7"})
    with pytest.raises(SystemExit, match="MOTCUA_KEEP_EVENTS_DAYS must be a number of days"):
        Settings.from_env({"MOTCUA_KEEP_EVENTS_DAYS": "-1"})


def test_purge_command_reports_then_deletes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'motcua.sqlite3'}"
    env = {**os.environ, "DATABASE_URL": url, "MOTCUA_KEEP_UNANSWERED_DAYS": "0"}

    async def seed() -> None:
        await upgrade(url)
        engine = make_engine(url)
        async with session_scope(make_sessions(engine)) as session:
            commune = await repo.ensure_commune(session, slug="hat-mon", name="Xã Hát Môn")
            now = dt.datetime.now(dt.UTC)
            session.add_all([*records(commune, "old", dt.timedelta(days=400), now),
                             *records(commune, "recent", dt.timedelta(days=1), now)])
        await engine.dispose()

    asyncio.run(seed())

    def purge_command(*options: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "bot", "purge", *options], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=120, check=False)

    dry = purge_command("--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines() == [
        "conversations  would delete         1  (older than 180 days)",
        "unanswered     kept forever",
        "lookups        would delete         1  (older than 365 days)",
        "notifications  would delete         2  (older than 90 days)",
        "events         would delete         1  (older than 7 days)",
        "jobs           would delete         0  (older than 30 days)",
        "feedback       would delete         0  (older than 1095 days)",
        "ratings        would delete         0  (older than 730 days)",
    ]
    done = purge_command()
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [line.replace("would delete", "deleted     ")
                                        for line in dry.stdout.splitlines()]
    again = purge_command("--dry-run")
    assert again.stdout.splitlines()[0] == (
        "conversations  would delete         0  (older than 180 days)")
