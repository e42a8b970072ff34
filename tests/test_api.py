"""The REST API for the one-stop system, over HTTP, on SQLite and PostgreSQL."""

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import select

from bot.runtime import create_api_key
from bot.web import create_app
from handlers.applications import Office
from knowledge.answer import Assistant
from knowledge.workdays import WorkCalendar
from storage import applications as repo
from storage.db import make_engine, make_sessions, session_scope
from storage.models import Application, Notification, StatusChange

APPLICATION = {
    "receipt_code": "000.00.19.H26-251127-0001", "procedure_code": "1.001193",
    "applicant_name": "Nguyễn Văn A", "phone": "0912345678", "channel": "Trực tuyến",
    "received_at": "2026-11-27T09:15:00+07:00", "status": "Đang xử lý",
}
Client = TestClient[object, object]


@pytest.fixture
def office(empty_office: Office) -> Office:
    """The API tests push the sample application themselves: start empty."""
    return empty_office


@pytest.fixture
async def client(office: Office, assistant: Assistant) -> AsyncIterator[tuple[Client, str]]:
    key = await create_api_key(office, "mot-cua-tinh")
    async with TestClient(TestServer(create_app(assistant, office))) as test_client:
        yield test_client, key


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_push_is_idempotent_and_computes_the_due_date(client: tuple[Client, str],
                                                            office: Office) -> None:
    http, key = client
    first = await http.post("/api/v1/applications", json=APPLICATION, headers=auth(key))
    assert first.status == 200
    assert await first.json() == {"created": 1, "updated": 0, "unchanged": 0, "notifications": 0}
    again = await http.post("/api/v1/applications", json={"applications": [APPLICATION]},
                            headers={"X-API-Key": key})
    assert (await again.json())["unchanged"] == 1
    async with office.sessions() as s:
        app = (await s.exec(select(Application))).one()
    assert app.procedure_name == "Thủ tục đăng ký khai sinh" and app.field == "Hộ tịch"
    # Received 09:15 local on a Friday, before the 15:00 cutoff: due that day at 17:00 local.
    assert app.due_at is not None and app.due_at.isoformat() == "2026-11-27T10:00:00+00:00"
    assert not app.due_estimated  # same day: 1 working day under Luật Hộ tịch Điều 16


async def test_status_change_reaches_followers(client: tuple[Client, str], office: Office) -> None:
    http, key = client
    await http.post("/api/v1/applications", json=APPLICATION, headers=auth(key))
    async with session_scope(office.sessions) as s:
        app = (await s.exec(select(Application))).one()
        assert app.id is not None
        await repo.subscribe(s, commune_id=office.commune_id, application_id=app.id,
                             channel="zalo", recipient="u-1", lang="en")
    response = await http.patch("/api/v1/applications/000.00.19.h26-251127-0001",
                                json={"status": "result_ready", "note": "ký ngày 28"},
                                headers=auth(key))
    assert response.status == 200
    assert (await response.json())["changed"] is True
    async with office.sessions() as s:
        queued = (await s.exec(select(Notification))).all()
        steps = (await s.exec(select(StatusChange))).all()
    assert [(n.channel, n.recipient) for n in queued] == [("zalo", "u-1")]
    assert "Status: result ready for collection" in queued[0].text
    assert [(c.status, c.changed_by) for c in steps][-1] == ("result_ready", "api:mot-cua-tinh")


@pytest.mark.parametrize(("headers", "status"), [({}, 401), ({"X-API-Key": "forged"}, 401),
                                                 ({"Authorization": "Bearer "}, 401)])
async def test_calls_without_a_valid_key_are_refused(client: tuple[Client, str],
                                                     headers: dict[str, str], status: int) -> None:
    http, _ = client
    response = await http.post("/api/v1/applications", json=APPLICATION, headers=headers)
    assert response.status == status
    assert (await http.get("/api/v1/stats", headers=headers)).status == status


async def test_revoked_key_is_refused(client: tuple[Client, str], office: Office) -> None:
    http, key = client
    async with session_scope(office.sessions) as s:
        assert await repo.revoke_integration_keys(s, commune_id=office.commune_id,
                                                  name="mot-cua-tinh",
                                                  at=dt.datetime.now(dt.UTC)) == 1
    assert (await http.get("/api/v1/stats", headers=auth(key))).status == 401


async def test_invalid_batches_save_nothing_and_say_why(client: tuple[Client, str],
                                                        office: Office) -> None:
    http, key = client
    bad = dict(APPLICATION, receipt_code="000.00.19.H26-251127-0002", received_at="31/02/2026")
    response = await http.post("/api/v1/applications", json=[APPLICATION, bad], headers=auth(key))
    assert response.status == 422
    problems = (await response.json())["problems"]
    assert problems == [{"index": 2, "message":
                         "received_at: '31/02/2026' is not a date "
                         "(dd/mm/yyyy[ HH:MM] or ISO 8601)"}]
    async with office.sessions() as s:
        assert (await s.exec(select(Application))).all() == []
    for body, status in ((b"{oops", 400), (b'"text"', 400), (b"[" * 1000 + b"]" * 1000, 400)):
        r = await http.post("/api/v1/applications", data=body, headers=auth(key))
        assert r.status == status
    unknown = await http.patch("/api/v1/applications/NO-SUCH-CODE", json={"status": "returned"},
                               headers=auth(key))
    assert unknown.status == 404
    wrong = await http.patch("/api/v1/applications/NO-SUCH-CODE", json={"status": "lost"},
                             headers=auth(key))
    assert wrong.status == 422


async def test_stats_over_http(client: tuple[Client, str]) -> None:
    http, key = client
    await http.post("/api/v1/applications", json=APPLICATION, headers=auth(key))
    response = await http.get("/api/v1/stats?from=2026-11-01&to=2026-11-30", headers=auth(key))
    report = await response.json()
    assert (report["received"], report["online"], report["in_progress"]) == (1, 1, 1)
    assert (await http.get("/api/v1/stats?from=yesterday", headers=auth(key))).status == 422


async def test_openapi_describes_every_route(client: tuple[Client, str]) -> None:
    http, _ = client
    spec = await (await http.get("/api/v1/openapi.json")).json()
    assert spec["openapi"].startswith("3.")
    served = {(r.method.lower(), r.resource.canonical)
              for r in http.app.router.routes()
              if r.resource is not None and r.resource.canonical.startswith("/api/v1")
              and r.method != "HEAD"}
    described = {(method, path) for path, item in spec["paths"].items() for method in item}
    assert served == described


def test_health_reports_a_missing_database(assistant: Assistant, tmp_path: Path) -> None:
    async def check() -> int:
        engine = make_engine(f"postgresql://nobody@127.0.0.1:1/{tmp_path.name}")
        office = Office(make_sessions(engine), 1, assistant.kb, WorkCalendar())
        async with TestClient(TestServer(create_app(assistant, office))) as http:
            status = (await http.get("/healthz")).status
        await engine.dispose()
        return status

    assert asyncio.run(check()) == 503
