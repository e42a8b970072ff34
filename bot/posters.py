"""Printable A4 posters for the notice board, as PDF and PNG: one per procedure (what people
ask most, in large type, with QR codes to Telegram, Zalo and the procedure's web page), a
sheet of many procedures with a QR code each, and one for the whole service.

Every value is composed by the assistant the chat uses, so a poster says what the chat says.
A page is laid out once as positioned words, bars and QR codes (millimetres from the top left)
and then drawn twice, by fpdf2 (PDF with real text) and by Pillow (PNG), with the bundled
DejaVu fonts so Vietnamese diacritics render everywhere.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import segno
from fpdf import FPDF
from PIL import Image, ImageDraw, ImageFont

from bot.procedure_page import card_sections, procedure_path
from bot.settings import CommuneSettings, Settings
from bot.telegram import procedure_deep_link
from knowledge.answer import Assistant
from knowledge.i18n import DEFAULT_LANG, Lang, Text
from knowledge.match import Aspect
from knowledge.schema import Commune

FONTS = Path(__file__).resolve().parent / "fonts"
REGULAR, BOLD = FONTS / "DejaVuSans.ttf", FONTS / "DejaVuSans-Bold.ttf"
PAGE_WIDTH, PAGE_HEIGHT, MARGIN = 210.0, 297.0, 14.0  # A4, millimetres
PT = 25.4 / 72  # millimetres per typographic point
LEADING = 1.3  # line height in font sizes
PNG_DPI = 150
Colour = tuple[int, int, int]
INK: Colour = (17, 17, 17)
GREY: Colour = (80, 80, 80)
RED: Colour = (165, 14, 14)  # the web chat's colour
WHITE: Colour = (255, 255, 255)
# Tried in turn until the documents fit; at the smallest, the rest are left to the web page
# (readable from two steps away on a notice board).
DOCUMENT_SIZES = (15.0, 14.0, 13.0, 12.0)
NOTE_LINES = 3  # a fee's or time's note on a poster, at most; the web page has all of it
SHEET_COLUMNS, SHEET_ROWS = 2, 5


# --- what a page holds ------------------------------------------------------------------


@dataclass(frozen=True)
class Words:
    """One line of text; ``baseline`` from the page's top, sizes in points."""

    x: float
    baseline: float
    size: float
    text: str
    bold: bool = False
    colour: Colour = INK


@dataclass(frozen=True)
class Bar:
    """A filled rectangle."""

    x: float
    y: float
    width: float
    height: float
    colour: Colour = RED
    filled: bool = True


@dataclass(frozen=True)
class Code:
    """A QR code, quiet zone included, ``side`` millimetres square."""

    x: float
    y: float
    side: float
    url: str


Item = Words | Bar | Code


@dataclass
class Page:
    """One A4 page."""

    items: list[Item] = field(default_factory=list)


# --- text measure and flow ----------------------------------------------------------------


@functools.cache
def _font(bold: bool, pixels: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(BOLD if bold else REGULAR), pixels)


def text_width(text: str, size: float, bold: bool = False) -> float:
    """Width in millimetres of ``text`` set at ``size`` points."""
    return _font(bold, 1000).getlength(text) * size / 1000 * PT


def wrap(text: str, size: float, width: float, bold: bool = False) -> list[str]:
    """``text`` broken into lines no wider than ``width`` mm (a long address by characters)."""
    width -= 1.0  # hinting at the drawn size can make a line a little wider than measured
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split():
            candidate = f"{line} {word}" if line else word
            if text_width(candidate, size, bold) <= width:
                line = candidate
                continue
            if line:
                lines.append(line)
            while text_width(word, size, bold) > width:
                cut = max(n for n in range(1, len(word) + 1)
                          if n == 1 or text_width(word[:n], size, bold) <= width)
                lines.append(word[:cut])
                word = word[cut:]
            line = word
        lines.append(line)
    return lines


