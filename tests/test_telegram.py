"""Telegram end to end: our webhook, python-telegram-bot's client, a fake Bot API server."""

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.exc import OperationalError
from sqlmodel import select
from telegram.ext import Application

from bot.outbox import Dispatcher, QuietHours
from bot.settings import TelegramConfig
from bot.telegram import add_telegram_routes, build_application, senders
from handlers.applications import Office, set_status
from handlers.conversation import Dialogue, IncomingMessage
from knowledge.answer import Assistant
from storage import conversations as conversations_repo
from storage.domain import ApplicationStatus
from storage.models import Unreachable
from tests.fakes.telegram import FakeTelegram, button_update, text_update
from tests.samples import CODE, T0
from tests.script import Received, scripted_conversation

TOKEN = "123456:TEST-token"
SECRET = "s3cret_token-1"


STAFF_CHAT = -100500


@dataclass
class Rig:
    http: TestClient[object, object]
    fake: FakeTelegram
    outbox: Dispatcher
    office: Office
    application: Application[Any, Any, Any, Any, Any, Any]

    async def post(self, update: dict[str, object], secret: str = SECRET) -> int:
        response = await self.http.post("/webhook/telegram", json=update,
                                        headers={"X-Telegram-Bot-Api-Secret-Token": secret})
        return response.status


@pytest.fixture
async def rig(office: Office, assistant: Assistant) -> AsyncIterator[Rig]:
    fake = FakeTelegram(TOKEN)
    async with TestServer(fake.app()) as api:
        config = TelegramConfig(token=TOKEN, webhook_secret=SECRET,
                                api_base_url=str(api.make_url("")).rstrip("/"),
                                staff_chat_id=str(STAFF_CHAT))
        application = build_application(config, Dialogue(assistant, office, staff_channel=True))
        app = web.Application(client_max_size=64 * 1024)
        add_telegram_routes(app, application, config)
        async with TestClient(TestServer(app)) as http:
            yield Rig(http, fake, Dispatcher(office, senders(application, config),
                                                       quiet=QuietHours.parse("")), office,
                      application)


async def test_scripted_conversation(rig: Rig) -> None:
    counter = iter(range(1000, 2000))

    async def send(text: str = "", payload: str = "") -> Received:
        before = len(rig.fake.sent(600))
        n = next(counter)
        await rig.post(button_update(n, 600, payload) if payload else text_update(n, 600, text))
        got = rig.fake.sent(600)[before:]
        return Received([m["text"] for m in got],
                        [(b["text"], b["callback_data"]) for m in got
                         for row in m.get("reply_markup", {}).get("inline_keyboard", [])
                         for b in row])

    await scripted_conversation(send)


async def test_the_bot_keeps_no_memory_of_each_chat_it_saw(rig: Rig) -> None:
    # PTB marks every chat and user for a persistence we do not use; unbounded on a busy bot.
    for n in range(30):
        assert await rig.post(text_update(900 + n, 7000 + n, "/start")) == 200
    assert all(rig.fake.sent(7000 + n) for n in range(30))
    assert not rig.application._chat_ids_to_be_updated_in_persistence
    assert not rig.application._user_ids_to_be_updated_in_persistence


async def test_question_gets_the_procedure_card(rig: Rig) -> None:
    assert await rig.post(text_update(1, 501, "lam giay khai sinh cho be can mang theo gi")) == 200
    [sent] = rig.fake.sent(501)
    assert sent["text"].startswith("Giấy tờ cần chuẩn bị — Làm giấy khai sinh (mã 1.001193)")
    assert "Giấy chứng sinh" in sent["text"]
    rows = [[b["text"] for b in row] for row in sent["reply_markup"]["inline_keyboard"]]
    assert rows == [["Lệ phí", "Thời gian giải quyết"], ["Nơi nộp", "Nộp trực tuyến"],
                    ["Các bước"], ["Người được nộp, điều kiện"],
                    ["Căn cứ pháp lý", "Kết quả"], ["Xem đầy đủ", "Liên hệ cán bộ"], ["Menu"]]


