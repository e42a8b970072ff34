"""Reading one-stop system exports of applications (hồ sơ): a CSV or XLSX file in, checked rows out.

Pure parsing and validation, no database. ``read_applications`` returns every row that is fine
and the problems of the others (the first ``ImportLimits.max_errors`` of them, and a count of
the rest), so staff can fix the bad rows in one pass; a problem with the file as a whole (type,
encoding, size, too many rows, missing columns) raises ``ImportFileError``. Rows are streamed
and counted as they come, so a file declaring or holding millions of junk rows is refused in
bounded memory and time.
"""

from __future__ import annotations

import codecs
import csv
import re
import sys
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from itertools import chain, islice
from pathlib import Path
from typing import TextIO
from zipfile import BadZipFile, ZipFile
from zoneinfo import ZoneInfo

# openpyxl ships no type information; its values are checked by type where they are used.
from openpyxl import load_workbook  # type: ignore[import-untyped]
from openpyxl.styles.numbers import is_datetime  # type: ignore[import-untyped]

from knowledge.text import fold
from storage.domain import (
    CHANNEL_NAMES,
    FIRST_DAY,
    LAST_DAY,
    STATUS_NAMES,
    ApplicationStatus,
    SubmissionChannel,
    normalize_phone,
    normalize_receipt_code,
    parse_channel,
    parse_status,
    within_bounds,
)

LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")

# A date written without a time. Received: the start of the office day, so it never lands after
# a procedure's cutoff hour and pushes the deadline a day later than the slip says. Due and
# completed: the end of the office day, since "hẹn trả 25/11" means "by the end of 25/11" and
# nothing should count as late during that day.
RECEIVED_HOUR = 8
END_OF_DAY_HOUR = 17

# A cell as the readers hand it over; a ``date`` (not ``datetime``) is a date without a time.
Cell = str | int | float | datetime | date | None

@dataclass(frozen=True, slots=True)
class ImportLimits:
    """How large an import may be; a file beyond these is refused before it fills memory."""

    max_bytes: int = 100 * 2**20  # the file as uploaded
    max_rows: int = 200_000  # rows after the header, blank ones included
    max_errors: int = 100  # row problems listed one by one; the rest are only counted

    # A workbook is a zip, and what it unpacks to bounds openpyxl's time (the sheet is parsed
    # as a stream) and memory (the shared strings are loaded whole, about 7 bytes of memory
    # per byte). A real export takes about 600 bytes of sheet and under 250 of shared
    # strings per row.
    @property
    def max_unpacked_bytes(self) -> int:
        """The whole workbook unpacked: 488 MB for 200,000 rows."""
        return self.max_rows * 2560

    @property
    def max_shared_strings_bytes(self) -> int:
        """The shared strings unpacked: 61 MB for 200,000 rows."""
        return self.max_rows * 320



class ImportFileError(ValueError):
    """The file as a whole cannot be imported (type, encoding, size, columns)."""


@dataclass(frozen=True, slots=True)
class ApplicationRow:
    """One valid application of the file; datetimes are aware and in UTC."""

    line: int  # as a person sees it: the header is line 1 (the spreadsheet row number)
    receipt_code: str
    procedure_code: str | None
    procedure_name: str | None
    applicant_name: str
    phone: str | None
    channel: SubmissionChannel
    received_at: datetime
    due_at: datetime | None
    status: ApplicationStatus
    completed_at: datetime | None  # None for a settled status: the export did not say when


@dataclass(frozen=True, slots=True)
class RowError:
    """One problem of one row, naming the column and the value."""

    line: int
    message: str