class Column:
    """Text flowing down a column of a page from ``y``."""

    def __init__(self, page: Page, x: float, y: float, width: float) -> None:
        self.page, self.x, self.y, self.width = page, x, y, width

    def text(self, text: str, size: float, *, bold: bool = False, colour: Colour = INK,
             indent: float = 0.0, max_lines: int = 0) -> None:
        """Add ``text`` wrapped to the column; continuation lines start ``indent`` mm in;
        at most ``max_lines`` lines (0: all), the last one ending in "…" when cut."""
        lines: list[tuple[float, str]] = []
        for paragraph in text.split("\n"):
            first, *rest = wrap(paragraph, size, self.width, bold)
            lines.append((0.0, first))
            if rest:
                lines += [(indent, line) for line in
                          wrap(" ".join(rest), size, self.width - indent, bold)]
        if max_lines and len(lines) > max_lines:
            shift, last = lines[max_lines - 1]
            lines = [*lines[:max_lines - 1], (shift, self._ellipsis(last, size, bold))]
        for shift, line in lines:
            self.y += size * PT * LEADING
            self.page.items.append(Words(self.x + shift, self.y - size * PT * 0.3, size, line,
                                         bold, colour))

    def _ellipsis(self, line: str, size: float, bold: bool) -> str:
        while line and text_width(line + " …", size, bold) > self.width:
            line = line.rsplit(" ", 1)[0] if " " in line else line[:-1]
        return line + " …"

    def space(self, mm: float) -> None:
        """Leave ``mm`` millimetres blank."""
        self.y += mm


def _centred(page: Page, text: str, size: float, y: float, *, bold: bool = False,
             colour: Colour = INK, x: float = 0.0, width: float = PAGE_WIDTH) -> None:
    """One line centred between ``x`` and ``x + width``, its baseline at ``y``."""
    page.items.append(Words(x + (width - text_width(text, size, bold)) / 2, y, size, text,
                            bold, colour))


# --- links --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Links:
    """Where the QR codes point; an empty setting leaves its code out."""

    telegram_bot: str = ""  # the bot's username, without @
    zalo_oa: str = ""  # the Official Account's id
    base_url: str = ""  # the public address of the web chat, without a trailing /

    @classmethod
    def from_settings(cls, settings: Settings, served: CommuneSettings, commune: Commune
                      ) -> Links:
        """The served commune's links, else those of its profile; its pages are under
        ``/c/<slug>`` (the first commune's at the root paths)."""
        base = settings.public_base_url.strip().rstrip("/")
        first = served.slug == settings.communes[0].slug
        return cls(telegram_bot=(served.telegram_bot_username or commune.telegram_bot)
                   .strip().lstrip("@"),
                   zalo_oa=(served.zalo_oa_id or commune.zalo_oa).strip(),
                   base_url=base if first or not base else base + served.path)

    def telegram(self, code: str = "") -> str:
        """The bot, opening ``code``'s card when given (``/start p_1_001193``)."""
        if not self.telegram_bot:
            return ""
        start = f"?start={procedure_deep_link(code)}" if code else ""
        return f"https://t.me/{self.telegram_bot}{start}"

    def zalo(self) -> str:
        """The Official Account's page in Zalo."""
        return f"https://zalo.me/{self.zalo_oa}" if self.zalo_oa else ""

    def web(self, code: str = "") -> str:
        """``code``'s web page, or the web chat."""
        if not self.base_url:
            return ""
        return self.base_url + (procedure_path(code) if code else "/")

    def missing(self) -> list[str]:
        """What is left off the posters, each naming the variable to set."""
        notes = []
        if not self.telegram_bot:
            notes.append("TELEGRAM_BOT_USERNAME is not set: the posters have no Telegram code")
        if not self.zalo_oa:
            notes.append("ZALO_OA_ID is not set: the posters have no Zalo code")
        if not self.base_url:
            notes.append("PUBLIC_BASE_URL is not set: the posters have no web code, and the "
                         "notice-board sheet is not made")
        return notes


# --- the pages ----------------------------------------------------------------------------


def _header(page: Page, text: str) -> float:
    """The red band at the top with ``text``; returns where the content starts."""
    page.items.append(Bar(0, 0, PAGE_WIDTH, 22))
    _centred(page, text, 17, 14, bold=True, colour=WHITE)
    return 22 + 8


def _codes(page: Page, codes: Sequence[tuple[str, str]], top: float, side: float) -> None:
    """QR codes (url, caption) side by side from ``top``, each captioned below; empty urls
    are left out."""
    shown = [(url, caption) for url, caption in codes if url]
    if not shown:
        return
    gap = (PAGE_WIDTH - 2 * MARGIN - len(shown) * side) / (len(shown) + 1)
    for i, (url, caption) in enumerate(shown):
        x = MARGIN + gap + i * (side + gap)
        page.items.append(Code(x, top, side, url))
        _centred(page, caption, 13, top + side + 4, bold=True, x=x, width=side)


