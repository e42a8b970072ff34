"""Two communes in one deployment, Hát Môn and Phúc Thọ (its profile from
``tests/data/communes``, an operator's folder), as the composition root builds them
(``bot.app.build``) on SQLite and PostgreSQL: each with its own Telegram bot (one fake Bot API
for both, as Telegram is one server) and Phúc Thọ with a Zalo OA. Neither commune's
applications, conversations, staff, keys or figures reach the other through any public
endpoint; a province officer sees both communes' figures and nothing else."""

import asyncio
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.app import Server, build
from bot.jobs import run_job
from bot.posters import Links
from bot.runtime import create_api_key, open_offices
from bot.settings import Settings
from bot.web import SESSION_HEADER
from handlers.applications import Office
from knowledge.answer import Assistant
from knowledge.loader import load_commune
from storage import applications as repo
from storage import staff
from storage.db import session_scope
from storage.models import Application, Broadcast, JobRun, Notification
from storage.staff import Role
from tests.conftest import PROFILES
from tests.fakes.telegram import FakeTelegram, bot_api, text_update
from tests.fakes.zalo import FakeZalo, sign
from tests.samples import T0, record
from tests.test_applications_cli import GOOD, HEADER, run
from tests.test_console_auth import PASSWORD, Browser
from tests.test_web import Chat
from tests.test_zalo import APP_ID, APP_SECRET, OA_SECRET, text_event
from tests.test_zalo import environment as zalo_environment

HAT_MON_BOT, PHUC_THO_BOT = "111111:hat-mon-token", "222222:phuc-tho-token"
HAT_MON_SECRET, PHUC_THO_SECRET = "hat-mon-webhook-secret", "phuc-tho-webhook-secret"
HAT_MON_CODE, PHUC_THO_CODE = "000.00.19.H26-261101-0001", "000.00.19.H26-261101-0002"
HAT_MON_PHONE, PHUC_THO_PHONE = "0912345678", "0987654321"
PUBLIC = "https://motcua.example.vn"
NOVEMBER = "?from=2026-11-01&to=2026-11-30"
CHAT = 4242  # one citizen writing to both communes' bots


@dataclass
class Deployment:
    http: TestClient[web.Request, web.Application]
    server: Server
    hat_mon: Office
    phuc_tho: Office
    bots: dict[str, FakeTelegram]  # by commune slug
    zalo: FakeZalo  # Phúc Thọ's OA
    keys: dict[str, str]  # the REST API key of each commune
    browsers: list[Browser] = field(default_factory=list)

    async def telegram(self, commune: str, update: dict[str, Any], *,
                       secret: str | None = None) -> int:
        """Post ``update`` to ``commune``'s webhook, as its bot's Telegram does."""
        prefix, own = ("", HAT_MON_SECRET) if commune == "hat-mon" else (
            "/c/phuc-tho", PHUC_THO_SECRET)
        response = await self.http.post(f"{prefix}/webhook/telegram", json=update, headers={
            "X-Telegram-Bot-Api-Secret-Token": secret or own})
        return response.status

    async def says(self, commune: str, update_id: int, text: str) -> list[str]:
        """What ``CHAT`` gets from ``commune``'s bot for one message."""
        before = len(self.bots[commune].sent(CHAT))
        assert await self.telegram(commune, text_update(update_id, CHAT, text)) == 200
        return [m["text"] for m in self.bots[commune].sent(CHAT)[before:]]

    async def deliver(self) -> None:
        """Run the outbox until it is empty (a chat gets a message a second)."""
        for _ in range(20):
            await self.server.outbox.run_once()
            async with self.hat_mon.sessions() as session:
                if not (await session.exec(select(Notification.id).where(
                        col(Notification.sent_at).is_(None)))).first():
                    return
            await asyncio.sleep(0.25)
        raise AssertionError("the outbox did not empty")

    def browser(self) -> Browser:
        """A staff member's browser, with cookies of its own."""
        self.browsers.append(Browser(self.http))
        return self.browsers[-1]


