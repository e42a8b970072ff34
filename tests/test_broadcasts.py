"""Staff broadcasts and citizens' announcement subscriptions (SQLite and PostgreSQL)."""

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from alembic import command
from sqlalchemy import text
from sqlmodel import col, select
from telegram import Bot

from bot import jobs
from bot.outbox import Dispatcher, Outcome, QuietHours
from bot.runtime import create_api_key
from bot.settings import TelegramConfig
from bot.telegram import add_telegram_routes, build_application, chat_sender, senders
from bot.telegram_request import AiohttpRequest
from bot.web import SESSION_HEADER, create_app
from bot.zalo import zalo_messages
from handlers import broadcasts
from handlers.applications import Office
from handlers.broadcasts import STOP_ANNOUNCEMENTS, BroadcastError
from handlers.conversation import Dialogue, IncomingMessage, Reply
from handlers.messages import Button, queued_reply
from knowledge.answer import Assistant
from storage import applications as repo
from storage.db import alembic_config, make_engine, session_scope
from storage.models import AnnouncementSubscriber, Broadcast, Notification
from tests.conftest import POSTGRES, admin
from tests.fakes.telegram import FakeTelegram, button_update, text_update
from tests.samples import CODE

ROOT = Path(__file__).resolve().parents[1]
NOW = dt.datetime(2026, 12, 7, 1, 0, tzinfo=dt.UTC)


@pytest.fixture
def dialogue(office: Office, assistant: Assistant) -> Dialogue:
    return Dialogue(assistant, office, staff_channel=True)


async def say(dialogue: Dialogue, text: str, *, channel: str = "telegram", user: str = "42",
              payload: str = "", lang: str | None = None) -> list[Reply]:
    return await dialogue.handle(IncomingMessage(channel, user, text=text, payload=payload,
                                                 lang=lang), now=NOW)  # type: ignore[arg-type]


async def consents(office: Office) -> dict[tuple[str, str], AnnouncementSubscriber]:
    async with session_scope(office.sessions) as s:
        return {(c.channel, c.recipient): c
                for c in (await s.exec(select(AnnouncementSubscriber))).all()}


async def outbox(office: Office) -> list[Notification]:
    async with session_scope(office.sessions) as s:
        return list((await s.exec(select(Notification).where(
            col(Notification.idempotency_key).startswith("broadcast:")))).all())


async def test_citizens_subscribe_and_unsubscribe_in_their_words(dialogue: Dialogue,
                                                                 office: Office) -> None:
    [on] = await say(dialogue, "cho em nhận thông báo của xã với ạ")
    assert on.text.startswith("Bạn sẽ nhận các thông báo của Xã Hát Môn tại đây.")
    assert [b.payload for b in on.buttons] == [STOP_ANNOUNCEMENTS]
    [again] = await say(dialogue, "dang ky nhan tin")  # typed without diacritics
    assert again.text.startswith("Bạn đã đăng ký nhận thông báo")
    [web] = await say(dialogue, "đăng ký nhận tin thôn Đông 3", channel="web", user="w1")
    assert web.intent == "announcements_on"
    recorded = await consents(office)
    assert recorded[("web", "w1")].hamlet == "thon dong 3"
    assert recorded[("telegram", "42")].consented_at == NOW
    assert recorded[("telegram", "42")].lang == "vi"
    [off] = await say(dialogue, "huy nhan thong bao")
    assert off.text == "Bạn sẽ không nhận thông báo của Xã Hát Môn nữa."
    withdrawn = (await consents(office))[("telegram", "42")]
    assert withdrawn.withdrawn_at == NOW  # the consent record stays, dated
    [back] = await say(dialogue, "", payload=off.buttons[0].payload)
    assert back.intent == "announcements_on"


async def test_stopping_announcements_after_a_lookup_still_unfollows_the_application(
        dialogue: Dialogue) -> None:
    await say(dialogue, f"tra cứu hồ sơ {CODE}")
    await say(dialogue, "0912345678")
    await say(dialogue, "theo dõi")
    [reply] = await say(dialogue, "hủy nhận thông báo")
    assert reply.intent == "unfollow"


