"""The menu, the procedures by field, and the language switch."""

from __future__ import annotations

from handlers.messages import Button, Reply
from handlers.turn import FIELD, PROCEDURE, SET_LANG, Step, Turn
from knowledge.i18n import LANGUAGES, Text
from knowledge.intents import Intent


async def menu(turn: Turn) -> list[Reply] | None:
    """Menu, fields and language choices (buttons, commands or the same words typed)."""
    t, services = turn.t, turn.services
    if turn.intent is Intent.MENU or (Intent.MENU in turn.mentioned
                                      and not turn.names_procedure(beside=[Intent.MENU])):
        turn.state.step, turn.state.pending_code = Step.IDLE, ""
        return turn.reply(t("Hello! I am the assistant of the one-stop desk of {commune}. Ask me "
                            "about a procedure (documents, fees, processing time), or choose "
                            "below.", commune=services.assistant.kb.commune.name), "menu",
                          turn.menu_buttons())
    if turn.intent is Intent.FIELDS:
        return turn.reply(t("Choose a field:"), "menu", [
            Button(name, f"{FIELD}{i}") for i, (name, _) in enumerate(services.fields)])
    if turn.payload.startswith(FIELD):
        index = turn.payload.removeprefix(FIELD)
        if index.isdigit() and int(index) < len(services.fields):
            _, codes = services.fields[int(index)]
            return turn.reply(t("Choose a procedure:"), "menu", [
                Button(services.assistant.short_name(c, t), PROCEDURE + c) for c in codes])
        return stale(turn)
    if turn.intent is Intent.LANGUAGE:
        return turn.reply(t("Choose a language:"), "language",
                          [Button("Tiếng Việt", SET_LANG + "vi"),
                           Button("English", SET_LANG + "en")])
    if Intent.ENGLISH in (turn.intent, *turn.mentioned):
        chosen = "en"
    elif Intent.VIETNAMESE in (turn.intent, *turn.mentioned):
        chosen = "vi"
    elif turn.payload.startswith(SET_LANG):
        chosen = turn.payload.removeprefix(SET_LANG)
    else:
        return None
    if chosen not in LANGUAGES:
        return stale(turn)
    turn.state.lang = chosen
    t = Text(turn.lang)
    return turn.reply(t("The assistant now speaks English."), "language", turn.menu_buttons())


def stale(turn: Turn) -> list[Reply]:
    """A button from an old message that no longer leads anywhere."""
    return turn.reply(turn.t("Sorry, that choice is no longer available."), "menu",
                      turn.menu_buttons())
