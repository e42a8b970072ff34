"""Zalo OA end to end: our webhook and aiohttp client against a fake Zalo server."""

import asyncio
import datetime as dt
import json
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.exc import OperationalError
from sqlmodel import select

from bot import jobs
from bot.outbox import Dispatcher, QuietHours
from bot.settings import Settings, ZaloConfig
from bot.zalo import Delivery, ZaloClient, add_zalo_routes
from handlers.applications import Office, set_status
from handlers.conversation import Button, Dialogue, IncomingMessage, Reply
from knowledge.answer import Assistant
from storage import conversations as conversations_repo
from storage.domain import ApplicationStatus
from storage.models import ChannelToken, Conversation, Subscription
from tests.fakes.zalo import NOT_INTERACTED, FakeZalo, now_ms, sign
from tests.samples import CODE
from tests.script import Received, scripted_conversation

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "zalo"
APP_ID = "4321890765123456789"  # as in the fixtures
APP_SECRET = "app-secret-Xy12ab"
OA_SECRET = "oa-secret-Qz34cd"
USER = "246845883529197922"
SECRETS = (APP_SECRET, OA_SECRET, "at-1", "at-2", "at-3", "rt-1", "rt-2", "rt-3")


def environment(base_url: str, **changes: str) -> dict[str, str]:
    return {"ZALO_APP_ID": APP_ID, "ZALO_APP_SECRET": APP_SECRET,
            "ZALO_OA_SECRET_KEY": OA_SECRET, "ZALO_ACCESS_TOKEN": "at-1",
            "ZALO_REFRESH_TOKEN": "rt-1", "ZALO_API_BASE_URL": base_url,
            "ZALO_OAUTH_BASE_URL": base_url, **changes}


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    data["timestamp"] = now_ms()
    return data


def text_event(text: str, *, user: str = USER, msg_id: str | None = None) -> dict[str, Any]:
    event = load("user_send_text")
    event["sender"]["id"] = user
    event["message"] = {"text": text, "msg_id": msg_id or uuid.uuid4().hex}
    return event


def buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    attachment = message.get("attachment")
    return list(attachment["payload"]["buttons"]) if attachment else []


@dataclass
class Rig:
    http: TestClient[web.Request, web.Application]
    fake: FakeZalo
    office: Office
    dialogue: Dialogue
    client: ZaloClient
    base_url: str

    async def post_raw(self, raw: bytes, *, timestamp: str, secret: str = OA_SECRET,
                       headers: dict[str, str] | None = None) -> int:
        signature = sign(raw, app_id=APP_ID, oa_secret_key=secret, timestamp=timestamp)
        response = await self.http.post("/webhook/zalo", data=raw, headers={
            "X-ZEvent-Signature": signature, "Content-Type": "application/json",
            **(headers or {})})
        return response.status

    async def post(self, event: dict[str, Any], *, secret: str = OA_SECRET) -> int:
        raw = json.dumps(event, ensure_ascii=False).encode()
        return await self.post_raw(raw, timestamp=str(event["timestamp"]), secret=secret)

    async def say(self, text: str, *, user: str = USER) -> list[dict[str, Any]]:
        """What the citizen receives for one message."""
        before = len(self.fake.sent(user))
        assert await self.post(text_event(text, user=user)) == 200
        return self.fake.sent(user)[before:]

    async def stored_tokens(self) -> dict[str, ChannelToken]:
        async with self.office.sessions() as s:
            return {t.name: t for t in (await s.exec(select(ChannelToken))).all()}


@pytest.fixture
async def rig(office: Office, assistant: Assistant) -> AsyncIterator[Rig]:
    fake = FakeZalo(APP_ID, APP_SECRET, access_token="at-1", refresh_token="rt-1")
    async with TestServer(fake.app()) as api:
        base_url = str(api.make_url("")).rstrip("/")
        config = ZaloConfig.from_env(environment(base_url))
        assert config is not None
        dialogue = Dialogue(assistant, office, staff_channel=True)
        client = ZaloClient(config, office)
        app = web.Application()
        add_zalo_routes(app, dialogue=dialogue, config=config, client=client)
        try:
            async with TestClient(TestServer(app)) as http:
                yield Rig(http, fake, office, dialogue, client, base_url)
        finally:
            await client.close()