@dataclass
class ImportFile:
    """What a file holds: the valid rows, and the problems of the others (the first
    ``max_errors`` listed, ``more_errors`` only counted)."""

    rows: list[ApplicationRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    bad_rows: int = 0
    more_errors: int = 0
    max_errors: int | None = None

    def add(self, line: int, row: ApplicationRow | None, problems: list[str]) -> None:
        """Record one checked row: kept if valid, its problems listed while there is room."""
        if row is not None:
            self.rows.append(row)
        if not problems:
            return
        self.bad_rows += 1
        room = len(problems) if self.max_errors is None else max(
            0, self.max_errors - len(self.errors))
        self.errors.extend(RowError(line, message) for message in problems[:room])
        self.more_errors += len(problems) - min(room, len(problems))


# Accepted headers per field, the first one named in messages. Headers are compared folded.
COLUMNS: dict[str, tuple[str, ...]] = {
    "receipt_code": ("Mã hồ sơ", "Số biên nhận", "receipt_code"),
    "procedure_code": ("Mã thủ tục", "procedure_code"),
    "procedure_name": ("Tên thủ tục", "procedure_name"),
    "applicant_name": ("Người nộp", "Tên người nộp", "applicant_name"),
    "phone": ("Số điện thoại", "SĐT", "phone"),
    "channel": ("Hình thức nộp", "channel"),
    "received_at": ("Ngày tiếp nhận", "received_at"),
    "due_at": ("Ngày hẹn trả", "due_at"),
    "status": ("Trạng thái", "status"),
    "completed_at": ("Ngày trả kết quả", "completed_at"),
}
REQUIRED = ("receipt_code", "applicant_name", "channel", "received_at", "status")

_NOT_WORD = re.compile(r"[^a-z0-9]+")


def _header_key(text: str) -> str:
    """A header compared without case, diacritics, spaces or punctuation."""
    return _NOT_WORD.sub(" ", fold(text)).strip()


_ALIASES = {_header_key(name): key for key, names in COLUMNS.items() for name in names}
_SPELLINGS = 200  # spellings of statuses and channels remembered; junk files have millions
_HEADER_SEARCH_ROWS = 20  # title lines some exports put above the header
_SAMPLE_BYTES = 64 * 1024

_DMY = re.compile(
    r"(\d{1,2})([/-])(\d{1,2})\2(\d{4})(?:[ T]+(\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?)?"
)
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_PROCEDURE_CODE = re.compile(r"(\d\.\d{6})(?:\.[0-9A-Z]+)*")
_DATE_FORMATS = "dd/mm/yyyy[ HH:MM] or ISO 8601"
# A physical CSV line longer than this is no export row (real ones are a few hundred
# characters); refusing it keeps one line from holding the whole file in memory.
_MAX_LINE_CHARS = 100_000


def read_applications(
    path: Path, *, tz: ZoneInfo = LOCAL_TZ, limits: ImportLimits = ImportLimits()
) -> ImportFile:
    """Parse and check an export of applications (.csv in UTF-8, or .xlsx).

    Times without an offset are local to ``tz``; all datetimes returned are in UTC.
    """
    max_bytes = limits.max_bytes
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".xlsx"):
        raise ImportFileError(
            f"{path.name}: '{path.suffix or '(no extension)'}' files are not supported; "
            "export the list as .xlsx or as CSV UTF-8 (.csv)"
        )
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ImportFileError(f"{path.name}: cannot read the file ({exc.strerror})") from None
    if size > max_bytes:
        raise ImportFileError(
            f"{path.name} is too large ({_size(size)}; the limit is {_size(max_bytes)}): "
            "export a shorter period"
        )
    if size == 0:
        raise ImportFileError(f"{path.name} is empty")
    records = _csv_records(path) if suffix == ".csv" else _xlsx_records(path, limits)
    return _read(path, records, tz, limits)


def read_records(records: Sequence[Mapping[str, object]], *, tz: ZoneInfo = LOCAL_TZ
                 ) -> ImportFile:
    """Check applications given as mappings with the English field names (the REST API's
    JSON), with the same rules as a file; a record's "line" is its 1-based position."""
    reader = _RowReader({key: (i, key) for i, key in enumerate(COLUMNS)}, tz)
    result = ImportFile()
    for line, record in enumerate(records, 1):
        unknown = sorted(set(record) - set(COLUMNS))
        if unknown:
            result.add(line, None, [f"unknown fields: {', '.join(unknown)}"])
            continue
        cells: list[Cell] = []
        for key in COLUMNS:
            value = record.get(key)
            cells.append(value if value is None or isinstance(value, str) else str(value))
        result.add(line, *reader.read(line, cells))
    return result


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n:,} bytes"


