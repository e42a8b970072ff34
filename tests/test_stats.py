"""The figures a commune reports upward, on a dataset shaped like Hát Môn's first four months."""

import datetime as dt
import random

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from knowledge.workdays import TZ
from storage import applications as repo
from storage.db import session_scope
from storage.domain import ApplicationStatus, SubmissionChannel
from storage.stats import compute_stats

START = dt.datetime(2025, 7, 1, tzinfo=TZ)  # two-tier local government from 1 July 2025
END = dt.datetime(2025, 11, 1, tzinfo=TZ)
NOW = END
PROCEDURES = [("1.001193", "Thủ tục đăng ký khai sinh", "Hộ tịch"),
              ("2.000815", "Chứng thực bản sao từ bản chính", "Chứng thực"),
              ("1.004222", "Đăng ký thường trú", "Đăng ký, quản lý cư trú")]


def hat_mon_records() -> list[repo.ApplicationRecord]:
    """7,553 received: 5,306 online, 2,247 in person or by post; 7,459 settled early or on
    time, 94 in progress."""
    rng = random.Random(2025)
    channels = ([SubmissionChannel.ONLINE] * 5306 + [SubmissionChannel.IN_PERSON] * 2100
                + [SubmissionChannel.POST] * 147)
    rng.shuffle(channels)
    span = (END - START).total_seconds()
    out = []
    for n, channel in enumerate(channels):
        code, name, field = PROCEDURES[n % len(PROCEDURES)]
        received = START + dt.timedelta(seconds=rng.uniform(0, span - 86400 * 8))
        due = received + dt.timedelta(days=7)
        settled = n < 7459
        if not settled:  # the last 94: received in the final days, due after the report date
            received = END - dt.timedelta(days=2, hours=n % 24)
            due = received + dt.timedelta(days=7)
        out.append(repo.ApplicationRecord(
            receipt_code=f"000.00.19.H26-25{n:06d}", procedure_code=code, procedure_name=name,
            field=field, applicant_name="Công dân", phone=None, channel=channel,
            received_at=received, due_at=due, due_estimated=False,
            status=(ApplicationStatus.RETURNED if settled and n % 2 else
                    ApplicationStatus.RESULT_READY if settled else ApplicationStatus.PROCESSING),
            completed_at=received + dt.timedelta(days=rng.uniform(0.2, 6.9)) if settled else None,
        ))
    return out


async def test_report_reproduces_hat_mon(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with session_scope(sessions) as s:
        commune = await repo.ensure_commune(s, slug="hat-mon", name="Xã Hát Môn")
        await repo.upsert_applications(s, commune_id=commune, records=hat_mon_records(),
                                       actor="test", now=NOW)
        other = await repo.ensure_commune(s, slug="van-con", name="Xã Vân Côn")
        await repo.upsert_applications(s, commune_id=other, records=hat_mon_records()[:10],
                                       actor="test", now=NOW)
    async with sessions() as s:
        stats = await compute_stats(s, commune_id=commune, start=START, end=END, now=NOW)
    report = stats.report()
    assert report["received"] == 7553
    assert report["online"] == 5306
    assert report["in_person"] + report["post"] == 2247
    assert report["settled_on_time"] == 7459
    assert report["settled_late"] == 0
    assert report["in_progress"] == 94
    assert report["in_progress_overdue"] == 0
    assert 0.2 <= report["average_processing_days"] <= 6.9
    assert sum(p["received"] for p in report["by_procedure"]) == 7553
    assert {f["field"] for f in report["by_field"]} == {p[2] for p in PROCEDURES}
    births = next(p for p in report["by_procedure"] if p["code"] == "1.001193")
    assert births["name"] == "Thủ tục đăng ký khai sinh"


async def test_late_overdue_and_refused_are_told_apart(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    base = hat_mon_records()[0]
    received = dt.datetime(2025, 9, 1, 9, tzinfo=TZ)
    due = received + dt.timedelta(days=3)
    records = [
        base.__class__(**{**base.__dict__, "receipt_code": "LATE-1", "received_at": received,
                          "due_at": due, "status": ApplicationStatus.RETURNED,
                          "completed_at": due + dt.timedelta(days=1)}),
        base.__class__(**{**base.__dict__, "receipt_code": "OVERDUE-1", "received_at": received,
                          "due_at": due, "status": ApplicationStatus.PROCESSING,
                          "completed_at": None}),
        base.__class__(**{**base.__dict__, "receipt_code": "REFUSED-1", "received_at": received,
                          "due_at": due, "status": ApplicationStatus.REJECTED,
                          "completed_at": None}),
    ]
    async with session_scope(sessions) as s:
        commune = await repo.ensure_commune(s, slug="hat-mon", name="Xã Hát Môn")
        await repo.upsert_applications(s, commune_id=commune, records=records, actor="t", now=NOW)
    async with sessions() as s:
        report = (await compute_stats(s, commune_id=commune, start=START, end=END,
                                      now=NOW)).report()
    assert (report["settled_late"], report["in_progress_overdue"],
            report["closed_without_result"], report["settled_on_time"]) == (1, 1, 1, 0)
    assert report["average_processing_days"] == 4.0


async def test_a_period_from_year_1_to_9999_counts_everything(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with session_scope(sessions) as s:
        commune = await repo.ensure_commune(s, slug="hat-mon", name="Xã Hát Môn")
        await repo.upsert_applications(s, commune_id=commune, records=hat_mon_records()[:25],
                                       actor="t", now=NOW)
    async with sessions() as s:
        report = (await compute_stats(
            s, commune_id=commune, start=dt.datetime.combine(dt.date.min, dt.time(), TZ),
            end=dt.datetime.combine(dt.date.max, dt.time(23), dt.timezone(-dt.timedelta(hours=7))),
            now=NOW)).report()
    assert report["received"] == 25