def environment(database_url: str, bots: str, zalo: str) -> dict[str, str]:
    """Both communes' settings: Phúc Thọ's channels under its own variables."""
    return {
        "DATABASE_URL": database_url, "MOTCUA_COMMUNES": "hat-mon, phuc-tho",
        "MOTCUA_COMMUNE_PROFILES": str(PROFILES), "MOTCUA_SECRET_KEY": "communes-secret",
        "PUBLIC_BASE_URL": PUBLIC, "MOTCUA_QUIET_HOURS": "",
        # The console is reached over plain HTTP here: its cookies must not be Secure.
        "MOTCUA_PUBLIC_BASE_URL": "http://127.0.0.1", "TELEGRAM_API_BASE_URL": bots,
        "TELEGRAM_BOT_TOKEN": HAT_MON_BOT, "TELEGRAM_WEBHOOK_SECRET": HAT_MON_SECRET,
        "TELEGRAM_BOT_TOKEN__PHUC_THO": PHUC_THO_BOT,
        "TELEGRAM_WEBHOOK_SECRET__PHUC_THO": PHUC_THO_SECRET,
        "MOTCUA_LIMIT_CHAT_USER": "1000/minute", "MOTCUA_LIMIT_CHAT_ADDRESS": "1000/minute",
        "MOTCUA_LIMIT_ADDRESS": "1000/minute", "MOTCUA_REFUSAL_DELAY": "0",
        **{(f"{name}__PHUC_THO" if name.startswith("ZALO_") and "BASE_URL" not in name
            else name): value for name, value in zalo_environment(zalo).items()},
    }


async def seed(hat_mon: Office, phuc_tho: Office) -> dict[str, str]:
    """An application, an admin and an API key in each commune; a province officer."""
    async with session_scope(hat_mon.sessions) as session:
        for office, code, phone, name in ((hat_mon, HAT_MON_CODE, HAT_MON_PHONE, "Lê Văn Hát"),
                                          (phuc_tho, PHUC_THO_CODE, PHUC_THO_PHONE,
                                           "Trần Thị Phúc")):
            await repo.upsert_applications(session, commune_id=office.commune_id, actor="test",
                                           now=T0, records=[record(code, phone=phone,
                                                                   applicant_name=name)])
        accounts: list[tuple[str, Office, Role]] = [
            ("an", hat_mon, "admin"), ("binh", phuc_tho, "admin"), ("tinh", hat_mon, "province")]
        for login, office, role in accounts:
            await staff.create_account(session, commune_id=office.commune_id, login=login,
                                       display_name=f"Cán bộ {login}", role=role,
                                       password=PASSWORD, now=T0)
    return {"hat-mon": await create_api_key(hat_mon, "one-stop"),
            "phuc-tho": await create_api_key(phuc_tho, "one-stop")}


@pytest.fixture
async def deployment(database_url: str, sessions: async_sessionmaker[AsyncSession],
                     assistant: Assistant) -> AsyncIterator[Deployment]:
    bots = {"hat-mon": FakeTelegram(HAT_MON_BOT), "phuc-tho": FakeTelegram(PHUC_THO_BOT)}
    zalo = FakeZalo(APP_ID, APP_SECRET, access_token="at-1", refresh_token="rt-1")
    async with TestServer(bot_api(*bots.values())) as api, TestServer(zalo.app()) as oa:
        settings = Settings.from_env(environment(
            database_url, str(api.make_url("")).rstrip("/"), str(oa.make_url("")).rstrip("/")))
        async with open_offices(settings, assistant.kb) as (hat_mon, phuc_tho):
            keys = await seed(hat_mon, phuc_tho)
            server = await build(settings, assistant.kb, [hat_mon, phuc_tho])
            try:
                async with TestClient(TestServer(server.app)) as http:
                    served = Deployment(http, server, hat_mon, phuc_tho, bots, zalo, keys)
                    yield served
                    for browser in served.browsers:
                        await browser.session.close()
            finally:
                for close in server.closing:
                    await close()


