"""The hand-over inbox of the staff console: the conversations the assistant passed to staff,
newest first, each with what was said; staff reply there and give the conversation back.

A reply and a give-back go through ``Dialogue.from_staff``, the path of a reply in the
Telegram staff group: the text is queued in the outbox for the citizen's channel, the
conversation's hand-over state changes the same way, and the officer is remembered for the
satisfaction question. What was said is read from what is stored: the citizen's messages
relayed to staff and the questions the assistant could not answer, the assistant's and staff's
replies in the outbox. A citizen is shown as a channel and the conversation's number, never a
chat id or a phone number.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web
from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.api import OFFICE
from bot.console import PREFIX, Staff, redirect, refuse, render, staff_required
from handlers.intents.staff import STAFF_TIMEOUT
from handlers.messages import relay_recipient
from knowledge.i18n import N_
from knowledge.workdays import TZ
from storage import applications as repo
from storage import staff
from storage.db import session_scope
from storage.models import AuditEntry, Conversation, Notification, StaffAccount, Unanswered

INBOX = f"{PREFIX}/inbox"
MAX_REPLY = 2000  # characters: one message on every channel
HISTORY = 50  # messages of a conversation shown
LISTED = 200  # conversations in the inbox at most
CHANNELS = {"telegram": "Telegram", "zalo": "Zalo", "web": "Web"}
_KEY = re.compile(r"[A-Za-z0-9_-]{8,64}")
NOT_FOUND = N_("This conversation does not exist.")


@dataclass(frozen=True)
class Said:
    """One message of a conversation, as the inbox shows it."""

    at: dt.datetime
    by: str  # "citizen", "assistant" or "staff"
    text: str
    officer: str = ""  # the staff member who replied from the console, when known
    unanswered: bool = False  # a question the assistant could not answer


@dataclass(frozen=True)
class Waiting:
    """A conversation with staff, and the last message the citizen sent them."""

    conversation: Conversation
    last: Notification | None


def citizen(conversation: Conversation) -> str:
    """How the console names a citizen: the channel and the conversation's number."""
    return f"{CHANNELS.get(conversation.channel, conversation.channel)} · #{conversation.id}"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def local(at: dt.datetime) -> dt.datetime:
    """A stored time in the commune's time (Asia/Ho_Chi_Minh)."""
    return at.astimezone(TZ)


def _relays(conversations: Sequence[Conversation]) -> list[str]:
    return [relay_recipient(c.channel, c.user_id) for c in conversations]


async def with_staff(session: AsyncSession, *, commune_id: int,
                     now: dt.datetime) -> list[Waiting]:
    """The commune's conversations handed to staff (and not timed out), newest first."""
    found = list((await session.exec(
        select(Conversation)
        .where(Conversation.commune_id == commune_id,
               col(Conversation.with_staff_since) > now - STAFF_TIMEOUT)
        .order_by(col(Conversation.with_staff_since).desc()).limit(LISTED))).all())
    if not found:
        return []
    last_ids = (select(func.max(Notification.id))
                .where(Notification.commune_id == commune_id, Notification.channel == "staff",
                       col(Notification.recipient).in_(_relays(found)),
                       col(Notification.idempotency_key).startswith("staff:"))
                .group_by(col(Notification.recipient)))
    last = {n.recipient: n for n in (await session.exec(
        select(Notification).where(col(Notification.id).in_(last_ids)))).all()}
    return [Waiting(c, last.get(relay_recipient(c.channel, c.user_id))) for c in found]


