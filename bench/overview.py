"""Benchmark of the staff console's Overview data, on SQLite and PostgreSQL.

    python bench/overview.py [--rows 1000000] [--databases sqlite,postgresql] [--runs 5]
                             [--keep DIR]

For each database: load ``--rows`` applications spread over a year, in bulk
(``bench/applications.py``'s generator), make some of them open, overdue, refused or
withdrawn, add a year of conversations, unanswered questions, feedback reports and ratings,
then time ``storage.overview.overview`` for a month (by day), a quarter (by week) and the year
(by month) — median of ``--runs`` — with the SVG charts, without and with the covering index
``ix_application_overview`` (migration 0011; dropped here for the baseline, then restored). Target:
under 1 s for the whole page's data. PostgreSQL is reached at MOTCUA_BENCH_POSTGRES (default
postgresql://postgres@127.0.0.1:5432) in database ``bench_overview``, created and dropped;
``--keep DIR`` keeps both databases (SQLite in DIR) and reuses them when run again.
"""

from __future__ import annotations

import argparse
import asyncio
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
from sqlalchemy import func, insert, select, text  # noqa: E402
from sqlalchemy.ext.asyncio import async_sessionmaker  # noqa: E402
from sqlmodel.ext.asyncio.session import AsyncSession  # noqa: E402

from bench.applications import BATCH, YEAR, records  # noqa: E402
from bot.charts import Series, chart  # noqa: E402
from knowledge.workdays import TZ  # noqa: E402
from storage import applications as repo  # noqa: E402
from storage import feedback  # noqa: E402
from storage.db import make_engine, make_sessions, session_scope, upgrade  # noqa: E402
from storage.models import Application, Conversation, Feedback, Rating, Unanswered  # noqa: E402
from storage.overview import Overview, Step, overview  # noqa: E402

