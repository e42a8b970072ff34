"""Queries on applications: upsert with history, status changes, lookups, subscriptions, outbox.

Functions take the session explicitly and never commit: the caller owns the transaction, so an
import, its status history and the notifications it causes land together or not at all.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, NamedTuple

from sqlalchemy import (
    Executable,
    Result,
    Select,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    or_,
    text,
    true,
    tuple_,
    update,
)
from sqlalchemy import select as sa_select  # Core query mixing tables and scalars
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from knowledge.text import fold
from storage.db import upsert
from storage.domain import (
    FIRST_DAY,
    LAST_DAY,
    ApplicationStatus,
    InvalidValue,
    SubmissionChannel,
    TransitionRefused,
    within_bounds,
)
from storage.models import (
    Application,
    Commune,
    IntegrationKey,
    LookupAttempt,
    Notification,
    StatusChange,
    Subscription,
    Unreachable,
    utcnow,
)

CHUNK = 1000  # receipt codes per IN (...) query; well below every driver's parameter limit
ANALYZE_AFTER = 1000  # rows inserted at once after which PostgreSQL statistics are refreshed


@dataclass(frozen=True)
class ApplicationRecord:
    """An application's fields as they should be stored (already validated and enriched)."""

    receipt_code: str
    procedure_code: str | None
    procedure_name: str
    field: str
    applicant_name: str
    phone: str | None
    channel: SubmissionChannel
    received_at: dt.datetime
    due_at: dt.datetime | None
    due_estimated: bool
    status: ApplicationStatus
    completed_at: dt.datetime | None


RECORD_FIELDS = tuple(f.name for f in fields(ApplicationRecord))


@dataclass(frozen=True)
class Change:
    """A status change that happened to a stored application."""

    application_id: int
    status_change_id: int
    status: ApplicationStatus


