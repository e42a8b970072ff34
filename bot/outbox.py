"""Delivery of the outbox: status notifications to followers, the staff relay, and replies a
channel could not send at once (a crash, an outage).

Every instance runs a dispatcher; each message is claimed in a transaction (skipping rows
another instance holds on PostgreSQL), sent by its channel's sender and marked sent.
Delivery is at least once: a crash between sending and marking sends it again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy.exc import SQLAlchemyError

from handlers.applications import Office
from handlers.messages import Reply, load_buttons
from storage import applications as repo
from storage.db import session_scope

log = logging.getLogger(__name__)
Sender = Callable[[str, Reply], Awaitable[bool]]  # (recipient, message) → done with it?
RETRY_AFTER = dt.timedelta(minutes=1)



class Dispatcher:
    """Sends pending notifications through the senders of the configured channels."""

    def __init__(self, office: Office, senders: dict[str, Sender], *, batch: int = 30,
                 retry_after: dt.timedelta = RETRY_AFTER) -> None:
        self.office = office
        self.senders = senders
        self.batch = batch  # about Telegram's 30 messages/s for bulk sending
        # Also the lease on a reply a channel is sending right now (see Dialogue.handle).
        self.retry_after = retry_after

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
        """Send batches until cancelled, at most one batch per ``interval`` seconds."""
        while True:
            try:
                await self.run_once()
            except (OSError, SQLAlchemyError) as exc:  # database away for a moment
                log.warning("outbox: %s; retrying", type(exc).__name__)
            await asyncio.sleep(interval)
