"""The web chat over HTTP: the page, the JSON endpoint and its bad input, sessions, same-origin
checks, security headers, rate limits, the health check."""

import asyncio
import ipaddress
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.exc import OperationalError

from bot.runtime import create_api_key
from bot.settings import Settings
from bot.web import MAX_BODY, SESSION_HEADER, create_app, make_runner
from handlers.applications import Office
from handlers.conversation import Dialogue
from knowledge.answer import Assistant
from storage import conversations as conversations_repo
from tests.script import Received, scripted_conversation

# Conversation tests send faster than any citizen types: their budgets do not get in the way.
ROOMY = Settings(limit_chat_user="1000/minute", limit_chat_address="1000/minute",
                 limit_address="1000/minute", secret_key="test-secret")


@pytest.fixture
async def client(assistant: Assistant, office: Office
                 ) -> AsyncIterator[TestClient[object, object]]:
    app = create_app(assistant, office, staff_channel=True, settings=ROOMY)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


class Chat:
    """One browser's web chat: sends messages with the session the server gave it."""

    def __init__(self, client: TestClient[object, object], commune: str = "") -> None:
        self.client = client
        self.session = ""
        self.prefix = f"/c/{commune}" if commune else ""  # a commune's own chat

    async def send(self, **body: str) -> dict[str, Any]:
        headers = {SESSION_HEADER: self.session} if self.session else {}
        response = await self.client.post(f"{self.prefix}/api/chat", json=body,
                                          headers=headers)
        assert response.status == 200, response.status
        answer: dict[str, Any] = await response.json()
        self.session = answer.get("session", self.session)
        return answer

    @property
    def user(self) -> str:
        """The user id the server chose (the token is ``id.signature``)."""
        return self.session.rpartition(".")[0]


async def test_page_is_served_in_vietnamese(client: TestClient[object, object]) -> None:
    response = await client.get("/")
    assert response.status == 200
    html = await response.text()
    assert '<html lang="vi">' in html
    assert 'aria-live="polite"' in html
    script = await client.get("/static/chat.js")
    assert script.status == 200


async def test_question_gets_the_answer(client: TestClient[object, object]) -> None:
    replies = (await Chat(client).send(text="làm sổ đỏ lần đầu cần gì"))["replies"]
    assert len(replies) == 1
    assert "(mã 1.013978)" in replies[0]["text"]


async def test_clarify_offers_buttons_that_open_a_card(client: TestClient[object, object]) -> None:
    chat = Chat(client)
    reply = (await chat.send(text="căn cước"))["replies"][0]
    assert reply["text"].startswith("Bạn muốn hỏi về thủ tục nào?")
    assert len(reply["buttons"]) >= 2
    chosen = reply["buttons"][0]
    card = (await chat.send(payload=chosen["payload"]))["replies"][0]["text"]
    assert card.startswith(chosen["title"])


async def test_english_can_be_forced(client: TestClient[object, object]) -> None:
    text = (await Chat(client).send(text="gks", lang="en"))["replies"][0]["text"]
    assert text.startswith("Birth registration (code 1.001193)")


