"""Queries of staff broadcasts and of citizens' consent to the commune's announcements.

A broadcast is queued in one ``INSERT … SELECT`` from its audience into the outbox (one row
per recipient, keyed ``broadcast:<id>:<channel>:<recipient>`` so queueing twice adds nothing),
so 100,000 recipients cost one statement, not 100,000 round trips. Its rows carry the
broadcast's id (indexed), which is how its report and cancel find them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Integer, Select, String, case, delete, func, insert, literal, update
from sqlalchemy import select as sa_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.sqltypes import UTCDateTime

from storage.applications import _core
from storage.models import (
    AnnouncementSubscriber,
    Application,
    Broadcast,
    Notification,
    Subscription,
)

AUDIENCES = ("all", "field", "procedure", "hamlet", "lang")
_OUTBOX = Notification.__table__.c  # type: ignore[attr-defined]
OPEN = ("draft", "scheduled")  # may still be sent or cancelled


def key_prefix(broadcast_id: int) -> str:
    """The idempotency-key prefix of a broadcast's outbox rows."""
    return f"broadcast:{broadcast_id}:"


async def subscribe(session: AsyncSession, *, commune_id: int, channel: str, recipient: str,
                    lang: str, hamlet: str, at: dt.datetime) -> bool:
    """Record consent to announcements (again, if withdrawn); False if already subscribed
    (a newly named hamlet or language is kept)."""
    found = (await session.exec(select(AnnouncementSubscriber).where(
        AnnouncementSubscriber.commune_id == commune_id,
        AnnouncementSubscriber.channel == channel,
        AnnouncementSubscriber.recipient == recipient))).first()
    if found is None:
        session.add(AnnouncementSubscriber(commune_id=commune_id, channel=channel,
                                           recipient=recipient, lang=lang, hamlet=hamlet,
                                           consented_at=at))
        await session.flush()
        return True
    fresh = found.withdrawn_at is not None
    if fresh:
        found.consented_at, found.withdrawn_at = at, None
    found.lang, found.hamlet = lang, hamlet or found.hamlet
    session.add(found)
    return fresh


async def unsubscribe(session: AsyncSession, *, commune_id: int, channel: str, recipient: str,
                      at: dt.datetime) -> bool:
    """Withdraw consent (the record stays, dated); False if not subscribed."""
    result = await _core(session, update(AnnouncementSubscriber).where(
        col(AnnouncementSubscriber.commune_id) == commune_id,
        col(AnnouncementSubscriber.channel) == channel,
        col(AnnouncementSubscriber.recipient) == recipient,
        col(AnnouncementSubscriber.withdrawn_at).is_(None)).values(withdrawn_at=at))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def audience(commune_id: int, kind: str, value: str) -> Select[Any]:
    """(channel, recipient, lang) of each recipient of an audience, once each."""
    if kind in ("field", "procedure"):
        follower = Subscription.__table__.c  # type: ignore[attr-defined]
        app = Application.__table__.c  # type: ignore[attr-defined]
        matches = app.field == value if kind == "field" else app.procedure_code == value
        return (sa_select(follower.channel, follower.recipient,
                          func.max(follower.lang).label("lang"))
                .join_from(Subscription.__table__,  # type: ignore[attr-defined]
                           Application.__table__,  # type: ignore[attr-defined]
                           app.id == follower.application_id)
                .where(follower.commune_id == commune_id, matches)
                .group_by(follower.channel, follower.recipient))
    sub = AnnouncementSubscriber.__table__.c  # type: ignore[attr-defined]
    query = sa_select(sub.channel, sub.recipient, sub.lang).where(
        sub.commune_id == commune_id, sub.withdrawn_at.is_(None))
    if kind == "hamlet":
        query = query.where(sub.hamlet == value)
    elif kind == "lang":
        query = query.where(sub.lang == value)
    return query


async def count_audience(session: AsyncSession, *, commune_id: int, kind: str,
                         value: str) -> int:
    """How many recipients an audience has now."""
    inner = audience(commune_id, kind, value).subquery()
    return int((await _core(session, sa_select(func.count()).select_from(inner))).scalar_one())


async def add(session: AsyncSession, broadcast: Broadcast) -> Broadcast:
    """Store a new broadcast (a draft until confirmed)."""
    session.add(broadcast)
    await session.flush()
    return broadcast


async def get(session: AsyncSession, *, commune_id: int, broadcast_id: int) -> Broadcast | None:
    """A broadcast of this commune."""
    return (await session.exec(select(Broadcast).where(
        Broadcast.commune_id == commune_id, Broadcast.id == broadcast_id))).first()


async def due(session: AsyncSession, *, commune_id: int, now: dt.datetime) -> list[int]:
    """Ids of the commune's scheduled broadcasts whose time has come (``ix_broadcast_due``)."""
    return list((await session.exec(select(Broadcast.id).where(
        Broadcast.status == "scheduled", col(Broadcast.send_at) <= now,
        Broadcast.commune_id == commune_id)
        .order_by(col(Broadcast.send_at)))).all())  # type: ignore[arg-type]


