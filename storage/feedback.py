"""Queries on citizens' feedback reports (phản ánh, kiến nghị) and satisfaction ratings.

Functions take the session explicitly and never commit. A report is a ``Feedback`` row: a
"draft" while the citizen is writing it, then filed with a tracking number
(``PA-<year>-<id>``) and a deadline. A rating is asked once per subject (a returned
application, a hand-over) and channel account.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from knowledge.workdays import TZ
from storage.domain import ApplicationStatus
from storage.models import Application, Feedback, Rating, StatusChange, Subscription

KINDS = ("extra_papers", "late", "unclear", "rude", "other")  # in the order offered
DRAFT, OPEN, ASSIGNED, ANSWERED, CLOSED = "draft", "open", "assigned", "answered", "closed"
STATUSES = (OPEN, ASSIGNED, ANSWERED, CLOSED)  # a filed report's
PENDING = (OPEN, ASSIGNED)  # waiting for the staff's answer
_NUMBER = re.compile(r"\bPA[\s._-]*(\d{4})[\s._-]*(\d{1,9})\b", re.IGNORECASE)


def tracking_number(report: Feedback) -> str:
    """The number a citizen follows a report by: ``PA-2026-000123``."""
    assert report.id is not None
    year = (report.filed_at or report.created_at).astimezone(TZ).year
    return f"PA-{year}-{report.id:06d}"


def find_tracking_number(text: str) -> tuple[int, int] | None:
    """(year, id) of a tracking number written anywhere in ``text``, else None."""
    match = _NUMBER.search(text)
    return (int(match.group(1)), int(match.group(2))) if match else None


async def draft(session: AsyncSession, *, commune_id: int, channel: str, recipient: str
                ) -> Feedback | None:
    """The report this account is writing, if any."""
    return (await session.exec(select(Feedback).where(
        Feedback.commune_id == commune_id, Feedback.channel == channel,
        Feedback.recipient == recipient, Feedback.status == DRAFT)
        .order_by(col(Feedback.id).desc()))).first()


async def start_draft(session: AsyncSession, *, commune_id: int, channel: str, recipient: str,
                      lang: str, at: dt.datetime) -> Feedback:
    """A new draft for this account (the one it was writing, started afresh)."""
    report = await draft(session, commune_id=commune_id, channel=channel, recipient=recipient)
    if report is None:
        report = Feedback(commune_id=commune_id, channel=channel, recipient=recipient)
    report.lang, report.kind, report.receipt_code, report.procedure_code = lang, "", "", ""
    report.description, report.created_at = "", at
    session.add(report)
    await session.flush()
    return report


async def discard_draft(session: AsyncSession, *, commune_id: int, channel: str,
                        recipient: str) -> None:
    """Forget the report this account was writing."""
    report = await draft(session, commune_id=commune_id, channel=channel, recipient=recipient)
    if report is not None:
        await session.delete(report)


async def file(session: AsyncSession, report: Feedback, *, description: str, at: dt.datetime,
               due_at: dt.datetime) -> Feedback:
    """File a draft: it gets its tracking number (its id) and the staff's deadline."""
    report.description, report.status = description, OPEN
    report.filed_at, report.due_at = at, due_at
    session.add(report)
    await session.flush()
    return report


async def get(session: AsyncSession, *, commune_id: int, reference: str) -> Feedback | None:
    """A filed report by tracking number ("PA-2026-000123") or id ("123")."""
    found = find_tracking_number(reference)
    if found is None and not reference.strip().isdigit():
        return None
    year, number = found if found else (None, int(reference.strip()))
    if number > 2**31 - 1:
        return None
    report = await session.get(Feedback, number)
    if report is None or report.commune_id != commune_id or report.status == DRAFT:
        return None
    if year is not None and tracking_number(report) != f"PA-{year}-{number:06d}":
        return None
    return report


async def by_author(session: AsyncSession, *, commune_id: int, channel: str, recipient: str,
                    limit: int = 5) -> list[Feedback]:
    """The reports this account filed, newest first."""
    return list((await session.exec(select(Feedback).where(
        Feedback.commune_id == commune_id, Feedback.channel == channel,
        Feedback.recipient == recipient, col(Feedback.status).in_(STATUSES))
        .order_by(col(Feedback.id).desc()).limit(limit))).all())


