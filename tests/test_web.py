"""The web chat over HTTP: the page, the JSON endpoint and its bad input, the health check."""

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.exc import OperationalError

from bot.web import MAX_BODY, create_app
from handlers.applications import Office
from handlers.conversation import Dialogue
from knowledge.answer import Assistant
from storage import conversations as conversations_repo
from tests.script import Received, scripted_conversation


@pytest.fixture
async def client(assistant: Assistant, office: Office
                 ) -> AsyncIterator[TestClient[object, object]]:
    app = create_app(assistant, office, staff_channel=True)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def test_page_is_served_in_vietnamese(client: TestClient[object, object]) -> None:
    response = await client.get("/")
    assert response.status == 200
    html = await response.text()
    assert '<html lang="vi">' in html
    assert 'aria-live="polite"' in html
    script = await client.get("/static/chat.js")
    assert script.status == 200


async def test_question_gets_the_answer(client: TestClient[object, object]) -> None:
    response = await client.post("/api/chat",
                                 json={"user": "web-1", "text": "làm sổ đỏ lần đầu cần gì"})
    assert response.status == 200
    replies = (await response.json())["replies"]
    assert len(replies) == 1
    assert "(mã 1.013978)" in replies[0]["text"]


async def test_clarify_offers_buttons_that_open_a_card(client: TestClient[object, object]) -> None:
    response = await client.post("/api/chat", json={"user": "web-1", "text": "căn cước"})
    reply = (await response.json())["replies"][0]
    assert reply["text"].startswith("Bạn muốn hỏi về thủ tục nào?")
    assert len(reply["buttons"]) >= 2
    chosen = reply["buttons"][0]
    response = await client.post("/api/chat", json={"user": "web-1", "payload": chosen["payload"]})
    card = (await response.json())["replies"][0]["text"]
    assert card.startswith(chosen["title"])


async def test_english_can_be_forced(client: TestClient[object, object]) -> None:
    response = await client.post("/api/chat", json={"user": "web-2", "text": "gks", "lang": "en"})
    text = (await response.json())["replies"][0]["text"]
    assert text.startswith("Birth registration (code 1.001193)")


@pytest.mark.parametrize(
    ("body", "status"),
    [(b"{not json", 400), (b"[1, 2]", 400), (b'{"text": 5}', 400), (b"\xff\xfe", 400),
     (b'{"text": "gks"}', 400), (b"x" * (MAX_BODY + 1), 413), (b"[" * 1000 + b"]" * 1000, 400)],
)
async def test_bad_requests_are_refused_clearly(
    client: TestClient[object, object], body: bytes, status: int
) -> None:
    response = await client.post("/api/chat", data=body,
                                 headers={"Content-Type": "application/json"})
    assert response.status == status


async def test_database_away_is_a_503_the_page_can_retry(
        client: TestClient[object, object], monkeypatch: pytest.MonkeyPatch) -> None:
    async def away(*args: object, **kwargs: object) -> object:
        raise OperationalError("SELECT", {}, ConnectionRefusedError())

    monkeypatch.setattr(conversations_repo, "conversations", away)
    response = await client.post("/api/chat", json={"user": "u1", "text": "gks"})
    assert response.status == 503
    assert (await response.json())["error"] == "database unavailable, try again"


async def test_health(client: TestClient[object, object]) -> None:
    response = await client.get("/healthz")
    assert response.status == 200
    assert (await response.json())["status"] == "ok"


async def test_staff_reply_reaches_the_web_chat_through_the_inbox(
    client: TestClient[object, object], assistant: Assistant, office: Office
) -> None:
    await client.post("/api/chat", json={"user": "web-9", "text": "gặp cán bộ"})
    await Dialogue(assistant, office).from_staff(channel="web", user_id="web-9",
                                                  text="Chào chị, mời chị lên xã.", reply_id="1")
    inbox = await (await client.get("/api/chat/inbox?user=web-9")).json()
    assert [r["text"] for r in inbox["replies"]] == ["Chào chị, mời chị lên xã."]
    again = await (await client.get("/api/chat/inbox?user=web-9")).json()
    assert again["replies"] == []  # delivered once
    assert (await client.get("/api/chat/inbox")).status == 400


async def test_scripted_conversation(client: TestClient[object, object]) -> None:
    async def send(text: str = "", payload: str = "") -> Received:
        body = {"user": "web-script", "text": text, "payload": payload}
        replies = (await (await client.post("/api/chat", json=body)).json())["replies"]
        return Received([r["text"] for r in replies],
                        [(b["title"], b["payload"]) for r in replies for b in r["buttons"]])

    await scripted_conversation(send)
