"""REST API for the one-stop system: push applications and status changes, read statistics.

Every call carries an integration's API key (``Authorization: Bearer <key>`` or
``X-API-Key``); keys are stored hashed and scoped to a commune. The contract is described in
``openapi.json``, served at ``GET /api/v1/openapi.json``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.runtime import hash_key
from handlers import broadcasts, feedback
from handlers.applications import Office, save_rows, set_status, stats_for_period
from knowledge.workdays import TZ
from storage import applications as repo
from storage import feedback as feedback_repo
from storage.broadcasts import Report
from storage.domain import (
    FIRST_DAY,
    LAST_DAY,
    InvalidValue,
    TransitionRefused,
    normalize_receipt_code,
    parse_status,
    unstorable,
    within_bounds,
)
from storage.importfile import COLUMNS, read_records
from storage.models import Application, Broadcast, Feedback

log = logging.getLogger(__name__)
OFFICE = web.AppKey("office", Office)
SPEC = Path(__file__).resolve().parent / "openapi.json"
MAX_RECORDS = 1000
FEEDBACK_REF = r"/api/v1/feedback/{ref:(?:[Pp][Aa]-\d{4}-)?\d{1,9}}"  # a number or an id
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _column_size(name: str) -> int:
    length = Application.metadata.tables["application"].c[name].type.length  # type: ignore[attr-defined]
    return int(length)


# The longest value accepted per field, checked before anything is parsed or stored: the
# column's size where the value is stored as given, else room for any sensible spelling (a
# receipt code with spaces, a provincial suffix on a procedure code, official names up to
# 1,100 characters long).
FIELD_SIZES = {
    "receipt_code": 100, "procedure_code": 64, "procedure_name": 2000,
    "applicant_name": _column_size("applicant_name"), "phone": 32, "channel": 64,
    "received_at": 40, "due_at": 40, "status": 64, "completed_at": 40,
    "note": 1000, "changed_at": 40, "supplement_due_at": 40,
}
PATCH_FIELDS = ("status", "note", "changed_at", "completed_at", "correction",
                "supplement_due_at")


def _error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


def authenticated(handler: Callable[[web.Request, str], Awaitable[web.StreamResponse]]
                  ) -> Handler:
    """Require a valid key of this commune; the handler receives the integration's name."""
    async def checked(request: web.Request) -> web.StreamResponse:
        key = api_key(request)
        if not key:
            return _error(401, "missing API key (Authorization: Bearer <key>)")
        office = request.app[OFFICE]
        async with office.sessions() as session:
            integration = await repo.integration_for_key(session, hash_key(key))
        if integration is None or integration.commune_id != office.commune_id:
            return _error(401, "invalid API key")
        return await handler(request, integration.name)
    return checked


def api_key(request: web.Request) -> str:
    """The key a request carries (``Authorization: Bearer <key>`` or ``X-API-Key``), or ""."""
    header = request.headers.get("Authorization", "")
    return header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else (
        request.headers.get("X-API-Key", "").strip())


async def _json(request: web.Request) -> Any:
    try:
        return await request.json()
    # Not JSON, not in its charset, an unknown charset, an integer of more than 4,300 digits,
    # or nested 1,000 deep.
    except (ValueError, LookupError, RecursionError):
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
    # Sizes, characters and years first: what passes can be parsed and stored safely.
    problems = [{"index": index, "message": str(problem)}
                for index, record in enumerate(records, 1) for problem in _record_problems(record)]
    checked = read_records(records) if not problems else None
    if checked is not None:
        problems = [{"index": e.line, "message": e.message} for e in checked.errors]
    if checked is None or problems:
        return _error(422, "nothing was saved: fix these applications", problems=problems)
    report = await save_rows(request.app[OFFICE], checked.rows, actor=f"api:{integration}",
                             now=dt.datetime.now(dt.UTC))
    return web.json_response({"created": report.created, "updated": report.updated,
                              "unchanged": report.unchanged,
                              "notifications": report.notifications})


