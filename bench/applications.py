"""Benchmark of the applications store, on SQLite and PostgreSQL.

    python bench/applications.py [--rows 1000000] [--databases sqlite,postgresql]
                                 [--only reminders] [--keep]

For each database: load ``--rows`` applications with 5 status changes each through the
storage layer (the path imports and the API use), import a 100,000-row CSV export through the
full import command path, time citizen status lookups (median, p99) and the statistics query
for one month and for the whole year, and the reminder scan (``--only reminders`` measures it
alone). PostgreSQL is reached at MOTCUA_BENCH_POSTGRES
(default postgresql://postgres@127.0.0.1:5432) in database ``bench_reminders``, created
and dropped (``--keep`` keeps it; ``--only reminders --keep`` then reuses it without loading).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime as dt
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
from sqlalchemy import func, insert, text  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncEngine  # noqa: E402
from sqlmodel import select  # noqa: E402

from handlers import reminders  # noqa: E402
from handlers.applications import Office, import_file  # noqa: E402
from handlers.status import lookup_status  # noqa: E402
from knowledge.loader import load_knowledge  # noqa: E402
from knowledge.workdays import TZ, WorkCalendar  # noqa: E402
from storage import applications as repo  # noqa: E402
from storage.db import make_engine, make_sessions, session_scope, upgrade  # noqa: E402
from storage.domain import ApplicationStatus, SubmissionChannel  # noqa: E402
from storage.models import Application, StatusChange  # noqa: E402
from storage.stats import compute_stats  # noqa: E402

POSTGRES = os.environ.get("MOTCUA_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
DATABASE = "bench_reminders"  # PostgreSQL database of this benchmark, dropped before and after
YEAR = 2026
BATCH = 10_000
STEPS = [ApplicationStatus.RECEIVED, ApplicationStatus.PROCESSING,
         ApplicationStatus.SUPPLEMENT_REQUIRED, ApplicationStatus.PROCESSING,
         ApplicationStatus.RESULT_READY, ApplicationStatus.RETURNED]


def code(n: int) -> str:
    """The n-th synthetic receipt code."""
    return f"000.00.19.H26-{n // 10000:06d}-{n % 10000:04d}"


def records(start: int, count: int, rng: random.Random) -> list[repo.ApplicationRecord]:
    """Synthetic applications spread over the year, all returned (5 changes after receipt)."""
    year = dt.datetime(YEAR, 1, 1, tzinfo=TZ)
    out = []
    for n in range(start, start + count):
        received = year + dt.timedelta(seconds=rng.uniform(0, 360 * 86400))
        out.append(repo.ApplicationRecord(
            receipt_code=code(n), procedure_code="1.001193",
            procedure_name="Thủ tục đăng ký khai sinh", field="Hộ tịch",
            applicant_name="Công dân", phone=f"09{n % 100_000_000:08d}",
            channel=rng.choice(list(SubmissionChannel)), received_at=received,
            due_at=received + dt.timedelta(days=3), due_estimated=False,
            status=ApplicationStatus.RETURNED,
            completed_at=received + dt.timedelta(days=rng.uniform(0.5, 4))))
    return out


async def load(office: Office, rows: int) -> float:
    """Insert ``rows`` applications with their history; returns rows per second."""
    rng = random.Random(1)
    started = time.perf_counter()
    for start in range(0, rows, BATCH):
        batch = records(start, min(BATCH, rows - start), rng)
        async with session_scope(office.sessions) as session:
            await repo.upsert_applications(session, commune_id=office.commune_id, records=batch,
                                           actor="bench", now=dt.datetime.now(dt.UTC))
            ids = await repo.existing(session, commune_id=office.commune_id,
                                      codes=[r.receipt_code for r in batch])
            # upsert wrote received → returned; add the steps in between.
            middle = [{"application_id": ids[r.receipt_code].id, "status": status,
                       "changed_at": r.received_at + dt.timedelta(hours=k),
                       "changed_by": "bench", "note": ""}
                      for r in batch for k, status in enumerate(STEPS[1:-1], 1)]
            connection = await session.connection()
            await connection.execute(insert(StatusChange), middle)
        done = start + BATCH
        if done % 100_000 == 0:
            print(f"    {done:,} rows, {done / (time.perf_counter() - started):,.0f} rows/s",
                  flush=True)
    return rows / (time.perf_counter() - started)


def write_export(path: Path, rows: int, offset: int) -> None:
    """A one-stop export (Vietnamese headers) of ``rows`` new applications."""
    rng = random.Random(2)
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["Mã hồ sơ", "Mã thủ tục", "Tên thủ tục", "Người nộp", "Số điện thoại",
                         "Hình thức nộp", "Ngày tiếp nhận", "Ngày hẹn trả", "Trạng thái",
                         "Ngày trả kết quả"])
        for n in range(offset, offset + rows):
            day = dt.date(YEAR, 1, 1) + dt.timedelta(days=rng.randrange(360))
            writer.writerow([code(n), "1.001193", "", "Công dân", f"09{n % 100_000_000:08d}",
                             rng.choice(["Trực tuyến", "Trực tiếp", "Bưu chính"]),
                             f"{day:%d/%m/%Y} 09:30", "", "Đang xử lý", ""])


async def lookups(office: Office, rows: int, count: int = 2000) -> list[float]:
    """Seconds per status lookup (code + phone digits), each its own transaction."""
    rng = random.Random(3)
    out = []
    for i in range(count):
        n = rng.randrange(rows)
        started = time.perf_counter()
        async with session_scope(office.sessions) as session:
            answer = await lookup_status(
                session, commune_id=office.commune_id, receipt_code=code(n),
                phone=f"09{n % 100_000_000:08d}", user_key=f"bench:{i}", lang="vi",
                now=dt.datetime.now(dt.UTC))
        out.append(time.perf_counter() - started)
        assert answer.application_id is not None, answer.text
    return out


async def stats_time(office: Office, first: dt.date, last: dt.date) -> tuple[float, int]:
    """Seconds for the statistics of ``first``–``last`` and how many were received."""
    start = dt.datetime.combine(first, dt.time(), TZ)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), TZ)
    started = time.perf_counter()
    async with office.sessions() as session:
        stats = await compute_stats(session, commune_id=office.commune_id, start=start, end=end,
                                    now=dt.datetime.now(dt.UTC))
    return time.perf_counter() - started, stats.total.received


SCAN_AT = dt.datetime(YEAR, 12, 10, 9, tzinfo=TZ)  # a Thursday morning


async def follow_some(office: Office, engine: AsyncEngine) -> None:
    """Make the applications of every 20th id open, asking for documents, or ready (10 % in
    all, with due and supplement dates around ``SCAN_AT``), let every 3rd application have
    a follower, and gather the statistics a deployment's autovacuum would have by now."""
    async with session_scope(office.sessions) as session:
        connection = await session.connection()
        await connection.execute(text(
            "UPDATE application SET status = CASE id % 20 WHEN 0 THEN 'processing' "
            "WHEN 1 THEN 'supplement_required' ELSE 'result_ready' END, "
            "supplement_due_at = CASE id % 20 WHEN 1 THEN due_at END "
            "WHERE id % 20 IN (0, 1) OR id % 10 = 2"))
        await connection.execute(text(
            "INSERT INTO subscription (commune_id, application_id, channel, recipient, lang, "
            "created_at) SELECT commune_id, id, 'telegram', CAST(id AS VARCHAR(20)), 'vi', "
            "received_at FROM application WHERE id % 3 = 0"))
    # Autovacuum vacuums and analyzes a table after bulk inserts and updates; the visibility
    # map it writes lets the scan read followers from the index alone (migration 0011).
    async with engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        if connection.dialect.name == "postgresql":
            await autocommit.execute(text("VACUUM ANALYZE application"))
            await autocommit.execute(text("VACUUM ANALYZE subscription"))
        else:
            await autocommit.execute(text("ANALYZE"))