def _read(path: Path, records: Iterator[tuple[int, Sequence[Cell]]], tz: ZoneInfo,
          limits: ImportLimits) -> ImportFile:
    """Find the header among the first rows, then check every row after it."""
    header_line = 1  # until the header is found, count rows from the top

    def counted() -> Iterator[tuple[int, Sequence[Cell]]]:
        # By line number, not by rows seen: a workbook can jump from row 2 to row 10**9, and
        # the rows skipped come out blank, one by one.
        for line, cells in records:
            if line - header_line > limits.max_rows:
                raise ImportFileError(
                    f"{path.name} has more rows than the limit of {limits.max_rows:,}: "
                    "export a shorter period")
            yield line, cells

    filled = ((line, cells) for line, cells in counted() if not _blank(cells))
    head = list(islice(filled, _HEADER_SEARCH_ROWS))
    if not head:
        raise ImportFileError(f"{path.name} has no rows")
    index, _ = _find_header([cells for _, cells in head])
    header_line = head[index][0]
    reader = _RowReader(_columns(path, head[index][1]), tz)
    result = ImportFile(max_errors=limits.max_errors)
    for line, cells in chain(head[index + 1 :], filled):
        result.add(line, *reader.read(line, cells))
    return result


def _blank(cells: Sequence[Cell]) -> bool:
    return all(c is None or (isinstance(c, str) and not c.strip()) for c in cells)


def _find_header(rows: Sequence[Sequence[Cell]]) -> tuple[int, int]:
    """Index of the row naming the most known columns, and how many it names."""
    best, score = 0, 0
    for i, cells in enumerate(rows):
        known = len({_ALIASES.get(_header_key(_text(c))) for c in cells} - {None})
        if known > score:
            best, score = i, known
    return best, score


def _columns(path: Path, header: Sequence[Cell]) -> dict[str, tuple[int, str]]:
    """Field → (index, header as written); ImportFileError if a required one is missing."""
    columns: dict[str, tuple[int, str]] = {}
    for i, cell in enumerate(header):
        name = _text(cell)
        key = _ALIASES.get(_header_key(name))
        if key is None:
            continue  # other columns (STT, address…) are not ours
        if key in columns:
            raise ImportFileError(
                f"{path.name}: columns '{columns[key][1]}' and '{name}' are both "
                f"{_label(key)}; keep only one of them"
            )
        columns[key] = (i, name)
    missing = [_label(key) for key in REQUIRED if key not in columns]
    if "procedure_code" not in columns and "procedure_name" not in columns:
        missing.append(f"{_label('procedure_code')} or {_label('procedure_name')}")
    if missing:
        found = ", ".join(f"'{n}'" for n in map(_text, header) if n) or "none"
        raise ImportFileError(
            f"{path.name}: missing columns: {'; '.join(missing)}. Columns found: {found}"
        )
    return columns


def _label(key: str) -> str:
    """A field as named to staff: 'Mã hồ sơ (receipt_code)'."""
    return f"{COLUMNS[key][0]} ({key})"


