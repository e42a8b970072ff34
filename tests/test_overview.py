"""The console Overview's figures, counted as a staff member counts them, and its charts."""

import datetime as dt
import xml.etree.ElementTree as ET

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.charts import Series, chart
from knowledge.workdays import TZ
from storage import applications as repo
from storage.db import session_scope
from storage.domain import ApplicationStatus as S
from storage.domain import SubmissionChannel as C
from storage.models import Conversation, Feedback, Unanswered
from storage.overview import overview
from tests.samples import record

MARCH_1, MARCH_31 = dt.date(2026, 3, 1), dt.date(2026, 3, 31)  # 1 March 2026 is a Sunday
NOW = dt.datetime(2026, 4, 1, 10, tzinfo=TZ)


def local(day: int, hour: int = 9, minute: int = 0, month: int = 3) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=TZ)


def march() -> list[repo.ApplicationRecord]:
    """23 applications received in March (local time) and 2 just outside it:
    14 settled early or on time (online), 4 settled late (in person), 3 in progress of which
    1 overdue, 1 refused and 1 withdrawn (by post)."""
    out = []

    def add(received: dt.datetime, due: dt.datetime, status: S, channel: C,
            completed: dt.datetime | None = None) -> None:
        out.append(record(f"HM-{len(out):03d}", received_at=received, due_at=due,
                          status=status, channel=channel, completed_at=completed))

    for day in range(2, 14):
        add(local(day), local(day) + dt.timedelta(days=3),
            S.RETURNED if day % 2 else S.RESULT_READY, C.ONLINE, local(day, 15))
    for received in (local(1, 0, 10), local(31, 23, 30)):  # the edges of the local month
        add(received, received + dt.timedelta(days=3), S.RETURNED, C.ONLINE,
            received + dt.timedelta(hours=1))
    for day in range(16, 20):
        add(local(day), local(day + 2), S.RETURNED, C.IN_PERSON, local(day + 5))
    add(local(30), local(6, month=4), S.PROCESSING, C.IN_PERSON)
    add(local(30, 10), local(6, month=4), S.RECEIVED, C.IN_PERSON)
    add(local(10), local(13), S.SUPPLEMENT_REQUIRED, C.POST)  # overdue since 13 March
    add(local(20), local(23), S.REJECTED, C.POST)
    add(local(20), local(23), S.WITHDRAWN, C.POST)
    for received in (local(28, 23, 50, month=2), local(1, 0, 5, month=4)):  # not in March
        add(received, received + dt.timedelta(days=3), S.RETURNED, C.ONLINE,
            received + dt.timedelta(hours=1))
    return out


async def load(sessions: async_sessionmaker[AsyncSession]) -> int:
    """March in Hát Môn, and Vân Côn's applications, questions and reports in March."""
    async with session_scope(sessions) as s:
        commune = await repo.ensure_commune(s, slug="hat-mon", name="Xã Hát Môn")
        other = await repo.ensure_commune(s, slug="van-con", name="Xã Vân Côn")
        await repo.upsert_applications(s, commune_id=commune, records=march(), actor="t",
                                       now=NOW)
        await repo.upsert_applications(
            s, commune_id=other, actor="t", now=NOW,
            records=[record(f"VC-{n}", received_at=local(10 + n), due_at=local(11 + n),
                            status=S.PROCESSING) for n in range(5)])
        topics = [(commune, "1.001193", local(5)), (commune, "1.001193", local(6)),
                  (commune, "1.001193", local(31, 20)), (commune, "2.000815", local(7)),
                  (commune, "2.000815", local(20, month=2)), (other, "1.004222", local(8)),
                  (other, "1.004222", local(9)), (other, "1.004222", local(10)),
                  (other, "1.004222", local(11))]
        for n, (where, code, at) in enumerate(topics):
            s.add(Conversation(commune_id=where, channel="telegram", user_id=str(n),
                               last_procedure=code, topic_at=at))
        questions = [(commune, "giấy phép xây dựng nhà tạm", local(3)),
                     (commune, "giấy phép xây dựng nhà tạm", local(4)),
                     (commune, "giấy phép xây dựng nhà tạm", local(5)),
                     (commune, "đổi bằng lái xe", local(25)),
                     (commune, "cấp sổ đỏ", local(2, month=4)),
                     (other, "tiền đền bù", local(26))]
        for n, (where, text, at) in enumerate(questions):
            s.add(Unanswered(commune_id=where, channel="zalo", user_id=str(n), text=text,
                             at=at))
        for where in (commune, other):
            s.add(Feedback(commune_id=where, channel="web", recipient="u", kind="late",
                           status="open", created_at=local(12), filed_at=local(12),
                           due_at=local(22)))
    return commune