async def reminder_scan(office: Office, ticks: int = 20, first_runs: int = 5) -> None:
    """Time the reminder scan: the first tick (it queues the backlog; run ``first_runs`` times,
    the queued reminders deleted in between) and the next ones (nothing new to queue). CPU is
    this process's time (the event loop's share), wall the whole tick with the database."""
    first, first_cpu, owed = [], [], []
    for run in range(first_runs):
        if run:
            async with session_scope(office.sessions) as session:
                connection = await session.connection()
                await connection.execute(text("DELETE FROM notification WHERE kind = 'reminder'"))
        started, cpu = time.perf_counter(), time.process_time()
        owed.append(await reminders.scan(office, SCAN_AT))
        first.append(time.perf_counter() - started)
        first_cpu.append(time.process_time() - cpu)
    later = []
    for tick in range(1, ticks):
        started = time.perf_counter()
        await reminders.scan(office, SCAN_AT + dt.timedelta(minutes=15 * tick))
        later.append(time.perf_counter() - started)
    later.sort()
    print(f"  reminder scan: first tick median {statistics.median(first) * 1e3:.0f} ms "
          f"(max {max(first) * 1e3:.0f}, n={first_runs}; "
          f"{statistics.median(first_cpu) * 1e3:.0f} ms CPU in this process), "
          f"{sum(owed[0].values()):,} messages queued: "
          f"{', '.join(f'{k} {n:,}' for k, n in sorted(owed[0].items()))}; "
          f"next ticks median {statistics.median(later) * 1e3:.0f} ms, "
          f"max {later[-1] * 1e3:.0f} ms (n={len(later)}, nothing new to queue); "
          f"ratio first/next {statistics.median(first) / statistics.median(later):.1f}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


async def bench(label: str, url: str, rows: int, workdir: Path, only: str = "") -> None:
    """Run every measurement on one database."""
    print(f"{label}: {rows:,} applications x {len(STEPS) - 1} status changes", flush=True)
    await upgrade(url)
    engine = make_engine(url)
    sessions = make_sessions(engine)
    async with session_scope(sessions) as session:
        commune = await repo.ensure_commune(session, slug="hat-mon", name="Xã Hát Môn")
    office = Office(sessions, commune, load_knowledge(), WorkCalendar.for_commune("hat-mon"))
    async with office.sessions() as session:
        loaded = (await session.exec(select(func.count()).select_from(Application))).one()
    if only == "reminders" and loaded == rows:  # kept from an earlier run (--keep)
        await reminder_scan(office)
        await engine.dispose()
        return
    rate = await load(office, rows)
    print(f"  load through storage: {rate:,.0f} applications/s (with 5 changes each)")
    if only == "reminders":
        await follow_some(office, engine)
        await reminder_scan(office)
        await engine.dispose()
        return
    export = workdir / f"export-{label}.csv"
    write_export(export, 100_000, offset=rows)
    started = time.perf_counter()
    report = await import_file(office, export, skip_bad=False, now=dt.datetime.now(dt.UTC))
    took = time.perf_counter() - started
    assert report.created == 100_000, report
    print(f"  CSV import of 100,000 rows (parse + due dates + upsert): {took:.1f} s "
          f"({100_000 / took:,.0f} rows/s)")
    times = sorted(await lookups(office, rows))
    p99 = times[int(len(times) * 0.99)]
    print(f"  status lookup: median {statistics.median(times) * 1e3:.2f} ms, "
          f"p99 {p99 * 1e3:.2f} ms (n={len(times)})")
    for name, first, last in (("one month", dt.date(YEAR, 3, 1), dt.date(YEAR, 3, 31)),
                              ("whole year", dt.date(YEAR, 1, 1), dt.date(YEAR, 12, 31))):
        runs = [await stats_time(office, first, last) for _ in range(3)]
        print(f"  stats, {name}: median {statistics.median(t for t, _ in runs):.2f} s "
              f"over {runs[0][1]:,} applications")
    await follow_some(office, engine)
    await reminder_scan(office)
    await engine.dispose()


async def main() -> None:
    """Parse arguments and run the benchmark on each database."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--only", choices=["reminders"], default="",
                        help="load the applications, then measure only this")
    parser.add_argument("--keep", action="store_true",
                        help="keep the PostgreSQL database; with --only, reuse a kept one")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for name in args.databases.split(","):
            if name == "sqlite":
                await bench("SQLite", f"sqlite:///{workdir / 'bench.sqlite3'}", args.rows,
                            workdir, args.only)
            elif name == "postgresql":
                admin = await asyncpg.connect(f"{POSTGRES}/postgres")
                kept = await admin.fetchval(
                    "SELECT 1 FROM pg_database WHERE datname = $1", DATABASE)
                if not (args.keep and kept):
                    await admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
                    await admin.execute(f'CREATE DATABASE "{DATABASE}"')
                try:
                    await bench("PostgreSQL", f"{POSTGRES}/{DATABASE}", args.rows, workdir,
                                args.only)
                finally:
                    if not args.keep:
                        await admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
                    await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