@authenticated
async def patch_application(request: web.Request, integration: str) -> web.StreamResponse:
    """Move an application along the one-stop workflow, with an optional note and result
    date; ``"correction": true`` with a note makes any move, recorded as a correction."""
    code = normalize_receipt_code(request.match_info["code"])
    body = await _json(request)
    if not isinstance(body, dict) or not isinstance(body.get("status"), str):
        return _error(400, "send {\"status\": \"...\"}")
    try:
        unknown = sorted(set(body) - set(PATCH_FIELDS))
        if unknown:
            raise InvalidValue(unknown[0], f"unknown field (known: {', '.join(PATCH_FIELDS)})")
        raw_status = _string(body["status"], "status")
        status = parse_status(raw_status)
        if status is None:
            raise InvalidValue("status", f"unknown status '{raw_status}'")
        note = _string(body.get("note", ""), "note", multiline=True).strip()
        correction = body.get("correction", False)
        if not isinstance(correction, bool):
            raise InvalidValue("correction", "must be true or false")
        completed = _instant(body.get("completed_at"), "completed_at")
        at = _instant(body.get("changed_at"), "changed_at") or dt.datetime.now(dt.UTC)
        if code is None:
            return _error(404, "no application with this receipt code")
        change = await set_status(request.app[OFFICE], receipt_code=code, status=status,
                                  actor=f"api:{integration}", now=at, note=note,
                                  completed_at=completed, workflow=True,
                                  correction=correction, supplement_due_at=_instant(
                                      body.get("supplement_due_at"), "supplement_due_at"))
    except InvalidValue as exc:
        return _error(422, str(exc), field=exc.field)
    except TransitionRefused as exc:
        return _error(409, f"an application that is {exc.current.value} cannot become "
                      f"{exc.wanted.value}; to correct a mistake send \"correction\": true "
                      "with a note", current=exc.current.value,
                      allowed=[s.value for s in exc.current.next_statuses])
    if change is None:
        return _error(404, "no application with this receipt code")
    return web.json_response({"receipt_code": code, "status": status.value,
                              "changed": change.status_change_id != 0})


@authenticated
async def get_stats(request: web.Request, integration: str) -> web.StreamResponse:
    """Statistics for ``from``–``to`` (dates, inclusive; default: this month)."""
    try:
        start = _date(request.query.get("from"), "from")
        end = _date(request.query.get("to"), "to")
    except InvalidValue as exc:
        return _error(422, str(exc), field=exc.field)
    if start and end and end < start:
        return _error(422, f"to: {end} is before from {start}", field="to")
    stats = await stats_for_period(request.app[OFFICE], start, end, now=dt.datetime.now(dt.UTC))
    return web.json_response(stats.report())


def _broadcast(preview: broadcasts.Preview | None = None, *, broadcast: Broadcast | None = None,
               report: Report | None = None) -> dict[str, Any]:
    """A broadcast as the API shows it."""
    item = preview.broadcast if preview else broadcast
    assert item is not None
    out: dict[str, Any] = {
        "id": item.id, "status": item.status, "audience": item.audience,
        "value": item.audience_value, "image": item.image,
        "send_at": item.send_at.isoformat() if item.send_at else None,
        "recipients": preview.recipients if preview else item.recipients}
    if preview:
        out["preview"] = preview.text
    if report:
        out["channels"] = {c: asdict(r) for c, r in {**report.channels,
                                                      "total": report.total}.items()}
    return out


def _broadcast_id(request: web.Request) -> int:
    return int(request.match_info["id"])  # the route admits 1 to 9 digits only


@authenticated
async def post_broadcast(request: web.Request, integration: str) -> web.StreamResponse:
    """Create a draft broadcast; the answer is its preview and recipient count."""
    body = await _json(request)
    if not isinstance(body, dict):
        return _error(400, "send {\"text\": \"...\"}")
    fields = {"text": body.get("text"), "link": body.get("link", ""),
              "image": body.get("image", ""), "audience": body.get("audience", "all"),
              "value": body.get("value", "")}
    for name, value in fields.items():
        if not isinstance(value, str):
            return _error(422, "must be a string", field=name)
    try:
        made = await broadcasts.create(request.app[OFFICE], created_by=f"api:{integration}",
                                       **fields)
    except broadcasts.BroadcastError as exc:
        return _error(422, str(exc))
    return web.json_response(_broadcast(made), status=201)


@authenticated
async def send_broadcast(request: web.Request, integration: str) -> web.StreamResponse:
    """Confirm a draft: send it now, or at ``at``."""
    body = await _json(request) if request.body_exists else {}
    if not isinstance(body, dict):
        return _error(400, "send {} or {\"at\": \"...\"}")
    try:
        at = _instant(body.get("at"), "changed_at")
        done = await broadcasts.schedule(request.app[OFFICE], _broadcast_id(request), at=at)
    except InvalidValue as exc:
        return _error(422, str(exc), field="at")
    except broadcasts.BroadcastError as exc:
        return _error(404 if str(exc).startswith("no broadcast") else 409, str(exc))
    return web.json_response(_broadcast(broadcast=done))


@authenticated
async def get_broadcast(request: web.Request, integration: str) -> web.StreamResponse:
    """A broadcast and its report per channel."""
    try:
        item, report = await broadcasts.status(request.app[OFFICE], _broadcast_id(request))
    except broadcasts.BroadcastError as exc:
        return _error(404, str(exc))
    return web.json_response(_broadcast(broadcast=item, report=report))


