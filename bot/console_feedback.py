"""Citizens' feedback reports (phản ánh, kiến nghị) in the staff console: the list waiting
for an answer (or overdue, or all), one report with its description, and the staff's actions
on it — give it to an officer of the commune, answer it, close it.

The actions are those of the CLI and the REST API (``handlers.feedback``): an answer is kept
and queued in the outbox for the channel the citizen wrote from. Each action is written to
the audit log. A citizen is shown by channel only, never by chat id.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Literal

from aiohttp import web
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.api import OFFICE
from bot.console import PREFIX, Staff, page_language, redirect, refuse, render, staff_required
from handlers import feedback
from handlers.applications import Office
from handlers.feedback import KIND_LABELS, STATUS_LABELS
from knowledge.i18n import N_, Lang
from knowledge.loader import KnowledgeBase
from knowledge.workdays import TZ
from storage import feedback as repo
from storage import staff
from storage.db import session_scope
from storage.models import Feedback, StaffAccount

FEEDBACK = f"{PREFIX}/feedback"
REF = r"{ref:(?:[Pp][Aa]-\d{4}-)?\d{1,9}}"  # a tracking number or an id, as the API takes
MAX_ANSWER = 4000  # characters, as the API allows
LISTED = 200  # reports in the list at most
Show = Literal["pending", "overdue", "all"]
SHOWS: tuple[Show, ...] = ("pending", "overdue", "all")
CHANNELS = {"telegram": "Telegram", "zalo": "Zalo", "web": "Web"}
NOT_FOUND = N_("This report does not exist.")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def local(at: dt.datetime) -> dt.datetime:
    """A stored time in the commune's time (Asia/Ho_Chi_Minh)."""
    return at.astimezone(TZ)


def overdue(report: Feedback, now: dt.datetime) -> bool:
    """Waiting for an answer past its deadline."""
    return report.status in repo.PENDING and report.due_at is not None and report.due_at < now


def procedure_name(kb: KnowledgeBase, code: str, lang: Lang) -> str:
    """A procedure's everyday name in ``lang`` (its code when the knowledge base lacks it)."""
    found = kb.procedures.get(code)
    if found is None:
        return code
    if lang == "en":
        return found.short_name_en or found.name_en
    return found.short_name or found.name


def _office(request: web.Request, who: Staff) -> Office:
    """The office as the staff member's commune: handlers find only its reports."""
    return who.served.office


async def reports(session: AsyncSession, *, commune_id: int, show: Show, kind: str,
                  procedure: str, now: dt.datetime) -> list[Feedback]:
    """Filed reports of a commune: waiting for an answer (nearest deadline first), overdue,
    or all (newest first); of one kind and procedure when given."""
    query = select(Feedback).where(Feedback.commune_id == commune_id)
    if show == "all":
        query = query.where(col(Feedback.status).in_(repo.STATUSES)) \
            .order_by(col(Feedback.id).desc())
    else:
        query = query.where(col(Feedback.status).in_(repo.PENDING)) \
            .order_by(col(Feedback.due_at), col(Feedback.id))
    if show == "overdue":
        query = query.where(col(Feedback.due_at) < now)
    if kind:
        query = query.where(Feedback.kind == kind)
    if procedure:
        query = query.where(Feedback.procedure_code == procedure)
    return list((await session.exec(query.limit(LISTED))).all())


async def _procedures(session: AsyncSession, commune_id: int) -> list[str]:
    """The procedures the commune's reports name, for the filter."""
    return sorted(set((await session.exec(select(Feedback.procedure_code).where(
        Feedback.commune_id == commune_id, col(Feedback.status).in_(repo.STATUSES),
        Feedback.procedure_code != "").distinct())).all()))


async def _colleagues(session: AsyncSession, commune_id: int) -> list[StaffAccount]:
    """The commune's enabled staff accounts: who a report may be given to."""
    return [a for a in await staff.list_accounts(session, commune_id=commune_id)
            if not a.disabled and a.role != "province"]


def _names(accounts: Sequence[StaffAccount]) -> dict[str, str]:
    return {a.login: a.display_name for a in accounts}


@staff_required()
async def listing(request: web.Request, who: Staff) -> web.StreamResponse:
    """``GET /console/feedback``: the commune's reports, filtered."""
    wanted = request.query.get("show", "pending")
    show: Show = next((s for s in SHOWS if s == wanted), "pending")
    kind = request.query.get("kind", "")
    kind = kind if kind in repo.KINDS else ""
    procedure = request.query.get("procedure", "")[:16]
    now, lang = _now(), page_language(request)
    async with session_scope(request.app[OFFICE].sessions) as session:
        found = await reports(session, commune_id=who.commune_id, show=show, kind=kind,
                              procedure=procedure, now=now)
        procedures = await _procedures(session, who.commune_id)
        names = _names(await staff.list_accounts(session, commune_id=who.commune_id))
    kb = who.served.office.kb
    return render(request, "feedback.html", staff_member=who, reports=found, show=show,
                  kind=kind, procedure=procedure, kinds=[(k, KIND_LABELS[k]) for k in repo.KINDS],
                  kind_labels=KIND_LABELS, status_labels=STATUS_LABELS,
                  procedures=[(c, procedure_name(kb, c, lang)) for c in procedures],
                  procedure_name=lambda code: procedure_name(kb, code, lang),
                  number=repo.tracking_number, overdue=lambda r: overdue(r, now), local=local,
                  assignees=names, listed=LISTED)


