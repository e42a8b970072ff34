"""Zalo beyond its 48-hour / 8-message window, end to end through the outbox and the fake
Zalo (and Telegram) servers, on SQLite and PostgreSQL: a status change or reminder goes as a
consultation message inside the window, as a transaction message beyond it where the OA may
send them, and is otherwise recorded as undeliverable and offered on the follower's other
channels."""

import dataclasses
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from sqlmodel import col, select
from telegram import Bot

from bot import jobs
from bot.outbox import Dispatcher, QuietHours
from bot.settings import ZaloConfig
from bot.telegram import chat_sender
from bot.telegram_request import AiohttpRequest
from bot.zalo import ZaloClient
from handlers.applications import Office, set_status
from handlers.conversation import Dialogue, IncomingMessage, Reply
from knowledge.answer import Assistant
from knowledge.workdays import TZ
from storage import applications as repo
from storage.db import session_scope
from storage.domain import ApplicationStatus
from storage.models import Notification
from tests.fakes.telegram import FakeTelegram
from tests.fakes.zalo import NOT_INTERACTED, FakeZalo
from tests.samples import CODE

USER = "246845883529197922"
CHAT = 4242  # the same citizen on Telegram
WEB = "w-1"  # … and in the web chat
TOKEN = "123456:TEST-token"
READY = "Cập nhật hồ sơ của bạn:"  # a status notification's first line


def environment(base_url: str, **changes: str) -> dict[str, str]:
    return {"ZALO_APP_ID": "4321890765123456789", "ZALO_APP_SECRET": "app-secret",
            "ZALO_OA_SECRET_KEY": "oa-secret", "ZALO_ACCESS_TOKEN": "at-1",
            "ZALO_REFRESH_TOKEN": "rt-1", "ZALO_API_BASE_URL": base_url,
            "ZALO_OAUTH_BASE_URL": base_url, **changes}


@dataclass
class Rig:
    office: Office
    dialogue: Dialogue
    zalo: FakeZalo
    telegram: FakeTelegram
    client: ZaloClient
    dispatcher: Dispatcher

    def allow_transactions(self, allowed: bool = True) -> None:
        """The OA is (or is not) set up to send transaction messages."""
        self.client.config = dataclasses.replace(self.client.config,
                                                 transaction_messages=allowed)

    async def wrote(self, ago: dt.timedelta, user: str = USER) -> None:
        """The citizen last wrote to the OA ``ago``."""
        await self.dialogue.handle(IncomingMessage("zalo", user, text="xin chào"),
                                   now=dt.datetime.now(dt.UTC) - ago)

    async def follow(self, channel: str, recipient: str) -> None:
        async with session_scope(self.office.sessions) as s:
            app = (await repo.existing(s, commune_id=self.office.commune_id,
                                       codes=[CODE]))[CODE]
            assert app.id is not None
            await repo.subscribe(s, commune_id=self.office.commune_id, application_id=app.id,
                                 channel=channel, recipient=recipient, lang="vi")

    async def result_ready(self) -> None:
        await set_status(self.office, receipt_code=CODE, status=ApplicationStatus.RESULT_READY,
                         actor="staff:test", now=dt.datetime.now(dt.UTC))

    async def deliver(self) -> None:
        """Run the outbox until nothing more is due."""
        while await self.dispatcher.run_once() or self.dispatcher.claimed:
            pass

    async def rows(self, channel: str) -> list[Notification]:
        async with self.office.sessions() as s:
            return list((await s.exec(select(Notification).where(
                col(Notification.channel) == channel).order_by(col(Notification.id)))).all())

    async def web_inbox(self) -> list[str]:
        """What the web chat shows when it next polls its inbox."""
        async with session_scope(self.office.sessions) as s:
            return [m.text for m in await repo.take_for_recipient(
                s, channel="web", recipient=WEB, now=dt.datetime.now(dt.UTC))]

    def on_telegram(self) -> list[str]:
        return [str(p["text"]) for p in self.telegram.delivered(CHAT)]


