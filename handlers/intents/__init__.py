"""The conversation's intent handlers, registered in one place.

Each handler looks at a ``Turn`` and returns the replies, or None to let the next one try.
Order matters: a conversation with staff goes first, then buttons and commands, the steps
of a status lookup, everyday intents, and last the questions about procedures.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from handlers.intents import announcements, chat, contact, lookup, menu, questions, staff
from handlers.messages import Reply
from handlers.turn import Turn

Handler = Callable[[Turn], Awaitable[list[Reply] | None]]

HANDLERS: list[Handler] = [
    staff.with_staff,  # while staff have the conversation, messages go to them
    menu.menu,  # menu, fields, language
    questions.buttons,  # a procedure, an aspect or the full card tapped
    staff.request,  # "gặp cán bộ", also in the middle of a lookup
    announcements.announcements,  # "nhận thông báo của xã", "huỷ nhận thông báo"
    lookup.lookup,  # status lookup: start, receipt code, phone digits, follow, unfollow
    chat.small_talk,  # greeting, thanks, goodbye, "ok", emoji
    questions.pick,  # "2" after a numbered list
    contact.contact,  # address, hours, phone, website, map; "bạn là ai"
    questions.answer,  # anything else is a question about a procedure
]


async def respond(turn: Turn) -> list[Reply]:
    """The replies of the first handler that takes the turn."""
    for handler in HANDLERS:
        replies = await handler(turn)
        if replies is not None:
            return replies
    raise AssertionError("questions.answer answers every turn")