async def subscribe_some(dialogue: Dialogue) -> None:
    await say(dialogue, "nhận thông báo của xã", user="1")
    await say(dialogue, "nhận thông báo của xã thôn 3", user="2")
    await say(dialogue, "receive announcements please", user="3", channel="web", lang="en")
    await say(dialogue, "nhận thông báo của xã", user="4", channel="zalo")
    await say(dialogue, "nhận thông báo của xã", user="5")
    await say(dialogue, "huỷ nhận thông báo", user="5")


async def test_a_scheduled_broadcast_goes_out_at_its_time_to_its_audience(
        dialogue: Dialogue, office: Office) -> None:
    await subscribe_some(dialogue)
    preview = await broadcasts.create(office, text="Thứ Bảy tiêm chủng tại trạm y tế.",
                                      link="https://hatmon.example/tiem", created_by="test",
                                      now=NOW)
    assert preview.recipients == 4
    assert preview.text.startswith("Thông báo của Xã Hát Môn:")
    assert await outbox(office) == []  # a draft sends nothing
    at = NOW + dt.timedelta(hours=2)
    scheduled = await broadcasts.schedule(office, preview.broadcast.id or 0, at=at, now=NOW)
    assert scheduled.status == "scheduled"
    job = jobs.broadcasts_job(office)
    assert await jobs.run_job(office, job, now=at - dt.timedelta(minutes=1))
    assert await outbox(office) == []  # not yet
    assert await jobs.run_job(office, job, now=at)
    queued = await outbox(office)
    assert sorted((n.channel, n.recipient) for n in queued) == [
        ("telegram", "1"), ("telegram", "2"), ("web", "3"), ("zalo", "4")]
    by = {n.recipient: n for n in queued}
    assert by["3"].text.startswith("Announcement from Xã Hát Môn:")  # in their language
    assert "https://hatmon.example/tiem" in by["1"].text
    assert by["1"].idempotency_key == f"broadcast:{scheduled.id}:telegram:1"
    assert not await jobs.run_job(office, job, now=at)  # the slot ran already
    assert await jobs.run_job(office, job, now=at + dt.timedelta(minutes=1))
    assert len(await outbox(office)) == 4  # queued once
    async with session_scope(office.sessions) as s:
        await repo.mark_sent(s, [by["1"].id or 0, by["4"].id or 0], at=at)
        await repo.take_for_recipient(s, channel="web", recipient="3", now=at)  # the inbox
    broadcast, report = await broadcasts.status(office, scheduled.id or 0)
    assert broadcast.status == "queued" and broadcast.recipients == 4
    total = report.total
    assert (total.queued, total.sent, total.pending) == (4, 3, 1)
    assert total.sent + total.pending + total.failed + total.unreachable \
        + total.undeliverable == total.queued
    assert {c: r.sent for c, r in report.channels.items()} == {
        "telegram": 1, "web": 1, "zalo": 1}


async def test_audiences_hamlet_language_and_followers(dialogue: Dialogue,
                                                       office: Office) -> None:
    await subscribe_some(dialogue)
    await say(dialogue, f"tra cứu hồ sơ {CODE}", user="9")
    await say(dialogue, "0912345678", user="9")
    await say(dialogue, "theo dõi", user="9")

    async def count(audience: str, value: str) -> int:
        return (await broadcasts.create(office, text="x", created_by="t", audience=audience,
                                        value=value)).recipients
    assert await count("hamlet", "Thôn 3") == 1
    assert await count("lang", "en") == 1
    assert await count("field", "Hộ tịch") == 1
    assert await count("procedure", "1.001193") == 1
    assert await count("procedure", "1.000000") == 0
    preview = await broadcasts.create(office, text="Họp thôn 3", created_by="t",
                                      audience="hamlet", value="thôn 3")
    await broadcasts.schedule(office, preview.broadcast.id or 0, now=NOW)  # now
    assert [n.recipient for n in await outbox(office)] == ["2"]


