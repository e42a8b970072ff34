"""User-facing text: Babel gettext catalogs (Vietnamese first, English second) and formatting.

Message ids are English; ``locale/vi`` holds the Vietnamese text. The ``.po`` files are compiled
in memory when first used, so no build step is needed and the catalogs stay reviewable text; a
``.mo`` written beside its ``.po`` by ``write_compiled`` (the container image does) is read
instead unless the ``.po`` was changed after it.
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


def catalog_file(lang: Lang, directory: Path = LOCALE_DIR) -> Path:
    """The file ``lang``'s catalog is read from: its ``.mo`` if compiled since the ``.po``
    last changed, else the ``.po``."""
    po = directory / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    mo = po.with_suffix(".mo")
    if mo.is_file() and mo.stat().st_mtime >= po.stat().st_mtime:
        return mo
    return po


def compiled(po: Path, lang: Lang) -> bytes:
    """The ``.po`` file compiled to ``.mo`` bytes (fuzzy messages left out)."""
    with po.open("rb") as source:
        catalog = read_po(source, locale=lang)
    buffer = BytesIO()
    write_mo(buffer, catalog)
    return buffer.getvalue()


def write_compiled(directory: Path = LOCALE_DIR) -> None:
    """Write each language's ``.mo`` beside its ``.po``, read from then on."""
    for lang in LANGUAGES:
        po = directory / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
        po.with_suffix(".mo").write_bytes(compiled(po, lang))


@cache
def translations(lang: Lang) -> gettext.GNUTranslations:
    """The compiled catalog for ``lang``."""
    path = catalog_file(lang)
    data = path.read_bytes() if path.suffix == ".mo" else compiled(path, lang)
    return gettext.GNUTranslations(BytesIO(data))


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
