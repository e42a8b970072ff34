"""PostgreSQL going away in each way it does: the web chat, the REST API and the Telegram webhook
answer so that the message comes again (503), lose nothing, and answer it once when it does."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.runtime import create_api_key
from bot.settings import Settings, TelegramConfig
from bot.telegram import add_telegram_routes, build_application
from bot.web import DIALOGUE, SESSION_HEADER, create_app
from handlers.applications import Office
from knowledge.answer import Assistant
from knowledge.workdays import WorkCalendar
from storage import applications as repo
from storage.db import make_engine, make_sessions, session_scope, upgrade
from tests.conftest import POSTGRES, admin
from tests.fakes.telegram import FakeTelegram, text_update
from tests.samples import CODE, record

TOKEN = "123456:OUTAGE"
SECRET = "outage-secret-123456"
ROOMY = Settings(limit_chat_user="1000/minute", limit_chat_address="1000/minute",
                 limit_address="1000/minute", secret_key="test-secret")


@dataclass
class Rig:
    name: str
    http: TestClient[object, object]
    fake: FakeTelegram
    api_key: str

    async def terminate(self) -> None:
        await admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    f"WHERE datname = '{self.name}' AND pid <> pg_backend_pid()")

    async def chat(self, text: str, session: str = "") -> tuple[int, dict[str, object]]:
        response = await self.http.post("/api/chat", json={"text": text},
                                        headers={SESSION_HEADER: session} if session else {})
        return response.status, await response.json()

    async def telegram(self, update_id: int, chat_id: int, text: str) -> int:
        response = await self.http.post(
            "/webhook/telegram", json=text_update(update_id, chat_id, text),
            headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
        return response.status

    async def api(self) -> int:
        response = await self.http.patch(f"/api/v1/applications/{CODE}",
                                         json={"status": "processing"},
                                         headers={"Authorization": f"Bearer {self.api_key}"})
        return response.status


@pytest.fixture
async def rig(assistant: Assistant) -> AsyncIterator[Rig]:
    """The whole server on a PostgreSQL database of its own (outages hit only it)."""
    name = f"motcua_outage_{uuid.uuid4().hex[:10]}"
    await admin(f'CREATE DATABASE "{name}"')
    url = f"{POSTGRES}/{name}"
    await upgrade(url)
    engine = make_engine(url)
    sessions = make_sessions(engine)
    async with session_scope(sessions) as s:
        commune = await repo.ensure_commune(s, slug="hat-mon", name="Xã Hát Môn")
        await repo.upsert_applications(s, commune_id=commune, actor="test",
                                       now=record().received_at, records=[record(CODE)])
    office = Office(sessions, commune, assistant.kb, WorkCalendar.for_commune("hat-mon"))
    key = await create_api_key(office, "one-stop")
    fake = FakeTelegram(TOKEN)
    try:
        async with TestServer(fake.app()) as api:
            config = TelegramConfig(token=TOKEN, webhook_secret=SECRET,
                                    api_base_url=str(api.make_url("")).rstrip("/"))
            app = create_app(assistant, office, settings=ROOMY)
            application = build_application(config, app[DIALOGUE])
            add_telegram_routes(app, application, config)
            async with TestClient(TestServer(app)) as http:
                yield Rig(name, http, fake, key)
    finally:
        await engine.dispose()
        await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def refusing(rig: Rig) -> Callable[[], Awaitable[None]]:
    await admin(f'ALTER DATABASE "{rig.name}" ALLOW_CONNECTIONS false')
    await rig.terminate()

    async def back() -> None:
        await admin(f'ALTER DATABASE "{rig.name}" ALLOW_CONNECTIONS true')
    return back


async def read_only(rig: Rig) -> Callable[[], Awaitable[None]]:
    await admin(f'ALTER DATABASE "{rig.name}" SET default_transaction_read_only = on')
    await rig.terminate()

    async def back() -> None:
        await admin(f'ALTER DATABASE "{rig.name}" RESET default_transaction_read_only')
        await rig.terminate()
    return back


@pytest.mark.parametrize("outage", [refusing, read_only])
async def test_an_outage_asks_for_the_message_again_and_loses_nothing(
        rig: Rig, outage: Callable[[Rig], Awaitable[Callable[[], Awaitable[None]]]]) -> None:
    status, answer = await rig.chat("xin chào")
    assert status == 200
    session = str(answer["session"])
    back = await outage(rig)
    try:
        assert (await rig.chat("làm giấy khai sinh cần gì", session))[0] == 503
        assert await rig.telegram(1, 801, "làm giấy khai sinh cần gì") == 503
        assert await rig.api() == 503
        if outage is refusing:  # a read-only database still answers the health check
            assert (await rig.http.get("/healthz")).status == 503
        assert rig.fake.delivered(801) == []
    finally:
        await back()
    # The page sends the kept text again, Telegram the update, the one-stop system its call.
    status, answer = await rig.chat("làm giấy khai sinh cần gì", session)
    assert status == 200 and "Giấy chứng sinh" in str(answer["replies"])
    assert await rig.telegram(1, 801, "làm giấy khai sinh cần gì") == 200
    assert await rig.telegram(1, 801, "làm giấy khai sinh cần gì") == 200  # once more
    assert len(rig.fake.delivered(801)) == 1
    assert await rig.api() == 200


async def test_terminated_connections_are_replaced_unnoticed(rig: Rig) -> None:
    assert await rig.telegram(1, 802, "/start") == 200
    await rig.terminate()
    assert await rig.telegram(2, 802, "/start") == 200
    await asyncio.sleep(0)
    assert len(rig.fake.delivered(802)) == 2

