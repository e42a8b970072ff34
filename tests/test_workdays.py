"""Working days and due dates: the days a citizen would find the office closed are skipped."""

import datetime as dt
from pathlib import Path

import pytest

from knowledge.loader import KnowledgeError
from knowledge.schema import TimeUnit
from knowledge.workdays import TZ, WorkCalendar

UTC = dt.UTC


@pytest.fixture(scope="module")
def cal() -> WorkCalendar:
    return WorkCalendar.for_commune("hat-mon")


def local(year: int, month: int, day: int, hour: int) -> dt.datetime:
    return dt.datetime(year, month, day, hour, tzinfo=TZ)


def closing(year: int, month: int, day: int) -> dt.datetime:
    return local(year, month, day, 17)


def test_tet_2027_is_skipped(cal: WorkCalendar) -> None:
    # Tết Đinh Mùi: the library closes Thu 4/2 to Wed 10/2/2027.
    for day in range(4, 11):
        assert not cal.is_working_day(dt.date(2027, 2, day))
    assert cal.is_working_day(dt.date(2027, 2, 3))
    assert cal.next_working_day(dt.date(2027, 2, 3)) == dt.date(2027, 2, 11)
    due = cal.due_at(local(2027, 2, 3, 9), value=3, unit=TimeUnit.WORKING_DAYS)
    assert due == closing(2027, 2, 15)  # Thu 11, Fri 12, Mon 15


def test_reunification_and_labour_day_2026(cal: WorkCalendar) -> None:
    assert not cal.is_working_day(dt.date(2026, 4, 30))
    assert not cal.is_working_day(dt.date(2026, 5, 1))
    # Received Wednesday 29/4: Thursday, Friday and the weekend are closed.
    due = cal.due_at(local(2026, 4, 29, 10), value=1, unit=TimeUnit.WORKING_DAYS)
    assert due == closing(2026, 5, 4)


def test_hung_kings_on_sunday_is_observed_on_monday(cal: WorkCalendar) -> None:
    assert not cal.is_working_day(dt.date(2026, 4, 27))


def test_national_day_and_the_day_next_to_it(cal: WorkCalendar) -> None:
    # 2027: 2/9 is a Thursday, the adjacent day off is Friday 3/9.
    assert not cal.is_working_day(dt.date(2027, 9, 2))
    assert not cal.is_working_day(dt.date(2027, 9, 3))
    assert cal.next_working_day(dt.date(2027, 9, 1)) == dt.date(2027, 9, 6)


def test_substituted_working_saturday_2026(cal: WorkCalendar) -> None:
    # Saturday 22/8/2026 is worked in exchange for Monday 31/8, before 1–2/9.
    assert cal.is_working_day(dt.date(2026, 8, 22))
    assert not cal.is_working_day(dt.date(2026, 8, 23))
    for day in (dt.date(2026, 8, 31), dt.date(2026, 9, 1), dt.date(2026, 9, 2)):
        assert not cal.is_working_day(day)
    assert cal.next_working_day(dt.date(2026, 8, 21)) == dt.date(2026, 8, 22)
    assert cal.next_working_day(dt.date(2026, 8, 28)) == dt.date(2026, 9, 3)
    # Received on that Saturday morning, the day counts.
    due = cal.due_at(local(2026, 8, 22, 9), value=1, unit=TimeUnit.WORKING_DAYS)
    assert due == closing(2026, 8, 24)


def test_after_cutoff_on_friday_counts_from_monday(cal: WorkCalendar) -> None:
    # Birth registration: "received after 15:00, the result comes the next working day".
    friday = local(2026, 7, 17, 16)
    due = cal.due_at(friday, value=1, unit=TimeUnit.WORKING_DAYS, cutoff_hour=15)
    assert due == closing(2026, 7, 20)  # Monday, the next working day
    assert due.tzinfo is UTC
    assert due == dt.datetime(2026, 7, 20, 10, tzinfo=UTC)
    before_cutoff = friday.replace(hour=14, minute=59)
    due = cal.due_at(before_cutoff, value=1, unit=TimeUnit.WORKING_DAYS, cutoff_hour=15)
    assert due == closing(2026, 7, 17)  # the same day
    at_cutoff = friday.replace(hour=15)
    due = cal.due_at(at_cutoff, value=1, unit=TimeUnit.WORKING_DAYS, cutoff_hour=15)
    assert due == closing(2026, 7, 20)
    # Without a cutoff rule the receipt day is not counted.
    assert cal.due_at(before_cutoff, value=1, unit=TimeUnit.WORKING_DAYS) == closing(2026, 7, 20)