async def test_each_figure_is_what_a_staff_member_counts(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    commune = await load(sessions)
    async with sessions() as s:
        data = await overview(s, commune, MARCH_1, MARCH_31, step="week", now=NOW)
    f = data.figures
    assert (f.received, f.online, f.in_person, f.post) == (23, 14, 6, 3)
    assert (f.settled_on_time, f.settled_late) == (14, 4)
    # The application asked for documents past its due date: in progress, and overdue.
    assert (f.in_progress, f.in_progress_overdue) == (3, 1)
    assert f.closed_without_result == 2
    assert [(p.code, p.conversations) for p in data.top_procedures] == [
        ("1.001193", 3), ("2.000815", 1)]
    assert [(q.text, q.count) for q in data.frequent_unanswered] == [
        ("giấy phép xây dựng nhà tạm", 3), ("đổi bằng lái xe", 1)]
    assert [q.text for q in data.recent_unanswered] == [
        "đổi bằng lái xe", *["giấy phép xây dựng nhà tạm"] * 3]
    assert data.recent_unanswered[0].last_at == local(25)
    assert data.frequent_unanswered[0].last_at == local(5)
    assert data.feedback is not None and data.feedback.by_kind == {"late": 1}
    assert data.satisfaction is not None and data.satisfaction.count == 0


async def test_series_add_up_to_the_totals_at_every_step(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    commune = await load(sessions)
    async with sessions() as s:
        by_day = await overview(s, commune, MARCH_1, MARCH_31, step="day", now=NOW)
        by_week = await overview(s, commune, MARCH_1, MARCH_31, step="week", now=NOW)
        by_month = await overview(s, commune, dt.date(2026, 1, 1), dt.date(2026, 12, 31),
                                  step="month", now=NOW)
        last_day = await overview(s, commune, MARCH_31, MARCH_31, step="month", now=NOW)
        two_years = await overview(s, commune, dt.date(2025, 7, 1), dt.date(2027, 6, 30),
                                   step="day", now=NOW)
    assert len(by_day.series) == 31
    assert (by_day.series[0].received, by_day.series[-1].received) == (1, 1)
    # Weeks start on Monday; the first is cut to the period: Sunday 1 March alone.
    assert [p.start.day for p in by_week.series] == [1, 2, 9, 16, 23, 30]
    assert [p.received for p in by_week.series] == [1, 7, 6, 6, 0, 3]
    for data in (by_day, by_week):
        assert sum(p.received for p in data.series) == data.figures.received == 23
        assert sum(p.settled for p in data.series) == 18
    assert [p.start for p in by_month.series] == [dt.date(2026, m, 1) for m in range(1, 13)]
    assert [p.received for p in by_month.series[1:4]] == [1, 23, 1]
    assert sum(p.received for p in by_month.series) == by_month.figures.received == 25
    assert [(p.start, p.received) for p in last_day.series] == [(MARCH_31, 1)]
    assert len(two_years.series) == 730
    assert sum(p.received for p in two_years.series) == two_years.figures.received == 25


async def test_another_communes_applications_are_never_counted(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await load(sessions)
    async with session_scope(sessions) as s:
        empty = await repo.ensure_commune(s, slug="lien-hiep", name="Xã Liên Hiệp")
    async with sessions() as s:
        data = await overview(s, empty, MARCH_1, MARCH_31, step="day", now=NOW)
    assert data.figures.received == 0 and data.figures.in_progress_overdue == 0
    assert all(p.received == 0 for p in data.series)
    assert data.top_procedures == data.frequent_unanswered == data.recent_unanswered == []
    assert data.feedback is not None and data.feedback.total == 0


def test_the_chart_names_its_steps_and_values_in_the_reader_s_language() -> None:
    labels = ["01/03", "02/03", "03/03"]
    series = [Series("Tiếp nhận", [1234, 5, 0]), Series("Đã giải quyết <đúng hạn>", [1000, 5, 0])]
    for lang, thousand in (("vi", "1.234"), ("en", "1,234")):
        for kind in ("bar", "line"):
            svg = chart(labels, series, title="Hồ sơ theo ngày", x_label="Ngày",
                        y_label="Số hồ sơ", lang=lang, kind=kind)  # type: ignore[arg-type]
            root = ET.fromstring(svg)  # well-formed XML
            ns = "{http://www.w3.org/2000/svg}"
            assert root.get("role") == "img"
            assert root.findtext(f"{ns}title") == "Hồ sơ theo ngày"
            texts = [t.text for t in root.iter(f"{ns}text")]
            assert {"01/03", "02/03", "03/03", "Ngày", "Số hồ sơ", "Tiếp nhận",
                    "Đã giải quyết <đúng hạn>"} <= set(texts)
            description = root.findtext(f"{ns}desc") or ""
            assert f"Tiếp nhận: 01/03 {thousand}" in description
            tips = [t.text for t in root.iter(f"{ns}title")]
            assert f"Tiếp nhận, 01/03: {thousand}" in tips


async def test_a_period_the_page_cannot_draw_is_refused(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    commune = await load(sessions)
    async with sessions() as s:
        for first, last, step in ((MARCH_31, MARCH_1, "day"),
                                  (dt.date(1999, 12, 31), MARCH_31, "month"),
                                  (dt.date(2000, 1, 1), dt.date(2100, 12, 31), "day")):
            with pytest.raises(ValueError):
                await overview(s, commune, first, last, step=step, now=NOW)  # type: ignore[arg-type]
        whole = await overview(s, commune, dt.date(2000, 1, 1), dt.date(2100, 12, 31),
                               step="month", now=NOW)
    assert whole.figures.received == 25 and len(whole.series) == 101 * 12