async def test_menu_walk_with_buttons(rig: Rig) -> None:
    await rig.post(text_update(1, 502, "/start"))
    [welcome] = rig.fake.sent(502)
    payloads = [b["callback_data"] for row in welcome["reply_markup"]["inline_keyboard"]
                for b in row]
    assert payloads == ["fields", "lookup", "staff", "language", "announcements:on"]
    await rig.post(button_update(2, 502, "fields"))
    assert any(m == "answerCallbackQuery" for m, _ in rig.fake.calls)
    fields = rig.fake.sent(502)[-1]
    assert fields["text"] == "Chọn lĩnh vực:"
    civil = next(b for row in fields["reply_markup"]["inline_keyboard"] for b in row
                 if b["text"] == "Hộ tịch")
    await rig.post(button_update(3, 502, civil["callback_data"]))
    before = len(rig.fake.sent(502))
    await rig.post(button_update(4, 502, "a:full:1.000894"))
    card = rig.fake.sent(502)[before:]
    # The marriage card is longer than one Telegram message: split between lines, in order.
    assert len(card) >= 2 and all(len(m["text"]) <= 4096 for m in card)
    assert card[0]["text"].startswith("Thủ tục đăng ký kết hôn (mã 1.000894)")  # official name
    assert card[-1]["text"].endswith(
        "Đã đối chiếu văn bản pháp luật hiện hành ngày 5 tháng 12, 2026.")
    assert "reply_markup" in card[-1] and "reply_markup" not in card[0]


async def test_deep_link_and_status_lookup(rig: Rig) -> None:
    await rig.post(text_update(1, 503, "/start p_1_004222"))
    assert rig.fake.sent(503)[0]["text"].startswith("Đăng ký thường trú (nhập khẩu) (mã 1.004222)")
    await rig.post(text_update(2, 503, "/tracuu"))
    await rig.post(text_update(3, 503, CODE))
    await rig.post(text_update(4, 503, "5678"))
    status = rig.fake.sent(503)[-1]
    assert "Trạng thái: đã tiếp nhận" in status["text"]
    await rig.post(button_update(5, 503, "follow"))
    assert rig.fake.sent(503)[-1]["text"].startswith("Bạn sẽ nhận tin nhắn tại đây")


async def test_english_and_handoff_round_trip(rig: Rig) -> None:
    await rig.post(button_update(1, 504, "lang:en"))
    await rig.post(text_update(2, 504, "How do I register my baby's birth?"))
    assert rig.fake.sent(504)[-1]["text"].startswith("Steps — Birth registration (code 1.001193)")
    await rig.post(text_update(3, 504, "gặp cán bộ"))
    assert rig.fake.sent(504)[-1]["text"].startswith("I have passed your conversation")
    await rig.post(text_update(4, 504, "my land papers please"))
    assert rig.fake.sent(504)[-1]["text"] == "✓ Passed to staff."  # staff answer now
    await rig.post(text_update(5, 504, "kết thúc"))
    assert rig.fake.sent(504)[-1]["text"] == "You are back with the assistant."


async def test_duplicate_update_is_processed_once(rig: Rig) -> None:
    update = text_update(42, 505, "gks")
    assert await rig.post(update) == 200
    assert await rig.post(update) == 200
    assert len(rig.fake.sent(505)) == 1


@pytest.mark.parametrize(("body", "headers", "status"), [
    (b'{"update_id": 1}', {"X-Telegram-Bot-Api-Secret-Token": "wrong"}, 403),
    (b'{"update_id": 1}', {}, 403),
    (b"{not json", {"X-Telegram-Bot-Api-Secret-Token": SECRET}, 400),
    (b"[" * 1000 + b"]" * 1000, {"X-Telegram-Bot-Api-Secret-Token": SECRET}, 400),
    # Signed but unreadable: acknowledged, or Telegram would send it again for a day.
    (b'["a list"]', {"X-Telegram-Bot-Api-Secret-Token": SECRET}, 200),
    (b'{"no": "update"}', {"X-Telegram-Bot-Api-Secret-Token": SECRET}, 200),
    (b'{"update_id": 5, "message": {"message_id": 1, "date": 100000000000000, "chat": '
     b'{"id": 1, "type": "private"}, "text": "hi"}}', {"X-Telegram-Bot-Api-Secret-Token": SECRET},
     200),
    (b'{"update_id": 6, "message": {"message_id": 1, "date": 1, "chat": "x", "text": "hi"}}',
     {"X-Telegram-Bot-Api-Secret-Token": SECRET}, 200),
    (b'{"update_id": 9, "edited_channel_post": {"message_id": 1, "date": 1, "chat": '
     b'{"id": -1, "type": "channel"}}}', {"X-Telegram-Bot-Api-Secret-Token": SECRET}, 200),
    (b"x" * (10 * 2**20), {"X-Telegram-Bot-Api-Secret-Token": SECRET}, 413),
])
async def test_forged_or_odd_webhooks_send_nothing(rig: Rig, body: bytes,
                                                   headers: dict[str, str], status: int) -> None:
    response = await rig.http.post("/webhook/telegram", data=body,
                                   headers={"Content-Type": "application/json", **headers})
    assert response.status == status
    assert rig.fake.sent() == []


