"""The conversation core: one incoming message in, replies out. No channel code here.

Every channel (web chat, Telegram, Zalo) sends an ``IncomingMessage`` and shows the ``Reply``
list it gets back. The conversation's state (language, the step of a status lookup, the last
application looked up, whether staff have taken over) lives in the database, so any instance
can answer the next message.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from dataclasses import dataclass, field

from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.applications import Office
from handlers.status import lookup_status
from knowledge.answer import Assistant
from knowledge.i18n import LANGUAGES, Lang, Text, language
from knowledge.text import fold
from storage import applications as repo
from storage import conversations as conversations_repo
from storage.db import session_scope, unavailable
from storage.domain import normalize_receipt_code
from storage.models import Conversation, Notification

STAFF_TIMEOUT = dt.timedelta(hours=24)  # a conversation left with staff returns to the bot
MISSES_BEFORE_STAFF = 2  # unanswered questions in a row before staff take over

# Button payloads (also what a channel sends back when one is tapped).
MENU, FIELDS, LOOKUP, FOLLOW, UNFOLLOW, STAFF, LANGUAGE = (
    "menu", "fields", "lookup", "follow", "unfollow", "staff", "language")
PROCEDURE, FIELD, SET_LANG = "p:", "f:", "lang:"

# Typed words and Telegram commands that act like buttons (folded, without the slash).
KEYWORDS = {
    "start": MENU, "menu": MENU, "help": MENU, "tro giup": MENU, "bat dau": MENU,
    "thutuc": FIELDS, "thu tuc": FIELDS, "danh sach thu tuc": FIELDS,
    "tracuu": LOOKUP, "tra cuu": LOOKUP, "tra cuu ho so": LOOKUP,
    "theodoi": FOLLOW, "theo doi": FOLLOW, "follow": FOLLOW,
    "huytheodoi": UNFOLLOW, "huy theo doi": UNFOLLOW, "unfollow": UNFOLLOW,
    "lienhe": STAFF, "lien he": STAFF, "gap can bo": STAFF, "lien he can bo": STAFF,
    "staff": STAFF, "ngonngu": LANGUAGE, "ngon ngu": LANGUAGE, "language": LANGUAGE,
    "tieng viet": SET_LANG + "vi", "english": SET_LANG + "en",
}
END_WORDS = frozenset({"ket thuc", "ketthuc", "end", "xong"})


@dataclass(frozen=True)
class IncomingMessage:
    """What a citizen sent, whatever the channel."""

    channel: str  # "web", "telegram", "zalo"
    user_id: str
    text: str = ""
    payload: str = ""  # a button's payload, instead of text
    lang: Lang | None = None  # forced language (web chat's switch), else the stored one
    event_id: str = ""  # the channel's id of this event: a redelivered event is ignored


@dataclass(frozen=True)
class Button:
    """A choice the citizen can tap; channels without buttons show it as numbered text."""

    title: str
    payload: str


@dataclass(frozen=True)
class Reply:
    """One message back to the citizen."""

    text: str
    buttons: list[Button] = field(default_factory=list)


def procedure_deep_link(code: str) -> str:
    """``/start`` payload that opens a procedure card ("1.001193" → "p_1_001193")."""
    return "p_" + code.replace(".", "_")


def lookup_deep_link(receipt_code: str) -> str:
    """``/start`` payload that starts a lookup ("000.00.19.H26-…" → "s_000_00_19_H26-…")."""
    return "s_" + receipt_code.replace(".", "_")


def read_deep_link(payload: str) -> tuple[str, str] | None:
    """(kind, value) of a deep-link payload, or None."""
    match = re.fullmatch(r"([ps])_([A-Za-z0-9_\-]{1,62})", payload.strip())
    if not match:
        return None
    return match.group(1), match.group(2).replace("_", ".")


def split_text(text: str, limit: int) -> list[str]:
    """Split a long answer at line ends (never inside a line or list item when avoidable)."""
    parts: list[str] = []
    current = ""
    for line in text.split("\n"):
        while len(line) > limit:  # one line longer than a message: cut at a space
            cut = line.rfind(" ", 0, limit)
            cut = cut if cut > 0 else limit
            if current:
                parts.append(current)
                current = ""
            parts.append(line[:cut])
            line = line[cut:].lstrip()
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            parts.append(current)
            current = line
        else:
            current = candidate
    if current:
        parts.append(current)
    return [p.strip("\n") for p in parts if p.strip()]


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

    def __init__(self, assistant: Assistant, office: Office) -> None:
        self.assistant = assistant
        self.office = office
        fields: dict[str, list[str]] = {}
        # Procedures by name, "Thủ tục" left aside, so a citizen can scan a field's list.
        by_name = sorted(assistant.kb.bundled_codes, key=lambda c: fold(
            assistant.kb.procedures[c].name).removeprefix("thu tuc ").strip())
        for code in by_name:
            fields.setdefault(assistant.kb.procedures[code].field, []).append(code)
        self.fields = sorted(fields.items(), key=lambda item: (-len(item[1]), item[0]))
        self._waiting: list[_Waiting] = []  # messages for the next batch
        self._turn = asyncio.Lock()  # one batch at a time

    async def handle(self, message: IncomingMessage, *, now: dt.datetime | None = None
                     ) -> list[Reply]:
        """Answer one message, reading and saving the conversation's state.

        Messages that arrive while a batch is being answered wait, then go together in one
        transaction (a group commit): the database work of a busy webhook is shared instead
        of paid per message (``bench/webhook.py``). Replies are released only after the
        commit. A batch that fails is retried message by message, so a bad message fails alone;
        ``Unavailable`` when the database is away (the channel should ask for the message again).
        """
        waiting = _Waiting(message, now or dt.datetime.now(dt.UTC),
                           asyncio.get_running_loop().create_future())
        self._waiting.append(waiting)
        async with self._turn:
            if not waiting.replies.done():  # no earlier batch took it
                batch, self._waiting = self._waiting, []
                await self._run(batch)
        return waiting.replies.result()

    async def _run(self, batch: list[_Waiting]) -> None:
        """Answer a batch in one transaction; if it fails, retry one by one (unless the
        database is away)."""
        try:
            try:
                async with session_scope(self.office.sessions) as session:
                    answers = await self._answer_batch(session, batch)
            except Exception as exc:
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
            for waiting in batch:  # cancelled midway: nobody may wait for ever
                if not waiting.replies.done():
                    waiting.replies.cancel()

    async def _answer_batch(self, session: AsyncSession, batch: list[_Waiting]
                            ) -> list[list[Reply]]:
        events = {(w.message.channel, w.message.event_id) for w in batch if w.message.event_id}
        fresh = await conversations_repo.first_times(session, events)
        states = await conversations_repo.conversations(
            session, commune_id=self.office.commune_id,
            keys={(w.message.channel, w.message.user_id) for w in batch})
        answers: list[list[Reply]] = []
        for waiting in batch:
            message = waiting.message
            if message.event_id:
                if (message.channel, message.event_id) not in fresh:
                    answers.append([])  # a redelivered event
                    continue
                fresh.discard((message.channel, message.event_id))
            state = states[(message.channel, message.user_id)]
            if message.lang is not None:
                state.lang = message.lang
            answers.append(await self._dispatch(session, state, message, waiting.now))
            state.last_seen_at, state.sent_since_seen = waiting.now, 0
        return answers

    def _text(self, state: Conversation) -> Text:
        return Text(language(state.lang))

    async def _dispatch(self, session: AsyncSession, state: Conversation,
                        message: IncomingMessage, now: dt.datetime) -> list[Reply]:
        t = self._text(state)
        text = message.text.strip()
        folded = fold(text).strip(" /!.?")
        if state.with_staff_since is not None:
            if folded in END_WORDS or now - state.with_staff_since > STAFF_TIMEOUT:
                state.with_staff_since = None
                state.misses = 0
                if folded in END_WORDS:
                    return [self._menu(t, t("You are back with the assistant."))]
            else:
                await self._to_staff(session, state, text or message.payload, now)
                return []  # staff answer; the assistant stays silent
        action = message.payload or self._action(folded, text)
        if action:
            state.step, state.pending_code = "", ""
            return await self._act(session, state, action, now)
        if state.step == "code":
            return self._got_code(state, text, t)
        if state.step == "phone":
            return await self._got_phone(session, state, text, now)
        return await self._answer(session, state, text, now)

    def _action(self, folded: str, text: str) -> str:
        """A button payload for typed commands, keywords and deep links; "" for a question."""
        if text.startswith("/start"):
            link = read_deep_link(text.removeprefix("/start").strip())
            if link:
                kind, value = link
                return (PROCEDURE + value) if kind == "p" else f"{LOOKUP}:{value}"
            return MENU
        return KEYWORDS.get(folded.split("@")[0], "")

    async def _act(self, session: AsyncSession, state: Conversation, action: str,
                   now: dt.datetime) -> list[Reply]:
        t = self._text(state)
        if action == MENU:
            return [self._menu(t, t("Hello! I am the assistant of the one-stop desk of "
                                    "{commune}. Ask me about a procedure (documents, fees, "
                                    "processing time), or choose below.",
                                    commune=self.assistant.kb.commune.name))]
        if action == FIELDS:
            return [Reply(t("Choose a field:"), [Button(name, f"{FIELD}{i}")
                                                 for i, (name, _) in enumerate(self.fields)])]
        if action.startswith(FIELD):
            index = action.removeprefix(FIELD)
            if index.isdigit() and int(index) < len(self.fields):
                _, codes = self.fields[int(index)]
                return [Reply(t("Choose a procedure:"),
                              [Button(self.assistant.name(c, t), PROCEDURE + c) for c in codes])]
        if action.startswith(PROCEDURE):
            code = action.removeprefix(PROCEDURE)
            procedure = self.assistant.kb.procedures.get(code)
            if procedure is not None:
                state.last_procedure = code
                return [Reply(self.assistant.card(procedure, t), self._more(t))]
        if action == LOOKUP or action.startswith(LOOKUP + ":"):
            code = action.partition(":")[2]
            if code:
                return self._got_code(state, code, t)
            state.step = "code"
            return [Reply(t("Please type the receipt code (mã hồ sơ) printed on your receipt "
                            "slip."))]
        if action in (FOLLOW, UNFOLLOW):
            return await self._follow(session, state, action == FOLLOW, t)
        if action == STAFF:
            return await self._hand_over(session, state, now, t)
        if action == LANGUAGE:
            return [Reply(t("Choose a language:"), [Button("Tiếng Việt", SET_LANG + "vi"),
                                                     Button("English", SET_LANG + "en")])]
        if action.startswith(SET_LANG) and action.removeprefix(SET_LANG) in LANGUAGES:
            state.lang = action.removeprefix(SET_LANG)
            t = self._text(state)
            return [self._menu(t, t("The assistant now speaks English."))]
        return [self._menu(t, t("Sorry, that choice is no longer available."))]

    def _menu(self, t: Text, text: str) -> Reply:
        return Reply(text, [Button(t("Procedures"), FIELDS), Button(t("Look up an application"),
                                                                    LOOKUP),
                            Button(t("Contact staff"), STAFF), Button(t("Language"), LANGUAGE)])

    def _more(self, t: Text) -> list[Button]:
        return [Button(t("Other procedures"), FIELDS), Button(t("Contact staff"), STAFF)]

    def _got_code(self, state: Conversation, text: str, t: Text) -> list[Reply]:
        code = normalize_receipt_code(text)
        if code is None:
            state.step = "code"
            return [Reply(t("That does not look like a receipt code. It is printed on your "
                            "receipt slip, e.g. 000.00.19.H26-251127-0001."))]
        state.step, state.pending_code = "phone", code
        return [Reply(t("Now type the last 4 digits of the phone number you gave when "
                        "applying."))]

    async def _got_phone(self, session: AsyncSession, state: Conversation, text: str,
                         now: dt.datetime) -> list[Reply]:
        t = self._text(state)
        digits = re.sub(r"\D", "", text)
        if len(digits) != 4:
            return [Reply(t("Please type exactly the last 4 digits of your phone number."))]
        answer = await lookup_status(session, commune_id=self.office.commune_id,
                                     receipt_code=state.pending_code, phone_last4=digits,
                                     user_key=f"{state.channel}:{state.user_id}",
                                     lang=language(state.lang), now=now)
        state.step, state.pending_code = "", ""
        if answer.application_id is None:
            return [Reply(answer.text, [Button(t("Try again"), LOOKUP),
                                        Button(t("Contact staff"), STAFF)])]
        state.application_id = answer.application_id
        return [Reply(answer.text, [Button(t("Follow this application"), FOLLOW),
                                    Button(t("Menu"), MENU)])]

    async def _follow(self, session: AsyncSession, state: Conversation, follow: bool,
                      t: Text) -> list[Reply]:
        if state.application_id is None:
            return [Reply(t("Look up an application first; then you can follow it."),
                          [Button(t("Look up an application"), LOOKUP)])]
        if follow:
            added = await repo.subscribe(session, commune_id=self.office.commune_id,
                                         application_id=state.application_id,
                                         channel=state.channel, recipient=state.user_id,
                                         lang=state.lang)
            return [Reply(t("You will get a message here when the status changes.") if added
                          else t("You already follow this application."),
                          [Button(t("Stop following"), UNFOLLOW)])]
        removed = await repo.unsubscribe(session, application_id=state.application_id,
                                         channel=state.channel, recipient=state.user_id)
        return [Reply(t("You will no longer get messages about this application.") if removed
                      else t("You were not following this application."))]

    async def _answer(self, session: AsyncSession, state: Conversation, text: str,
                      now: dt.datetime) -> list[Reply]:
        lang: Lang | None = "en" if state.lang == "en" else None
        answer = self.assistant.ask(text, lang=lang)
        t = Text(answer.lang)
        if answer.kind == "procedure":
            state.misses = 0
            state.last_procedure = answer.matches[0].code
            return [Reply(answer.answer, self._more(t))]
        if answer.kind == "clarify":
            state.misses = 0
            return [Reply(answer.answer, [Button(self.assistant.name(m.code, t),
                                                 PROCEDURE + m.code) for m in answer.matches])]
        if text:
            state.misses += 1
            await conversations_repo.record_unanswered(
                session, commune_id=self.office.commune_id, channel=state.channel,
                user_id=state.user_id, text=text)
        if state.misses >= MISSES_BEFORE_STAFF:
            return [Reply(answer.answer), *await self._hand_over(session, state, now, t)]
        return [Reply(answer.answer, [Button(t("Menu"), MENU), Button(t("Contact staff"), STAFF)])]

    async def _hand_over(self, session: AsyncSession, state: Conversation, now: dt.datetime,
                         t: Text) -> list[Reply]:
        state.with_staff_since = now
        state.misses = 0
        await self._to_staff(session, state, t("The citizen asks to talk to staff."), now)
        return [Reply(t("I have passed your conversation to the staff of {commune}. They will "
                        "reply here. Type \"kết thúc\" to go back to the assistant.",
                        commune=self.assistant.kb.commune.name))]

    async def from_staff(self, *, channel: str, user_id: str, text: str, reply_id: str,
                         now: dt.datetime | None = None) -> None:
        """A staff member's reply to a relayed message: queue it for the citizen; "kết thúc"
        gives the conversation back to the assistant."""
        now = now or dt.datetime.now(dt.UTC)
        async with session_scope(self.office.sessions) as session:
            state = (await conversations_repo.conversations(
                session, commune_id=self.office.commune_id,
                keys=[(channel, user_id)]))[(channel, user_id)]
            t = self._text(state)
            if fold(text).strip(" /!.") in END_WORDS:
                state.with_staff_since = None
                text = t("You are back with the assistant.")
            else:
                state.with_staff_since = state.with_staff_since or now
            session.add(state)
            await repo.enqueue(session, [Notification(
                commune_id=self.office.commune_id, channel=channel, recipient=user_id,
                text=text, idempotency_key=f"staff-reply:{reply_id}")])

    async def _to_staff(self, session: AsyncSession, state: Conversation, text: str,
                        now: dt.datetime) -> None:
        """Queue a citizen's message for the staff group (delivered by the staff channel)."""
        key = f"staff:{state.channel}:{state.user_id}:{now.timestamp():.6f}"
        await repo.enqueue(session, [Notification(
            commune_id=self.office.commune_id, channel="staff",
            recipient=f"{state.channel}:{state.user_id}", text=text, idempotency_key=key)])
