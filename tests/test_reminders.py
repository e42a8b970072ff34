"""Status notifications, reminders, overdue notices and the staff digest (SQLite and
PostgreSQL): each reaches its follower in their language, once, on the right working day."""

import datetime as dt

import pytest
from sqlalchemy import event
from sqlmodel import col, select

from bot import jobs
from handlers import reminders
from handlers.applications import Office, set_status
from knowledge.i18n import Text
from knowledge.workdays import TZ
from storage import applications as repo
from storage.db import session_scope
from storage.domain import ApplicationStatus
from storage.models import Notification
from tests.samples import CODE, T0, record

S = ApplicationStatus


def local(month: int, day: int, hour: int, minute: int = 0, year: int = 2026) -> dt.datetime:
    """A moment in Hà Nội time."""
    return dt.datetime(year, month, day, hour, minute, tzinfo=TZ)


async def follow(office: Office, code: str = CODE, *, channel: str = "telegram",
                 recipient: str = "42", lang: str = "vi") -> None:
    async with session_scope(office.sessions) as s:
        app = (await repo.existing(s, commune_id=office.commune_id, codes=[code]))[code]
        assert app.id is not None
        await repo.subscribe(s, commune_id=office.commune_id, application_id=app.id,
                             channel=channel, recipient=recipient, lang=lang)


async def queued(office: Office, prefix: str = "") -> list[Notification]:
    async with office.sessions() as s:
        rows = (await s.exec(select(Notification).where(
            col(Notification.idempotency_key).startswith(prefix)).order_by(
                col(Notification.id)))).all()
    return list(rows)


async def test_a_supplement_request_reaches_each_follower_in_their_language(
        office: Office) -> None:
    await follow(office, recipient="42", lang="vi")
    await follow(office, channel="web", recipient="w-1", lang="en")
    due = local(1, 4, 17, year=2027)
    await set_status(office, receipt_code=CODE, status=S.SUPPLEMENT_REQUIRED, actor="staff:lan",
                     now=T0, note="Bản sao giấy chứng nhận kết hôn", supplement_due_at=due)
    vi, en = await queued(office, "status:")
    assert (vi.channel, vi.kind, en.channel, en.kind) == ("telegram", "status", "web", "status")
    assert "Cơ quan cần bạn bổ sung giấy tờ cho hồ sơ." in vi.text
    assert "Cơ quan yêu cầu: Bản sao giấy chứng nhận kết hôn" in vi.text
    assert "Hạn nộp bổ sung: trước hết ngày 4 tháng 1, 2027." in vi.text
    assert "The office needs more documents for your application." in en.text
    assert "Please bring them by January 4, 2027." in en.text


@pytest.mark.parametrize(("status", "vi", "en"), [
    (S.RESULT_READY, "Hồ sơ của bạn đã có kết quả.", "The result of your application is ready."),
    (S.REJECTED, "Hồ sơ của bạn đã bị từ chối.", "Your application has been refused."),
    (S.WITHDRAWN, "Hồ sơ của bạn đã được rút.", "Your application has been withdrawn."),
])
async def test_every_status_change_that_matters_is_told(
        office: Office, status: ApplicationStatus, vi: str, en: str) -> None:
    await follow(office, recipient="42", lang="vi")
    await follow(office, channel="zalo", recipient="z-1", lang="en")
    if status is S.RESULT_READY:
        await set_status(office, receipt_code=CODE, status=S.PROCESSING, actor="staff:lan",
                         now=T0)
    await set_status(office, receipt_code=CODE, status=status, actor="staff:lan",
                     now=T0 + dt.timedelta(hours=1))
    texts = [n.text for n in await queued(office, "status:")]
    assert vi in texts[-2] and en in texts[-1]


async def test_imports_leave_the_supplement_deadline_empty(office: Office) -> None:
    async with session_scope(office.sessions) as s:
        await repo.upsert_applications(s, commune_id=office.commune_id, actor="import:x",
                                       now=T0, records=[record(CODE, status=S.SUPPLEMENT_REQUIRED)])
    async with office.sessions() as s:
        app = (await repo.existing(s, commune_id=office.commune_id, codes=[CODE]))[CODE]
    assert app.supplement_due_at is None


async def test_a_supplement_reminder_fires_once_on_the_working_day_before(
        office: Office) -> None:
    await follow(office, lang="vi")
    # Due Monday 4 January 2027: 1 January (Friday) is New Year's Day, so Thursday 31 December
    # is the working day before.
    await set_status(office, receipt_code=CODE, status=S.SUPPLEMENT_REQUIRED, actor="staff:lan",
                     now=T0, note="Giấy xác nhận cư trú",
                     supplement_due_at=local(1, 4, 17, year=2027))
    job = jobs.reminders_job(office)
    assert await jobs.run_job(office, job, local(12, 30, 10))
    assert await queued(office, "reminder:") == []
    assert await jobs.run_job(office, job, local(12, 31, 9))
    [reminder] = await queued(office, "reminder:")
    assert reminder.kind == "reminder" and reminder.recipient == "42"
    assert "phải nộp trước hết ngày 4 tháng 1, 2027" in reminder.text
    # A restart in the same slot does not run it again; the next slots and the holiday add
    # nothing.
    assert not await jobs.run_job(office, job, local(12, 31, 9, 10))
    assert await jobs.run_job(office, job, local(12, 31, 9, 20))
    assert await jobs.run_job(office, jobs.reminders_job(office), local(1, 1, 9, year=2027))
    assert len(await queued(office, "reminder:")) == 1


