"""The figures a commune reports upward, computed in one grouped query.

Definitions (applications received in the period):
- settled on time: result produced (có kết quả / đã trả) no later than the due date (the last
  update stands in for a missing result date);
- settled late: result produced after the due date;
- settled without a due date: result produced, no due date known (counted apart, never guessed);
- in progress: no result yet, not refused or withdrawn; overdue when its due date has passed;
- closed without result: refused (từ chối) or withdrawn (rút hồ sơ);
- average processing days: calendar days from receipt to result, over settled applications.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from sqlalchemy import Float, and_, case, cast, func, literal, select, union_all
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.domain import ApplicationStatus, SubmissionChannel
from storage.models import Application

SETTLED = [ApplicationStatus.RESULT_READY.value, ApplicationStatus.RETURNED.value]
CLOSED = [ApplicationStatus.REJECTED.value, ApplicationStatus.WITHDRAWN.value]
# A period is cut to these (far wider than any application's dates, storage.domain.FIRST_DAY
# to LAST_DAY): a year such as 1 or 9999 overflows when the driver converts it to UTC.
EARLIEST = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)
STEPS_PER_STATEMENT = 400  # SQLite refuses more than 500 SELECTs in one UNION


@dataclass
class Figures:
    """Counts for one group of applications."""

    received: int = 0
    online: int = 0
    in_person: int = 0
    post: int = 0
    settled_on_time: int = 0
    settled_late: int = 0
    settled_without_due_date: int = 0
    in_progress: int = 0
    in_progress_overdue: int = 0
    closed_without_result: int = 0
    processing_seconds: float = 0.0  # summed over settled applications with a result date
    timed: int = 0  # settled applications with a result date

    @property
    def average_processing_days(self) -> float | None:
        """Mean calendar days from receipt to result, or None without settled applications."""
        return round(self.processing_seconds / self.timed / 86400, 1) if self.timed else None

    def add(self, other: Figures) -> None:
        """Add another group's counts to these."""
        for name in FIGURES:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def report(self) -> dict[str, Any]:
        """JSON-ready figures."""
        out = {k: v for k, v in asdict(self).items() if k not in ("processing_seconds", "timed")}
        out["average_processing_days"] = self.average_processing_days
        return out


FIGURES = tuple(f.name for f in fields(Figures))


@dataclass
class Stats:
    """Figures for a period, in total, per procedure and per field."""

    start: dt.datetime
    end: dt.datetime
    total: Figures = field(default_factory=Figures)
    by_procedure: dict[str, Figures] = field(default_factory=dict)
    by_field: dict[str, Figures] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)  # procedure code → name

    def report(self) -> dict[str, Any]:
        """JSON-ready statistics."""
        return {
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            **self.total.report(),
            "by_procedure": [{"code": code, "name": self.names.get(code, ""), **f.report()}
                             for code, f in sorted(self.by_procedure.items())],
            "by_field": [{"field": name, **f.report()}
                         for name, f in sorted(self.by_field.items())],
        }


def _seconds_between(session: AsyncSession, start: Any, end: Any) -> ColumnElement[float]:
    """``end - start`` in seconds, in the dialect's own terms."""
    if session.bind is not None and session.bind.dialect.name == "sqlite":
        return cast((func.julianday(end) - func.julianday(start)) * 86400.0, Float)
    return cast(func.extract("epoch", end - start), Float)