def test_communes_and_their_own_channels_come_from_the_environment() -> None:
    settings = Settings.from_env({
        "MOTCUA_COMMUNES": "hat-mon,phuc-tho", "TELEGRAM_BOT_TOKEN": HAT_MON_BOT,
        "TELEGRAM_BOT_TOKEN__PHUC_THO": PHUC_THO_BOT, "TELEGRAM_BOT_USERNAME__PHUC_THO": "@pt",
        "PUBLIC_BASE_URL": PUBLIC, "TELEGRAM_WEBHOOK_SECRET": HAT_MON_SECRET})
    hat_mon, phuc_tho = settings.communes
    assert (hat_mon.slug, phuc_tho.slug, phuc_tho.path) == ("hat-mon", "phuc-tho", "/c/phuc-tho")
    assert hat_mon.telegram is not None and hat_mon.telegram.token == HAT_MON_BOT
    assert phuc_tho.telegram is not None and phuc_tho.telegram.token == PHUC_THO_BOT
    assert (hat_mon.telegram_bot_username, phuc_tho.telegram_bot_username) == ("", "pt")
    # Phúc Thọ's webhook has no secret of its own: refused, naming its variable; the first
    # commune's plain variables are not another commune's.
    assert settings.problems and "TELEGRAM_WEBHOOK_SECRET__PHUC_THO is not set" in \
        settings.problems[0] and PHUC_THO_BOT not in " ".join(settings.problems)
    assert HAT_MON_BOT not in repr(settings) and PHUC_THO_BOT not in repr(settings)
    single = Settings.from_env({"MOTCUA_COMMUNE": "hat-mon", "TELEGRAM_BOT_TOKEN": HAT_MON_BOT})
    assert [c.slug for c in single.communes] == ["hat-mon"] and single.communes[0].telegram
    with pytest.raises(SystemExit, match="same Telegram bot"):
        Settings.from_env({"MOTCUA_COMMUNES": "hat-mon,phuc-tho",
                           "TELEGRAM_BOT_TOKEN": HAT_MON_BOT,
                           "TELEGRAM_BOT_TOKEN__PHUC_THO": HAT_MON_BOT})
    with pytest.raises(SystemExit, match="no commune slug"):
        Settings.from_env({"MOTCUA_COMMUNES": "hat-mon,Phúc Thọ"})
    with pytest.raises(SystemExit, match="'son-tay' is not served here"):
        settings.commune("son-tay")
    short = Settings.from_env({"MOTCUA_COMMUNES": "hat-mon,phuc-tho",
                               "TELEGRAM_WEBHOOK_SECRET__PHUC_THO": "short"})
    assert "TELEGRAM_WEBHOOK_SECRET__PHUC_THO must be 16 to 256" in short.problems[0]


async def test_each_commune_has_its_own_pages_chat_and_procedure_cards(
        deployment: Deployment) -> None:
    http = deployment.http
    home = await (await http.get("/")).text()
    assert 'href="/c/hat-mon/">Xã Hát Môn' in home and 'href="/c/phuc-tho/">Xã Phúc Thọ' in home
    for path in ("/c/phuc-tho/", "/c/hat-mon/"):
        page = await http.get(path)
        assert page.status == 200 and "/static/chat.js" in await page.text()
        assert page.headers["Content-Security-Policy"].startswith("default-src 'none'")
    moved = await http.get("/c/phuc-tho", allow_redirects=False)
    assert (moved.status, moved.headers["Location"]) == (301, "/c/phuc-tho/")
    assert (await http.get("/c/son-tay/")).status == 404
    for commune, name, other in (("phuc-tho", "Xã Phúc Thọ", "Hát Môn"),
                                 ("hat-mon", "Xã Hát Môn", "Phúc Thọ")):
        answer = await Chat(http, commune).send(text="cho tôi xin số điện thoại liên hệ")
        text = " ".join(r["text"] for r in answer["replies"])
        assert name in text and other not in text
        card = await (await http.get(f"/c/{commune}/thu-tuc/1.001193")).text()
        assert f'<p class="commune">{name}</p>' in card and other not in card
    assert "Xã Hát Môn" in await (await http.get("/thu-tuc/1.001193")).text()  # as before