async def history(session: AsyncSession, conversation: Conversation) -> list[Said]:
    """The last ``HISTORY`` messages of a conversation, oldest first."""
    relayed = (await session.exec(
        select(Notification)
        .where(Notification.commune_id == conversation.commune_id,
               Notification.channel == "staff",
               Notification.recipient == relay_recipient(conversation.channel,
                                                         conversation.user_id),
               col(Notification.idempotency_key).startswith("staff:"))
        .order_by(col(Notification.id).desc()).limit(HISTORY))).all()
    answered = (await session.exec(
        select(Notification)
        .where(Notification.commune_id == conversation.commune_id,
               Notification.channel == conversation.channel,
               Notification.recipient == conversation.user_id,
               col(Notification.kind).in_(("reply", "staff")))
        .order_by(col(Notification.id).desc()).limit(HISTORY))).all()
    missed = (await session.exec(
        select(Unanswered)
        .where(Unanswered.commune_id == conversation.commune_id,
               Unanswered.channel == conversation.channel,
               Unanswered.user_id == conversation.user_id, Unanswered.kind == "declined")
        .order_by(col(Unanswered.id).desc()).limit(HISTORY))).all()
    officers = await _officers(session, conversation)
    replies = [Said(n.created_at, "staff" if n.kind == "staff" else "assistant", n.text,
                    officers.get(n.idempotency_key, "")) for n in answered]
    said = [Said(_arrived(n), "citizen", n.text) for n in relayed]
    # A question that led to the hand-over is both unanswered and relayed: shown once.
    said += [Said(_turn_of(u.at, replies), "citizen", u.text, unanswered=True) for u in missed
             if not any(s.text == u.text and abs(s.at - u.at) < dt.timedelta(minutes=1)
                        for s in said)]
    order = {"citizen": 0, "assistant": 1, "staff": 2}  # a message before its answers
    return sorted(said + replies, key=lambda s: (s.at, order[s.by]))[-HISTORY:]


def _arrived(relayed: Notification) -> dt.datetime:
    """When a relayed message reached the assistant: its key holds the turn's time, which
    its answers carry too (the row's own time is a moment later)."""
    try:
        return dt.datetime.fromtimestamp(float(relayed.idempotency_key.rsplit(":", 1)[1]),
                                         dt.UTC)
    except (IndexError, ValueError):
        return relayed.created_at


def _turn_of(at: dt.datetime, replies: Sequence[Said]) -> dt.datetime:
    """The time of the turn an unanswered question was noted in (a moment after its answer
    was dated): the answer's, when there is one just before."""
    return max((r.at for r in replies if r.by == "assistant"
                and dt.timedelta(0) <= at - r.at <= dt.timedelta(seconds=5)), default=at)


async def _officers(session: AsyncSession, conversation: Conversation) -> dict[str, str]:
    """The staff member behind each console reply of a conversation, by its outbox key."""
    entries = (await session.exec(
        select(AuditEntry.detail, StaffAccount.display_name)
        .join(StaffAccount, col(AuditEntry.actor) == "staff:" + col(StaffAccount.login))
        .where(AuditEntry.commune_id == conversation.commune_id,
               AuditEntry.action == "inbox.reply",
               AuditEntry.target == f"conversation:{conversation.id}"))).all()
    return dict(entries)


async def _conversation(request: web.Request, who: Staff) -> Conversation | None:
    """The conversation in the URL, if it is of the staff member's commune."""
    async with session_scope(request.app[OFFICE].sessions) as session:
        return (await session.exec(select(Conversation).where(
            Conversation.id == int(request.match_info["id"]),
            Conversation.commune_id == who.commune_id))).first()


def _open(conversation: Conversation, now: dt.datetime) -> bool:
    since = conversation.with_staff_since
    return since is not None and now - since <= STAFF_TIMEOUT


@staff_required()
async def inbox(request: web.Request, who: Staff) -> web.StreamResponse:
    """``GET /console/inbox``: the conversations waiting for staff, newest first."""
    async with session_scope(request.app[OFFICE].sessions) as session:
        waiting = await with_staff(session, commune_id=who.commune_id, now=_now())
    return render(request, "inbox.html", staff_member=who, waiting=waiting, citizen=citizen,
                  local=local)