async def test_cancelling_stops_what_is_not_yet_sent(dialogue: Dialogue, office: Office) -> None:
    await subscribe_some(dialogue)
    later = await broadcasts.create(office, text="Mất điện", created_by="t")
    assert later.broadcast.id is not None
    await broadcasts.schedule(office, later.broadcast.id, at=NOW + dt.timedelta(days=1),
                              now=NOW)
    assert await broadcasts.cancel(office, later.broadcast.id, now=NOW) == 0
    assert await broadcasts.send_due(office, now=NOW + dt.timedelta(days=2)) == []
    sent = await broadcasts.create(office, text="Nghỉ lễ", created_by="t")
    assert sent.broadcast.id is not None
    await broadcasts.schedule(office, sent.broadcast.id, now=NOW)
    first = (await outbox(office))[0]
    async with session_scope(office.sessions) as s:
        await repo.mark_sent(s, [first.id or 0], at=NOW)
    assert await broadcasts.cancel(office, sent.broadcast.id, now=NOW) == 3
    _, report = await broadcasts.status(office, sent.broadcast.id)
    assert (report.total.queued, report.total.sent, report.total.pending) == (1, 1, 0)
    with pytest.raises(BroadcastError):
        await broadcasts.schedule(office, sent.broadcast.id, now=NOW)


async def test_invalid_broadcasts_are_refused(office: Office) -> None:
    for kwargs in ({"text": " "}, {"text": "x", "link": "javascript:alert(1)"},
                   {"text": "x", "audience": "everyone"}, {"text": "x", "audience": "hamlet"},
                   {"text": "x" * 5000}):
        with pytest.raises(BroadcastError):
            await broadcasts.create(office, created_by="t", **kwargs)  # type: ignore[arg-type]


def cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url, "MOTCUA_COMMUNE": "hat-mon"}
    return subprocess.run([sys.executable, "-m", "bot", "broadcast", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


async def test_the_cli_creates_sends_reports_and_cancels(dialogue: Dialogue, office: Office,
                                                         database_url: str) -> None:
    await subscribe_some(dialogue)
    created = cli(database_url, "create", "Lịch tiếp dân thứ Hai", "--audience", "hamlet",
                  "--value", "thôn 3")
    assert created.returncode == 0, created.stderr
    assert created.stdout.startswith("Thông báo của Xã Hát Môn:")
    assert "draft, 1 recipient(s)" in created.stderr
    broadcast_id = created.stderr.split()[1].rstrip(":")
    sent = cli(database_url, "send", broadcast_id)
    assert sent.returncode == 0, sent.stderr
    assert "queued (1 message(s))" in sent.stdout
    status = cli(database_url, "status", broadcast_id, "--json")
    report = json.loads(status.stdout)
    assert report["channels"]["total"]["queued"] == 1
    assert report["channels"]["telegram"]["pending"] == 1
    later = cli(database_url, "create", "Mất điện chiều mai")
    later_id = later.stderr.split()[1].rstrip(":")
    assert "at 2099-01-02 08:00" in cli(database_url, "send", later_id, "--at",
                                        "2099-01-02 08:00").stdout
    assert "cancelled" in cli(database_url, "cancel", later_id).stdout
    refused = cli(database_url, "send", later_id)
    assert refused.returncode == 1 and "is cancelled" in refused.stderr
    assert cli(database_url, "status", "999").returncode == 1


async def test_the_api_creates_previews_sends_reports_and_cancels(
        dialogue: Dialogue, office: Office, assistant: Assistant) -> None:
    await subscribe_some(dialogue)
    key = {"Authorization": f"Bearer {await create_api_key(office, 'mot-cua')}"}
    async with TestClient(TestServer(create_app(assistant, office))) as http:
        assert (await http.post("/api/v1/broadcasts", json={"text": "x"})).status == 401
        bad = await http.post("/api/v1/broadcasts", json={"text": "x", "audience": "lang",
                                                         "value": "fr"}, headers=key)
        assert bad.status == 422
        made = await http.post("/api/v1/broadcasts", headers=key, json={
            "text": "Ngày 2/9 bộ phận một cửa nghỉ lễ.", "audience": "lang", "value": "vi"})
        assert made.status == 201
        draft = await made.json()
        assert (draft["status"], draft["recipients"]) == ("draft", 3)
        assert draft["preview"].startswith("Thông báo của Xã Hát Môn:")
        assert await outbox(office) == []
        sent = await http.post(f"/api/v1/broadcasts/{draft['id']}/send", headers=key)
        assert (await sent.json())["status"] == "queued"
        again = await http.post(f"/api/v1/broadcasts/{draft['id']}/send", headers=key)
        assert again.status == 409
        report = await (await http.get(f"/api/v1/broadcasts/{draft['id']}",
                                       headers=key)).json()
        assert report["channels"]["total"]["queued"] == 3
        assert report["channels"]["zalo"]["pending"] == 1
        cancelled = await http.post(f"/api/v1/broadcasts/{draft['id']}/cancel", headers=key)
        assert (await cancelled.json())["stopped"] == 3
        assert (await http.get("/api/v1/broadcasts/12345", headers=key)).status == 404
        at = await http.post(f"/api/v1/broadcasts/{draft['id']}/send", headers=key,
                             json={"at": "tomorrow"})
        assert at.status == 422, await at.text()
    assert await outbox(office) == []


STAFF_CHAT = -100500
TOKEN, SECRET = "123456:TEST-token", "s3cret_token-1"


async def test_thongbao_in_the_staff_chat_previews_then_sends_on_confirmation(
        office: Office, assistant: Assistant) -> None:
    fake = FakeTelegram(TOKEN)
    async with TestServer(fake.app()) as api:
        config = TelegramConfig(token=TOKEN, webhook_secret=SECRET,
                                api_base_url=str(api.make_url("")).rstrip("/"),
                                staff_chat_id=str(STAFF_CHAT))
        application = build_application(config, Dialogue(assistant, office, staff_channel=True))
        app = web.Application()
        add_telegram_routes(app, application, config)
        outbox_ = Dispatcher(office, senders(application, config),
                             quiet=QuietHours(dt.time(0), dt.time(0)))
        async with TestClient(TestServer(app)) as http:
            async def post(update: dict[str, object]) -> None:
                response = await http.post("/webhook/telegram", json=update, headers={
                    "X-Telegram-Bot-Api-Secret-Token": SECRET})
                assert response.status == 200

            await post(text_update(1, 601, "nhan thong bao cua xa"))
            await post(text_update(2, 602, "Đăng ký nhận tin của xã ạ"))
            await post(text_update(3, 603, "làm giấy khai sinh cần gì"))  # not subscribed
            await post(text_update(4, STAFF_CHAT, "/thongbao"))
            assert fake.sent(STAFF_CHAT)[-1]["text"].startswith("Bạn viết nội dung thông báo")
            await post(text_update(5, STAFF_CHAT, "/thongbao Thứ Bảy 12/12 tiêm chủng."))
            preview = fake.sent(STAFF_CHAT)[-1]
            assert preview["text"].startswith("Xem trước thông báo số ")
            assert "sẽ gửi tới 2 người đăng ký" in preview["text"]
            assert preview["text"].endswith(
                "Thông báo của Xã Hát Môn:\n\nThứ Bảy 12/12 tiêm chủng.")
            buttons = [b["callback_data"] for row in preview["reply_markup"]["inline_keyboard"]
                       for b in row]
            assert await outbox(office) == []  # nothing before the confirmation
            await post(button_update(6, STAFF_CHAT, buttons[0]))
            assert fake.sent(STAFF_CHAT)[-1]["text"].endswith("đang được gửi tới 2 người.")
            await outbox_.run_once()
            for chat in (601, 602):
                assert fake.sent(chat)[-1]["text"].endswith("Thứ Bảy 12/12 tiêm chủng.")
            assert "tiêm chủng" not in fake.sent(603)[-1]["text"]
            await post(button_update(7, STAFF_CHAT, buttons[1]))  # stops nothing: all were sent
            assert fake.sent(STAFF_CHAT)[-1]["text"].startswith("Đã huỷ thông báo")
            number = int(buttons[0].rsplit(":", 1)[1])
            _, report = await broadcasts.status(office, number)
            assert (report.total.queued, report.total.sent) == (2, 2)
            # "gửi" typed in reply to a preview confirms it too.
            await post(text_update(8, STAFF_CHAT, "/thongbao Mất điện chiều nay."))
            second = fake.sent(STAFF_CHAT)[-1]
            reply = text_update(9, STAFF_CHAT, "gửi")
            reply["message"]["reply_to_message"] = {
                "message_id": 1, "date": 1, "chat": {"id": STAFF_CHAT, "type": "supergroup"},
                "text": second["text"]}
            await post(reply)
            assert fake.sent(STAFF_CHAT)[-1]["text"].endswith("đang được gửi tới 2 người.")


async def test_the_web_chat_subscribes_and_gets_announcements_in_its_inbox(
        office: Office, assistant: Assistant) -> None:
    async with TestClient(TestServer(create_app(assistant, office))) as http:
        answer = await (await http.post("/api/chat", json={"text": "đăng ký nhận tin"})).json()
        assert answer["replies"][0]["text"].startswith("Bạn sẽ nhận các thông báo")
        mine = {SESSION_HEADER: answer["session"]}
        made = await broadcasts.create(office, text="Thứ Hai nghỉ bù.", created_by="t")
        assert made.recipients == 1
        await broadcasts.schedule(office, made.broadcast.id or 0)
        inbox = await (await http.get("/api/chat/inbox", headers=mine)).json()
        assert [r["text"] for r in inbox["replies"]] == [
            "Thông báo của Xã Hát Môn:\n\nThứ Hai nghỉ bù."]
        await http.post("/api/chat", json={"text": "huỷ nhận thông báo"}, headers=mine)
        assert (await broadcasts.create(office, text="x", created_by="t")).recipients == 0


# Broadcast images, outbox rows keyed by broadcast id (task B).
IMAGE = "https://hatmon.example/anh/tiem-chung.jpg"


async def test_a_broadcasts_image_and_id_go_with_each_of_its_messages(
        dialogue: Dialogue, office: Office) -> None:
    await subscribe_some(dialogue)
    made = await broadcasts.create(office, text="Thứ Bảy tiêm chủng.", image=IMAGE,
                                   created_by="t")
    plain = await broadcasts.create(office, text="Thứ Hai nghỉ bù.", created_by="t")
    assert made.broadcast.image == IMAGE
    for draft in (made, plain):
        await broadcasts.schedule(office, draft.broadcast.id or 0, now=NOW)
    rows = await outbox(office)
    assert {(n.broadcast_id, n.image) for n in rows} == {
        (made.broadcast.id, IMAGE), (plain.broadcast.id, None)}
    assert len(rows) == 8
    # The report and cancel find a broadcast's rows by its id, and only them.
    assert await broadcasts.cancel(office, made.broadcast.id or 0, now=NOW) == 4
    _, report = await broadcasts.status(office, plain.broadcast.id or 0)
    assert (report.total.queued, report.total.pending) == (4, 4)


@pytest.mark.parametrize("image", [
    "http://hatmon.example/a.jpg", "https://", "https:// a.jpg", "javascript:alert(1)",
    "https://user:pw@hatmon.example/a.jpg", "https://hatmon.example/" + "a" * 2030,
    "ftp://hatmon.example/a.jpg"])
async def test_an_image_must_be_an_https_address_of_at_most_2048_characters(
        office: Office, image: str) -> None:
    with pytest.raises(BroadcastError, match="https://"):
        await broadcasts.create(office, text="x", image=image, created_by="t")


async def test_telegram_sends_the_image_as_a_photo_captioned_with_the_text(
        dialogue: Dialogue, office: Office) -> None:
    await subscribe_some(dialogue)
    made = await broadcasts.create(office, text="Thứ Bảy tiêm chủng.", image=IMAGE,
                                   created_by="t")
    await broadcasts.schedule(office, made.broadcast.id or 0, now=NOW)
    [row] = [n for n in await outbox(office) if n.recipient == "1"]
    fake = FakeTelegram(TOKEN)
    async with TestServer(fake.app()) as api:
        bot = Bot(TOKEN, base_url=f"{str(api.make_url('')).rstrip('/')}/bot",
                  request=AiohttpRequest())
        async with bot:
            send = chat_sender(bot)
            # The outbox sends it: text, buttons and image from the row.
            await Dispatcher(office, {"telegram": send}, quiet=QuietHours.parse("")).run_once(
                row.next_attempt_at)
            async with office.sessions() as s:
                sent = await s.get(Notification, row.id)
            assert sent is not None and sent.sent_at is not None
            message = queued_reply(row.text, row.buttons, row.image)
            [photo] = fake.photos(1)
            assert photo["photo"] == IMAGE
            assert photo["caption"] == "Thông báo của Xã Hát Môn:\n\nThứ Bảy tiêm chủng."
            assert photo["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == \
                STOP_ANNOUNCEMENTS
            assert fake.sent(1) == []  # one message: the photo and its caption
            # Longer than a caption (1,024): the photo, then the text with the buttons.
            long = Reply("Lịch tiêm chủng." + " Mang theo sổ tiêm." * 60, message.buttons,
                         image=IMAGE)
            assert await send("20", long) is Outcome.SENT
            [photo] = fake.photos(20)
            assert "caption" not in photo and "reply_markup" not in photo
            [text] = fake.sent(20)
            assert text["text"] == long.text and "reply_markup" in text
            # An image Telegram cannot fetch does not hold the announcement back.
            fake.bad_photos.add("https://hatmon.example/mat.jpg")
            assert await send("30", Reply("Mất điện chiều nay.",
                                          image="https://hatmon.example/mat.jpg")) is Outcome.SENT
            assert fake.photos(30) == [] and fake.sent(30)[0]["text"] == "Mất điện chiều nay."
            fake.blocked.add(40)
            assert await send("40", message) is Outcome.BLOCKED


def test_zalo_gets_the_image_as_a_media_template_then_the_buttons() -> None:
    reply = Reply("Thông báo của Xã Hát Môn:\n\nThứ Bảy tiêm chủng.",
                  [Button("Ngừng nhận thông báo", STOP_ANNOUNCEMENTS)], image=IMAGE)
    photo, buttons = zalo_messages(reply)
    assert photo == {"text": reply.text, "attachment": {"type": "template", "payload": {
        "template_type": "media", "elements": [{"media_type": "image", "url": IMAGE}]}}}
    assert buttons["attachment"]["payload"]["buttons"][0]["payload"] == f"#{STOP_ANNOUNCEMENTS}"
    assert buttons["text"] == "…"  # a media message takes no buttons: Zalo needs text above
    assert [m["text"] for m in zalo_messages(Reply("x" * 2500, image=IMAGE))] == \
        ["x" * 2000, "x" * 500]
    assert "template_type" not in str(zalo_messages(Reply("Không có ảnh.")))


async def test_the_cli_and_the_api_take_an_image(dialogue: Dialogue, office: Office,
                                                 assistant: Assistant,
                                                 database_url: str) -> None:
    await subscribe_some(dialogue)
    created = cli(database_url, "create", "Lịch tiêm chủng", "--image", IMAGE)
    assert created.returncode == 0, created.stderr
    refused = cli(database_url, "create", "Lịch tiêm chủng", "--image", "http://x.example/a")
    assert refused.returncode == 1 and "https://" in refused.stderr
    key = {"Authorization": f"Bearer {await create_api_key(office, 'mot-cua')}"}
    async with TestClient(TestServer(create_app(assistant, office))) as http:
        made = await http.post("/api/v1/broadcasts", headers=key,
                               json={"text": "Tiêm chủng", "image": IMAGE})
        assert made.status == 201 and (await made.json())["image"] == IMAGE
        for bad in ("http://x.example/a.jpg", 5):
            answer = await http.post("/api/v1/broadcasts", headers=key,
                                     json={"text": "Tiêm chủng", "image": bad})
            assert answer.status == 422
    assert await outbox(office) == []  # drafts send nothing
    async with session_scope(office.sessions) as s:
        images = (await s.exec(select(Broadcast.image).order_by(col(Broadcast.id)))).all()
    assert list(images) == [IMAGE, IMAGE]


async def test_the_web_chat_shows_a_replys_image(office: Office, assistant: Assistant) -> None:
    async with TestClient(TestServer(create_app(assistant, office))) as http:
        answer = await http.post("/api/chat", json={"text": "xin chào"})
        assert all(r["image"] == "" for r in (await answer.json())["replies"])
        assert "img-src 'self' data: https:;" in answer.headers["Content-Security-Policy"]
    script = (ROOT / "bot" / "static" / "chat.js").read_text(encoding="utf-8")
    assert 'document.createElement("img")' in script and "reply.image" in script


@pytest.fixture(params=["sqlite", "postgresql"])
async def empty_database(request: pytest.FixtureRequest,
                         tmp_path: Path) -> AsyncIterator[str]:
    """A database with no schema at all, dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.sqlite3'}"
        return
    name = f"motcua_test_{uuid.uuid4().hex[:12]}"
    await admin(f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES}/{name}"
    finally:
        await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_rows_queued_before_the_migration_get_their_broadcast_id(
        empty_database: str) -> None:
    async def migrate(action: str, revision: str) -> None:
        await asyncio.to_thread(getattr(command, action), alembic_config(empty_database),
                                revision)

    await migrate("upgrade", "0009")
    engine = make_engine(empty_database)
    try:
        async with engine.begin() as db:
            await db.execute(text("INSERT INTO commune (id, slug, name) VALUES (1, 'x', 'X')"))
            for n in (1, 12):
                await db.execute(text(
                    "INSERT INTO broadcast (id, commune_id, text, link, audience, "
                    "audience_value, created_by, created_at, status, recipients) VALUES "
                    "(:n, 1, 'x', '', 'all', '', 't', :at, 'queued', 1)"), {"n": n, "at": NOW})
            for key, kind in (("broadcast:1:telegram:5", "broadcast"),
                              ("broadcast:12:telegram:5", "broadcast"),
                              ("reply:telegram:9:0", "reply")):
                await db.execute(text(
                    "INSERT INTO notification (commune_id, channel, recipient, text, "
                    "idempotency_key, created_at, attempts, kind, next_attempt_at) VALUES "
                    "(1, 'telegram', '5', 'x', :key, :at, 0, :kind, :at)"),
                    {"key": key, "kind": kind, "at": NOW})
        await migrate("upgrade", "0010")
        async with engine.connect() as db:
            rows = (await db.execute(text("SELECT idempotency_key, broadcast_id, image FROM "
                                          "notification ORDER BY id"))).all()
            assert [tuple(r) for r in rows] == [("broadcast:1:telegram:5", 1, None),
                                                ("broadcast:12:telegram:5", 12, None),
                                                ("reply:telegram:9:0", None, None)]
            images = (await db.execute(text("SELECT image FROM broadcast"))).scalars().all()
            assert list(images) == ["", ""]
        await migrate("downgrade", "0009")
        await migrate("upgrade", "0010")
    finally:
        await engine.dispose()


# Announcements from the main menu (task P).
async def test_the_menus_button_subscribes_on_every_channel(dialogue: Dialogue,
                                                             office: Office) -> None:
    for channel in ("telegram", "zalo", "web"):
        [menu] = await say(dialogue, "menu", channel=channel, user="m1")
        [on] = await say(dialogue, "", channel=channel, user="m1",
                         payload=menu.buttons[-1].payload)
        assert on.intent == "announcements_on"
    made = await broadcasts.create(office, text="Thứ Bảy tiêm chủng.", created_by="t")
    assert made.recipients == 3
    [menu] = await say(dialogue, "menu", channel="zalo", user="m1")
    assert menu.buttons[-1].title == "Huỷ nhận thông báo"
    [off] = await say(dialogue, "", channel="zalo", user="m1", payload=menu.buttons[-1].payload)
    assert off.intent == "announcements_off"
    assert (await broadcasts.create(office, text="x", created_by="t")).recipients == 2
    assert (await consents(office))[("zalo", "m1")].withdrawn_at == NOW
