"""The commune's contact details and what the assistant is, asked in everyday words."""

from __future__ import annotations

import re

from handlers.messages import Reply
from handlers.turn import Turn
from knowledge.intents import CONTACTS, Intent
from knowledge.match import Aspect
from knowledge.text import fold

# "đổi địa chỉ cửa hàng": an address changed is a procedure's matter, not the office's address
_CHANGED_ADDRESS = re.compile(r"\b(?:doi|sua|chuyen|cap nhat) dia chi\b")


async def contact(turn: Turn) -> list[Reply] | None:
    """Address, hours, phone, website or map of the one-stop desk; or who the assistant is."""
    asked = [i for i in turn.mentioned if i in CONTACTS or i is Intent.ABOUT]
    if not asked:
        return None
    if turn.off_topic:
        return None  # "Việt Nam đá với Thái Lan mấy giờ" is not about opening hours
    if asked == [Intent.CONTACT_ADDRESS] and _CHANGED_ADDRESS.search(fold(turn.text)):
        return None
    if asked == [Intent.CONTACT_WEBSITE] and turn.topic and Aspect.ONLINE in turn.aspects:
        return None  # "nộp qua website được không" after a procedure answer: its online link
    if turn.names_procedure(beside=asked) or turn.names_procedure():
        # "nộp hồ sơ khai sinh ở đâu" asks where to submit, not the address; "đổi địa chỉ
        # kinh doanh" is a procedure of its own
        return None
    t = turn.t
    if asked[0] is Intent.ABOUT:
        return turn.reply(t("I am the automatic assistant of the one-stop desk of {commune}. I "
                            "answer questions about administrative procedures (documents, fees, "
                            "processing time, where and how to submit), look up your "
                            "application by its receipt code, and pass you to staff when you "
                            "need a person.", commune=turn.services.assistant.kb.commune.name),
                          "about", turn.menu_buttons())
    return turn.reply(details(turn, [i for i in asked if i in CONTACTS]), "contact",
                      detail=asked[0].value.removeprefix("contact_"))


def details(turn: Turn, asked: list[Intent]) -> str:
    """The asked contact details that the profile has, then what it lacks said plainly."""
    t, commune = turn.t, turn.services.assistant.kb.commune
    known = {
        Intent.CONTACT_ADDRESS: commune.address and t("Address: {address}",
                                                      address=commune.address),
        Intent.CONTACT_HOURS: (commune.hours_en if turn.lang == "en" and commune.hours_en
                               else commune.hours) and t(
            "Opening hours: {hours}", hours=commune.hours_en if turn.lang == "en"
            and commune.hours_en else commune.hours),
        Intent.CONTACT_PHONE: commune.hotline and t("Phone: {phone}", phone=commune.hotline),
        Intent.CONTACT_WEBSITE: "\n".join(filter(None, (
            commune.website and t("Website: {url}", url=commune.website),
            commune.online_portal and t("Online applications: {url}",
                                        url=commune.online_portal)))),
        Intent.CONTACT_MAP: commune.map_url and t("Map: {url}", url=commune.map_url),
    }
    lines = [t("One-stop desk of {commune}:", commune=commune.name)]
    lines += [known[i] for i in asked if known[i]]
    if any(not known[i] for i in asked):
        lines.append(t("I do not have that detail yet. Everything I know: {contact}.",
                       contact=turn.contact()))
        if commune.directory_url:
            lines.append(t("The addresses and hotlines of all one-stop desks of {province} are "
                           "listed at {url}.", province=commune.province,
                           url=commune.directory_url))
    return "\n".join(lines)
