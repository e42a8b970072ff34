"""The REST API for the one-stop system, over HTTP, on SQLite and PostgreSQL."""

import asyncio
import datetime as dt
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import col, select

from bot.runtime import create_api_key
from bot.web import create_app
from handlers.applications import Office
from knowledge.answer import Assistant
from knowledge.workdays import WorkCalendar
from storage import applications as repo
from storage.db import make_engine, make_sessions, session_scope
from storage.domain import ApplicationStatus
from storage.models import Application, Notification, StatusChange

APPLICATION = {
    "receipt_code": "000.00.19.H26-251127-0001", "procedure_code": "1.001193",
    "applicant_name": "Nguyễn Văn A", "phone": "0912345678", "channel": "Trực tuyến",
    "received_at": "2026-11-27T09:15:00+07:00", "status": "Đang xử lý",
}
Client = TestClient[web.Request, web.Application]


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


PATH = "/api/v1/applications/000.00.19.H26-251127-0001"


async def _history(office: Office) -> list[tuple[str, str, str]]:
    async with office.sessions() as s:
        steps = (await s.exec(select(StatusChange).order_by(col(StatusChange.id)))).all()
    return [(c.status, c.changed_by, c.note) for c in steps]


def test_closed_statuses_are_final_and_open_ones_lead_somewhere() -> None:
    for status in ApplicationStatus:
        assert (status.next_statuses == ()) is status.closed
        assert status not in status.next_statuses


async def test_status_changes_follow_the_one_stop_workflow(client: tuple[Client, str],
                                                           office: Office) -> None:
    http, key = client
    await http.post("/api/v1/applications", json=APPLICATION, headers=auth(key))  # processing
    skipped = await http.patch(PATH, json={"status": "returned"}, headers=auth(key))
    assert skipped.status == 409
    assert (await skipped.json())["allowed"] == [
        "supplement_required", "result_ready", "rejected", "withdrawn"]
    for status in ("result_ready", "Đã trả kết quả"):
        moved = await http.patch(PATH, json={"status": status}, headers=auth(key))
        assert (moved.status, (await moved.json())["changed"]) == (200, True)
    back = await http.patch(PATH, json={"status": "received"}, headers=auth(key))
    assert back.status == 409
    assert {k: v for k, v in (await back.json()).items() if k != "error"} == {
        "current": "returned", "allowed": []}
    bare = await http.patch(PATH, json={"status": "received", "correction": True},
                            headers=auth(key))
    assert (bare.status, (await bare.json())["field"]) == (422, "note")
    fixed = await http.patch(PATH, json={"status": "processing", "correction": True,
                                         "note": "trả nhầm hồ sơ"}, headers=auth(key))
    assert (fixed.status, (await fixed.json())["changed"]) == (200, True)
    assert (await _history(office))[-3:] == [
        ("result_ready", "api:mot-cua-tinh", ""), ("returned", "api:mot-cua-tinh", ""),
        ("processing", "api:mot-cua-tinh", "correction: trả nhầm hồ sơ")]


async def test_imports_may_set_any_status_and_it_is_recorded(client: tuple[Client, str],
                                                             office: Office) -> None:
    http, key = client
    for status in ("returned", "received"):  # the system of record says so
        pushed = await http.post("/api/v1/applications", json=dict(APPLICATION, status=status),
                                 headers=auth(key))
        assert pushed.status == 200
    assert [s for s, _, _ in await _history(office)] == ["received", "returned", "received"]


async def test_repeating_a_status_tells_followers_nothing(client: tuple[Client, str],
                                                          office: Office) -> None:
    http, key = client
    await http.post("/api/v1/applications", json=APPLICATION, headers=auth(key))
    async with session_scope(office.sessions) as s:
        app = (await s.exec(select(Application))).one()
        assert app.id is not None
        await repo.subscribe(s, commune_id=office.commune_id, application_id=app.id,
                             channel="zalo", recipient="u-1", lang="vi")
    asked = {"status": "supplement_required", "note": "Bổ sung bản sao CCCD"}
    first = await http.patch(PATH, json=asked, headers=auth(key))
    assert (await first.json())["changed"] is True
    for body in (asked, asked, {"status": "supplement_required"},
                 dict(asked, note="Bổ sung bản sao CCCD và giấy kết hôn")):
        again = await http.patch(PATH, json=body, headers=auth(key))
        assert (again.status, (await again.json())["changed"]) == (200, False)
    async with office.sessions() as s:
        assert len((await s.exec(select(Notification))).all()) == 1
    # The newer note is kept (it is what the citizen is told to bring), once.
    assert [(s, n) for s, _, n in await _history(office)][-2:] == [
        ("supplement_required", "Bổ sung bản sao CCCD"),
        ("supplement_required", "Bổ sung bản sao CCCD và giấy kết hôn")]


