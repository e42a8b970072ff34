"""Small talk: greetings, thanks, goodbyes and acknowledgements ("ok", "👍"). None of them
is an unanswered question, and none hands the citizen to staff."""

from __future__ import annotations

from handlers.messages import Reply
from handlers.turn import Turn
from knowledge.intents import Intent

SMALL_TALK = (Intent.GREETING, Intent.THANKS, Intent.GOODBYE, Intent.ACK, Intent.END)


async def small_talk(turn: Turn) -> list[Reply] | None:
    """A message that is only a pleasantry; "chào" after an answer takes leave."""
    if turn.intent is Intent.GREETING and turn.topic:
        return in_kind(turn, Intent.GOODBYE)
    return in_kind(turn, turn.intent) if turn.intent in SMALL_TALK else None


def in_kind(turn: Turn, intent: Intent | None) -> list[Reply]:
    """A reply in kind, with the menu where a question may follow."""
    t, commune = turn.t, turn.services.assistant.kb.commune.name
    if intent is Intent.GREETING:
        return turn.reply(t("Hello! I am the assistant of the one-stop desk of {commune}. Ask me "
                            "about a procedure (documents, fees, processing time), or choose "
                            "below.", commune=commune), "greeting", turn.menu_buttons())
    if intent is Intent.THANKS:
        return turn.reply(t("You are welcome! Ask me anything else about procedures "
                            "whenever you need."), "thanks")
    if intent is Intent.GOODBYE:
        return turn.reply(t("Goodbye! Come back whenever you need help with a procedure."),
                          "goodbye")
    return turn.reply(t("All right. Anything else? Type your question, or \"menu\"."), "ack")
