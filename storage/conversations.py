"""Queries on conversations, unanswered questions, handled channel events and channel tokens.

SQLite and PostgreSQL are the supported databases (``INSERT … ON CONFLICT`` in both).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import ChannelToken, Conversation, SeenEvent, Unanswered, utcnow


async def conversation(session: AsyncSession, *, commune_id: int, channel: str,
                       user_id: str) -> Conversation:
    """The conversation of a user on a channel, created on first contact.

    The returned object belongs to the session: changes are saved when it commits.
    """
    query = select(Conversation).where(col(Conversation.commune_id) == commune_id,
                                       col(Conversation.channel) == channel,
                                       col(Conversation.user_id) == user_id)
    found = (await session.exec(query)).first()
    if found is not None:
        return found
    try:
        async with session.begin_nested():
            created = Conversation(commune_id=commune_id, channel=channel, user_id=user_id)
            session.add(created)
        return created
    except IntegrityError:  # another instance created it meanwhile
        return (await session.exec(query)).one()


async def record_unanswered(session: AsyncSession, *, commune_id: int, channel: str,
                            user_id: str, text: str) -> None:
    """Keep a question the assistant could not answer, for staff to review."""
    session.add(Unanswered(commune_id=commune_id, channel=channel, user_id=user_id,
                           text=text[:2000]))
    await session.flush()


async def first_time(session: AsyncSession, *, channel: str, event_id: str) -> bool:
    """Mark a channel event as handled; False if it was handled before (a redelivery)."""
    dialect = session.bind.dialect.name if session.bind is not None else ""
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    statement = (insert(SeenEvent).values(channel=channel, event_id=event_id, at=utcnow())
                 .on_conflict_do_nothing().returning(col(SeenEvent.id)))
    connection = await session.connection()
    return (await connection.execute(statement)).first() is not None


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


async def last_seen(session: AsyncSession, *, commune_id: int, channel: str,
                    user_id: str) -> dt.datetime | None:
    """When the citizen last wrote on this channel (without creating a conversation)."""
    return (await session.exec(select(Conversation.last_seen_at).where(
        col(Conversation.commune_id) == commune_id, col(Conversation.channel) == channel,
        col(Conversation.user_id) == user_id))).first()


async def lock_tokens(session: AsyncSession, *, commune_id: int, channel: str) -> None:
    """Hold the channel's token rows until the transaction ends (PostgreSQL row locks), so
    two instances never spend the same single-use refresh token."""
    await session.exec(select(col(ChannelToken.id)).where(
        col(ChannelToken.commune_id) == commune_id,
        col(ChannelToken.channel) == channel).with_for_update())
