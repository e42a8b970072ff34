"""Staff link their Telegram account from the console; the staff group then takes commands and
replies only from linked, enabled staff, recorded under their console login."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.settings import TelegramConfig
from bot.telegram import add_telegram_routes, build_application
from bot.web import DIALOGUE
from handlers import broadcasts
from handlers.applications import Office
from knowledge.answer import Assistant
from storage import staff
from storage.applications import ensure_commune
from storage.db import session_scope
from tests.conftest import deployment
from tests.fakes.telegram import FakeTelegram, button_update, text_update
from tests.test_console_auth import SETTINGS, Browser, add_account

STAFF_CHAT = -100500
LAN, MINH = 7001, 7002  # two staff members' own Telegram accounts
TOKEN, SECRET = "123456:TEST-token", "s3cret_token-1"
REFUSED = "Chỉ cán bộ đã liên kết tài khoản Telegram"


def in_group(update: dict[str, Any], sender: int) -> dict[str, Any]:
    """``update`` as written in the staff group by the Telegram user ``sender``."""
    body = update.get("message") or update["callback_query"]
    body["from"] = {"id": sender, "is_bot": False, "first_name": "Cán bộ"}
    chat = body["message"]["chat"] if "callback_query" in update else body["chat"]
    chat.update({"id": STAFF_CHAT, "type": "supergroup", "title": "Một cửa"})
    return update


@dataclass
class Rig:
    http: TestClient[Any, Any]
    fake: FakeTelegram
    office: Office
    updates: int = 0

    async def post(self, make: Callable[[int], dict[str, Any]]) -> None:
        self.updates += 1
        response = await self.http.post("/webhook/telegram", json=make(self.updates),
                                        headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
        assert response.status == 200

    async def group(self, sender: int, text: str) -> str:
        """What the bot answers in the staff group to ``text`` from ``sender`` ("" if nothing)."""
        before = len(self.fake.sent(STAFF_CHAT))
        await self.post(lambda n: in_group(text_update(n, STAFF_CHAT, text), sender))
        sent = self.fake.sent(STAFF_CHAT)[before:]
        return sent[-1]["text"] if sent else ""

    async def private(self, sender: int, text: str) -> str:
        await self.post(lambda n: text_update(n, sender, text))
        return str(self.fake.sent(sender)[-1]["text"])

    async def tap(self, sender: int, data: str) -> str:
        before = len(self.fake.sent(STAFF_CHAT))
        await self.post(lambda n: in_group(button_update(n, STAFF_CHAT, data), sender))
        sent = self.fake.sent(STAFF_CHAT)[before:]
        return sent[-1]["text"] if sent else ""


@pytest.fixture
async def rig(office: Office, phuc_tho: Office, assistant: Assistant) -> AsyncIterator[Rig]:
    fake = FakeTelegram(TOKEN)
    async with TestServer(fake.app()) as api:
        config = TelegramConfig(token=TOKEN, webhook_secret=SECRET,
                                api_base_url=str(api.make_url("")).rstrip("/"),
                                staff_chat_id=str(STAFF_CHAT))
        app = deployment(assistant, office, phuc_tho, settings=SETTINGS, staff_channel=True)
        application = build_application(config, app[DIALOGUE])
        add_telegram_routes(app, application, config)
        async with TestClient(TestServer(app)) as http:
            yield Rig(http, fake, office)


async def link_code(browser: Browser) -> str:
    """Ask the console for a code, as the signed-in staff member does."""
    page = await browser.post("/console/me", {"csrf": await browser.csrf("/console/me"),
                                              "action": "link"})
    assert page.status == 200
    found = re.search(r"/lienket ([A-Z0-9]{8})", await page.text())
    assert found, "the page shows the message to send"
    return found[1]


async def preview_buttons(rig: Rig, sender: int, text: str) -> list[str]:
    answer = await rig.group(sender, f"/thongbao {text}")
    assert answer.startswith("Xem trước thông báo số "), answer
    preview = rig.fake.sent(STAFF_CHAT)[-1]
    return [b["callback_data"] for row in preview["reply_markup"]["inline_keyboard"]
            for b in row]


async def test_linked_staff_speak_in_the_group_others_are_refused(rig: Rig) -> None:
    await add_account(rig.office, "lan")
    await add_account(rig.office, "minh")
    # Nobody linked yet: the group's members are the staff, as before.
    await preview_buttons(rig, MINH, "Họp dân tối thứ Sáu.")

    lan = Browser(rig.http)
    try:
        assert (await lan.sign_in("lan")).status == 303
        me = await lan.get("/console/me")
        assert "Chưa liên kết tài khoản Telegram nào." in await me.text()
        code = await link_code(lan)
        assert "Mã này không đúng hoặc đã hết hạn" in await rig.private(MINH, "/lienket ABCDEFGH")
        assert "thay mặt Cán bộ lan" in await rig.private(LAN, f"/lienket {code}")
        assert "Mã này không đúng" in await rig.private(MINH, f"/lienket {code}")  # used up
        assert "Đã liên kết với tài khoản Telegram có mã số 7001." in await (
            await lan.get("/console/me")).text()

        # From now on Minh, not linked, is refused; Lan is recorded under her console login.
        assert (await rig.group(MINH, "/thongbao Mất nước sáng mai.")).startswith(REFUSED)
        assert await rig.group(MINH, "Chị Lan ơi, chiều nay ai trực?") == ""  # staff chatting
        send, _ = await preview_buttons(rig, LAN, "Mất nước sáng mai.")
        assert (await rig.tap(MINH, send)).startswith(REFUSED)
        number = int(send.rsplit(":", 1)[1])
        made, report = await broadcasts.status(rig.office, number)
        assert made.created_by == "staff:lan" and report.total.queued == 0
        assert (await rig.tap(LAN, send)).startswith(f"Thông báo số {number} đang được gửi")

        # A disabled account no longer speaks for the commune in the group.
        async with session_scope(rig.office.sessions) as session:
            account = await staff.account_by_login(session, "lan")
            assert account is not None
            await staff.disable(session, account, now=account.created_at)
        assert (await rig.group(LAN, "/thongbao Lịch tiêm chủng.")).startswith(REFUSED)
    finally:
        await lan.session.close()


async def test_unlinking_and_codes_of_another_commune(rig: Rig, office: Office) -> None:
    await add_account(office, "lan")
    async with session_scope(office.sessions) as session:
        other = await ensure_commune(session, slug="phuc-tho", name="Xã Phúc Thọ")
    await add_account(office, "son", commune_id=other)
    lan, son = Browser(rig.http), Browser(rig.http)
    try:
        await lan.sign_in("lan")
        await son.sign_in("son")
        # This bot is Hát Môn's: a code from Phúc Thọ's console links nothing here.
        assert "Mã này không đúng" in await rig.private(MINH, f"/lienket {await link_code(son)}")
        assert "thay mặt" in await rig.private(LAN, f"/lienket {await link_code(lan)}")
        token = await lan.csrf("/console/me")
        assert (await lan.post("/console/me", {"csrf": token, "action": "unlink"})).status == 303
        assert "Chưa liên kết" in await (await lan.get("/console/me")).text()
        # Nobody is linked any more: the group is open to its members again.
        await preview_buttons(rig, MINH, "Họp dân.")
        # A forged form (no CSRF token) gets no code.
        forged = await lan.post("/console/me", {"action": "link"})
        assert forged.status == 403 and "/lienket" not in await forged.text()
    finally:
        await lan.session.close()
        await son.session.close()
