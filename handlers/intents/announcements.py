"""Subscribing to the commune's announcements and stopping them, in every channel.

The phrases are data (``[announcements_on]`` and ``[announcements_off]`` in ``intents.toml``);
consent is recorded with when, the channel, the language and a hamlet the citizen names.
"""

from __future__ import annotations

import tomllib
from functools import cache

from handlers.broadcasts import STOP_ANNOUNCEMENTS, hamlet_of
from handlers.messages import Button, Reply
from handlers.turn import Turn
from knowledge.intents import INTENTS_FILE, words
from storage import broadcasts as repo

START_ANNOUNCEMENTS = "announcements:on"  # the button payload that subscribes


@cache
def phrases() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(subscribe, unsubscribe) phrases, folded and space-padded."""
    data = tomllib.loads(INTENTS_FILE.read_text(encoding="utf-8"))

    def padded(section: str) -> tuple[str, ...]:
        return tuple(f" {' '.join(words(p))} " for p in data.get(section, {}).get("contains", []))
    return padded("announcements_on"), padded("announcements_off")


async def announcements(turn: Turn) -> list[Reply] | None:
    """"nhận thông báo của xã" subscribes, "huỷ nhận thông báo" unsubscribes (also buttons)."""
    if turn.payload:
        if turn.payload not in (START_ANNOUNCEMENTS, STOP_ANNOUNCEMENTS):
            return None
        on = turn.payload == START_ANNOUNCEMENTS
    else:
        typed = f" {' '.join(words(turn.text))} "
        subscribe, unsubscribe = phrases()
        if any(p in typed for p in unsubscribe):
            on = False
        elif any(p in typed for p in subscribe):
            on = True
        else:
            return None
    state, t, office = turn.state, turn.t, turn.services.office
    commune = office.kb.commune.name
    if on:
        added = await repo.subscribe(turn.session, commune_id=office.commune_id,
                                     channel=state.channel, recipient=state.user_id,
                                     lang=state.lang, hamlet=hamlet_of(turn.text), at=turn.now)
        text = t("You will receive the announcements of {commune} here. To stop them, type "
                 "\"huỷ nhận thông báo\".", commune=commune) if added else \
            t("You already receive the announcements of {commune} here.", commune=commune)
        return turn.reply(text, "announcements_on",
                          [Button(t("Stop announcements"), STOP_ANNOUNCEMENTS)])
    removed = await repo.unsubscribe(turn.session, commune_id=office.commune_id,
                                     channel=state.channel, recipient=state.user_id, at=turn.now)
    if not removed and state.application_id is not None and not turn.payload:
        return None  # "huỷ nhận thông báo" after a lookup stops following the application
    text = t("You will no longer receive the announcements of {commune}.", commune=commune) \
        if removed else t("You were not receiving the announcements of {commune}.",
                          commune=commune)
    return turn.reply(text, "announcements_off",
                      [Button(t("Receive announcements"), START_ANNOUNCEMENTS)])
