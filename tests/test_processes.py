"""Several server processes on one PostgreSQL database: real ``python -m bot serve``
processes (subprocesses on free ports) sharing a fake Telegram Bot API and Redis.

Two processes started at once: a conversation whose messages go to each in turn keeps its
context; a broadcast queued by a scheduled job (run by one of them only) reaches every
recipient once, from both, within the bot's overall rate (the fake answers 429 beyond it).
Then ``serve --workers 2``: one port, a dead worker replaced, SIGTERM stops everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web

from bot.limits import SharedSlots
from bot.outbox import BURST, Pace
from handlers import broadcasts
from handlers.applications import Office
from knowledge.answer import Assistant
from knowledge.workdays import WorkCalendar
from storage import applications as repo
from storage import broadcasts as broadcasts_repo
from storage.db import head_revisions, make_engine, make_sessions, session_scope, upgrade
from tests.conftest import POSTGRES, admin
from tests.fakes.telegram import FakeTelegram, text_update

ROOT = Path(__file__).resolve().parents[1]
SECRET = "processes-secret-0123456789"
RATE = 10.0  # the bot's overall messages/s in these tests (Telegram's is 30)
RECIPIENTS = 150  # 15 s of broadcast at RATE
FIRST_CHAT = 5_100_000
REDIS = os.environ.get("MOTCUA_TEST_REDIS", "redis://127.0.0.1:6379/0")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fresh_database() -> str:
    name = f"motcua_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    return name


async def query(url: str, sql: str) -> list[Any]:
    connection = await asyncpg.connect(url)
    try:
        return list(await connection.fetch(sql))
    finally:
        await connection.close()


@dataclass
class Fake:
    """The fake Bot API in a thread of its own; ``sends`` are the accepted sendMessage
    calls as (time, process path, chat id, text)."""

    telegram: FakeTelegram
    port: int = field(default_factory=free_port)
    sends: list[tuple[float, str, int, str]] = field(default_factory=list)

    def start(self) -> None:
        original = self.telegram._method

        async def recorded(request: web.Request) -> web.Response:
            response = await original(request)
            if response.status == 200 and request.match_info["method"] == "sendMessage":
                params = self.telegram.calls[-1][1]
                self.sends.append((time.monotonic(), request.match_info.get("via", ""),
                                   int(params["chat_id"]), str(params.get("text", ""))))
            return response

        self.telegram._method = recorded  # type: ignore[method-assign]
        app = self.telegram.app()
        app.router.add_post(r"/{via}/bot{token}/{method}", recorded)  # one path per process
        loop = asyncio.new_event_loop()
        threading.Thread(target=loop.run_forever, daemon=True).start()

        async def up() -> None:
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", self.port).start()

        asyncio.run_coroutine_threadsafe(up(), loop).result(timeout=10)

    def replies(self, chat_id: int) -> list[tuple[str, str]]:
        """(process path, text) of what reached one chat, in order."""
        return [(via, text) for _, via, chat, text in self.sends if chat == chat_id]


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", "bot", *command], cwd=ROOT,
                                env={**os.environ, **env}, stdout=out,
                                stderr=subprocess.STDOUT)


def healthy(base: str, process: subprocess.Popen[bytes], log: Path, wait: float = 120) -> None:
    deadline = time.monotonic() + wait
    while True:
        if process.poll() is not None:
            pytest.fail(f"the server stopped ({process.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"no /healthz after {wait:.0f} s:\n{log.read_text()[-3000:]}")
        time.sleep(0.3)


def stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise


def post(url: str, body: dict[str, Any], headers: dict[str, str] | None = None
         ) -> tuple[int, dict[str, Any]]:
    """A JSON POST on a new connection each time."""
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json",
                                              **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read().decode()
            return response.status, json.loads(text) if text.startswith("{") else {}
    except urllib.error.HTTPError as exc:
        return exc.code, {}


def until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not after {timeout:.0f} s")
        time.sleep(0.2)


@dataclass
class Pair:
    url: str
    fake: Fake
    bases: list[str]
    token: str


async def _seed(url: str, assistant: Assistant, recipients: int = RECIPIENTS) -> None:
    """Subscribers on Telegram and a broadcast to them, due in a moment (the job sends it)."""
    engine = make_engine(url)
    sessions = make_sessions(engine)
    try:
        async with session_scope(sessions) as session:
            commune = await repo.ensure_commune(session, slug="hat-mon", name="Xã Hát Môn")
            for n in range(recipients):
                await broadcasts_repo.subscribe(
                    session, commune_id=commune, channel="telegram",
                    recipient=str(FIRST_CHAT + n), lang="vi", hamlet="",
                    at=dt.datetime.now(dt.UTC))
        office = Office(sessions, commune, assistant.kb, WorkCalendar.for_commune("hat-mon"))
        draft = await broadcasts.create(office, text="Thông báo: ngày 2/9 bộ phận một cửa "
                                        "nghỉ lễ.", created_by="test")
        assert draft.broadcast.id is not None
        await broadcasts.schedule(office, draft.broadcast.id,
                                  at=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2))
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def pair(assistant: Assistant, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    """Two ``serve`` processes started at once on one fresh database, Redis and one fake
    Telegram enforcing ``RATE`` messages/s (its path tells which process sent)."""
    name = fresh_database()
    url = f"{POSTGRES}/{name}"
    asyncio.run(upgrade(url))
    asyncio.run(_seed(url, assistant))
    token = f"{uuid.uuid4().int % 10**9}:PROCESSES"  # a bot id of its own: fresh slots
    fake = Fake(FakeTelegram(token, limits=True, rate=RATE, chat_rate=1.0))
    fake.start()
    logs = tmp_path_factory.mktemp("processes")
    ports = [free_port(), free_port()]
    processes = [start(["serve"], {
        "DATABASE_URL": url, "MOTCUA_PORT": str(port), "MOTCUA_REDIS_URL": REDIS,
        "MOTCUA_SECRET_KEY": "processes-session-key", "MOTCUA_QUIET_HOURS": "",
        "MOTCUA_TELEGRAM_RATE": str(RATE), "TELEGRAM_BOT_TOKEN": token,
        "TELEGRAM_WEBHOOK_SECRET": SECRET, "PUBLIC_BASE_URL": "https://processes.invalid",
        "TELEGRAM_API_BASE_URL": f"http://127.0.0.1:{fake.port}/p{n}"},
        logs / f"p{n}.log") for n, port in enumerate(ports, 1)]
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        for n, (base, process) in enumerate(zip(bases, processes, strict=True), 1):
            healthy(base, process, logs / f"p{n}.log")
        yield Pair(url, fake, bases, token)
    finally:
        for process in processes:
            if process.poll() is None:
                stop(process)
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_a_scheduled_broadcast_goes_once_to_everyone_within_the_bots_rate(pair: Pair) -> None:
    def pending() -> int:
        rows = asyncio.run(query(pair.url, "SELECT count(*) FILTER (WHERE sent_at IS NULL), "
                                           "count(*) FROM notification WHERE kind = 'broadcast'"))
        return int(rows[0][0]) if rows[0][1] == RECIPIENTS else -1

    until(lambda: pending() == 0, 120, "the broadcast sent")
    sends = [(at, via) for at, via, chat, _ in pair.fake.sends if chat >= FIRST_CHAT]
    per_chat = Counter(chat for _, _, chat, _ in pair.fake.sends if chat >= FIRST_CHAT)
    assert sorted(per_chat) == [FIRST_CHAT + n for n in range(RECIPIENTS)]
    assert set(per_chat.values()) == {1}  # each citizen once
    assert pair.fake.telegram.refused == 0  # never over the limit: no 429
    times = sorted(at for at, _ in sends)
    busiest = max(sum(1 for t in times[i:] if t < start + 1.0) for i, start in enumerate(times))
    assert busiest <= RATE * (1 + BURST) + 2  # a catch-up of BURST s, and jitter
    by_process = Counter(via for _, via in sends)
    assert by_process["p1"] > 0 and by_process["p2"] > 0, by_process  # both took part
    # The job that queued it ran once for its slot, though both processes started it.
    runs = asyncio.run(query(pair.url, "SELECT name, slot, count(*) FROM jobrun "
                                       "GROUP BY name, slot"))
    assert {row[0] for row in runs} >= {"broadcasts", "retention", "reminders"}
    assert all(row[2] == 1 for row in runs)
    [broadcast] = asyncio.run(query(pair.url, "SELECT status, recipients FROM broadcast"))
    assert tuple(broadcast) == ("queued", RECIPIENTS)


def test_a_conversation_keeps_its_context_across_processes(pair: Pair) -> None:
    pair.fake.telegram.limits = False  # replies to one chat come faster than 1/s here
    chat = 4_242_001
    said = ["làm giấy khai sinh cho bé cần gì", "còn phí?", "bao lâu thì xong"]
    for n, text in enumerate(said):
        status, _ = post(f"{pair.bases[n % 2]}/webhook/telegram",
                         text_update(900 + n, chat, text),
                         {"X-Telegram-Bot-Api-Secret-Token": SECRET})
        assert status == 200
        until(lambda n=n: len(pair.fake.replies(chat)) > n, 30, f"a reply to {text!r}")
    replies = pair.fake.replies(chat)
    assert [via for via, _ in replies] == ["p1", "p2", "p1"]  # each process answered in turn
    assert "Làm giấy khai sinh" in replies[0][1]
    assert replies[1][1].startswith("Lệ phí — Làm giấy khai sinh (mã 1.001193)")
    assert replies[2][1].startswith("Thời gian giải quyết — Làm giấy khai sinh")
    # The web chat: a session opened on one process is the same citizen on the other.
    status, first = post(f"{pair.bases[0]}/api/chat", {"text": "làm giấy khai sinh cần gì"})
    assert status == 200 and first["session"]
    status, fee = post(f"{pair.bases[1]}/api/chat", {"text": "còn phí?"},
                       {"X-Chat-Session": first["session"]})
    assert status == 200 and "session" not in fee  # not a new session
    assert fee["replies"][0]["text"].startswith("Lệ phí — Làm giấy khai sinh")


def test_processes_migrating_a_fresh_database_at_once_take_turns() -> None:
    name = fresh_database()
    url = f"{POSTGRES}/{name}"
    try:
        processes = [subprocess.Popen([sys.executable, "-m", "bot", "db", "upgrade"], cwd=ROOT,
                                      env={**os.environ, "DATABASE_URL": url},
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                     for _ in range(4)]
        outputs = [p.communicate(timeout=120)[0].decode() for p in processes]
        assert [p.returncode for p in processes] == [0] * 4, outputs
        versions = asyncio.run(query(url, "SELECT version_num FROM alembic_version"))
        assert frozenset(row[0] for row in versions) == head_revisions()
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _children(pid: int) -> set[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return {int(p) for p in path.read_text().split()} if path.exists() else set()


def test_workers_share_one_port_are_replaced_when_they_die_and_stop_on_sigterm(
        tmp_path: Path, assistant: Assistant) -> None:
    name = fresh_database()
    url = f"{POSTGRES}/{name}"
    asyncio.run(upgrade(url))
    asyncio.run(_seed(url, assistant, recipients=120))
    token = f"{uuid.uuid4().int % 10**9}:WORKERS"
    fake = Fake(FakeTelegram(token, limits=True, rate=RATE, chat_rate=1.0))
    fake.start()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "workers.log"
    env = {"DATABASE_URL": url, "MOTCUA_PORT": str(port), "MOTCUA_QUIET_HOURS": "",
           "MOTCUA_SECRET_KEY": "",  # the parent makes one key for both
           "MOTCUA_REDIS_URL": "",  # each worker keeps to half the bot's rate
           "MOTCUA_TELEGRAM_RATE": str(RATE), "TELEGRAM_BOT_TOKEN": token,
           "TELEGRAM_WEBHOOK_SECRET": SECRET, "PUBLIC_BASE_URL": "https://workers.invalid",
           "TELEGRAM_API_BASE_URL": f"http://127.0.0.1:{fake.port}"}
    parent = start(["serve", "--workers", "2"], env, log)
    try:
        healthy(base, parent, log)
        until(lambda: len(_children(parent.pid)) == 2, 10, "two workers")
        until(lambda: log.read_text().count("web chat on") == 2, 120, "both workers serving")
        # Without Redis, two workers at half the rate each: the broadcast, without a 429.
        until(lambda: len({chat for _, _, chat, _ in fake.sends}) == 120, 90, "the broadcast")
        assert len(fake.sends) == 120 and fake.telegram.refused == 0
        # One conversation over new connections, whichever worker takes each.
        status, answer = post(f"{base}/api/chat", {"text": "làm giấy khai sinh cần gì"})
        session = answer["session"]
        for _ in range(8):
            status, fee = post(f"{base}/api/chat", {"text": "còn phí?"},
                               {"X-Chat-Session": session})
            assert status == 200 and "session" not in fee
            assert fee["replies"][0]["text"].startswith("Lệ phí — Làm giấy khai sinh")
        # Whichever worker answers /metrics counts the 9 messages both took (a shared folder).
        for _ in range(4):
            with urllib.request.urlopen(base + "/metrics", timeout=10) as response:
                lines = response.read().decode().splitlines()
            assert 'motcua_updates_total{channel="web",outcome="answered"} 9.0' in lines
        # A worker that dies is replaced; the port keeps answering meanwhile.
        first = _children(parent.pid)
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        until(lambda: len(_children(parent.pid) - first) == 1, 20, "a new worker")
        with urllib.request.urlopen(base + "/healthz", timeout=10) as response:
            assert response.status == 200
        until(lambda: log.read_text().count("web chat on") == 3, 120, "the new worker serving")
        workers = _children(parent.pid)
        assert stop(parent) == 0
        assert not any(Path(f"/proc/{pid}").exists() for pid in workers)
        assert log.read_text().count("bot.app: stopping") == 2
        [(communes,)] = asyncio.run(query(url, "SELECT count(*) FROM commune"))
        assert communes == 1
    finally:
        if parent.poll() is None:
            parent.kill()
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_workers_stop_when_their_supervisor_is_killed(tmp_path: Path) -> None:
    name = fresh_database()
    port = free_port()
    log = tmp_path / "workers.log"
    parent = start(["serve", "--workers", "2"], {
        "DATABASE_URL": f"{POSTGRES}/{name}", "MOTCUA_PORT": str(port)}, log)
    workers: set[int] = set()
    try:
        healthy(f"http://127.0.0.1:{port}", parent, log)
        until(lambda: len(_children(parent.pid)) == 2, 10, "two workers")
        workers = _children(parent.pid)
        parent.kill()  # SIGKILL: it cannot stop them
        parent.wait()
        until(lambda: not any(Path(f"/proc/{pid}/cmdline").exists()
                              and Path(f"/proc/{pid}/cmdline").read_bytes()
                              for pid in workers), 60, "the orphaned workers stopped")
        assert "is gone; stopping" in log.read_text()
    finally:
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.mark.parametrize(("env", "refusal"), [
    ({"DATABASE_URL": "sqlite:///never.sqlite3"}, "needs PostgreSQL"),
    ({"DATABASE_URL": f"{POSTGRES}/never", "TELEGRAM_BOT_TOKEN": "1:POLLING"},
     "cannot poll Telegram"),
])
def test_workers_are_refused_where_they_cannot_share(env: dict[str, str], refusal: str) -> None:
    result = subprocess.run([sys.executable, "-m", "bot", "serve", "--workers", "2"], cwd=ROOT,
                            env={**os.environ, "PUBLIC_BASE_URL": "", **env},
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode != 0
    assert refusal in result.stderr
    assert not (ROOT / "never.sqlite3").exists()


async def test_sending_goes_on_at_this_processs_share_while_redis_is_away(
        caplog: pytest.LogCaptureFixture) -> None:
    shared = SharedSlots(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    pace = Pace(rate=1000, per_recipient=1, name="telegram:1", shared=shared, processes=2)
    now = dt.datetime.now(dt.UTC)
    try:
        assert await pace.reserve("telegram:42", now) is None  # sent, paced in this process
        assert not shared.up
        assert "Redis unreachable" in caplog.text
        assert pace.allowed_at("telegram:42", now) > now  # the chat's turn is still kept
    finally:
        await shared.close()


async def test_processes_starting_at_once_create_the_commune_once(postgresql_url: str) -> None:
    engine = make_engine(postgresql_url)
    sessions = make_sessions(engine)
    slug = f"xa-{uuid.uuid4().hex[:8]}"
    gate = asyncio.Barrier(4)

    async def first_start() -> int:
        async with session_scope(sessions) as session:
            await gate.wait()  # four transactions open before any inserts
            return await repo.ensure_commune(session, slug=slug, name="Xã Mới")

    try:
        ids = await asyncio.gather(*(first_start() for _ in range(4)))
        assert len(set(ids)) == 1
    finally:
        await engine.dispose()