class _RowReader:
    """Checks rows one at a time, remembering receipt codes to find duplicates."""

    def __init__(self, columns: dict[str, tuple[int, str]], tz: ZoneInfo) -> None:
        self.columns = columns
        self.tz = tz
        self.first_line: dict[str, int] = {}
        # Few distinct spellings in a file: read each once.
        self.statuses: dict[str, ApplicationStatus | None] = {}
        self.channels: dict[str, SubmissionChannel | None] = {}

    def status(self, text: str) -> ApplicationStatus | None:
        if text not in self.statuses and len(self.statuses) < _SPELLINGS:
            self.statuses[text] = parse_status(text)
        return self.statuses[text] if text in self.statuses else parse_status(text)

    def channel(self, text: str) -> SubmissionChannel | None:
        if text not in self.channels and len(self.channels) < _SPELLINGS:
            self.channels[text] = parse_channel(text)
        return self.channels[text] if text in self.channels else parse_channel(text)

    def cell(self, cells: Sequence[Cell], key: str) -> Cell:
        column = self.columns.get(key)
        if column is None or column[0] >= len(cells):
            return None
        value = cells[column[0]]
        return (value.strip() or None) if isinstance(value, str) else value

    def read(self, line: int, cells: Sequence[Cell]) -> tuple[ApplicationRow | None, list[str]]:
        """The row if valid, and every problem found in it."""
        problems: list[str] = []

        def name(key: str) -> str:
            return self.columns[key][1]

        def required(key: str) -> str:
            text = _text(self.cell(cells, key))
            if not text:
                problems.append(f"{name(key)}: empty")
            return text

        raw_code = required("receipt_code")
        receipt_code = normalize_receipt_code(raw_code) if raw_code else None
        if raw_code and receipt_code is None:
            problems.append(
                f"{name('receipt_code')}: '{raw_code}' is not a receipt code "
                "(4–64 letters, digits, '.', '-', '/')"
            )
        if receipt_code is not None:
            first = self.first_line.setdefault(receipt_code, line)
            if first != line:
                problems.append(
                    f"{name('receipt_code')}: '{receipt_code}' already appears on line {first}"
                )

        procedure_code = self.procedure_code(cells, problems)
        procedure_name = _text(self.cell(cells, "procedure_name")) or None
        if self.cell(cells, "procedure_code") is None and procedure_name is None:
            names = " / ".join(
                name(k) for k in ("procedure_code", "procedure_name") if k in self.columns
            )
            problems.append(f"{names}: empty")

        applicant_name = required("applicant_name")
        phone = self.phone(cells, problems)

        channel: SubmissionChannel | None = None
        if raw_channel := required("channel"):
            channel = self.channel(raw_channel)
            if channel is None:
                problems.append(
                    f"{name('channel')}: '{raw_channel}' is not a known channel "
                    f"(accepted: {', '.join(CHANNEL_NAMES)})"
                )

        status: ApplicationStatus | None = None
        if raw_status := required("status"):
            status = self.status(raw_status)
            if status is None:
                problems.append(
                    f"{name('status')}: '{raw_status}' is not a known status "
                    f"(accepted: {', '.join(STATUS_NAMES)})"
                )

        received = self.when(cells, "received_at", problems, required=True)
        due = self.when(cells, "due_at", problems)
        completed = self.when(cells, "completed_at", problems)
        if received is not None:
            for key, later in (("due_at", due), ("completed_at", completed)):
                if later is not None and _before(later, received, self.tz):
                    problems.append(
                        f"{name(key)}: '{_shown(later)}' is before "
                        f"{name('received_at')} '{_shown(received)}'"
                    )

        if (problems or receipt_code is None or channel is None or status is None
                or received is None):
            return None, problems
        return ApplicationRow(
            line=line,
            receipt_code=receipt_code,
            procedure_code=procedure_code,
            # The same few procedures repeat on every row: share one string each.
            procedure_name=sys.intern(procedure_name) if procedure_name else None,
            applicant_name=applicant_name,
            phone=phone,
            channel=channel,
            received_at=_utc(received, RECEIVED_HOUR, self.tz),
            due_at=_utc(due, END_OF_DAY_HOUR, self.tz) if due is not None else None,
            status=status,
            # A settled status without a date is kept: some systems fill "Ngày trả kết quả"
            # only once the citizen collects the result, and the status alone stops the clock.
            completed_at=(
                _utc(completed, END_OF_DAY_HOUR, self.tz) if completed is not None else None
            ),
        ), problems

    def procedure_code(self, cells: Sequence[Cell], problems: list[str]) -> str | None:
        value = self.cell(cells, "procedure_code")
        if value is None:
            return None
        # Excel turns "1.001190" typed into a number cell into 1.00119: national codes always
        # have six decimals.
        text = f"{value:.6f}" if isinstance(value, float) else _text(value)
        match = _PROCEDURE_CODE.fullmatch(text.upper())
        if match is None:
            problems.append(
                f"{self.columns['procedure_code'][1]}: '{text}' is not a national procedure "
                "code (like 1.001193)"
            )
            return None
        # Provincial portals append their own suffix ("1.001193.000.00.00.H26").
        return sys.intern(match.group(1))

    def phone(self, cells: Sequence[Cell], problems: list[str]) -> str | None:
        value = self.cell(cells, "phone")
        if value is None:
            return None
        text = _text(value)
        # A number cell in Excel (or a CSV that went through one) drops the leading 0 of
        # "0912345678"; Vietnamese numbers without it have 9 or 10 digits.
        if text.isdigit() and not text.startswith("0") and len(text) in (9, 10):
            text = "0" + text
        phone = normalize_phone(text)
        if phone is None:
            problems.append(f"{self.columns['phone'][1]}: '{_text(value)}' is not a phone number")
        return phone

    def when(
        self, cells: Sequence[Cell], key: str, problems: list[str], *, required: bool = False
    ) -> datetime | date | None:
        if key not in self.columns:
            return None
        value = self.cell(cells, key)
        if value is None:
            if required:
                problems.append(f"{self.columns[key][1]}: empty")
            return None
        parsed = _parse_when(value)
        if parsed is None:
            problems.append(
                f"{self.columns[key][1]}: '{_shown(value)}' is not a date ({_DATE_FORMATS})"
            )
        elif not within_bounds(parsed):
            # Years such as 1 or 9999 are typing errors, and overflow once a zone is applied.
            problems.append(
                f"{self.columns[key][1]}: '{_shown(value)}' is not between "
                f"{FIRST_DAY:%d/%m/%Y} and {LAST_DAY:%d/%m/%Y}"
            )
            return None
        return parsed


