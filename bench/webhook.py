"""Webhook throughput and latency: Telegram updates end to end, one server process.

    python bench/webhook.py [--updates 2000] [--concurrency 16] [--rate R]... [--rounds 3]
                            [--database URL] [--profile FILE]

Starts ``python -m bot serve`` (SQLite in a temporary file by default) with Telegram pointed
at a local fake Bot API in another process, and posts updates to ``POST /webhook/telegram``
from this process. An update counts as done when the webhook has answered, which it does after
python-telegram-bot has delivered the reply to the fake server. The updates are the procedure
questions of ``tests/data/questions_*.jsonl`` (citizens' wording, all different) with a
``/start`` every tenth, from 500 chats.

Each round measures:
- throughput: as fast as possible with ``--concurrency`` updates in flight (closed loop);
- latency at each ``--rate`` (updates/s offered at a steady pace; open loop: a late server
  makes the queue, and the latency, grow, so the figure is honest about overload);
- the same closed loop against two baselines in this run: python-telegram-bot alone (parse the
  update, send one fixed reply through the same transport; no database, no answer), and
  aiohttp alone (parse the JSON, post one ``sendMessage``). The ratios are what to compare
  between machines.
Prints the medians over rounds.

``--profile FILE`` runs the server under cProfile, on only while motcua's closed loops run,
and writes the statistics to FILE (``python -m pstats FILE``) with the top functions printed.
The profiler slows the server: figures of a profiled run are not comparable. It sees the
event loop's thread only (aiosqlite's statements run in a thread of their own).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import pstats
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from knowledge.evaluate import read_questions  # noqa: E402
from tests.fakes.telegram import text_update  # noqa: E402

TOKEN = "123456:BENCH"
SECRET = "bench-secret-0123456789"
CHATS = 500
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
# The server under cProfile: SIGUSR1 starts profiling, SIGUSR2 stops it and writes the file.
PROFILED = """
import cProfile, signal, sys
sys.path.insert(0, {root!r})
from bot.cli import main
profile = cProfile.Profile()
def stop(*_):
    profile.disable()
    profile.dump_stats({path!r})
signal.signal(signal.SIGUSR1, lambda *_: profile.enable())
signal.signal(signal.SIGUSR2, stop)
sys.exit(main(["serve"]))
"""
# The end of both baseline servers: serve ``hook`` and a health check, with ``client`` around.
SERVE_BASELINE = """
app = web.Application()
app.cleanup_ctx.append(client)
app.router.add_post("/webhook/telegram", hook)
app.router.add_get("/healthz", lambda request: web.Response())
web.run_app(app, host="127.0.0.1", port={port}, print=None, access_log=None)
"""
BASELINE = """
from aiohttp import ClientSession, web
api = {api!r}
async def client(app):
    app["http"] = ClientSession()
    yield
    await app["http"].close()
async def hook(request):
    update = await request.json()
    body = {{"chat_id": update["message"]["chat"]["id"], "text": "ok"}}
    async with request.app["http"].post(api, json=body) as response:
        await response.read()
    return web.Response()
""" + SERVE_BASELINE
PTB_BASELINE = """
import sys
sys.path.insert(0, {root!r})
from aiohttp import web
from telegram import Bot, Update
from bot.telegram_request import AiohttpRequest
bot = Bot({token!r}, base_url={api!r} + "/bot", request=AiohttpRequest())
async def client(app):
    async with bot:
        yield
async def hook(request):
    update = Update.de_json(await request.json(), bot)
    await bot.send_message(update.effective_chat.id, "ok")
    return web.Response()
