"""The outbox at the channels' limits: python-telegram-bot's client against the fake Bot API,
on SQLite and PostgreSQL."""

import asyncio
import datetime as dt
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from sqlmodel import col, select
from telegram import Bot

from bot.app import paces
from bot.outbox import Dispatcher, Outcome, Pace, QuietHours, Sender
from bot.settings import Settings, TelegramConfig
from bot.telegram import build_application, chat_sender
from bot.telegram import senders as telegram_senders
from bot.telegram_request import AiohttpRequest
from handlers.applications import Office
from handlers.conversation import Dialogue, IncomingMessage
from handlers.messages import Reply
from knowledge.answer import Assistant
from storage import applications as repo
from storage.db import make_engine, make_sessions, session_scope
from storage.models import Notification, Unreachable
from tests.fakes.telegram import FakeTelegram

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "123456:TEST-token"
# 10:00 in Hát Môn (UTC+7): outside the quiet hours.
MORNING = dt.datetime(2026, 12, 7, 3, 0, tzinfo=dt.UTC)


@dataclass
class Rig:
    fake: FakeTelegram
    office: Office
    send: Sender
    down: bool = False  # the Bot API answers nothing (an outage)

    def dispatcher(self, **kwargs: object) -> Dispatcher:
        async def sender(recipient: str, reply: Reply) -> Outcome:
            return Outcome.RETRY if self.down else await self.send(recipient, reply)
        return Dispatcher(self.office, {"telegram": sender}, **kwargs)  # type: ignore[arg-type]

    async def queue(self, chats: list[int], *, kind: str = "status", at: dt.datetime = MORNING,
                    due: dt.datetime | None = None, tag: str = "") -> None:
        async with session_scope(self.office.sessions) as session:
            await repo.enqueue(session, [Notification(
                commune_id=self.office.commune_id, channel="telegram", recipient=str(chat),
                text=f"Hồ sơ {n}", idempotency_key=f"t:{tag}{n}:{chat}", kind=kind,
                created_at=at, next_attempt_at=due or at) for n, chat in enumerate(chats)])

    async def rows(self) -> list[Notification]:
        async with self.office.sessions() as session:
            return list((await session.exec(select(Notification).where(
                col(Notification.channel) == "telegram").order_by(col(Notification.id)))).all())

    def delivered(self) -> list[int]:
        return [int(p["chat_id"]) for m, p in self.fake.calls if m == "sendMessage:ok"]


@pytest.fixture
async def rig(office: Office) -> AsyncIterator[Rig]:
    fake = FakeTelegram(TOKEN)
    async with TestServer(fake.app()) as api:
        bot = Bot(TOKEN, base_url=f"{str(api.make_url('')).rstrip('/')}/bot",
                  request=AiohttpRequest())
        async with bot:
            yield Rig(fake, office, chat_sender(bot))


async def test_a_new_notification_does_not_wait_behind_messages_in_backoff(rig: Rig) -> None:
    await rig.queue(list(range(1000, 1120)), due=MORNING + dt.timedelta(hours=1), tag="old")
    await rig.queue([2000], at=MORNING)
    assert await rig.dispatcher().run_once(MORNING) == 1
    assert rig.delivered() == [2000]


async def test_messages_survive_a_five_minute_outage(rig: Rig) -> None:
    await rig.queue(list(range(3000, 3020)))
    outbox = rig.dispatcher()
    rig.down = True
    for minute in range(0, 6):
        await outbox.run_once(MORNING + dt.timedelta(minutes=minute))
    rig.down = False
    assert await outbox.run_once(MORNING + dt.timedelta(minutes=30)) == 20
    assert sorted(rig.delivered()) == list(range(3000, 3020))


async def test_a_blocked_chat_is_marked_unreachable_after_one_403(rig: Rig, assistant: Assistant
                                                                   ) -> None:
    rig.fake.blocked.add(4000)
    await rig.queue([4000, 4001])
    outbox = rig.dispatcher()
    assert await outbox.run_once(MORNING) == 1
    assert len(rig.fake.sent(4000)) == 1
    await rig.queue([4000], tag="later")  # another status change for them
    assert await outbox.run_once(MORNING + dt.timedelta(hours=1)) == 0
    assert len(rig.fake.sent(4000)) == 1  # not tried again
    assert [r.outcome for r in await rig.rows() if r.recipient == "4000"] == [
        "unreachable", "unreachable"]
    # They unblock the bot and write again: messages reach them again.
    rig.fake.blocked.clear()
    await Dialogue(assistant, rig.office).handle(IncomingMessage("telegram", "4000", text="chào"))
    async with rig.office.sessions() as session:
        assert (await session.exec(select(Unreachable))).all() == []
    await rig.queue([4000], tag="again")
    assert await outbox.run_once(MORNING + dt.timedelta(hours=2)) == 1
    assert rig.delivered().count(4000) == 1