@dataclass(frozen=True)
class Facts:
    """What a procedure's poster says, composed as the chat composes it."""

    code: str
    short_name: str
    official: str  # "" when the everyday name is the official one
    documents_label: str
    documents: list[str]
    fee_label: str
    fee: str
    fee_notes: list[str]
    time_label: str
    time: str
    time_notes: list[str]
    source: str


def facts(assistant: Assistant, code: str, lang: Lang = DEFAULT_LANG) -> Facts:
    """The poster's values for ``code``: the card's sections, fee and time without their
    notes in large type, the notes apart."""
    proc, t = assistant.kb.procedures[code], Text(lang)
    _, sections, _ = card_sections(assistant, code, lang)
    official = assistant.name(code, t)
    short = assistant.short_name(code, t)
    return Facts(
        code=code, short_name=short, official="" if official == short else official,
        documents_label=sections[Aspect.DOCUMENTS][0],
        documents=sections[Aspect.DOCUMENTS][1].split("\n"),
        fee_label=sections[Aspect.FEE][0],
        fee=Assistant.per_method(proc, assistant.fee_text, t, notes=0),
        fee_notes=assistant.notes_of(proc, assistant.fee_text, t),
        time_label=sections[Aspect.TIME][0],
        time=Assistant.per_method(proc, assistant.time_text, t, notes=0),
        time_notes=assistant.notes_of(proc, assistant.time_text, t),
        source=assistant.source_line(proc, t),
    )


def _procedure_page(assistant: Assistant, about: Facts, links: Links, t: Text,
                    documents_size: float, documents_shown: int) -> tuple[Page, bool]:
    """The poster at one documents size; whether everything fits above the QR codes."""
    page = Page()
    commune = assistant.kb.commune.name
    desk = t("the one-stop desk of {commune}", commune=commune)
    column = Column(page, MARGIN, _header(page, desk[:1].upper() + desk[1:]),
                    PAGE_WIDTH - 2 * MARGIN)
    column.text(about.short_name, 30, bold=True, max_lines=3)
    if about.official:
        column.text(t("Official name: {name}", name=about.official), 11, colour=GREY,
                    max_lines=3)
    column.text(t("National code: {code}", code=about.code), 11, colour=GREY)
    for label, value, notes in ((about.fee_label, about.fee, about.fee_notes),
                                (about.time_label, about.time, about.time_notes)):
        column.space(4)
        if "\n" in value:  # one line per way of submitting
            column.text(f"{label}:", 20, bold=True)
            column.text(value, 16, bold=True, indent=4)
        else:
            column.text(f"{label}: {value}", 20, bold=True, indent=8)
        if notes:
            column.text(f"({' '.join(notes)})", 10, colour=GREY, max_lines=NOTE_LINES)
    column.space(5)
    column.text(about.documents_label, 18, bold=True, colour=RED)
    for line in about.documents[:documents_shown]:
        column.space(documents_size * PT * 0.25)
        column.text(line, documents_size, indent=6)
    left = len(about.documents) - documents_shown
    if left:
        column.text(t("… and {n} more: scan a code below for the full list", n=left),
                    documents_size, bold=True)
    side = 44.0
    top = PAGE_HEIGHT - MARGIN - 10 - side - 8
    fits = column.y + 4 <= top - 12
    _centred(page, t("Scan a code to ask the digital assistant of {commune}", commune=commune),
             13, top - 4, bold=True, colour=RED)
    _codes(page, [(links.telegram(about.code), "Telegram"), (links.zalo(), "Zalo"),
                  (links.web(about.code), t("This procedure on the web"))], top, side)
    _centred(page, about.source, 8.5, PAGE_HEIGHT - MARGIN, colour=GREY)
    return page, fits


def procedure_poster(assistant: Assistant, code: str, links: Links,
                     lang: Lang = DEFAULT_LANG) -> Page:
    """A procedure's poster: the largest documents size at which the whole list fits, else
    as many documents as fit at the smallest, with a pointer to the rest."""
    about, t = facts(assistant, code, lang), Text(lang)
    for size in DOCUMENT_SIZES:
        page, fits = _procedure_page(assistant, about, links, t, size, len(about.documents))
        if fits:
            return page
    for shown in range(len(about.documents) - 1, -1, -1):
        page, fits = _procedure_page(assistant, about, links, t, DOCUMENT_SIZES[-1], shown)
        if fits:
            return page
    return page