@dataclass
class UpsertReport:
    """What an upsert did."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    changes: list[Change] = field(default_factory=list)


async def ensure_commune(session: AsyncSession, *, slug: str, name: str) -> int:
    """The id of a commune, created on first use (by one of several processes starting at
    once: the others find it)."""
    found = (await session.exec(select(Commune.id).where(Commune.slug == slug))).first()
    if found is not None:
        return found
    await _core(session, upsert(session, Commune).on_conflict_do_nothing(index_elements=["slug"]),
                [{"slug": slug, "name": name}])
    created = (await session.exec(select(Commune.id).where(Commune.slug == slug))).one()
    assert created is not None
    return created


async def existing(session: AsyncSession, *, commune_id: int,
                   codes: Iterable[str]) -> dict[str, Application]:
    """Stored applications by receipt code."""
    codes = list(codes)
    out: dict[str, Application] = {}
    for start in range(0, len(codes), CHUNK):
        chunk = codes[start:start + CHUNK]
        query = select(Application).where(Application.commune_id == commune_id,
                                          col(Application.receipt_code).in_(chunk))
        out.update((a.receipt_code, a) for a in (await session.exec(query)).all())
    return out


async def upsert_applications(session: AsyncSession, *, commune_id: int,
                              records: Sequence[ApplicationRecord], actor: str,
                              now: dt.datetime) -> UpsertReport:
    """Insert new applications and update changed ones, recording every status change.

    Idempotent: a record equal to what is stored changes nothing.
    """
    report = UpsertReport()
    stored = await existing(session, commune_id=commune_id, codes=[r.receipt_code for r in records])
    new = [r for r in records if r.receipt_code not in stored]
    changed = [r for r in records if r.receipt_code in stored
               and any(getattr(r, f) != getattr(stored[r.receipt_code], f) for f in RECORD_FIELDS)]
    report.unchanged = len(records) - len(new) - len(changed)
    if new:
        rows = [{"commune_id": commune_id, **_values(r), "updated_at": now} for r in new]
        result = await _core(
            session,
            insert(Application).returning(col(Application.id), col(Application.receipt_code)),
            rows)
        ids = {row.receipt_code: row.id for row in result.all()}
        history = []
        for r in new:
            history.append(_history(ids[r.receipt_code], ApplicationStatus.RECEIVED,
                                    r.received_at, actor))
            if r.status is not ApplicationStatus.RECEIVED:
                history.append(_history(ids[r.receipt_code], r.status,
                                        r.completed_at or now, actor))
        await _core(session, insert(StatusChange), history)
        report.created = len(new)
        if len(new) >= ANALYZE_AFTER and session.bind and session.bind.dialect.name == "postgresql":
            # Fresh statistics, or PostgreSQL plans the next lookups as on an empty table.
            await _core(session, text("ANALYZE application, statuschange"))
    if changed:
        table = Application.metadata.tables["application"]
        await _core(
            session, update(table).where(table.c.id == bindparam("_id")),
            [{"_id": stored[r.receipt_code].id, **_values(r), "updated_at": now}
             for r in changed])
        report.updated = len(changed)
        for r in changed:
            app = stored[r.receipt_code]
            if r.status != app.status:
                assert app.id is not None
                report.changes.append(await _record_change(
                    session, app.id, r.status, at=r.completed_at or now, actor=actor, note=""))
    return report


CORRECTION = "correction: "  # how a correction's note starts in the history


async def change_status(session: AsyncSession, *, commune_id: int, receipt_code: str,
                        status: ApplicationStatus, actor: str, at: dt.datetime, note: str = "",
                        completed_at: dt.datetime | None = None, workflow: bool = False,
                        correction: bool = False) -> Change | None:
    """Move an application to ``status``; None if the code is unknown.

    The same status again is no change (``status_change_id`` 0, so no follower is told twice);
    a new note with it is kept in the history. With ``workflow`` a move the one-stop workflow
    does not allow raises ``TransitionRefused``, unless it is a ``correction``, which needs a
    note and is recorded as one. Times before receipt or out of bounds raise ``InvalidValue``.
    """
    app = (await existing(session, commune_id=commune_id, codes=[receipt_code])).get(receipt_code)
    if app is None or app.id is None:
        return None
    if correction and not note.strip():
        raise InvalidValue("note", "a correction needs a note saying why")
    for name, when in (("changed_at", at), ("completed_at", completed_at)):
        if when is None:
            continue
        if not within_bounds(when):
            raise InvalidValue(name, f"must be between {FIRST_DAY} and {LAST_DAY}")
        if when < app.received_at:
            raise InvalidValue(name, f"is before received_at {app.received_at.isoformat()}")
    for _ in range(3):  # another change may come first: judge against the status it left
        current = ApplicationStatus(app.status)  # the column holds its value
        if status == current:
            return await _note_only(session, app.id, status, at=at, actor=actor, note=note)
        if workflow and not correction and not current.may_become(status):
            raise TransitionRefused(current, status)
        values: dict[str, object] = {"status": status, "updated_at": at}
        if status.settled:
            values["completed_at"] = completed_at or app.completed_at or at
        moved = await _core(session, update(Application).where(
            col(Application.id) == app.id, col(Application.status) == app.status).values(**values))
        if moved.rowcount:  # type: ignore[attr-defined]
            return await _record_change(session, app.id, status, at=at, actor=actor,
                                        note=f"{CORRECTION}{note.strip()}" if correction else note)
        await session.refresh(app)
    raise TransitionRefused(ApplicationStatus(app.status), status)


async def _note_only(session: AsyncSession, application_id: int, status: ApplicationStatus, *,
                     at: dt.datetime, actor: str, note: str) -> Change:
    """Keep a new note on the current status (what a supplement asks for) without a change."""
    changes = await history(session, application_id)
    if note and (not changes or changes[-1].note != note):
        await _record_change(session, application_id, status, at=at, actor=actor, note=note)
    return Change(application_id, 0, status)


async def history(session: AsyncSession, application_id: int) -> list[StatusChange]:
    """An application's status changes, oldest first."""
    query = (select(StatusChange).where(StatusChange.application_id == application_id)
             .order_by(col(StatusChange.changed_at), col(StatusChange.id)))
    return list((await session.exec(query)).all())


_RECORD_LOOKUP = insert(LookupAttempt.metadata.tables["lookupattempt"])


