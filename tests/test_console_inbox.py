"""The console's hand-over inbox: staff read what a citizen handed over said, reply from the
console into the same conversation as the Telegram staff group, and give it back (SQLite and
PostgreSQL)."""

import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import col, select

from bot.web import DIALOGUE
from handlers.applications import Office
from handlers.conversation import Dialogue, IncomingMessage
from knowledge.answer import Assistant
from storage import applications as repo
from storage.db import session_scope
from storage.models import Conversation, Notification, Rating
from tests.conftest import deployment
from tests.test_console_auth import SETTINGS, Browser, add_account, audited
from tests.test_console_auth import browser as browser  # the fixture, over this client

CITIZEN = "987654321"  # the citizen's Telegram chat id: never shown in the console
QUESTION = "Tôi nộp hồ sơ hôm thứ Hai mà chưa thấy ai gọi lại"


@pytest.fixture
async def client(assistant: Assistant, office: Office, phuc_tho: Office
                 ) -> AsyncIterator[TestClient[Any, Any]]:
    app = deployment(assistant, office, phuc_tho, settings=SETTINGS, staff_channel=True)
    async with TestClient(TestServer(app)) as c:
        yield c


def dialogue_of(client: TestClient[Any, Any]) -> Dialogue:
    return client.server.app[DIALOGUE]


async def handed_over(client: TestClient[Any, Any], user: str = CITIZEN) -> int:
    """A Telegram citizen asks for staff, then writes to them; the conversation's id."""
    dialogue = dialogue_of(client)
    for n, text in enumerate(("gặp cán bộ", QUESTION)):
        await dialogue.handle(IncomingMessage("telegram", user, text=text,
                                              event_id=f"{user}-{n}"))
    async with dialogue.office.sessions() as session:
        found = (await session.exec(select(Conversation).where(
            Conversation.user_id == user))).one()
    assert found.with_staff_since is not None and found.id is not None
    return found.id


async def to_citizen(office: Office, user: str = CITIZEN) -> list[Notification]:
    async with office.sessions() as session:
        return list((await session.exec(select(Notification).where(
            Notification.channel == "telegram", Notification.recipient == user,
            Notification.kind == "staff").order_by(col(Notification.id)))).all())


def form_value(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]+)"', html)
    assert found is not None, name
    return found[1]


async def test_staff_reply_from_the_console_reaches_the_citizen_and_joins_the_conversation(
        client: TestClient[Any, Any], office: Office, browser: Callable[[], Browser]) -> None:
    number = await handed_over(client)
    await add_account(office, "an")
    chrome = browser()
    assert (await chrome.sign_in("an")).status == 303
    listing = await chrome.get("/console/inbox")
    assert listing.status == 200
    html = await listing.text()
    assert f"Telegram · #{number}" in html and QUESTION in html
    assert CITIZEN not in html  # the citizen's chat id stays out of the console
    assert f'href="/console/inbox/{number}"' in html

    page = await (await chrome.get(f"/console/inbox/{number}")).text()
    assert QUESTION in page and "Công dân" in page and CITIZEN not in page
    answer = "Chào anh, hồ sơ của anh đang được thẩm định, thứ Sáu có kết quả."
    sent = await chrome.post(f"/console/inbox/{number}/reply", {
        "csrf": form_value(page, "csrf"), "key": form_value(page, "key"), "text": answer})
    assert (sent.status, sent.headers["Location"]) == (303, f"/console/inbox/{number}")
    # The staff group answers in the same conversation, through the same path.
    await dialogue_of(client).from_staff(channel="telegram", user_id=CITIZEN,
                                         text="Anh mang theo CCCD nhé.", reply_id="-100:7")
    assert [n.text for n in await to_citizen(office)] == [answer, "Anh mang theo CCCD nhé."]
    conversation = await (await chrome.get(f"/console/inbox/{number}")).text()
    assert answer in conversation and "Cán bộ an" in conversation
    assert "Anh mang theo CCCD nhé." in conversation
    assert conversation.index(QUESTION) < conversation.index(answer)
    [entry] = await audited(office, "inbox.reply")
    assert (entry.actor, entry.target) == ("staff:an", f"conversation:{number}")

    # The same form sent twice (a double tap) sends the reply once.
    again = await chrome.post(f"/console/inbox/{number}/reply", {
        "csrf": form_value(page, "csrf"), "key": form_value(page, "key"), "text": answer})
    assert again.status == 303 and len(await to_citizen(office)) == 2
    assert len(await audited(office, "inbox.reply")) == 1
    empty = await chrome.post(f"/console/inbox/{number}/reply", {
        "csrf": form_value(page, "csrf"), "key": "another-key-1", "text": "  "})
    assert empty.status == 400 and "Hãy viết câu trả lời" in await empty.text()


