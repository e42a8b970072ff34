"""Retention: personal data kept no longer than it is needed, then deleted in bulk.

Vietnam's personal-data rules (Nghị định 13/2023/NĐ-CP, and the Law on Personal Data
Protection 2025 that replaces it) require data to be kept only as long as its purpose needs.
What a citizen said (conversations, unanswered questions), which codes were looked up from which
account (the lookup audit), what was sent to them (notifications) and which channel events were
handled are kept for the periods below and then purged. Applications and their status history
are the commune's administrative records and are never purged here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields

from sqlalchemy import ColumnElement, and_, delete, func, or_
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.conversations import forget_events
from storage.models import (
    Conversation,
    Feedback,
    JobRun,
    LookupAttempt,
    Notification,
    Rating,
    SeenEvent,
    Unanswered,
)


@dataclass(frozen=True, slots=True)
class RetentionPeriods:
    """Days each kind of record is kept; 0 keeps it forever."""

    conversations: int = 180  # since the citizen last wrote
    unanswered: int = 365  # questions staff review to extend the knowledge base
    lookups: int = 365  # the lookup audit: who tried which code, when
    notifications: int = 90  # since sent (or queued, for one never sent)
    events: int = 7  # handled channel events; Telegram stops redelivering after a day
    jobs: int = 30  # the record of periodic jobs' runs (no personal data; it only grows)
    feedback: int = 1095  # citizens' reports, since filed (the oversight record of 3 years)
    ratings: int = 730  # satisfaction ratings and their comments, since rated (or asked)


# The shortest period each may be set to: below it the data is still in use (the lookup limits
# count failures over 30 days; Zalo's 48-hour window and the 24-hour hand-over live in the
# conversation; a channel may redeliver an event for a day; the outbox retries for a while).
MINIMUM_DAYS = RetentionPeriods(conversations=3, unanswered=1, lookups=31, notifications=2,
                                events=2, jobs=2, feedback=90, ratings=90)

# The environment variable of each period.
ENVIRONMENT = {
    "conversations": "MOTCUA_KEEP_CONVERSATIONS_DAYS",
    "unanswered": "MOTCUA_KEEP_UNANSWERED_DAYS",
    "lookups": "MOTCUA_KEEP_LOOKUPS_DAYS",
    "notifications": "MOTCUA_KEEP_NOTIFICATIONS_DAYS",
    "events": "MOTCUA_KEEP_EVENTS_DAYS",
    "jobs": "MOTCUA_KEEP_JOB_RUNS_DAYS",
    "feedback": "MOTCUA_KEEP_FEEDBACK_DAYS",
    "ratings": "MOTCUA_KEEP_RATINGS_DAYS",
}


def periods_from_env(env: dict[str, str]) -> RetentionPeriods:
    """The periods the environment sets over the defaults; ValueError names a wrong one."""
    values: dict[str, int] = {}
    for kind, name in ENVIRONMENT.items():
        text = env.get(name, "").strip()
        if not text:
            continue
        least = getattr(MINIMUM_DAYS, kind)
        if not text.isdigit() or 0 < int(text) < least:
            raise ValueError(f"{name} must be a number of days, at least {least} "
                             "(or 0 to keep them forever)")
        values[kind] = int(text)
    return RetentionPeriods(**values)


def _expired(kind: str, before: dt.datetime, commune_id: int | None
             ) -> tuple[type[SQLModel], ColumnElement[bool]]:
    """The table of ``kind`` and the condition its expired rows meet."""
    if kind == "events":
        return SeenEvent, col(SeenEvent.at) < before
    if kind == "jobs":  # like events, they belong to no commune
        return JobRun, col(JobRun.started_at) < before
    table: type[SQLModel]
    if kind == "conversations":
        table, commune = Conversation, col(Conversation.commune_id)
        condition = col(Conversation.last_seen_at) < before
    elif kind == "unanswered":
        table, commune = Unanswered, col(Unanswered.commune_id)
        condition = col(Unanswered.at) < before
    elif kind == "lookups":
        table, commune = LookupAttempt, col(LookupAttempt.commune_id)
        condition = col(LookupAttempt.at) < before
    elif kind == "feedback":  # a report still open is kept until it is closed
        table, commune = Feedback, col(Feedback.commune_id)
        condition = and_(col(Feedback.created_at) < before,
                         col(Feedback.status).in_(("draft", "closed", "answered")))
    elif kind == "ratings":
        table, commune = Rating, col(Rating.commune_id)
        condition = func.coalesce(col(Rating.rated_at), col(Rating.asked_at)) < before
    else:
        table, commune = Notification, col(Notification.commune_id)
        # One never sent (given up, or its channel turned off) goes by when it was queued.
        condition = or_(col(Notification.sent_at) < before,
                        and_(col(Notification.sent_at).is_(None),
                             col(Notification.created_at) < before))
    if commune_id is not None:
        condition = and_(condition, commune == commune_id)
    return table, condition


async def purge(session: AsyncSession, *, commune_id: int | None, now: dt.datetime,
                periods: RetentionPeriods, dry_run: bool = False) -> dict[str, int]:
    """Delete the records older than their period, one bulk DELETE per table; returns how
    many went per kind (with ``dry_run``, how many would go, deleting nothing).

    ``commune_id`` limits the purge to one commune (None: all of them); handled channel events
    belong to no commune and go by age alone.
    """
    counts: dict[str, int] = {}
    for period in fields(periods):
        days = getattr(periods, period.name)
        if not days:
            continue
        before = now - dt.timedelta(days=days)
        table, condition = _expired(period.name, before, commune_id)
        if dry_run:
            counts[period.name] = (await session.exec(
                select(func.count()).select_from(table).where(condition))).one()
        elif table is SeenEvent:
            counts[period.name] = await forget_events(session, before=before)
        else:
            result = await (await session.connection()).execute(delete(table).where(condition))
            counts[period.name] = int(result.rowcount or 0)
    return counts
