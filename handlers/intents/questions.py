"""Questions about procedures: short answers that lead with what was asked, follow-ups about
the procedure under discussion, picks from a numbered list, and the aspect buttons."""

from __future__ import annotations

import re

from handlers.intents.chat import in_kind
from handlers.intents.staff import hand_over
from handlers.messages import Button, Reply
from handlers.turn import ASPECT, PROCEDURE, Turn
from knowledge.answer import FULL, Answer
from knowledge.i18n import N_, Text
from knowledge.intents import PLEASANTRIES, Intent
from knowledge.match import Aspect
from knowledge.text import fold
from storage import conversations as conversations_repo

MISSES_BEFORE_STAFF = 2  # genuinely unanswered questions in a row before staff take over
# A procedure answered on a match weaker than this is kept for staff to check: about one in
# ten such answers was wrong on the evaluation sets, against one in a hundred above it.
UNSURE_BELOW = 0.5
BUTTON_TITLES = {
    Aspect.DOCUMENTS.value: N_("Documents"),
    Aspect.FEE.value: N_("Fee"),
    Aspect.TIME.value: N_("Processing time"),
    Aspect.WHERE.value: N_("Where to submit"),
    Aspect.ONLINE.value: N_("Submit online"),
    Aspect.LEGAL.value: N_("Legal basis"),
    Aspect.ELIGIBILITY.value: N_("Who may apply"),
    Aspect.STEPS.value: N_("Steps"),
    Aspect.RESULT.value: N_("Result"),
    FULL: N_("Full details"),
}
# "2", "số 2", "cái thứ 2", "#2", "2." — a pick from the numbered list.
_PICK = re.compile(r"^(?:so|cai|thu|loai|muc|phuong an|#|\s)*(\d{1,2})\W*$")


def aspect_buttons(code: str, offer: list[str], t: Text) -> list[Button]:
    """Buttons for the other aspects of a procedure, its full card, staff and the menu; past
    the first three aspects they are spare (Zalo shows five under one message)."""
    aspects = [a for a in offer if a != FULL]
    return [*(Button(t(BUTTON_TITLES[a]), f"{ASPECT}{a}:{code}", spare=i >= 3)
              for i, a in enumerate(aspects)),
            *(Button(t(BUTTON_TITLES[FULL]), f"{ASPECT}{FULL}:{code}") for a in offer if a == FULL),
            Button(t("Contact staff"), Intent.STAFF), Button(t("Menu"), Intent.MENU, spare=True)]


def procedure_replies(turn: Turn, answer: Answer, *, score: float | None = None
                      ) -> list[Reply]:
    """A reply about one procedure, with its buttons; the procedure becomes the topic
    (``score``: the match's, when a typed question found it)."""
    turn.set_topic(answer.code)
    turn.state.misses = 0
    return turn.reply(answer.answer, "procedure", aspect_buttons(answer.code, answer.offer,
                                                                 Text(answer.lang)),
                      code=answer.code, aspects=tuple(a.value for a in answer.aspects),
                      detail="case" if answer.case else "", score=score)


async def buttons(turn: Turn) -> list[Reply] | None:
    """A procedure (``p:``), one of its aspects or its full card (``a:``) tapped."""
    assistant = turn.services.assistant
    if turn.payload.startswith(PROCEDURE):
        code = turn.payload.removeprefix(PROCEDURE)
        if code in assistant.kb.procedures:
            return procedure_replies(turn, assistant.about(code, [], turn.t))
    elif turn.payload.startswith(ASPECT):
        aspect, _, code = turn.payload.removeprefix(ASPECT).partition(":")
        if code in assistant.kb.procedures and aspect == FULL:
            turn.set_topic(code)
            t = turn.t
            return turn.reply(assistant.card(assistant.kb.procedures[code], t), "procedure",
                              [Button(t("Procedures"), Intent.FIELDS),
                               Button(t("Contact staff"), Intent.STAFF)],
                              code=code, aspects=(FULL,))
        if code in assistant.kb.procedures and aspect in Aspect._value2member_map_:
            return procedure_replies(turn, assistant.about(code, [Aspect(aspect)], turn.t))
    else:
        return None
    return turn.reply(turn.t("Sorry, that choice is no longer available."), "menu",
                      turn.menu_buttons())