""" + SERVE_BASELINE


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_for(url: str) -> None:
    """Wait until ``url`` answers (server started)."""
    async with aiohttp.ClientSession() as http:
        for _ in range(600):
            try:
                async with http.get(url) as response:
                    if response.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not start")


class Updates:
    """Numbered updates: citizens' questions from the evaluation sets, /start every tenth."""

    def __init__(self) -> None:
        # Questions about a procedure only: two unanswerable ones in a row would hand the
        # chat to staff, and the bot would then stay silent in it (cheaper than answering).
        questions = [q.q for path in sorted((ROOT / "tests" / "data").glob("questions_*.jsonl"))
                     for q in read_questions(path) if q.codes]
        random.Random(4).shuffle(questions)
        self.questions = questions
        self.next_id = 1

    def take(self, n: int) -> list[dict[str, object]]:
        """The next ``n`` updates (ids never repeat: a repeated id would be a redelivery)."""
        out = []
        for update_id in range(self.next_id, self.next_id + n):
            text = ("/start" if update_id % 10 == 0
                    else self.questions[update_id % len(self.questions)])
            out.append(text_update(update_id, 10_000 + update_id % CHATS, text))
        self.next_id += n
        return out


async def closed_loop(url: str, updates: list[dict[str, object]], concurrency: int
                      ) -> tuple[float, list[float]]:
    """Post with ``concurrency`` in flight; (updates/s, latencies in s)."""
    queue = list(reversed(updates))
    latencies: list[float] = []
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}

    async def worker(http: aiohttp.ClientSession) -> None:
        while queue:
            update = queue.pop()
            started = time.perf_counter()
            async with http.post(url, json=update, headers=headers) as response:
                assert response.status == 200, response.status
            latencies.append(time.perf_counter() - started)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:
        started = time.perf_counter()
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
        return len(updates) / (time.perf_counter() - started), latencies


async def open_loop(url: str, updates: list[dict[str, object]], rate: float
                    ) -> tuple[float, list[float]]:
    """Offer updates at ``rate`` per second whatever the server does; (achieved updates/s,
    latencies measured from each update's scheduled time, so queueing counts)."""
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    latencies: list[float] = []

    async def post(http: aiohttp.ClientSession, update: dict[str, object], due: float) -> None:
        async with http.post(url, json=update, headers=headers) as response:
            assert response.status == 200, response.status
        latencies.append(time.perf_counter() - due)

    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=connector) as http:
        started = time.perf_counter()
        tasks = []
        for i, update in enumerate(updates):
            due = started + i / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            tasks.append(asyncio.create_task(post(http, update, due)))
        await asyncio.gather(*tasks)
        return len(updates) / (time.perf_counter() - started), latencies


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far, from /proc."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measured(pid: int, run: Awaitable[tuple[float, list[float]]]
                   ) -> tuple[float, list[float], float]:
    """``run``'s (updates/s, latencies) and the CPU ms per update process ``pid`` spent."""
    before = cpu_seconds(pid)
    rate, latencies = await run
    return rate, latencies, (cpu_seconds(pid) - before) * 1e3 / len(latencies)


