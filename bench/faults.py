"""Fault runs: is every acknowledged Telegram update answered exactly once, every web chat
message answered?

    python bench/faults.py [--updates 600] [--chats 200] [--kills 3] [--database URL] [--outages]

Starts ``python -m bot serve`` with Telegram pointed at a local fake Bot API (in this process),
then posts ``/start`` updates from distinct chats, ``--concurrency`` at a time, the way Telegram
does: an update that got no 200 (refused, connection lost, server down) is delivered again until
it gets one; web chat citizens ask meanwhile, sending a message again (same id) until it is
answered, as the page does. Meanwhile the server is killed with SIGKILL ``--kills`` times
mid-burst and started again; with ``--outages`` (PostgreSQL only) the database also refuses
new connections (``ALLOW_CONNECTIONS false`` with its backends terminated) and then turns
read-only for a few seconds each. At the end it waits for the outbox to send what the dead
processes could not, and counts what reached the fake server per chat: every acknowledged
update must have exactly one reply; a duplicate is possible only for a kill between
``sendMessage`` and marking it sent. Prints the counts; exits 1 if anything is unanswered.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import aiohttp
import asyncpg
from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.webhook import free_port, wait_for  # noqa: E402
from storage.applications import REPLY_LEASE  # noqa: E402
from tests.fakes.telegram import FakeTelegram, text_update  # noqa: E402

TOKEN = "123456:FAULTS"
SECRET = "faults-secret-0123456789"
RETRY_SECONDS = 10  # the outbox's lease on a message it is sending (60 s in production)
FIRST_CHAT = 700_000


class Server:
    """``python -m bot serve`` as a child process that can be killed and started again."""

    def __init__(self, env: dict[str, str], port: int) -> None:
        self.env, self.port = env, port
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "bot", "serve"], cwd=ROOT,
                                        env=self.env, stderr=subprocess.DEVNULL)
        await wait_for(f"http://127.0.0.1:{self.port}/healthz")

    def kill(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
            self.process = None


async def deliver(http: aiohttp.ClientSession, url: str, update: dict[str, object],
                  acknowledged: set[int], stop: asyncio.Event) -> None:
    """Post one update until it is acknowledged with a 200, as Telegram does."""
    update_id = int(str(update["update_id"]))
    while not stop.is_set():
        try:
            async with http.post(url, json=update, headers={
                    "X-Telegram-Bot-Api-Secret-Token": SECRET}) as response:
                if response.status == 200:
                    acknowledged.add(update_id)
                    return
        except (TimeoutError, aiohttp.ClientError):
            pass
        await asyncio.sleep(0.2)  # Telegram waits longer; the count is what matters


async def chat(http: aiohttp.ClientSession, url: str, n: int, answered: set[int],
               stop: asyncio.Event) -> None:
    """One web chat message, sent again with the same id until it gets its answer, as the
    page does; its session comes from a first message."""
    session = ""
    for body in ({"text": "xin chào", "id": f"hello-{n}"},
                 {"text": "làm giấy khai sinh cần gì", "id": f"ask-{n}"}):
        while not stop.is_set():
            try:
                async with http.post(url, json=body, headers={
                        "X-Chat-Session": session} if session else {}) as response:
                    if response.status == 200:
                        answer = await response.json()
                        session = answer.get("session", session)
                        if body["id"].startswith("ask") and answer["replies"]:
                            answered.add(n)
                        break
            except (TimeoutError, aiohttp.ClientError):
                pass
            await asyncio.sleep(0.2)


async def database_outages(admin_url: str, name: str) -> None:
    """Refuse new connections, then go read-only, a few seconds each."""
    connection = await asyncpg.connect(admin_url)
    terminate = ("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                 f"WHERE datname = '{name}' AND pid <> pg_backend_pid()")
    try:
        await connection.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await connection.execute(terminate)
        await asyncio.sleep(4)
        await connection.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await asyncio.sleep(2)
        await connection.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
        await connection.execute(terminate)
        await asyncio.sleep(4)
        await connection.execute(f'ALTER DATABASE "{name}" RESET default_transaction_read_only')
        await connection.execute(terminate)
    finally:
        await connection.close()


async def run(args: argparse.Namespace, database: str, admin: tuple[str, str] | None) -> int:
    fake = FakeTelegram(TOKEN)
    runner = web.AppRunner(fake.app(), access_log=None)
    await runner.setup()
    fake_port, port = free_port(), free_port()
    await web.TCPSite(runner, "127.0.0.1", fake_port).start()
    env = {**os.environ, "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_WEBHOOK_SECRET": SECRET,
           "TELEGRAM_API_BASE_URL": f"http://127.0.0.1:{fake_port}",
           "PUBLIC_BASE_URL": "https://faults.invalid", "MOTCUA_PORT": str(port),
           "MOTCUA_OUTBOX_RETRY_SECONDS": str(RETRY_SECONDS), "DATABASE_URL": database,
           # Sessions must outlive a restart; the run's clients share one address.
           "MOTCUA_SECRET_KEY": "faults-session-key", "MOTCUA_LIMIT_CHAT_ADDRESS": "100000/minute"}
    server = Server(env, port)
    await server.start()
    url = f"http://127.0.0.1:{port}/webhook/telegram"
    updates = [text_update(n, FIRST_CHAT + n, "/start") for n in range(1, args.updates + 1)]
    acknowledged: set[int] = set()
    stop = asyncio.Event()
    started = time.monotonic()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        queue = list(updates)
        gate = asyncio.Semaphore(args.concurrency)

        async def one(update: dict[str, object]) -> None:
            async with gate:
                await deliver(http, url, update, acknowledged, stop)

        async def one_chat(n: int) -> None:
            async with gate:
                await chat(http, f"http://127.0.0.1:{port}/api/chat", n, chatted, stop)

        chatted: set[int] = set()
        tasks = [asyncio.create_task(one(u)) for u in queue]
        tasks += [asyncio.create_task(one_chat(n)) for n in range(args.chats)]
        rng = random.Random(args.seed)
        marks = sorted(rng.sample(range(args.updates // 10, args.updates * 9 // 10),
                                  args.kills))
        outages = asyncio.create_task(database_outages(*admin)) if admin else None
        for mark in marks:
            while len(acknowledged) < mark:
                await asyncio.sleep(0.01)
            server.kill()
            await asyncio.sleep(0.5)
            await server.start()
        await asyncio.gather(*tasks, *([outages] if outages else []))
        # What the killed processes committed but could not send, the outbox sends.
        # A reply committed but not sent by a killed process waits out the webhook's lease.
        await asyncio.sleep(max(RETRY_SECONDS * 2, REPLY_LEASE.total_seconds()) + 3)
    server.kill()
    await runner.cleanup()
    replies = Counter(int(p["chat_id"]) for m, p in fake.calls if m == "sendMessage:ok")
    lost = [n for n in acknowledged if replies[FIRST_CHAT + n] == 0]
    doubled = [n for n in acknowledged if replies[FIRST_CHAT + n] > 1]
    print(f"updates: {args.updates}, acknowledged: {len(acknowledged)}, kills: {args.kills}, "
          f"database outages: {'yes' if admin else 'no'}, "
          f"wall time: {time.monotonic() - started:.1f} s")
    print(f"answered exactly once: {sum(replies[FIRST_CHAT + n] == 1 for n in acknowledged)}")
    print(f"unanswered: {len(lost)}  duplicated: {len(doubled)} "
          f"(a duplicate needs a kill between sendMessage and its mark)")
    print(f"web chat: {args.chats} citizens asked, {len(chatted)} got their answer")
    return 1 if lost or len(acknowledged) < args.updates or len(chatted) < args.chats else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--updates", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--chats", type=int, default=200,
                        help="web chat citizens asking meanwhile (two messages each)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database", default="",
                        help="a PostgreSQL server URL (a throwaway database is made on it)")
    parser.add_argument("--outages", action="store_true",
                        help="also make PostgreSQL refuse connections and go read-only")
    args = parser.parse_args()
    if args.outages and not args.database:
        parser.error("--outages needs --database postgresql://…")
    with tempfile.TemporaryDirectory() as tmp:
        if not args.database:
            sys.exit(asyncio.run(run(args, f"sqlite:///{tmp}/faults.sqlite3", None)))
        server_url = args.database.rstrip("/")
        name = f"motcua_faults_{uuid.uuid4().hex[:8]}"

        async def admin(sql: str) -> None:
            connection = await asyncpg.connect(f"{server_url}/postgres")
            try:
                await connection.execute(sql)
            finally:
                await connection.close()

        asyncio.run(admin(f'CREATE DATABASE "{name}"'))
        try:
            code = asyncio.run(run(args, f"{server_url}/{name}",
                                   (f"{server_url}/postgres", name) if args.outages else None))
        finally:
            asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        sys.exit(code)


if __name__ == "__main__":
    main()