def test_posters_point_at_their_communes_own_pages_and_bot(assistant: Assistant) -> None:
    settings = Settings.from_env({"MOTCUA_COMMUNES": "hat-mon,phuc-tho",
                                  "PUBLIC_BASE_URL": PUBLIC,
                                  "TELEGRAM_BOT_USERNAME__PHUC_THO": "phuctho_bot"})
    theirs = Links.from_settings(settings, settings.commune("phuc-tho"),
                                 load_commune("phuc-tho", PROFILES))
    assert theirs.web("1.001193") == f"{PUBLIC}/c/phuc-tho/thu-tuc/1.001193"
    assert theirs.web() == f"{PUBLIC}/c/phuc-tho/"
    assert theirs.telegram("1.001193") == "https://t.me/phuctho_bot?start=p_1_001193"
    ours = Links.from_settings(settings, settings.commune(), assistant.kb.commune)
    assert ours.web("1.001193") == f"{PUBLIC}/thu-tuc/1.001193" and ours.telegram() == ""


async def lookup(chat: Chat, code: str, phone: str) -> str:
    """The intent of the answer to a status lookup in the web chat."""
    await chat.send(text=f"tra cứu hồ sơ {code}")
    return str((await chat.send(text=phone))["replies"][0]["intent"])


async def test_web_chat_lookups_and_sessions_stay_in_their_commune(
        deployment: Deployment) -> None:
    http = deployment.http
    phuc_tho, hat_mon = Chat(http, "phuc-tho"), Chat(http)
    assert await lookup(phuc_tho, PHUC_THO_CODE, PHUC_THO_PHONE) == "status"
    assert await lookup(phuc_tho, HAT_MON_CODE, HAT_MON_PHONE) == "lookup_failed"
    assert await lookup(hat_mon, PHUC_THO_CODE, PHUC_THO_PHONE) == "lookup_failed"
    assert await lookup(hat_mon, HAT_MON_CODE, HAT_MON_PHONE) == "status"
    # Phúc Thọ's session is refused in Hát Môn's chat: a new one is opened there.
    inbox = await http.get("/api/chat/inbox", headers={SESSION_HEADER: phuc_tho.session})
    assert inbox.status == 403
    stranger = Chat(http)
    stranger.session = phuc_tho.session
    await stranger.send(text="xin chào")
    assert stranger.session != phuc_tho.session
    metrics = await (await http.get("/metrics")).text()
    assert 'route="/c/{commune}/api/chat"' in metrics and "phuc-tho" not in metrics
    mirrored = await http.get("/c/hat-mon/api/chat/inbox", headers={
        SESSION_HEADER: hat_mon.session})  # the first commune is also under /c/<slug>/
    assert mirrored.status == 200