async def listing(session: AsyncSession, *, commune_id: int, statuses: tuple[str, ...] = PENDING,
                  limit: int = 200) -> list[Feedback]:
    """Filed reports in these statuses, the nearest deadline first."""
    return list((await session.exec(select(Feedback).where(
        Feedback.commune_id == commune_id, col(Feedback.status).in_(statuses))
        .order_by(col(Feedback.due_at), col(Feedback.id)).limit(limit))).all())


@dataclass(frozen=True)
class FeedbackCounts:
    """Reports filed in a period, counted for the overview."""

    total: int
    by_kind: dict[str, int]
    by_procedure: dict[str, int]  # "" for reports naming no procedure
    pending: int  # of those, still waiting for an answer
    overdue: int  # of those, waiting past their deadline


async def counts(session: AsyncSession, *, commune_id: int, start: dt.datetime,
                 end: dt.datetime, now: dt.datetime) -> FeedbackCounts:
    """Reports filed in [start, end): by kind, by procedure, pending and overdue."""
    f = Feedback
    rows: list[Any] = list((await session.exec(sa_select(  # type: ignore[call-overload]
        col(f.kind), col(f.procedure_code), col(f.status), col(f.due_at), func.count())
        .where(col(f.commune_id) == commune_id, col(f.status).in_(STATUSES),
               col(f.filed_at) >= start, col(f.filed_at) < end)
        .group_by(col(f.kind), col(f.procedure_code), col(f.status), col(f.due_at)))).all())
    by_kind: Counter[str] = Counter()
    by_procedure: Counter[str] = Counter()
    pending = overdue = 0
    for kind, procedure, status, due, n in rows:
        by_kind[kind] += n
        by_procedure[procedure] += n
        if status in PENDING:
            pending += n
            overdue += n if due is not None and due < now else 0
    return FeedbackCounts(sum(by_kind.values()), dict(by_kind), dict(by_procedure), pending,
                          overdue)


@dataclass(frozen=True)
class PendingRating:
    """A rating question this account may answer now."""

    subject: str
    asked_at: dt.datetime
    application_id: int | None = None
    procedure_code: str = ""


async def ask_rating(session: AsyncSession, *, commune_id: int, channel: str, recipient: str,
                     subject: str, at: dt.datetime, application_id: int | None = None,
                     procedure_code: str = "") -> bool:
    """Record that the question is asked now; False if it was asked before (do not ask)."""
    row = await _rating(session, commune_id, channel, recipient, subject)
    if row is not None:
        if row.asked_at is not None:
            return False
        row.asked_at = at
        session.add(row)
        return True
    try:
        async with session.begin_nested():
            session.add(Rating(commune_id=commune_id, channel=channel, recipient=recipient,
                               subject=subject, application_id=application_id,
                               procedure_code=procedure_code, asked_at=at))
    except IntegrityError:  # asked at the same moment elsewhere
        return False
    return True


async def note_officer(session: AsyncSession, *, commune_id: int, channel: str,
                       recipient: str, subject: str, officer: str) -> None:
    """Staff replied in a hand-over: remember who (``officer``, "" when unknown), to rate
    with it when it ends."""
    row = await _rating(session, commune_id, channel, recipient, subject) or Rating(
        commune_id=commune_id, channel=channel, recipient=recipient, subject=subject)
    row.officer = officer[:120] or row.officer
    session.add(row)
    await session.flush()


async def staff_replied(session: AsyncSession, *, commune_id: int, channel: str,
                        recipient: str, subject: str) -> bool:
    """Whether staff replied in this hand-over (``note_officer`` was called)."""
    return await _rating(session, commune_id, channel, recipient, subject) is not None


async def pending_rating(session: AsyncSession, *, commune_id: int, channel: str,
                         recipient: str, since: dt.datetime) -> PendingRating | None:
    """The latest unanswered question asked since ``since``: a hand-over's, or a returned
    application this account followed before it was returned (its notification asks)."""
    asked = (await session.exec(select(Rating).where(
        Rating.commune_id == commune_id, Rating.channel == channel,
        Rating.recipient == recipient, col(Rating.score).is_(None),
        col(Rating.asked_at) >= since).order_by(col(Rating.asked_at).desc()))).first()
    a, s = Application, Subscription
    returned = (await session.exec(select(a).join(s, col(s.application_id) == col(a.id)).where(
        col(s.commune_id) == commune_id, col(s.channel) == channel,
        col(s.recipient) == recipient, col(a.status) == ApplicationStatus.RETURNED,
        col(a.updated_at) >= since, col(s.created_at) <= col(a.updated_at))
        .order_by(col(a.updated_at).desc()).limit(5))).all()
    rated = set((await session.exec(select(Rating.subject).where(
        Rating.commune_id == commune_id, Rating.channel == channel,
        Rating.recipient == recipient,
        col(Rating.subject).in_([f"application:{app.id}" for app in returned])))).all()) \
        if returned else set()
    app = next((app for app in returned if f"application:{app.id}" not in rated), None)
    candidates = [PendingRating(r.subject, r.asked_at, r.application_id, r.procedure_code)
                  for r in [asked] if r is not None and r.asked_at is not None]
    if app is not None:
        candidates.append(PendingRating(f"application:{app.id}", app.updated_at, app.id,
                                        app.procedure_code or ""))
    return max(candidates, key=lambda c: c.asked_at, default=None)


