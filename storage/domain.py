"""Values of the applications domain shared by storage, imports and handlers (no I/O)."""

from __future__ import annotations

import datetime as dt
import re
from enum import StrEnum

from knowledge.text import fold


class ApplicationStatus(StrEnum):
    """Where an application (hồ sơ) stands in the one-stop workflow."""

    RECEIVED = "received"  # tiếp nhận
    PROCESSING = "processing"  # đang xử lý
    SUPPLEMENT_REQUIRED = "supplement_required"  # yêu cầu bổ sung
    RESULT_READY = "result_ready"  # có kết quả / chờ trả
    RETURNED = "returned"  # đã trả kết quả
    REJECTED = "rejected"  # từ chối
    WITHDRAWN = "withdrawn"  # rút hồ sơ

    @property
    def settled(self) -> bool:
        """The commune has produced the result (the deadline no longer runs)."""
        return self in (ApplicationStatus.RESULT_READY, ApplicationStatus.RETURNED)

    @property
    def closed(self) -> bool:
        """Nothing more will happen to the application."""
        return self in (ApplicationStatus.RETURNED, ApplicationStatus.REJECTED,
                        ApplicationStatus.WITHDRAWN)

    @property
    def next_statuses(self) -> tuple[ApplicationStatus, ...]:
        """The statuses the one-stop workflow allows after this one (none once closed)."""
        return NEXT_STATUSES[self]

    def may_become(self, other: ApplicationStatus) -> bool:
        """Whether the workflow allows moving from this status to ``other``."""
        return other in NEXT_STATUSES[self]


_S = ApplicationStatus
# The one-stop workflow (Nghị định 61/2018/NĐ-CP, amended by 107/2021/NĐ-CP): a file is
# received, processed (possibly waiting for a supplement), then refused or its result made
# ready and handed over; the citizen may withdraw it until there is a result. Closed statuses
# are final: moving out of one is an explicit, audited correction.
NEXT_STATUSES: dict[ApplicationStatus, tuple[ApplicationStatus, ...]] = {
    _S.RECEIVED: (_S.PROCESSING, _S.SUPPLEMENT_REQUIRED, _S.REJECTED, _S.WITHDRAWN),
    _S.PROCESSING: (_S.SUPPLEMENT_REQUIRED, _S.RESULT_READY, _S.REJECTED, _S.WITHDRAWN),
    _S.SUPPLEMENT_REQUIRED: (_S.PROCESSING, _S.REJECTED, _S.WITHDRAWN),
    _S.RESULT_READY: (_S.RETURNED,),
    _S.RETURNED: (),
    _S.REJECTED: (),
    _S.WITHDRAWN: (),
}


class TransitionRefused(Exception):
    """A status change the one-stop workflow does not allow."""

    def __init__(self, current: ApplicationStatus, wanted: ApplicationStatus) -> None:
        super().__init__(f"{current.value} cannot become {wanted.value}")
        self.current, self.wanted = current, wanted


class InvalidValue(ValueError):
    """A value refused before it reaches the database, naming its field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


# Dates an application may carry: anything else is a typing or export error, and years near
# 1 or 9999 overflow when converted between time zones.
FIRST_DAY = dt.date(2000, 1, 1)
LAST_DAY = dt.date(2100, 12, 31)


def within_bounds(when: dt.date) -> bool:
    """Whether a date, or a datetime's own calendar date, lies in FIRST_DAY..LAST_DAY."""
    day = when.date() if isinstance(when, dt.datetime) else when  # no conversion: it may overflow
    return FIRST_DAY <= day <= LAST_DAY


# NUL (PostgreSQL refuses it), lone surrogates (not encodable as UTF-8) and control characters;
# tab, line feed and carriage return are allowed where a value may span lines.
_UNSTORABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_UNSTORABLE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def unstorable(text: str, *, multiline: bool = False) -> bool:
    """Whether ``text`` holds a NUL, a lone surrogate or a control character."""
    return bool((_UNSTORABLE if multiline else _UNSTORABLE_LINE).search(text))


class SubmissionChannel(StrEnum):
    """How the application reached the commune (hình thức nộp)."""

    ONLINE = "online"
    IN_PERSON = "in_person"
    POST = "post"


# Folded spellings used by one-stop systems' exports, mapped to our values.
STATUS_NAMES: dict[str, ApplicationStatus] = {
    "tiep nhan": ApplicationStatus.RECEIVED,
    "da tiep nhan": ApplicationStatus.RECEIVED,
    "moi tiep nhan": ApplicationStatus.RECEIVED,
    "cho xu ly": ApplicationStatus.RECEIVED,
    "dang xu ly": ApplicationStatus.PROCESSING,
    "dang giai quyet": ApplicationStatus.PROCESSING,
    "yeu cau bo sung": ApplicationStatus.SUPPLEMENT_REQUIRED,
    "cho bo sung": ApplicationStatus.SUPPLEMENT_REQUIRED,
    "bo sung ho so": ApplicationStatus.SUPPLEMENT_REQUIRED,
    "co ket qua": ApplicationStatus.RESULT_READY,
    "cho tra": ApplicationStatus.RESULT_READY,
    "cho tra ket qua": ApplicationStatus.RESULT_READY,
    "da co ket qua": ApplicationStatus.RESULT_READY,
    "da tra": ApplicationStatus.RETURNED,
    "da tra ket qua": ApplicationStatus.RETURNED,
    "hoan thanh": ApplicationStatus.RETURNED,
    "tu choi": ApplicationStatus.REJECTED,
    "khong giai quyet": ApplicationStatus.REJECTED,
    "rut ho so": ApplicationStatus.WITHDRAWN,
    "cong dan rut ho so": ApplicationStatus.WITHDRAWN,
    "da rut": ApplicationStatus.WITHDRAWN,
    **{s.value.replace("_", " "): s for s in ApplicationStatus},
}