async def record_lookup(session: AsyncSession, *, commune_id: int, user_key: str,
                        client_key: str = "", receipt_code: str, success: bool,
                        refused: bool = False, weak: bool = False, at: dt.datetime) -> None:
    """Audit one status lookup (``refused``: turned away unchecked; ``weak``: checked on the
    phone's last digits only)."""
    await _core(session, _RECORD_LOOKUP, [{
        "commune_id": commune_id, "user_key": user_key, "client_key": client_key[:64],
        "receipt_code": receipt_code, "success": success, "refused": refused, "weak": weak,
        "at": at}])


@dataclass(frozen=True)
class LookupCounts:
    """Failed lookups of one code, counted the ways the limits need them."""

    by_client: int  # from this client address since ``day_since``
    by_user: int  # from this channel account since ``day_since``
    on_code: int  # from anyone since ``window_since``
    weak: int  # on the phone's last digits, from anyone since ``since``
    weak_in_commune: int  # on the phone's last digits, any code, since ``day_since``
    proven: bool  # this channel account looked the code up successfully since ``since``


def _lookup_snapshot_query() -> Select[Any]:
    """The failure counts of a code and the application if any, as one row.

    Every count reads the code's own recent attempts (index commune, code, time), so the cost
    does not grow with other codes' traffic; built once with bind parameters.
    """
    attempts = LookupAttempt.metadata.tables["lookupattempt"]
    table = Application.metadata.tables["application"]
    failed = attempts.c.success.is_(False) & attempts.c.refused.is_(False)

    def count(condition: Any) -> Any:
        return func.count().filter(condition)

    today = failed & (attempts.c.at >= bindparam("day_since"))
    counts = sa_select(
        count(today & (attempts.c.client_key == bindparam("client_key"))).label("by_client"),
        count(today & (attempts.c.user_key == bindparam("user_key"))).label("by_user"),
        count(failed & (attempts.c.at >= bindparam("window_since"))).label("on_code"),
        count(failed & attempts.c.weak.is_(True)).label("weak"),
        count(attempts.c.success.is_(True) & (attempts.c.user_key == bindparam("user_key"))
              ).label("successes"),
    ).where(attempts.c.commune_id == bindparam("commune_id"),
            attempts.c.receipt_code == bindparam("receipt_code"),
            attempts.c.at >= bindparam("since")).subquery()
    weak_in_commune = sa_select(func.count()).where(  # the partial index ix_lookup_weak_failure
        attempts.c.commune_id == bindparam("commune_id"), attempts.c.at >= bindparam("day_since"),
        attempts.c.weak.is_(True), failed).scalar_subquery()
    found = table.select().where(table.c.commune_id == bindparam("commune_id"),
                                 table.c.receipt_code == bindparam("receipt_code")).subquery()
    return sa_select(counts, weak_in_commune.label("weak_in_commune"), found).select_from(
        counts.outerjoin(found, true()))


_LOOKUP_SNAPSHOT = _lookup_snapshot_query()


async def lookup_snapshot(session: AsyncSession, *, commune_id: int, user_key: str,
                          client_key: str, receipt_code: str, since: dt.datetime,
                          day_since: dt.datetime, window_since: dt.datetime
                          ) -> tuple[LookupCounts, Application | None]:
    """In one round trip: the lookups of this code counted for the limits (see
    ``LookupCounts``; ``since`` is the earliest of the three times) and the application with
    this code, if any."""
    row = (await _core(session, _LOOKUP_SNAPSHOT, [{
        "commune_id": commune_id, "user_key": user_key, "client_key": client_key[:64],
        "receipt_code": receipt_code, "since": since, "day_since": day_since,
        "window_since": window_since}])).one()
    values = row._mapping
    app = None if values["id"] is None else Application(
        **{c.name: values[c.name] for c in Application.metadata.tables["application"].columns})
    counts = LookupCounts(by_client=values["by_client"] if client_key else 0,
                          by_user=values["by_user"], on_code=values["on_code"],
                          weak=values["weak"], weak_in_commune=values["weak_in_commune"],
                          proven=values["successes"] > 0)
    return counts, app


