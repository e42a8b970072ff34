"""Delivery of the outbox: status notifications, reminders and broadcasts to citizens, the
staff relay, and replies a channel could not send at once (a crash, an outage).

Every instance runs a dispatcher. It claims the messages that are due (one indexed query;
on PostgreSQL instances skip each other's rows) and sends them concurrently within each
channel's pace: an overall rate and a rate per recipient (Telegram: about 30 messages/s, one a
second per chat). A message that fails is due again later with backoff and never holds up the
others; it is tried until it expires (days), then listed for staff (``python -m bot outbox
expired``). A recipient who blocked the bot is marked unreachable and not messaged again
until they write; proactive messages wait out the quiet hours. A status notification or
reminder a channel will not take (Zalo beyond its window) is closed as undeliverable and
offered to the same application's followers on the other channels. Delivery is at least
once: a crash between sending and marking sends a message again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from sqlalchemy.exc import SQLAlchemyError
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import metrics
from bot.limits import SharedError, SharedSlots
from handlers.applications import Office
from handlers.messages import Reply, queued_reply
from knowledge.workdays import TZ
from storage import applications as repo
from storage.db import session_scope
from storage.models import Notification, Subscription

log = logging.getLogger(__name__)
RETRY_AFTER = dt.timedelta(minutes=1)
MAX_BACKOFF = dt.timedelta(hours=1)
EXPIRY = dt.timedelta(days=3)
BURST = 0.2  # seconds of a channel's rate that may be caught up after an idle moment
# Citizen-facing messages nobody asked for just now: held during quiet hours.
PROACTIVE = frozenset({"status", "reminder", "broadcast"})
# About one followed application: offered on the follower's other channels when undeliverable.
# Their keys end with the follower's subscription id (handlers.applications, handlers.reminders).
FOLLOWED = frozenset({"status", "reminder"})


class Outcome(enum.Enum):
    """What became of one message, as its sender tells it."""

    SENT = "sent"
    RETRY = "retry"  # a timeout, a 5xx: trying again later may help
    BLOCKED = "blocked"  # the recipient blocked the bot (Telegram's 403)
    UNDELIVERABLE = "undeliverable"  # the channel will not take it (outside Zalo's window)


class Throttled(Exception):
    """The channel asked to wait ``seconds`` (HTTP 429) before messaging this recipient again,
    or anyone when ``everyone``."""

    def __init__(self, seconds: float, *, everyone: bool = False) -> None:
        super().__init__(seconds)
        self.seconds, self.everyone = seconds, everyone


# (recipient, message) → what became of it; may raise Throttled.
Sender = Callable[[str, Reply], Awaitable[Outcome]]


@dataclass
class Pace:
    """A channel's limits: ``rate`` messages/s overall (0: none) and ``per_recipient``
    messages/s to one recipient (0: none). ``one_chat``: every message goes to one chat
    whatever its recipient (the staff group), so they are paced as one recipient. Channels
    of one bot count against one overall rate: the same Pace, or one ``within`` the other.

    Several processes sending for one bot share its limits through ``shared`` (Redis), where
    ``name`` keys this pace's slots; without it, or while Redis does not answer, each of
    ``processes`` keeps to ``rate / processes`` on its own."""

    rate: float = 0.0
    per_recipient: float = 0.0
    one_chat: bool = False
    within: Pace | None = None
    name: str = ""
    shared: SharedSlots | None = None
    processes: int = 1
    _next_slot: float = field(default=0.0, repr=False)  # loop time of the next free send
    _recipients: dict[str, dt.datetime] = field(default_factory=dict, repr=False)

    async def take(self) -> float:
        """Wait for this channel's next free slot; the seconds waited. Slots left idle in the
        last ``BURST`` seconds (while a batch was being claimed) may still be used: never more
        than ``rate`` on average, at most a fifth more within one second."""
        waited = await self.within.take() if self.within is not None else 0.0
        if self.rate <= 0:
            return waited
        now = time.monotonic()
        slot = max(now - BURST, self._next_slot)
        self._next_slot = slot + max(self.processes, 1) / self.rate
        if slot > now:
            await asyncio.sleep(slot - now)
            waited += slot - now
        return waited

    async def reserve(self, key: str, now: dt.datetime) -> dt.datetime | None:
        """Wait for this channel's next free slot and count a message to ``key`` (see
        ``key``); None. With shared slots another process may have messaged ``key`` since
        ``now``: then nothing is counted, and the time ``key`` is free again is returned."""
        # Times are the dispatcher's clock (``now``) moved on by the waits for a slot, never
        # the wall clock: a batch claimed at ``now`` is paced from ``now``.
        shared = self.shared
        if shared is not None and shared.up:
            try:
                reserved, wait = await shared.reserve(
                    self._rates(), f"{self.name}:{key}", self.per_recipient, BURST)
            except SharedError as exc:
                shared.failed(exc)
            else:
                if not reserved:
                    return now + dt.timedelta(seconds=wait)
                if wait > 0:
                    await asyncio.sleep(wait)
                self.sent(key, now + dt.timedelta(seconds=max(wait, 0.0)))
                return None
        waited = await self.take()
        self.sent(key, now + dt.timedelta(seconds=waited))
        return None

    async def throttled(self, key: str, seconds: float, *, everyone: bool,
                        now: dt.datetime) -> None:
        """The channel answered 429: nothing to ``key`` (to anyone, with ``everyone``) for
        ``seconds``, in every process sharing the slots."""
        if everyone:
            self.pause(seconds)
        self.hold(key, now + dt.timedelta(seconds=seconds))
        shared = self.shared
        if shared is not None and shared.up:
            try:
                await shared.hold(f"{self.name}:{key}", seconds)
                for name, _ in self._rates() if everyone else ():
                    await shared.hold(name, seconds, rate=True)
            except SharedError as exc:
                shared.failed(exc)

    def _rates(self) -> list[tuple[str, float]]:
        """The overall rates this pace counts against (its own, those it is within)."""
        chain: list[Pace] = []
        pace: Pace | None = self
        while pace is not None:
            chain.append(pace)
            pace = pace.within
        return [(p.name or "default", p.rate) for p in chain if p.rate > 0]

    def pause(self, seconds: float) -> None:
        """Send nothing on this channel for ``seconds`` (a 429 for everyone)."""
        if self.within is not None:
            self.within.pause(seconds)
        self._next_slot = max(self._next_slot, time.monotonic() + seconds)

    def key(self, channel: str, recipient: str) -> str:
        """Whom a message to ``recipient`` is paced as: the channel's one chat, or itself."""
        return channel if self.one_chat else f"{channel}:{recipient}"

    def allowed_at(self, key: str, now: dt.datetime) -> dt.datetime:
        """When ``key`` (see ``key``) may next be messaged; if now, the send is counted."""
        at = max(now, self._recipients.get(key, now))
        if at == now and self.per_recipient > 0:
            self._recipients[key] = now + self._gap()
        return at

    def sent(self, key: str, at: dt.datetime) -> None:
        """A message to ``key`` leaves at ``at``: the next one waits a full interval from
        there."""
        if self.per_recipient > 0:
            self._recipients[key] = at + self._gap()

    def _gap(self) -> dt.timedelta:
        """Between two messages to one recipient from this process. The one chat (the staff
        group) is any process's recipient: without shared slots each takes its share."""
        alone = self.one_chat and (self.shared is None or not self.shared.up)
        return dt.timedelta(seconds=(max(self.processes, 1) if alone else 1)
                            / self.per_recipient)

    def hold(self, key: str, until: dt.datetime) -> None:
        """Message ``key`` no sooner than ``until`` (a 429 for one recipient)."""
        self._recipients[key] = max(until, self._recipients.get(key, until))

    def forget(self, before: dt.datetime) -> None:
        """Drop recipients free again before ``before`` (keeps memory flat in a broadcast)."""
        if len(self._recipients) > 10_000:
            self._recipients = {k: v for k, v in self._recipients.items() if v > before}