async def _report(request: web.Request, who: Staff) -> Feedback | None:
    """The report in the URL, if it is of the staff member's commune."""
    async with session_scope(request.app[OFFICE].sessions) as session:
        return await repo.get(session, commune_id=who.commune_id,
                              reference=request.match_info["ref"])


@staff_required()
async def report_page(request: web.Request, who: Staff) -> web.StreamResponse:
    """``GET /console/feedback/{ref}``: a report, and the forms to assign, answer, close."""
    found = await _report(request, who)
    if found is None:
        return refuse(request, 404, NOT_FOUND, staff_member=who)
    return await _page(request, who, found)


async def _page(request: web.Request, who: Staff, report: Feedback, *, status: int = 200,
                error: str = "", text: str = "") -> web.Response:
    async with session_scope(request.app[OFFICE].sessions) as session:
        colleagues = await _colleagues(session, who.commune_id)
        names = _names(await staff.list_accounts(session, commune_id=who.commune_id))
    lang = page_language(request)
    return render(request, "feedback_report.html", status=status, staff_member=who,
                  report=report, number=repo.tracking_number(report),
                  kind=KIND_LABELS.get(report.kind, KIND_LABELS["other"]),
                  state=STATUS_LABELS[report.status], channel=CHANNELS.get(report.channel,
                                                                           report.channel),
                  procedure=procedure_name(who.served.office.kb, report.procedure_code, lang)
                  if report.procedure_code else "",
                  late=overdue(report, _now()), colleagues=colleagues, assignees=names,
                  closed=report.status == repo.CLOSED, max_answer=MAX_ANSWER, error=error,
                  text=text, local=local)


async def _form(request: web.Request) -> dict[str, str]:
    return {k: v for k, v in (await request.post()).items() if isinstance(v, str)}


async def _audit(request: web.Request, who: Staff, action: str, report: Feedback,
                 detail: str = "") -> None:
    async with session_scope(request.app[OFFICE].sessions) as session:
        await staff.audit(session, commune_id=who.commune_id, actor=who.actor, action=action,
                          target=f"feedback:{repo.tracking_number(report)}", detail=detail,
                          at=_now())


def _here(report: Feedback) -> str:
    return f"{FEEDBACK}/{repo.tracking_number(report)}"


@staff_required()
async def assign(request: web.Request, who: Staff) -> web.StreamResponse:
    """``POST /console/feedback/{ref}/assign``: give the report to an officer of the commune."""
    found = await _report(request, who)
    if found is None:
        return refuse(request, 404, NOT_FOUND, staff_member=who)
    login = staff.normalize_login((await _form(request)).get("login", ""))
    async with session_scope(request.app[OFFICE].sessions) as session:
        colleagues = await _colleagues(session, who.commune_id)
    if login not in {a.login for a in colleagues}:
        return await _page(request, who, found, status=400,
                           error=N_("Choose a staff member of this commune."))
    if login != found.assignee:
        report = await feedback.assign(_office(request, who), str(found.id), login)
        await _audit(request, who, "feedback.assign", report, login)
    return redirect(_here(found))


@staff_required()
async def answer(request: web.Request, who: Staff) -> web.StreamResponse:
    """``POST /console/feedback/{ref}/answer``: answer the citizen (queued for the channel
    they wrote from)."""
    found = await _report(request, who)
    if found is None:
        return refuse(request, 404, NOT_FOUND, staff_member=who)
    text = (await _form(request)).get("text", "").strip()
    if not text or len(text) > MAX_ANSWER:
        return await _page(request, who, found, status=400, text=text[:MAX_ANSWER * 2],
                           error=N_("Write an answer first.") if not text else
                           N_("The answer is longer than {limit} characters."))
    if found.status == repo.CLOSED:
        return refuse(request, 409, N_("This report is closed: it can no longer be answered."),
                      staff_member=who)
    if text == found.answer:
        return redirect(_here(found))  # the same form sent twice (a double tap): sent once
    try:
        report = await feedback.answer(_office(request, who), str(found.id), text,
                                       by=who.actor, now=_now())
    except feedback.FeedbackError:  # nothing left once stored (control characters only)
        return await _page(request, who, found, status=400, text=text,
                           error=N_("Write an answer first."))
    await _audit(request, who, "feedback.answer", report)
    return redirect(_here(found))


@staff_required()
async def close(request: web.Request, who: Staff) -> web.StreamResponse:
    """``POST /console/feedback/{ref}/close``: nothing more will be done about the report."""
    found = await _report(request, who)
    if found is None:
        return refuse(request, 404, NOT_FOUND, staff_member=who)
    if found.status != repo.CLOSED:
        report = await feedback.close(_office(request, who), str(found.id), now=_now())
        await _audit(request, who, "feedback.close", report)
    return redirect(_here(found))


def add_routes(app: web.Application) -> None:
    """Serve the citizens' feedback pages under ``/console/feedback``."""
    app.router.add_get(FEEDBACK, listing)
    app.router.add_get(f"{FEEDBACK}/{REF}", report_page)
    app.router.add_post(f"{FEEDBACK}/{REF}/assign", assign)
    app.router.add_post(f"{FEEDBACK}/{REF}/answer", answer)
    app.router.add_post(f"{FEEDBACK}/{REF}/close", close)