async def subscribe(session: AsyncSession, *, commune_id: int, application_id: int,
                    channel: str, recipient: str, lang: str) -> bool:
    """Follow an application; False if this recipient already follows it."""
    try:
        async with session.begin_nested():
            session.add(Subscription(commune_id=commune_id, application_id=application_id,
                                     channel=channel, recipient=recipient, lang=lang))
    except IntegrityError:
        return False
    return True


async def unsubscribe(session: AsyncSession, *, application_id: int, channel: str,
                      recipient: str) -> bool:
    """Stop following; False if the recipient was not following."""
    found = (await session.exec(select(Subscription).where(
        Subscription.application_id == application_id, Subscription.channel == channel,
        Subscription.recipient == recipient))).first()
    if found is None:
        return False
    await session.delete(found)
    return True


async def subscribers(session: AsyncSession, application_ids: Iterable[int]
                      ) -> dict[int, list[Subscription]]:
    """Followers of each application."""
    ids = list(application_ids)
    out: dict[int, list[Subscription]] = {}
    for start in range(0, len(ids), CHUNK):
        query = select(Subscription).where(
            col(Subscription.application_id).in_(ids[start:start + CHUNK]))
        for sub in (await session.exec(query)).all():
            out.setdefault(sub.application_id, []).append(sub)
    return out


async def enqueue(session: AsyncSession, notifications: Sequence[Notification]) -> None:
    """Queue messages in the outbox; a key already queued is skipped (at-most-once enqueue)."""
    keys = [n.idempotency_key for n in notifications]
    queued = set((await session.exec(select(Notification.idempotency_key).where(
        col(Notification.idempotency_key).in_(keys)))).all()) if keys else set()
    session.add_all(n for n in notifications if n.idempotency_key not in queued)
    await session.flush()


async def add_integration_key(session: AsyncSession, *, commune_id: int, name: str,
                              key_hash: str) -> None:
    """Register an integration's API key (by its hash)."""
    session.add(IntegrationKey(commune_id=commune_id, name=name, key_hash=key_hash))
    await session.flush()


async def revoke_integration_keys(session: AsyncSession, *, commune_id: int, name: str,
                                  at: dt.datetime) -> int:
    """Revoke every active key of an integration; returns how many."""
    result = await _core(session, update(IntegrationKey).where(
        col(IntegrationKey.commune_id) == commune_id, col(IntegrationKey.name) == name,
        col(IntegrationKey.revoked_at).is_(None)).values(revoked_at=at))
    return int(result.rowcount)  # type: ignore[attr-defined]


async def integration_for_key(session: AsyncSession, key_hash: str) -> IntegrationKey | None:
    """The active integration owning an API key hash."""
    return (await session.exec(select(IntegrationKey).where(
        IntegrationKey.key_hash == key_hash,
        col(IntegrationKey.revoked_at).is_(None)))).first()


async def _core(session: AsyncSession, statement: Executable,
                params: Sequence[dict[str, object]] | None = None) -> Result[Any]:
    """Run a Core statement (bulk insert/update) in the session's transaction."""
    connection = await session.connection()
    return await connection.execute(statement, list(params) if params is not None else None)


def _values(record: ApplicationRecord) -> dict[str, object]:
    return {name: getattr(record, name) for name in RECORD_FIELDS}


def _history(application_id: int, status: ApplicationStatus, at: dt.datetime,
             actor: str) -> dict[str, object]:
    return {"application_id": application_id, "status": status, "changed_at": at,
            "changed_by": actor, "note": ""}


async def _record_change(session: AsyncSession, application_id: int, status: ApplicationStatus,
                         *, at: dt.datetime, actor: str, note: str) -> Change:
    change = StatusChange(application_id=application_id, status=status, changed_at=at,
                          changed_by=actor, note=note)
    session.add(change)
    await session.flush()
    assert change.id is not None
    return Change(application_id, change.id, status)


