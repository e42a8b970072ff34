"""Logs hold ids and counts, never a citizen's name, phone number or message text."""

import logging
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.runtime import create_api_key
from bot.settings import Settings
from bot.web import SESSION_HEADER, create_app
from handlers.applications import Office
from knowledge.answer import Assistant

NAME = "Phạm Thị Riêngtư"
PHONE = "0987123456"
QUESTION = "con tôi tên Bảo Ngọc Bímật sinh ở viện, làm giấy khai sinh cần gì"
CODE = "000.00.19.H26-261201-0042"
ROOMY = Settings(limit_chat_user="1000/minute", limit_chat_address="1000/minute",
                 limit_address="1000/minute", secret_key="test-secret")


@pytest.fixture
async def client(empty_office: Office, assistant: Assistant
                 ) -> AsyncIterator[tuple[TestClient[object, object], str]]:
    key = await create_api_key(empty_office, "one-stop")
    async with TestClient(TestServer(create_app(assistant, empty_office, settings=ROOMY,
                                                staff_channel=True))) as http:
        yield http, key


async def test_logs_never_hold_names_phones_or_messages(
        client: tuple[TestClient[object, object], str], caplog: pytest.LogCaptureFixture
) -> None:
    http, key = client
    caplog.set_level(logging.DEBUG)  # everything, SQLAlchemy's statements included
    logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)
    auth = {"Authorization": f"Bearer {key}"}
    application = {"receipt_code": CODE, "procedure_code": "1.001193", "applicant_name": NAME,
                   "phone": PHONE, "channel": "online", "received_at": "2026-12-01T08:00:00+07:00",
                   "status": "received"}
    assert (await http.post("/api/v1/applications", json=application, headers=auth)).status == 200
    # The same receipt code with a name too long for its column: refused, and not logged.
    too_long = {**application, "applicant_name": NAME * 20}
    assert (await http.post("/api/v1/applications", json=too_long, headers=auth)).status == 422
    assert (await http.patch(f"/api/v1/applications/{CODE}", json={
        "status": "supplement_required", "note": f"thiếu giấy của {NAME}"},
        headers=auth)).status == 200
    chat = await http.post("/api/chat", json={"text": QUESTION})
    session = (await chat.json())["session"]
    for text in [CODE, PHONE, "cho tôi gặp cán bộ", f"tôi là {NAME}, sđt {PHONE}"]:
        response = await http.post("/api/chat", json={"text": text},
                                   headers={SESSION_HEADER: session})
        assert response.status == 200
    logged = caplog.text
    assert "SELECT" in logged or "INSERT" in logged  # the statements were logged…
    for secret in (NAME, PHONE, PHONE[-4:] + "'", "Bímật", "Riêngtư"):
        assert secret not in logged  # …but never their values