async def pick(turn: Turn) -> list[Reply] | None:
    """A number typed after a numbered list picks that option."""
    options = turn.options
    match = _PICK.match(fold(turn.text).strip())
    if not match:
        return None
    if not options:  # a number with no list to pick from
        return turn.reply(turn.t("Please type your question, for example: \"làm giấy khai sinh "
                                 "cần gì\"."), "ack")
    index = int(match.group(1)) - 1
    if not 0 <= index < len(options):
        return turn.reply(turn.t("Please choose a number from 1 to {n}.", n=len(options)),
                          "clarify")
    return procedure_replies(turn, turn.services.assistant.about(options[index], [], turn.t))


async def answer(turn: Turn) -> list[Reply]:
    """The assistant's answer: a procedure, a choice between a few, or an honest decline
    (and, after repeated declines, staff)."""
    result = turn.ask()
    t = Text(result.lang)
    pleasantry = next((i for i in turn.mentioned if i in PLEASANTRIES), None)
    if turn.off_topic:
        pleasantry = None  # "hợp âm bài Tạm biệt" says no goodbye
    if pleasantry is not None and result.kind == "none" and (turn.to_the_office or turn.topic):
        # "chào ad, cho hỏi thủ tục khai tử", "cảm ơn, còn phí thì sao": the question put
        # beside the greeting ("thôi để sau, cảm ơn" puts none)
        beside = turn.ask(beside=[pleasantry])
        result = beside if beside.kind == "procedure" else result
    if pleasantry is not None and (result.kind == "none" or result.case):
        return in_kind(turn, pleasantry)  # "thôi chào ad nhé, mai em ra xã nộp"
    best = result.matches[0] if result.matches else None
    if result.kind == "procedure":
        score = best.score if best is not None and best.code == result.code else None
        if score is not None and score < UNSURE_BELOW:
            await _keep(turn, unsure=(result.code, score))
        return procedure_replies(turn, result, score=score)
    if result.kind == "clarify":
        await _keep(turn, unsure=("", best.score if best is not None else 0.0))
        codes = [m.code for m in result.matches]
        turn.set_topic(options=codes)
        turn.state.misses = 0
        return turn.reply(result.answer, "clarify", [
            Button(turn.services.assistant.short_name(c, t), PROCEDURE + c) for c in codes],
            score=best.score if best is not None else None)
    if result.kind == "none" and not result.matches and result.aspects and turn.options:
        # "cần gì" right after a choice was offered: the choice again, its buttons opening
        # that aspect of each
        aspect, options = result.aspects[0].value, turn.options
        turn.set_topic(options=options)
        return turn.reply(turn.services.assistant.choice(options, t), "clarify", [
            Button(turn.services.assistant.short_name(c, t), f"{ASPECT}{aspect}:{c}")
            for c in options])
    if result.kind == "rule" or result.faq or result.places:
        # a legal rule, another body's matter with its rule, or the commune serving a place
        turn.state.misses = 0
        intent = "procedure" if result.kind == "rule" else "contact" if result.places \
            else "decline"
        return turn.reply(result.answer, intent,
                          [Button(t("Menu"), Intent.MENU),
                           Button(t("Contact staff"), Intent.STAFF)])
    if not turn.text:  # a sticker or a photo: nothing was asked
        return turn.reply(result.answer, "ack")
    turn.state.misses += 1
    await _keep(turn)
    if turn.state.misses >= MISSES_BEFORE_STAFF:
        return [Reply(result.answer, intent="decline"), *await hand_over(turn)]
    return turn.reply(result.answer, "decline", [Button(t("Menu"), Intent.MENU),
                                                 Button(t("Contact staff"), Intent.STAFF)])


async def _keep(turn: Turn, *, unsure: tuple[str, float] | None = None) -> None:
    """Keep the question for staff: declined, or answered unsure of (the procedure, "" for a
    choice offered, and the match's score)."""
    if turn.text:
        await conversations_repo.record_unanswered(
            turn.session, commune_id=turn.services.office.commune_id,
            channel=turn.state.channel, user_id=turn.state.user_id, text=turn.text,
            unsure=unsure)
