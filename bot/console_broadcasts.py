"""Broadcasts in the staff console: compose an announcement, choose its audience, see the
preview and how many will get it, send it now or at a local time once confirmed, follow its
delivery report per channel, cancel it (``/console/broadcasts``).

Everything a broadcast does goes through ``handlers.broadcasts`` (the machinery the CLI, the
REST API and the staff chat use): this module only reads the form and shows the outcome.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from aiohttp import web
from sqlmodel import col, select

from bot.api import OFFICE
from bot.console import PREFIX, Staff, redirect, refuse, render, staff_required
from handlers import broadcasts
from handlers.applications import Office
from handlers.broadcasts import BroadcastError
from knowledge.i18n import N_
from knowledge.workdays import TZ
from storage import staff
from storage.broadcasts import AUDIENCES, OPEN, Report
from storage.db import session_scope
from storage.models import Application, Broadcast, Subscription

BROADCASTS = f"{PREFIX}/broadcasts"
LISTED = 50  # the latest broadcasts on the list
NOT_FOUND = N_("This announcement does not exist.")
AUDIENCE_LABELS = {
    "all": N_("Everyone subscribed to announcements"),
    "field": N_("Followers of applications in a field"),
    "procedure": N_("Followers of applications for a procedure"),
    "hamlet": N_("Subscribers in a hamlet"),
    "lang": N_("Subscribers reading a language"),
}
STATUS_LABELS = {
    "draft": N_("Draft"), "scheduled": N_("Scheduled"), "queued": N_("Sent out"),
    "cancelled": N_("Cancelled"),
}
CHANNEL_NAMES = {"telegram": "Telegram", "zalo": "Zalo", "web": "Web"}
LANGUAGE_NAMES = {"vi": "Tiếng Việt", "en": "English"}


@dataclass(frozen=True)
class Listed:
    """A broadcast on the list, with its report once it went out."""

    broadcast: Broadcast
    report: Report | None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def local(at: dt.datetime) -> dt.datetime:
    """A stored time in the commune's time (Asia/Ho_Chi_Minh)."""
    return at.astimezone(TZ)


def _office(request: web.Request, who: Staff) -> Office:
    return who.served.office


def _id(request: web.Request) -> int:
    return int(request.match_info["id"])


async def _form(request: web.Request) -> dict[str, str]:
    return {k: v for k, v in (await request.post()).items() if isinstance(v, str)}


async def _choices(office: Office) -> tuple[list[str], list[tuple[str, str]]]:
    """The fields and procedures (code, name) of the applications citizens follow: the
    values a follower audience can take."""
    followed = (select(Application.field, Application.procedure_code,
                       Application.procedure_name)
                .join(Subscription, col(Subscription.application_id) == col(Application.id))
                .where(Subscription.commune_id == office.commune_id).distinct())
    async with session_scope(office.sessions) as session:
        rows = (await session.exec(followed)).all()
    fields = sorted({name for name, _, _ in rows if name})
    procedures = sorted({(code, name) for _, code, name in rows if code})
    return fields, procedures


async def _compose(request: web.Request, who: Staff, *, status: int = 200, error: str = "",
                   values: Mapping[str, str] | None = None) -> web.Response:
    fields, procedures = await _choices(_office(request, who))
    return render(request, "broadcast_new.html", status=status, staff_member=who,
                  error=error, values=values or {}, audiences=AUDIENCE_LABELS,
                  fields=fields, procedures=procedures, languages=LANGUAGE_NAMES,
                  max_text=broadcasts.MAX_TEXT)


@staff_required()
async def listing(request: web.Request, who: Staff) -> web.StreamResponse:
    """``GET /console/broadcasts``: the latest announcements, their state and report."""
    office = _office(request, who)
    async with session_scope(office.sessions) as session:
        found = (await session.exec(select(Broadcast)
                                    .where(Broadcast.commune_id == who.commune_id)
                                    .order_by(col(Broadcast.id).desc()).limit(LISTED))).all()
    listed = []
    for broadcast in found:
        assert broadcast.id is not None
        # Only a broadcast that went out has messages to report on.
        report = None if broadcast.queued_at is None else \
            (await broadcasts.status(office, broadcast.id))[1]
        listed.append(Listed(broadcast, report))
    return render(request, "broadcasts.html", staff_member=who, listed=listed,
                  statuses=STATUS_LABELS, audiences=AUDIENCE_LABELS, local=local)


@staff_required()
async def compose(request: web.Request, who: Staff) -> web.StreamResponse:
    """``GET /console/broadcasts/new``: the form to write an announcement."""
    return await _compose(request, who)


@staff_required()
async def create(request: web.Request, who: Staff) -> web.StreamResponse:
    """``POST /console/broadcasts``: keep the announcement as a draft and show its preview;
    nothing is sent yet."""
    form = await _form(request)
    audience = form.get("audience", "all")
    value = form.get(f"value_{audience}", "") if audience in AUDIENCES else ""
    try:
        made = await broadcasts.create(_office(request, who), text=form.get("text", ""),
                                       link=form.get("link", ""),
                                       image=form.get("image", ""), audience=audience,
                                       value=value, created_by=who.actor)
    except BroadcastError as exc:
        return await _compose(request, who, status=400, error=_problem(exc), values=form)
    number = made.broadcast.id
    async with session_scope(request.app[OFFICE].sessions) as session:
        await staff.audit(session, commune_id=who.commune_id, actor=who.actor,
                          action="broadcast.create", target=f"broadcast:{number}",
                          detail=f"{audience} {made.broadcast.audience_value}".strip(),
                          at=_now())
    return redirect(f"{BROADCASTS}/{number}")


