"""The console's Applications pages: find an application, change its status, import an export.

A status change is shown first as the exact message its followers will receive
(``handlers.status.change_message``, as the outbox gets it), then saved by
``handlers.applications.set_status`` with the workflow checked, as the REST API's PATCH does.
An import is read and compared with the database first (new applications, status changes,
refused rows), then applied by ``handlers.applications.import_file``, as the CLI does; the
uploaded file waits in a private temporary folder in between.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from bot.api import OFFICE, Handler
from bot.console import (
    CONSOLE,
    PREFIX,
    Staff,
    page_language,
    redirect,
    refuse,
    render,
    staff_required,
)
from handlers.applications import Office, import_file, set_status, to_record
from handlers.status import STATUS_LABELS, change_message, overdue
from knowledge.i18n import N_, Text, language
from knowledge.workdays import TZ
from storage import applications as repo
from storage import staff
from storage.db import session_scope
from storage.domain import (
    ApplicationStatus,
    InvalidValue,
    TransitionRefused,
    unstorable,
    within_bounds,
)
from storage.importfile import (
    END_OF_DAY_HOUR,
    ImportFile,
    ImportFileError,
    ImportLimits,
    read_applications,
)
from storage.models import Application

log = logging.getLogger(__name__)
ROWS_PER_PAGE = 50
MAX_PAGES = 20  # past 1,000 results a narrower search is quicker than paging
NOTE_SIZE = 1000  # as the REST API accepts (bot.api.FIELD_SIZES)
SHOWN = 100  # new applications / status changes listed in an import preview
UPLOADS = Path(tempfile.gettempdir()) / "motcua-console-imports"
UPLOAD_KEPT = 3600  # seconds an uploaded file waits for "Import"
UPLOAD_TIMEOUT = 600  # seconds to receive and read an upload (the importer's worst case: 74 s)
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
SUFFIXES = (".csv", ".xlsx")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _office(request: web.Request, who: Staff) -> Office:
    """The office of the signed-in staff member's commune."""
    return who.served.office


def _day(text: str | None) -> dt.date | None:
    try:
        day = dt.date.fromisoformat((text or "").strip())
    except ValueError:
        return None
    return day if within_bounds(day) else None


def _status(text: str) -> ApplicationStatus | None:
    try:
        return ApplicationStatus(text)
    except ValueError:
        return None


def _local(day: dt.date, hour: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), TZ)


@staff_required()
async def search(request: web.Request, who: Staff) -> web.StreamResponse:
    """``GET /console/applications``: applications by code, name or phone, filtered."""
    query = request.query
    status = query.get("status", "")
    first, last = _day(query.get("due_from")), _day(query.get("due_to"))
    if first and last and last < first:
        first, last = last, first
    office = _office(request, who)
    now = _now()
    filters = repo.SearchFilters(
        text=query.get("q", ""),
        status=_status(status),
        procedure_code=query.get("procedure", "").strip()[:16],
        due_from=_local(first) if first else None,
        due_before=_local(last + dt.timedelta(days=1)) if last else None,
        overdue_at=now if query.get("overdue") else None)
    try:
        page = min(max(int(query.get("page", "1")), 1), MAX_PAGES)
    except ValueError:
        page = 1
    async with office.sessions() as session:
        found = await repo.search_applications(
            session, commune_id=who.commune_id, filters=filters, limit=ROWS_PER_PAGE + 1,
            offset=(page - 1) * ROWS_PER_PAGE)
    kept = {k: v for k, v in query.items() if k not in ("page", "lang") and v}

    def page_link(number: int) -> str:
        return f"{PREFIX}/applications?{urlencode({**kept, 'page': number})}"

    more = len(found) > ROWS_PER_PAGE
    return render(
        request, "applications.html", staff_member=who, filters=filters,
        query={"q": query.get("q", "")[:100], "status": status, "procedure": filters.procedure_code,
               "due_from": first.isoformat() if first else "",
               "due_to": last.isoformat() if last else "", "overdue": bool(query.get("overdue"))},
        statuses=[(s.value, STATUS_LABELS[s]) for s in ApplicationStatus],
        procedures=sorted(((p.code, p.short_name or p.name) for p in office.kb.procedures.values()),
                          key=lambda item: item[1]),
        rows=[_row(app, now) for app in found[:ROWS_PER_PAGE]], searched=bool(kept),
        page=page, previous=page_link(page - 1) if page > 1 else "",
        next=page_link(page + 1) if more and page < MAX_PAGES else "",
        capped=more and page == MAX_PAGES)


