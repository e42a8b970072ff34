"""What passes between a channel and the conversation core: a message in, replies out."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from knowledge.i18n import Lang

# NUL (PostgreSQL refuses it) and the other control characters but tab and line feed: none
# is text a citizen meant, and terminal escapes have no place in a staff member's view.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]+")


def storable(text: str) -> str:
    """Text any database takes: lone surrogates replaced, control characters but tab and
    line feed dropped ("\\r\\n" becomes "\\n")."""
    return _CONTROLS.sub("", text.encode("utf-8", "replace").decode("utf-8"))


@dataclass(frozen=True)
class IncomingMessage:
    """What a citizen sent, whatever the channel."""

    channel: str  # "web", "telegram", "zalo"
    user_id: str
    text: str = ""
    payload: str = ""  # a button's payload (or a command the channel parsed), instead of text
    lang: Lang | None = None  # forced language (web chat's switch), else the stored one
    event_id: str = ""  # the channel's id of this event: a redelivered event is ignored
    client: str = ""  # the sender's network address where the channel knows it (web chat)

    def __post_init__(self) -> None:
        # Whatever a channel lets through (a lone surrogate, a NUL) must not fail the batch.
        for name in ("user_id", "text", "payload", "event_id"):
            object.__setattr__(self, name, storable(getattr(self, name)))


@dataclass(frozen=True)
class Button:
    """A choice the citizen can tap; channels without buttons show it as numbered text."""

    title: str
    payload: str
    spare: bool = False  # a shortcut a channel that shows few buttons may leave out


@dataclass(frozen=True)
class Reply:
    """One message back to the citizen, with what it is (for reports and evaluation)."""

    text: str
    buttons: list[Button] = field(default_factory=list)
    intent: str = ""  # "procedure", "clarify", "decline", "greeting", "status", "staff", …
    code: str = ""  # the procedure it is about
    aspects: tuple[str, ...] = ()  # the aspects it leads with
    detail: str = ""  # e.g. a status reply's state ("overdue", "supplement", …)
    image: str = ""  # an https:// image shown with the text (a broadcast's)
    score: float | None = None  # the best match's score, when a typed question was matched


# Channels whose replies are sent by an API call: each reply is written to the outbox in the
# transaction that handles the message, so a crash before it is sent does not lose it.
PUSH_CHANNELS = frozenset({"telegram", "zalo"})


def reply_key(message: IncomingMessage, index: int) -> str:
    """The outbox key of reply ``index`` to an evented message (unique, so stored once)."""
    return f"reply:{message.channel}:{message.event_id}:{index}"


def dump_buttons(buttons: list[Button]) -> str | None:
    """Buttons as stored with an outbox message (JSON), None without buttons."""
    return json.dumps([[b.title, b.payload, b.spare] for b in buttons],
                      ensure_ascii=False) if buttons else None


def load_buttons(stored: str | None) -> list[Button]:
    """The buttons of an outbox message."""
    return [Button(title, payload, spare) for title, payload, spare in json.loads(stored)] \
        if stored else []


def queued_reply(text: str, buttons: str | None, image: str | None) -> Reply:
    """The reply an outbox message holds (its text, stored buttons and image)."""
    return Reply(text, load_buttons(buttons), image=image or "")


def relay_recipient(channel: str, user_id: str) -> str:
    """The outbox recipient of a message relayed to staff: the citizen it came from."""
    return f"{channel}:{user_id}"


def relay_tag(recipient: str) -> str:
    """The tag a relayed message carries to the staff group, so a reply finds its way back."""
    return f"[{recipient}]"


_RELAY_TAG = re.compile(r"^\[(telegram|zalo|web):([^\]\s]{1,128})\]")


def read_relay_tag(text: str) -> tuple[str, str] | None:
    """(channel, user id) of a relayed message's tag, or None."""
    match = _RELAY_TAG.match(text)
    return (match.group(1), match.group(2)) if match else None


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
