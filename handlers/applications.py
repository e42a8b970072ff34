"""Application services used by the CLI, the REST API and the channels.

Each operation is one transaction: an import, the status history it writes and the
notifications it queues for followers land together or not at all.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.messages import dump_buttons
from handlers.status import change_message, rating_buttons
from knowledge.i18n import language
from knowledge.loader import KnowledgeBase
from knowledge.schema import Channel, Method, TimeUnit
from knowledge.workdays import TZ, WorkCalendar
from storage import applications as repo
from storage.db import session_scope
from storage.domain import ApplicationStatus, SubmissionChannel
from storage.importfile import ApplicationRow, ImportLimits, RowError, read_applications
from storage.models import Application, Notification, StatusChange
from storage.stats import Stats, compute_stats

METHOD_OF = {
    SubmissionChannel.ONLINE: Channel.ONLINE,
    SubmissionChannel.IN_PERSON: Channel.IN_PERSON,
    SubmissionChannel.POST: Channel.POST,
}


@dataclass(frozen=True)
class Office:
    """What the application services of one commune work with."""

    sessions: async_sessionmaker[AsyncSession]
    commune_id: int
    kb: KnowledgeBase
    calendar: WorkCalendar


@dataclass
class ImportReport:
    """The outcome of an import, for the person who ran it."""

    rows: int = 0
    imported: bool = False
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    notifications: int = 0
    errors: list[RowError] = field(default_factory=list)  # the first ones found
    more_errors: int = 0  # problems found beyond ``errors``
    bad_rows: int = 0


def _method(methods: Sequence[Method], channel: SubmissionChannel) -> Method | None:
    """The procedure's method for this channel, else any method with a processing time."""
    timed = [m for m in methods if m.time_value]
    return next((m for m in timed if m.channel is METHOD_OF[channel]), timed[0] if timed else None)


def to_record(row: ApplicationRow, kb: KnowledgeBase, calendar: WorkCalendar
              ) -> repo.ApplicationRecord:
    """A row as stored: name and field from the knowledge base, and a due date computed in
    working days when the one-stop system did not give one."""
    procedure = kb.procedures.get(row.procedure_code or "")
    due, estimated = row.due_at, False
    method = _method(procedure.methods, row.channel) if procedure else None
    if due is None and method and method.time_value and method.time_unit:
        due = calendar.due_at(row.received_at, value=method.time_value, unit=method.time_unit,
                              cutoff_hour=method.cutoff_hour)
        estimated = method.time_unit is TimeUnit.UNSPECIFIED or not method.time_confirmed
    return repo.ApplicationRecord(
        receipt_code=row.receipt_code,
        procedure_code=row.procedure_code,
        procedure_name=row.procedure_name or (procedure.name if procedure else ""),
        field=procedure.field if procedure else "",
        applicant_name=row.applicant_name,
        phone=row.phone,
        channel=row.channel,
        received_at=row.received_at,
        due_at=due,
        due_estimated=estimated,
        status=row.status,
        completed_at=row.completed_at,
    )


async def notify_followers(session: AsyncSession, *, commune_id: int,
                           changes: Sequence[repo.Change]) -> int:
    """Queue one message per follower and status change; returns how many were queued.
    A supplement request carries what staff asked for (the change's note) and by when."""
    changes = [c for c in changes if c.status_change_id]
    followers = await repo.subscribers(session, [c.application_id for c in changes])
    if not followers:
        return 0
    # populate_existing: the supplement deadline may have been set in this transaction.
    apps = {a.id: a for a in (await session.exec(select(Application).where(
        col(Application.id).in_(list(followers))).execution_options(
            populate_existing=True))).all()}
    asked = [c.status_change_id for c in changes
             if c.status is ApplicationStatus.SUPPLEMENT_REQUIRED
             and c.application_id in followers]
    notes = {sc.id: sc.note for sc in (await session.exec(select(StatusChange).where(
        col(StatusChange.id).in_(asked))))} if asked else {}
    messages = [
        Notification(commune_id=commune_id, channel=sub.channel, recipient=sub.recipient,
                     text=change_message(apps[c.application_id], c.status, language(sub.lang),
                                         request=_request(notes.get(c.status_change_id, ""))),
                     idempotency_key=f"status:{c.status_change_id}:{sub.id}", kind="status",
                     # the result handed over ends with the rating question: 1..5 to tap
                     buttons=dump_buttons(rating_buttons())
                     if c.status is ApplicationStatus.RETURNED else None)
        for c in changes for sub in followers.get(c.application_id, [])
    ]
    await repo.enqueue(session, messages)
    return len(messages)


