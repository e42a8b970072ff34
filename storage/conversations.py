"""Queries on conversations, unanswered questions, handled channel events, channel tokens and
periodic jobs' runs.

SQLite and PostgreSQL are the supported databases (``INSERT … ON CONFLICT`` in both).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import and_, delete, exists, tuple_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import upsert
from storage.models import (
    AnnouncementSubscriber,
    ChannelToken,
    Conversation,
    JobRun,
    Notification,
    SeenEvent,
    Unanswered,
    Unreachable,
    utcnow,
)


@dataclass(frozen=True)
class Contact:
    """A citizen's conversation on one channel, with what a turn needs to know beside it."""

    conversation: Conversation
    announcements: bool = False  # they receive the commune's announcements on this channel
    unreachable: bool = False  # marked as having blocked the bot (``Unreachable``)


async def conversations(session: AsyncSession, *, commune_id: int,
                        keys: Collection[tuple[str, str]]) -> dict[tuple[str, str], Conversation]:
    """The conversations of these (channel, user id) pairs, created on first contact (see
    ``contacts``)."""
    found = await contacts(session, commune_id=commune_id, keys=keys)
    return {key: contact.conversation for key, contact in found.items()}


async def contacts(session: AsyncSession, *, commune_id: int,
                   keys: Collection[tuple[str, str]]) -> dict[tuple[str, str], Contact]:
    """The conversations of these (channel, user id) pairs, created on first contact, each
    with whether they receive the announcements and whether they blocked the bot: one
    statement (two on first contact) for any number of pairs.

    The conversations belong to the session: changes are saved when it commits. Two
    instances creating the same conversation at once both get the one row.
    """
    wanted = set(keys)
    subscriber, blocked = AnnouncementSubscriber, Unreachable
    announcements = exists().where(
        col(subscriber.commune_id) == commune_id,
        col(subscriber.channel) == col(Conversation.channel),
        col(subscriber.recipient) == col(Conversation.user_id),
        col(subscriber.withdrawn_at).is_(None))
    unreachable = exists().where(and_(col(blocked.commune_id) == commune_id,
                                      col(blocked.channel) == col(Conversation.channel),
                                      col(blocked.recipient) == col(Conversation.user_id)))

    async def load(pairs: set[tuple[str, str]]) -> dict[tuple[str, str], Contact]:
        query = select(Conversation, announcements.label("announcements"),
                       unreachable.label("unreachable")).where(
            col(Conversation.commune_id) == commune_id,
            tuple_(col(Conversation.channel), col(Conversation.user_id)).in_(pairs))
        return {(c.channel, c.user_id): Contact(c, bool(on), bool(blocked))
                for c, on, blocked in (await session.exec(query)).all()}

    found = await load(wanted)
    missing = wanted - found.keys()
    if missing:
        rows = [Conversation(commune_id=commune_id, channel=channel, user_id=user_id)
                .model_dump(exclude={"id"}) for channel, user_id in missing]
        await (await session.connection()).execute(
            upsert(session, Conversation).on_conflict_do_nothing(), rows)
        found.update(await load(missing))
    return found


async def record_unanswered(session: AsyncSession, *, commune_id: int, channel: str,
                            user_id: str, text: str, unsure: tuple[str, float] | None = None
                            ) -> None:
    """Keep a question the assistant could not answer, or (``unsure``: the procedure it
    answered, "" for a choice offered, and the match's score) answered unsure of, for staff
    to review."""
    answered, score = unsure if unsure is not None else (None, None)
    session.add(Unanswered(commune_id=commune_id, channel=channel, user_id=user_id,
                           text=text[:2000], kind="unsure" if unsure else "declined",
                           answered=answered, score=score))
    await session.flush()


async def first_times(session: AsyncSession, events: Collection[tuple[str, str]]
                      ) -> set[tuple[str, str]]:
    """Mark channel events (channel, event id) as handled; returns those handled for the first
    time (a redelivered event is left out)."""
    if not events:
        return set()
    at = utcnow()
    # One statement for any number of events (executemany: compiled once, sent in batches).
    statement = (upsert(session, SeenEvent).on_conflict_do_nothing()
                 .returning(col(SeenEvent.channel), col(SeenEvent.event_id)))
    result = await (await session.connection()).execute(
        statement, [{"channel": c, "event_id": e, "at": at} for c, e in set(events)])
    return {(channel, event_id) for channel, event_id in result}


