"""Importing procedure records exported from the National Public Service Portal.

The portal (dichvucong.gov.vn) publishes each procedure as flattened tables: cell texts glued
together with no separator. This module recovers what can be recovered with certainty and
marks everything else as unconfirmed, keeping the portal's own words, so an answer built
from an imported entry never states a fee or a time the portal did not state.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from knowledge.loader import KnowledgeError, validate
from knowledge.schema import CODE_PATTERN, Channel, FeeStatus, Procedure, TimeUnit

# The day the shipped export was crawled: imported facts are as of this date.
DEFAULT_FACTS_DATE = dt.date(2026, 7, 17)

NO_INFO = "Không có thông tin"
IMPORT_NOTE = (
    "Nhập tự động từ Cổng Dịch vụ công quốc gia; chi tiết cần đối chiếu với bộ phận một cửa."
)
FALLBACK_URL = (
    "https://dichvucong.gov.vn/p/home/dvc-tthc-thu-tuc-hanh-chinh-chi-tiet.html?ma_thu_tuc={code}"
)

# Long portal texts are cut so that an answer quoting them stays readable.
MAX_NAME = 300
MAX_NOTE = 1000


class PortalRecordError(KnowledgeError):
    """A portal record that cannot become a procedure entry."""


@dataclass
class PortalImport:
    """The result of reading an export: the entries that parsed and one line per problem."""

    procedures: list[Procedure] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Small text helpers


def _clean(text: str) -> str:
    """Collapse runs of whitespace (the portal keeps tabs and line breaks from its HTML)."""
    return re.sub(r"\s+", " ", text).strip()


def _cut(text: str, limit: int) -> str:
    """Shorten ``text`` to about ``limit`` characters at a word boundary."""
    text = _clean(text)
    if len(text) <= limit:
        return text
    head = text[:limit].rsplit(" ", 1)[0] or text[:limit]
    return head.rstrip(" ,;:-") + "…"


def _informative(text: str) -> str:
    """The text, or "" when the portal says it has nothing ("Không có thông tin")."""
    text = _clean(text)
    return "" if text.casefold() in {NO_INFO.casefold(), "không"} else text


def _field(record: dict[str, object], key: str) -> str:
    """One text field of a record; a missing or null field is empty."""
    value = record.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise PortalRecordError(f"{key}: expected text, got {type(value).__name__}")
    return value.strip()


# ---------------------------------------------------------------------------------------------
# Submission methods (cach_thuc_thuc_hien)

METHODS_HEADER = "Hình thức nộpThời gianPhí, lệ phíMô tả"
CHANNELS = {
    "Trực tiếp": Channel.IN_PERSON,
    "Trực tuyến": Channel.ONLINE,
    "Dịch vụ bưu chính": Channel.POST,
}
_CHANNEL_WORD = re.compile("|".join(CHANNELS))

_TIME = re.compile(r"(\d+(?:[.,]\d+)?)\s*(Ngày làm việc|Ngày|Giờ|Tháng|Năm|Phút)?", re.IGNORECASE)
_UNITS = {"ngày làm việc": TimeUnit.WORKING_DAYS, "ngày": TimeUnit.DAYS, "giờ": TimeUnit.HOURS}

# The cells that can open the fee column. "Không" alone counts only when glued to what
# follows, because "Không phải trả kết quả…" is a free-text time, not a fee.
_AMOUNT = r"(\d{1,3}(?:,\d{3})+|\d+)\s*(Việt Nam Đồng|VNĐ|USD)"
_FEE_START = re.compile(rf"Miễn phí|{NO_INFO}|{_AMOUNT}|(?:Lệ phí|Phí)\s*:|Không(?=$|[(A-ZĐ])")
# A bare number glued to an amount: "Trực tuyến120 VNĐ" is time "1" + fee "20 VNĐ" or not.
_GLUED_AMOUNT = re.compile(r"(\d+(?:,\d{3})*)\s*(Việt Nam Đồng|VNĐ|USD)")
_LABELLED_FEE = re.compile(r"(?:Lệ phí|Phí)\s*:\s*(\d[\d.,]*)?\s*(?:Việt Nam Đồng|VNĐ|Đồng)?")

# Amounts written inside a fee note: "10.000 đồng", "2.000.000/lần", "20.000Đ", "50000 đồng",
# "02 triệu đồng". Numbers in "Thông tư 64/2025" or dates are not amounts.
_NOTE_AMOUNT = re.compile(
    r"(?<![\d/.,])(?:(\d{1,3}(?:[.,]\d{3})+)(?=\s*(?:đồng|Đồng|đ|Đ|vnđ|VNĐ|/))"
    r"|(\d{4,})(?=\s*(?:đồng|Đồng|vnđ|VNĐ|/))"
    r"|(\d+)(?=\s*(?:đồng|Đồng|vnđ|VNĐ)\b)"
    r"|(\d+(?:[.,]\d+)?)\s*triệu)"
)
_COUNCIL = re.compile(r"Hội đồng nhân dân|HĐND", re.IGNORECASE)
_PROVINCE_COMMITTEE = re.compile(
    r"(Ủy|Uỷ) ban nhân dân (cấp )?tỉnh|UBND (cấp )?tỉnh", re.IGNORECASE
)
# Notes that only restate "no fee"; anything else next to "Miễn phí" may hide a real fee.
_PLAIN_FREE = re.compile(
    r"(không|không có|không quy định|không thu( lệ phí| phí)?|miễn( phí| lệ phí)?"
    r"|không phải nộp( phí| lệ phí)?)"
    r"\.?",
    re.IGNORECASE,
)
_MENTIONS_TIME = re.compile(r"\b(ngày|giờ|thời hạn)\b", re.IGNORECASE)


@dataclass
class _Time:
    value: float | None = None
    unit: TimeUnit | None = None
    note: str = ""
    confirmed: bool = False


@dataclass
class _Fee:
    status: FeeStatus = FeeStatus.NOT_PUBLISHED
    vnd: int | None = None
    note: str = ""
    confirmed: bool = False


def _method_rows(text: str) -> Iterator[tuple[Channel, str]]:
    """Split the flattened table into (channel, rest of the row) pairs.

    A row starts with a channel name glued to the next cell (a digit or a capital letter);
    the same words inside a description are followed by a space or lower-case text.
    """
    if text.startswith(METHODS_HEADER):
        text = text[len(METHODS_HEADER) :]
    starts = [
        m
        for m in _CHANNEL_WORD.finditer(text)
        if m.end() < len(text) and (text[m.end()].isdigit() or text[m.end()].isupper())
    ]
    for i, m in enumerate(starts):
        end = starts[i + 1].start() if i + 1 < len(starts) else len(text)
        yield CHANNELS[m.group(0)], text[m.end() : end]


def _split_time(row: str) -> tuple[_Time, str]:
    """Read the time cell at the start of a row; return it with the rest of the row."""
    m = _TIME.match(row)
    if m:
        number = float(m.group(1).replace(",", "."))
        unit_text = (m.group(2) or "").casefold()
        rest = row[m.end() :]
        raw = _clean(m.group(0))
        if number <= 0:
            return _Time(note=raw), rest
        if not unit_text:
            note = f'Cổng chỉ ghi "{raw}", không ghi đơn vị thời gian.'
            return _Time(number, TimeUnit.UNSPECIFIED, note, confirmed=False), rest
        if unit_text in _UNITS:
            return _Time(number, _UNITS[unit_text], confirmed=True), rest
        # Months, years, minutes: the schema has no such unit, so keep the words.
        return _Time(note=raw), rest
    first = _FEE_START.match(row)
    if first:
        after = row[first.end() :]
        if _FEE_START.match(after):
            # "KhôngMiễn phí", "Không có thông tinMiễn phí": the first cell is the time.
            return _Time(note=_informative(first.group(0))), after
        return _Time(), row  # no time cell
    nxt = _FEE_START.search(row)
    if nxt:
        # Free-text time ("Không quy định", "Không phải trả kết quả…") up to the fee cell.
        return _Time(note=_cut(_informative(row[: nxt.start()]), MAX_NOTE)), row[nxt.start() :]
    return _Time(note=_cut(row, MAX_NOTE)), ""


def _paren(text: str) -> tuple[str, str]:
    """Split a leading "(...)" (nested parentheses allowed) from the rest of ``text``."""
    if not text.startswith("("):
        return "", text
    depth = 0
    for i, ch in enumerate(text):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth == 0:
            return text[1:i], text[i + 1 :]
    return text[1:], ""  # the portal cut the note short; it runs to the end of the row


def _note_amounts(note: str) -> set[int]:
    """Money amounts written in a fee note, as integers."""
    amounts = set()
    for m in _NOTE_AMOUNT.finditer(note):
        if m.group(4):
            amounts.add(round(float(m.group(4).replace(",", ".")) * 1_000_000))
        else:
            amounts.add(int(re.sub(r"[.,]", "", m.group(1) or m.group(2) or m.group(3))))
    return amounts


def _fee_from_amount(vnd: int, currency: str, raw: str, note: str) -> _Fee:
    """Interpret a published amount, confirming it only when nothing contradicts it."""
    if currency == "USD":
        # The schema holds VND only; converting would invent a figure.
        return _Fee(note=f"Cổng ghi phí bằng ngoại tệ: {raw}")
    if vnd < 1000:
        # Fees under 1,000 VND do not exist in practice: the portal dropped the thousands
        # ("120 VNĐ(20.000 vnđ/tờ khai)"), so the real figure is uncertain.
        return _Fee(note=f"Cổng ghi {raw}; số tiền có thể thiếu hàng nghìn.")
    if _COUNCIL.search(note):
        # An amount "set by the provincial council": the figure varies by province.
        return _Fee(FeeStatus.PROVINCE, note=raw)
    amounts = _note_amounts(note)
    return _Fee(FeeStatus.AMOUNT, vnd, _cut(note, MAX_NOTE), not amounts or vnd in amounts)


def _parse_fee(cell: str) -> tuple[_Fee, str]:
    """Read the fee cell at the start of ``cell``; return it with the description after it."""
    m = _FEE_START.match(cell)
    if not m:
        return _Fee(note=_cut(f"Cổng ghi: {cell}", MAX_NOTE) if cell.strip() else ""), ""
    head = m.group(0)
    note, rest = _paren(cell[m.end() :])
    note = _clean(note)
    raw = _cut(f"{head} ({note})" if note else head, MAX_NOTE)
    both = f"{head} {note}"
    if m.group(1):
        return _fee_from_amount(int(m.group(1).replace(",", "")), m.group(2), raw, note), rest
    if head.startswith(("Lệ phí", "Phí")):
        # "Phí : 50000 Đồng …": an amount may follow the label, or only words.
        labelled = _LABELLED_FEE.match(cell)
        digits = labelled.group(1) if labelled else None
        tail = _clean(cell[labelled.end() :] if labelled else cell[m.end() :])
        raw = _cut(cell, MAX_NOTE)
        if digits:
            return _fee_from_amount(int(re.sub(r"[.,]", "", digits)), "VNĐ", raw, tail), ""
        if re.match(r"(Không thu|Miễn)", tail, re.IGNORECASE):
            return _Fee(FeeStatus.FREE, note=tail, confirmed=True), ""
        return _Fee(note=f"Cổng ghi: {raw}"), ""
    if _COUNCIL.search(both):
        # "Mức lệ phí … do Hội đồng nhân dân cấp tỉnh quyết định": varies by province.
        return _Fee(FeeStatus.PROVINCE, note=_cut(note, MAX_NOTE), confirmed=True), rest
    if _PROVINCE_COMMITTEE.search(both):
        # The provincial committee is named rather than the council: likely the same
        # provincial fee, but the portal does not say so exactly.
        return _Fee(FeeStatus.PROVINCE, note=_cut(note, MAX_NOTE)), rest
    if head == NO_INFO:
        return _Fee(FeeStatus.NOT_PUBLISHED, note=_cut(note, MAX_NOTE), confirmed=True), rest
    # "Miễn phí" or "Không": free, unless the note names amounts or rules for a fee.
    if not note or _PLAIN_FREE.fullmatch(note):
        return _Fee(FeeStatus.FREE, note=note, confirmed=True), rest
    return _Fee(FeeStatus.FREE, note=_cut(note, MAX_NOTE)), rest


def _split_glued(row: str) -> tuple[_Time, _Fee, str] | None:
    """Split "120,000 VNĐ" (a bare time glued to an amount) when only one split is valid."""
    m = _GLUED_AMOUNT.match(row)
    if not m:
        return None
    digits, currency = m.group(1), m.group(2)
    note, rest = _paren(row[m.end() :])
    note = _clean(note)
    raw = _cut(f"{m.group(0)} ({note})" if note else m.group(0), MAX_NOTE)
    # Every way to cut the digits into a time and an amount, neither with a leading zero.
    splits = []
    for i in range(1, len(digits)):
        time_part, fee_part = digits[:i], digits[i:]
        if "," in time_part or fee_part[0] in "0,":
            continue
        if "," in fee_part and not re.fullmatch(r"\d{1,3}(?:,\d{3})+", fee_part):
            continue
        splits.append((int(time_part), int(fee_part.replace(",", ""))))
    time_note = f'Cổng ghi thời gian và phí liền nhau: "{m.group(0)}".'
    if len(splits) != 1:
        return _Time(note=time_note), _Fee(note=f"Cổng ghi: {raw}"), rest
    value, vnd = splits[0]
    time = _Time(float(value), TimeUnit.UNSPECIFIED, time_note, confirmed=False)
    fee = _fee_from_amount(vnd, currency, raw, note)
    # The split itself is an inference: confirm the fee only if the note repeats it.
    if fee.status is FeeStatus.AMOUNT and vnd not in _note_amounts(note):
        fee = _Fee(FeeStatus.AMOUNT, vnd, _cut(note, MAX_NOTE), confirmed=False)
    return time, fee, rest


def _parse_row(row: str) -> tuple[_Time, _Fee]:
    """Parse one row (after its channel name) into a time and a fee."""
    glued = _split_glued(row)
    if glued:
        return glued[0], glued[1]
    time, rest = _split_time(row)
    fee, description = _parse_fee(rest)
    if time.value is None and not time.note and _MENTIONS_TIME.search(description):
        # The time cell is empty but the description often states the time in words.
        time.note = _cut(f"Mô tả trên Cổng: {description}", MAX_NAME)
    return time, fee


def parse_methods(text: str) -> list[dict[str, Any]]:
    """Parse ``cach_thuc_thuc_hien`` into method dicts (one per channel, first row wins)."""
    methods: dict[Channel, dict[str, Any]] = {}
    for channel, row in _method_rows(text):
        if channel in methods:
            continue  # a repeated row inside a description; the table row came first
        time, fee = _parse_row(row)
        methods[channel] = {
            "channel": channel,
            "time_value": time.value,
            "time_unit": time.unit,
            "time_note": time.note,
            "time_confirmed": time.confirmed,
            "fee_status": fee.status,
            "fee_vnd": fee.vnd,
            "fee_note": fee.note,
            "fee_confirmed": fee.confirmed,
        }
    if methods:
        return list(methods.values())
    # Nothing parseable: one unconfirmed method per channel the text mentions, so the entry
    # still loads and the answer says the time and fee are unknown.
    body = text.removeprefix(METHODS_HEADER)
    found = {CHANNELS[k] for k in CHANNELS if k.casefold() in body.casefold()}
    channels = [c for c in Channel if c in found] or [Channel.IN_PERSON]
    note = _cut(_informative(body), MAX_NOTE)
    return [
        {
            "channel": channel,
            "time_note": note,
            "time_confirmed": False,
            "fee_status": FeeStatus.NOT_PUBLISHED,
            "fee_note": note,
            "fee_confirmed": False,
        }
        for channel in channels
    ]


# ---------------------------------------------------------------------------------------------
# Documents (thanh_phan_ho_so)

DOCUMENTS_HEADER = "Tên giấy tờMẫu đơn, tờ khaiSố lượng"
# The "Số lượng" cell, glued to the document name (a spaced "… nộp 01 bản chính" belongs to
# the name). Digits glued before the count are the end of the name ("Mẫu số 181 bản chính").
_COUNT = re.compile(r"(?<=[^\s(])(\d+) bản (chính|sao)(?:,\s*(\d+) bản sao)?")
_TEMPLATE_EXT = re.compile(r"\.(?:docx?|pdf|xlsx?|rar|zip|odt|rtf)$", re.IGNORECASE)


def _strip_template(name: str) -> str:
    """Drop template file names the portal glues to a document name ("…;Mẫu số 16.docx")."""
    while m := _TEMPLATE_EXT.search(name):
        body = name[: m.start()]
        window = max(0, len(body) - 80)
        cut = max(body.rfind(";", window), body.rfind(")", window))
        if cut >= 0:
            body = body[: cut + 1]
        else:
            # Where a lower-case word runs into a capital ("…đầu tưMẫu I.1.9"), the file begins.
            glue = re.search(r"(?<=[a-zà-ỹđ.])(?=[A-ZĐ0-9])", body[window:])
            if not glue or window + glue.start() == 0:
                return name  # cannot tell where the file name starts; keep it
            body = body[: window + glue.start()]
        name = body.rstrip()
    return name


def _document_count(digits: str) -> tuple[str, int]:
    """Split a glued digit run into the end of the name and the count (counts are 0-9)."""
    if len(digits) > 1:
        return digits[:-1], int(digits[-1])
    return "", int(digits)


def parse_documents(text: str) -> list[dict[str, Any]]:
    """Parse ``thanh_phan_ho_so`` into document dicts, best effort."""
    groups = text.split(DOCUMENTS_HEADER)
    heading = groups[0]
    documents: list[dict[str, Any]] = []
    for group in groups[1:]:
        present_only = "xuất trình" in heading.casefold()
        when = _clean(heading).strip("-*: ")
        if re.fullmatch(r"(giấy tờ phải (nộp|xuất trình)|thành phần hồ sơ)", when, re.IGNORECASE):
            when = ""  # the heading names the group, not a condition
        pos = 0
        if when.casefold().startswith("lưu ý"):
            # A "Lưu ý" (notes) table lists remarks with "0 bản chính", not papers.
            counts = list(_COUNT.finditer(group))
            heading = group[counts[-1].end() :] if counts else ""
            continue
        for m in _COUNT.finditer(group):
            name_tail, first = _document_count(m.group(1))
            name = _strip_template(_clean(group[pos : m.start()] + name_tail))
            name = _cut(name.strip("-+ ;,"), MAX_NAME)
            pos = m.end()
            if not name:
                continue
            originals, copies = (first, 0) if m.group(2) == "chính" else (0, first)
            if m.group(3) is not None:
                copies = int(m.group(3)[-1]) if len(m.group(3)) > 1 else int(m.group(3))
            doc: dict[str, Any] = {"name": name, "originals": originals, "copies": copies}
            if when:
                doc["when"] = _cut(when, MAX_NAME)
            if present_only:
                doc["present_only"] = True
            documents.append(doc)
        heading = group[pos:]  # the text after the last count heads the next group
    return documents


# ---------------------------------------------------------------------------------------------
# Legal basis (can_cu_phap_ly)

LEGAL_HEADER = "Tên văn bản pháp lýMã văn bản"
# 60/2014/QH13, 123/2015/NĐ-CP, 24/2021/QĐ-TTg, 2353/QĐ-BTC, 09/2015/TTLT-BCA-BYT-BTC,
# 66.7/2025/NQ-CP, 9354/QĐ-BCA-C06, and the old style 73-CP. The cells are glued, so a part
# must stop where the next cell starts: "QH" takes exactly two digits ("…QH1354/2014/QH13" is
# two numbers) and a part takes two digits only when no number follows ("BCA-C06", but
# "TT-BTC46/2024/…"). A capital that begins the next title is given back by ``_legal_numbers``.
_LEGAL_PART = r"(?:QH\d{2}|TTg|[A-ZĐ]+(?:\d{2}(?![\d/]))?)"
_LEGAL_NUMBER = re.compile(
    rf"(?<!/)(?:\d{{1,5}}(?:\.\d{{1,3}})?(?:/\d{{4}})?/{_LEGAL_PART}(?:-{_LEGAL_PART})*"
    r"|\d{1,4}-CP(?![a-zđ]))"
)
_DOC_TYPE_TAIL = re.compile(
    r"(?:Luật|Bộ luật|Nghị định|Thông tư liên tịch|Thông tư|Quyết định|Nghị quyết|Pháp lệnh)"
    r"(?: số)?\s*$"
)


@dataclass
class _Number:
    start: int
    end: int
    text: str


# Issuer codes seen on the portal; they tell where a number ends when the next title is glued
# to it in capitals ("NĐ-CPQUY ĐỊNH", "TT-VPCPThông tư").
# fmt: off
_ISSUERS = frozenset({
    "CP", "TTg", "BTC", "BTP", "BCA", "BNNMT", "NHNN", "BGTVT", "BXD", "BTNMT", "BNNPTNT",
    "BKHĐT", "BHXH", "BYT", "UBND", "HĐND", "BLĐTBXH", "BCT", "BQP", "BKHCN", "BVHTTDL",
    "VPCP", "BNV", "BTTTT", "BGDĐT", "BNG", "CTN", "UBCKNN", "KTNN", "TANDTC", "VKSNDTC",
})
# fmt: on


def _legal_numbers(text: str) -> list[_Number]:
    """Find document numbers, giving back letters of a glued next title ("NĐ-CPNghị định")."""
    out = []
    for m in _LEGAL_NUMBER.finditer(text):
        end = m.end()
        last = re.split(r"[-/]", m.group(0))[-1]
        known = [k for k in _ISSUERS if last.startswith(k)] if last.isalpha() else []
        if last in _ISSUERS:
            pass
        elif known:  # "CPBAN HÀNH": an issuer code, then a title in capitals
            end -= len(last) - len(max(known, key=len))
        elif end < len(text) and text[end].islower() and len(last) > 1:
            end -= 1  # the last capital begins the next word ("NĐ-CQuy định" on the portal)
        out.append(_Number(m.start(), end, text[m.start() : end]))
    return out


def _is_code_cell(text: str, m: _Number, nxt: _Number | None) -> bool:
    """Whether a number is the "Mã văn bản" cell rather than a reference inside a title.

    The code cell ends its row, so it is glued to the next title (or ends the text); a
    reference is followed by " ngày …", " của …", a comma or a bracket.
    """
    if nxt is not None and nxt.start == m.end and nxt.text == m.text:
        return False  # "Nghị định 126/2020/NĐ-CP126/2020/NĐ-CP": the title, then the code
    after = text[m.end :]
    if not after.strip():
        return True
    if after[0].isspace():
        return after.lstrip()[0].isupper()
    return after[0] not in ",.;:)]"


def parse_legal_basis(text: str) -> list[dict[str, str]]:
    """Extract legal document numbers with the title text before each, in order, once each."""
    text = _clean(text.removeprefix(LEGAL_HEADER))
    numbers = _legal_numbers(text)
    out: dict[str, str] = {}
    start = 0
    for i, m in enumerate(numbers):
        if not _is_code_cell(text, m, numbers[i + 1] if i + 1 < len(numbers) else None):
            continue
        title = text[start : m.start]
        stripped = _DOC_TYPE_TAIL.sub("", title)
        title = _cut(stripped if stripped.strip() else title, MAX_NAME).strip(" .,;:-")
        out.setdefault(m.text, "" if title == m.text else title)
        start = m.end
    if not out:
        # No row could be told apart: the numbers alone are still worth citing.
        out = dict.fromkeys((m.text for m in numbers), "")
    return [{"number": number, "title": title} for number, title in out.items()]


# ---------------------------------------------------------------------------------------------
# Whole records

_LEVELS_EN = {
    "cấp bộ": "ministry level",
    "cấp tỉnh": "province level",
    "cấp xã": "commune level",
    "cơ quan khác": "other agencies",
}
_RESULT_CODE = re.compile(r"Mã:\s*[A-Z0-9.\-]*\d")


def _steps(text: str) -> list[str]:
    """Split ``trinh_tu_thuc_hien`` into its lines."""
    return [line for line in (_clean(x) for x in text.splitlines()) if line]


def _result(text: str) -> str:
    """The results the citizen receives, without the portal's result codes and page chrome."""
    text = text.split("Từ khóa", 1)[0]
    parts = [_clean(p) for p in _RESULT_CODE.split(text)]
    return _informative("; ".join(p for p in parts if p))


