"""Periodic jobs, all on one APScheduler, in Asia/Ho_Chi_Minh time.

Every instance runs the scheduler; each run is claimed in the database for its job and slot
(the hour, the half hour… it is for) before it starts, so however many instances are up, and
across restarts, a job runs once per slot (``storage.conversations.claim_job``). A job is
named after what it is about; its factory lives here and ``bot.app`` registers it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot import metrics
from bot.zalo import ZaloClient
from handlers import broadcasts, reminders
from handlers.applications import Office
from knowledge.workdays import TZ
from storage import conversations as conversations_repo
from storage.db import session_scope
from storage.retention import RetentionPeriods, purge

log = logging.getLogger(__name__)
ZALO_TOKEN_MARGIN = dt.timedelta(hours=2)  # renew the Zalo access token this long before expiry


@dataclass(frozen=True)
class Job:
    """A periodic job: it runs once per ``every`` (its slot), whatever the instances. A
    commune's job other than the first commune's is named ``<job>:<commune slug>``."""

    name: str
    every: dt.timedelta
    run: Callable[[dt.datetime], Awaitable[str]]  # now → what it did, for the record


def slot_of(job: Job, now: dt.datetime) -> str:
    """The slot ``now`` falls in: its start in local time, ISO 8601 ("2026-12-06T04:00")."""
    local = now.astimezone(TZ)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    start = midnight + job.every * ((local - midnight) // job.every)
    return start.strftime("%Y-%m-%dT%H:%M")


async def run_job(office: Office, job: Job, now: dt.datetime | None = None) -> bool:
    """Run ``job`` for the slot of ``now`` unless its run is claimed already; whether it ran.
    A failure is recorded with its kind (and logged), never raised: the next slot tries
    again."""
    now = now or dt.datetime.now(dt.UTC)
    slot, kind = slot_of(job, now), job.name.partition(":")[0]  # "reminders:phuc-tho"
    async with session_scope(office.sessions) as session:
        run_id = await conversations_repo.claim_job(session, name=job.name, slot=slot, at=now)
    if run_id is None:
        metrics.JOBS.labels(kind, "skipped").inc()
        return False
    try:
        outcome = await job.run(now)
        metrics.JOBS.labels(kind, "ok").inc()
    except Exception as exc:
        log.exception("job %s (%s) failed", job.name, slot)
        outcome = f"failed: {type(exc).__name__}"
        metrics.JOBS.labels(kind, "failed").inc()
    async with session_scope(office.sessions) as session:
        await conversations_repo.finish_job(session, run_id=run_id,
                                            at=dt.datetime.now(dt.UTC), outcome=outcome)
    return True


def retention_job(office: Office, periods: RetentionPeriods) -> Job:
    """Delete what is past its retention period (``storage.retention``), hourly."""
    async def run(now: dt.datetime) -> str:
        async with session_scope(office.sessions) as session:
            counts = await purge(session, commune_id=office.commune_id, now=now,
                                 periods=periods)
        return ", ".join(f"{kind} {n}" for kind, n in counts.items() if n) or "nothing"
    return Job("retention", dt.timedelta(hours=1), run)


def broadcasts_job(office: Office) -> Job:
    """Queue the scheduled broadcasts whose time has come (``handlers.broadcasts``), every
    minute; a broadcast is taken by one instance only (its status moves in the same
    transaction as its outbox rows)."""
    async def run(now: dt.datetime) -> str:
        sent = await broadcasts.send_due(office, now=now)
        return ", ".join(f"broadcast {i}: {n}" for i, n in sent) or "nothing due"
    return Job("broadcasts", dt.timedelta(minutes=1), run)


def zalo_token_job(client: ZaloClient) -> Job:
    """Renew Zalo's access token before it expires (a missed renewal leaves the channel
    dead until an officer re-authorises the OA), every half hour."""
    async def run(now: dt.datetime) -> str:
        renewed = await client.refresh_if_expiring(within=ZALO_TOKEN_MARGIN, now=now)
        return {True: "renewed", False: "still valid", None: "failed"}[renewed]
    return Job("zalo-token", dt.timedelta(minutes=30), run)


def reminders_job(office: Office, *, uncollected_after: int = reminders.UNCOLLECTED_AFTER
                  ) -> Job:
    """Queue followers' reminders and overdue notices (``handlers.reminders.scan``), every
    quarter of an hour; their keys make a repeated scan harmless."""
    async def run(now: dt.datetime) -> str:
        owed = await reminders.scan(office, now, uncollected_after=uncollected_after)
        return ", ".join(f"{kind} {n}" for kind, n in sorted(owed.items())) or "nothing"
    return Job("reminders", dt.timedelta(minutes=15), run)


def staff_digest_job(office: Office) -> Job:
    """The staff chat's morning digest, queued by the first hourly run from
    ``handlers.reminders.DIGEST_HOUR`` (its key keeps it to one a day)."""
    async def run(now: dt.datetime) -> str:
        return "queued" if await reminders.queue_digest(office, now) else "not yet"
    return Job("staff-digest", dt.timedelta(hours=1), run)


class Scheduler:
    """The periodic jobs, running: ``start`` them, ``stop`` them (running ones finish)."""

    def __init__(self, office: Office, jobs: Sequence[Job]) -> None:
        self.office = office
        self.jobs = list(jobs)
        self.scheduler = AsyncIOScheduler(timezone=TZ)
        # APScheduler logs every run at INFO (the broadcast job runs every minute); runs are
        # recorded in ``jobrun``, and failures logged here.
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
        self.running: set[asyncio.Task[bool]] = set()

    async def _run(self, job: Job) -> bool:
        task = asyncio.current_task()
        if task is not None:
            self.running.add(task)
            task.add_done_callback(self.running.discard)
        return await run_job(self.office, job)

    def start(self) -> None:
        """Run each job now (its slot may not have run yet), then a little after each slot
        begins."""
        now = dt.datetime.now(TZ)
        for job in self.jobs:
            self.scheduler.add_job(self._run, DateTrigger(now, timezone=TZ), args=[job],
                                   id=f"{job.name}:start", name=job.name)
            self.scheduler.add_job(
                self._run, IntervalTrigger(seconds=job.every.total_seconds(),
                                           start_date=_next_slot(job, now), timezone=TZ),
                args=[job], id=job.name, name=job.name, coalesce=True, max_instances=1,
                misfire_grace_time=int(job.every.total_seconds()))
        self.scheduler.start()

    async def stop(self, timeout: float = 10.0) -> None:
        """Start nothing more; let running jobs finish and record their runs (a job cut off
        midway would leave its slot claimed but unfinished)."""
        self.scheduler.pause()
        if self.running:
            await asyncio.wait(list(self.running), timeout=timeout)
        self.scheduler.shutdown(wait=False)


def _next_slot(job: Job, now: dt.datetime) -> dt.datetime:
    """A minute after the next slot begins (clocks of instances differ a little)."""
    start = dt.datetime.fromisoformat(slot_of(job, now)).replace(tzinfo=TZ)
    return start + job.every + dt.timedelta(minutes=1)