async def claim_notifications(session: AsyncSession, *, channels: Sequence[tuple[int, str]],
                              limit: int, now: dt.datetime, lease: dt.timedelta
                              ) -> list[Notification]:
    """Messages due for these (commune id, channel) pairs, earliest first, leased to this
    sender for ``lease``.

    One indexed query (``ix_notification_due``); on PostgreSQL concurrent senders skip each
    other's rows (``SKIP LOCKED``). Each claim counts an attempt; a message whose sender dies
    is due again when its lease runs out.
    """
    query = (select(Notification)
             .where(col(Notification.sent_at).is_(None),
                    col(Notification.next_attempt_at) <= now,
                    tuple_(col(Notification.commune_id), col(Notification.channel))
                    .in_(list(channels)))
             .order_by(col(Notification.next_attempt_at), col(Notification.id)).limit(limit))
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    claimed = list((await session.exec(query)).all())
    for message in claimed:
        message.attempts += 1
        message.next_attempt_at = now + lease
        session.add(message)
    await session.flush()
    return claimed


# How long a channel answering an event holds its replies before the outbox may send them
# (``handlers.conversation`` writes replies due this long after they were made).
REPLY_LEASE = dt.timedelta(minutes=1)
NOT_SENT = ("expired", "unreachable", "undeliverable")  # outcomes of a closed message


async def mark_sent(session: AsyncSession, ids: Sequence[int], *, at: dt.datetime) -> None:
    """Record that these outbox messages were delivered."""
    await _core(session, update(Notification).where(col(Notification.id).in_(list(ids)))
                .values(sent_at=at))


async def close_notifications(session: AsyncSession, ids: Sequence[int], *, at: dt.datetime,
                              outcome: str) -> None:
    """Take these messages out of the outbox unsent, saying why (one of ``NOT_SENT``)."""
    if ids:
        await _core(session, update(Notification).where(col(Notification.id).in_(list(ids)))
                    .values(sent_at=at, outcome=outcome))


async def reschedule(session: AsyncSession, due: dict[int, dt.datetime], *,
                     uncount: Collection[int] = ()) -> None:
    """Make messages due again at the given times; those in ``uncount`` (held, not tried)
    get their attempt back."""
    if due:
        table = Notification.__table__  # type: ignore[attr-defined]
        await _core(session, update(table).where(table.c.id == bindparam("key")).values(
            next_attempt_at=bindparam("due"),
            attempts=table.c.attempts - bindparam("back")),
            [{"key": i, "due": at, "back": int(i in uncount)} for i, at in due.items()])


async def unreachable_among(session: AsyncSession, commune_id: int, channel: str,
                            recipients: Collection[str]) -> set[str]:
    """Which of these recipients blocked the commune's bot on ``channel``."""
    if not recipients:
        return set()
    return set((await session.exec(select(Unreachable.recipient).where(
        col(Unreachable.commune_id) == commune_id, col(Unreachable.channel) == channel,
        col(Unreachable.recipient).in_(list(recipients))))).all())


async def mark_unreachable(session: AsyncSession, *, commune_id: int, channel: str,
                           recipient: str, at: dt.datetime) -> int:
    """Record that a recipient blocked the commune's bot on a channel and close the
    commune's pending messages to them there as "unreachable"; returns how many were
    closed."""
    if not await unreachable_among(session, commune_id, channel, [recipient]):
        session.add(Unreachable(commune_id=commune_id, channel=channel, recipient=recipient,
                                since=at))
        await session.flush()
    result = await _core(session, update(Notification).where(
        col(Notification.commune_id) == commune_id, col(Notification.channel) == channel,
        col(Notification.recipient) == recipient,
        col(Notification.sent_at).is_(None)).values(sent_at=at, outcome="unreachable"))
    return int(result.rowcount)  # type: ignore[attr-defined]


async def mark_reachable(session: AsyncSession, *, commune_id: int,
                         keys: Collection[tuple[str, str]]) -> None:
    """These (channel, recipient) wrote to the commune again: it can message them again (one
    statement on a table that is usually empty)."""
    if keys:
        await _core(session, delete(Unreachable).where(
            col(Unreachable.commune_id) == commune_id, tuple_(
                col(Unreachable.channel), col(Unreachable.recipient)).in_(list(keys))))


