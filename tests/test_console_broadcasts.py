"""The console's broadcast pages: compose an announcement, see its preview and recipient count,
send it only once confirmed (now or at a Vietnam time), read its delivery report, cancel it
(SQLite and PostgreSQL)."""

import datetime as dt
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import col, select

from handlers.applications import Office
from knowledge.answer import Assistant
from knowledge.workdays import TZ
from storage import applications as repo
from storage import broadcasts as broadcasts_repo
from storage.db import session_scope
from storage.models import Application, Broadcast, Notification
from tests.conftest import deployment
from tests.samples import CODE, T0
from tests.test_console_auth import SETTINGS, Browser, add_account, audited
from tests.test_console_auth import browser as browser  # the fixture, over this client

TEXT = "Thứ Bảy 12/12 xã tổ chức tiêm chủng tại trạm y tế, mời bà con đưa trẻ đến."
# (channel, recipient, language, hamlet) of the citizens who agreed to announcements
SUBSCRIBERS = [("telegram", "1001", "vi", "thon 3"), ("zalo", "z-2002", "vi", ""),
               ("web", "w-3003", "en", "thon 3")]


@pytest.fixture
async def client(assistant: Assistant, office: Office, phuc_tho: Office
                 ) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(deployment(assistant, office, phuc_tho,
                                                settings=SETTINGS))) as c:
        yield c


@pytest.fixture
async def subscribed(office: Office) -> None:
    async with session_scope(office.sessions) as session:
        for channel, recipient, lang, hamlet in SUBSCRIBERS:
            await broadcasts_repo.subscribe(session, commune_id=office.commune_id,
                                            channel=channel, recipient=recipient, lang=lang,
                                            hamlet=hamlet, at=T0)
        application = (await session.exec(select(Application).where(
            Application.receipt_code == CODE))).one()
        assert application.id is not None
        await repo.subscribe(session, commune_id=office.commune_id,
                             application_id=application.id, channel="telegram",
                             recipient="4004", lang="vi")


async def signed_in(office: Office, browser: Callable[[], Browser], login: str = "an",
                    commune_id: int | None = None) -> tuple[Browser, str]:
    """A browser signed in as a new officer, and its CSRF token."""
    await add_account(office, login, commune_id=commune_id)
    chrome = browser()
    assert (await chrome.sign_in(login)).status == 303
    return chrome, await chrome.csrf("/console/broadcasts/new")


async def compose(chrome: Browser, token: str, **fields: str) -> int:
    """Write an announcement in the form; the number of its draft."""
    made = await chrome.post("/console/broadcasts", {"csrf": token, "text": TEXT, **fields})
    assert made.status == 303, await made.text()
    found = re.fullmatch(r"/console/broadcasts/(\d+)", made.headers["Location"])
    assert found is not None
    return int(found[1])


async def rows(office: Office, number: int) -> list[Notification]:
    async with office.sessions() as session:
        return list((await session.exec(select(Notification).where(
            Notification.broadcast_id == number).order_by(col(Notification.id)))).all())


async def stored(office: Office, number: int) -> Broadcast:
    async with office.sessions() as session:
        return (await session.exec(select(Broadcast).where(Broadcast.id == number))).one()


def cells(html: str, row: str) -> list[str]:
    """The numbers of a report row (its first cell is ``row``)."""
    found = re.search(rf"<t[hd][^>]*>{row}</t[hd]>(.*?)</tr>", html, re.S)
    assert found is not None, row
    return re.findall(r'<td class="num">([^<]*)</td>', found[1])