def test_received_on_saturday_counts_from_monday(cal: WorkCalendar) -> None:
    saturday = local(2026, 7, 18, 9)
    due = cal.due_at(saturday, value=2, unit=TimeUnit.WORKING_DAYS)
    assert due == closing(2026, 7, 22)  # counting day Monday 20: Tuesday, Wednesday
    # After the cutoff on a Saturday it is still only Monday, which then counts as day one.
    late = cal.due_at(saturday.replace(hour=20), value=2, unit=TimeUnit.WORKING_DAYS,
                      cutoff_hour=15)
    assert late == closing(2026, 7, 21)


def test_local_date_decides_not_utc(cal: WorkCalendar) -> None:
    # 23:30 UTC on Sunday is 06:30 Monday in Vietnam: Monday counts.
    received = dt.datetime(2026, 7, 19, 23, 30, tzinfo=UTC)
    due = cal.due_at(received, value=1, unit=TimeUnit.WORKING_DAYS)
    assert due == closing(2026, 7, 21)


def test_unspecified_unit_counts_as_working_days(cal: WorkCalendar) -> None:
    received = local(2026, 7, 17, 10)
    assert cal.due_at(received, value=2.5, unit=TimeUnit.UNSPECIFIED) == cal.due_at(
        received, value=3, unit=TimeUnit.WORKING_DAYS
    )


def test_calendar_days_landing_on_sunday_move_to_monday(cal: WorkCalendar) -> None:
    due = cal.due_at(local(2026, 7, 14, 10), value=5, unit=TimeUnit.DAYS)  # Tuesday + 5
    assert due == closing(2026, 7, 20)


def test_hours_are_elapsed_time(cal: WorkCalendar) -> None:
    received = local(2026, 7, 18, 16)  # a Saturday: hours do not care
    due = cal.due_at(received, value=8, unit=TimeUnit.HOURS, cutoff_hour=15)
    assert due == local(2026, 7, 19, 0)
    assert due.tzinfo is UTC


def test_naive_datetime_is_refused(cal: WorkCalendar) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        cal.due_at(dt.datetime(2026, 7, 17, 10), value=1, unit=TimeUnit.WORKING_DAYS)


def test_adding_and_counting_agree_across_new_year(cal: WorkCalendar) -> None:
    start = dt.date(2026, 12, 1)
    end = cal.add_working_days(start, 60)
    assert end.year == 2027
    assert cal.working_days_between(start, end) == 60
    assert cal.working_days_between(end, start) == -60
    assert cal.add_working_days(start, 0) == start
    # 2026: 261 weekdays, 13 of them off (1/1, five days of Tết, 27/4, 30/4, 1/5, 31/8, 1/9,
    # 2/9, 24/11), plus Saturday 22/8 worked.
    assert cal.working_days_between(dt.date(2025, 12, 31), dt.date(2026, 12, 31)) == 249


def test_commune_day_off_moves_the_due_date(tmp_path: Path) -> None:
    (tmp_path / "test.days.toml").write_text(
        "days_off = [2026-07-20]  # test announcement\nworking_days = [2026-07-25]\n",
        encoding="utf-8",
    )
    cal = WorkCalendar.for_commune("test", tmp_path)
    assert not cal.is_working_day(dt.date(2026, 7, 20))
    assert cal.is_working_day(dt.date(2026, 7, 25))
    due = cal.due_at(local(2026, 7, 17, 10), value=1, unit=TimeUnit.WORKING_DAYS)
    assert due == closing(2026, 7, 21)
    # A national holiday can be worked if the commune announces it; the file wins.
    assert not WorkCalendar().is_working_day(dt.date(2026, 5, 1))
    assert WorkCalendar(working_days=[dt.date(2026, 5, 1)]).is_working_day(dt.date(2026, 5, 1))


def test_missing_days_file_means_national_calendar(tmp_path: Path) -> None:
    cal = WorkCalendar.for_commune("nowhere", tmp_path)
    assert cal.is_working_day(dt.date(2026, 8, 22))
    assert not cal.is_working_day(dt.date(2026, 9, 2))


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('days_off = ["2026-07-20"]\n', "days_off[0]"),
        ("working_day = [2026-07-25]\n", "working_day"),
        ("days_off = [2026-07-20\n", "invalid TOML"),
        ("days_off = [2026-07-20]\nworking_days = [2026-07-20]\n", "working_days"),
    ],
)
def test_malformed_days_file_is_refused_naming_file_and_field(
    tmp_path: Path, text: str, field: str
) -> None:
    path = tmp_path / "test.days.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(KnowledgeError) as exc:
        WorkCalendar.for_commune("test", tmp_path)
    assert str(exc.value).startswith(f"{path}: ")
    assert field in str(exc.value)