@authenticated
async def cancel_broadcast(request: web.Request, integration: str) -> web.StreamResponse:
    """Cancel a broadcast: what is not yet sent is not sent."""
    broadcast_id = _broadcast_id(request)
    try:
        stopped = await broadcasts.cancel(request.app[OFFICE], broadcast_id)
    except broadcasts.BroadcastError as exc:
        return _error(404, str(exc))
    return web.json_response({"id": broadcast_id, "status": "cancelled", "stopped": stopped})


def _feedback(report: Feedback, now: dt.datetime) -> dict[str, Any]:
    """A citizen's report as staff see it (the citizen's account id is left out)."""
    def at(value: dt.datetime | None) -> str | None:
        return value.isoformat() if value else None
    return {
        "number": feedback_repo.tracking_number(report), "id": report.id,
        "status": report.status, "kind": report.kind, "channel": report.channel,
        "receipt_code": report.receipt_code, "procedure_code": report.procedure_code,
        "description": report.description, "assignee": report.assignee,
        "answer": report.answer, "answered_by": report.answered_by,
        "filed_at": at(report.filed_at), "due_at": at(report.due_at),
        "answered_at": at(report.answered_at), "closed_at": at(report.closed_at),
        "overdue": report.status in feedback_repo.PENDING and report.due_at is not None
        and report.due_at < now}


def _feedback_field(body: object, name: str, size: int) -> str:
    """A text field of a feedback action's body: present, a string, within ``size``."""
    value = body.get(name) if isinstance(body, dict) else None
    if not isinstance(value, str) or not value.strip():
        raise InvalidValue(name, "must be a non-empty string")
    if len(value) > size:
        raise InvalidValue(name, f"longer than {size} characters")
    if unstorable(value, multiline=True):
        raise InvalidValue(name, "contains a NUL, a control character or an invalid character")
    return value.strip()


@authenticated
async def list_feedback(request: web.Request, integration: str) -> web.StreamResponse:
    """Filed reports, nearest deadline first; ``status`` (comma-separated) filters them
    (default: those waiting for an answer)."""
    wanted = tuple(s for s in request.query.get("status", "").split(",") if s) \
        or feedback_repo.PENDING
    unknown = sorted(set(wanted) - set(feedback_repo.STATUSES))
    if unknown:
        return _error(422, f"status: unknown '{unknown[0][:40]}' (known: "
                      f"{', '.join(feedback_repo.STATUSES)})", field="status")
    office, now = request.app[OFFICE], dt.datetime.now(dt.UTC)
    async with office.sessions() as session:
        reports = await feedback_repo.listing(session, commune_id=office.commune_id,
                                              statuses=wanted)
    return web.json_response({"feedback": [_feedback(r, now) for r in reports]})


@authenticated
async def get_feedback(request: web.Request, integration: str) -> web.StreamResponse:
    """One report, by tracking number or id."""
    try:
        report = await feedback.find(request.app[OFFICE], request.match_info["ref"])
    except feedback.FeedbackError as exc:
        return _error(404, str(exc))
    return web.json_response(_feedback(report, dt.datetime.now(dt.UTC)))


@authenticated
async def act_on_feedback(request: web.Request, integration: str) -> web.StreamResponse:
    """``answer`` ({"text", "by"?}: queued for the citizen), ``assign`` ({"login"}) or
    ``close`` a report."""
    office, ref, now = request.app[OFFICE], request.match_info["ref"], dt.datetime.now(dt.UTC)
    action = request.path.rsplit("/", 1)[1]
    body = await _json(request) if request.body_exists else {}
    try:
        if action == "answer":
            by = body.get("by") if isinstance(body, dict) else None
            author = f"staff:{_feedback_field(body, 'by', 64)}" if by else f"api:{integration}"
            report = await feedback.answer(office, ref, _feedback_field(body, "text", 4000),
                                           by=author, now=now)
        elif action == "assign":
            report = await feedback.assign(office, ref, _feedback_field(body, "login", 64))
        else:
            report = await feedback.close(office, ref, now=now)
    except InvalidValue as exc:
        return _error(422, str(exc), field=exc.field)
    except feedback.FeedbackError as exc:
        return _error(404 if str(exc).startswith("no report") else 422, str(exc))
    return web.json_response(_feedback(report, now))