@pytest.mark.usefixtures("subscribed")
async def test_an_announcement_is_previewed_sent_once_confirmed_and_its_report_adds_up(
        office: Office, browser: Callable[[], Browser]) -> None:
    chrome, token = await signed_in(office, browser)
    form = await (await chrome.get("/console/broadcasts/new")).text()
    assert '<label for="bc-text">Nội dung thông báo</label>' in form
    assert "Thủ tục đăng ký khai sinh (1.001193)" in form  # a followed procedure to choose
    number = await compose(chrome, token, link="https://hatmon.example/tiem-chung",
                           image="https://hatmon.example/tiem-chung.jpg")

    preview = await (await chrome.get(f"/console/broadcasts/{number}")).text()
    assert re.search(r"<dt>Số người nhận</dt><dd>3</dd>", preview)
    assert "Thông báo của Xã Hát Môn:" in preview and TEXT in preview
    assert "https://hatmon.example/tiem-chung" in preview and "Bản nháp" in preview
    assert "Kèm ảnh:" in preview and (await stored(office, number)).image == \
        "https://hatmon.example/tiem-chung.jpg"

    asked = await chrome.post(f"/console/broadcasts/{number}/send",
                              {"csrf": token, "when": "now"})
    assert asked.status == 200
    assert "Thông báo số " + str(number) + " sẽ được gửi ngay tới 3 người." \
        in await asked.text()
    assert await rows(office, number) == [] and (await stored(office, number)).status == "draft"

    sent = await chrome.post(f"/console/broadcasts/{number}/send",
                             {"csrf": token, "when": "now", "confirm": "yes"})
    assert (sent.status, sent.headers["Location"]) == (303, f"/console/broadcasts/{number}")
    queued = await rows(office, number)
    assert sorted((n.channel, n.recipient) for n in queued) == sorted(
        (c, r) for c, r, _, _ in SUBSCRIBERS)
    assert all(TEXT in n.text for n in queued) and (await stored(office, number)).status == "queued"
    by_channel = {n.channel: n.id for n in queued}
    async with session_scope(office.sessions) as session:  # what the outbox did meanwhile
        await repo.mark_sent(session, [by_channel["telegram"]], at=T0)
        await repo.close_notifications(session, [by_channel["zalo"]], at=T0,
                                       outcome="undeliverable")
    report = await (await chrome.get(f"/console/broadcasts/{number}")).text()
    # queued, sent, still trying, failed, blocked, not deliverable on Zalo
    assert cells(report, "Telegram") == ["1", "1", "0", "0", "0", "0"]
    assert cells(report, "Zalo") == ["1", "0", "0", "0", "0", "1"]
    assert cells(report, "Web") == ["1", "0", "1", "0", "0", "0"]
    total = [int(n) for n in cells(report, "Tổng")]
    assert total[0] == sum(total[1:]) == 3
    listing = await (await chrome.get("/console/broadcasts")).text()
    assert f'href="/console/broadcasts/{number}"' in listing and "Đã gửi đi" in listing
    [entry] = await audited(office, "broadcast.send")
    assert (entry.actor, entry.target) == ("staff:an", f"broadcast:{number}")
    assert (await stored(office, number)).created_by == "staff:an"

    # Sent already: no second sending, and cancelling stops only what is still unsent.
    again = await chrome.post(f"/console/broadcasts/{number}/send",
                              {"csrf": token, "when": "now", "confirm": "yes"})
    assert again.status == 409 and len(await rows(office, number)) == 3
    await chrome.post(f"/console/broadcasts/{number}/cancel", {"csrf": token})
    assert sorted(n.channel for n in await rows(office, number)) == ["telegram", "zalo"]


@pytest.mark.usefixtures("subscribed")
async def test_audiences_are_counted_before_sending(
        office: Office, browser: Callable[[], Browser]) -> None:
    chrome, token = await signed_in(office, browser)
    for fields, count in (({"audience": "hamlet", "value_hamlet": "Thôn 3"}, 2),
                          ({"audience": "lang", "value_lang": "en"}, 1),
                          ({"audience": "procedure", "value_procedure": "1.001193"}, 1),
                          ({"audience": "field", "value_field": "Hộ tịch"}, 1)):
        number = await compose(chrome, token, **fields)
        page = await (await chrome.get(f"/console/broadcasts/{number}")).text()
        assert re.search(rf"<dt>Số người nhận</dt><dd>{count}</dd>", page), fields
    empty = await chrome.post("/console/broadcasts", {"csrf": token, "text": "  "})
    assert empty.status == 400 and "Hãy viết nội dung thông báo." in await empty.text()
    nobody = await chrome.post("/console/broadcasts",
                               {"csrf": token, "text": TEXT, "audience": "hamlet"})
    assert nobody.status == 400 and "Hãy chọn người nhận" in await nobody.text()
    assert TEXT in await nobody.text()  # what was written is kept
    plain = await chrome.post("/console/broadcasts",
                              {"csrf": token, "text": TEXT, "image": "http://a.example/x.jpg"})
    assert plain.status == 400 and "Ảnh phải là địa chỉ bắt đầu bằng https://." \
        in await plain.text()


