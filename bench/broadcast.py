"""A broadcast through the outbox at Telegram's limits, and the same with SIGKILLs.

    python bench/broadcast.py [--recipients 100000] [--rate 30] [--chat-rate 1] [--kills 3]
                              [--database URL] [--kills-only] [--processes N [--redis URL]]

Inserts ``--recipients`` outbox rows of kind "broadcast" (one per chat) directly, starts a
fake Bot API in this process enforcing ``--rate`` messages/s overall and ``--chat-rate`` per
chat (429 with ``retry_after`` beyond), and runs the outbox dispatcher in a child process
(python-telegram-bot's client, paced at the same limits) until every row is closed.

1. Steady run: wall time, achieved rate as a share of the allowed rate (between the first and
   the last delivery), 429s received, the child's peak memory (max RSS).
2. Kill run: the same broadcast again, the child SIGKILLed at ``--kills`` random moments and
   started again each time; every recipient must get the message; duplicates are counted
   (at most the messages in flight at each kill, re-sent when their lease ran out).

With ``--processes N`` (PostgreSQL) N dispatchers share the outbox and the bot's limits:
through Redis with ``--redis URL``, else each keeps to rate/N; a kill takes one of them.

At the default rate 100,000 recipients take about 56 minutes per run; ``--recipients 3000``
gives the figures in a few minutes. Exits 1 if a recipient was missed.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import datetime as dt
import json
import os
import random
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import cast

from aiohttp import web
from sqlalchemy import func, insert
from sqlmodel import col, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.webhook import free_port  # noqa: E402
from bot.limits import SharedSlots  # noqa: E402
from bot.outbox import Dispatcher, Pace, QuietHours  # noqa: E402
from bot.telegram import chat_sender  # noqa: E402
from handlers.applications import Office  # noqa: E402
from storage import applications as repo  # noqa: E402
from storage.db import make_engine, make_sessions, session_scope, upgrade  # noqa: E402
from storage.models import Notification  # noqa: E402
from tests.fakes.telegram import FakeTelegram  # noqa: E402

TOKEN = "123456:BROADCAST"
FIRST_CHAT = 900_000
LEASE_SECONDS = 5.0  # a claimed row is due again this long after a kill (60 s in production)


async def insert_rows(url: str, recipients: int, run: str) -> None:
    """One broadcast row per chat, written in chunks the way a broadcast job would."""
    sessions = make_sessions(make_engine(url))
    now = dt.datetime.now(dt.UTC)
    async with session_scope(sessions) as session:
        commune = await repo.ensure_commune(session, slug="hat-mon", name="Xã Hát Môn")
    for start in range(0, recipients, 5000):
        async with session_scope(sessions) as session:
            await (await session.connection()).execute(insert(Notification), [
                {"commune_id": commune, "channel": "telegram", "recipient": str(FIRST_CHAT + n),
                 "text": "Thông báo: ngày 2/9 bộ phận một cửa nghỉ lễ.", "buttons": None,
                 "idempotency_key": f"broadcast:{run}:{n}", "created_at": now,
                 "sent_at": None, "attempts": 0, "kind": "broadcast", "next_attempt_at": now,
                 "expires_at": None, "outcome": None}
                for n in range(start, min(start + 5000, recipients))])


async def child(url: str, api: str, rate: float, chat_rate: float, processes: int = 1,
                redis: str = "", name: str = "") -> None:
    """The dispatcher alone, until nothing is pending; prints its peak memory."""
    from telegram import Bot

    from bot.telegram_request import AiohttpRequest

    sessions = make_sessions(make_engine(url))
    office = cast(Office, SimpleNamespace(sessions=sessions))
    shared = SharedSlots(redis) if redis else None
    async with Bot(TOKEN, base_url=f"{api}/bot", request=AiohttpRequest(pool_size=64)) as bot:
        outbox = Dispatcher(office, {"telegram": chat_sender(bot)},
                            paces={"telegram": Pace(rate, chat_rate, name=name, shared=shared,
                                                    processes=processes)},
                            retry_after=dt.timedelta(seconds=LEASE_SECONDS),
                            quiet=QuietHours.parse(""))
        while True:
            await outbox.run_once()
            if outbox.claimed == 0:
                async with sessions() as session:
                    left = (await session.exec(select(func.count()).select_from(
                        Notification).where(col(Notification.sent_at).is_(None)))).one()
                if not left:
                    break
                await asyncio.sleep(0.2)
    if shared is not None:
        await shared.close()
    print(json.dumps({"max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def start_child(args: argparse.Namespace, url: str, api: str, number: int = 1
                ) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, __file__, "--child", "--database", url, "--api", f"{api}/p{number}",
         "--rate", str(args.rate), "--chat-rate", str(args.chat_rate),
         "--processes", str(args.processes), "--redis", args.redis, "--name", args.name],
        cwd=ROOT, stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})


def start_children(args: argparse.Namespace, url: str, api: str
                   ) -> list[subprocess.Popen[bytes]]:
    return [start_child(args, url, api, n) for n in range(1, args.processes + 1)]


def busiest_second(times: list[float]) -> int:
    """The most deliveries within any one second."""
    ordered = sorted(times)
    return max((bisect.bisect_left(ordered, t + 1.0) - i for i, t in enumerate(ordered)),
               default=0)


async def wait(process: subprocess.Popen[bytes]) -> str:
    while process.poll() is None:
        await asyncio.sleep(0.2)
    assert process.stdout is not None
    return process.stdout.read().decode()


async def main(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database or f"sqlite:///{tmp}/broadcast.sqlite3"
        await upgrade(url)
        fake = FakeTelegram(TOKEN, limits=True, rate=args.rate, chat_rate=args.chat_rate)
        times: list[float] = []
        senders: Counter[str] = Counter()
        original = fake._method

        async def timed(request: web.Request) -> web.Response:
            response = await original(request)
            if response.status == 200 and request.match_info["method"] == "sendMessage":
                times.append(time.monotonic())
                senders[request.match_info["via"]] += 1
            return response

        fake._method = timed  # type: ignore[method-assign]
        app = fake.app()
        app.router.add_post(r"/{via}/bot{token}/{method}", timed)  # a path per child
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        api = f"http://127.0.0.1:{port}"
        failed = 0
        try:
            # 1. Steady run.
            if not args.kills_only:
                await insert_rows(url, args.recipients, "steady")
                started = time.monotonic()
                outputs = [await wait(p) for p in start_children(args, url, api)]
                figures = max((json.loads(o) for o in outputs), key=lambda f: f["max_rss_mb"])
                wall = time.monotonic() - started
                delivered = Counter(int(p["chat_id"]) for m, p in fake.calls
                                    if m == "sendMessage:ok")
                span = (times[-1] - times[0]) if len(times) > 1 else 0.0
                achieved = (len(times) - 1) / span if span else 0.0
                missed = args.recipients - len(delivered)
                failed += missed > 0
                print(f"steady: {args.recipients:,} recipients in {wall:.1f} s; "
                      f"{achieved:.2f} messages/s = {achieved / args.rate:.1%} of the allowed "
                      f"{args.rate:g}/s; 429s received {fake.refused}; peak memory "
                      f"{figures['max_rss_mb']:.0f} MB; missed {missed}; "
                      f"duplicates {sum(c - 1 for c in delivered.values())}; busiest second "
                      f"{busiest_second(times)}; sent per process "
                      f"{', '.join(str(senders[k]) for k in sorted(senders))}")
            # 2. Kill run.
            fake.calls.clear()
            fake.refused = 0
            times.clear()
            await insert_rows(url, args.recipients, "kills")
            expected = args.recipients / args.rate
            moments = sorted(random.uniform(0.1, 0.8) * expected for _ in range(args.kills))
            started = time.monotonic()
            processes = start_children(args, url, api)
            in_flight = 0
            for n, moment in enumerate(moments):
                await asyncio.sleep(max(0.0, moment - (time.monotonic() - started)))
                number = n % len(processes)
                processes[number].send_signal(signal.SIGKILL)
                processes[number].wait()
                # Up to one batch was claimed and not yet marked sent at the kill.
                in_flight += max(1, int(args.rate))
                processes[number] = start_child(args, url, api, number + 1)
            for process in processes:
                await wait(process)
            wall = time.monotonic() - started
            delivered = Counter(int(p["chat_id"]) for m, p in fake.calls if m == "sendMessage:ok")
            missed = args.recipients - len(delivered)
            duplicates = sum(c - 1 for c in delivered.values())
            failed += missed > 0
            print(f"kills: {args.kills} SIGKILLs at {', '.join(f'{m:.0f}' for m in moments)} s; "
                  f"{len(delivered):,} of {args.recipients:,} recipients reached in {wall:.1f} s; "
                  f"missed {missed}; duplicates {duplicates} (at most {in_flight}: a batch in "
                  f"flight per kill); 429s received {fake.refused}")
        finally:
            await runner.cleanup()
        return 1 if failed else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=30.0)
    parser.add_argument("--chat-rate", type=float, default=1.0)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--database", default="")
    parser.add_argument("--kills-only", action="store_true", help="skip the steady run")
    parser.add_argument("--processes", type=int, default=1,
                        help="dispatchers sharing the outbox (PostgreSQL)")
    parser.add_argument("--redis", default="", help="share the bot's limits through Redis")
    parser.add_argument("--name", default=f"bench:{os.getpid()}", help=argparse.SUPPRESS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--api", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        asyncio.run(child(options.database, options.api, options.rate, options.chat_rate,
                          options.processes, options.redis, options.name))
    else:
        sys.exit(asyncio.run(main(options)))