async def queue(session: AsyncSession, *, broadcast_id: int, now: dt.datetime,
                texts: Mapping[str, tuple[str, str | None]]) -> int | None:
    """Write one outbox row per recipient of a scheduled broadcast and mark it queued, in one
    transaction; the row's text and buttons by the recipient's language (``texts`` by
    language, "vi" for the others), its image the broadcast's. None if it was not scheduled
    (another instance took it, or it was cancelled)."""
    taken = await _core(session, update(Broadcast).where(
        col(Broadcast.id) == broadcast_id, col(Broadcast.status) == "scheduled")
        .values(status="queued", queued_at=now))
    if not taken.rowcount:  # type: ignore[attr-defined]
        return None
    broadcast = (await session.exec(select(Broadcast).where(Broadcast.id == broadcast_id)
                                    .execution_options(populate_existing=True))).one()
    people = audience(broadcast.commune_id, broadcast.audience,
                      broadcast.audience_value).subquery()

    def by_lang(index: int) -> Any:
        default = texts["vi"][index]
        return case(*((people.c.lang == lang, literal(value[index]))
                      for lang, value in texts.items() if lang != "vi"),
                    else_=literal(default)) if len(texts) > 1 else literal(default)

    columns = ["commune_id", "channel", "recipient", "text", "buttons", "idempotency_key",
               "created_at", "attempts", "kind", "next_attempt_at", "broadcast_id", "image"]
    values: list[Any] = [
        literal(broadcast.commune_id, Integer), people.c.channel, people.c.recipient,
        by_lang(0), by_lang(1),
        literal(key_prefix(broadcast_id)) + people.c.channel + literal(":")
        + people.c.recipient,
        literal(now, UTCDateTime()), literal(0, Integer), literal("broadcast"),
        literal(now, UTCDateTime()), literal(broadcast_id, Integer),
        literal(broadcast.image or None, String())]
    result = await _core(session, insert(Notification).from_select(
        columns, sa_select(*values)))
    broadcast.recipients = max(result.rowcount or 0, 0)  # type: ignore[attr-defined]
    if broadcast.recipients == 0:  # some drivers do not count INSERT … SELECT rows
        broadcast.recipients = await _count_rows(session, broadcast_id)
    session.add(broadcast)
    await session.flush()
    return broadcast.recipients


async def _count_rows(session: AsyncSession, broadcast_id: int) -> int:
    query = sa_select(func.count()).where(col(Notification.broadcast_id) == broadcast_id)
    return int((await _core(session, query)).scalar_one())


async def cancel(session: AsyncSession, *, broadcast: Broadcast, at: dt.datetime) -> int:
    """Cancel a broadcast: delete its outbox rows not yet sent; how many were stopped."""
    broadcast.status = "cancelled"
    session.add(broadcast)
    assert broadcast.id is not None
    result = await _core(session, delete(Notification).where(
        col(Notification.broadcast_id) == broadcast.id, col(Notification.sent_at).is_(None)))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


@dataclass
class ChannelReport:
    """What became of a broadcast's messages on one channel."""

    queued: int = 0  # outbox rows still there (cancelled ones are deleted)
    sent: int = 0
    pending: int = 0  # not sent yet, still being tried
    failed: int = 0  # expired before it could be sent
    unreachable: int = 0  # the citizen blocked the bot
    undeliverable: int = 0  # outside Zalo's window, with no message type allowed


@dataclass
class Report:
    """A broadcast's report, per channel."""

    channels: dict[str, ChannelReport] = field(default_factory=dict)

    @property
    def total(self) -> ChannelReport:
        out = ChannelReport()
        for r in self.channels.values():
            for name in vars(out):
                setattr(out, name, getattr(out, name) + getattr(r, name))
        return out


async def report(session: AsyncSession, *, broadcast_id: int) -> Report:
    """Count a broadcast's outbox rows per channel and outcome (one grouped query)."""
    closed = _OUTBOX.sent_at.is_not(None)
    query = (sa_select(_OUTBOX.channel, closed, _OUTBOX.outcome, func.count())
             .where(_OUTBOX.broadcast_id == broadcast_id)
             .group_by(_OUTBOX.channel, closed, _OUTBOX.outcome))
    out = Report()
    rows: list[Any] = list((await _core(session, query)).all())
    for channel, closed, why, n in rows:
        counts = out.channels.setdefault(str(channel), ChannelReport())
        counts.queued += n
        if not closed:
            counts.pending += n
        elif why is None:
            counts.sent += n
        elif why == "expired":
            counts.failed += n
        elif why in ("unreachable", "undeliverable"):
            setattr(counts, why, getattr(counts, why) + n)
        else:
            counts.failed += n
    return out