@pytest.fixture
async def rig(office: Office, assistant: Assistant) -> AsyncIterator[Rig]:
    zalo, telegram = FakeZalo("4321890765123456789", "app-secret", "at-1", "rt-1"), \
        FakeTelegram(TOKEN)
    async with TestServer(zalo.app()) as zalo_api, TestServer(telegram.app()) as telegram_api:
        config = ZaloConfig.from_env(environment(str(zalo_api.make_url("")).rstrip("/")))
        assert config is not None
        client = ZaloClient(config, office)
        bot = Bot(TOKEN, base_url=f"{str(telegram_api.make_url('')).rstrip('/')}/bot",
                  request=AiohttpRequest())
        dispatcher = Dispatcher(
            office, {"zalo": client.notify, "telegram": chat_sender(bot)},
            kind_senders=client.kind_senders(), quiet=QuietHours.parse(""))
        try:
            async with bot:
                yield Rig(office, Dialogue(assistant, office), zalo, telegram, client,
                          dispatcher)
        finally:
            await client.close()


def header_and_text(message: dict[str, Any]) -> tuple[str, str]:
    """A transaction message's header and its text elements, as the citizen reads them."""
    payload = message["attachment"]["payload"]
    header, *texts = payload["elements"]
    return header["content"], "\n".join(e["content"] for e in texts)


def test_transaction_messages_are_off_unless_the_oa_may_send_them() -> None:
    config = ZaloConfig.from_env(environment(""))
    assert config is not None and not config.transaction_messages
    allowed = ZaloConfig.from_env(environment("", ZALO_TRANSACTION_MESSAGES="1",
                                              ZALO_TRANSACTION_TEMPLATE="transaction_booking"))
    assert allowed is not None and allowed.transaction_messages
    assert allowed.transaction_template == "transaction_booking"


@pytest.mark.parametrize("allowed", [False, True])
async def test_inside_the_window_a_status_change_is_a_consultation_message(
        rig: Rig, allowed: bool) -> None:
    rig.allow_transactions(allowed)
    await rig.wrote(dt.timedelta(hours=47))
    await rig.follow("zalo", USER)
    await rig.result_ready()
    await rig.deliver()
    [notice] = rig.zalo.sent(USER)
    assert notice["text"].startswith(READY)
    assert rig.zalo.transactions() == []


async def test_beyond_the_window_a_status_change_is_a_transaction_message(rig: Rig) -> None:
    rig.allow_transactions()
    await rig.wrote(dt.timedelta(days=3))
    await rig.follow("zalo", USER)
    await rig.result_ready()
    await rig.deliver()
    assert rig.zalo.sent() == []
    [message] = rig.zalo.transactions(USER)
    payload = message["attachment"]["payload"]
    assert (payload["template_type"], payload["language"]) == ("transaction_order", "VI")
    header, text = header_and_text(message)
    assert header == "Cập nhật hồ sơ của bạn"
    assert f"Hồ sơ {CODE}" in text and "đã có kết quả, chờ nhận" in text
    assert "<br>" in text and "\n" not in text  # Zalo's line breaks in a template
    [row] = await rig.rows("zalo")
    assert row.sent_at is not None and row.outcome is None


async def test_after_eight_messages_a_status_change_is_a_transaction_message(rig: Rig) -> None:
    rig.allow_transactions()
    await rig.wrote(dt.timedelta(hours=1))
    for _ in range(8):
        await rig.client.send(USER, Reply("Mời anh chị xem hướng dẫn."))
    await rig.follow("zalo", USER)
    await rig.result_ready()
    await rig.deliver()
    assert len(rig.zalo.sent(USER)) == 8
    [message] = rig.zalo.transactions(USER)
    assert header_and_text(message)[0] == "Cập nhật hồ sơ của bạn"