def _row(app: Application, now: dt.datetime) -> dict[str, Any]:
    """What the pages show of an application (local dates)."""
    status = ApplicationStatus(app.status)
    return {"id": app.id, "code": app.receipt_code, "name": app.applicant_name,
            "phone": app.phone or "", "procedure": app.procedure_name or app.procedure_code or "",
            "procedure_code": app.procedure_code or "", "status": STATUS_LABELS[status],
            "received": app.received_at.astimezone(TZ).date(),
            "due": app.due_at.astimezone(TZ).date() if app.due_at else None,
            "due_estimated": app.due_estimated, "overdue": overdue(app, now),
            "completed": app.completed_at.astimezone(TZ).date() if app.completed_at else None,
            "supplement_due": app.supplement_due_at.astimezone(TZ).date()
            if app.supplement_due_at else None}


async def _application(request: web.Request, who: Staff) -> Application | None:
    """The application of the URL, if it belongs to the staff member's commune."""
    try:
        application_id = int(request.match_info["id"])
    except ValueError:
        return None
    async with request.app[OFFICE].sessions() as session:
        app = await session.get(Application, application_id)
    return app if app is not None and app.commune_id == who.commune_id else None


def _missing(request: web.Request, who: Staff) -> web.Response:
    return refuse(request, 404, N_("There is no such application in your commune."),
                  staff_member=who)


@staff_required()
async def detail(request: web.Request, who: Staff) -> web.StreamResponse:
    """``GET /console/applications/{id}``: the application, its history, the change form."""
    app = await _application(request, who)
    if app is None:
        return _missing(request, who)
    saved = request.query.get("saved", "")
    return await _detail_page(request, who, app, status=200, error="",
                              saved=_status(saved) is not None, form=StatusForm())


async def _detail_page(request: web.Request, who: Staff, app: Application, *, status: int,
                       error: str, saved: bool, form: StatusForm) -> web.Response:
    assert app.id is not None
    async with request.app[OFFICE].sessions() as session:
        changes = await repo.history(session, app.id)
        followers = len((await repo.subscribers(session, [app.id])).get(app.id, []))
    current = ApplicationStatus(app.status)
    return render(
        request, "applications_detail.html", status=status, staff_member=who, app=_row(app, _now()),
        history=[{"status": STATUS_LABELS[ApplicationStatus(c.status)],
                  "at": c.changed_at.astimezone(TZ).strftime("%d/%m/%Y %H:%M"),
                  "by": c.changed_by, "note": c.note} for c in changes],
        followers=followers, error=error, saved=saved, form=form,
        allowed=[(s.value, STATUS_LABELS[s]) for s in current.next_statuses],
        asks_supplement=ApplicationStatus.SUPPLEMENT_REQUIRED in current.next_statuses)


@dataclass(frozen=True)
class StatusForm:
    """The status-change form as staff filled it in."""

    status: str = ""
    note: str = ""
    supplement_due: str = ""  # a local date, yyyy-mm-dd


@staff_required()
async def change(request: web.Request, who: Staff) -> web.StreamResponse:
    """``POST /console/applications/{id}/status``: preview the follower's message, or (with
    ``step=confirm``) save the change as the REST API does and notify the followers."""
    app = await _application(request, who)
    if app is None or app.id is None:
        return _missing(request, who)
    posted = await request.post()
    form = StatusForm(*(str(posted.get(name, "")) for name in ("status", "note",
                                                                 "supplement_due")))
    current = ApplicationStatus(app.status)
    wanted = _status(form.status)
    note = form.note.strip()
    due_day = _day(form.supplement_due)
    if wanted is None or not current.may_become(wanted):
        return await _detail_page(request, who, app, status=409, saved=False, form=form,
                                  error=_refused_text(request, current, wanted))
    problem = ""
    if len(note) > NOTE_SIZE or unstorable(note, multiline=True):
        problem = _text(request)(N_("The note must be at most {size} characters of plain "
                                    "text."), size=NOTE_SIZE)
    elif form.supplement_due.strip() and (due_day is None or due_day < app.received_at.date()):
        problem = _text(request)(N_("The deadline for the documents is not a valid date."))
    if problem:
        return await _detail_page(request, who, app, status=422, error=problem, saved=False,
                                  form=form)
    asked = wanted is ApplicationStatus.SUPPLEMENT_REQUIRED
    supplement_due = _local(due_day, END_OF_DAY_HOUR) if asked and due_day else None
    if posted.get("step") != "confirm":
        return await _preview(request, who, app, wanted, note, supplement_due, form)
    try:
        done = await set_status(_office(request, who), receipt_code=app.receipt_code,
                                status=wanted, actor=who.actor, now=_now(), note=note,
                                workflow=True, supplement_due_at=supplement_due)
    except TransitionRefused as exc:  # someone else changed it since the preview
        app = await _application(request, who) or app
        return await _detail_page(request, who, app, status=409, saved=False, form=form,
                                  error=_refused_text(request, exc.current, exc.wanted))
    except InvalidValue as exc:
        return await _detail_page(request, who, app, status=422, saved=False, form=form,
                                  error=str(exc))
    if done is None:
        return _missing(request, who)
    async with session_scope(request.app[OFFICE].sessions) as session:
        await staff.audit(session, commune_id=who.commune_id, actor=who.actor,
                          action="application.status", target=app.receipt_code,
                          detail=f"{current.value} -> {wanted.value}"
                          + (f"; due {due_day}" if supplement_due else "")
                          + ("" if done.status_change_id else " (unchanged)"), at=_now())
    return redirect(f"{PREFIX}/applications/{app.id}?saved={wanted.value}")