@dataclass(frozen=True)
class QuietHours:
    """Local hours (Asia/Ho_Chi_Minh) when proactive messages wait; start == end: none."""

    start: dt.time = dt.time(21)
    end: dt.time = dt.time(7)

    @classmethod
    def parse(cls, text: str) -> QuietHours:
        """From "21:00-07:00" (checked by ``Settings``); "" means none."""
        if not text:
            return cls(dt.time(0), dt.time(0))
        start, end = (dt.time.fromisoformat(part) for part in text.split("-"))
        return cls(start, end)

    def until(self, now: dt.datetime) -> dt.datetime | None:
        """The end of the quiet hours ``now`` falls in, or None outside them."""
        local = now.astimezone(TZ)
        t = local.time()
        inside = (self.start <= t or t < self.end) if self.start > self.end \
            else self.start <= t < self.end
        if not inside or self.start == self.end:
            return None
        end = local.replace(hour=self.end.hour, minute=self.end.minute, second=0, microsecond=0)
        return (end if end > local else end + dt.timedelta(days=1)).astimezone(dt.UTC)


async def offer_elsewhere(session: AsyncSession, keys: list[str]) -> int:
    """Queue these undeliverable status notifications or reminders (idempotency keys) to
    the other followers of the same application on other channels, under the key each of them
    would have had (``…:<subscription id>``): a follower who already has it gets nothing twice.
    Returns how many were queued."""
    if not keys:
        return 0
    offers = []
    for message in await repo.by_keys(session, keys):
        stem, _, follower = message.idempotency_key.rpartition(":")
        sub = await session.get(Subscription, int(follower)) if follower.isdigit() else None
        if sub is None or (sub.channel, sub.recipient) != (message.channel, message.recipient):
            continue  # not about a follower of an application (or they stopped following)
        followers = await repo.subscribers(session, [sub.application_id])
        offers += [Notification(
            commune_id=message.commune_id, channel=other.channel, recipient=other.recipient,
            text=message.text, buttons=message.buttons, idempotency_key=f"{stem}:{other.id}",
            kind=message.kind, expires_at=message.expires_at)
            for other in followers.get(sub.application_id, []) if other.channel != sub.channel]
    queued = await repo.queued_keys(session, [n.idempotency_key for n in offers])
    await repo.enqueue(session, offers)
    if len(offers) > len(queued):
        log.info("outbox: %d undeliverable message(s) offered on other channels",
                 len(offers) - len(queued))
    return len(offers) - len(queued)


