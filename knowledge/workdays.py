"""The working-day calendar of the one-stop centre, and due dates of applications.

National public holidays and the government's day swaps come from the ``holidays`` library;
a commune adds its own announced days off and working days in
``knowledge/communes/<slug>.days.toml``. Pure: no database, no clock.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import holidays
from pydantic import Field

from knowledge.loader import KnowledgeError, profile_path, read_toml, validate
from knowledge.schema import Strict, TimeUnit

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
# Results are due by the end of the working day, local time.
CLOSING = dt.time(17, 0)

# Strict, so that a quoted string or a number in the file is refused instead of being read
# as some other date.
Day = Annotated[dt.date, Field(strict=True)]


class DaysFile(Strict):
    """A commune's own calendar announcements (``<slug>.days.toml``)."""

    days_off: list[Day] = Field(default_factory=list)
    working_days: list[Day] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Year:
    """One year's working days, precomputed so every question is a lookup or a bisection."""

    number: int
    first: int  # ordinal of 1 January
    working: bytes  # working[i] is 1 when the year's day i (0 = 1 January) is a working day
    before: tuple[int, ...]  # before[i]: working days among the year's first i days

    @property
    def total(self) -> int:
        """Working days in the whole year."""
        return self.before[-1]


class WorkCalendar:
    """Working days of a commune: weekdays minus public holidays, with announced swaps."""

    def __init__(self, days_off: Iterable[dt.date] = (), working_days: Iterable[dt.date] = ()):
        self._days_off = frozenset(days_off)
        self._working_days = frozenset(working_days)
        both = sorted(self._days_off & self._working_days)
        if both:
            raise ValueError(f"{both[0]} is both a day off and a working day")
        self._years: dict[int, _Year] = {}

    @classmethod
    def for_commune(cls, slug: str, directory: Path | None = None) -> WorkCalendar:
        """The calendar of a commune (its days file in ``directory``, an operator's folder,
        else among the bundled profiles); without one it is the national calendar."""
        path = profile_path(slug, directory, ".days.toml")
        if not path.exists():
            return cls()
        days = validate(DaysFile, read_toml(path), str(path))
        try:
            return cls(days_off=days.days_off, working_days=days.working_days)
        except ValueError as exc:
            raise KnowledgeError(f"{path}: working_days: {exc}") from None

    def _year(self, number: int) -> _Year:
        year = self._years.get(number)
        if year is None:
            year = self._years[number] = self._build(number)
        return year

    def _build(self, number: int) -> _Year:
        # The library's own is_working_day knows weekends, holidays, observed days and the
        # weekend days the government turned into working days (including across new year).
        national = holidays.country_holidays("VN", years=number)
        first = dt.date(number, 1, 1)
        size = 366 if calendar.isleap(number) else 365
        working = bytearray(size)
        for i in range(size):
            day = first + dt.timedelta(days=i)
            if day in self._working_days:
                working[i] = 1
            elif day not in self._days_off:
                working[i] = national.is_working_day(day)
        return _Year(number, first.toordinal(), bytes(working), (0, *accumulate(working)))

    def is_working_day(self, day: dt.date) -> bool:
        """Whether the centre receives and returns applications on ``day``."""
        year = self._year(day.year)
        return bool(year.working[day.toordinal() - year.first])

    def next_working_day(self, day: dt.date) -> dt.date:
        """The first working day strictly after ``day``."""
        return self.add_working_days(day, 1)

    def add_working_days(self, start: dt.date, n: int) -> dt.date:
        """The ``n``-th working day after ``start`` (``start`` itself when ``n`` is 0)."""
        if n < 0:
            raise ValueError(f"n must not be negative, got {n}")
        if n == 0:
            return start
        year = self._year(start.year)
        # Count working days from 1 January of start's year, then find where the count
        # reaches the target, moving year by year for long periods.
        target = year.before[start.toordinal() - year.first + 1] + n
        while target > year.total:
            target -= year.total
            year = self._year(year.number + 1)
        return dt.date.fromordinal(year.first + bisect_left(year.before, target) - 1)

    def working_days_between(self, start: dt.date, end: dt.date) -> int:
        """Working days after ``start`` up to and including ``end``; negative if ``end`` is earlier.

        The inverse of ``add_working_days``: ``working_days_between(d, add_working_days(d, n))``
        is ``n``.
        """
        if end < start:
            return -self.working_days_between(end, start)
        whole_years = sum(self._year(y).total for y in range(start.year, end.year))
        return whole_years + self._so_far(end) - self._so_far(start)

    def _so_far(self, day: dt.date) -> int:
        """Working days from 1 January up to and including ``day``."""
        year = self._year(day.year)
        return year.before[day.toordinal() - year.first + 1]

    def due_at(
        self,
        received_at: dt.datetime,
        *,
        value: float,
        unit: TimeUnit,
        cutoff_hour: int | None = None,
    ) -> dt.datetime:
        """When the result is due (aware, UTC) for an application received at ``received_at``.

        Counting starts on the receipt day, or on the next working day when the application
        arrives on a day off or at/after ``cutoff_hour`` local time. Working days (and a bare
        portal number, which the caller flags as an estimate) end N working days after the
        counting day — where a cutoff rule exists, the counting day is the first of the N;
        calendar days end N days after it, moved on to a working day; both at ``CLOSING``.
        Hours are elapsed time from receipt, with no calendar.
        """
        if received_at.utcoffset() is None:
            raise ValueError("received_at must be timezone-aware")
        if not value > 0:
            raise ValueError(f"value must be positive, got {value}")
        if unit is TimeUnit.HOURS:
            # In UTC, so that a sender's zone with summer time cannot shift the result.
            return received_at.astimezone(dt.UTC) + dt.timedelta(hours=value)
        local = received_at.astimezone(TZ)
        day = local.date()
        if not self.is_working_day(day) or (cutoff_hour is not None and local.hour >= cutoff_hour):
            day = self.next_working_day(day)
        if unit is TimeUnit.DAYS:
            day += dt.timedelta(days=math.ceil(value))
            if not self.is_working_day(day):
                day = self.next_working_day(day)
        else:
            # With a cutoff rule the counting day is itself the first working day: the portal
            # says an application received before 15:00 is settled the same day.
            first = 1 if cutoff_hour is not None else 0
            day = self.add_working_days(day, math.ceil(value) - first)
        return dt.datetime.combine(day, CLOSING, TZ).astimezone(dt.UTC)