@pytest.mark.parametrize(
    ("body", "status"),
    [(b"{not json", 400), (b"[1, 2]", 400), (b'{"text": 5}', 400), (b"\xff\xfe", 400),
     (b'{"payload": ["menu"]}', 400), (b"x" * (MAX_BODY + 1), 413),
     (b"[" * 1000 + b"]" * 1000, 400)],
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

    monkeypatch.setattr(conversations_repo, "contacts", away)
    response = await client.post("/api/chat", json={"text": "gks"})
    assert response.status == 503
    assert (await response.json())["error"] == "database unavailable, try again"


async def test_health(client: TestClient[object, object]) -> None:
    response = await client.get("/healthz")
    assert response.status == 200
    assert (await response.json())["status"] == "ok"


async def test_staff_reply_reaches_the_web_chat_through_the_inbox(
    client: TestClient[object, object], assistant: Assistant, office: Office
) -> None:
    chat = Chat(client)
    await chat.send(text="gặp cán bộ")
    await Dialogue(assistant, office).from_staff(channel="web", user_id=chat.user,
                                                  text="Chào chị, mời chị lên xã.", reply_id="1")
    mine = {SESSION_HEADER: chat.session}
    inbox = await (await client.get("/api/chat/inbox", headers=mine)).json()
    assert [r["text"] for r in inbox["replies"]] == ["Chào chị, mời chị lên xã."]
    again = await (await client.get("/api/chat/inbox", headers=mine)).json()
    assert again["replies"] == []  # delivered once


async def test_scripted_conversation(client: TestClient[object, object]) -> None:
    chat = Chat(client)

    async def send(text: str = "", payload: str = "") -> Received:
        replies = (await chat.send(text=text, payload=payload))["replies"]
        return Received([r["text"] for r in replies],
                        [(b["title"], b["payload"]) for r in replies for b in r["buttons"]])

    await scripted_conversation(send)


async def test_page_is_sent_with_security_headers(client: TestClient[object, object]) -> None:
    for path in ("/", "/static/chat.js", "/healthz", "/no-such-page"):
        response = await client.get(path)
        policy = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "style-src 'self'" in policy, path
        assert "frame-ancestors 'self'" in policy, path
        assert "unsafe-inline" not in policy
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "same-origin"
    html = await (await client.get("/")).text()
    assert "<script>" not in html and "<style" not in html and " style=" not in html


@pytest.mark.parametrize(("content_type", "body"), [
    ("text/plain", '{"text": "gks"}'),
    ("application/x-www-form-urlencoded", "text=gks"),
    ("multipart/form-data; boundary=x", '--x\r\nContent-Disposition: form-data; name="text"'
                                        '\r\n\r\ngks\r\n--x--\r\n'),
])
async def test_a_cross_site_form_cannot_post_to_the_chat(
        client: TestClient[object, object], content_type: str, body: str) -> None:
    response = await client.post("/api/chat", data=body,
                                 headers={"Content-Type": content_type})
    assert response.status == 415


async def test_a_foreign_origin_is_refused(client: TestClient[object, object]) -> None:
    evil = await client.post("/api/chat", json={"text": "gks"},
                             headers={"Origin": "https://evil.example"})
    assert evil.status == 403
    own = await client.post("/api/chat", json={"text": "gks"},
                            headers={"Origin": f"http://{client.host}:{client.port}"})
    assert own.status == 200


async def test_an_allowed_embedding_site_may_frame_and_post(
        assistant: Assistant, office: Office) -> None:
    settings = Settings(embed_origins=("https://*.hanoi.gov.vn", "http://localhost:*"),
                        secret_key="k")
    async with TestClient(TestServer(create_app(assistant, office, settings=settings))) as web:
        page = await web.get("/")
        assert page.headers["Content-Security-Policy"].endswith(
            "frame-ancestors 'self' https://*.hanoi.gov.vn http://localhost:*")
        for origin, status in (("https://hatmon.hanoi.gov.vn", 200),
                               ("http://localhost:8000", 200),
                               ("https://hanoi.gov.vn.evil.example", 403),
                               ("http://hatmon.hanoi.gov.vn", 403), ("null", 403)):
            response = await web.post("/api/chat", json={"text": "gks"},
                                      headers={"Origin": origin})
            assert response.status == status, origin


async def test_the_server_chooses_the_user_and_the_inbox_needs_its_secret(
        client: TestClient[object, object], assistant: Assistant, office: Office) -> None:
    victim, attacker = Chat(client), Chat(client)
    await victim.send(text="gặp cán bộ")
    assert victim.user.startswith("web-") and len(victim.user) > 30
    await Dialogue(assistant, office).from_staff(channel="web", user_id=victim.user,
                                                  text="Hồ sơ của chị đã xong.", reply_id="2")
    # Naming the victim's id, in the body or the query, gets the attacker its own session.
    answer = await attacker.send(text="gks", user=victim.user)
    assert attacker.user != victim.user and answer["session"]
    for headers in ({}, {SESSION_HEADER: victim.user},
                    {SESSION_HEADER: victim.user + ".forged"},
                    {SESSION_HEADER: attacker.session.rpartition(".")[0] + "." +
                     victim.session.rpartition(".")[2]}):
        stolen = await client.get(f"/api/chat/inbox?user={victim.user}", headers=headers)
        assert stolen.status == 403
    theirs = await client.get("/api/chat/inbox", headers={SESSION_HEADER: attacker.session})
    assert (await theirs.json())["replies"] == []
    mine = await client.get("/api/chat/inbox", headers={SESSION_HEADER: victim.session})
    assert [r["text"] for r in (await mine.json())["replies"]] == ["Hồ sơ của chị đã xong."]
    assert mine.headers["Cache-Control"] == "no-store"


async def test_a_session_survives_only_with_the_same_secret(
        assistant: Assistant, office: Office) -> None:
    """Two instances with one MOTCUA_SECRET_KEY accept each other's sessions."""
    first = create_app(assistant, office, settings=Settings(secret_key="shared"))
    second = create_app(assistant, office, settings=Settings(secret_key="shared"))
    other = create_app(assistant, office, settings=Settings(secret_key="another"))
    async with TestClient(TestServer(first)) as a, TestClient(TestServer(second)) as b, \
            TestClient(TestServer(other)) as c:
        token = (await Chat(a).send(text="gks"))["session"]
        assert (await b.get("/api/chat/inbox", headers={SESSION_HEADER: token})).status == 200
        assert (await c.get("/api/chat/inbox", headers={SESSION_HEADER: token})).status == 403


PROXIED = Settings(limit_chat_user="5/minute", limit_chat_address="8/minute",
                   limit_address="10/minute", limit_api_key="4/minute",
                   trusted_proxies=(ipaddress.ip_network("127.0.0.0/8"),), secret_key="k",
                   refusal_delay=0)


@pytest.fixture
async def limited(assistant: Assistant, office: Office
                  ) -> AsyncIterator[TestClient[object, object]]:
    """The app behind a trusted proxy (the test client), with small budgets."""
    async with TestClient(TestServer(create_app(assistant, office, settings=PROXIED))) as web:
        yield web


def _from(address: str, **headers: str) -> dict[str, str]:
    return {"X-Forwarded-For": address, **headers}


async def test_a_flooding_address_gets_429_while_others_are_served(
        limited: TestClient[object, object]) -> None:
    statuses = []
    for _ in range(12):  # a new session each time: only the address budget holds
        response = await limited.post("/api/chat", json={"text": "gks"},
                                      headers=_from("203.0.113.7"))
        statuses.append(response.status)
    assert statuses == [200] * 8 + [429] * 4
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert (await response.json())["error"] == "too many requests"
    other = await limited.post("/api/chat", json={"text": "gks"}, headers=_from("198.51.100.2"))
    assert other.status == 200
    # The address a client writes itself (left of the proxy's entry) changes nothing.
    spoofed = await limited.post("/api/chat", json={"text": "gks"},
                                 headers=_from("198.51.100.9, 203.0.113.7"))
    assert spoofed.status == 429


async def test_a_flooding_user_gets_429_while_others_are_served(
        limited: TestClient[object, object]) -> None:
    flooder, other = Chat(limited), Chat(limited)
    await flooder.send(text="gks")  # opens the session (counted for the address only)
    statuses = []
    for i in range(7):  # each from another address: only the session's budget holds
        response = await limited.post("/api/chat", json={"text": "gks"}, headers=_from(
            f"192.0.2.{i}", **{SESSION_HEADER: flooder.session}))
        statuses.append(response.status)
    assert statuses == [200] * 5 + [429] * 2
    assert int(response.headers["Retry-After"]) >= 1
    assert (await other.send(text="gks"))["replies"]


async def test_other_pages_are_limited_per_address(limited: TestClient[object, object]) -> None:
    statuses = [(await limited.get("/healthz", headers=_from("192.0.2.50"))).status
                for _ in range(11)]
    assert statuses == [200] * 10 + [429]
    assert (await limited.get("/healthz", headers=_from("192.0.2.51"))).status == 200
    refused = await limited.get("/", headers=_from("192.0.2.50"))
    assert refused.status == 429 and refused.headers["Retry-After"]
    assert refused.headers["X-Content-Type-Options"] == "nosniff"


async def test_the_rest_api_is_limited_per_key(
        limited: TestClient[object, object], office: Office) -> None:
    key = await create_api_key(office, "mot-cua")
    other = await create_api_key(office, "mot-cua-2")
    statuses = [(await limited.get("/api/v1/stats", headers=_from(
        "192.0.2.60", Authorization=f"Bearer {key}"))).status for _ in range(5)]
    assert statuses == [200] * 4 + [429]
    assert (await limited.get("/api/v1/stats", headers=_from(
        "192.0.2.60", Authorization=f"Bearer {other}"))).status == 200
    # Guessed keys count against their address, whatever key comes next.
    guesses = [(await limited.get("/api/v1/stats", headers=_from(
        "192.0.2.61", Authorization=f"Bearer guess-{i}"))).status for i in range(12)]
    assert guesses == [401] * 10 + [429] * 2


async def test_webhooks_are_not_limited_by_address(limited: TestClient[object, object]) -> None:
    # No webhook is configured here: 404 (or 403 with one) is the route's own answer, never 429.
    statuses = {(await limited.post("/webhook/telegram", json={},
                                    headers=_from("192.0.2.70"))).status for _ in range(15)}
    assert 429 not in statuses


async def test_a_body_sent_too_slowly_is_cut_off(assistant: Assistant, office: Office) -> None:
    settings = Settings(body_timeout=0.3, secret_key="k")
    async with TestClient(TestServer(create_app(assistant, office, settings=settings))) as web:
        async def drip() -> AsyncIterator[bytes]:
            yield b'{"text": '
            await asyncio.sleep(5)
            yield b'"gks"}'

        response = await web.post("/api/chat", data=drip(),
                                  headers={"Content-Type": "application/json"})
        assert response.status == 408


async def test_idle_and_slow_header_connections_are_closed(
        assistant: Assistant, office: Office) -> None:
    settings = Settings(keepalive_timeout=0.5, secret_key="k")
    runner = make_runner(create_app(assistant, office, settings=settings), settings)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # headers never finished
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), timeout=10) == b""  # closed by the server
        writer.close()
    finally:
        await runner.cleanup()


async def test_a_message_sent_again_gets_the_same_answer_once(
        client: TestClient[object, object], office: Office) -> None:
    chat = Chat(client)
    await chat.send(text="tra cứu hồ sơ", id="m1")
    first = await chat.send(text="000.00.19.H26-251127-0001", id="m2")
    again = await chat.send(text="000.00.19.H26-251127-0001", id="m2")  # the answer was lost
    assert [(r["text"], r["buttons"]) for r in again["replies"]] == [
        (r["text"], r["buttons"]) for r in first["replies"]]
    assert first["replies"][0]["text"].startswith("Bạn nhập số điện thoại")
    # Handled once: the conversation is still waiting for the phone number.
    status = await chat.send(text="0912 345 678", id="m3")
    assert "Trạng thái" in status["replies"][0]["text"]
    assert (await client.post("/api/chat", json={"text": "x", "id": "no spaces"})).status == 400
