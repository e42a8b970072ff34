"""Load and soak on PostgreSQL: a realistic mix of Telegram and web chat traffic against 1 and
2 server processes.

    python bench/load.py [--database postgresql://postgres@127.0.0.1:5432/motcua_load]
                         [--processes 1 --processes 2] [--seconds 60] [--concurrency 32]
                         [--soak-minutes 30] [--soak-rate R]

The database named by ``--database`` is dropped and created again (it must be a scratch one).
It is seeded with 2,000 applications; a fake Bot API runs in another process. For each number
of processes, ``python -m bot serve --workers N`` (``serve`` for 1) starts on that database,
each worker pinned to its own core where the machine has enough (the load generator and the
fake Bot API share the cores: on a 2-core machine the figures are a floor).

Traffic is citizens' conversations, each step sent after the chat's previous one is answered:
three in four chats on Telegram (webhook), one in four on the web chat (``/api/chat``). A chat
asks a question from ``tests/data/questions_*.jsonl``, taps a button for one aspect; every
fifth chat then looks up an application (asks, gives the receipt code, the phone's last four
digits) and follows it; every tenth opens the menu first. Web chat rate limits are raised for
the run (one address sends everything).

Each number of processes: the peak (closed loop, ``--concurrency`` chats in flight), then
``--seconds`` at a steady 80 % of that peak (open loop: latency counted from each message's
scheduled time): messages/s, latency p50 and p99 (overall and per kind), errors (non-200
answers and failed requests), CPU ms per message over the server processes. ``--soak-minutes``
then keeps one process at ``--soak-rate`` (default: half its peak) and prints each worker's
resident memory every tenth of the soak, and the growth from the first sample to the last.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from webhook import FAKE, SECRET, TOKEN, cpu_seconds, free_port, p99, wait_for  # noqa: E402

from knowledge.evaluate import read_questions  # noqa: E402
from tests.fakes.telegram import button_update, text_update  # noqa: E402

APPLICATIONS = 2000
ASPECTS = ("fee", "time", "documents", "where", "online")


@dataclass
class Step:
    """One message of a chat: what kind it is, and its Telegram update or web chat body."""

    kind: str  # question, tap, menu, lookup, follow
    channel: str  # telegram, web
    body: dict[str, object]


@dataclass
class Chat:
    """A citizen's conversation: its steps, sent one after the other."""

    steps: list[Step]
    session: str = ""  # the web chat's session token, once given
    last: asyncio.Future[None] | None = field(default=None, repr=False)


class Conversations:
    """An endless supply of chats, each with a new id."""

    def __init__(self) -> None:
        self.questions = [(q.q, q.codes[0]) for path in sorted((ROOT / "tests" / "data")
                                                                .glob("questions_*.jsonl"))
                          for q in read_questions(path) if q.codes]
        self.random = random.Random(7)
        self.number = 0
        self.update_id = 0

    def _update(self, chat_id: int, text: str = "", data: str = "") -> dict[str, object]:
        self.update_id += 1
        return button_update(self.update_id, chat_id, data) if data else \
            text_update(self.update_id, chat_id, text)

    def chat(self) -> Chat:
        """The next chat's steps."""
        self.number += 1
        n, web = self.number, self.number % 4 == 0
        question, code = self.random.choice(self.questions)
        aspect = self.random.choice(ASPECTS)
        wants: list[tuple[str, str, str]] = []  # (kind, text, button payload)
        if n % 10 == 0:
            wants.append(("menu", "menu", ""))
        wants += [("question", question, ""), ("tap", "", f"a:{aspect}:{code}")]
        if n % 5 == 0:
            application = n % APPLICATIONS + 1
            wants += [("lookup", "tra cứu hồ sơ", ""),
                      ("lookup", receipt(application), ""),
                      ("lookup", phone(application)[-4:], ""), ("follow", "", "follow")]
        chat_id = 1_000_000 + n
        if web:
            return Chat([Step(kind, "web", {"text": text, "payload": payload, "id": f"m{i}"})
                         for i, (kind, text, payload) in enumerate(wants)])
        return Chat([Step(kind, "telegram", self._update(chat_id, text, payload))
                     for kind, text, payload in wants])

    def messages(self) -> Iterator[tuple[Chat, Step]]:
        """Messages interleaved over 400 open chats, each chat's in order (Telegram lets a bot
    send one message a second to a chat: messages spread out as citizens type them)."""
        open_chats = [self.chat() for _ in range(400)]
        while True:
            i = self.random.randrange(len(open_chats))
            chat = open_chats[i]
            yield chat, chat.steps.pop(0)
            if not chat.steps:
                open_chats[i] = self.chat()


def phone(number: int) -> str:
    """The sample phone number of application ``number``."""
    return f"09{number:08d}"


def receipt(number: int) -> str:
    """The receipt code of sample application ``number``."""
    return f"000.00.19.H26-261101-{number:04d}"