POSTGRES = os.environ.get("MOTCUA_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
DATABASE = "bench_overview"  # PostgreSQL database of this benchmark, dropped before and after
NOW = dt.datetime(YEAR, 12, 31, 17, tzinfo=TZ)
CODES = ["1.001193", "2.000815", "1.004222", "1.001022", "2.000908", "1.003583"]
PERIODS: list[tuple[str, dt.date, dt.date, Step]] = [
    ("month (by day)", dt.date(YEAR, 3, 1), dt.date(YEAR, 3, 31), "day"),
    ("quarter (by week)", dt.date(YEAR, 4, 1), dt.date(YEAR, 6, 30), "week"),
    ("year (by month)", dt.date(YEAR, 1, 1), dt.date(YEAR, 12, 31), "month"),
]
# The overview's index (migration 0011, Application.__table_args__): every column
# figures_by_step reads, so that a period's rows are read from the index alone.
INDEX = ("ix_application_overview",
         "CREATE INDEX ix_application_overview ON application (commune_id, received_at, "
         "channel, status, due_at, completed_at, updated_at)")

async def load(sessions: async_sessionmaker[AsyncSession], commune: int, rows: int) -> None:
    """``rows`` returned applications, then a mix of outcomes. Inserted in bulk: the overview
    reads no history, and the storage path's own speed is ``bench/applications.py``'s."""
    rng = random.Random(1)
    started = time.perf_counter()
    for start in range(0, rows, BATCH):
        batch = [{"commune_id": commune, "updated_at": NOW,
                  **{name: getattr(r, name) for name in repo.RECORD_FIELDS}}
                 for r in records(start, min(BATCH, rows - start), rng)]
        async with session_scope(sessions) as session:
            await (await session.connection()).execute(insert(Application), batch)
        if (start + BATCH) % 200_000 == 0:
            print(f"    {start + BATCH:,} rows, "
                  f"{(start + BATCH) / (time.perf_counter() - started):,.0f} rows/s", flush=True)
    async with session_scope(sessions) as session:
        connection = await session.connection()
        # 5 % still open (processing or asking for documents), 2.5 % refused, 2.5 % withdrawn.
        await connection.execute(text(
            "UPDATE application SET status = CASE id % 40 WHEN 0 THEN 'processing' "
            "WHEN 1 THEN 'supplement_required' WHEN 2 THEN 'rejected' ELSE 'withdrawn' END, "
            "completed_at = NULL WHERE id % 40 IN (0, 1, 2, 3)"))


async def load_questions(sessions: async_sessionmaker[AsyncSession], commune: int) -> None:
    """A year of conversations (200,000, their last topic), unanswered questions (30,000 of
    800 phrasings), feedback reports (3,000) and ratings (40,000)."""
    rng = random.Random(4)
    year = dt.datetime(YEAR, 1, 1, tzinfo=TZ)

    def at() -> dt.datetime:
        return year + dt.timedelta(seconds=rng.uniform(0, 364 * 86400))

    conversations = [{"commune_id": commune, "channel": "telegram", "user_id": str(n),
                      "lang": "vi", "step": "", "pending_code": "",
                      "last_procedure": rng.choice(CODES) if n % 3 else "", "options": "",
                      "topic_at": at(), "misses": 0, "relayed": 0, "last_seen_at": NOW,
                      "sent_since_seen": 0} for n in range(200_000)]
    unanswered = [{"commune_id": commune, "channel": "zalo", "user_id": str(n),
                   "text": f"câu hỏi chưa trả lời số {int(rng.paretovariate(1.2)) % 800}",
                   "at": at()} for n in range(30_000)]
    kinds = ["extra_papers", "late", "unclear", "rude", "other"]
    reports = []
    for n in range(3_000):
        filed = at()
        reports.append({"commune_id": commune, "channel": "web", "recipient": str(n),
                        "lang": "vi", "kind": rng.choice(kinds), "receipt_code": "",
                        "procedure_code": rng.choice(CODES), "description": "…",
                        "status": rng.choice(["open", "answered", "closed"]), "assignee": "",
                        "answer": "", "answered_by": "", "created_at": filed,
                        "filed_at": filed, "due_at": filed + dt.timedelta(days=10)})
    ratings = []
    for n in range(40_000):
        rated = at()
        ratings.append({"commune_id": commune, "channel": "telegram", "recipient": str(n),
                        "subject": f"application:{n + 1}", "application_id": n + 1,
                        "procedure_code": rng.choice(CODES), "officer": f"staff:o{n % 7}",
                        "score": rng.choice([5, 5, 5, 4, 4, 3, 2, 1]), "comment": "",
                        "asked_at": rated, "rated_at": rated})
    async with session_scope(sessions) as session:
        connection = await session.connection()
        for table, rows in ((Conversation, conversations), (Unanswered, unanswered),
                            (Feedback, reports), (Rating, ratings)):
            for k in range(0, len(rows), BATCH):
                await connection.execute(insert(table), rows[k:k + BATCH])


async def analyze(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Fresh planner statistics (and, on PostgreSQL, a visibility map for index-only scans)."""
    async with sessions() as session:
        connection = await session.connection()
        if connection.dialect.name == "postgresql":
            raw = await connection.get_raw_connection()
            await raw.driver_connection.execute("VACUUM ANALYZE")  # type: ignore[union-attr]
        else:
            await connection.execute(text("ANALYZE"))
            await session.commit()


def charts(data: Overview) -> str:
    """The Overview page's chart, as the page renders it."""
    labels = [f"{p.start:%d/%m}" if data.step != "month" else f"{p.start:%m/%Y}"
              for p in data.series]
    return chart(labels, [Series("Tiếp nhận", [p.received for p in data.series]),
                          Series("Đã giải quyết", [p.settled for p in data.series])],
                 title="Hồ sơ theo thời gian", x_label="Thời gian", y_label="Số hồ sơ",
                 lang="vi")


async def measure(sessions: async_sessionmaker[AsyncSession], commune: int, runs: int,
                  label: str) -> Overview:
    """Time the overview of each period; returns the year's."""
    print(f"  {label}:")
    data = None
    for name, first, last, step in PERIODS:
        times, drawing = [], []
        for _ in range(runs):
            started = time.perf_counter()
            async with sessions() as session:
                data = await overview(session, commune, first, last, step=step, now=NOW)
            middle = time.perf_counter()
            charts(data)
            times.append(time.perf_counter() - started)
            drawing.append(time.perf_counter() - middle)
        assert data is not None
        print(f"    {name}: median {statistics.median(times) * 1e3:,.0f} ms "
              f"(max {max(times) * 1e3:,.0f}; SVG {statistics.median(drawing) * 1e3:.1f} ms) "
              f"over {data.figures.received:,} applications", flush=True)
    assert data is not None
    return data


async def bench(label: str, url: str, rows: int, runs: int) -> None:
    """Load (unless already there) and measure one database."""
    print(f"{label}: {rows:,} applications", flush=True)
    await upgrade(url)
    engine = make_engine(url)
    sessions = make_sessions(engine)
    async with session_scope(sessions) as session:
        commune = await repo.ensure_commune(session, slug="hat-mon", name="Xã Hát Môn")
        other = await repo.ensure_commune(session, slug="van-con", name="Xã Vân Côn")
        stored = (await (await session.connection()).execute(
            select(func.count()).select_from(Application))).scalar_one()
    if stored < rows:
        started = time.perf_counter()
        await load(sessions, commune, rows)
        await load_questions(sessions, commune)
        async with session_scope(sessions) as session:  # another commune's, never counted
            await repo.upsert_applications(session, commune_id=other,
                                           records=records(0, 1000, random.Random(5)),
                                           actor="bench", now=NOW)
        print(f"  loaded in {time.perf_counter() - started:,.0f} s", flush=True)
    async with session_scope(sessions) as session:
        await (await session.connection()).execute(text(f"DROP INDEX IF EXISTS {INDEX[0]}"))
    await analyze(sessions)
    await measure(sessions, commune, runs, "without the overview index")
    async with session_scope(sessions) as session:
        connection = await session.connection()
        await connection.execute(text(INDEX[1]))
    await analyze(sessions)
    data = await measure(sessions, commune, runs, f"with {INDEX[0]}")
    f = data.figures
    print(f"  year: received {f.received:,} (online {f.online:,}, in person {f.in_person:,}, "
          f"post {f.post:,}); settled early or on time {f.settled_on_time:,}, late "
          f"{f.settled_late:,}; in progress {f.in_progress:,}, of which overdue "
          f"{f.in_progress_overdue:,}; refused or withdrawn {f.closed_without_result:,}")
    print(f"  series by month, received: {', '.join(f'{p.received:,}' for p in data.series)}")
    print("  top procedures: " + ", ".join(f"{p.code} {p.conversations:,}"
                                          for p in data.top_procedures[:3])
          + "; most frequent unanswered: " + ", ".join(
              f"{q.text!r} {q.count:,}" for q in data.frequent_unanswered[:2]))
    if data.feedback and data.satisfaction:
        print(f"  feedback: {data.feedback.total:,} reports; ratings "
              f"{data.satisfaction.count:,}, average {data.satisfaction.average:.2f}")
    since, until = (dt.datetime.combine(day, dt.time(), TZ) for day in (
        dt.date(YEAR, 1, 1), dt.date(YEAR + 1, 1, 1)))
    for name, part in (("storage.feedback.counts", lambda s: feedback.counts(
            s, commune_id=commune, start=since, end=until, now=NOW)),
                       ("storage.feedback.distribution", lambda s: feedback.distribution(
            s, commune_id=commune, start=since, end=until))):
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            async with sessions() as session:
                await part(session)
            times.append(time.perf_counter() - started)
        print(f"  of the year's overview, {name} alone: median "
              f"{statistics.median(times) * 1e3:,.0f} ms", flush=True)
    await engine.dispose()


async def main() -> None:
    """Parse arguments and run the benchmark on each database."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="keep the databases (SQLite in this folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        for name in args.databases.split(","):
            if name == "sqlite":
                await bench("SQLite", f"sqlite:///{folder / 'bench_overview.sqlite3'}",
                            args.rows, args.runs)
            elif name == "postgresql":
                admin = await asyncpg.connect(f"{POSTGRES}/postgres")
                exists = await admin.fetchval(
                    "SELECT 1 FROM pg_database WHERE datname = $1", DATABASE)
                if not (args.keep and exists):
                    await admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
                    await admin.execute(f'CREATE DATABASE "{DATABASE}"')
                try:
                    await bench("PostgreSQL", f"{POSTGRES}/{DATABASE}", args.rows, args.runs)
                finally:
                    if not args.keep:
                        await admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
                    await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