@pytest.mark.parametrize(("change", "message"), [
    ({"applicant_name": "A" * 201}, "applicant_name: longer than 200 characters"),
    ({"applicant_name": "Nguyễn\x00Văn A"}, "applicant_name: contains a NUL"),
    ({"applicant_name": "Nguyễn \ud800"}, "applicant_name: contains a NUL"),
    ({"procedure_name": "Khai sinh\x1b[2J"}, "procedure_name: contains a NUL"),
    ({"applicant_name": {"first": "A"}}, "applicant_name: must be a string"),
    ({"received_at": "0001-01-01"}, "received_at: '0001-01-01' is not between 2000-01-01"),
    ({"received_at": "31/12/9999 23:59"}, "received_at: '31/12/9999 23:59' is not between"),
    ({"due_at": "9999-12-31T23:59:59-12:00"}, "due_at: '9999-12-31T23:59:59-12:00' is not"),
    ({"completed_at": "26/11/2026"}, "completed_at: '26/11/2026' is before received_at"),
    ({"due_at": "2026-11-26T17:00:00+07:00"}, "due_at: '26/11/2026 17:00 +0700' is before"),
])
async def test_invalid_values_are_refused_before_the_database(
        client: tuple[Client, str], office: Office, change: dict[str, Any], message: str) -> None:
    http, key = client
    response = await http.post("/api/v1/applications", json=dict(APPLICATION, **change),
                               headers=auth(key))
    assert response.status == 422
    assert (await response.json())["problems"][0]["message"].startswith(message)
    async with office.sessions() as s:
        assert (await s.exec(select(Application))).all() == []


@pytest.mark.parametrize(("body", "field"), [
    ({"status": "result_ready", "changed_at": "9999-12-31T23:00:00+00:00"}, "changed_at"),
    ({"status": "result_ready", "completed_at": "0001-01-01T00:00:00+07:00"}, "completed_at"),
    ({"status": "result_ready", "completed_at": "2026-11-26T09:00:00+07:00"}, "completed_at"),
    ({"status": "result_ready", "completed_at": "2026-11-28T09:00:00"}, "completed_at"),
    ({"status": "result_ready", "note": "x" * 1001}, "note"),
    ({"status": "result_ready", "note": "ký\x00"}, "note"),
    ({"status": "result_ready", "correction": "yes", "note": "n"}, "correction"),
    ({"status": "result_ready", "comment": "n"}, "comment"),
    ({"status": "x" * 65}, "status"),
    ({"status": "lost"}, "status"),
])
async def test_invalid_changes_are_refused_and_change_nothing(
        client: tuple[Client, str], office: Office, body: dict[str, Any], field: str) -> None:
    http, key = client
    await http.post("/api/v1/applications", json=APPLICATION, headers=auth(key))
    response = await http.patch(PATH, json=body, headers=auth(key))
    assert (response.status, (await response.json())["field"]) == (422, field)
    async with office.sessions() as s:
        assert (await s.exec(select(Application))).one().status == "processing"
    assert len(await _history(office)) == 2  # received, processing: as pushed


async def test_a_note_spanning_lines_is_kept(client: tuple[Client, str], office: Office) -> None:
    http, key = client
    await http.post("/api/v1/applications", json=APPLICATION, headers=auth(key))
    note = "Bổ sung:\n- bản sao CCCD\n- giấy kết hôn"
    response = await http.patch(PATH, json={"status": "supplement_required", "note": note},
                                headers=auth(key))
    assert response.status == 200
    assert (await _history(office))[-1][2] == note


@pytest.mark.parametrize(("query", "field"), [
    ("from=0001-01-01", "from"), ("to=9999-12-31", "to"), ("from=2026-12-01&to=2026-11-01", "to"),
])
async def test_stats_periods_are_bounded_and_in_order(client: tuple[Client, str], query: str,
                                                      field: str) -> None:
    http, key = client
    response = await http.get(f"/api/v1/stats?{query}", headers=auth(key))
    assert (response.status, (await response.json())["field"]) == (422, field)


async def test_bodies_that_are_not_json_get_400(client: tuple[Client, str]) -> None:
    http, key = client
    for body, content_type in ((b"1" * 5000, "application/json"),
                               (b'{"status": "x"}', "application/json; charset=no-such"),
                               (b'{"status": "\xff"}', "application/json")):
        headers = {**auth(key), "Content-Type": content_type}
        assert (await http.post("/api/v1/applications", data=body, headers=headers)).status == 400
        assert (await http.patch(PATH, data=body, headers=headers)).status == 400


@pytest.mark.parametrize("where", ["sqlite", "postgresql"])
def test_a_database_away_answers_503_with_retry_after(assistant: Assistant, tmp_path: Path,
                                                      where: str) -> None:
    url = (f"sqlite:///{tmp_path}/no-such-folder/motcua.sqlite3" if where == "sqlite" else
           f"postgresql://nobody@127.0.0.1:1/{tmp_path.name}")

    async def call() -> list[tuple[int, str | None]]:
        engine = make_engine(url)
        office = Office(make_sessions(engine), 1, assistant.kb, WorkCalendar())
        async with TestClient(TestServer(create_app(assistant, office))) as http:
            answers = [await http.post("/api/v1/applications", json=APPLICATION,
                                       headers=auth("some-key")),
                       await http.patch(PATH, json={"status": "returned"},
                                        headers=auth("some-key")),
                       await http.get("/api/v1/stats", headers=auth("some-key"))]
            statuses = [(r.status, r.headers.get("Retry-After")) for r in answers]
        await engine.dispose()
        return statuses

    assert asyncio.run(call()) == [(503, "5")] * 3


async def test_an_unexpected_error_is_a_500_that_logs_no_personal_data(
        client: tuple[Client, str], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    http, key = client

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError(f"{APPLICATION['applicant_name']} {APPLICATION['phone']}")

    monkeypatch.setattr("bot.api.save_rows", broken)
    with caplog.at_level(logging.INFO):
        response = await http.post("/api/v1/applications", json=APPLICATION, headers=auth(key))
    assert response.status == 500
    assert "RuntimeError" in caplog.text
    assert "Nguyễn" not in caplog.text and "0912345678" not in caplog.text