def test_configuration_from_the_environment() -> None:
    assert ZaloConfig.from_env({}) is None  # channel not used
    assert Settings.from_env({}).problems == ()
    half = environment("", ZALO_REFRESH_TOKEN="")
    assert ZaloConfig.from_env(half) is None
    # Half configured: serve refuses to start, and says what is missing.
    [problem] = Settings.from_env(half).problems
    assert "ZALO_REFRESH_TOKEN" in problem
    full = dict(environment(""))
    del full["ZALO_API_BASE_URL"], full["ZALO_OAUTH_BASE_URL"]
    config = ZaloConfig.from_env(full)
    assert config is not None
    assert (config.api_base_url, config.oauth_base_url) == ("https://openapi.zalo.me",
                                                            "https://oauth.zaloapp.com")
    assert not any(secret in repr(config) for secret in SECRETS)


async def test_question_gets_the_procedure_card(rig: Rig) -> None:
    [overview] = await rig.say("gks")
    assert overview["text"].startswith("Làm giấy khai sinh (mã 1.001193)")
    assert len(overview["text"]) <= 2000
    assert [b["payload"] for b in buttons(overview)] == [
        "#a:documents:1.001193", "#a:fee:1.001193", "#a:time:1.001193", "#a:full:1.001193",
        "#staff"]
    card = await rig.say("#a:full:1.001193")
    # The full card is longer than a Zalo message: split between lines.
    assert len(card) == 2 and all(len(m["text"]) <= 2000 for m in card)
    assert "Giấy chứng sinh" in "\n".join(m["text"] for m in card)
    request = rig.fake.requests[0]
    assert request.headers["access_token"] == "at-1"
    assert "authorization" not in request.headers
    assert request.body["recipient"] == {"user_id": USER}


async def test_buttons_arrive_as_templates_and_taps_work(rig: Rig) -> None:
    [welcome] = await rig.say("menu")
    assert welcome["text"].startswith("Xin chào! Tôi là trợ lý của bộ phận một cửa Xã Hát Môn")
    assert [b["payload"] for b in buttons(welcome)] == ["#fields", "#lookup", "#staff",
                                                        "#language", "#announcements:on"]
    fields = await rig.say("#fields")
    # 15 fields, 5 buttons a message: every field one tap away.
    assert [m["text"] for m in fields] == ["Chọn lĩnh vực:", "(2/3)", "(3/3)"]
    civil = next(b for m in fields for b in buttons(m) if b["title"] == "Hộ tịch")
    procedures = await rig.say(civil["payload"])
    assert procedures[0]["text"] == "Chọn thủ tục:"
    assert sum(len(buttons(m)) for m in procedures) == 20
    birth = next(b for m in procedures for b in buttons(m)
                 if b["title"] == "Làm giấy khai sinh")
    card = await rig.say(birth["payload"])
    assert card[0]["text"].startswith("Làm giấy khai sinh (mã 1.001193)")


async def test_status_lookup_then_follow(rig: Rig) -> None:
    [ask_code] = await rig.say("tra cứu")
    assert ask_code["text"] == "Vui lòng nhập mã hồ sơ in trên giấy biên nhận."
    [ask_digits] = await rig.say(CODE)
    assert ask_digits["text"].startswith("Bạn nhập số điện thoại đã khai")
    [status] = await rig.say("5678")
    assert "Trạng thái: đã tiếp nhận" in status["text"]
    assert [b["payload"] for b in buttons(status)] == ["#follow", "#staff", "#menu"]  # overdue
    [followed] = await rig.say("#follow")
    assert followed["text"] == "Bạn sẽ nhận tin nhắn tại đây khi hồ sơ thay đổi trạng thái."
    async with rig.office.sessions() as s:
        subs = (await s.exec(select(Subscription))).all()
    assert [(x.channel, x.recipient) for x in subs] == [("zalo", USER)]


async def test_forged_or_missing_signature_is_refused(rig: Rig) -> None:
    event = text_event("gks")
    assert await rig.post(event, secret="not-the-oa-secret") == 401
    raw = json.dumps(event).encode()
    response = await rig.http.post("/webhook/zalo", data=raw)
    assert response.status == 401
    signed_other = json.dumps(text_event("hello")).encode()
    tampered = rig.http.post("/webhook/zalo", data=raw, headers={"X-ZEvent-Signature": sign(
        signed_other, app_id=APP_ID, oa_secret_key=OA_SECRET, timestamp=event["timestamp"])})
    assert (await tampered).status == 401
    assert rig.fake.requests == []
    async with rig.office.sessions() as s:
        assert (await s.exec(select(Conversation))).all() == []  # nothing acted upon