CHANNEL_NAMES: dict[str, SubmissionChannel] = {
    "online": SubmissionChannel.ONLINE,
    "truc tuyen": SubmissionChannel.ONLINE,
    "dich vu cong": SubmissionChannel.ONLINE,
    "truc tiep": SubmissionChannel.IN_PERSON,
    "in person": SubmissionChannel.IN_PERSON,
    "mot cua": SubmissionChannel.IN_PERSON,
    "buu chinh": SubmissionChannel.POST,
    "buu chinh cong ich": SubmissionChannel.POST,
    "qua buu dien": SubmissionChannel.POST,
    "post": SubmissionChannel.POST,
    **{c.value.replace("_", " "): c for c in SubmissionChannel},
}

_SPACES = re.compile(r"[\s_]+")
_RECEIPT = re.compile(r"^[A-Z0-9][A-Z0-9.\-/]{3,63}$")
_DASHES = re.compile(r"[\u2010-\u2015\u2212]")  # ‐ ‑ ‒ – — ― −, as phones and editors type "-"
# The one-stop system's own shape, 000.00.19.H26-251127-0001, typed with its dots or dashes
# left out ("0000019H262511270001").
_NATIONAL = re.compile(r"^(\d{3})\.?(\d{2})\.?(\d{2})\.?([A-Z]\d{2})-?(\d{6})-?(\d{4})$")
# … and inside a sentence, its parts typed apart ("000 00 19 H26 251127 0001").
_NATIONAL_IN_TEXT = re.compile(
    r"(?<![\w.])\d{3}[\s.]*\d{2}[\s.]*\d{2}[\s.]*[A-Za-z]\d{2}[\s.\-\u2010-\u2015\u2212]*\d{6}"
    r"[\s.\-\u2010-\u2015\u2212]*\d{4}(?![\w])")


def parse_status(text: str) -> ApplicationStatus | None:
    """A status as exports write it ("Đang xử lý", "Chờ trả kết quả", "returned")."""
    return STATUS_NAMES.get(_SPACES.sub(" ", fold(text)).strip())


def parse_channel(text: str) -> SubmissionChannel | None:
    """A submission channel as exports write it ("Trực tuyến", "Bưu chính", "in_person")."""
    return CHANNEL_NAMES.get(_SPACES.sub(" ", fold(text)).strip())


def normalize_receipt_code(text: str) -> str | None:
    """The receipt code (mã hồ sơ) as stored: spaces removed, upper case; None if malformed.

    Citizens copy codes like "000.00.19.H26-251127-0001" from the slip, sometimes in lower
    case, with spaces, with a phone's long dashes or without the dots; those are the same code.
    """
    code = _DASHES.sub("-", re.sub(r"\s+", "", text)).upper()
    national = _NATIONAL.match(code)
    if national:
        code = "{}.{}.{}.{}-{}-{}".format(*national.groups())
    return code if _RECEIPT.match(code) else None


def normalize_phone(text: str) -> str | None:
    """Digits of a Vietnamese phone number, "+84"/"84" written as "0"; None if implausible."""
    digits = re.sub(r"\D", "", text)
    if digits.startswith("84") and len(digits) == 11:
        digits = "0" + digits[2:]
    return digits if 9 <= len(digits) <= 11 else None


# A receipt code inside a sentence: letters and digits in dot/dash-separated groups, with at
# least one letter (so dates and phone numbers are not taken for codes).
_RECEIPT_IN_TEXT = re.compile(
    r"(?<![\w.])([A-Za-z0-9]+(?:[.\-/\u2010-\u2015\u2212][A-Za-z0-9]+){2,})(?![\w])")


# "000.00.19.H26 - 251127 - 0001": a code's dashes typed with spaces around them (before its
# date and its number; "… - 0355555555" is a phone number after the code).
_SPACED_DASH = re.compile(r"(?<=\w)\s*[-\u2010-\u2015\u2212]\s*(?=\d{4}(?:\d{2})?\b)")
_PHONE_IN_TEXT = re.compile(r"(?<![\d.])(?:\+?84|0)(?:[\s.]?\d){9}(?![\d.])")


def find_phone_beside_code(text: str) -> str | None:
    """A whole phone number written in a message besides a receipt code ("hồ sơ
    000.00.19.H26-251127-0001, sđt 0904 123 456"), or None."""
    rest = _RECEIPT_IN_TEXT.sub(" ", _NATIONAL_IN_TEXT.sub(" ", text))
    match = _PHONE_IN_TEXT.search(rest)
    return match.group(0) if match else None


def find_receipt_code(text: str) -> str | None:
    """A receipt code written anywhere in a message ("hồ sơ 000.00.19.H26-251127-0001 sao rồi")."""
    national = _NATIONAL_IN_TEXT.search(text)
    if national:
        return normalize_receipt_code(re.sub(r"[\s.\-\u2010-\u2015\u2212]", "", national.group(0)))
    for match in _RECEIPT_IN_TEXT.finditer(_SPACED_DASH.sub("-", text)):
        candidate = match.group(1)
        digits = sum(c.isdigit() for c in candidate)
        if digits >= 6 and any(c.isalpha() for c in candidate) and len(candidate) >= 10:
            return normalize_receipt_code(candidate)
    return None