async def test_expired_messages_are_listed_and_can_be_sent_again(rig: Rig) -> None:
    await rig.queue([5000, 5001], at=MORNING - dt.timedelta(days=4))
    outbox = rig.dispatcher()
    assert await outbox.run_once(MORNING) == 0
    assert rig.fake.sent() == []
    async with session_scope(rig.office.sessions) as session:
        expired = await repo.expired_notifications(session, commune_id=rig.office.commune_id)
        assert sorted(n.recipient for n in expired) == ["5000", "5001"]
        assert await repo.resend_expired(session, commune_id=rig.office.commune_id,
                                         ids=[expired[0].id or 0], now=MORNING,
                                         expires_at=MORNING + dt.timedelta(days=3)) == 1
    assert await outbox.run_once(MORNING) == 1
    assert rig.delivered() == [int(expired[0].recipient)]


async def test_quiet_hours_hold_status_messages_but_not_replies(rig: Rig) -> None:
    night = dt.datetime(2026, 12, 7, 15, 0, tzinfo=dt.UTC)  # 22:00 in Hát Môn
    await rig.queue([6000], at=night)
    await rig.queue([6001], at=night, kind="reply")
    outbox = rig.dispatcher()
    assert await outbox.run_once(night) == 1
    assert rig.delivered() == [6001]
    [held] = [r for r in await rig.rows() if r.recipient == "6000"]
    assert held.next_attempt_at == dt.datetime(2026, 12, 8, 0, 0, tzinfo=dt.UTC)  # 07:00
    assert held.attempts == 0
    assert await outbox.run_once(night + dt.timedelta(hours=5)) == 0  # 03:00 still quiet
    assert await outbox.run_once(dt.datetime(2026, 12, 8, 0, 1, tzinfo=dt.UTC)) == 1


async def test_a_429_delays_only_its_chat(rig: Rig) -> None:
    rig.fake.flood = 1  # the first sendMessage gets 429, retry after 1 s
    await rig.queue([7000])
    outbox = rig.dispatcher(paces={"telegram": Pace(rate=1000, per_recipient=1)})
    assert await outbox.run_once(MORNING) == 0
    await rig.queue([7001, 7002], tag="next")
    assert await outbox.run_once(MORNING) == 2  # other chats are not held up
    [first] = [r for r in await rig.rows() if r.recipient == "7000"]
    assert first.next_attempt_at == MORNING + dt.timedelta(seconds=1)
    assert first.attempts == 0  # Telegram's pacing is not the message's failure
    assert await outbox.run_once(MORNING + dt.timedelta(seconds=1)) == 1


async def test_pacing_keeps_within_telegram_limits(rig: Rig) -> None:
    rig.fake.limits, rig.fake.rate = True, 5.0
    chats = [8000, 8000, 8000, 8001, 8002, 8003, 8004, 8005, 8006, 8007]
    await rig.queue(chats, at=dt.datetime.now(dt.UTC))
    outbox = rig.dispatcher(paces={"telegram": Pace(rate=5, per_recipient=1)},
                            quiet=QuietHours.parse(""))  # whatever the hour of the run
    for _ in range(200):  # about 10 s at most
        if len(rig.delivered()) == len(chats):
            break
        await outbox.run_once()
        await asyncio.sleep(0.05)
    assert rig.fake.refused == 0
    assert sorted(rig.delivered()) == sorted(chats)


async def test_a_message_zalo_will_not_take_is_recorded_not_dropped(office: Office) -> None:
    async def refuse(recipient: str, reply: Reply) -> Outcome:
        return Outcome.UNDELIVERABLE
    async with session_scope(office.sessions) as session:
        await repo.enqueue(session, [Notification(
            commune_id=office.commune_id, channel="zalo", recipient="u1", text="Hồ sơ",
            idempotency_key="z:1", kind="status", created_at=MORNING,
            next_attempt_at=MORNING)])
    outbox = Dispatcher(office, {"zalo": refuse})
    assert await outbox.run_once(MORNING) == 0
    assert await outbox.run_once(MORNING + dt.timedelta(hours=1)) == 0
    async with office.sessions() as session:
        [row] = (await session.exec(select(Notification).where(
            col(Notification.channel) == "zalo"))).all()
    assert (row.outcome, row.attempts) == ("undeliverable", 1)


