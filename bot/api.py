"""REST API for the one-stop system: push applications and status changes, read statistics.

Every call carries an integration's API key (``Authorization: Bearer <key>`` or
``X-API-Key``); keys are stored hashed and scoped to a commune. The contract is described in
``openapi.json``, served at ``GET /api/v1/openapi.json``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.runtime import hash_key
from handlers.applications import Office, save_rows, set_status, stats_for_period
from storage import applications as repo
from storage.domain import normalize_receipt_code, parse_status
from storage.importfile import read_records

OFFICE = web.AppKey("office", Office)
SPEC = Path(__file__).resolve().parent / "openapi.json"
MAX_RECORDS = 1000
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


def authenticated(handler: Callable[[web.Request, str], Awaitable[web.StreamResponse]]
                  ) -> Handler:
    """Require a valid key of this commune; the handler receives the integration's name."""
    async def checked(request: web.Request) -> web.StreamResponse:
        header = request.headers.get("Authorization", "")
        key = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else (
            request.headers.get("X-API-Key", "").strip())
        if not key:
            return _error(401, "missing API key (Authorization: Bearer <key>)")
        office = request.app[OFFICE]
        async with office.sessions() as session:
            integration = await repo.integration_for_key(session, hash_key(key))
        if integration is None or integration.commune_id != office.commune_id:
            return _error(401, "invalid API key")
        return await handler(request, integration.name)
    return checked


async def _json(request: web.Request) -> Any:
    try:
        return await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):  # nested 1,000 deep
        raise web.HTTPBadRequest(text=json.dumps({"error": "body must be JSON"}),
                                 content_type="application/json") from None


@authenticated
async def post_applications(request: web.Request, integration: str) -> web.StreamResponse:
    """Create or update applications (idempotent by receipt code); all or nothing."""
    body = await _json(request)
    records = body.get("applications") if isinstance(body, dict) and "applications" in body \
        else [body] if isinstance(body, dict) else body
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        return _error(400, "send an application object, a list, or {\"applications\": [...]}")
    if len(records) > MAX_RECORDS:
        return _error(413, f"at most {MAX_RECORDS} applications per request")
    checked = read_records(records)
    if checked.errors:
        return _error(422, "nothing was saved: fix these applications",
                      problems=[{"index": e.line, "message": e.message} for e in checked.errors])
    report = await save_rows(request.app[OFFICE], checked.rows, actor=f"api:{integration}",
                             now=dt.datetime.now(dt.UTC))
    return web.json_response({"created": report.created, "updated": report.updated,
                              "unchanged": report.unchanged,
                              "notifications": report.notifications})


@authenticated
async def patch_application(request: web.Request, integration: str) -> web.StreamResponse:
    """Change an application's status, with an optional note and result date."""
    code = normalize_receipt_code(request.match_info["code"])
    body = await _json(request)
    if not isinstance(body, dict) or not isinstance(body.get("status"), str):
        return _error(400, "send {\"status\": \"...\"}")
    status = parse_status(body["status"])
    if status is None:
        return _error(422, f"unknown status '{body['status']}'")
    try:
        completed = _instant(body.get("completed_at"))
        at = _instant(body.get("changed_at")) or dt.datetime.now(dt.UTC)
    except ValueError as exc:
        return _error(422, str(exc))
    change = None if code is None else await set_status(
        request.app[OFFICE], receipt_code=code, status=status, actor=f"api:{integration}",
        now=at, note=str(body.get("note", ""))[:1000], completed_at=completed)
    if change is None:
        return _error(404, "no application with this receipt code")
    return web.json_response({"receipt_code": code, "status": status.value,
                              "changed": change.status_change_id != 0})


@authenticated
async def get_stats(request: web.Request, integration: str) -> web.StreamResponse:
    """Statistics for ``from``–``to`` (dates, inclusive; default: this month)."""
    try:
        start = _date(request.query.get("from"))
        end = _date(request.query.get("to"))
    except ValueError as exc:
        return _error(422, str(exc))
    stats = await stats_for_period(request.app[OFFICE], start, end, now=dt.datetime.now(dt.UTC))
    return web.json_response(stats.report())


async def openapi(request: web.Request) -> web.FileResponse:
    """The API's OpenAPI description."""
    return web.FileResponse(SPEC, headers={"Content-Type": "application/json"})


def _instant(value: object) -> dt.datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("times are ISO 8601 strings with an offset")
    parsed = dt.datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"'{value}' has no UTC offset")
    return parsed.astimezone(dt.UTC)


def _date(value: str | None) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"'{value}' is not a date (YYYY-MM-DD)") from None


def add_routes(app: web.Application) -> None:
    """Mount the API on ``app`` (which holds the office under ``OFFICE``)."""
    app.router.add_post("/api/v1/applications", post_applications)
    app.router.add_patch("/api/v1/applications/{code}", patch_application)
    app.router.add_get("/api/v1/stats", get_stats)
    app.router.add_get("/api/v1/openapi.json", openapi)