def p99(values: list[float]) -> float:
    """The 99th percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


async def main() -> None:
    """Start the fake, the server and the baselines; run the rounds; print medians."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--updates", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rate", type=float, action="append",
                        help="offered updates/s of an open-loop run (repeatable; 100 and 500)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database", default="")
    parser.add_argument("--profile", type=Path,
                        help="write cProfile statistics of motcua's closed loops here")
    args = parser.parse_args()
    rates = args.rate or [100.0, 500.0]
    fake_port, port, ptb_port, aiohttp_port = (free_port() for _ in range(4))
    api = f"http://127.0.0.1:{fake_port}"
    updates = Updates()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_WEBHOOK_SECRET": SECRET,
               "TELEGRAM_API_BASE_URL": api, "PUBLIC_BASE_URL": "https://bench.invalid",
               "MOTCUA_PORT": str(port),
               "DATABASE_URL": args.database or f"sqlite:///{tmp}/bench.sqlite3"}
        fake = subprocess.Popen([sys.executable, "-c", FAKE.format(
            root=str(ROOT), token=TOKEN, port=fake_port)])
        command = [sys.executable, "-c", PROFILED.format(
            root=str(ROOT), path=str(args.profile.resolve()))] if args.profile \
            else [sys.executable, "-m", "bot", "serve"]
        servers = {  # name: (process, port)
            "motcua": (subprocess.Popen(command, cwd=ROOT, env=env,
                                        stderr=subprocess.DEVNULL), port),
            "python-telegram-bot alone": (subprocess.Popen([sys.executable, "-c",
                                                            PTB_BASELINE.format(
                root=str(ROOT), token=TOKEN, api=api, port=ptb_port)]), ptb_port),
            "aiohttp alone": (subprocess.Popen([sys.executable, "-c", BASELINE.format(
                api=f"{api}/bot{TOKEN}/sendMessage", port=aiohttp_port)]), aiohttp_port)}
        try:
            await wait_for(f"{api}/count")
            for _, server_port in servers.values():
                await wait_for(f"http://127.0.0.1:{server_port}/healthz")
                await closed_loop(f"http://127.0.0.1:{server_port}/webhook/telegram",
                                  updates.take(300), args.concurrency)  # warm-up
            closed: dict[str, list[tuple[float, float, float, float]]] = {n: [] for n in servers}
            opened: dict[float, list[tuple[float, float, float]]] = {r: [] for r in rates}
            for _ in range(args.rounds):
                for name, (process, server_port) in servers.items():
                    url = f"http://127.0.0.1:{server_port}/webhook/telegram"
                    profiled = bool(args.profile) and name == "motcua"
                    if profiled:
                        process.send_signal(signal.SIGUSR1)
                    rate, latencies, cpu = await measured(process.pid, closed_loop(
                        url, updates.take(args.updates), args.concurrency))
                    if profiled:
                        process.send_signal(signal.SIGUSR2)
                    closed[name].append((rate, statistics.median(latencies), p99(latencies),
                                         cpu))
                for offered in rates:
                    achieved, latencies = await open_loop(
                        f"http://127.0.0.1:{port}/webhook/telegram",
                        updates.take(args.updates), offered)
                    opened[offered].append((achieved, statistics.median(latencies),
                                            p99(latencies)))
            async with aiohttp.ClientSession() as http, http.get(f"{api}/count") as response:
                delivered = await response.json()
        finally:
            for process in [fake, *(p for p, _ in servers.values())]:
                process.terminate()
                process.wait()
    database = "PostgreSQL" if "postgres" in args.database else "SQLite"
    print(f"{database}; {args.updates} updates per measurement; medians of {args.rounds} rounds")
    print(f"closed loop, {args.concurrency} updates in flight:")
    figures = {name: [statistics.median(c) for c in zip(*rows, strict=True)]
               for name, rows in closed.items()}
    for name, (rate, median, tail, cpu) in figures.items():
        print(f"  {name:27} {rate:6.0f} updates/s  latency median {median * 1e3:6.1f} ms, "
              f"p99 {tail * 1e3:6.1f} ms  CPU {cpu:5.2f} ms/update")
    motcua = figures["motcua"]
    for baseline in ("python-telegram-bot alone", "aiohttp alone"):
        bare = figures[baseline]
        print(f"  motcua/{baseline}: throughput {motcua[0] / bare[0]:.2f}, "
              f"CPU per update {motcua[3] / bare[3]:.1f}x")
    print("open loop, motcua, updates offered at a steady pace:")
    for offered, rows in opened.items():
        achieved, median, tail = (statistics.median(c) for c in zip(*rows, strict=True))
        print(f"  offered {offered:4.0f}/s: answered {achieved:4.0f}/s  "
              f"latency median {median * 1e3:7.1f} ms, p99 {tail * 1e3:7.1f} ms")
    print(f"replies that reached the fake Bot API: {delivered}")
    if args.profile:
        report = io.StringIO()
        stats = pstats.Stats(str(args.profile), stream=report)
        stats.sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats(40)
        print(f"profile (motcua's closed loops, profiler on: figures above inflated) "
              f"in {args.profile}:\n{report.getvalue()}")


if __name__ == "__main__":
    asyncio.run(main())