def _level_en(level: str) -> str:
    """Translate "Cấp bộ, Cấp tỉnh" into "ministry level, province level"."""
    parts = [p.strip() for p in level.split(",") if p.strip()]
    return ", ".join(_LEVELS_EN.get(p.casefold(), p) for p in parts)


def parse_record(
    record: dict[str, object], *, facts_date: dt.date = DEFAULT_FACTS_DATE
) -> Procedure:
    """Convert one portal record into a validated ``Procedure``.

    Raises ``PortalRecordError`` for a missing or malformed code and ``KnowledgeError`` when
    the result does not pass the schema (e.g. the record has no name).
    """
    code = _field(record, "ma_thu_tuc")
    if not code:
        raise PortalRecordError("missing ma_thu_tuc")
    if not CODE_PATTERN.match(code):
        raise PortalRecordError(f"ma_thu_tuc '{code}' is not a national code like 1.001193")
    name = _clean(_field(record, "ten_thu_tuc"))
    field_ = _clean(_field(record, "linh_vuc"))
    level = _clean(_field(record, "cap_thuc_hien"))
    agency = (
        _informative(_field(record, "co_quan_thuc_hien"))
        or _informative(_field(record, "co_quan_co_tham_quyen"))
        or level
    )
    url = _field(record, "detail_url")
    source_url = url if url.startswith("https://") else FALLBACK_URL.format(code=code)
    methods = parse_methods(_field(record, "cach_thuc_thuc_hien"))
    online = any(m["channel"] is Channel.ONLINE for m in methods)
    where = ", ".join(x for x in (f"lĩnh vực {field_}" if field_ else "", level.lower()) if x)
    where_en = ", ".join(x for x in (f"field: {field_}" if field_ else "", _level_en(level)) if x)
    data: dict[str, Any] = {
        "code": code,
        "name": name,
        "name_en": f"Procedure {code}",
        "field": field_,
        "agency": agency,
        "applicants": _informative(_field(record, "doi_tuong_thuc_hien")),
        "summary": f"{name} ({where})." if where else f"{name}.",
        "summary_en": f"Administrative procedure {code}" + (f" ({where_en})." if where_en else "."),
        "steps": _steps(_field(record, "trinh_tu_thuc_hien")),
        "eligibility": _informative(_field(record, "yeu_cau_dieu_kien")),
        "result": _result(_field(record, "ket_qua_xu_ly")),
        "documents": parse_documents(_field(record, "thanh_phan_ho_so")),
        "methods": methods,
        "online_url": source_url if online else "",
        "legal_basis": parse_legal_basis(_field(record, "can_cu_phap_ly")),
        "aliases": [],
        "source_url": source_url,
        "facts_date": facts_date,
        "notes": IMPORT_NOTE,
    }
    return validate(Procedure, data, f"portal record {code}")


