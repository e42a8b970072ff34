"""The conversation core: one incoming message in, replies out. No channel code here."""

from __future__ import annotations

from dataclasses import dataclass, field

from knowledge.answer import Assistant
from knowledge.i18n import Lang, Text

PROCEDURE_PAYLOAD = "p:"


@dataclass(frozen=True)
class IncomingMessage:
    """What a citizen sent, whatever the channel."""

    channel: str  # "web", "telegram", "zalo"
    user_id: str
    text: str = ""
    payload: str = ""  # a button's payload, instead of text
    lang: Lang | None = None


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


def respond(message: IncomingMessage, assistant: Assistant) -> list[Reply]:
    """Answer a message: a procedure button opens its card; text goes to the assistant."""
    if message.payload.startswith(PROCEDURE_PAYLOAD):
        code = message.payload.removeprefix(PROCEDURE_PAYLOAD)
        if code in assistant.kb.procedures:
            t = Text(message.lang or "vi")
            return [Reply(assistant.card(assistant.kb.procedures[code], t))]
    answer = assistant.ask(message.text, lang=message.lang)
    buttons = []
    if answer.kind == "clarify":
        t = Text(answer.lang)
        buttons = [Button(assistant.name(m.code, t), PROCEDURE_PAYLOAD + m.code)
                   for m in answer.matches]
    return [Reply(answer.answer, buttons)]