def _chunks(codes: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(codes), size):
        yield codes[start:start + size]


def notice_sheet(assistant: Assistant, codes: Sequence[str], links: Links,
                 lang: Lang = DEFAULT_LANG) -> list[Page]:
    """Pages of procedures, ten to a page: each its everyday name and a QR code to its web
    page."""
    t = Text(lang)
    pages = []
    cell_width = (PAGE_WIDTH - 2 * MARGIN) / SHEET_COLUMNS
    for chunk in _chunks(codes, SHEET_COLUMNS * SHEET_ROWS):
        page = Page()
        top = _header(page, assistant.kb.commune.name.upper())
        _centred(page, t("Scan a code to see a procedure's documents, fee and processing time"),
                 12, top, bold=True, colour=RED)
        top += 6
        cell_height = (PAGE_HEIGHT - MARGIN - top) / SHEET_ROWS
        side = min(cell_height - 6, 42.0)
        for i, code in enumerate(chunk):
            x = MARGIN + (i % SHEET_COLUMNS) * cell_width
            y = top + (i // SHEET_COLUMNS) * cell_height
            page.items.append(Bar(x + 1, y + 1, cell_width - 2, cell_height - 2, GREY,
                                  filled=False))
            page.items.append(Code(x + 3, y + (cell_height - side) / 2, side, links.web(code)))
            column = Column(page, x + side + 5, y + 4, cell_width - side - 9)
            column.text(assistant.short_name(code, t), 12, bold=True, max_lines=5)
            column.text(t("National code: {code}", code=code), 9, colour=GREY)
        pages.append(page)
    return pages


def service_poster(assistant: Assistant, links: Links, lang: Lang = DEFAULT_LANG) -> Page:
    """The whole service: the commune, its desk's contact details, what the assistant does,
    and QR codes to Telegram, Zalo and the web chat."""
    t, commune = Text(lang), assistant.kb.commune
    page = Page()
    column = Column(page, MARGIN, _header(page, t("Digital assistant of the one-stop desk")),
                    PAGE_WIDTH - 2 * MARGIN)
    column.text(commune.name, 36, bold=True, max_lines=2)
    column.text(commune.province, 16, colour=GREY)
    column.space(8)
    for line in (t("Documents, fee, processing time and where to submit, for every procedure"),
                 t("Look up your application with its receipt code"),
                 t("Contact staff")):
        column.space(2)
        column.text(f"• {line}", 18, indent=6)
    column.space(8)
    hours = commune.hours_en if lang == "en" and commune.hours_en else commune.hours
    support = commune.support_line_en if lang == "en" and commune.support_line_en \
        else commune.support_line
    details = [t("address: {address}", address=commune.address) if commune.address else "",
               t("opening hours: {hours}", hours=hours) if hours else "",
               t("phone: {phone}", phone=commune.hotline) if commune.hotline else "",
               t("Help line: {support}", support=support) if support and not commune.hotline
               else "",
               t("Website: {url}", url=commune.website) if commune.website else ""]
    for line in filter(None, details):
        column.space(1.5)
        column.text(line[:1].upper() + line[1:], 13, indent=6)
    side = 58.0
    top = PAGE_HEIGHT - MARGIN - side - 8
    _centred(page, t("Scan a code to ask the digital assistant of {commune}",
                     commune=commune.name), 14, top - 6, bold=True, colour=RED)
    _codes(page, [(links.telegram(), "Telegram"), (links.zalo(), "Zalo"),
                  (links.web(), t("Web chat"))], top, side)
    return page


# --- drawing ------------------------------------------------------------------------------


@functools.cache
def _modules(url: str) -> tuple[tuple[bool, ...], ...]:
    """The QR code of ``url`` as rows of dark modules, with a quiet zone of four."""
    qr = segno.make_qr(url, error="m")
    return tuple(tuple(bool(v) for v in row) for row in qr.matrix_iter(scale=1, border=4))


def _dark_runs(code: Code) -> Iterator[tuple[float, float, float, float]]:
    """(x, y, width, height) in mm of each horizontal run of dark modules."""
    rows = _modules(code.url)
    module = code.side / len(rows)
    for r, row in enumerate(rows):
        start = None
        for c, dark in enumerate((*row, False)):
            if dark and start is None:
                start = c
            elif not dark and start is not None:
                yield (code.x + start * module, code.y + r * module, (c - start) * module,
                       module)
                start = None


def _text(value: str) -> str:
    return unicodedata.normalize("NFC", value)


def write_pdf(pages: Sequence[Page], path: Path, title: str = "") -> None:
    """Write ``pages`` as one PDF file."""
    path.write_bytes(pdf_bytes(pages, title))


def pdf_bytes(pages: Sequence[Page], title: str = "") -> bytes:
    """``pages`` as one PDF, text as text (searchable, sharp when printed)."""
    pdf = FPDF(unit="mm", format="A4")
    pdf.set_auto_page_break(False)
    pdf.set_margins(0, 0, 0)
    pdf.add_font("DejaVu", "", str(REGULAR))
    pdf.add_font("DejaVu", "B", str(BOLD))
    pdf.set_title(_text(title))
    for page in pages:
        pdf.add_page()
        for item in page.items:
            if isinstance(item, Words):
                pdf.set_font("DejaVu", "B" if item.bold else "", item.size)
                pdf.set_text_color(*item.colour)
                pdf.text(item.x, item.baseline, _text(item.text))
            elif isinstance(item, Bar):
                if item.filled:
                    pdf.set_fill_color(*item.colour)
                else:
                    pdf.set_draw_color(*item.colour)
                    pdf.set_line_width(0.3)
                pdf.rect(item.x, item.y, item.width, item.height,
                         style="F" if item.filled else "D")
            else:
                pdf.set_fill_color(0, 0, 0)
                for x, y, width, height in _dark_runs(item):
                    pdf.rect(x, y, width, height, style="F")
    return bytes(pdf.output())


def render_png(page: Page, dpi: int = PNG_DPI) -> Image.Image:
    """``page`` drawn as an image at ``dpi`` dots per inch."""
    scale = dpi / 25.4

    def px(mm: float) -> int:
        return round(mm * scale)

    image = Image.new("RGB", (px(PAGE_WIDTH), px(PAGE_HEIGHT)), WHITE)
    draw = ImageDraw.Draw(image)
    for item in page.items:
        if isinstance(item, Words):
            draw.text((item.x * scale, item.baseline * scale), _text(item.text),
                      font=_font(item.bold, round(item.size * dpi / 72)), fill=item.colour,
                      anchor="ls")
        elif isinstance(item, Bar):
            box = (px(item.x), px(item.y), px(item.x + item.width) - 1,
                   px(item.y + item.height) - 1)
            if item.filled:
                draw.rectangle(box, fill=item.colour)
            else:
                draw.rectangle(box, outline=item.colour, width=max(1, px(0.3)))
        else:
            for x, y, width, height in _dark_runs(item):
                draw.rectangle((px(x), px(y), px(x + width) - 1, px(y + height) - 1),
                               fill=(0, 0, 0))
    return image


def save(pages: Sequence[Page], stem: Path, title: str = "") -> list[Path]:
    """``stem``.pdf and a PNG per page (``stem``.png, or ``stem``-1.png …); the paths."""
    pdf = stem.with_name(f"{stem.name}.pdf")  # "thu-tuc-1.001193" has a dot already
    write_pdf(pages, pdf, title)
    written = [pdf]
    for i, page in enumerate(pages, 1):
        png = stem.with_name(f"{stem.name}-{i}.png" if len(pages) > 1 else f"{stem.name}.png")
        render_png(page).save(png, dpi=(PNG_DPI, PNG_DPI))
        written.append(png)
    return written


def make_posters(assistant: Assistant, links: Links, out: Path, codes: Sequence[str],
                 lang: Lang = DEFAULT_LANG) -> list[Path]:
    """Every poster into ``out``: ``thu-tuc-<code>`` per procedure, ``bang-tin`` (the
    notice-board sheet, when the web address is known) and ``dich-vu`` (the service)."""
    out.mkdir(parents=True, exist_ok=True)
    t = Text(lang)
    written = []
    for code in codes:
        written += save([procedure_poster(assistant, code, links, lang)],
                        out / f"thu-tuc-{code}", assistant.short_name(code, t))
    if links.base_url and codes:
        written += save(notice_sheet(assistant, codes, links, lang), out / "bang-tin",
                        assistant.kb.commune.name)
    written += save([service_poster(assistant, links, lang)], out / "dich-vu",
                    assistant.kb.commune.name)
    return written