def _text(value: Cell) -> str:
    """A cell as text: numbers without a spurious '.0', dates as staff write them."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, date):
        return _shown(value)
    return str(value)


def _shown(value: Cell) -> str:
    """A value as quoted in messages."""
    if isinstance(value, datetime):
        shown = value.strftime("%d/%m/%Y %H:%M" if value.second == 0 else "%d/%m/%Y %H:%M:%S")
        return shown + (value.strftime(" %z") if value.tzinfo else "")
    if isinstance(value, date):
        return value.strftime("%d/%m/%Y")
    return _text(value)


def _parse_when(value: Cell) -> datetime | date | None:
    """A date or date-time as exports write it; a ``date`` when no time is given."""
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        return None
    try:
        if match := _DMY.fullmatch(value):
            day, _, month, year, hour, minute, second = match.groups()
            if hour is None:
                return date(int(year), int(month), int(day))
            return datetime(
                int(year), int(month), int(day), int(hour), int(minute), int(second or 0)
            )
        if value[:4].isdigit():
            if _ISO_DATE.fullmatch(value):
                return date.fromisoformat(value)
            return datetime.fromisoformat(value)
    except ValueError:
        return None
    return None


def _utc(when: datetime | date, hour: int, tz: ZoneInfo) -> datetime:
    """An aware UTC datetime; naive values are local to ``tz``, dates take ``hour``."""
    if isinstance(when, datetime):
        local = when if when.tzinfo is not None else when.replace(tzinfo=tz)
    else:
        local = datetime.combine(when, time(hour), tz)
    return local.astimezone(UTC)


def _before(later: datetime | date, earlier: datetime | date, tz: ZoneInfo) -> bool:
    """Whether ``later`` is before ``earlier``; by local day when either has no time."""
    if isinstance(later, datetime) and isinstance(earlier, datetime):
        return _utc(later, 0, tz) < _utc(earlier, 0, tz)
    return _local_day(later, tz) < _local_day(earlier, tz)


def _local_day(when: datetime | date, tz: ZoneInfo) -> date:
    if isinstance(when, datetime):
        return (when.astimezone(tz) if when.tzinfo is not None else when).date()
    return when


def _not_utf8(path: Path, where: str) -> ImportFileError:
    return ImportFileError(
        f"{path.name} is not UTF-8 text ({where}). In Excel, save it with "
        "'Save as type: CSV UTF-8 (Comma delimited) (*.csv)' and import it again"
    )


def _csv_records(path: Path) -> Iterator[tuple[int, list[str]]]:
    """Records of a UTF-8 CSV (BOM or not), numbered as a spreadsheet numbers its rows."""
    delimiter = _sniff_delimiter(path)
    with path.open(encoding="utf-8-sig", newline="") as stream:
        reader = csv.reader(_bounded_lines(path, stream), delimiter=delimiter)
        try:
            yield from enumerate(reader, start=1)
        except UnicodeDecodeError:
            raise _not_utf8(path, f"near line {reader.line_num + 1}") from None
        except csv.Error as exc:
            raise ImportFileError(
                f"{path.name}: line {reader.line_num} cannot be read as CSV ({exc})"
            ) from None


def _bounded_lines(path: Path, stream: TextIO) -> Iterator[str]:
    """The stream's lines, refusing one too long to be a row (a file without line breaks)."""
    number = 0
    while line := stream.readline(_MAX_LINE_CHARS + 1):
        number += 1
        if len(line) > _MAX_LINE_CHARS:
            raise ImportFileError(
                f"{path.name}: line {number} is longer than {_MAX_LINE_CHARS:,} characters; "
                "this is not an export of applications")
        yield line