async def expired_notifications(session: AsyncSession, *, commune_id: int, limit: int = 1000,
                                outcomes: Sequence[str] = ("expired",)) -> list[Notification]:
    """A commune's messages closed unsent with one of ``outcomes`` ("expired": for staff to
    send again; "undeliverable": refused by their channel), newest first."""
    return list((await session.exec(select(Notification).where(
        col(Notification.commune_id) == commune_id,
        col(Notification.outcome).in_(list(outcomes))).order_by(
        col(Notification.sent_at).desc(), col(Notification.id).desc()).limit(limit))).all())


async def resend_expired(session: AsyncSession, *, commune_id: int, ids: Sequence[int] | None,
                         now: dt.datetime, expires_at: dt.datetime) -> int:
    """Put a commune's expired messages (these, or all when ``ids`` is None) back in the
    outbox, due now and kept until ``expires_at``; returns how many."""
    query = update(Notification).where(col(Notification.commune_id) == commune_id,
                                       col(Notification.outcome) == "expired")
    if ids is not None:
        query = query.where(col(Notification.id).in_(list(ids)))
    result = await _core(session, query.values(
        sent_at=None, outcome=None, attempts=0, next_attempt_at=now, expires_at=expires_at))
    return int(result.rowcount)  # type: ignore[attr-defined]


async def mark_delivered(session: AsyncSession, keys: Sequence[str], *, at: dt.datetime
                         ) -> None:
    """Record that the outbox messages with these idempotency keys were delivered."""
    await _core(session, update(Notification).where(
        col(Notification.idempotency_key).in_(list(keys))).values(sent_at=at))


async def by_keys(session: AsyncSession, keys: Sequence[str]) -> list[Notification]:
    """The outbox messages with these idempotency keys, in the keys' order."""
    found = {n.idempotency_key: n for n in (await session.exec(select(Notification).where(
        col(Notification.idempotency_key).in_(list(keys))))).all()}
    return [found[k] for k in keys if k in found]


async def take_for_recipient(session: AsyncSession, *, channel: str, recipient: str,
                             now: dt.datetime, limit: int = 20) -> list[Notification]:
    """Pending messages of one recipient on a pull channel (the web chat), marked sent."""
    pending = (await session.exec(select(Notification).where(
        col(Notification.channel) == channel, col(Notification.recipient) == recipient,
        col(Notification.sent_at).is_(None)).order_by(col(Notification.id)).limit(limit))).all()
    for message in pending:
        message.sent_at, message.attempts = now, message.attempts + 1
        session.add(message)
    return list(pending)


# Statuses whose deadline still runs: the commune has neither a result nor a final answer.
OPEN_STATUSES = (ApplicationStatus.RECEIVED, ApplicationStatus.PROCESSING,
                 ApplicationStatus.SUPPLEMENT_REQUIRED)
Window = tuple[dt.datetime, dt.datetime]  # [start, end)


async def set_supplement_due(session: AsyncSession, *, application_id: int,
                             due: dt.datetime | None) -> None:
    """Record by when the documents asked for are due (None: no deadline given)."""
    if due is not None and not within_bounds(due):
        raise InvalidValue("supplement_due_at", f"must be between {FIRST_DAY} and {LAST_DAY}")
    await _core(session, update(Application).where(col(Application.id) == application_id)
                .values(supplement_due_at=due))


OutboxRow = dict[str, object]  # a message's columns: commune_id, channel, recipient, text,
# idempotency_key, kind


async def enqueue_rows(session: AsyncSession, rows: Sequence[OutboxRow]) -> None:
    """Queue many messages at once in one Core INSERT, without ORM objects (for the reminder
    scan, which may owe thousands); a key already queued is skipped."""
    if not rows:
        return
    at = utcnow()
    statement = upsert(session, Notification)
    await _core(session, statement.on_conflict_do_nothing(index_elements=["idempotency_key"]),
                [{**row, "created_at": at, "next_attempt_at": at, "attempts": 0}
                 for row in rows])


async def queued_keys(session: AsyncSession, keys: Sequence[str]) -> set[str]:
    """Those of ``keys`` (at most ``CHUNK``) already in the outbox."""
    if not keys:
        return set()
    return set((await session.exec(select(Notification.idempotency_key).where(
        col(Notification.idempotency_key).in_(keys)))).all())