async def test_a_reminder_beyond_the_window_is_a_transaction_message(rig: Rig) -> None:
    rig.allow_transactions()
    await rig.wrote(dt.timedelta(days=5))
    await rig.follow("zalo", USER)
    now = dt.datetime.now(dt.UTC)
    today = now.astimezone(TZ).date()
    await set_status(rig.office, receipt_code=CODE, status=ApplicationStatus.RESULT_READY,
                     actor="staff:test", now=now)
    async with session_scope(rig.office.sessions) as s:  # the appointment is today
        app = (await repo.existing(s, commune_id=rig.office.commune_id, codes=[CODE]))[CODE]
        app.due_at = dt.datetime.combine(today, dt.time(15), tzinfo=TZ)
        s.add(app)
    assert await jobs.run_job(rig.office, jobs.reminders_job(rig.office), now)
    await rig.deliver()
    headers = [header_and_text(m) for m in rig.zalo.transactions(USER)]
    assert [h for h, _ in headers] == ["Cập nhật hồ sơ của bạn", "Thông báo về hồ sơ của bạn"]
    assert CODE in headers[1][1]


async def test_without_transaction_messages_it_is_recorded_and_offered_on_other_channels(
        rig: Rig) -> None:
    await rig.wrote(dt.timedelta(days=3))
    await rig.follow("zalo", USER)
    await rig.follow("telegram", str(CHAT))
    await rig.result_ready()
    await rig.follow("web", WEB)  # followed in the web chat after the change
    await rig.deliver()
    assert rig.zalo.requests == []  # Zalo would refuse (or bill) it: not tried
    [zalo] = await rig.rows("zalo")
    assert zalo.outcome == "undeliverable" and zalo.sent_at is not None  # recorded for staff
    # Telegram already had its own copy: nothing twice; the web chat gets the one it missed.
    [telegram] = rig.on_telegram()
    assert telegram.startswith(READY)
    assert await rig.web_inbox() == [zalo.text]
    [web] = await rig.rows("web")
    assert web.kind == "status" and web.idempotency_key.startswith("status:")
    # Offered once: later rounds add nothing.
    await rig.deliver()
    assert await rig.web_inbox() == [] and len(rig.on_telegram()) == 1
    assert len(await rig.rows("web")) == 1


@pytest.mark.parametrize("refusal", ["oa", "citizen"])
async def test_a_refused_transaction_message_is_undeliverable_and_offered_elsewhere(
        rig: Rig, refusal: str) -> None:
    rig.allow_transactions()
    if refusal == "oa":
        rig.zalo.transactions_allowed = False  # Zalo: this OA may not send them
    else:
        rig.zalo.failing_users[USER] = NOT_INTERACTED
    await rig.wrote(dt.timedelta(days=8))
    await rig.follow("zalo", USER)
    await rig.result_ready()
    await rig.follow("telegram", str(CHAT))
    await rig.deliver()
    assert rig.zalo.transactions() == [] and len(rig.zalo.requests) == 1
    [zalo] = await rig.rows("zalo")
    assert zalo.outcome == "undeliverable"
    assert rig.on_telegram() == [zalo.text]


async def test_zalo_unreachable_keeps_the_message_for_later(rig: Rig) -> None:
    rig.allow_transactions()
    rig.zalo.down = True
    await rig.wrote(dt.timedelta(days=3))
    await rig.follow("zalo", USER)
    await rig.result_ready()
    await rig.dispatcher.run_once()
    [zalo] = await rig.rows("zalo")
    assert zalo.sent_at is None and zalo.outcome is None  # tried again later, not offered
    assert await rig.rows("web") == [] and rig.on_telegram() == []


async def test_a_broadcast_beyond_the_window_stays_undeliverable(rig: Rig) -> None:
    rig.allow_transactions()
    await rig.wrote(dt.timedelta(days=3))
    async with session_scope(rig.office.sessions) as s:
        await repo.enqueue(s, [Notification(
            commune_id=rig.office.commune_id, channel="zalo", recipient=USER,
            text="Thứ Bảy tiêm chủng tại trạm y tế xã.", idempotency_key="broadcast:1:zalo:1",
            kind="broadcast")])
    await rig.deliver()
    assert rig.zalo.requests == []
    [row] = await rig.rows("zalo")
    assert row.outcome == "undeliverable"