async def test_an_api_key_works_only_in_its_own_commune(deployment: Deployment) -> None:
    http, keys = deployment.http, deployment.keys

    def auth(commune: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {keys[commune]}"}

    stats = f"/c/phuc-tho/api/v1/stats{NOVEMBER}"
    assert (await http.get(stats, headers=auth("hat-mon"))).status == 401
    assert (await (await http.get(stats, headers=auth("phuc-tho"))).json())["received"] == 1
    assert (await http.get(f"/api/v1/stats{NOVEMBER}", headers=auth("phuc-tho"))).status == 401
    patch = await http.patch(f"/c/phuc-tho/api/v1/applications/{HAT_MON_CODE}",
                             json={"status": "processing"}, headers=auth("phuc-tho"))
    assert patch.status == 404  # Hát Môn's application is not Phúc Thọ's to change
    pushed = await http.post("/c/phuc-tho/api/v1/applications", headers=auth("phuc-tho"), json={
        "receipt_code": "000.00.19.H26-261102-0003", "procedure_code": "1.001193",
        "applicant_name": "Đỗ Văn Thọ", "phone": "0911222333", "channel": "Trực tuyến",
        "received_at": "2026-11-02T09:00:00+07:00", "status": "Đang xử lý"})
    assert pushed.status == 200
    async with deployment.hat_mon.sessions() as session:
        commune = (await session.exec(select(Application.commune_id).where(
            Application.receipt_code == "000.00.19.H26-261102-0003"))).one()
    assert commune == deployment.phuc_tho.commune_id
    report = await (await http.get(f"/api/v1/stats{NOVEMBER}", headers=auth("hat-mon"))).json()
    assert report["received"] == 1  # Hát Môn's own figures only


async def test_each_bot_answers_for_its_own_commune(deployment: Deployment) -> None:
    hat_mon, phuc_tho = deployment.bots["hat-mon"], deployment.bots["phuc-tho"]
    # Each bot is registered at its commune's path.
    assert [p["url"] for m, p in hat_mon.calls if m == "setWebhook"] == [
        f"{PUBLIC}/webhook/telegram"]
    assert [p["url"] for m, p in phuc_tho.calls if m == "setWebhook"] == [
        f"{PUBLIC}/c/phuc-tho/webhook/telegram"]
    # Telegram numbers each bot's updates on its own: update 1 of each is answered, by its bot.
    [hello_hm] = await deployment.says("hat-mon", 1, "/start")
    [hello_pt] = await deployment.says("phuc-tho", 1, "/start")
    assert "Xã Hát Môn" in hello_hm and "Xã Phúc Thọ" in hello_pt
    assert await deployment.telegram("phuc-tho", text_update(2, CHAT, "/start"),
                                     secret=HAT_MON_SECRET) == 403
    await deployment.says("phuc-tho", 3, HAT_MON_CODE)
    [refused] = await deployment.says("phuc-tho", 4, HAT_MON_PHONE)
    assert "Đang xử lý" not in refused and "Lê Văn Hát" not in refused
    await deployment.says("phuc-tho", 5, PHUC_THO_CODE)
    [found] = await deployment.says("phuc-tho", 6, PHUC_THO_PHONE)
    assert "Thủ tục đăng ký khai sinh" in found
    assert not [m for m in hat_mon.sent(CHAT) if PHUC_THO_CODE in m["text"]]


async def test_notifications_and_broadcasts_leave_by_their_communes_bot(
        deployment: Deployment) -> None:
    hat_mon, phuc_tho = deployment.bots["hat-mon"], deployment.bots["phuc-tho"]
    await deployment.says("phuc-tho", 1, PHUC_THO_CODE)
    await deployment.says("phuc-tho", 2, PHUC_THO_PHONE)
    await deployment.says("phuc-tho", 3, "theo dõi hồ sơ này")
    await deployment.says("hat-mon", 1, "nhận thông báo của xã")  # Hát Môn's subscriber
    await deployment.says("phuc-tho", 4, "nhận thông báo của xã")  # and Phúc Thọ's
    key = {"Authorization": f"Bearer {deployment.keys['phuc-tho']}"}
    changed = await deployment.http.patch(f"/c/phuc-tho/api/v1/applications/{PHUC_THO_CODE}",
                                          json={"status": "processing"}, headers=key)
    assert changed.status == 200
    draft = await deployment.http.post("/c/phuc-tho/api/v1/broadcasts", headers=key,
                                       json={"text": "Lịch tiêm chủng tháng 12."})
    number = (await draft.json())["id"]
    sent = await deployment.http.post(f"/c/phuc-tho/api/v1/broadcasts/{number}/send",
                                      headers=key, json={})
    assert sent.status == 200
    before = len(hat_mon.sent(CHAT))
    job = next(j for j in deployment.server.jobs if j.name == "broadcasts:phuc-tho")
    assert await run_job(deployment.phuc_tho, job)
    await deployment.deliver()
    texts = [m["text"] for m in phuc_tho.delivered(CHAT)]
    assert any(PHUC_THO_CODE in t for t in texts)  # the status change, by Phúc Thọ's bot
    assert any("Lịch tiêm chủng tháng 12." in t and "Xã Phúc Thọ" in t for t in texts)
    assert hat_mon.sent(CHAT)[before:] == []  # nothing of Phúc Thọ's by Hát Môn's bot
    async with deployment.hat_mon.sessions() as session:
        queued = (await session.exec(select(Notification.commune_id).where(
            Notification.broadcast_id == number))).all()
        runs = set((await session.exec(select(JobRun.name))).all())
        broadcast = await session.get(Broadcast, number)
    assert queued == [deployment.phuc_tho.commune_id]  # Hát Môn's subscriber is not in it
    assert broadcast is not None and broadcast.commune_id == deployment.phuc_tho.commune_id
    assert "broadcasts:phuc-tho" in runs
    names = {j.name for j in deployment.server.jobs}
    assert {"reminders", "retention", "reminders:phuc-tho", "retention:phuc-tho"} <= names


async def announce(deployment: Deployment, commune: str, text: str) -> None:
    """An announcement of ``commune`` to its subscribers, sent now, queued by its job."""
    prefix, key = "" if commune == "hat-mon" else f"/c/{commune}", {
        "Authorization": f"Bearer {deployment.keys[commune]}"}
    draft = await deployment.http.post(f"{prefix}/api/v1/broadcasts", headers=key,
                                       json={"text": text})
    number = (await draft.json())["id"]
    assert (await deployment.http.post(f"{prefix}/api/v1/broadcasts/{number}/send",
                                       headers=key, json={})).status == 200
    name = "broadcasts" if commune == "hat-mon" else f"broadcasts:{commune}"
    office = deployment.hat_mon if commune == "hat-mon" else deployment.phuc_tho
    assert await run_job(office, next(j for j in deployment.server.jobs if j.name == name))


async def test_blocking_one_communes_bot_leaves_the_others_reachable(
        deployment: Deployment) -> None:
    hat_mon, phuc_tho = deployment.bots["hat-mon"], deployment.bots["phuc-tho"]
    await deployment.says("hat-mon", 1, "nhận thông báo của xã")
    await deployment.says("phuc-tho", 1, "nhận thông báo của xã")
    phuc_tho.blocked.add(CHAT)  # the citizen blocks Phúc Thọ's bot
    await announce(deployment, "phuc-tho", "Phúc Thọ: lịch tiếp dân.")
    await deployment.deliver()
    await announce(deployment, "hat-mon", "Hát Môn: lịch tiêm chủng.")
    await deployment.deliver()
    assert any("Hát Môn: lịch tiêm chủng." in m["text"] for m in hat_mon.delivered(CHAT))
    async with deployment.hat_mon.sessions() as session:
        outcomes = set((await session.exec(select(
            Notification.commune_id, Notification.outcome).where(
                Notification.kind == "broadcast"))).all())
    assert outcomes == {(deployment.phuc_tho.commune_id, "unreachable"),
                        (deployment.hat_mon.commune_id, None)}


async def test_zalo_events_reach_only_the_oas_commune(deployment: Deployment) -> None:
    event = text_event("cho tôi xin số điện thoại liên hệ", user="zalo-citizen")
    raw = json.dumps(event, ensure_ascii=False).encode()
    headers = {"X-ZEvent-Signature": sign(raw, app_id=APP_ID, oa_secret_key=OA_SECRET,
                                          timestamp=str(event["timestamp"])),
               "Content-Type": "application/json"}
    assert (await deployment.http.post("/webhook/zalo", data=raw, headers=headers)).status \
        == 404  # Hát Môn has no OA here
    assert (await deployment.http.post("/c/phuc-tho/webhook/zalo", data=raw,
                                       headers=headers)).status == 200
    [reply] = deployment.zalo.sent("zalo-citizen")
    assert "Xã Phúc Thọ" in reply["text"] and "Hát Môn" not in reply["text"]
    forged = {**headers, "X-ZEvent-Signature": sign(raw, app_id=APP_ID,
                                                    oa_secret_key="another-oa-secret",
                                                    timestamp=str(event["timestamp"]))}
    assert (await deployment.http.post("/c/phuc-tho/webhook/zalo", data=raw,
                                       headers=forged)).status == 401  # not this OA's


async def test_staff_work_in_their_own_commune_only(deployment: Deployment) -> None:
    binh = deployment.browser()
    assert (await binh.sign_in("binh")).status == 303
    listed = await (await binh.get("/console/applications")).text()
    assert PHUC_THO_CODE in listed and HAT_MON_CODE not in listed and "Xã Phúc Thọ" in listed
    async with deployment.hat_mon.sessions() as session:
        theirs = (await session.exec(select(Application.id).where(
            Application.receipt_code == HAT_MON_CODE))).one()
    assert (await binh.get(f"/console/applications/{theirs}")).status == 404
    token = await binh.csrf("/console/applications")
    changed = await binh.post(f"/console/applications/{theirs}/status", {
        "csrf": token, "status": "rejected", "step": "confirm"})
    assert changed.status == 404  # nor changed through a forged form
    async with deployment.hat_mon.sessions() as session:
        status = (await session.exec(select(Application.status).where(
            Application.id == theirs))).one()
    assert status == "received"
    overview = await (await binh.get(f"/console/{NOVEMBER}")).text()
    assert re.search(r"<dt>Tiếp nhận</dt><dd>1</dd>", overview)
    accounts = await (await binh.get("/console/staff")).text()
    assert "Cán bộ binh" in accounts and "Cán bộ an" not in accounts


async def test_the_province_officer_sees_every_communes_figures_and_nothing_else(
        deployment: Deployment) -> None:
    tinh = deployment.browser()
    signed_in = await tinh.sign_in("tinh")
    assert signed_in.headers["Location"] == "/console/"
    landing = await tinh.get("/console/")
    assert (landing.status, landing.headers["Location"]) == (303, "/console/province")
    page = await (await tinh.get(f"/console/province{NOVEMBER}")).text()
    rows = re.findall(r"<tr><td>(Xã [^<]+)</td><td class=\"num\">(\d+)</td>", page)
    assert rows == [("Xã Hát Môn", "1"), ("Xã Phúc Thọ", "1")]
    assert re.search(r"<tfoot><tr><th>Tổng</th><td class=\"num\">2</td>", page)
    assert not any(secret in page for secret in (HAT_MON_CODE, PHUC_THO_CODE, "Lê Văn Hát",
                                                 "Trần Thị Phúc", HAT_MON_PHONE))
    for path in ("/console/applications", "/console/inbox", "/console/feedback",
                 "/console/knowledge"):
        moved = await tinh.get(path)
        assert (moved.status, moved.headers["Location"]) == (303, "/console/province")
    assert (await tinh.get("/console/staff")).status == 403
    token = await tinh.csrf("/console/province")
    assert (await tinh.post("/console/broadcasts", {"csrf": token, "text": "x"})).status == 403
    an = deployment.browser()
    await an.sign_in("an")
    assert (await an.get("/console/province")).status == 403  # a commune's admin: no


def test_commands_act_on_the_commune_they_are_given(tmp_path: Path) -> None:
    both = {"MOTCUA_COMMUNES": "hat-mon,phuc-tho", "MOTCUA_COMMUNE_PROFILES": str(PROFILES),
            "MOTCUA_STAFF_PASSWORD": PASSWORD}
    export = tmp_path / "phuc-tho.csv"
    export.write_text(HEADER + GOOD[0], encoding="utf-8")
    code, phone = GOOD[0].split(",")[0], "0912345678"
    imported = run(tmp_path, "applications", "import", str(export), "--commune", "phuc-tho",
                   **both)
    assert imported.returncode == 0, imported.stderr
    assert run(tmp_path, "status", code, "--phone", phone, "--commune", "phuc-tho",
               **both).returncode == 0
    assert run(tmp_path, "status", code, "--phone", phone, **both).returncode == 1  # Hát Môn
    november = ("--from", "2026-11-01", "--to", "2026-11-30", "--json")
    assert json.loads(run(tmp_path, "stats", *november, "--commune", "phuc-tho",
                          **both).stdout)["received"] == 1
    assert json.loads(run(tmp_path, "stats", *november, **both).stdout)["received"] == 0
    unknown = run(tmp_path, "stats", "--commune", "son-tay", **both)
    assert unknown.returncode != 0 and "'son-tay' is not served here" in unknown.stderr
    made = run(tmp_path, "staff", "create", "tinh", "--name", "Cán bộ tỉnh", "--role",
               "province", **both)
    assert made.returncode == 0, made.stderr
    assert re.search(r"tinh\s+province\s+active", run(tmp_path, "staff", "list", **both).stdout)
    assert "tinh" not in run(tmp_path, "staff", "list", "--commune", "phuc-tho", **both).stdout