async def rate(session: AsyncSession, *, commune_id: int, channel: str, recipient: str,
               pending: PendingRating, score: int, comment: str, at: dt.datetime) -> Rating:
    """Record the answer to a pending question; an application's officer is who made its
    last status change."""
    if not 1 <= score <= 5:
        raise ValueError(f"a score is 1 to 5, got {score}")
    row = await _rating(session, commune_id, channel, recipient, pending.subject)
    if row is None:
        officer = ""
        if pending.application_id is not None:
            officer = (await session.exec(select(StatusChange.changed_by).where(
                StatusChange.application_id == pending.application_id).order_by(
                col(StatusChange.changed_at).desc(), col(StatusChange.id).desc()))).first() or ""
        row = Rating(commune_id=commune_id, channel=channel, recipient=recipient,
                     subject=pending.subject, application_id=pending.application_id,
                     procedure_code=pending.procedure_code, officer=officer,
                     asked_at=pending.asked_at)
    row.score, row.comment, row.rated_at = score, comment, at
    session.add(row)
    await session.flush()
    return row


async def last_rated(session: AsyncSession, *, commune_id: int, channel: str, recipient: str
                     ) -> Rating | None:
    """This account's latest answered rating."""
    return (await session.exec(select(Rating).where(
        Rating.commune_id == commune_id, Rating.channel == channel,
        Rating.recipient == recipient, col(Rating.rated_at).is_not(None))
        .order_by(col(Rating.rated_at).desc()))).first()


@dataclass
class RatingReport:
    """How satisfied citizens were in a period: counts of each score 1–5."""

    overall: dict[int, int] = field(default_factory=lambda: dict.fromkeys(range(1, 6), 0))
    by_month: dict[str, dict[int, int]] = field(default_factory=dict)  # "2026-12"
    by_procedure: dict[str, dict[int, int]] = field(default_factory=dict)
    by_officer: dict[str, dict[int, int]] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return sum(self.overall.values())

    @property
    def average(self) -> float | None:
        return sum(s * n for s, n in self.overall.items()) / self.count if self.count else None


def _local_month(column: Any, dialect: str) -> Any:
    """``column``'s month in Vietnam's time, "2026-12", computed by the database."""
    if dialect == "postgresql":
        return func.to_char(func.timezone(TZ.key, column), "YYYY-MM")
    return func.strftime("%Y-%m", column, "+7 hours")  # UTC+7 all year, no daylight saving


async def distribution(session: AsyncSession, *, commune_id: int, start: dt.datetime,
                       end: dt.datetime) -> RatingReport:
    """Scores given in [start, end): overall, per local month, per procedure, per officer
    (counted by the database, one row per combination)."""
    r = Rating
    month = _local_month(col(r.rated_at), (await session.connection()).dialect.name)
    rows = (await session.exec(sa_select(  # type: ignore[call-overload]
        r.score, r.procedure_code, r.officer, month, func.count()).where(
        r.commune_id == commune_id, col(r.score).is_not(None), col(r.rated_at) >= start,
        col(r.rated_at) < end).group_by(r.score, r.procedure_code, r.officer, month))).all()
    report = RatingReport()
    for score, procedure, officer, at_month, count in rows:
        report.overall[score] += count
        for table, key in ((report.by_month, at_month), (report.by_procedure, procedure),
                           (report.by_officer, officer)):
            table.setdefault(key, dict.fromkeys(range(1, 6), 0))[score] += count
    return report


async def _rating(session: AsyncSession, commune_id: int, channel: str, recipient: str,
                  subject: str) -> Rating | None:
    return (await session.exec(select(Rating).where(
        Rating.commune_id == commune_id, Rating.channel == channel,
        Rating.recipient == recipient, Rating.subject == subject))).first()