def _request(note: str) -> str:
    """What a supplement's note asks for; a correction's note explains the correction."""
    return "" if note.startswith(repo.CORRECTION) else note


async def save_rows(office: Office, rows: Sequence[ApplicationRow], *, actor: str,
                    now: dt.datetime) -> ImportReport:
    """Upsert validated rows and notify followers of status changes, in one transaction."""
    records = [to_record(r, office.kb, office.calendar) for r in rows]
    report = ImportReport(rows=len(rows), imported=True)
    async with session_scope(office.sessions) as session:
        done = await repo.upsert_applications(session, commune_id=office.commune_id,
                                              records=records, actor=actor, now=now)
        report.notifications = await notify_followers(session, commune_id=office.commune_id,
                                                      changes=done.changes)
    report.created, report.updated, report.unchanged = done.created, done.updated, done.unchanged
    return report


async def import_file(office: Office, path: Path, *, skip_bad: bool, now: dt.datetime,
                      limits: ImportLimits | None = None) -> ImportReport:
    """Import a one-stop export. With bad rows nothing is imported unless ``skip_bad``.

    Raises ``storage.importfile.ImportFileError`` for a file that cannot be read at all or
    is beyond ``limits``; the database is then left as it was.
    """
    # Off the event loop: a large workbook takes a minute to read.
    parsed = await asyncio.to_thread(read_applications, path, limits=limits or ImportLimits())
    rows = len(parsed.rows) + parsed.bad_rows
    if parsed.bad_rows and not skip_bad:
        return ImportReport(rows=rows, errors=parsed.errors, more_errors=parsed.more_errors,
                            bad_rows=parsed.bad_rows)
    report = await save_rows(office, parsed.rows, actor=f"import:{path.name}", now=now)
    report.rows, report.errors, report.more_errors, report.bad_rows = (
        rows, parsed.errors, parsed.more_errors, parsed.bad_rows)
    return report


async def set_status(office: Office, *, receipt_code: str, status: ApplicationStatus,
                     actor: str, now: dt.datetime, note: str = "",
                     completed_at: dt.datetime | None = None, workflow: bool = False,
                     correction: bool = False, supplement_due_at: dt.datetime | None = None
                     ) -> repo.Change | None:
    """Change one application's status and notify its followers; None if the code is unknown.
    ``workflow`` and ``correction`` as in ``storage.applications.change_status``. Asking for a
    supplement records ``supplement_due_at`` (the documents' deadline; None: none given)."""
    async with session_scope(office.sessions) as session:
        change = await repo.change_status(session, commune_id=office.commune_id,
                                          receipt_code=receipt_code, status=status, actor=actor,
                                          at=now, note=note, completed_at=completed_at,
                                          workflow=workflow, correction=correction)
        if change is not None and status is ApplicationStatus.SUPPLEMENT_REQUIRED and (
                change.status_change_id or supplement_due_at is not None):
            # A new request replaces the last one's deadline; a repeat may only add one.
            await repo.set_supplement_due(session, application_id=change.application_id,
                                          due=supplement_due_at)
        if change is not None:
            await notify_followers(session, commune_id=office.commune_id, changes=[change])
    return change


async def stats_for_period(office: Office, first: dt.date | None, last: dt.date | None, *,
                           now: dt.datetime) -> Stats:
    """Statistics of applications received from ``first`` to ``last`` (local dates,
    inclusive); by default the current month up to today."""
    today = now.astimezone(TZ).date()
    first = first or today.replace(day=1)
    last = last or today
    start = dt.datetime.combine(first, dt.time(), TZ)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), TZ)
    async with office.sessions() as session:
        return await compute_stats(session, commune_id=office.commune_id, start=start, end=end,
                                   now=now)
