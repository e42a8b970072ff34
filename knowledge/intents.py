"""Everyday intents (greeting, thanks, contact details, status lookup…) recognised from the
word lists in ``intents.toml``: data a non-programmer can extend, folded like questions.

Two kinds of phrase: a *whole* phrase is the entire message, give or take filler words and
punctuation ("cảm ơn ad nhiều ạ!"); a *contains* phrase may stand anywhere in it ("cho hỏi
giờ làm việc của xã"). A message of only emoji or punctuation is an acknowledgement.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum
from functools import cache
from pathlib import Path

from knowledge.text import fold

INTENTS_FILE = Path(__file__).resolve().parent / "intents.toml"
_WORD = re.compile(r"[a-z0-9]+")


class Intent(StrEnum):
    """What a message asks for, other than a procedure question. Order = priority when a
    message strings several together ("ok cảm ơn" is thanks, "chào, tra cứu hồ sơ" a lookup)."""

    STAFF = "staff"
    LOOKUP = "lookup"
    FOLLOW = "follow"
    UNFOLLOW = "unfollow"
    MENU = "menu"
    FIELDS = "fields"
    LANGUAGE = "language"
    ENGLISH = "english"
    VIETNAMESE = "vietnamese"
    ABOUT = "about"
    CONTACT_MAP = "contact_map"
    CONTACT_HOURS = "contact_hours"
    CONTACT_PHONE = "contact_phone"
    CONTACT_WEBSITE = "contact_website"
    CONTACT_ADDRESS = "contact_address"
    THANKS = "thanks"
    GOODBYE = "goodbye"
    GREETING = "greeting"
    END = "end"
    ACK = "ack"
    FEEDBACK_STATUS = "feedback_status"  # "tra cứu phản ánh" (before FEEDBACK: it holds it)
    FEEDBACK = "feedback"  # "tôi muốn phản ánh", "bị đòi thêm giấy tờ"
    ANNOUNCEMENTS_ON = "announcements_on"  # "nhận thông báo của xã"
    ANNOUNCEMENTS_OFF = "announcements_off"  # "huỷ nhận thông báo"


CONTACTS = (Intent.CONTACT_MAP, Intent.CONTACT_HOURS, Intent.CONTACT_PHONE,
            Intent.CONTACT_WEBSITE, Intent.CONTACT_ADDRESS)
PLEASANTRIES = (Intent.GOODBYE, Intent.THANKS, Intent.GREETING)
_PRIORITY = {intent: i for i, intent in enumerate(Intent)}


_STRETCHED = re.compile(r"(\w)\1{2,}")


# The chat shorthand read the same in messages and phrases ("hs của e" is "hồ sơ của em");
# other short forms are matched as typed.
_SHORTHAND = {"hs": "ho so", "e": "em", "ko": "khong", "k": "khong", "kg": "khong",
              "dc": "duoc", "mk": "minh", "mik": "minh"}


def words(text: str) -> list[str]:
    """Folded words of ``text``, a letter held down counted once ("hellooo", "alooo"), the
    common chat shorthand spelled out."""
    return [w for word in _WORD.findall(_STRETCHED.sub(r"\1", fold(text)))
            for w in _SHORTHAND.get(word, word).split()]


@dataclass(frozen=True)
class IntentWords:
    """The phrase lists of ``intents.toml``, folded."""

    fillers: frozenset[str]
    whole: dict[tuple[str, ...], Intent]
    contains: tuple[tuple[str, Intent], ...]  # " phrase " padded, longest first
    longest: int
    places: tuple[str, ...] = ()  # " place name " padded, longest first: read as fillers

    def with_places(self, names: Iterable[str]) -> IntentWords:
        """These lists, reading the commune's own names as fillers ("ủy ban xã Hát Môn ở đâu")."""
        padded = {f" {' '.join(words(n))} " for n in names if words(n)}
        return replace(self, places=tuple(sorted(padded, key=len, reverse=True)))

    def _padded(self, text: str) -> str:
        """The folded words of ``text``, space-padded, the place names taken out."""
        return self._placeless(f" {' '.join(words(text))} ")

    def _placeless(self, padded: str) -> str:
        """Space-padded words less the place names."""
        for place in self.places:
            padded = padded.replace(place, " ")
        return padded

    @classmethod
    def load(cls, path: Path = INTENTS_FILE) -> IntentWords:
        """Read and fold the word lists."""
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        whole: dict[tuple[str, ...], Intent] = {}
        contains: list[tuple[str, Intent]] = []
        for intent in Intent:
            entry = data.get(intent.value, {})
            for phrase in entry.get("whole", []):
                whole.setdefault(tuple(words(phrase)), intent)
            contains += [(f" {' '.join(words(p))} ", intent) for p in entry.get("contains", [])]
        # Longest first: a phrase is taken out of a message before the shorter ones inside it.
        contains.sort(key=lambda entry: len(entry[0]), reverse=True)
        return cls(frozenset(words(data.get("fillers", ""))), whole, tuple(contains),
                   max((len(k) for k in whole), default=1))

    def whole_intent(self, text: str) -> Intent | None:
        """The intent of a message made only of whole phrases and fillers, else None."""
        if not text.strip():
            return None
        tokens = self._padded(text).split()
        found: list[Intent] = []
        i = 0
        while i < len(tokens):
            for size in range(min(self.longest, len(tokens) - i), 0, -1):
                intent = self.whole.get(tuple(tokens[i : i + size]))
                if intent is not None:
                    found.append(intent)
                    i += size
                    break
            else:
                if tokens[i] not in self.fillers:
                    return None
                i += 1
        if not found:  # emoji, punctuation or only fillers ("ạ", "👍"); "cháu ơi" calls out
            if "oi" in tokens:
                return Intent.GREETING
            return Intent.ACK if not tokens or len(tokens) <= 2 else None
        if Intent.GREETING in found and Intent.STAFF in found:
            return Intent.GREETING  # "chào buổi sáng các cán bộ xã" greets, it asks for no one
        if languages := [i for i in found if i in (Intent.ENGLISH, Intent.VIETNAMESE)]:
            return languages[-1]  # "quay lại tiếng việt" asks for the language, not the menu
        return min(found, key=_PRIORITY.__getitem__)

    def without(self, text: str, intents: Iterable[Intent]) -> str:
        """The folded text less the phrases of these intents and the place names: what else
        it says ("ủy ban xã Hát Môn nằm chỗ nào" says nothing else)."""
        padded, wanted = self._padded(text), set(intents)
        for phrase, intent in self.contains:
            if intent in wanted:
                padded = padded.replace(phrase, " ")
        return padded.strip()

    def contained(self, text: str) -> list[Intent]:
        """Intents whose phrase stands somewhere in the message, as typed or with the place
        names taken out ("nhận thông báo của xã Hát Môn", "ủy ban xã Hát Môn ở đâu"), best
        first, each once."""
        typed = f" {' '.join(words(text))} "
        padded = self._placeless(typed)
        if padded == typed:  # most messages name no place: one look per phrase
            found = {intent for phrase, intent in self.contains if phrase in padded}
        else:
            found = {intent for phrase, intent in self.contains
                     if phrase in padded or phrase in typed}
        return sorted(found, key=_PRIORITY.__getitem__)


@cache
def intent_words() -> IntentWords:
    """The bundled word lists, loaded once."""
    return IntentWords.load()