def recreate_database(url: str) -> None:
    """Drop and create the scratch database ``url`` names."""
    base, _, name = url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def seed(env: dict[str, str], folder: str) -> None:
    """Import the sample applications with the command a commune uses."""
    path = Path(folder) / "applications.csv"
    lines = ["receipt_code,procedure_code,procedure_name,applicant_name,phone,channel,"
             "received_at,due_at,status,completed_at"]
    lines += [f"{receipt(n)},1.001193,Thủ tục đăng ký khai sinh,Người {n},"
              f"{phone(n)},truc tiep,01/11/2026 08:00,30/12/2026 17:00,dang xu ly,"
              for n in range(1, APPLICATIONS + 1)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    subprocess.run([sys.executable, "-m", "bot", "applications", "import", str(path)],
                   cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)


class Results:
    """Latencies per kind and errors of one measurement."""

    def __init__(self) -> None:
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.errors = 0

    @property
    def all(self) -> list[float]:
        return [x for values in self.latencies.values() for x in values]


async def send(http: aiohttp.ClientSession, base: str, chat: Chat, step: Step,
               results: Results, since: float, previous: asyncio.Future[None] | None) -> None:
    """Send one step once the chat's ``previous`` one is answered; record the latency from
    ``since``."""
    if previous is not None:
        await previous
    try:
        if step.channel == "telegram":
            async with http.post(f"{base}/webhook/telegram", json=step.body,
                                 headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}) as response:
                ok = response.status == 200
                await response.read()
        else:
            headers = {"X-Chat-Session": chat.session} if chat.session else {}
            async with http.post(f"{base}/api/chat", json=step.body, headers=headers) as response:
                ok = response.status == 200
                answer = await response.json() if ok else {}
                chat.session = str(answer.get("session") or chat.session)
    except (TimeoutError, aiohttp.ClientError):
        ok = False
    if ok:
        results.latencies[step.kind].append(time.perf_counter() - since)
    else:
        results.errors += 1


async def closed_loop(base: str, conversations: Conversations, seconds: float,
                      concurrency: int) -> tuple[float, Results]:
    """As fast as ``concurrency`` messages in flight allow, for ``seconds`` (messages/s,
    results); a chat's messages, interleaved with 400 others', still go one at a time."""
    results = Results()
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        started = time.perf_counter()
        messages = conversations.messages()

        async def worker() -> None:
            while time.perf_counter() - started < seconds:
                chat, step = next(messages)
                task = asyncio.ensure_future(send(http, base, chat, step, results,
                                                  time.perf_counter(), chat.last))
                chat.last = task
                await task

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return (len(results.all) + results.errors) / elapsed, results


async def open_loop(base: str, conversations: Conversations, rate: float, seconds: float,
                    on_tick: tuple[float, Callable[[], None]] | None = None
                    ) -> tuple[float, Results]:
    """Messages offered at ``rate`` per second for ``seconds``, whatever the server does;
    ``on_tick``: (interval, callable) called every interval."""
    results = Results()
    connector = aiohttp.TCPConnector(limit=512)
    timeout = aiohttp.ClientTimeout(total=30)
    messages = conversations.messages()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        started, tasks, next_tick = time.perf_counter(), [], 0.0
        count = int(rate * seconds)
        for i in range(count):
            due = started + i / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            if on_tick and due - started >= next_tick:
                on_tick[1]()
                next_tick += on_tick[0]
            chat, step = next(messages)
            task = asyncio.ensure_future(send(http, base, chat, step, results, due, chat.last))
            chat.last = task
            tasks.append(task)
        await asyncio.gather(*tasks)
        return count / (time.perf_counter() - started), results


def workers(pid: int) -> list[int]:
    """The server's processes: ``pid`` and its children."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    return [pid, *map(int, children)]


def rss_mb(pid: int) -> float:
    """A process's resident memory in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def start_server(env: dict[str, str], processes: int) -> subprocess.Popen[bytes]:
    """``python -m bot serve`` with ``processes`` workers."""
    command = [sys.executable, "-m", "bot", "serve"]
    if processes > 1:
        command += ["--workers", str(processes)]
    return subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.DEVNULL)


def pin(server: subprocess.Popen[bytes], processes: int) -> str:
    """Pin each worker to its own core when there are enough; say what was done."""
    cores = sorted(os.sched_getaffinity(0))
    serving = workers(server.pid)[1:] if processes > 1 else [server.pid]
    if len(cores) < len(serving):
        return f"not pinned ({len(cores)} cores for {len(serving)} workers)"
    for core, pid in zip(cores, serving, strict=False):
        os.sched_setaffinity(pid, {core})
    return f"workers pinned to cores {cores[:len(serving)]} (shared with the load generator)"


