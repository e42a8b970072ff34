"""What observability costs: a ``/metrics`` scrape with a deep outbox, and the counting done
for each message.

    python bench/metrics.py [--pending 0,10000,100000] [--databases sqlite,postgresql]
                            [--runs 21]

For each database and outbox depth (unsent messages, spread over three channels, most not yet
due): the median time of ``GET /metrics`` (the counters, plus the outbox's depth read from the
database) beside ``GET /healthz`` (one trivial query) measured in the same run, through the
real application on a local port. Then, in one process, the median cost of counting one
answered message (``bot.metrics.observe_turn`` and one request-latency observation) beside
answering that message's question (``Assistant.ask``), the work it is counted beside. On
PostgreSQL each depth is measured again after ``VACUUM ANALYZE`` (autovacuum's work soon after
a big queue), when the counts read the partial indexes alone.
PostgreSQL is reached at MOTCUA_BENCH_POSTGRES (default postgresql://postgres@127.0.0.1:5432)
in database ``bench_metrics``, created and dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import asyncpg  # noqa: E402
from aiohttp import web  # noqa: E402
from sqlalchemy import insert, text  # noqa: E402

from bot import metrics  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.web import create_app  # noqa: E402
from handlers.applications import Office  # noqa: E402
from handlers.messages import Reply  # noqa: E402
from knowledge.answer import Assistant  # noqa: E402
from knowledge.loader import load_knowledge  # noqa: E402
from knowledge.workdays import WorkCalendar  # noqa: E402
from storage import applications as repo  # noqa: E402
from storage.db import make_engine, make_sessions, session_scope, upgrade  # noqa: E402
from storage.models import Notification  # noqa: E402

POSTGRES = os.environ.get("MOTCUA_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
DATABASE = "bench_metrics"
CHANNELS = ("telegram", "zalo", "staff")
QUESTIONS = ["làm giấy khai sinh cần gì", "dang ky ket hon mat phi ko",
             "đăng ký thường trú ở đâu", "cấp lại căn cước bao lâu"]


async def _admin(sql: str) -> None:
    connection = await asyncpg.connect(f"{POSTGRES}/postgres")
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


async def _fill(office: Office, upto: int, have: int) -> None:
    """Unsent messages up to ``upto``; one in ten due now."""
    now = dt.datetime.now(dt.UTC)
    for start in range(have, upto, 5000):
        rows = [{"commune_id": office.commune_id, "channel": CHANNELS[i % 3],
                 "recipient": str(i), "text": "Hồ sơ của bạn đã có kết quả.",
                 "idempotency_key": f"bench:{i}", "created_at": now, "attempts": 0,
                 "kind": "status",
                 "next_attempt_at": now + dt.timedelta(minutes=0 if i % 10 == 0 else 30)}
                for i in range(start, min(upto, start + 5000))]
        async with session_scope(office.sessions) as session:
            await (await session.connection()).execute(insert(Notification), rows)


async def _median_get(http: aiohttp.ClientSession, url: str, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        async with http.get(url) as response:
            await response.read()
            assert response.status == 200, (url, response.status)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def scrapes(url: str, assistant: Assistant, depths: list[int], runs: int) -> None:
    await upgrade(url)
    engine = make_engine(url)
    sessions = make_sessions(engine)
    async with session_scope(sessions) as session:
        commune = await repo.ensure_commune(session, slug="hat-mon", name="Xã Hát Môn")
    office = Office(sessions, commune, assistant.kb, WorkCalendar.for_commune("hat-mon"))
    app = create_app(assistant, office, settings=Settings(limit_address="100000/minute"))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    base = f"http://127.0.0.1:{port}"
    have = 0
    try:
        async with aiohttp.ClientSession() as http:
            for depth in depths:
                await _fill(office, depth, have)
                have = max(have, depth)
                await _median_get(http, f"{base}/metrics", 3)  # warm up
                scrape = await _median_get(http, f"{base}/metrics", runs)
                health = await _median_get(http, f"{base}/healthz", runs)
                print(f"  {depth:>7,} unsent: /metrics {scrape * 1000:6.2f} ms, "
                      f"/healthz {health * 1000:5.2f} ms (ratio {scrape / health:.1f})")
                if url.startswith("postgresql") and depth:
                    # What autovacuum does soon after a big queue: the visibility map lets
                    # the counts read the partial indexes alone.
                    async with engine.connect() as connection:
                        await connection.execution_options(isolation_level="AUTOCOMMIT")
                        await connection.execute(text("VACUUM ANALYZE notification"))
                    scrape = await _median_get(http, f"{base}/metrics", runs)
                    health = await _median_get(http, f"{base}/healthz", runs)
                    print(f"  {'':>7} after VACUUM: /metrics {scrape * 1000:6.2f} ms, "
                          f"/healthz {health * 1000:5.2f} ms (ratio {scrape / health:.1f})")
    finally:
        await runner.cleanup()
        await engine.dispose()


def counting(assistant: Assistant, runs: int) -> None:
    replies = [Reply("…", intent="procedure", score=0.93)]
    count_times, ask_times = [], []
    for i in range(runs * 50):
        question = QUESTIONS[i % len(QUESTIONS)]
        started = time.perf_counter()
        assistant.ask(question)
        ask_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        metrics.observe_turn("telegram", replies)
        metrics.LATENCY.labels("/webhook/telegram", "POST", "2xx").observe(0.01)
        count_times.append(time.perf_counter() - started)
    count, ask = statistics.median(count_times), statistics.median(ask_times)
    print(f"counting one answered message: {count * 1e6:.1f} µs; answering its question: "
          f"{ask * 1e6:.0f} µs ({count / ask:.1%} of it)")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pending", default="0,10000,100000")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    depths = sorted(int(d) for d in args.pending.split(","))
    assistant = Assistant(load_knowledge())
    for database in args.databases.split(","):
        print(f"{database}:")
        if database == "sqlite":
            with tempfile.TemporaryDirectory() as folder:
                await scrapes(f"sqlite:///{folder}/bench.sqlite3", assistant, depths, args.runs)
        else:
            await _admin(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
            await _admin(f'CREATE DATABASE "{DATABASE}"')
            try:
                await scrapes(f"{POSTGRES}/{DATABASE}", assistant, depths, args.runs)
            finally:
                await _admin(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
    counting(assistant, args.runs)


if __name__ == "__main__":
    asyncio.run(main())
