"""Status lookup: the receipt code, then the phone number given at submission; then follow or
unfollow.

Any natural phrasing starts it, a receipt code anywhere in a message skips to the phone
number (and, with a whole phone number beside it, straight to the answer),
and a citizen who asks something else in the middle simply leaves the lookup.
"""

from __future__ import annotations

import re

from handlers.messages import Button, Reply
from handlers.status import FACTOR_DIGITS, lookup_status, phone_factor
from handlers.turn import LOOKUP_CODE, Step, Turn
from knowledge.intents import Intent
from storage import applications as repo
from storage.domain import find_phone_beside_code, find_receipt_code, normalize_receipt_code

PHONE_WORDS = 12  # a message this short holding a whole phone number gives it


async def lookup(turn: Turn) -> list[Reply] | None:
    """Every message that belongs to a status lookup, or None."""
    state, t = turn.state, turn.t
    mentioned = turn.mentioned if state.application_id is not None else []
    if Intent.UNFOLLOW in (turn.intent, *mentioned):
        return await follow(turn, False)
    if Intent.FOLLOW in (turn.intent, *mentioned):
        return await follow(turn, True)
    if turn.payload.startswith(LOOKUP_CODE):
        return got_code(turn, turn.payload.removeprefix(LOOKUP_CODE))
    code = "" if turn.payload else find_receipt_code(turn.text)
    if code:
        phone = find_phone_beside_code(turn.text)
        if phone:  # both factors in one message
            state.pending_code = code
            return await got_phone(turn, phone)
        return got_code(turn, code)
    step = Step(state.step) if state.step in Step._value2member_map_ else Step.IDLE
    words = turn.text.split()
    if step is Step.PHONE_DIGITS and ((len(words) <= 6 and re.search(r"\d", turn.text)) or (
            len(words) <= PHONE_WORDS and len(phone_factor(turn.text)) == FACTOR_DIGITS)):
        return await got_phone(turn)  # "0987 651 234", "số của bác là 0987 651 234"
    if step is Step.RECEIPT_CODE and len(words) <= 2 and re.search(r"\d", turn.text):
        return got_code(turn, turn.text)
    state.step, state.pending_code = Step.IDLE, ""  # anything else leaves the lookup
    if turn.intent is Intent.LOOKUP and turn.topic and turn.aspects:
        return None  # "hồ sơ?" right after a procedure answer asks its papers
    # "hồ sơ khai sinh của tôi đến đâu rồi" names a procedure too: the lookup still wins.
    if turn.intent is Intent.LOOKUP or Intent.LOOKUP in turn.mentioned:
        if step is not Step.IDLE and turn.names_procedure(beside=[Intent.LOOKUP], clearly=False):
            return None  # asked for the code: "quên phiếu hẹn rồi, thế làm khai tử cần gì"
        state.step = Step.RECEIPT_CODE
        return turn.reply(t("Please type the receipt code (mã hồ sơ) printed on your receipt "
                            "slip."), "ask_code")
    return None


def got_code(turn: Turn, text: str) -> list[Reply]:
    """A receipt code: ask for the second factor (the code alone reveals nothing)."""
    t, state = turn.t, turn.state
    code = normalize_receipt_code(text)
    if code is None:
        state.step = Step.RECEIPT_CODE
        return turn.reply(t("That does not look like a receipt code. It is printed on your "
                            "receipt slip, e.g. 000.00.19.H26-251127-0001."), "ask_code")
    state.step, state.pending_code = Step.PHONE_DIGITS, code
    return turn.reply(t("Now type the phone number you gave when applying."), "ask_phone")


async def got_phone(turn: Turn, typed: str = "") -> list[Reply]:
    """The phone number given at submission (``typed`` beside the code, else the message):
    look the application up."""
    t, state = turn.t, turn.state
    typed = typed or turn.text
    if not phone_factor(typed):
        return turn.reply(t("Please type the phone number you gave when applying "
                            "(10 digits, e.g. 0904 123 456)."), "ask_phone")
    answer = await lookup_status(turn.session, commune_id=turn.services.office.commune_id,
                                 receipt_code=state.pending_code, phone=typed,
                                 user_key=f"{state.channel}:{state.user_id}",
                                 client_key=turn.message.client, lang=turn.lang,
                                 now=turn.now, names=english_names(turn))
    if answer.application_id is None:
        # A mistyped phone number may be typed again for the same code ("à nhầm, 0904…");
        # refused (too many tries), the lookup ends.
        if answer.refused:
            state.step, state.pending_code = Step.IDLE, ""
        return turn.reply(answer.text, "lookup_failed", [Button(t("Try again"), Intent.LOOKUP),
                                                         Button(t("Contact staff"),
                                                                Intent.STAFF)],
                          detail="refused" if answer.refused else "")
    state.step, state.pending_code = Step.IDLE, ""
    state.application_id = answer.application_id
    if answer.procedure in turn.services.assistant.kb.procedures:
        turn.set_topic(answer.procedure)  # "giấy tờ chứng minh chỗ ở gồm những gì" is about it
    # Late, or waiting for papers: the citizen will want a word with the staff.
    staff = [Button(t("Contact staff"), Intent.STAFF)] if answer.detail in (
        "overdue", "supplement") else []
    return turn.reply(answer.text, "status", [Button(t("Follow this application"),
                                                     Intent.FOLLOW),
                                              *staff, Button(t("Menu"), Intent.MENU)],
                      detail=answer.detail)


def english_names(turn: Turn) -> dict[str, str] | None:
    """The bundled procedures' English names, for a reply in English."""
    assistant = turn.services.assistant
    return {code: assistant.name(code, turn.t) for code in assistant.kb.bundled_codes} \
        if turn.lang == "en" else None


async def follow(turn: Turn, on: bool) -> list[Reply]:
    """Follow or stop following the application looked up last."""
    t, state = turn.t, turn.state
    intent = "follow" if on else "unfollow"
    if state.application_id is None:
        return turn.reply(t("Look up an application first; then you can follow it."), intent,
                          [Button(t("Look up an application"), Intent.LOOKUP)])
    if on:
        added = await repo.subscribe(turn.session, commune_id=turn.services.office.commune_id,
                                     application_id=state.application_id,
                                     channel=state.channel, recipient=state.user_id,
                                     lang=state.lang)
        return turn.reply(t("You will get a message here when the status changes.") if added
                          else t("You already follow this application."), intent,
                          [Button(t("Stop following"), Intent.UNFOLLOW)])
    removed = await repo.unsubscribe(turn.session, application_id=state.application_id,
                                     channel=state.channel, recipient=state.user_id)
    return turn.reply(t("You will no longer get messages about this application.") if removed
                      else t("You were not following this application."), intent)