async def test_blocked_user_and_flood_limit_do_not_break_the_webhook(rig: Rig) -> None:
    rig.fake.blocked.add(506)
    assert await rig.post(text_update(1, 506, "gks")) == 200
    rig.fake.flood = 1
    assert await rig.post(text_update(2, 507, "gks")) == 200
    assert await rig.post(text_update(3, 507, "/start")) == 200
    assert rig.fake.sent(507)[-1]["text"].startswith("Xin chào!")


async def test_a_reply_telegram_refused_is_sent_later_once(rig: Rig) -> None:
    rig.fake.flood = 1  # the first sendMessage gets 429
    assert await rig.post(text_update(1, 520, "lam giay khai sinh can gi")) == 200
    assert rig.fake.delivered(520) == []
    assert await rig.outbox.run_once() == 0  # leased to the webhook for a while
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2)
    assert await rig.outbox.run_once(later) == 1
    [sent] = rig.fake.delivered(520)
    assert sent["text"].startswith("Giấy tờ cần chuẩn bị — Làm giấy khai sinh")
    assert sent["reply_markup"]["inline_keyboard"]  # with its buttons
    # Telegram delivering the update again, and the outbox again, send nothing new.
    assert await rig.post(text_update(1, 520, "lam giay khai sinh can gi")) == 200
    assert await rig.outbox.run_once(later + dt.timedelta(minutes=10)) == 0
    assert len(rig.fake.delivered(520)) == 1


async def test_replies_sent_at_once_are_not_sent_again(rig: Rig) -> None:
    for n in range(5):
        assert await rig.post(text_update(10 + n, 521, "/start")) == 200
    assert len(rig.fake.delivered(521)) == 5
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=30)
    assert await rig.outbox.run_once(later) == 0
    assert len(rig.fake.delivered(521)) == 5


async def test_replies_of_an_update_handled_before_a_crash_are_sent_after_it(
        rig: Rig, office: Office, assistant: Assistant) -> None:
    # The update was committed, then the process died before sendMessage: a new process's
    # outbox sends the reply once the lease has run out; Telegram's redelivery adds nothing.
    crashed = Dialogue(assistant, office)
    message = IncomingMessage("telegram", "522", text="/start", event_id="123456:30")  # bot:update
    assert (await crashed.handle(message))[0].text.startswith("Xin chào!")
    assert await rig.post(text_update(30, 522, "/start")) == 200
    assert rig.fake.delivered(522) == []
    assert await rig.outbox.run_once(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2)) == 1
    [sent] = rig.fake.delivered(522)
    assert sent["text"].startswith("Xin chào!") and sent["reply_markup"]["inline_keyboard"]


async def test_followers_are_notified_through_the_outbox(rig: Rig) -> None:
    await rig.post(text_update(1, 509, "/tracuu"))
    await rig.post(text_update(2, 509, CODE))
    await rig.post(text_update(3, 509, "5678"))
    await rig.post(button_update(4, 509, "follow"))
    await set_status(rig.office, receipt_code=CODE, status=ApplicationStatus.RESULT_READY,
                     actor="staff:lan", now=T0)
    assert await rig.outbox.run_once() == 1
    note = rig.fake.sent(509)[-1]["text"]
    assert note.startswith("Cập nhật hồ sơ của bạn:")
    assert "Trạng thái: đã có kết quả, chờ nhận" in note
    assert await rig.outbox.run_once() == 0  # sent once


async def test_a_follower_who_blocked_the_bot_is_marked_unreachable_after_one_403(
        rig: Rig) -> None:
    for n, text in enumerate(["/tracuu", CODE, "0912345678"]):
        await rig.post(text_update(n + 1, 531, text))
    await rig.post(button_update(4, 531, "follow"))
    rig.fake.blocked.add(531)
    tomorrow = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).replace(hour=3)  # 10:00 local
    before = len(rig.fake.sent(531))
    for status in (ApplicationStatus.PROCESSING, ApplicationStatus.RESULT_READY):
        await set_status(rig.office, receipt_code=CODE, status=status, actor="staff:lan",
                         now=T0)
        await rig.outbox.run_once(tomorrow)
    assert len(rig.fake.sent(531)) == before + 1  # one 403, then no more tries
    async with rig.office.sessions() as s:
        assert [u.recipient for u in (await s.exec(select(Unreachable))).all()] == ["531"]


