"""The data behind the staff console's Overview page: the report figures of a period, the same
figures over time for charts, what citizens ask and what the assistant could not answer, and
the citizens' feedback and satisfaction.

The figures are those of ``storage.stats`` (one definition each; the average processing time
is left out), over the applications received from ``start`` to ``end`` (local dates,
inclusive). What citizens ask: nothing
records every procedure asked about; each conversation keeps the procedure last under
discussion (``Conversation.last_procedure``, set at ``topic_at``), so "top procedures" counts
conversations whose last topic was set in the period — one vote per citizen and channel.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import func, select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from knowledge.workdays import TZ
from storage.domain import FIRST_DAY, LAST_DAY
from storage.feedback import FeedbackCounts, RatingReport, counts, distribution
from storage.models import Conversation, Unanswered
from storage.stats import Figures, figures_by_step

Step = Literal["day", "week", "month"]
STEPS: tuple[Step, ...] = ("day", "week", "month")
TOP = 10  # rows in each list
MAX_STEPS = 1500  # FIRST_DAY to LAST_DAY by month; four years by day


@dataclass(frozen=True)
class Point:
    """One step of the series: applications received in it and, of those, settled."""

    start: dt.date  # the step's first day within the period
    received: int
    settled: int  # early, on time, late or without a due date


@dataclass(frozen=True)
class ProcedureCount:
    """A procedure and how many conversations were last about it."""

    code: str
    conversations: int


@dataclass(frozen=True)
class QuestionCount:
    """A question the assistant could not answer: how often in the period, and when last."""

    text: str
    count: int
    last_at: dt.datetime


@dataclass(frozen=True)
class Overview:
    """Everything the Overview page shows for a period."""

    start: dt.date
    end: dt.date  # inclusive
    step: Step
    figures: Figures
    series: list[Point]
    top_procedures: list[ProcedureCount]
    frequent_unanswered: list[QuestionCount]
    recent_unanswered: list[QuestionCount]
    # Citizens' reports filed and ratings given in the period (storage.feedback).
    feedback: FeedbackCounts | None = None
    satisfaction: RatingReport | None = None


def step_start(day: dt.date, step: Step) -> dt.date:
    """The first day of the step holding ``day`` (weeks start on Monday)."""
    if step == "week":
        return day - dt.timedelta(days=day.weekday())
    if step == "month":
        return day.replace(day=1)
    return day


def _steps(start: dt.date, end: dt.date, step: Step) -> list[dt.date]:
    """The first day of every step from ``start`` to ``end``, the first one cut to ``start``."""
    out, day = [start], step_start(start, step)
    while True:
        if step == "month":
            day = (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        else:
            day += dt.timedelta(days=7 if step == "week" else 1)
        if day > end:
            return out
        out.append(day)


async def overview(session: AsyncSession, commune_id: int, start: dt.date, end: dt.date, *,
                   step: Step, now: dt.datetime | None = None) -> Overview:
    """The Overview page's data for applications received from ``start`` to ``end``.

    Raises ValueError for a period out of order or outside FIRST_DAY..LAST_DAY, an unknown
    step, or more than MAX_STEPS steps (a URL must not ask for 36,000 daily aggregates).
    """
    if not FIRST_DAY <= start <= end <= LAST_DAY:
        raise ValueError(f"period {start}–{end} out of order or outside {FIRST_DAY}–{LAST_DAY}")
    if step not in STEPS:
        raise ValueError(f"unknown step {step!r}")
    if len(firsts := _steps(start, end, step)) > MAX_STEPS:
        raise ValueError(f"more than {MAX_STEPS} steps: choose a longer step")
    now = now or dt.datetime.now(dt.UTC)
    since = dt.datetime.combine(start, dt.time(), TZ)
    until = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), TZ)
    bounds = [dt.datetime.combine(first, dt.time(), TZ) for first in firsts] + [until]
    steps = await figures_by_step(session, commune_id=commune_id, bounds=bounds, now=now)
    total = Figures()
    for figures in steps:
        total.add(figures)
    series = [Point(first, f.received, f.settled_on_time + f.settled_late
                    + f.settled_without_due_date) for first, f in zip(firsts, steps, strict=True)]
    return Overview(
        start, end, step, total, series,
        top_procedures=await _top_procedures(session, commune_id, since, until),
        frequent_unanswered=await _unanswered(session, commune_id, since, until, frequent=True),
        recent_unanswered=await _unanswered(session, commune_id, since, until, frequent=False),
        feedback=await counts(session, commune_id=commune_id, start=since, end=until, now=now),
        satisfaction=await distribution(session, commune_id=commune_id, start=since, end=until),
    )


async def _top_procedures(session: AsyncSession, commune_id: int, since: dt.datetime,
                          until: dt.datetime) -> list[ProcedureCount]:
    """The procedures most conversations were last about, in the period."""
    code, at = col(Conversation.last_procedure), col(Conversation.topic_at)
    count = func.count().label("n")
    query = (select(code, count)
             .where(col(Conversation.commune_id) == commune_id, code != "", at >= since,
                    at < until)
             .group_by(code).order_by(count.desc(), code).limit(TOP))
    connection = await session.connection()
    return [ProcedureCount(c, n) for c, n in (await connection.execute(query)).all()]


async def _unanswered(session: AsyncSession, commune_id: int, since: dt.datetime,
                      until: dt.datetime, *, frequent: bool) -> list[QuestionCount]:
    """Unanswered questions of the period: the most frequent (same text), or the latest."""
    text, at = col(Unanswered.text), col(Unanswered.at)
    period = (col(Unanswered.commune_id) == commune_id, at >= since, at < until,
              col(Unanswered.kind) == "declined")
    connection = await session.connection()
    if frequent:
        count, last = func.count().label("n"), func.max(at).label("last_at")
        query = (select(text, count, last).where(*period).group_by(text)
                 .order_by(count.desc(), last.desc()).limit(TOP))
        rows = (await connection.execute(query)).all()
        return [QuestionCount(t, n, _utc(last_at)) for t, n, last_at in rows]
    latest = select(text, at).where(*period).order_by(at.desc(), col(Unanswered.id).desc())
    return [QuestionCount(t, 1, _utc(when))
            for t, when in (await connection.execute(latest.limit(TOP))).all()]


def _utc(value: dt.datetime | str) -> dt.datetime:
    """An aggregate's datetime: SQLite gives ``max(at)`` back as stored text, naive UTC."""
    when = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)