def _text(request: web.Request) -> Text:
    return Text(page_language(request))


def _refused_text(request: web.Request, current: ApplicationStatus,
                  wanted: ApplicationStatus | None) -> str:
    t = _text(request)
    allowed = ", ".join(t(STATUS_LABELS[s]) for s in current.next_statuses)
    if not allowed:
        return t(N_("This application is {current}: its status can no longer change."),
                 current=t(STATUS_LABELS[current]))
    return t(N_("An application that is {current} cannot become {wanted}. It may become: "
                "{allowed}."), current=t(STATUS_LABELS[current]),
             wanted=t(STATUS_LABELS[wanted]) if wanted else "?", allowed=allowed)


async def _preview(request: web.Request, who: Staff, app: Application,
                   wanted: ApplicationStatus, note: str, supplement_due: dt.datetime | None,
                   form: StatusForm) -> web.Response:
    """The change's confirmation page: what each follower's language will read."""
    assert app.id is not None
    async with request.app[OFFICE].sessions() as session:
        followers = (await repo.subscribers(session, [app.id])).get(app.id, [])
    if wanted is ApplicationStatus.SUPPLEMENT_REQUIRED:
        app = app.model_copy(update={"supplement_due_at": supplement_due})
    if wanted.settled:  # saving sets the day it was settled; the notice names it
        app = app.model_copy(update={"completed_at": app.completed_at or _now()})
    langs = sorted({language(f.lang) for f in followers}, key=("vi", "en").index) or ["vi"]
    messages = [(lang, change_message(app, wanted, lang, request=note)) for lang in langs]
    return render(request, "applications_preview.html", staff_member=who,
                  app=_row(app, _now()), wanted=STATUS_LABELS[wanted], form=form,
                  followers=len(followers), messages=messages,
                  current=STATUS_LABELS[ApplicationStatus(app.status)])


@dataclass
class ImportPreview:
    """What importing a file would change."""

    rows: int = 0
    new: list[str] = field(default_factory=list)  # receipt codes
    changes: list[tuple[str, str, str]] = field(default_factory=list)  # code, from, to
    updated: int = 0  # other fields changed, status kept
    unchanged: int = 0
    followers: int = 0  # messages the status changes will queue


async def preview_import(office: Office, parsed: ImportFile) -> ImportPreview:
    """Compare a read file's valid rows with the database, changing nothing."""
    records = await asyncio.to_thread(
        lambda: [to_record(r, office.kb, office.calendar) for r in parsed.rows])
    report = ImportPreview(rows=len(parsed.rows) + parsed.bad_rows)
    async with office.sessions() as session:
        stored = await repo.existing(session, commune_id=office.commune_id,
                                     codes=[r.receipt_code for r in records])
        moved: list[int] = []
        for record in records:
            app = stored.get(record.receipt_code)
            if app is None:
                report.new.append(record.receipt_code)
            elif record.status != app.status:
                report.changes.append((record.receipt_code, app.status, record.status))
                moved.append(app.id or 0)
            elif any(getattr(record, f) != getattr(app, f) for f in repo.RECORD_FIELDS):
                report.updated += 1
            else:
                report.unchanged += 1
        followers = await repo.subscribers(session, moved)
    report.followers = sum(len(subs) for subs in followers.values())
    return report


def _limits(request: web.Request) -> ImportLimits:
    return request.app[CONSOLE].settings.import_limits


def _sweep(now: float) -> None:
    """Forget uploads nobody imported within ``UPLOAD_KEPT``."""
    for folder in UPLOADS.glob("*-*") if UPLOADS.is_dir() else []:
        if folder.stat().st_mtime < now - UPLOAD_KEPT:
            shutil.rmtree(folder, ignore_errors=True)


def _upload_folder(who: Staff, token: str) -> Path | None:
    """The folder of one of this staff member's uploads, if the token is well-formed."""
    return UPLOADS / f"{who.account_id}-{token}" if _TOKEN.match(token) else None


@staff_required()
async def import_form(request: web.Request, who: Staff) -> web.StreamResponse:
    """``GET /console/applications/import``: choose a file."""
    return _import_form(request, who, status=200, error="")