async def test_staff_group_relay_round_trip(rig: Rig) -> None:
    await rig.post(text_update(1, 508, "gặp cán bộ"))
    await rig.post(text_update(2, 508, "hồ sơ đất của tôi đến đâu rồi"))
    assert await rig.outbox.run_once() == 2
    relayed = [m["text"] for m in rig.fake.sent(STAFF_CHAT)]
    assert relayed == ["[telegram:508] Công dân muốn trao đổi với cán bộ.",
                       "[telegram:508] hồ sơ đất của tôi đến đâu rồi"]
    staff_reply = text_update(3, STAFF_CHAT, "Chào anh, hồ sơ đang chờ ký, thứ Hai anh lên nhận.")
    staff_reply["message"]["chat"]["type"] = "supergroup"  # type: ignore[index]
    staff_reply["message"]["reply_to_message"] = {  # type: ignore[index]
        "message_id": 1, "date": 1, "chat": {"id": STAFF_CHAT, "type": "supergroup"},
        "text": relayed[1]}
    await rig.post(staff_reply)
    assert await rig.outbox.run_once() == 1
    assert rig.fake.sent(508)[-1]["text"] == "Chào anh, hồ sơ đang chờ ký, thứ Hai anh lên nhận."
    done = text_update(4, STAFF_CHAT, "kết thúc")
    done["message"]["reply_to_message"] = staff_reply["message"]["reply_to_message"]  # type: ignore[index]
    await rig.post(done)
    await rig.outbox.run_once()
    assert rig.fake.sent(508)[-1]["text"] == "Bạn đã quay lại với trợ lý tự động."
    await rig.post(text_update(5, 508, "gks"))
    assert "(mã 1.001193)" in rig.fake.sent(508)[-1]["text"].split("\n")[0]


async def test_polling_without_a_public_url(office: Office, assistant: Assistant) -> None:
    # Development mode: no webhook, PTB long-polls getUpdates through our transport.
    fake = FakeTelegram(TOKEN)
    async with TestServer(fake.app()) as api:
        config = TelegramConfig(token=TOKEN, api_base_url=str(api.make_url("")).rstrip("/"))
        application = build_application(config, Dialogue(assistant, office, staff_channel=True),
                                        polling=True)
        app = web.Application()
        add_telegram_routes(app, application, config)
        async with TestClient(TestServer(app)):
            fake.push(text_update(1, 4242, "gks"))
            for _ in range(100):
                if fake.sent(4242):
                    break
                await asyncio.sleep(0.05)
    [card] = fake.sent(4242)
    assert "(mã 1.001193)" in card["text"].split("\n")[0]
    assert not any(method == "setWebhook" for method, _ in fake.calls)


async def test_database_away_asks_telegram_to_deliver_again(
        rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    first_times = conversations_repo.first_times

    async def away_once(*args: Any, **kwargs: Any) -> Any:
        monkeypatch.setattr(conversations_repo, "first_times", first_times)
        raise OperationalError("INSERT INTO seenevent", {}, ConnectionRefusedError())

    monkeypatch.setattr(conversations_repo, "first_times", away_once)
    update = text_update(7001, 4343, "gks")
    assert await rig.post(update) == 503  # nothing saved, nothing sent
    assert rig.fake.sent(4343) == []
    assert await rig.post(update) == 200  # Telegram's redelivery is answered, once
    [card] = rig.fake.sent(4343)
    assert "(mã 1.001193)" in card["text"].split("\n")[0]


@pytest.mark.parametrize("code", ["1.001193", "1.000656", "2.000575"])
async def test_poster_deep_link_opens_the_procedure(rig: Rig, assistant: Assistant,
                                                    code: str) -> None:
    # Task Q: a citizen scans a poster's Telegram code; Telegram sends "/start <payload>".
    from urllib.parse import parse_qs, urlsplit

    from bot.posters import Links
    from knowledge.i18n import Text

    link = Links(telegram_bot="hatmon_motcua_bot").telegram(code)
    [payload] = parse_qs(urlsplit(link).query)["start"]
    await rig.post(text_update(1, 506, f"/start {payload}"))
    [card] = rig.fake.sent(506)
    assert card["text"].startswith(f"{assistant.short_name(code, Text('vi'))} (mã {code})")
    assert "Lệ phí" in card["text"]