def _problem(exc: BroadcastError) -> str:
    """The catalog id saying what is wrong with a broadcast (its message is for the CLI)."""
    reason = str(exc)
    if "no text" in reason:
        return N_("Write the announcement's text.")
    if "longer than" in reason:
        return N_("The announcement is longer than {limit} characters.")
    if "image" in reason:
        return N_("The image must be an address starting with https://.")
    if "link" in reason:
        return N_("The link must be an address starting with http:// or https://.")
    if "needs a value" in reason or "language" in reason:
        return N_("Choose who receives it: the field, procedure, hamlet or language.")
    return N_("Choose who receives the announcement.")


@staff_required()
async def detail(request: web.Request, who: Staff) -> web.StreamResponse:
    """``GET /console/broadcasts/{id}``: the preview and recipient count; sending and
    cancelling while it is open; the report once it went out."""
    return await _detail(request, who)


async def _detail(request: web.Request, who: Staff, *, status: int = 200,
                  error: str = "") -> web.Response:
    office = _office(request, who)
    try:
        preview = await broadcasts.preview(office, _id(request))
        _, report = await broadcasts.status(office, _id(request))
    except BroadcastError:
        return refuse(request, 404, NOT_FOUND, staff_member=who)
    today = local(_now())
    return render(request, "broadcast.html", status=status, staff_member=who,
                  preview=preview, broadcast=preview.broadcast, report=report,
                  open=preview.broadcast.status in OPEN, statuses=STATUS_LABELS,
                  audiences=AUDIENCE_LABELS, channels=CHANNEL_NAMES, local=local,
                  today=today.date().isoformat(), error=error,
                  languages=LANGUAGE_NAMES)


def _when(form: Mapping[str, str]) -> dt.datetime | None:
    """The local date and time chosen, in UTC; None for "now"; ValueError when not a time."""
    if form.get("when", "now") == "now":
        return None
    day = dt.date.fromisoformat(form.get("date", ""))
    time = dt.time.fromisoformat(form.get("time", ""))
    return dt.datetime.combine(day, time, TZ).astimezone(dt.UTC)


@staff_required()
async def send(request: web.Request, who: Staff) -> web.StreamResponse:
    """``POST /console/broadcasts/{id}/send``: first the confirmation (what goes to how many,
    when), then, confirmed, send it now or at its time."""
    office = _office(request, who)
    form = await _form(request)
    try:
        at = _when(form)
    except ValueError:
        return await _detail(request, who, status=400,
                             error=N_("Choose a date and a time to send it at."))
    if at is not None and at < _now():
        return await _detail(request, who, status=400,
                             error=N_("That time has passed: choose a later one, or send "
                                      "it now."))
    try:
        preview = await broadcasts.preview(office, _id(request))
    except BroadcastError:
        return refuse(request, 404, NOT_FOUND, staff_member=who)
    if preview.broadcast.status not in OPEN:
        return await _detail(request, who, status=409,
                             error=N_("This announcement can no longer be sent."))
    if form.get("confirm") != "yes":
        return render(request, "broadcast_confirm.html", staff_member=who, preview=preview,
                      broadcast=preview.broadcast, at=at and local(at), form=form)
    try:
        done = await broadcasts.schedule(office, _id(request), at=at)
    except BroadcastError:
        return await _detail(request, who, status=409,
                             error=N_("This announcement can no longer be sent."))
    async with session_scope(office.sessions) as session:
        await staff.audit(session, commune_id=who.commune_id, actor=who.actor,
                          action="broadcast.send" if at is None else "broadcast.schedule",
                          target=f"broadcast:{done.id}",
                          detail=f"{done.recipients} recipients" if at is None else
                          f"at {local(at).isoformat(timespec='minutes')}", at=_now())
    return redirect(f"{BROADCASTS}/{done.id}")


@staff_required()
async def cancel(request: web.Request, who: Staff) -> web.StreamResponse:
    """``POST /console/broadcasts/{id}/cancel``: what is not yet sent is not sent."""
    office = _office(request, who)
    try:
        stopped = await broadcasts.cancel(office, _id(request))
    except BroadcastError:
        return refuse(request, 404, NOT_FOUND, staff_member=who)
    async with session_scope(office.sessions) as session:
        await staff.audit(session, commune_id=who.commune_id, actor=who.actor,
                          action="broadcast.cancel", target=f"broadcast:{_id(request)}",
                          detail=f"{stopped} unsent messages stopped", at=_now())
    return redirect(f"{BROADCASTS}/{_id(request)}")


def add_routes(app: web.Application) -> None:
    """Serve the broadcast pages under ``/console/broadcasts``."""
    app.router.add_get(BROADCASTS, listing)
    app.router.add_post(BROADCASTS, create)
    app.router.add_get(f"{BROADCASTS}/new", compose)
    app.router.add_get(BROADCASTS + r"/{id:\d{1,9}}", detail)
    app.router.add_post(BROADCASTS + r"/{id:\d{1,9}}/send", send)
    app.router.add_post(BROADCASTS + r"/{id:\d{1,9}}/cancel", cancel)

