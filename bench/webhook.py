"""Webhook throughput: Telegram updates per second end to end, one server process.

    python bench/webhook.py [--updates 2000] [--concurrency 32] [--database URL]

Starts ``python -m bot serve``'s application (SQLite by default) with Telegram pointed at a
local fake Bot API in another process, posts text updates to ``POST /webhook/telegram`` from a
client process, and counts an update as done when its reply has reached the fake server (the
webhook answers after python-telegram-bot has sent it). Prints updates/s and latency median/p99.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakes.telegram import text_update  # noqa: E402

TOKEN = "123456:BENCH"
SECRET = "bench-secret"
QUESTIONS = ["gks", "đk kết hôn có mất phí ko", "sao y cccd", "làm sổ đỏ lần đầu",
             "xin giấy xác nhận độc thân", "/start", "thường trú cần gì", "tạm trú bao lâu"]
FAKE = """
import sys
sys.path.insert(0, {root!r})
from aiohttp import web
from tests.fakes.telegram import FakeTelegram
fake = FakeTelegram({token!r})
app = fake.app()
async def count(request):
    return web.json_response(len(fake.sent()))
app.router.add_get("/count", count)
web.run_app(app, host="127.0.0.1", port={port}, print=None, access_log=None)
"""


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_for(url: str) -> None:
    """Wait until ``url`` answers (server started)."""
    async with aiohttp.ClientSession() as http:
        for _ in range(300):
            try:
                async with http.get(url) as response:
                    if response.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not start")


async def load(port: int, updates: int, concurrency: int) -> tuple[float, list[float]]:
    """Post ``updates`` updates with ``concurrency`` in flight; (seconds, latencies)."""
    rng = random.Random(4)
    queue = list(range(1, updates + 1))
    latencies: list[float] = []
    url = f"http://127.0.0.1:{port}/webhook/telegram"
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}

    async def worker(http: aiohttp.ClientSession) -> None:
        while queue:
            n = queue.pop()
            update = text_update(n, 10_000 + n % 500, rng.choice(QUESTIONS))
            started = time.perf_counter()
            async with http.post(url, json=update, headers=headers) as response:
                assert response.status == 200, response.status
            latencies.append(time.perf_counter() - started)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:
        started = time.perf_counter()
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
        return time.perf_counter() - started, latencies


async def main() -> None:
    """Start the fake and the server, run the load, print figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--updates", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--database", default="")
    args = parser.parse_args()
    fake_port, port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp:
        fake = subprocess.Popen([sys.executable, "-c", FAKE.format(
            root=str(ROOT), token=TOKEN, port=fake_port)])
        env = {**os.environ, "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_WEBHOOK_SECRET": SECRET,
               "TELEGRAM_API_BASE_URL": f"http://127.0.0.1:{fake_port}",
               "PUBLIC_BASE_URL": "https://bench.invalid", "MOTCUA_PORT": str(port),
               "DATABASE_URL": args.database or f"sqlite:///{tmp}/bench.sqlite3"}
        server = subprocess.Popen([sys.executable, "-m", "bot", "serve"], cwd=ROOT, env=env,
                                  stderr=subprocess.DEVNULL)
        try:
            await wait_for(f"http://127.0.0.1:{fake_port}/count")
            await wait_for(f"http://127.0.0.1:{port}/healthz")
            await load(port, 200, args.concurrency)  # warm-up
            seconds, latencies = await load(port, args.updates, args.concurrency)
            async with aiohttp.ClientSession() as http, \
                    http.get(f"http://127.0.0.1:{fake_port}/count") as response:
                delivered = await response.json()
        finally:
            server.terminate()
            fake.terminate()
            server.wait()
            fake.wait()
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99)]
    print(f"{args.updates} updates, concurrency {args.concurrency}, "
          f"{'PostgreSQL' if 'postgres' in args.database else 'SQLite'}: "
          f"{args.updates / seconds:.0f} updates/s, latency median "
          f"{statistics.median(latencies) * 1e3:.1f} ms, p99 {p99 * 1e3:.1f} ms; "
          f"{delivered} replies reached the fake Bot API (incl. warm-up)")


if __name__ == "__main__":
    asyncio.run(main())