def backoff(retry_after: dt.timedelta, attempts: int) -> dt.timedelta:
    """The wait after the ``attempts``-th failure: doubling, at most an hour."""
    return min(retry_after * (1 << min(max(attempts - 1, 0), 16)), MAX_BACKOFF)


@dataclass
class _Results:
    sent: list[int] = field(default_factory=list)
    closed: dict[str, list[int]] = field(default_factory=dict)  # outcome → ids
    due: dict[int, dt.datetime] = field(default_factory=dict)
    held: set[int] = field(default_factory=set)  # due later, not tried: attempt given back
    blocked: set[tuple[int, str, str]] = field(default_factory=set)  # commune, channel, whom


@dataclass(frozen=True)
class Channels:
    """How one commune's messages leave: a sender per channel (its own bot, its own OA),
    senders of one kind of message on a channel in place of the channel's (Zalo's status
    notifications and reminders, which may go as transaction messages), each channel's pace."""

    senders: dict[str, Sender]
    kind_senders: dict[tuple[str, str], Sender] = field(default_factory=dict)
    paces: dict[str, Pace] = field(default_factory=dict)


class Dispatcher:
    """Sends the due outbox messages of ``office``'s commune through ``senders`` (see
    ``Channels``), and those of the ``others`` (by commune id) through theirs: a message
    leaves by its own commune's channels, or waits."""

    def __init__(self, office: Office, senders: dict[str, Sender], *,
                 kind_senders: dict[tuple[str, str], Sender] | None = None,
                 paces: dict[str, Pace] | None = None,
                 others: dict[int, Channels] | None = None, batch: int = 30,
                 retry_after: dt.timedelta = RETRY_AFTER, expiry: dt.timedelta = EXPIRY,
                 quiet: QuietHours | None = None) -> None:
        self.office = office
        self.communes = {office.commune_id: Channels(senders, kind_senders or {}, paces or {}),
                         **(others or {})}
        self.paces = [p for c in self.communes.values() for p in c.paces.values()]
        # About one second of sending per claim at the fastest channel's rate.
        self.batch = max([batch, *(int(p.rate) for p in self.paces)])
        # Also the lease on a claimed message, and on a reply a channel is sending right now.
        self.retry_after = retry_after
        self.expiry = expiry
        self.quiet = quiet or QuietHours()
        self.claimed = 0  # messages claimed by the last batch

    async def run_once(self, now: dt.datetime | None = None) -> int:
        """Claim one batch of due messages and send it; returns how many were delivered.

        The claim commits before anything is sent, so no transaction stays open while a
        channel's server answers.
        """
        channels = [(commune, channel) for commune, c in self.communes.items()
                    for channel in c.senders]
        if not channels:
            return 0
        now = now or dt.datetime.now(dt.UTC)
        results = _Results()
        async with session_scope(self.office.sessions) as session:
            claimed = await repo.claim_notifications(
                session, channels=channels, limit=self.batch, now=now, lease=self.retry_after)
            sendable = await self._triage(session, claimed, now, results)
            batch = [(m.id, m.commune_id, m.channel, m.recipient, m.attempts, m.kind,
                      queued_reply(m.text, m.buttons, m.image)) for m in sendable]
            followed = {m.id: m.idempotency_key for m in sendable if m.kind in FOLLOWED}
        self.claimed = len(claimed)
        if not claimed:  # nothing due (most seconds): no second transaction
            return 0
        await asyncio.gather(*(self._send(row, now, results) for row in batch))
        async with session_scope(self.office.sessions) as session:
            await repo.mark_sent(session, results.sent, at=now)
            for outcome, ids in results.closed.items():
                await repo.close_notifications(session, ids, at=now, outcome=outcome)
            # In the same transaction: an undeliverable message is offered exactly once.
            await offer_elsewhere(session, [followed[i] for i in results.closed.get(
                "undeliverable", []) if i in followed])
            await repo.reschedule(session, results.due, uncount=results.held)
            for commune_id, channel, recipient in results.blocked:
                await repo.mark_unreachable(session, commune_id=commune_id, channel=channel,
                                            recipient=recipient, at=now)
        for pace in self.paces:
            pace.forget(now)
        if results.closed or results.blocked:
            log.info("outbox: %d sent, %s closed, %d recipients unreachable", len(results.sent),
                     {k: len(v) for k, v in results.closed.items()}, len(results.blocked))
        return len(results.sent)

    async def _triage(self, session: AsyncSession, claimed: list[Notification],
                      now: dt.datetime, results: _Results) -> list[Notification]:
        """Close what expired or cannot reach its recipient, hold what must wait; the rest."""
        quiet_until = self.quiet.until(now)
        unreachable: dict[tuple[int, str], set[str]] = {}
        for commune, channel in {(m.commune_id, m.channel) for m in claimed}:
            unreachable[commune, channel] = await repo.unreachable_among(
                session, commune, channel, {m.recipient for m in claimed
                                            if (m.commune_id, m.channel) == (commune, channel)})
        sendable = []
        for m in claimed:
            assert m.id is not None
            pace = self.communes[m.commune_id].paces.get(m.channel)
            if (m.expires_at or m.created_at + self.expiry) <= now:
                results.closed.setdefault("expired", []).append(m.id)
                metrics.OUTBOX.labels(m.channel, "expired").inc()
            elif m.recipient in unreachable[m.commune_id, m.channel]:
                results.closed.setdefault("unreachable", []).append(m.id)
                metrics.OUTBOX.labels(m.channel, "unreachable").inc()
            elif quiet_until is not None and m.kind in PROACTIVE:
                results.due[m.id] = quiet_until
                results.held.add(m.id)
            elif pace is not None and (at := pace.allowed_at(
                    pace.key(m.channel, m.recipient), now)) > now:
                results.due[m.id] = at  # this chat's next free second; others go on
                results.held.add(m.id)
            else:
                sendable.append(m)
        return sendable

    async def _send(self, row: tuple[int | None, int, str, str, int, str, Reply],
                    now: dt.datetime, results: _Results) -> None:
        message_id, commune_id, channel, recipient, attempts, kind, reply = row
        assert message_id is not None
        commune = self.communes[commune_id]
        pace = commune.paces.get(channel)
        if pace is not None and (busy := await pace.reserve(pace.key(channel, recipient),
                                                            now)) is not None:
            results.due[message_id] = busy  # another process messaged this chat just now
            results.held.add(message_id)
            return
        try:
            sender = commune.kind_senders.get((channel, kind), commune.senders[channel])
            outcome = await sender(recipient, reply)
        except Throttled as exc:
            wait = dt.timedelta(seconds=max(exc.seconds, 0.0))
            if pace is not None:
                await pace.throttled(pace.key(channel, recipient), max(exc.seconds, 0.0),
                                     everyone=exc.everyone, now=now)
            results.due[message_id] = now + wait
            results.held.add(message_id)  # the channel's pacing, not the message's fault
            metrics.OUTBOX.labels(channel, "throttled").inc()
            return
        except Exception:  # one broken message must not stop the others
            log.exception("outbox: sending notification %s failed", message_id)
            outcome = Outcome.RETRY
        metrics.OUTBOX.labels(channel, outcome.value).inc()
        if outcome is Outcome.SENT:
            results.sent.append(message_id)
        elif outcome is Outcome.BLOCKED:
            results.blocked.add((commune_id, channel, recipient))
        elif outcome is Outcome.UNDELIVERABLE:
            results.closed.setdefault("undeliverable", []).append(message_id)
        else:
            results.due[message_id] = now + backoff(self.retry_after, attempts)

    async def run_forever(self, interval: float = 1.0) -> None:
        """Send batches until cancelled: back to back while a full batch is due, else one
        claim per ``interval`` seconds."""
        while True:
            self.claimed = 0
            try:
                await self.run_once()
            except (OSError, SQLAlchemyError) as exc:  # database away for a moment
                log.warning("outbox: %s; retrying", type(exc).__name__)
            if self.claimed < self.batch:
                await asyncio.sleep(interval)