async def queue_replies(session: AsyncSession, replies: Collection[Notification]) -> None:
    """Put replies in the outbox in one statement; a key already there is left as it is (an
    event forgotten by ``forget_events`` and then delivered again)."""
    if replies:
        await (await session.connection()).execute(
            upsert(session, Notification).on_conflict_do_nothing(),
            [r.model_dump(exclude={"id"}) for r in replies])


async def forget_events(session: AsyncSession, *, before: dt.datetime) -> int:
    """Drop the record of events handled before ``before`` (channels stop redelivering long
    before); returns how many were dropped."""
    result = await (await session.connection()).execute(
        delete(SeenEvent).where(col(SeenEvent.at) < before))
    return int(result.rowcount or 0)


async def token(session: AsyncSession, *, commune_id: int, channel: str,
                name: str) -> ChannelToken | None:
    """A stored channel credential."""
    return (await session.exec(select(ChannelToken).where(
        col(ChannelToken.commune_id) == commune_id, col(ChannelToken.channel) == channel,
        col(ChannelToken.name) == name))).first()


async def save_token(session: AsyncSession, *, commune_id: int, channel: str, name: str,
                     value: str, expires_at: dt.datetime | None) -> None:
    """Store or replace a channel credential (in the caller's transaction)."""
    found = await token(session, commune_id=commune_id, channel=channel, name=name)
    if found is None:
        session.add(ChannelToken(commune_id=commune_id, channel=channel, name=name, value=value,
                                 expires_at=expires_at))
    else:
        found.value, found.expires_at, found.updated_at = value, expires_at, utcnow()
        session.add(found)
    await session.flush()


async def last_contact(session: AsyncSession, *, commune_id: int, channel: str,
                       user_id: str) -> tuple[dt.datetime, int] | None:
    """When the citizen last wrote on this channel and how many messages they were sent
    since; None if they never wrote (no conversation is created)."""
    row = (await session.exec(select(Conversation.last_seen_at, Conversation.sent_since_seen)
                              .where(col(Conversation.commune_id) == commune_id,
                                     col(Conversation.channel) == channel,
                                     col(Conversation.user_id) == user_id))).first()
    return None if row is None else (row[0], row[1])


async def count_sent(session: AsyncSession, *, commune_id: int, channel: str, user_id: str,
                     messages: int) -> None:
    """Add ``messages`` to what the citizen was sent since they last wrote."""
    await (await session.connection()).execute(
        update(Conversation).where(col(Conversation.commune_id) == commune_id,
                                   col(Conversation.channel) == channel,
                                   col(Conversation.user_id) == user_id)
        .values(sent_since_seen=col(Conversation.sent_since_seen) + messages))


async def lock_tokens(session: AsyncSession, *, commune_id: int, channel: str) -> None:
    """Hold the channel's token rows until the transaction ends (PostgreSQL row locks), so
    two instances never spend the same single-use refresh token."""
    await session.exec(select(col(ChannelToken.id)).where(
        col(ChannelToken.commune_id) == commune_id,
        col(ChannelToken.channel) == channel).with_for_update())


async def claim_job(session: AsyncSession, *, name: str, slot: str, at: dt.datetime) -> int | None:
    """Claim the run of job ``name`` for ``slot``: its id, or None when another instance (or
    an earlier start of this one) has it already."""
    result = await (await session.connection()).execute(
        upsert(session, JobRun).on_conflict_do_nothing().returning(col(JobRun.id)),
        [{"name": name, "slot": slot, "started_at": at, "outcome": ""}])
    return result.scalar_one_or_none()


async def finish_job(session: AsyncSession, *, run_id: int, at: dt.datetime,
                     outcome: str) -> None:
    """Record how a claimed run ended."""
    await (await session.connection()).execute(
        update(JobRun).where(col(JobRun.id) == run_id).values(finished_at=at,
                                                               outcome=outcome[:200]))
