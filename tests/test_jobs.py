"""Periodic jobs: once per slot whatever the instances, failures recorded, started with the
server (SQLite and PostgreSQL)."""

import asyncio
import datetime as dt

from sqlmodel import select

from bot import jobs
from handlers.applications import Office
from storage.db import session_scope
from storage.models import Conversation, JobRun
from storage.retention import RetentionPeriods

NOW = dt.datetime(2026, 12, 6, 3, 40, tzinfo=dt.UTC)  # 10:40 in Hà Nội


def counting(name: str, every: dt.timedelta) -> tuple[jobs.Job, list[dt.datetime]]:
    runs: list[dt.datetime] = []

    async def run(now: dt.datetime) -> str:
        runs.append(now)
        await asyncio.sleep(0.01)  # another instance's claim arrives meanwhile
        return "ok"
    return jobs.Job(name, every, run), runs


def test_slots_are_local_time() -> None:
    hourly, _ = counting("x", dt.timedelta(hours=1))
    half_hourly, _ = counting("y", dt.timedelta(minutes=30))
    daily, _ = counting("z", dt.timedelta(days=1))
    assert jobs.slot_of(hourly, NOW) == "2026-12-06T10:00"
    assert jobs.slot_of(half_hourly, NOW) == "2026-12-06T10:30"
    assert jobs.slot_of(daily, NOW + dt.timedelta(hours=17)) == "2026-12-07T00:00"


async def test_a_job_runs_once_per_slot_across_instances_and_restarts(office: Office) -> None:
    job, runs = counting("tidy", dt.timedelta(hours=1))
    # Two instances fire the same slot at once: one runs it.
    ran = await asyncio.gather(jobs.run_job(office, job, NOW), jobs.run_job(office, job, NOW))
    assert sorted(ran) == [False, True] and len(runs) == 1
    # A restart later in the same hour does not run it again; the next hour does.
    assert not await jobs.run_job(office, job, NOW + dt.timedelta(minutes=19))  # 10:59
    assert await jobs.run_job(office, job, NOW + dt.timedelta(minutes=21))  # 11:01
    async with office.sessions() as s:
        recorded = (await s.exec(select(JobRun).order_by(JobRun.slot))).all()
    assert [(r.slot, r.outcome) for r in recorded] == [("2026-12-06T10:00", "ok"),
                                                        ("2026-12-06T11:00", "ok")]
    assert all(r.finished_at is not None for r in recorded)


async def test_a_failing_job_is_recorded_and_tried_again_next_slot(office: Office) -> None:
    async def broken(now: dt.datetime) -> str:
        raise ConnectionError("Zalo unreachable")

    job = jobs.Job("zalo-token", dt.timedelta(minutes=30), broken)
    assert await jobs.run_job(office, job, NOW)  # no exception reaches the scheduler
    async with office.sessions() as s:
        [run] = (await s.exec(select(JobRun))).all()
    assert run.outcome == "failed: ConnectionError"
    assert await jobs.run_job(office, job, NOW + dt.timedelta(minutes=30))


async def test_the_retention_job_deletes_what_is_past_its_period(office: Office) -> None:
    async with session_scope(office.sessions) as s:
        s.add(Conversation(commune_id=office.commune_id, channel="web", user_id="old",
                           last_seen_at=NOW - dt.timedelta(days=200)))
        s.add(Conversation(commune_id=office.commune_id, channel="web", user_id="recent",
                           last_seen_at=NOW - dt.timedelta(days=2)))
    assert await jobs.run_job(office, jobs.retention_job(office, RetentionPeriods()), NOW)
    async with office.sessions() as s:
        kept = (await s.exec(select(Conversation.user_id))).all()
        [run] = (await s.exec(select(JobRun))).all()
    assert kept == ["recent"]
    assert run.outcome == "conversations 1"


async def test_the_scheduler_runs_its_jobs_from_the_start_and_stops_cleanly(
        office: Office) -> None:
    started = asyncio.Event()

    async def run(now: dt.datetime) -> str:
        started.set()
        await asyncio.sleep(0.2)  # still running when the server stops
        return "ok"

    scheduler = jobs.Scheduler(office, [jobs.Job("digest", dt.timedelta(days=1), run)])
    scheduler.start()
    await asyncio.wait_for(started.wait(), timeout=10)
    # Then daily, a minute after local midnight.
    after = scheduler.scheduler.get_job("digest").next_run_time
    assert (after.hour, after.minute) == (0, 1) and after.utcoffset() == dt.timedelta(hours=7)
    await scheduler.stop()  # the running job finishes and its run is recorded
    async with office.sessions() as s:
        [run_record] = (await s.exec(select(JobRun))).all()
    assert run_record.outcome == "ok" and run_record.finished_at is not None
