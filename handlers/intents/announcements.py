"""Subscribing to the commune's announcements and stopping them, in every channel.

The phrases are intents like the others (``[announcements_on]`` and ``[announcements_off]``
in ``intents.toml``); consent is recorded with when, the channel, the language and a hamlet
the citizen names.
"""

from __future__ import annotations

from handlers.broadcasts import START_ANNOUNCEMENTS, STOP_ANNOUNCEMENTS, hamlet_of
from handlers.messages import Button, Reply
from handlers.turn import Turn
from knowledge.intents import Intent
from storage import broadcasts as repo


async def announcements(turn: Turn) -> list[Reply] | None:
    """"nhận thông báo của xã" subscribes, "huỷ nhận thông báo" unsubscribes (also buttons)."""
    if turn.payload:
        if turn.payload not in (START_ANNOUNCEMENTS, STOP_ANNOUNCEMENTS):
            return None
        on = turn.payload == START_ANNOUNCEMENTS
    elif Intent.ANNOUNCEMENTS_OFF in turn.mentioned:  # "huỷ nhận thông báo của xã" stops
        on = False
    elif Intent.ANNOUNCEMENTS_ON in turn.mentioned:
        if turn.state.application_id is not None and Intent.FOLLOW in turn.mentioned:
            return None  # "nhận thông báo khi hồ sơ này có kết quả": follow the application
        on = True
    else:
        return None
    state, t, office = turn.state, turn.t, turn.services.office
    commune = office.kb.commune.name
    if on:
        added = await repo.subscribe(turn.session, commune_id=office.commune_id,
                                     channel=state.channel, recipient=state.user_id,
                                     lang=state.lang, hamlet=hamlet_of(turn.text), at=turn.now)
        turn.announcements = True
        text = t("You will receive the announcements of {commune} here. To stop them, type "
                 "\"huỷ nhận thông báo\".", commune=commune) if added else \
            t("You already receive the announcements of {commune} here.", commune=commune)
        return turn.reply(text, "announcements_on",
                          [Button(t("Stop announcements"), STOP_ANNOUNCEMENTS)])
    removed = await repo.unsubscribe(turn.session, commune_id=office.commune_id,
                                     channel=state.channel, recipient=state.user_id, at=turn.now)
    turn.announcements = False
    if not removed and state.application_id is not None and not turn.payload:
        return None  # "huỷ nhận thông báo" after a lookup stops following the application
    text = t("You will no longer receive the announcements of {commune}.", commune=commune) \
        if removed else t("You were not receiving the announcements of {commune}.",
                          commune=commune)
    return turn.reply(text, "announcements_off",
                      [Button(t("Receive announcements"), START_ANNOUNCEMENTS)])