async def test_two_dispatchers_never_send_the_same_message(rig: Rig, database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("several instances share the outbox on PostgreSQL only")
    chats = list(range(9000, 9300))
    await rig.queue(chats)
    one, two = rig.dispatcher(batch=20), rig.dispatcher(batch=20)

    async def drain(outbox: Dispatcher) -> None:
        for _ in range(40):
            await outbox.run_once(MORNING)

    await asyncio.gather(drain(one), drain(two))
    assert sorted(rig.delivered()) == chats  # each once


def test_delivery_limits_come_from_the_environment() -> None:
    settings = Settings.from_env({"MOTCUA_TELEGRAM_RATE": "25", "MOTCUA_TELEGRAM_CHAT_RATE": "0.5",
                                  "MOTCUA_OUTBOX_EXPIRY_DAYS": "7",
                                  "MOTCUA_QUIET_HOURS": "22:00-06:30"}, dotenv=Path("/nonexistent"))
    assert (settings.telegram_rate, settings.telegram_chat_rate) == (25.0, 0.5)
    assert settings.outbox_expiry_days == 7.0
    quiet = QuietHours.parse(settings.quiet_hours)
    assert quiet.until(dt.datetime(2026, 12, 7, 23, 0, tzinfo=dt.UTC)) == dt.datetime(
        2026, 12, 7, 23, 30, tzinfo=dt.UTC)  # 06:00 local → 06:30 local
    assert quiet.until(MORNING) is None
    assert QuietHours.parse("").until(MORNING - dt.timedelta(hours=8)) is None
    with pytest.raises(SystemExit, match="MOTCUA_QUIET_HOURS"):
        Settings.from_env({"MOTCUA_QUIET_HOURS": "9pm"}, dotenv=Path("/nonexistent"))
    with pytest.raises(SystemExit, match="MOTCUA_TELEGRAM_RATE"):
        Settings.from_env({"MOTCUA_TELEGRAM_RATE": "fast"}, dotenv=Path("/nonexistent"))


def test_staff_list_expired_messages_and_send_them_again(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'motcua.sqlite3'}"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "bot", "outbox", *args], cwd=ROOT,
                              env={**os.environ, "DATABASE_URL": url}, capture_output=True,
                              text=True, timeout=120, check=False)

    assert cli("expired").stdout == ""  # also creates the database

    async def expire() -> None:
        async with session_scope(make_sessions(make_engine(url))) as session:
            commune = await repo.ensure_commune(session, slug="hat-mon", name="Xã Hát Môn")
            await repo.enqueue(session, [Notification(
                commune_id=commune, channel="telegram", recipient="1", text="Hồ sơ",
                idempotency_key="cli:1", kind="status", created_at=MORNING,
                sent_at=MORNING + dt.timedelta(days=3), outcome="expired")])

    asyncio.run(expire())
    listed = cli("expired").stdout
    assert "status" in listed and "telegram" in listed and "Hồ sơ" not in listed
    assert cli("resend").returncode == 2
    assert cli("resend", "--all").stdout == "1 message(s) back in the outbox\n"
    assert cli("expired").stdout == ""


async def test_a_flood_to_the_staff_group_keeps_its_limit_and_holds_no_citizen_up(
        office: Office, assistant: Assistant) -> None:
    group, per_minute, citizen = -100777, 1200.0, 9500  # 20 a second: the test runs in seconds
    fake = FakeTelegram(TOKEN, limits=True, group_rate=per_minute)
    async with TestServer(fake.app()) as api:
        config = TelegramConfig(token=TOKEN, api_base_url=str(api.make_url("")).rstrip("/"),
                                staff_chat_id=str(group))
        application = build_application(config, Dialogue(assistant, office))
        async with application:
            outbox = Dispatcher(office, telegram_senders(application, config),
                                paces=paces(Settings(staff_chat_rate=per_minute)))
            now = dt.datetime.now(dt.UTC)
            async with session_scope(office.sessions) as session:  # 60 citizens wrote to staff
                await repo.enqueue(session, [Notification(
                    commune_id=office.commune_id, channel="staff", recipient=f"web:c{n}",
                    text=f"Câu hỏi {n}", idempotency_key=f"relay:{n}", kind="staff",
                    created_at=now, next_attempt_at=now) for n in range(60)])
            await outbox.run_once()
            async with session_scope(office.sessions) as session:  # then a reply to a citizen
                await repo.enqueue(session, [Notification(
                    commune_id=office.commune_id, channel="telegram", recipient=str(citizen),
                    text="Trả lời", idempotency_key="reply:1", kind="reply",
                    created_at=dt.datetime.now(dt.UTC),
                    next_attempt_at=dt.datetime.now(dt.UTC))])
            queued_at, replied_at, flood_at_reply = time.monotonic(), 0.0, 0
            for _ in range(600):  # about 30 s at most
                await outbox.run_once()
                if not replied_at and fake.delivered(citizen):
                    replied_at = time.monotonic()
                    flood_at_reply = len(fake.delivered(group))
                if len(fake.delivered(group)) == 60:
                    break
                await asyncio.sleep(0.02)
    assert fake.refused == 0
    relayed = [p["text"] for p in fake.delivered(group)]
    assert sorted(relayed) == sorted(f"[web:c{n}] Câu hỏi {n}" for n in range(60))
    assert replied_at - queued_at < 1.0  # not behind the flood: it had hardly begun
    assert flood_at_reply < 10


def test_the_staff_group_rate_comes_from_the_environment() -> None:
    assert Settings().staff_chat_rate == 20.0  # Telegram's limit for a group, a minute
    settings = Settings.from_env({"MOTCUA_STAFF_CHAT_RATE": "15"}, dotenv=Path("/nonexistent"))
    assert settings.staff_chat_rate == 15.0
    with pytest.raises(SystemExit, match="MOTCUA_STAFF_CHAT_RATE"):
        Settings.from_env({"MOTCUA_STAFF_CHAT_RATE": "many"}, dotenv=Path("/nonexistent"))