@authenticated
async def feedback_stats(request: web.Request, integration: str) -> web.StreamResponse:
    """Reports by kind and procedure, and the satisfaction ratings, for ``from``–``to``
    (dates, inclusive; default: this month)."""
    now = dt.datetime.now(dt.UTC)
    try:
        first = _date(request.query.get("from"), "from")
        last = _date(request.query.get("to"), "to")
    except InvalidValue as exc:
        return _error(422, str(exc), field=exc.field)
    today = now.astimezone(TZ).date()
    first, last = first or today.replace(day=1), last or today
    if last < first:
        return _error(422, f"to: {last} is before from {first}", field="to")
    start = dt.datetime.combine(first, dt.time(), TZ)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), TZ)
    office = request.app[OFFICE]
    async with office.sessions() as session:
        counts = await feedback_repo.counts(session, commune_id=office.commune_id,
                                            start=start, end=end, now=now)
        ratings = await feedback_repo.distribution(session, commune_id=office.commune_id,
                                                   start=start, end=end)
    return web.json_response({
        "from": first.isoformat(), "to": last.isoformat(), "feedback": asdict(counts),
        "ratings": {"count": ratings.count, "average": ratings.average,
                    **asdict(ratings)}})


async def openapi(request: web.Request) -> web.FileResponse:
    """The API's OpenAPI description."""
    return web.FileResponse(SPEC, headers={"Content-Type": "application/json"})


def _string(value: object, name: str, *, multiline: bool = False) -> str:
    """A text field within its size, without NUL, lone surrogates or control characters."""
    if not isinstance(value, str):
        raise InvalidValue(name, "must be a string")
    if len(value) > FIELD_SIZES[name]:
        raise InvalidValue(name, f"longer than {FIELD_SIZES[name]} characters")
    if unstorable(value, multiline=multiline):
        raise InvalidValue(name, "contains a NUL, a control character or an invalid character")
    return value


# Where the year is in the dates read_records accepts: ISO 8601 first, dd/mm/yyyy last.
_YEAR = re.compile(r"\s*(\d{4})|\s*\d{1,2}[/-]\d{1,2}[/-](\d{4})")
DATE_FIELDS = ("received_at", "due_at", "completed_at")


def _record_problems(record: dict[str, Any]) -> list[InvalidValue]:
    """What makes an application unsafe to parse or store: an overlong value, a NUL or
    control character, a value that is no string, a year out of bounds."""
    problems = []
    for name, value in record.items():
        if value is None or name not in COLUMNS:
            continue  # read_records names unknown fields
        try:
            if isinstance(value, int | float) and not isinstance(value, bool):
                value = str(value)  # a phone or code sent as a number
            text = _string(value, name)
            year = _YEAR.match(text) if name in DATE_FIELDS else None
            if year and not FIRST_DAY.year <= int(year.group(1) or year.group(2)) <= LAST_DAY.year:
                raise InvalidValue(name, f"'{text}' is not between {FIRST_DAY} and {LAST_DAY}")
        except InvalidValue as exc:
            problems.append(exc)
    return problems


def _instant(value: object, name: str) -> dt.datetime | None:
    if value is None:
        return None
    text = _string(value, name)
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidValue(name, f"'{text}' is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise InvalidValue(name, f"'{text}' has no UTC offset")
    if not within_bounds(parsed):
        raise InvalidValue(name, f"'{text}' is not between {FIRST_DAY} and {LAST_DAY}")
    return parsed.astimezone(dt.UTC)


def _date(value: str | None, name: str) -> dt.date | None:
    if not value:
        return None
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise InvalidValue(name, f"'{value[:40]}' is not a date (YYYY-MM-DD)") from None
    if not within_bounds(day):
        raise InvalidValue(name, f"{day} is not between {FIRST_DAY} and {LAST_DAY}")
    return day


def add_routes(app: web.Application) -> None:
    """Mount the API on ``app`` (which holds the office under ``OFFICE``)."""
    app.router.add_post("/api/v1/applications", post_applications)
    app.router.add_patch("/api/v1/applications/{code}", patch_application)
    app.router.add_get("/api/v1/stats", get_stats)
    app.router.add_post("/api/v1/broadcasts", post_broadcast)
    app.router.add_get(r"/api/v1/broadcasts/{id:\d{1,9}}", get_broadcast)
    app.router.add_post(r"/api/v1/broadcasts/{id:\d{1,9}}/send", send_broadcast)
    app.router.add_post(r"/api/v1/broadcasts/{id:\d{1,9}}/cancel", cancel_broadcast)
    app.router.add_get("/api/v1/openapi.json", openapi)
    app.router.add_get("/api/v1/feedback", list_feedback)
    app.router.add_get("/api/v1/feedback/stats", feedback_stats)
    app.router.add_get(FEEDBACK_REF, get_feedback)
    for action in ("answer", "assign", "close"):
        app.router.add_post(f"{FEEDBACK_REF}/{action}", act_on_feedback)
