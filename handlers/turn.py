"""One turn of a conversation as the intent handlers see it: the message, the stored state,
and the services they answer with. Also the conversation's named steps and button payloads.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property

from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.applications import Office
from handlers.broadcasts import START_ANNOUNCEMENTS, STOP_ANNOUNCEMENTS
from handlers.messages import Button, IncomingMessage, Reply
from knowledge.answer import Answer, Assistant
from knowledge.i18n import Lang, Text, language
from knowledge.intents import Intent, IntentWords
from knowledge.match import CLEAR, Asked, Aspect, detect_aspects, said
from knowledge.text import tokenize
from knowledge.workdays import TZ
from storage.models import Conversation

TOPIC_TTL = dt.timedelta(minutes=30)  # the procedure under discussion is forgotten after this
CHOICES = 4  # procedures offered at most when asking back (a family such as ID cards)


class Step(StrEnum):
    """Where a conversation stands between two messages (stored in ``Conversation.step``)."""

    IDLE = ""
    RECEIPT_CODE = "code"  # waiting for a receipt code
    PHONE_DIGITS = "phone"  # waiting for the last 4 digits of the phone
    FEEDBACK_KIND = "fb_kind"  # a report: waiting for its kind
    FEEDBACK_SUBJECT = "fb_subject"  # … for its receipt code or procedure (or none)
    FEEDBACK_TEXT = "fb_text"  # … for its description
    RATING_COMMENT = "rate_comment"  # a rating given: waiting for an optional comment


# Button payloads with a value after the prefix.
PROCEDURE = "p:"  # p:<code> — a procedure's overview
ASPECT = "a:"  # a:<aspect>:<code> — one aspect of a procedure ("a:full:<code>": everything)
FIELD = "f:"  # f:<index> — the procedures of a field
SET_LANG = "lang:"  # lang:<vi|en>
LOOKUP_CODE = "lookup:"  # lookup:<receipt code> — a deep link to a lookup


@dataclass
class Services:
    """What every turn may use: the commune's assistant and office, and the word lists."""

    assistant: Assistant
    office: Office
    words: IntentWords
    staff_channel: bool  # a staff channel is configured (hand-overs reach someone)
    fields: list[tuple[str, list[str]]] = field(default_factory=list)  # (field, codes)

    def staff_at_work(self, now: dt.datetime) -> bool:
        """Whether the one-stop desk is open now (unknown hours count as open)."""
        opening = self.assistant.kb.commune.opening
        if not opening:
            return True
        local = now.astimezone(TZ)
        if not self.office.calendar.is_working_day(local.date()):
            return False
        return any(local.isoweekday() in o.weekdays and o.start <= local.time() < o.end
                   for o in opening)