class Followed(NamedTuple):
    """A followed application and one of its followers: what a reminder needs, no more."""

    id: int
    receipt_code: str
    procedure_code: str | None
    procedure_name: str
    status: str
    due_at: dt.datetime | None
    completed_at: dt.datetime | None
    supplement_due_at: dt.datetime | None
    subscription_id: int
    channel: str
    recipient: str
    lang: str


async def followed_for_reminders(session: AsyncSession, *, commune_id: int, overdue: Window,
                                 appointment: Window, uncollected: Window, supplement: Window
                                 ) -> list[Followed]:
    """Followed applications in one of the reminder windows, with each follower: open and past
    ``due_at`` within ``overdue``; ready and due within ``appointment``; ready since
    ``completed_at`` within ``uncollected``; asked for documents due within ``supplement``.
    One query, each branch a range on an index of (commune, status, date); only the columns
    a reminder needs (a first tick at a million applications finds thousands)."""
    a, s = Application, Subscription
    ready = col(a.status) == ApplicationStatus.RESULT_READY

    def within(column: Any, window: Window) -> Any:
        return (column >= window[0]) & (column < window[1])

    query = (sa_select(col(a.id), col(a.receipt_code), col(a.procedure_code),
                       col(a.procedure_name), col(a.status), col(a.due_at), col(a.completed_at),
                       col(a.supplement_due_at), col(s.id), col(s.channel), col(s.recipient),
                       col(s.lang))
             .join(s, col(s.application_id) == col(a.id))
             .where(col(a.commune_id) == commune_id,
                    (col(a.status).in_(OPEN_STATUSES) & within(col(a.due_at), overdue))
                    | (ready & within(col(a.due_at), appointment))
                    | (ready & within(col(a.completed_at), uncollected))
                    | ((col(a.status) == ApplicationStatus.SUPPLEMENT_REQUIRED)
                       & within(col(a.supplement_due_at), supplement)))
             .order_by(col(a.id), col(s.id)))
    return [Followed._make(row) for row in (await _core(session, query)).all()]


async def due_by_field(session: AsyncSession, *, commune_id: int, today: Window,
                       next_day: Window) -> dict[str, tuple[int, int, int]]:
    """Open applications per field: (due within ``today``, due within ``next_day``, due
    before ``today``: overdue), for the staff digest."""
    a = Application
    due = col(a.due_at)

    def count(condition: Any) -> Any:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    query = (sa_select(col(a.field), count((due >= today[0]) & (due < today[1])),
                       count(due >= next_day[0]), count(due < today[0]))
             .where(col(a.commune_id) == commune_id, col(a.status).in_(OPEN_STATUSES),
                    due < next_day[1])
             .group_by(col(a.field)))
    rows: Sequence[Any] = (await _core(session, query)).all()
    return {row[0]: (int(row[1]), int(row[2]), int(row[3])) for row in rows}


# Console search (staff): Vietnamese letters by their folded base letter, so a name typed
# without diacritics or in any case finds "Nguyễn" (SQLite GLOB / PostgreSQL regex classes,
# evaluated in C: no per-row Python function).
_VIETNAMESE = ("aàáảãạăằắẳẵặâầấẩẫậeèéẻẽẹêềếểễệiìíỉĩịoòóỏõọôồốổỗộơờớởỡợ"
               "uùúủũụưừứửữựyỳýỷỹỵdđ")


def _letter_classes() -> dict[str, str]:
    """Each base letter with its Vietnamese forms in both cases: "d" → "dđDĐ"."""
    classes: dict[str, str] = {}
    for letter in _VIETNAMESE + _VIETNAMESE.upper():
        classes[fold(letter)] = classes.get(fold(letter), "") + letter
    return classes


_LETTERS = _letter_classes()


@dataclass(frozen=True)
class SearchFilters:
    """What staff look for: ``text`` is part of a receipt code, a phone number or a name."""

    text: str = ""
    status: ApplicationStatus | None = None
    procedure_code: str = ""
    due_from: dt.datetime | None = None  # due at or after
    due_before: dt.datetime | None = None
    overdue_at: dt.datetime | None = None  # only open applications due before this instant