@pytest.mark.usefixtures("subscribed")
async def test_an_announcement_scheduled_at_a_vietnam_time_can_be_cancelled(
        office: Office, browser: Callable[[], Browser]) -> None:
    chrome, token = await signed_in(office, browser)
    number = await compose(chrome, token)
    day = (dt.datetime.now(TZ) + dt.timedelta(days=2)).date()
    when = {"csrf": token, "when": "later", "date": day.isoformat(), "time": "07:30"}
    asked = await (await chrome.post(f"/console/broadcasts/{number}/send", when)).text()
    assert "sẽ được gửi tới 3 người vào 07:30 ngày" in asked
    done = await chrome.post(f"/console/broadcasts/{number}/send", {**when, "confirm": "yes"})
    assert done.status == 303
    broadcast = await stored(office, number)
    assert broadcast.status == "scheduled" and await rows(office, number) == []
    assert broadcast.send_at == dt.datetime.combine(day, dt.time(7, 30), TZ)
    assert "Đã hẹn giờ gửi" in await (await chrome.get("/console/broadcasts")).text()
    past = await chrome.post(f"/console/broadcasts/{number}/send",
                             {**when, "date": "2020-01-01", "confirm": "yes"})
    assert past.status == 400 and "Thời điểm này đã qua" in await past.text()
    cancelled = await chrome.post(f"/console/broadcasts/{number}/cancel", {"csrf": token})
    assert cancelled.status == 303
    assert (await stored(office, number)).status == "cancelled"
    page = await (await chrome.get(f"/console/broadcasts/{number}")).text()
    assert "Đã huỷ" in page and f"/console/broadcasts/{number}/send" not in page
    assert [e.action for e in await audited(office, "broadcast.cancel")] == ["broadcast.cancel"]


@pytest.mark.usefixtures("subscribed")
async def test_another_communes_announcement_is_not_reachable(
        office: Office, browser: Callable[[], Browser]) -> None:
    chrome, token = await signed_in(office, browser)
    number = await compose(chrome, token)
    async with session_scope(office.sessions) as session:
        other = await repo.ensure_commune(session, slug="phuc-tho", name="Xã Phúc Thọ")
    stranger, theirs = await signed_in(office, browser, "son", commune_id=other)
    assert TEXT not in await (await stranger.get("/console/broadcasts")).text()
    assert (await stranger.get(f"/console/broadcasts/{number}")).status == 404
    for action in ("send", "cancel"):
        refused = await stranger.post(f"/console/broadcasts/{number}/{action}",
                                      {"csrf": theirs, "when": "now", "confirm": "yes"})
        assert refused.status == 404
    broadcast = await stored(office, number)
    assert broadcast.status == "draft" and await rows(office, number) == []


@pytest.mark.usefixtures("subscribed")
async def test_posts_need_the_csrf_token_and_pages_a_session(
        office: Office, browser: Callable[[], Browser]) -> None:
    chrome, token = await signed_in(office, browser)
    number = await compose(chrome, token)
    for data in ({}, {"csrf": "forged"}):
        assert (await chrome.post("/console/broadcasts", {"text": TEXT, **data})).status == 403
        refused = await chrome.post(f"/console/broadcasts/{number}/send",
                                    {"when": "now", "confirm": "yes", **data})
        assert refused.status == 403
    async with office.sessions() as session:
        assert len((await session.exec(select(Broadcast))).all()) == 1
    assert await rows(office, number) == []
    stranger = browser()
    for path in ("/console/broadcasts", "/console/broadcasts/new",
                 f"/console/broadcasts/{number}"):
        response = await stranger.get(path)
        assert (response.status, response.headers["Location"]) == (303, "/console/login")
    posted = await stranger.post(f"/console/broadcasts/{number}/cancel", {"csrf": token})
    assert (posted.status, posted.headers["Location"]) == (303, "/console/login")