def _sniff_delimiter(path: Path) -> str:
    """Comma, semicolon or tab: whichever splits the first lines into the most known headers.

    Excel writes ';' where the system's list separator is ',' (Vietnamese regional settings);
    headers never contain either, unlike addresses and names in the rows below.
    """
    try:
        with path.open("rb") as stream:
            raw = stream.read(_SAMPLE_BYTES)
            complete = not stream.read(1)
    except OSError as exc:
        raise ImportFileError(f"{path.name}: cannot read the file ({exc.strerror})") from None
    try:
        text = codecs.getincrementaldecoder("utf-8-sig")().decode(raw, final=complete)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise _not_utf8(path, f"byte 0x{raw[exc.start]:02X} on line {line}") from None
    lines = text.splitlines(keepends=True)
    if not complete:
        lines = lines[:-1]  # the last one may be cut short
    lines = lines[: _HEADER_SEARCH_ROWS * 2]
    best, best_score = ",", 0
    for delimiter in (",", ";", "\t"):
        try:
            rows = [r for r in csv.reader(lines, delimiter=delimiter) if not _blank(r)]
        except csv.Error:
            continue
        _, score = _find_header(rows[:_HEADER_SEARCH_ROWS])
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _xlsx_records(path: Path, limits: ImportLimits) -> Iterator[tuple[int, list[Cell]]]:
    """Rows of the workbook's active sheet, numbered as Excel shows them."""
    unreadable = (BadZipFile, KeyError, ValueError, SyntaxError, EOFError, OSError, zlib.error)
    try:
        _check_unpacked_size(path, limits)
        workbook = load_workbook(path, read_only=True, data_only=True)
    except ImportFileError:
        raise
    except unreadable as exc:
        raise ImportFileError(
            f"{path.name} is not a readable Excel workbook (.xlsx): {exc}"
        ) from None
    try:
        sheet = workbook.active or workbook.worksheets[0]
        # The size the sheet declares, read before any row: a few hundred KB can declare
        # millions of rows, and reading them to find out takes minutes.
        declared = sheet.max_row
        if isinstance(declared, int) and declared > limits.max_rows + _HEADER_SEARCH_ROWS:
            raise ImportFileError(
                f"{path.name} declares {declared:,} rows; the limit is {limits.max_rows:,}: "
                "export a shorter period")
        # Some exporters declare a wrong sheet size ("A1"); trusting it would drop rows silently.
        sheet.reset_dimensions()
        for line, row in enumerate(sheet.iter_rows(), start=1):
            yield line, [_xlsx_value(c) for c in row]
    except ImportFileError:
        raise
    except unreadable as exc:
        raise ImportFileError(f"{path.name}: the workbook is damaged ({exc})") from None
    finally:
        workbook.close()


def _check_unpacked_size(path: Path, limits: ImportLimits) -> None:
    """Refuse a workbook that unpacks to more than the limit (a zip bomb), before unpacking.

    Reading a member stops at the size its header declares, so the declared sizes bound
    what openpyxl can be made to read.
    """
    with ZipFile(path) as archive:
        items = archive.infolist()
    unpacked = sum(item.file_size for item in items)
    strings = sum(item.file_size for item in items
                  if item.filename.lower().endswith("sharedstrings.xml"))
    for what, size, limit in (("holds text of", strings, limits.max_shared_strings_bytes),
                              ("unpacks to", unpacked, limits.max_unpacked_bytes)):
        if size > limit:
            raise ImportFileError(
                f"{path.name} {what} {_size(size)} (the limit for {limits.max_rows:,} rows "
                f"is {_size(limit)}); this is not an export of applications")


def _xlsx_value(cell: object) -> Cell:
    """A cell's value; a date-time cell formatted without a time becomes a ``date``."""
    value = getattr(cell, "value", None)
    if isinstance(value, datetime):
        return value.date() if is_datetime(getattr(cell, "number_format", "")) == "date" else value
    if value is None or isinstance(value, str | int | float | date):
        return value
    return str(value)  # times of day, durations, booleans: shown as written, never a date