def _name_pattern(word: str, dialect: str) -> str:
    """A GLOB (SQLite) or regex (PostgreSQL) pattern finding ``word`` (folded) in a name."""
    parts = []
    for char in word:
        if char in _LETTERS or (char.isascii() and char.isalpha()):
            parts.append(f"[{_LETTERS.get(char, char + char.upper())}]")
        elif dialect == "sqlite":
            parts.append(f"[{char}]" if char in "*?[" else char)
        else:
            parts.append(re.escape(char))
    return f"*{''.join(parts)}*" if dialect == "sqlite" else "".join(parts)


def _like(text: str) -> str:
    return "%" + re.sub(r"([\\%_])", r"\\\1", text) + "%"


async def search_applications(session: AsyncSession, *, commune_id: int,
                              filters: SearchFilters, limit: int, offset: int = 0
                              ) -> list[Application]:
    """A page of a commune's applications matching ``filters``: latest registered first, or
    earliest due first when a due date or overdue is asked for. A text is a whole receipt
    code (found through its index), else part of a code, of the phone number (digits) or
    every word of the applicant's name: a scan, newest rows first, that stops at ``limit``."""
    a = Application
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    query = select(a).where(col(a.commune_id) == commune_id)
    if filters.status is not None:
        query = query.where(col(a.status) == filters.status)
    if filters.procedure_code:
        query = query.where(col(a.procedure_code) == filters.procedure_code)
    if filters.due_from is not None:
        query = query.where(col(a.due_at) >= filters.due_from)
    if filters.due_before is not None:
        query = query.where(col(a.due_at) < filters.due_before)
    if filters.overdue_at is not None:
        query = query.where(col(a.status).in_(OPEN_STATUSES),
                            col(a.due_at) < filters.overdue_at)
    wanted = filters.text.strip()[:100]
    if wanted:
        code = re.sub(r"\s+", "", wanted).upper()
        if offset == 0:  # a whole receipt code: one row of the unique index, no scan
            exact = (await session.exec(query.where(col(a.receipt_code) == code))).first()
            if exact is not None:
                return [exact]
        found: list[Any] = [col(a.receipt_code).like(_like(code), escape="\\")]
        digits = re.sub(r"\D", "", wanted)
        if wanted.startswith("+84"):
            digits = "0" + digits[2:]
        if len(digits) >= 3 and not re.search(r"[^\d\s.+()\-]", wanted):
            found.append(col(a.phone).like(_like(digits), escape="\\"))
        words = fold(wanted).split()[:5]
        if any(char.isalpha() for char in wanted) and words:
            operator = "GLOB" if dialect == "sqlite" else "~"
            found.append(and_(*(col(a.applicant_name).op(operator)(_name_pattern(w, dialect))
                                for w in words)))
        query = query.where(or_(*found))
    by_due = filters.overdue_at or filters.due_from or filters.due_before
    order = (col(a.due_at), col(a.id)) if by_due else (col(a.id).desc(),)
    return list((await session.exec(query.order_by(*order).offset(offset).limit(limit))).all())


@dataclass(frozen=True)
class OutboxDepth:
    """Unsent outbox messages: all of them, those due now, and the oldest's creation time."""

    pending: int
    due: int
    oldest: dt.datetime | None


async def outbox_depth(session: AsyncSession, *, now: dt.datetime) -> OutboxDepth:
    """The outbox's unsent messages, every commune and channel: three queries, each on a
    partial index of unsent rows (grouping by channel would read every unsent row, 7 times
    slower with 100,000 waiting: ``bench/metrics.py``)."""
    unsent = col(Notification.sent_at).is_(None)
    pending = (await _core(session, sa_select(func.count()).select_from(Notification)
                           .where(unsent))).scalar_one()
    due = (await _core(session, sa_select(func.count()).select_from(Notification).where(
        unsent, col(Notification.next_attempt_at) <= now))).scalar_one()
    oldest = (await _core(session, sa_select(func.min(col(Notification.created_at)))
                          .where(unsent))).scalar_one()
    if oldest is not None and oldest.tzinfo is None:  # SQLite gives back naive UTC
        oldest = oldest.replace(tzinfo=dt.UTC)
    return OutboxDepth(int(pending), int(due), oldest)