def _count(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.sum(case((condition, 1), else_=0))


def _period(start: dt.datetime, end: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """``[start, end)`` cut to what the drivers can convert."""
    return min(max(start, EARLIEST), LATEST), max(min(end, LATEST), EARLIEST)


def _figure_columns(session: AsyncSession, now: dt.datetime) -> dict[str, ColumnElement[Any]]:
    """Each figure of ``Figures`` as an aggregate over applications: its one definition."""
    status, due, done = col(Application.status), col(Application.due_at), col(
        Application.completed_at)
    settled = status.in_(SETTLED)
    open_ = and_(status.not_in(SETTLED), status.not_in(CLOSED))
    seconds = _seconds_between(session, col(Application.received_at), done)
    # An export may give a settled status without the result date: the last update stands in.
    result_at = func.coalesce(done, col(Application.updated_at))
    return {
        "received": func.count(),
        "settled_on_time": _count(and_(settled, due.is_not(None), result_at <= due)),
        "settled_late": _count(and_(settled, due.is_not(None), result_at > due)),
        "settled_without_due_date": _count(and_(settled, due.is_(None))),
        "in_progress": _count(open_),
        "in_progress_overdue": _count(and_(open_, due < now)),
        "closed_without_result": _count(status.in_(CLOSED)),
        "processing_seconds": func.coalesce(func.sum(case((and_(settled, done.is_not(None)),
                                                           seconds), else_=0.0)), 0.0),
        "timed": _count(and_(settled, done.is_not(None))),
    }


def _figures(names: Iterable[str], channel: str, values: Sequence[Any]) -> Figures:
    """One result row of ``_figure_columns``, for applications submitted through ``channel``."""
    figures = Figures(**{k: v or 0 for k, v in zip(names, values, strict=True)})
    channel_count = {SubmissionChannel(channel).value: figures.received}
    figures.online = channel_count.get("online", 0)
    figures.in_person = channel_count.get("in_person", 0)
    figures.post = channel_count.get("post", 0)
    return figures


async def compute_stats(session: AsyncSession, *, commune_id: int, start: dt.datetime,
                        end: dt.datetime, now: dt.datetime) -> Stats:
    """Statistics of applications received in ``[start, end)``."""
    start, end = _period(start, end)
    columns = _figure_columns(session, now)
    query = (
        select(col(Application.procedure_code), col(Application.field),
               col(Application.channel), func.max(col(Application.procedure_name)),
               *(c.label(name) for name, c in columns.items()))
        .where(col(Application.commune_id) == commune_id,
               col(Application.received_at) >= start, col(Application.received_at) < end)
        .group_by(col(Application.procedure_code), col(Application.field),
                  col(Application.channel))
    )
    stats = Stats(start, end)
    by_procedure: dict[str, Figures] = defaultdict(Figures)
    by_field: dict[str, Figures] = defaultdict(Figures)
    connection = await session.connection()
    for row in (await connection.execute(query)).all():
        code, field_name, channel, name, *values = row
        figures = _figures(columns, channel, values)
        key = code or ""
        stats.names.setdefault(key, name or "")
        for group in (stats.total, by_procedure[key], by_field[field_name or ""]):
            group.add(figures)
    stats.by_procedure, stats.by_field = dict(by_procedure), dict(by_field)
    return stats


async def figures_by_step(session: AsyncSession, *, commune_id: int,
                          bounds: Sequence[dt.datetime], now: dt.datetime) -> list[Figures]:
    """The figures of applications received in each step ``[bounds[i], bounds[i + 1])``,
    without the processing time (the costliest figure, not needed per step).

    One aggregate per step over its index range, sent as one statement (in chunks): no
    GROUP BY, which SQLite would answer by sorting every row of the period.
    """
    bounds = [min(max(b, EARLIEST), LATEST) for b in bounds]
    columns = {k: c for k, c in _figure_columns(session, now).items()
               if k not in ("processing_seconds", "timed")}
    channel = col(Application.channel)
    columns.update({c.value: _count(channel == c.value) for c in SubmissionChannel})
    received = col(Application.received_at)
    steps = [select(literal(i).label("step"), *(c.label(name) for name, c in columns.items()))
             .where(col(Application.commune_id) == commune_id, received >= start,
                    received < end)
             for i, (start, end) in enumerate(itertools.pairwise(bounds))]
    out = [Figures() for _ in steps]
    connection = await session.connection()
    for k in range(0, len(steps), STEPS_PER_STATEMENT):
        for step, *values in (await connection.execute(
                union_all(*steps[k:k + STEPS_PER_STATEMENT]))).all():
            out[step] = Figures(**{name: v or 0 for name, v in zip(columns, values, strict=True)})
    return out