async def test_giving_back_ends_the_hand_over(
        client: TestClient[Any, Any], office: Office, browser: Callable[[], Browser]) -> None:
    number = await handed_over(client)
    await add_account(office, "an")
    chrome = browser()
    assert (await chrome.sign_in("an")).status == 303
    page = await (await chrome.get(f"/console/inbox/{number}")).text()
    token = form_value(page, "csrf")
    await chrome.post(f"/console/inbox/{number}/reply",
                      {"csrf": token, "key": "first-reply", "text": "Anh cần giúp gì ạ?"})
    given = await chrome.post(f"/console/inbox/{number}/give-back", {"csrf": token})
    assert (given.status, given.headers["Location"]) == (303, "/console/inbox")
    async with office.sessions() as session:
        state = (await session.exec(select(Conversation).where(
            Conversation.id == number))).one()
        rating = (await session.exec(select(Rating))).one()
    assert state.with_staff_since is None
    assert rating.officer == "staff:an"  # the rating asked afterwards is this officer's
    back, question = [n.text for n in await to_citizen(office)][-2:]
    assert back == "Bạn đã quay lại với trợ lý tự động."
    assert question.startswith("Bạn đánh giá thế nào về việc phục vụ?")  # asked once, after
    assert f"#{number}" not in await (await chrome.get("/console/inbox")).text()
    back = await (await chrome.get(f"/console/inbox/{number}")).text()
    assert "đã quay lại với trợ lý" in back and "/reply" not in back
    refused = await chrome.post(f"/console/inbox/{number}/reply",
                                {"csrf": token, "key": "late-reply", "text": "Còn một việc"})
    assert refused.status == 409
    assert [e.actor for e in await audited(office, "inbox.give_back")] == ["staff:an"]


async def test_another_communes_conversation_is_not_reachable(
        client: TestClient[Any, Any], office: Office, browser: Callable[[], Browser]) -> None:
    number = await handed_over(client)
    async with session_scope(office.sessions) as session:
        other = await repo.ensure_commune(session, slug="phuc-tho", name="Xã Phúc Thọ")
    await add_account(office, "son", commune_id=other)
    chrome = browser()
    assert (await chrome.sign_in("son")).status == 303
    assert QUESTION not in await (await chrome.get("/console/inbox")).text()
    assert (await chrome.get(f"/console/inbox/{number}")).status == 404
    token = await chrome.csrf("/console/inbox")
    for action in ("reply", "give-back"):
        refused = await chrome.post(f"/console/inbox/{number}/{action}",
                                    {"csrf": token, "key": "from-phuc-tho", "text": "Xin chào"})
        assert refused.status == 404
    assert await to_citizen(office) == []
    async with office.sessions() as session:
        state = (await session.exec(select(Conversation).where(
            Conversation.id == number))).one()
    assert state.with_staff_since is not None


async def test_posts_need_the_csrf_token_and_pages_a_session(
        client: TestClient[Any, Any], office: Office, browser: Callable[[], Browser]) -> None:
    number = await handed_over(client)
    await add_account(office, "an")
    chrome = browser()
    assert (await chrome.sign_in("an")).status == 303
    for data in ({"text": "Xin chào"}, {"text": "Xin chào", "csrf": "forged"}):
        assert (await chrome.post(f"/console/inbox/{number}/reply", data)).status == 403
        assert (await chrome.post(f"/console/inbox/{number}/give-back", data)).status == 403
    assert await to_citizen(office) == []
    stranger = browser()
    for path in ("/console/inbox", f"/console/inbox/{number}"):
        response = await stranger.get(path)
        assert (response.status, response.headers["Location"]) == (303, "/console/login")
    posted = await stranger.post(f"/console/inbox/{number}/reply", {"text": "Xin chào"})
    assert (posted.status, posted.headers["Location"]) == (303, "/console/login")