@dataclass
class Turn:
    """One message being answered."""

    services: Services
    session: AsyncSession
    state: Conversation
    message: IncomingMessage
    now: dt.datetime
    follow_up: bool = True  # read a question as a follow-up of the procedure under discussion
    announcements: bool = False  # they receive the announcements here (set when that changes)

    @property
    def text(self) -> str:
        """What the citizen typed, trimmed."""
        return self.message.text.strip()

    @property
    def payload(self) -> str:
        return self.message.payload

    @property
    def t(self) -> Text:
        return Text(language(self.state.lang))

    @property
    def lang(self) -> Lang:
        return language(self.state.lang)

    @cached_property
    def intent(self) -> Intent | None:
        """The everyday intent of a button payload or of a whole message ("cảm ơn ạ")."""
        if self.payload:
            try:
                return Intent(self.payload)
            except ValueError:
                return None
        intent = self.services.words.whole_intent(self.text)
        if intent is Intent.ACK and self.aspects:
            # "đổi ở xã được à" asks where, though folded its words are also "đợi", "ờ", "được"
            return None
        return intent

    @cached_property
    def mentioned(self) -> list[Intent]:
        """Intents named somewhere in a typed message ("cho hỏi giờ làm việc của xã")."""
        return [] if self.payload else self.services.words.contained(self.text)

    @cached_property
    def aspects(self) -> list[Aspect]:
        """The aspects the typed text names ("hồ sơ?", "nộp qua website được không")."""
        return detect_aspects(" ".join(tokenize(self.text)))

    @property
    def topic(self) -> str:
        """The procedure under discussion, unless it has expired."""
        at = self.state.topic_at
        if not self.state.last_procedure or at is None or self.now - at > TOPIC_TTL:
            return ""
        return self.state.last_procedure

    @property
    def options(self) -> list[str]:
        """The procedures last offered as a numbered list (while the topic is fresh)."""
        at = self.state.topic_at
        if not self.state.options or at is None or self.now - at > TOPIC_TTL:
            return []
        return self.state.options.split(",")

    def set_topic(self, code: str = "", options: list[str] | None = None) -> None:
        """Remember the procedure under discussion and the options offered."""
        self.state.last_procedure = code or self.state.last_procedure
        self.state.options = ",".join(options or [])
        self.state.topic_at = self.now

    def ask(self, *, context: bool = True, beside: Iterable[Intent] = ()) -> Answer:
        """The assistant's answer to the typed text (less the phrases of the ``beside``
        intents: "chào ad, cho hỏi thủ tục khai tử"), in the conversation's language."""
        text = self.services.words.without(self.text, beside) if beside else self.text
        if not (context and self.follow_up):
            return self._ask(text)
        return self._ask(text, context=self.topic, options=self.options)

    def _ask(self, text: str, *, context: str = "", options: Sequence[str] = ()) -> Answer:
        lang: Lang | None = "en" if self.state.lang == "en" else None
        return self.services.assistant.ask(text, lang=lang, top=CHOICES, context=context,
                                           options=options)

    def names_procedure(self, beside: Iterable[Intent] = (), *, clearly: bool = True) -> bool:
        """Whether the typed text, less the phrases of the ``beside`` intents, asks about a
        procedure of its own (``clearly``: naming it beyond doubt, so that "nộp hồ sơ khai
        sinh ở đâu" is no question about the office's address)."""
        answer = self.ask(context=False, beside=beside)
        return answer.kind == "procedure" and (
            not clearly or answer.matches[0].score >= CLEAR)

    @cached_property
    def to_the_office(self) -> bool:
        """Whether the typed text puts a question to the office ("thủ tục", "lên xã")."""
        words = self.services.assistant.matcher.words
        return said(words.to_the_office, Asked.of(self.text))

    @cached_property
    def off_topic(self) -> bool:
        """Whether the typed text is about something else that shares a word with a
        procedure or an everyday intent ("hợp âm bài Tạm biệt")."""
        return self.services.assistant.matcher.words.elsewhere(self.text)

    def contact(self) -> str:
        """The commune's contact details, as one sentence."""
        return self.services.assistant.contact(self.t)

    def menu_buttons(self) -> list[Button]:
        """The main menu; its last button subscribes to the announcements, or stops them."""
        t = self.t
        announcements = Button(t("Stop announcements"), STOP_ANNOUNCEMENTS) \
            if self.announcements else Button(t("Receive announcements"), START_ANNOUNCEMENTS)
        return [Button(t("Procedures"), Intent.FIELDS), Button(t("Look up an application"),
                                                               Intent.LOOKUP),
                Button(t("Contact staff"), Intent.STAFF), Button(t("Language"), Intent.LANGUAGE),
                announcements]

    def reply(self, text: str, intent: str, buttons: list[Button] | None = None, *,
              code: str = "", aspects: tuple[str, ...] = (), detail: str = "",
              score: float | None = None) -> list[Reply]:
        """A one-message reply."""
        return [Reply(text, buttons or [], intent, code, aspects, detail, score=score)]
