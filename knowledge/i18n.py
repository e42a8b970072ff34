"""User-facing text: Babel gettext catalogs (Vietnamese first, English second) and formatting.

Message ids are English; ``locale/vi`` holds the Vietnamese text. The ``.po`` files are compiled
in memory when first used, so no build step is needed and the catalogs stay reviewable text.
"""

from __future__ import annotations

import datetime as dt
import gettext
from functools import cache, lru_cache
from io import BytesIO
from pathlib import Path
from typing import Literal

from babel.dates import format_date
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal

Lang = Literal["vi", "en"]
LANGUAGES: tuple[Lang, ...] = ("vi", "en")
DEFAULT_LANG: Lang = "vi"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "messages"


def language(code: str) -> Lang:
    """A stored language code as one we speak (Vietnamese unless it is English)."""
    return "en" if code == "en" else "vi"


def _noop(message: str) -> str:
    """Mark a string for extraction without translating it yet."""
    return message


N_ = _noop


@cache
def translations(lang: Lang) -> gettext.GNUTranslations:
    """The compiled catalog for ``lang``."""
    path = LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    with path.open("rb") as po:
        catalog = read_po(po, locale=lang)
    buffer = BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


class Text:
    """Translation and locale formatting for one language."""

    def __init__(self, lang: Lang = DEFAULT_LANG) -> None:
        self.lang: Lang = lang
        self._catalog = translations(lang)

    def __call__(self, message: str, **values: object) -> str:
        """Translate ``message`` and fill ``{name}`` placeholders."""
        text = self._catalog.gettext(message)
        return text.format(**values) if values else text

    def money(self, amount: int) -> str:
        """Vietnamese đồng in the locale's format: "50.000 ₫"."""
        return format_currency(amount, "VND", locale=self.lang)

    def number(self, value: float) -> str:
        """A number in the locale's format ("1,5" in Vietnamese)."""
        return format_decimal(value, locale=self.lang)

    def date(self, value: dt.date) -> str:
        """A date in the locale's long format: "27 tháng 11, 2026"."""
        return _long_date(value, self.lang)


@lru_cache(maxsize=4096)
def _long_date(value: dt.date, lang: Lang) -> str:
    """Babel's long date, remembered: a scan words thousands of messages over a few dates."""
    return format_date(value, "long", locale=lang)