# ---------------------------------------------------------------------------------------------
# Files


def _lines(path: Path) -> Iterator[bytes]:
    """The raw lines of a ``.jsonl`` or ``.jsonl.gz`` file."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        yield from handle


def read_portal(path: Path, *, facts_date: dt.date = DEFAULT_FACTS_DATE) -> PortalImport:
    """Read a portal export; a bad line is reported as "<file>:<line>: <reason>" and skipped.

    When a code occurs twice the later line wins (it is the newer crawl) and the later line
    is reported with the earlier line's number. An unreadable file raises ``OSError``.
    """
    result = PortalImport()
    by_code: dict[str, tuple[int, Procedure]] = {}
    for number, raw in enumerate(_lines(path), start=1):
        where = f"{path}:{number}"
        if not raw.strip():
            continue
        try:
            record = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            result.problems.append(f"{where}: not UTF-8 text")
            continue
        except json.JSONDecodeError as exc:
            result.problems.append(f"{where}: invalid JSON: {exc.msg} (column {exc.colno})")
            continue
        if not isinstance(record, dict):
            result.problems.append(f"{where}: not a JSON object")
            continue
        try:
            procedure = parse_record(record, facts_date=facts_date)
        except KnowledgeError as exc:
            result.problems.append(f"{where}: {exc}")
            continue
        if procedure.code in by_code:
            earlier = by_code[procedure.code][0]
            result.problems.append(
                f"{where}: duplicate code {procedure.code} (also on line {earlier}); "
                "this later line is kept"
            )
        by_code[procedure.code] = (number, procedure)
    result.procedures = [procedure for _, procedure in by_code.values()]
    return result


def write_toml(procedure: Procedure, directory: Path) -> Path:
    """Write ``<code>.toml`` in the bundled-file format and return its path."""
    data = procedure.model_dump(mode="json", exclude_defaults=True)
    data["facts_date"] = procedure.facts_date  # a TOML date, as in the bundled files
    header = (
        "# Imported automatically from the National Public Service Portal (dichvucong.gov.vn);\n"
        "# not reviewed: times and fees marked unconfirmed need checking.\n"
    )
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{procedure.code}.toml"
    path.write_text(header + tomli_w.dumps(data), encoding="utf-8")
    return path
