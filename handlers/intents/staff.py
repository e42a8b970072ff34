"""Hand-over to staff: asked for, or after repeated unanswered questions; the citizen's
messages then go to the staff channel until "kết thúc" or ``STAFF_TIMEOUT``. Meanwhile the
assistant still answers what it clearly can (a procedure, the office's phone number, "ok").

The citizen is never left without a reply: with no staff channel the contact details are
given instead, and outside opening hours the hand-over says when staff will read it.
"""

from __future__ import annotations

import datetime as dt

from handlers.messages import Button, Reply, relay_recipient
from handlers.turn import Turn
from knowledge.intents import Intent
from storage import applications as repo
from storage.models import Notification

STAFF_TIMEOUT = dt.timedelta(hours=24)  # a conversation left with staff returns to the bot
NOTICE_EVERY = dt.timedelta(minutes=10)  # how often the whole "passed to staff" is repeated
RELAY_LIMIT = 10  # messages relayed to staff per conversation in RELAY_WINDOW: a flood stops
RELAY_WINDOW = dt.timedelta(minutes=10)


async def with_staff(turn: Turn) -> list[Reply] | None:
    """While staff have the conversation: relay the message, or give it back on "kết thúc"."""
    state, t = turn.state, turn.t
    if state.with_staff_since is None:
        return None
    if turn.now - state.with_staff_since > STAFF_TIMEOUT:
        state.with_staff_since = None
        return None
    if turn.intent is Intent.END:
        state.with_staff_since = None
        state.misses = 0
        return turn.reply(t("You are back with the assistant."), "menu", turn.menu_buttons())
    if turn.payload:
        return None  # a button of the assistant's: the assistant answers it
    if not await relay(turn, turn.text):
        return turn.reply(t("Staff already have several messages from you and will answer "
                            "soon; this one was not passed on. Please wait a few minutes."),
                          "staff")
    # What the assistant clearly can answer, it answers too; staff have the message all the same.
    if turn.intent is not None or any(i is not Intent.STAFF for i in turn.mentioned):
        return None  # an everyday intent: "sđt của xã", "ok"
    if turn.names_procedure():
        turn.follow_up = False  # what the citizen tells staff is no follow-up of the last answer
        return None
    if state.staff_notice_at is not None and turn.now - state.staff_notice_at < NOTICE_EVERY:
        return turn.reply("✓ " + t("Passed to staff."), "staff")  # a receipt, not a lecture
    state.staff_notice_at = turn.now
    return turn.reply(t("Your message has been passed to staff. Type \"kết thúc\" to go back "
                        "to the assistant."), "staff")


async def request(turn: Turn) -> list[Reply] | None:
    """The citizen asks for a person ("gặp cán bộ", a button, /lienhe)."""
    if turn.intent is Intent.STAFF or Intent.STAFF in turn.mentioned:
        return await hand_over(turn)
    return None


async def hand_over(turn: Turn) -> list[Reply]:
    """Pass the conversation to staff, or say how to reach them when no one can read it."""
    t, services = turn.t, turn.services
    commune = services.assistant.kb.commune.name
    turn.state.misses = 0
    if not services.staff_channel:
        return turn.reply(t("Staff of {commune} cannot answer in this chat yet. Please contact "
                            "{contact}.", commune=commune, contact=turn.contact()), "staff",
                          [Button(t("Menu"), Intent.MENU)], detail="unavailable")
    turn.state.with_staff_since = turn.state.staff_notice_at = turn.now
    question = turn.text if turn.intent is None and Intent.STAFF not in turn.mentioned else ""
    await relay(turn, question or t("The citizen asks to talk to staff."))
    text = t("I have passed your conversation to the staff of {commune}. They will reply here. "
             "Type \"kết thúc\" to go back to the assistant.", commune=commune)
    if not services.staff_at_work(turn.now):
        text += "\n" + t("The office is closed now: staff will reply when it opens. You can "
                         "also contact {contact}.", contact=turn.contact())
    return turn.reply(text, "staff", detail="handed_over")


async def relay(turn: Turn, text: str) -> bool:
    """Queue a citizen's message for the staff channel; False when the citizen has sent
    ``RELAY_LIMIT`` in ``RELAY_WINDOW`` already (staff are not flooded)."""
    state = turn.state
    if state.relay_window_at is None or turn.now - state.relay_window_at > RELAY_WINDOW:
        state.relay_window_at, state.relayed = turn.now, 0
    if state.relayed >= RELAY_LIMIT:
        return False
    state.relayed += 1
    key = f"staff:{state.channel}:{state.user_id}:{turn.now.timestamp():.6f}"
    await repo.enqueue(turn.session, [Notification(
        commune_id=turn.services.office.commune_id, channel="staff",
        recipient=relay_recipient(state.channel, state.user_id), text=text,
        idempotency_key=key, kind="relay")])
    return True