async def test_a_result_not_collected_is_recalled_after_five_working_days(
        office: Office) -> None:
    await follow(office, lang="en")
    await set_status(office, receipt_code=CODE, status=S.PROCESSING, actor="staff:lan", now=T0)
    await set_status(office, receipt_code=CODE, status=S.RESULT_READY, actor="staff:lan",
                     now=local(12, 7, 10))  # a Monday
    job = jobs.reminders_job(office)
    assert await jobs.run_job(office, job, local(12, 11, 16))  # Friday: 4 working days
    assert await queued(office, "reminder:") == []
    assert await jobs.run_job(office, job, local(12, 14, 8))  # Monday: 5
    [reminder] = await queued(office, "reminder:")
    assert "has been ready since December 7, 2026" in reminder.text
    assert await jobs.run_job(office, job, local(12, 15, 8))
    assert len(await queued(office, "reminder:")) == 1


async def test_the_appointment_day_of_a_ready_result_is_recalled(office: Office) -> None:
    async with session_scope(office.sessions) as s:
        await repo.upsert_applications(s, commune_id=office.commune_id, actor="import:x", now=T0,
                                       records=[record(CODE, status=S.RESULT_READY,
                                                       due_at=local(12, 9, 16),
                                                       completed_at=local(12, 8, 10))])
    await follow(office, lang="vi")
    job = jobs.reminders_job(office)
    assert await jobs.run_job(office, job, local(12, 9, 7, 30))
    [reminder] = await queued(office, "reminder:appointment:")
    assert "Hôm nay là ngày hẹn trả hồ sơ" in reminder.text


async def test_an_overdue_application_is_apologised_for_once(office: Office) -> None:
    await follow(office, lang="vi")
    job = jobs.reminders_job(office)
    due = T0 + dt.timedelta(days=1)  # the sample, still being received
    assert await jobs.run_job(office, job, due - dt.timedelta(hours=1))
    assert await queued(office, "overdue:") == []
    assert await jobs.run_job(office, job, due + dt.timedelta(minutes=20))
    [notice] = await queued(office, "overdue:")
    assert "Chúng tôi xin lỗi vì sự chậm trễ" in notice.text
    assert "ngày hẹn trả mới" in notice.text
    assert await jobs.run_job(office, job, due + dt.timedelta(hours=5))
    assert len(await queued(office, "overdue:")) == 1


async def test_the_staff_digest_counts_due_and_overdue_per_field(office: Office) -> None:
    rows = [  # the sample (Hộ tịch, due 3 November, received) is overdue
        record("A", due_at=local(12, 7, 15)),
        record("B", due_at=local(12, 8, 10), status=S.PROCESSING),
        record("C", field="Đất đai", due_at=local(12, 3, 10), status=S.SUPPLEMENT_REQUIRED),
        record("D", field="Đất đai", due_at=local(12, 7, 10), status=S.RESULT_READY,
               completed_at=local(12, 6, 10)),
        record("E", due_at=local(12, 10, 10)),
    ]
    async with session_scope(office.sessions) as s:
        await repo.upsert_applications(s, commune_id=office.commune_id, actor="import:x",
                                       now=T0, records=rows)
    job = jobs.staff_digest_job(office)
    assert await jobs.run_job(office, job, local(12, 7, 6, 30))  # Monday, before 07:00
    assert await queued(office, "digest:") == []
    assert await jobs.run_job(office, job, local(12, 7, 7, 5))
    assert await jobs.run_job(office, job, local(12, 7, 8, 5))
    [digest] = await queued(office, "digest:")
    assert (digest.channel, digest.recipient, digest.kind) == ("staff", "digest", "staff")
    tomorrow = Text("vi").date(dt.date(2026, 12, 8))
    assert digest.text.splitlines() == [
        "Tổng hợp đầu ngày, 7 tháng 12, 2026:",
        f"hẹn trả hôm nay 1, hẹn trả {tomorrow} 1, quá hạn 2",
        f"• Hộ tịch: hẹn trả hôm nay 1, hẹn trả {tomorrow} 1, quá hạn 1",
        f"• Đất đai: hẹn trả hôm nay 0, hẹn trả {tomorrow} 0, quá hạn 1",
    ]


async def test_a_scan_costs_the_same_few_statements_however_many_are_followed(
        office: Office) -> None:
    """The scan reads every followed application in one query (then the outbox keys), never
    a query per application: 60 overdue applications cost the reads one would."""
    codes = [f"000.00.19.H26-251128-{n:04d}" for n in range(60)]
    async with session_scope(office.sessions) as s:
        await repo.upsert_applications(s, commune_id=office.commune_id, actor="import:x", now=T0,
                                       records=[record(code) for code in codes])
    for n, code in enumerate(codes):
        await follow(office, code, recipient=str(1000 + n))
    engine = office.sessions.kw["bind"].sync_engine
    statements: list[str] = []

    def count(*args: object) -> None:
        if str(args[2]).lstrip().upper().startswith("SELECT"):
            statements.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", count)
    try:
        later = T0 + dt.timedelta(days=2)
        assert (await reminders.scan(office, later))["overdue"] == 60
        first = len(statements)
        statements.clear()
        assert (await reminders.scan(office, later + dt.timedelta(minutes=15)))["overdue"] == 60
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert first <= 3  # the followed applications, then the keys already queued
    assert len(statements) <= 2
    assert len(await queued(office, "overdue:")) == 60
