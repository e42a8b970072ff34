"""Delivery of the outbox: status notifications to followers, the staff relay, and replies a
channel could not send at once (a crash, an outage); and, hourly, deleting what is past its
retention period (until the scheduler takes that job).

Every instance runs a dispatcher; each message is claimed in a transaction (skipping rows
another instance holds on PostgreSQL), sent by its channel's sender and marked sent.
Delivery is at least once: a crash between sending and marking sends it again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable

from sqlalchemy.exc import SQLAlchemyError

from handlers.applications import Office
from handlers.messages import Reply, load_buttons
from storage import applications as repo
from storage.db import session_scope
from storage.retention import RetentionPeriods, purge

log = logging.getLogger(__name__)
Sender = Callable[[str, Reply], Awaitable[bool]]  # (recipient, message) → done with it?
RETRY_AFTER = dt.timedelta(minutes=1)
TIDY_EVERY = 3600.0  # seconds
DEFAULT_RETENTION = RetentionPeriods()


class Dispatcher:
    """Sends pending notifications through the senders of the configured channels."""

    def __init__(self, office: Office, senders: dict[str, Sender], *, batch: int = 30,
                 retry_after: dt.timedelta = RETRY_AFTER,
                 retention: RetentionPeriods = DEFAULT_RETENTION) -> None:
        self.office = office
        self.senders = senders
        self.batch = batch  # about Telegram's 30 messages/s for bulk sending
        # Also the lease on a reply a channel is sending right now (see Dialogue.handle).
        self.retry_after = retry_after
        self.retention = retention

    async def run_once(self, now: dt.datetime | None = None) -> int:
        """Send one batch; returns how many were delivered.

        Claiming counts an attempt and commits before anything is sent: the claim is a lease
        (another instance takes the message again only after ``retry_after``), and no
        database transaction stays open while a channel's server answers.
        """
        if not self.senders:
            return 0
        now = now or dt.datetime.now(dt.UTC)
        async with session_scope(self.office.sessions) as session:
            claimed = await repo.claim_notifications(
                session, channels=list(self.senders), limit=self.batch, now=now,
                retry_after=self.retry_after)
            for message in claimed:
                message.attempts += 1
                session.add(message)
            batch = [(m.id, m.channel, m.recipient, Reply(m.text, load_buttons(m.buttons)))
                     for m in claimed]
        delivered: list[int] = []
        for message_id, channel, recipient, reply in batch:
            try:
                if await self.senders[channel](recipient, reply) and message_id is not None:
                    delivered.append(message_id)
            except Exception:  # one broken message must not stop the others
                log.exception("outbox: sending notification %s failed", message_id)
        if delivered:
            async with session_scope(self.office.sessions) as session:
                await repo.mark_sent(session, delivered, at=now)
        return len(delivered)

    async def run_forever(self, interval: float = 1.0) -> None:
        """Send batches until cancelled, at most one batch per ``interval`` seconds; once an
        hour, delete what is past its retention period."""
        tidied = 0.0
        while True:
            try:
                await self.run_once()
                if time.monotonic() - tidied > TIDY_EVERY:
                    await self.tidy()
                    tidied = time.monotonic()
            except (OSError, SQLAlchemyError) as exc:  # database away for a moment
                log.warning("outbox: %s; retrying", type(exc).__name__)
            await asyncio.sleep(interval)

    async def tidy(self, now: dt.datetime | None = None) -> int:
        """Delete what is past its retention period (``storage.retention``: conversations,
        questions, lookup audit, notifications, handled channel events); returns how many
        records went."""
        now = now or dt.datetime.now(dt.UTC)
        async with session_scope(self.office.sessions) as session:
            counts = await purge(session, commune_id=self.office.commune_id, now=now,
                                 periods=self.retention)
        if any(counts.values()):
            log.info("retention: deleted %s", counts)
        return sum(counts.values())