@staff_required()
async def conversation_page(request: web.Request, who: Staff) -> web.StreamResponse:
    """``GET /console/inbox/{id}``: a conversation, the reply form and "give back"."""
    found = await _conversation(request, who)
    if found is None:
        return refuse(request, 404, NOT_FOUND, staff_member=who)
    return await _page(request, who, found)


async def _page(request: web.Request, who: Staff, conversation: Conversation, *,
                status: int = 200, error: str = "", text: str = "") -> web.Response:
    async with session_scope(request.app[OFFICE].sessions) as session:
        said = await history(session, conversation)
    return render(request, "inbox_conversation.html", status=status, staff_member=who,
                  conversation=conversation, name=citizen(conversation), said=said,
                  open=_open(conversation, _now()), key=secrets.token_urlsafe(12),
                  max_reply=MAX_REPLY, error=error, text=text, local=local)


@staff_required()
async def reply(request: web.Request, who: Staff) -> web.StreamResponse:
    """``POST /console/inbox/{id}/reply``: send a reply to the citizen, as the staff group's
    replies are sent."""
    found, dialogue = await _conversation(request, who), who.served.dialogue
    if found is None:
        return refuse(request, 404, NOT_FOUND, staff_member=who)
    here = f"{INBOX}/{found.id}"
    if not _open(found, _now()):
        return refuse(request, 409, N_("This conversation is back with the assistant: it can "
                                       "no longer be answered here."), staff_member=who)
    form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
    text, key = form.get("text", "").strip(), form.get("key", "")
    if not text or len(text) > MAX_REPLY:
        return await _page(request, who, found, status=400, text=text[:MAX_REPLY * 2],
                           error=N_("Write a reply first.") if not text else
                           N_("The reply is longer than {limit} characters."))
    key = key if _KEY.fullmatch(key) else secrets.token_urlsafe(12)
    reply_id = f"console:{found.id}:{key}"
    async with session_scope(request.app[OFFICE].sessions) as session:
        if await repo.queued_keys(session, [f"staff-reply:{reply_id}"]):
            return redirect(here)  # the same form sent twice (a double tap): sent once
    await dialogue.from_staff(channel=found.channel, user_id=found.user_id, text=text,
                              reply_id=reply_id, officer=who.actor)
    async with session_scope(request.app[OFFICE].sessions) as session:
        await staff.audit(session, commune_id=who.commune_id, actor=who.actor,
                          action="inbox.reply", target=f"conversation:{found.id}",
                          detail=f"staff-reply:{reply_id}", at=_now())
    return redirect(here)


@staff_required()
async def give_back(request: web.Request, who: Staff) -> web.StreamResponse:
    """``POST /console/inbox/{id}/give-back``: end the hand-over, as "kết thúc" in the staff
    group does (the citizen is told, and asked to rate it)."""
    found, dialogue = await _conversation(request, who), who.served.dialogue
    if found is None:
        return refuse(request, 404, NOT_FOUND, staff_member=who)
    since = found.with_staff_since
    if since is not None:  # already given back: nothing to do
        reply_id = f"console:{found.id}:end:{int(since.timestamp())}"
        await dialogue.from_staff(channel=found.channel, user_id=found.user_id, text="",
                                  reply_id=reply_id, officer=who.actor, end=True)
        async with session_scope(request.app[OFFICE].sessions) as session:
            await staff.audit(session, commune_id=who.commune_id, actor=who.actor,
                              action="inbox.give_back", target=f"conversation:{found.id}",
                              at=_now())
    return redirect(INBOX)


def add_routes(app: web.Application) -> None:
    """Serve the hand-over inbox under ``/console/inbox``."""
    app.router.add_get(INBOX, inbox)
    app.router.add_get(INBOX + r"/{id:\d{1,9}}", conversation_page)
    app.router.add_post(INBOX + r"/{id:\d{1,9}}/reply", reply)
    app.router.add_post(INBOX + r"/{id:\d{1,9}}/give-back", give_back)