def _import_form(request: web.Request, who: Staff, *, status: int, error: str) -> web.Response:
    limits = _limits(request)
    return render(request, "applications_import.html", status=status, staff_member=who,
                  error=error, max_mb=limits.max_bytes // 2**20, max_rows=limits.max_rows)


async def receive_import(request: web.Request) -> web.StreamResponse:
    """``POST /console/applications/import``: accept a body as large as an import file may
    be (the app's limit is for chat messages), within ``UPLOAD_TIMEOUT``.

    The body must reach this handler unread (``bot.web.STREAMED_BODIES``): a multipart body
    read by a middleware cannot be parsed again."""
    try:
        request = request.clone(client_max_size=_limits(request).max_bytes + 2**20)
    except RuntimeError:  # read already
        if request.content_type == "multipart/form-data":
            log.error("console: %s is not in bot.web.STREAMED_BODIES", request.path)
            return refuse(request, 500, N_("This server cannot receive files yet. Ask the "
                                           "administrator to allow import uploads."))
    try:
        async with asyncio.timeout(UPLOAD_TIMEOUT):
            return await _import_step(request)
    except TimeoutError:
        return web.Response(status=408, text="upload too slow", headers={"Connection": "close"})


@staff_required()
async def _import_step(request: web.Request, who: Staff) -> web.StreamResponse:
    """Preview an uploaded file (``step=preview``) or import the previewed one
    (``step=import``)."""
    posted = await request.post()
    if posted.get("step") == "import":
        return await _apply_import(request, who, str(posted.get("token", "")),
                                   skip_bad=posted.get("skip_bad") == "1")
    upload = posted.get("file")
    name = Path(getattr(upload, "filename", "") or "").name
    if not isinstance(upload, web.FileField) or not name.lower().endswith(SUFFIXES):
        return _import_form(request, who, status=422, error=_text(request)(
            N_("Choose a CSV or XLSX file exported from the one-stop system.")))
    _sweep(time.time())
    token = secrets.token_urlsafe(24)
    folder = _upload_folder(who, token)
    assert folder is not None
    folder.mkdir(parents=True, mode=0o700)
    # A name we choose: the original one only lends its letters (it names the importer).
    path = folder / (re.sub(r"[^A-Za-z0-9._-]+", "_", name)[-100:].lstrip(".") or "import.csv")
    await asyncio.to_thread(_save, upload, path)
    try:
        parsed = await asyncio.to_thread(read_applications, path, limits=_limits(request))
    except ImportFileError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        return _import_form(request, who, status=422, error=str(exc))
    preview = await preview_import(_office(request, who), parsed)
    return render(request, "applications_import_preview.html", staff_member=who,
                  name=name, token=token, preview=preview, shown=SHOWN, parsed=parsed,
                  labels={s.value: STATUS_LABELS[s] for s in ApplicationStatus})


def _save(upload: web.FileField, path: Path) -> None:
    with path.open("wb") as out:
        shutil.copyfileobj(upload.file, out)


async def _apply_import(request: web.Request, who: Staff, token: str, *,
                        skip_bad: bool) -> web.StreamResponse:
    """Import the file previewed under ``token`` as the CLI does, then forget it."""
    folder = _upload_folder(who, token)
    files = sorted(folder.iterdir()) if folder is not None and folder.is_dir() else []
    if folder is None or not files:
        return _import_form(request, who, status=410, error=_text(request)(
            N_("This preview has expired. Choose the file again.")))
    try:
        report = await import_file(_office(request, who), files[0], skip_bad=skip_bad,
                                   now=_now(), limits=_limits(request))
    except ImportFileError as exc:
        return _import_form(request, who, status=422, error=str(exc))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    async with session_scope(request.app[OFFICE].sessions) as session:
        await staff.audit(session, commune_id=who.commune_id, actor=who.actor,
                          action="applications.import", target=files[0].name,
                          detail=f"rows {report.rows}, created {report.created}, updated "
                          f"{report.updated}, unchanged {report.unchanged}, refused "
                          f"{report.bad_rows}, imported {report.imported}", at=_now())
    return render(request, "applications_import_done.html", staff_member=who, report=report,
                  name=files[0].name)


def add_routes(app: web.Application) -> None:
    """Serve the Applications pages under ``/console/applications``."""
    handlers: list[tuple[str, str, Handler]] = [
        ("GET", "/applications", search),
        ("GET", "/applications/import", import_form),
        ("POST", "/applications/import", receive_import),
        ("GET", r"/applications/{id:\d{1,18}}", detail),
        ("POST", r"/applications/{id:\d{1,18}}/status", change),
    ]
    for method, path, handler in handlers:
        app.router.add_route(method, PREFIX + path, handler)