def report(name: str, rate: float, results: Results, cpu_ms: float | None = None) -> None:
    """One measurement's line and its latency per kind."""
    values = results.all
    cpu = f", CPU {cpu_ms:.2f} ms/message" if cpu_ms is not None else ""
    print(f"  {name}: {rate:6.1f} messages/s, latency p50 {statistics.median(values) * 1e3:6.1f}"
          f" ms, p99 {p99(values) * 1e3:7.1f} ms, errors {results.errors}{cpu}")
    for kind, kind_values in sorted(results.latencies.items()):
        print(f"      {kind:9} n={len(kind_values):<6} p50 "
              f"{statistics.median(kind_values) * 1e3:6.1f} ms, p99 "
              f"{p99(kind_values) * 1e3:7.1f} ms")


async def measure(args: argparse.Namespace, env: dict[str, str], processes: int,
                  conversations: Conversations) -> float:
    """Peak and 80 % of peak for one number of processes; the peak."""
    base = f"http://127.0.0.1:{env['MOTCUA_PORT']}"
    server = start_server(env, processes)
    try:
        await wait_for(f"{base}/healthz")
        await asyncio.sleep(1.0 if processes > 1 else 0.0)
        pinned = pin(server, processes)
        await closed_loop(base, conversations, 5, args.concurrency)  # warm-up
        pids = workers(server.pid)
        before = sum(cpu_seconds(p) for p in pids)
        peak, results = await closed_loop(base, conversations, args.seconds, args.concurrency)
        cpu_ms = (sum(cpu_seconds(p) for p in pids) - before) * 1e3 / len(results.all)
        print(f"{processes} process{'es' if processes > 1 else ''}, {pinned}:")
        report(f"peak, {args.concurrency} chats in flight", peak, results, cpu_ms)
        rate, results = await open_loop(base, conversations, 0.8 * peak, args.seconds)
        report(f"80 % of peak offered ({0.8 * peak:.0f}/s)", rate, results)
        return peak
    finally:
        server.terminate()
        server.wait()


async def soak(args: argparse.Namespace, env: dict[str, str], rate: float,
               conversations: Conversations) -> None:
    """One process at ``rate`` for ``--soak-minutes``; its memory over time."""
    base = f"http://127.0.0.1:{env['MOTCUA_PORT']}"
    server = start_server(env, 1)
    samples: list[tuple[float, float]] = []
    try:
        await wait_for(f"{base}/healthz")
        await closed_loop(base, conversations, 5, args.concurrency)  # warm-up
        seconds = args.soak_minutes * 60
        started = time.perf_counter()

        def sample() -> None:
            samples.append((time.perf_counter() - started, rss_mb(server.pid)))

        achieved, results = await open_loop(base, conversations, rate, seconds,
                                            (seconds / 10, sample))
        sample()
    finally:
        server.terminate()
        server.wait()
    print(f"soak, 1 process, {args.soak_minutes:g} minutes at {rate:.0f} messages/s offered:")
    report("whole soak", achieved, results)
    print("  resident memory: " + ", ".join(f"{t / 60:.0f} min {mb:.0f} MB" for t, mb in samples))
    print(f"  growth from the first sample to the last: {samples[-1][1] - samples[0][1]:+.1f} MB")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database",
                        default="postgresql://postgres@127.0.0.1:5432/motcua_load")
    parser.add_argument("--processes", type=int, action="append")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--soak-minutes", type=float, default=0)
    parser.add_argument("--soak-rate", type=float, default=0)
    args = parser.parse_args()
    recreate_database(args.database)
    fake_port, port = free_port(), free_port()
    api = f"http://127.0.0.1:{fake_port}"
    conversations = Conversations()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "DATABASE_URL": args.database, "MOTCUA_PORT": str(port),
               "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_WEBHOOK_SECRET": SECRET,
               "TELEGRAM_API_BASE_URL": api, "PUBLIC_BASE_URL": "https://bench.invalid",
               "MOTCUA_LIMIT_CHAT_ADDRESS": "1000000/minute",
               "MOTCUA_LIMIT_CHAT_USER": "1000000/minute", "MOTCUA_QUIET_HOURS": "",
               "MOTCUA_SECRET_KEY": "load-bench-secret-key-0123456789abcdef"}
        fake = subprocess.Popen([sys.executable, "-c", FAKE.format(
            root=str(ROOT), token=TOKEN, port=fake_port)])
        try:
            await wait_for(f"{api}/count")
            seed(env, tmp)
            print(f"PostgreSQL; {APPLICATIONS} applications; {os.cpu_count()} CPUs; "
                  f"{args.seconds:g} s per measurement")
            peaks = {n: await measure(args, env, n, conversations)
                     for n in args.processes or [1, 2]}
            if len(peaks) > 1:
                one = peaks[min(peaks)]
                print("peak relative to 1 process: " + ", ".join(
                    f"{n}: {peak / one:.2f}x" for n, peak in peaks.items()))
            if args.soak_minutes:
                rate = args.soak_rate or 0.5 * peaks.get(1, min(peaks.values()))
                await soak(args, env, rate, conversations)
        finally:
            fake.terminate()
            fake.wait()


if __name__ == "__main__":
    asyncio.run(main())