async def test_a_redelivered_event_is_handled_once(rig: Rig) -> None:
    event = text_event("gks", msg_id="96d3cdf3af150460909")
    assert await rig.post(event) == 200
    assert await rig.post(event) == 200
    assert len(rig.fake.sent()) == 1  # one answer
    other_name = text_event("menu")
    other_name["message"] = {"text": "menu", "mid": "5f1c0e"}  # the id's other name
    assert [await rig.post(other_name) for _ in range(2)] == [200, 200]
    no_id = text_event("menu")
    del no_id["message"]["msg_id"]
    assert [await rig.post(no_id) for _ in range(2)] == [200, 200]
    assert len(rig.fake.sent()) == 3  # "gks" once, "menu" under two ids once, no id twice


async def test_stale_or_future_events_are_refused(rig: Rig) -> None:
    for offset in (-301, 301):
        event = text_event("gks")
        event["timestamp"] = now_ms(offset)
        assert await rig.post(event) == 401
    assert rig.fake.requests == []


async def test_timestamp_may_come_in_a_header(rig: Rig) -> None:
    event = text_event("gks")
    timestamp = event.pop("timestamp")
    raw = json.dumps(event).encode()
    assert await rig.post_raw(raw, timestamp=timestamp,
                              headers={"X-ZEvent-Timestamp": timestamp}) == 200
    assert rig.fake.sent(USER)


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b"\xff\xfe", b"[" * 1000 + b"]" * 1000])
async def test_malformed_json_is_a_bad_request(rig: Rig, raw: bytes) -> None:
    timestamp = now_ms()  # once: signed and sent must be the same millisecond
    assert await rig.post_raw(raw, timestamp=timestamp,
                              headers={"X-ZEvent-Timestamp": timestamp}) == 400
    assert rig.fake.requests == []


async def test_oversized_body_is_refused(rig: Rig) -> None:
    big = b'{"text": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    assert await rig.post_raw(big, timestamp=now_ms()) == 413

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length to trust
        for _ in range(160):
            yield b"x" * 65536

    response = await rig.http.post("/webhook/zalo", data=chunks(),
                                   headers={"X-ZEvent-Signature": "mac=00"})
    assert response.status == 413


async def test_other_events_are_acknowledged_and_ignored(rig: Rig) -> None:
    unknown = load("follow") | {"event_name": "user_reacted_message"}
    for event in (load("follow"), load("user_send_image"), unknown):
        assert await rig.post(event) == 200
    assert rig.fake.requests == []


async def test_expired_token_is_renewed_once_and_both_tokens_kept(rig: Rig) -> None:
    rig.fake.expire()
    assert await rig.say("gks")
    [refresh] = rig.fake.refreshes()
    assert refresh.headers["secret_key"] == APP_SECRET
    assert refresh.body == {"app_id": APP_ID, "refresh_token": "rt-1",
                            "grant_type": "refresh_token"}
    sends = [r.headers["access_token"] for r in rig.fake.requests if r.path.endswith("/cs")]
    assert sends == ["at-1", "at-2"]  # refused once, then sent with the new one
    stored = await rig.stored_tokens()
    assert (stored["access_token"].value, stored["refresh_token"].value) == ("at-2", "rt-2")
    expires_at = stored["access_token"].expires_at
    assert expires_at is not None
    assert abs(expires_at - dt.datetime.now(dt.UTC) - dt.timedelta(seconds=90000)) < dt.timedelta(
        minutes=1)

    # Later, in a restarted process: the stored tokens are used, not the environment's.
    config = ZaloConfig.from_env(environment(rig.base_url))
    assert config is not None
    restarted = ZaloClient(config, rig.office)
    try:
        assert await restarted.send(USER, Reply("Hồ sơ đã có kết quả")) is Delivery.SENT
        assert rig.fake.requests[-1].headers["access_token"] == "at-2"
        rig.fake.expire()
        assert await restarted.send(USER, Reply("Hồ sơ đã có kết quả")) is Delivery.SENT
    finally:
        await restarted.close()
    assert [r.body["refresh_token"] for r in rig.fake.refreshes()] == ["rt-1", "rt-2"]
    stored = await rig.stored_tokens()
    assert (stored["access_token"].value, stored["refresh_token"].value) == ("at-3", "rt-3")


