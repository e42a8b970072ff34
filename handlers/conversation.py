"""The conversation core: one incoming message in, replies out. No channel code here.

Every channel (web chat, Telegram, Zalo) sends an ``IncomingMessage`` and shows the ``Reply``
list it gets back. The conversation's state (language, the step of a status lookup, the last
application looked up, the procedure under discussion, whether staff have taken over) lives in
the database, so any instance can answer the next message. What to answer is decided by the
intent handlers registered in ``handlers.intents``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
import time
from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession

from handlers import feedback
from handlers.applications import Office
from handlers.intents import respond
from handlers.messages import (
    PUSH_CHANNELS,
    Button,
    IncomingMessage,
    Reply,
    dump_buttons,
    load_buttons,
    reply_key,
    split_text,
    storable,
)
from handlers.turn import Services, Turn
from knowledge.answer import Assistant
from knowledge.i18n import Text, language
from knowledge.intents import Intent, intent_words
from knowledge.match import written_language
from knowledge.text import fold
from storage import applications as repo
from storage import conversations as conversations_repo
from storage.db import session_scope, unavailable
from storage.models import Notification

__all__ = ["Button", "Dialogue", "IncomingMessage", "Reply", "Unavailable", "split_text"]
log = logging.getLogger(__name__)
# A status lookup's reply is held until this long after the message arrived, so that how long
# the database took (an existing code or not) cannot be measured from outside.
LOOKUP_FLOOR = 0.25  # seconds
LOOKUP_REPLIES = ("status", "lookup_failed")
MAX_REPLIES = 8  # replies to one message kept for sending again (no turn gives more)
MARK_TRIES = 30  # seconds to keep trying to mark sent replies (the outbox's lease is longer)


class Unavailable(Exception):
    """The database is away for a moment: nothing was saved, the message can come again."""


@dataclass(frozen=True)
class _Waiting:
    """A message waiting for its batch, and where its replies go."""

    message: IncomingMessage
    now: dt.datetime
    replies: asyncio.Future[list[Reply]]


class Dialogue:
    """The conversation of one commune's assistant, across channels."""

    def __init__(self, assistant: Assistant, office: Office, *, staff_channel: bool = False
                 ) -> None:
        kb = assistant.kb
        fields: dict[str, list[str]] = {}
        # Procedures by everyday name, so a citizen can scan a field's list.
        for code in sorted(kb.bundled_codes, key=lambda c: fold(
                assistant.short_name(c, Text("vi")))):
            fields.setdefault(kb.procedures[code].field, []).append(code)
        commune = kb.commune
        places = [commune.name, re.sub(r"^(xã|phường|thị trấn)\s+", "", commune.name, flags=re.I),
                  commune.province, *commune.former_communes]
        self.services = Services(
            assistant, office, intent_words().with_places(places), staff_channel,
            sorted(fields.items(), key=lambda item: (-len(item[1]), item[0])))
        self._waiting: list[_Waiting] = []  # messages for the next batch
        self._turn = asyncio.Lock()  # one batch at a time
        self._delivered: list[str] = []  # outbox keys of replies sent, to mark together
        self._marking = asyncio.Lock()
        self._marking_later: asyncio.Task[None] | None = None

    @property
    def office(self) -> Office:
        return self.services.office

    @property
    def assistant(self) -> Assistant:
        return self.services.assistant

    async def handle(self, message: IncomingMessage, *, now: dt.datetime | None = None
                     ) -> list[Reply]:
        """Answer one message, reading and saving the conversation's state.

        Messages that arrive while a batch is being answered wait, then go together in one
        transaction (a group commit): the database work of a busy webhook is shared instead
        of paid per message (``bench/webhook.py``). Replies are released only after the
        commit. A batch that fails is retried message by message, so a bad message fails alone;
        ``Unavailable`` when the database is away (the channel should ask for the message again).

        The replies to a Telegram or Zalo event are also in the outbox, committed with the
        event: the channel sends them and calls ``delivered``; what it could not send (a crash,
        an outage) the outbox sends later.
        """
        started = time.monotonic()
        waiting = _Waiting(message, now or dt.datetime.now(dt.UTC),
                           asyncio.get_running_loop().create_future())
        self._waiting.append(waiting)
        async with self._turn:
            if not waiting.replies.done():  # no earlier batch took it
                # The batch is taken once marks being written are done: they hold the (SQLite:
                # one) connection, and the messages arriving meanwhile join it. Taken before,
                # batches stayed at one message, each paying a whole transaction.
                async with self._marking:
                    batch, self._waiting = self._waiting, []
                await self._run(batch)
        if self._delivered and not self._waiting and not self._turn.locked():
            await self._mark()  # marks that came after the batch took its own, none to follow
        replies = waiting.replies.result()
        if any(r.intent in LOOKUP_REPLIES for r in replies):
            await asyncio.sleep(max(0.0, started + LOOKUP_FLOOR - time.monotonic()))
        return replies

    async def delivered(self, message: IncomingMessage, *indexes: int) -> None:
        """These replies to ``message`` reached the citizen (or never will): the outbox must
        not send them again. Written at once (a kill in between sends them twice), those that
        arrive together in one statement; marks that could not be written go with the next
        batch's transaction."""
        if message.event_id and message.channel in PUSH_CHANNELS:
            self._delivered.extend(reply_key(message, i) for i in indexes)
            await self._mark()

    async def _mark(self) -> bool:
        """Write the marks gathered so far; while the database is away they are kept and
        written again every second for a while (else the outbox would send them twice)."""
        async with self._marking:
            keys, self._delivered = self._delivered, []
            if not keys:  # an earlier statement took ours
                return True
            try:
                async with session_scope(self.office.sessions) as session:
                    await repo.mark_delivered(session, keys, at=dt.datetime.now(dt.UTC))
                return True
            except Exception as exc:
                if not unavailable(exc):
                    raise
                self._delivered[:0] = keys
                if self._marking_later is None or self._marking_later.done():
                    self._marking_later = asyncio.create_task(self._mark_later())
                return False

    async def _mark_later(self) -> None:
        for _ in range(MARK_TRIES):
            await asyncio.sleep(1)
            if await self._mark():
                return
        log.warning("replies sent but not marked: the outbox may send %d again",
                    len(self._delivered))

    async def _run(self, batch: list[_Waiting]) -> None:
        """Answer a batch in one transaction, with the marks not written yet (if any); if
        it fails, retry one by one (unless the database is away)."""
        marks: list[str] = []
        try:
            try:
                async with session_scope(self.office.sessions) as session:
                    answers = await self._answer_batch(session, batch)
                    marks, self._delivered = self._delivered, []
                    if marks:
                        await repo.mark_delivered(session, marks, at=dt.datetime.now(dt.UTC))
                marks = []  # written
            except Exception as exc:
                self._delivered[:0], marks = marks, []  # not written: the next one takes them
                if unavailable(exc):  # the same for every message: no point retrying now
                    for waiting in batch:
                        error = Unavailable(type(exc).__name__)
                        error.__cause__ = exc
                        waiting.replies.set_exception(error)
                    return
                if len(batch) == 1:
                    batch[0].replies.set_exception(exc)
                    return
                for waiting in batch:
                    await self._run([waiting])
                return
            for waiting, replies in zip(batch, answers, strict=True):
                waiting.replies.set_result(replies)
        finally:
            self._delivered[:0] = marks  # cancelled midway: the marks are not lost
            for waiting in batch:  # nobody may wait for ever
                if not waiting.replies.done():
                    waiting.replies.cancel()

    async def _answer_batch(self, session: AsyncSession, batch: list[_Waiting]
                            ) -> list[list[Reply]]:
        events = {(w.message.channel, w.message.event_id) for w in batch if w.message.event_id}
        fresh = await conversations_repo.first_times(session, events)
        contacts = await conversations_repo.contacts(
            session, commune_id=self.office.commune_id,
            keys={(w.message.channel, w.message.user_id) for w in batch})
        # They wrote: those who had blocked the bot can be messaged again.
        await repo.mark_reachable(session, commune_id=self.office.commune_id,
                                  keys={k for k, c in contacts.items() if c.unreachable})
        # The menu offers the opposite; a turn that subscribes tells the next one in the batch.
        subscribed = {key: contact.announcements for key, contact in contacts.items()}
        answers: list[list[Reply]] = []
        outbox: list[Notification] = []
        for waiting in batch:
            message = waiting.message
            if message.event_id:
                if (message.channel, message.event_id) not in fresh:  # delivered again
                    answers.append(await self._answered(session, message))
                    continue
                fresh.discard((message.channel, message.event_id))
            key = (message.channel, message.user_id)
            state = contacts[key].conversation
            typed = written_language(message.text) if message.text and not message.lang else None
            if message.lang is not None or typed is not None:
                state.lang = language(message.lang or typed or "")
            turn, handed_over = Turn(self.services, session, state, message, waiting.now,
                                     announcements=subscribed[key]), state.with_staff_since
            # Reports and ratings first: their steps hold numbers and free text.
            replies = await feedback.respond(turn) or await respond(turn)
            replies += await feedback.after_hand_over(turn, handed_over)
            subscribed[key] = turn.announcements
            answers.append(replies)
            state.last_seen_at, state.sent_since_seen = waiting.now, 0
            if message.event_id:
                # A push channel's replies are leased to the channel answering now
                # (attempts=1): the outbox takes them only if they are still unsent when the
                # lease runs out. The web chat's go back in the response (sent now) and are
                # kept to answer the same message again if the page sends it again.
                pushed = message.channel in PUSH_CHANNELS
                outbox.extend(Notification(
                    commune_id=self.office.commune_id, channel=message.channel,
                    recipient=message.user_id, text=reply.text,
                    buttons=dump_buttons(reply.buttons), idempotency_key=reply_key(message, i),
                    created_at=waiting.now, attempts=1,
                    next_attempt_at=waiting.now + repo.REPLY_LEASE,
                    sent_at=None if pushed else waiting.now)
                    for i, reply in enumerate(replies[:MAX_REPLIES]))
        await conversations_repo.queue_replies(session, outbox)
        return answers

    async def _answered(self, session: AsyncSession, message: IncomingMessage) -> list[Reply]:
        """The replies already given to a message delivered again: none for a push channel
        (the outbox sends what is unsent), the same ones for the web chat."""
        if message.channel in PUSH_CHANNELS:
            return []
        stored = await repo.by_keys(session, [reply_key(message, i) for i in range(MAX_REPLIES)])
        return [Reply(n.text, load_buttons(n.buttons)) for n in stored]

    async def from_staff(self, *, channel: str, user_id: str, text: str, reply_id: str,
                         now: dt.datetime | None = None, officer: str = "",
                         end: bool = False) -> None:
        """A staff member's (``officer``, e.g. "telegram:<user id>") reply to a relayed
        message: queue it for the citizen; "kết thúc" (or ``end``, the console's button) gives
        the conversation back to the assistant and asks the citizen to rate it."""
        now = now or dt.datetime.now(dt.UTC)
        user_id, text = storable(user_id), storable(text)
        async with session_scope(self.office.sessions) as session:
            state = (await conversations_repo.conversations(
                session, commune_id=self.office.commune_id,
                keys=[(channel, user_id)]))[(channel, user_id)]
            t = Text(language(state.lang))
            since = state.with_staff_since
            ended = end or self.services.words.whole_intent(text) is Intent.END
            if ended:
                state.with_staff_since = None
                text = t("You are back with the assistant.")
            else:
                state.with_staff_since = since = since or now
            session.add(state)
            await repo.enqueue(session, [Notification(
                commune_id=self.office.commune_id, channel=channel, recipient=user_id,
                text=text, idempotency_key=f"staff-reply:{reply_id}", kind="staff")])
            if since is not None:
                await feedback.staff_replied(session, commune_id=self.office.commune_id,
                                             channel=channel, recipient=user_id,
                                             lang=language(state.lang), since=since,
                                             officer=officer, ended=ended, now=now)