async def test_concurrent_sends_renew_the_token_once(rig: Rig) -> None:
    users = [f"90{i}" for i in range(5)]
    for user in users:
        await rig.dialogue.handle(IncomingMessage("zalo", user, text="xin chào"))
    rig.fake.expire()
    notice = Reply("Thông báo", [Button("Menu", "menu")])
    results = await asyncio.gather(*(rig.client.send(u, notice) for u in users))
    assert results == [Delivery.SENT] * len(users)
    assert len(rig.fake.refreshes()) == 1
    assert {m["recipient"]["user_id"] for m in (r.body for r in rig.fake.requests
                                                if r.accepted)} == set(users)


async def test_a_revoked_refresh_token_stops_sending_until_reseeded(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    rig.fake.expire()
    assert await rig.say("gks")  # stores at-2 / rt-2
    rig.fake.refresh_token = "rt-reauthorised"  # the OA was re-authorised: rt-2 is dead
    rig.fake.expire()
    assert await rig.say("gks") == []
    assert "re-authorise the OA" in caplog.text
    # The operator puts the new refresh token in the environment and restarts.
    config = ZaloConfig.from_env(environment(rig.base_url,
                                             ZALO_REFRESH_TOKEN="rt-reauthorised"))
    assert config is not None
    restarted = ZaloClient(config, rig.office)
    try:
        assert await restarted.send(USER, Reply("Xin lỗi vì sự gián đoạn")) is Delivery.SENT
    finally:
        await restarted.close()
    stored = await rig.stored_tokens()
    assert stored["refresh_token"].value == rig.fake.refresh_token


async def test_secrets_stay_out_of_the_logs(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)  # (a database driver's DEBUG output shows every parameter)
    caplog.set_level(logging.DEBUG, logger="bot.zalo")
    rig.fake.expire()
    await rig.say("gks")
    rig.fake.refresh_token = "rt-unknown"
    rig.fake.expire()
    await rig.say("gks")
    rig.fake.failing_users[USER] = NOT_INTERACTED
    await rig.say("gks")
    assert caplog.records
    assert not any(secret in caplog.text for secret in SECRETS)


async def test_a_refusing_user_is_logged_and_zalo_still_gets_200(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    rig.fake.failing_users[USER] = NOT_INTERACTED
    assert await rig.say("gks") == []
    assert len(rig.fake.requests) == 1  # given up: no refresh, no retry, no second part
    assert "-230" in caplog.text


async def test_zalo_unreachable_or_failing_never_gives_500(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig.fake.down = True
    assert await rig.say("gks") == []
    assert await rig.client.send(USER, Reply("Thông báo")) is Delivery.FAILED

    async def broken(message: IncomingMessage) -> list[Reply]:
        raise RuntimeError("database went away")

    monkeypatch.setattr(rig.dialogue, "handle", broken)
    assert await rig.post(text_event("gks")) == 200


async def test_nothing_is_sent_outside_the_48_hour_window(rig: Rig) -> None:
    now = dt.datetime.now(dt.UTC)
    await rig.dialogue.handle(IncomingMessage("zalo", "old", text="gks"),
                              now=now - dt.timedelta(hours=49))
    await rig.dialogue.handle(IncomingMessage("zalo", "recent", text="gks"),
                              now=now - dt.timedelta(hours=47))
    notice = Reply("Hồ sơ của bạn đã có kết quả.")
    assert await rig.client.send("old", notice) is Delivery.OUTSIDE_WINDOW
    assert await rig.client.send("never-wrote", notice) is Delivery.OUTSIDE_WINDOW
    assert rig.fake.requests == []
    assert await rig.client.send("recent", notice) is Delivery.SENT
    assert rig.fake.sent() == [{"text": "Hồ sơ của bạn đã có kết quả."}]


async def test_at_most_eight_messages_until_the_citizen_writes_again(rig: Rig) -> None:
    await rig.dialogue.handle(IncomingMessage("zalo", "u8", text="/start"))
    notice = Reply("Hồ sơ của bạn đã có kết quả.")
    for _ in range(8):
        assert await rig.client.send("u8", notice) is Delivery.SENT
    assert await rig.client.send("u8", notice) is Delivery.OVER_QUOTA
    assert len(rig.fake.sent()) == 8
    await rig.dialogue.handle(IncomingMessage("zalo", "u8", text="cảm ơn"))
    assert await rig.client.send("u8", notice) is Delivery.SENT


async def test_followers_and_staff_replies_reach_zalo_through_the_outbox(rig: Rig) -> None:
    await rig.say("tra cứu")
    await rig.say(CODE)
    await rig.say("5678")
    await rig.say("#follow")
    before = len(rig.fake.sent(USER))
    await set_status(rig.office, receipt_code=CODE, status=ApplicationStatus.RESULT_READY,
                     actor="staff:test", now=dt.datetime.now(dt.UTC))
    await rig.dialogue.from_staff(channel="zalo", user_id=USER, text="Mời anh lên nhận kết quả.",
                                  reply_id="1")
    dispatcher = Dispatcher(rig.office, {"zalo": rig.client.notify}, quiet=QuietHours.parse(""))
    assert await dispatcher.run_once() == 2
    notices = [m["text"] for m in rig.fake.sent(USER)[before:]]
    assert notices[0].startswith("Cập nhật hồ sơ của bạn:")
    assert notices[1] == "Mời anh lên nhận kết quả."
    rig.fake.down = True  # Zalo unreachable: kept for the next round
    await rig.dialogue.from_staff(channel="zalo", user_id=USER, text="Anh nhớ mang CCCD.",
                                  reply_id="2")
    assert await dispatcher.run_once() == 0


async def test_scripted_conversation(rig: Rig) -> None:
    async def send(text: str = "", payload: str = "") -> Received:
        got = await rig.say(f"#{payload}" if payload else text, user="script-user")
        return Received([m["text"] for m in got if m.get("text")],
                        [(b["title"], b["payload"].removeprefix("#"))
                         for m in got for b in buttons(m)])

    await scripted_conversation(send)


async def test_an_event_the_database_could_not_take_is_asked_for_again(
        rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    first_times = conversations_repo.first_times

    async def away_once(*args: Any, **kwargs: Any) -> Any:
        monkeypatch.setattr(conversations_repo, "first_times", first_times)
        raise OperationalError("INSERT INTO seenevent", {}, ConnectionRefusedError())

    monkeypatch.setattr(conversations_repo, "first_times", away_once)
    event = text_event("gks", msg_id="away-1")
    assert await rig.post(event) == 503  # nothing saved, nothing sent: Zalo may send it again
    assert rig.fake.sent(USER) == []
    assert await rig.post(event) == 200
    assert await rig.post(event) == 200  # and once more: answered once
    [card] = rig.fake.sent(USER)
    assert "(mã 1.001193)" in card["text"]


async def test_a_reply_zalo_could_not_take_is_sent_later_by_the_outbox(rig: Rig) -> None:
    rig.fake.down = True
    assert await rig.post(text_event("/start", msg_id="down-1")) == 200
    rig.fake.down = False
    assert rig.fake.sent(USER) == []
    outbox = Dispatcher(rig.office, {"zalo": rig.client.notify}, quiet=QuietHours.parse(""))
    assert await outbox.run_once(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2)) == 1
    [welcome] = rig.fake.sent(USER)
    assert welcome["text"].startswith("Xin chào!")


async def test_the_token_job_renews_the_access_token_before_it_expires(rig: Rig) -> None:
    job = jobs.zalo_token_job(rig.client)
    now = dt.datetime.now(dt.UTC)
    # At the first run the stored token's expiry is unknown: it is renewed and stored.
    assert await jobs.run_job(rig.office, job, now)
    tokens = await rig.stored_tokens()
    assert (tokens["access_token"].value, tokens["refresh_token"].value) == ("at-2", "rt-2")
    assert len(rig.fake.refreshes()) == 1
    # Half an hour later it is still valid for a day: left alone.
    assert await jobs.run_job(rig.office, job, now + dt.timedelta(minutes=30))
    assert len(rig.fake.refreshes()) == 1
    # An hour before it expires: renewed, the new single-use refresh token kept.
    expiry = tokens["access_token"].expires_at
    assert expiry is not None
    assert await jobs.run_job(rig.office, job, expiry - dt.timedelta(hours=1))
    tokens = await rig.stored_tokens()
    assert (tokens["access_token"].value, tokens["refresh_token"].value) == ("at-3", "rt-3")
    assert len(rig.fake.refreshes()) == 2
