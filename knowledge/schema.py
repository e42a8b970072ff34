"""The knowledge-base schema: one procedure (thủ tục hành chính) per data file.

Every fact that reaches a citizen is a field here, so that answers are composed from data and
never from code. Values are validated when a file is loaded; a bad file is refused with its
path, the field and the reason (see ``knowledge.loader``).
"""

from __future__ import annotations

import datetime as dt
import re
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

CODE_PATTERN = re.compile(r"^\d\.\d{6}$")


class Strict(BaseModel):
    """Base for schema models: unknown keys are errors, so typos in data files are caught."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


NonEmpty = Annotated[str, Field(min_length=1)]


def _national_code(value: str) -> str:
    if not CODE_PATTERN.match(value):
        raise ValueError(f"'{value}' is not a national code like 1.001193")
    return value


NationalCode = Annotated[str, Field(min_length=1), AfterValidator(_national_code)]


class Channel(StrEnum):
    """How an application is submitted (hình thức nộp)."""

    IN_PERSON = "truc_tiep"
    POST = "buu_chinh"
    ONLINE = "truc_tuyen"


class TimeUnit(StrEnum):
    """Unit of a processing time as the portal states it."""

    WORKING_DAYS = "working_days"
    DAYS = "days"
    HOURS = "hours"
    # The portal shows a bare number with no unit: the value is kept, the unit is unknown.
    UNSPECIFIED = "unspecified"


class FeeStatus(StrEnum):
    """What the portal says about the fee: the answer must say exactly this, never more."""

    AMOUNT = "amount"  # a published amount (fee_vnd, possibly with conditions in fee_note)
    FREE = "free"  # explicitly free of charge
    PROVINCE = "province"  # set by the provincial People's Council (HĐND tỉnh)
    NOT_PUBLISHED = "not_published"  # the portal publishes no fee


class Document(Strict):
    """One paper in the application file (thành phần hồ sơ)."""

    name: NonEmpty
    originals: int = Field(default=0, ge=0, le=20)
    copies: int = Field(default=0, ge=0, le=20)
    # When the paper is needed ("nếu ủy quyền", "trẻ sinh ở nước ngoài"); empty = always.
    when: str = ""
    # Shown, not handed in (giấy tờ phải xuất trình).
    present_only: bool = False
    name_en: str = ""  # English, for bundled entries
    when_en: str = ""


class Method(Strict):
    """One submission method with its processing time and fee."""

    channel: Channel
    time_value: float | None = Field(default=None, gt=0)
    time_unit: TimeUnit | None = None
    time_note: str = ""
    time_confirmed: bool = True
    # Applications received at or after this local hour count from the next working day.
    cutoff_hour: int | None = Field(default=None, ge=0, le=23)
    fee_status: FeeStatus
    fee_vnd: int | None = Field(default=None, ge=0)
    fee_note: str = ""
    fee_confirmed: bool = True
    time_note_en: str = ""
    fee_note_en: str = ""
    # The legal rule the time or fee is taken from, cited ("Điều 18 khoản 1 Luật Hộ tịch
    # 60/2014/QH13"); needed where the portal's figure is not enough on its own.
    time_basis: str = ""
    time_basis_en: str = ""
    fee_basis: str = ""
    fee_basis_en: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> Method:
        if (self.time_value is None) != (self.time_unit is None):
            raise ValueError("time_value and time_unit go together")
        if self.time_unit is TimeUnit.UNSPECIFIED and self.time_confirmed:
            raise ValueError("a time without a unit must be marked time_confirmed = false")
        if self.fee_status is FeeStatus.AMOUNT and self.fee_vnd is None:
            raise ValueError("fee_status 'amount' needs fee_vnd")
        if self.fee_status is not FeeStatus.AMOUNT and self.fee_vnd is not None:
            raise ValueError(f"fee_vnd is only for fee_status 'amount', not '{self.fee_status}'")
        return self


class LegalDocument(Strict):
    """One legal basis (căn cứ pháp lý): the document number carries the weight."""

    number: NonEmpty  # e.g. "60/2014/QH13", "123/2015/NĐ-CP"
    title: str = ""  # e.g. "Luật Hộ tịch"


class Procedure(Strict):
    """One administrative procedure as the assistant knows it."""

    code: NationalCode  # national code (ma_thu_tuc), the entry's id
    name: NonEmpty  # official name on the portal
    name_en: NonEmpty
    # The everyday name citizens use ("Làm giấy khai sinh"), shown beside the official one.
    short_name: str = ""
    short_name_en: str = ""
    field: NonEmpty  # lĩnh vực, e.g. "Hộ tịch"
    agency: NonEmpty  # who handles it, e.g. "UBND xã", "Công an xã"
    decides: str = ""  # who signs the result, e.g. "Chủ tịch UBND xã"
    applicants: str = ""  # who may apply
    summary: NonEmpty  # plain-language summary in Vietnamese, in our own words
    summary_en: NonEmpty
    steps: list[NonEmpty] = Field(default_factory=list)
    eligibility: str = ""  # conditions (yêu cầu, điều kiện), our own words
    result: str = ""  # what the citizen receives
    documents: list[Document] = Field(default_factory=list)
    methods: list[Method] = Field(min_length=1)
    online_url: str = ""  # where to submit online (empty = no online submission)
    legal_basis: list[LegalDocument] = Field(default_factory=list)
    aliases: list[NonEmpty] = Field(default_factory=list)  # how citizens name it (Vietnamese)
    aliases_en: list[NonEmpty] = Field(default_factory=list)
    # Questions citizens typically ask about it, describing their situation; for matching only.
    examples: list[NonEmpty] = Field(default_factory=list)
    source_url: NonEmpty
    facts_date: dt.date  # when the facts were taken from the source
    # When the facts were last checked against the law in force, and the texts checked.
    checked: dt.date | None = None
    checked_against: list[NonEmpty] = Field(default_factory=list)
    notes: str = ""  # anything the answer must add (e.g. "mã thủ tục đổi năm 2026")
    # English of the Vietnamese free-text fields above (bundled entries have them all).
    agency_en: str = ""
    decides_en: str = ""
    applicants_en: str = ""
    eligibility_en: str = ""
    result_en: str = ""
    steps_en: list[NonEmpty] = Field(default_factory=list)
    notes_en: str = ""

    @field_validator("source_url", "online_url")
    @classmethod
    def _https(cls, value: str) -> str:
        if value and not value.startswith("https://"):
            raise ValueError("must be an https:// address")
        return value

    @model_validator(mode="after")
    def _methods_unique(self) -> Procedure:
        channels = [m.channel for m in self.methods]
        if len(channels) != len(set(channels)):
            raise ValueError("methods: each channel at most once")
        if Channel.ONLINE in channels and not self.online_url:
            raise ValueError("online_url is required when an online method is listed")
        return self

    @property
    def has_unconfirmed(self) -> bool:
        """Whether any time or fee in this entry is not confirmed by the source."""
        return any(not (m.time_confirmed and m.fee_confirmed) for m in self.methods)


class LegalField(StrEnum):
    """The areas of law the FAQ covers (lĩnh vực)."""

    CIVIL_STATUS = "Hộ tịch"
    MARRIAGE_FAMILY = "Hôn nhân và gia đình"
    RESIDENCE = "Cư trú"
    IDENTITY = "Căn cước"
    CERTIFICATION = "Chứng thực"
    LAND = "Đất đai"
    SOCIAL_ASSISTANCE = "Bảo trợ xã hội"
    ELDERLY = "Người cao tuổi"
    DISABILITY = "Người khuyết tật"
    ADOPTION = "Nuôi con nuôi"
    HOUSEHOLD_BUSINESS = "Hộ kinh doanh"
    ELSEWHERE = "Cơ quan khác"  # matters of another authority (court, social insurance…)


ARTICLE_PATTERN = re.compile(r"^Điều \d+[a-z]?$")


class FaqSource(Strict):
    """Where a FAQ answer comes from: a legal document with its article, or the portal."""

    title: NonEmpty
    number: str = ""  # legal document number, e.g. "60/2014/QH13"
    article: str = ""  # e.g. "Điều 15"
    clause: str = ""  # e.g. "khoản 1", "điểm a khoản 2"

    @field_validator("article")
    @classmethod
    def _article_shape(cls, value: str) -> str:
        if value and not ARTICLE_PATTERN.match(value):
            raise ValueError(f"'{value}' is not an article like 'Điều 15'")
        return value

    @property
    def legal(self) -> bool:
        """Whether this cites a document number and an article."""
        return bool(self.number and self.article)


class FaqCase(Strict):
    """One case of a rule that depends on the case: which case gives which answer."""

    when: NonEmpty
    then: NonEmpty
    when_en: NonEmpty
    then_en: NonEmpty


class Faq(Strict):
    """A legal or procedural question with a fixed, sourced answer.

    The answer's first sentence states the rule; ``cases`` say which case gives which answer;
    the reply ends with the citation. ``authority`` names another body when the matter is not
    the commune's (divorce → the court): the reply then also says who handles it.
    """

    id: NonEmpty
    field: LegalField
    procedure: str = ""  # national code of the related procedure, where there is one
    authority: str = ""
    authority_en: str = ""
    questions: list[NonEmpty] = Field(min_length=1)  # ways citizens ask it
    questions_en: list[NonEmpty] = Field(default_factory=list)
    answer: NonEmpty
    answer_en: NonEmpty
    cases: list[FaqCase] = Field(default_factory=list)
    sources: list[FaqSource] = Field(min_length=1)
    facts_date: dt.date
    # When the rule was last checked against the text in force, and what it was checked against.
    checked: dt.date | None = None
    checked_against: list[NonEmpty] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> Faq:
        if self.procedure and not CODE_PATTERN.match(self.procedure):
            raise ValueError(f"procedure: '{self.procedure}' is not a national code")
        if bool(self.authority) != bool(self.authority_en):
            raise ValueError("authority and authority_en go together")
        return self


class OutsideTopic(Strict):
    """A service citizens ask the commune about that the commune does not provide.

    Matched like a procedure, so that "làm hộ chiếu" is declined with a pointer to who can
    help instead of being answered with the nearest commune procedure.
    """

    id: NonEmpty
    phrases: list[NonEmpty] = Field(min_length=1)
    phrases_en: list[NonEmpty] = Field(default_factory=list)
    answer: NonEmpty  # who handles it instead, in Vietnamese
    answer_en: NonEmpty
    apology: bool = True  # False for thanks and greetings: no "sorry, I can only…"
    # Often told as the reason a procedure is needed ("bị mất trộm ví, giờ làm lại căn
    # cước"): said beside a procedure, it does not make the question another body's matter.
    reason: bool = False


class Outside(Strict):
    """The file of topics outside the commune's services."""

    topics: list[OutsideTopic] = Field(min_length=1)


class OpeningHours(Strict):
    """When the one-stop desk receives citizens on some weekdays (working days only)."""

    weekdays: list[Annotated[int, Field(ge=1, le=7)]] = Field(min_length=1)  # ISO: 1 = Monday
    start: dt.time
    end: dt.time


class ProfileSource(Strict):
    """Where a fact of the commune profile was taken from."""

    about: NonEmpty  # which fields, e.g. "address, hotline"
    url: NonEmpty
    checked: dt.date


class Commune(Strict):
    """A commune's profile. Empty fields are unknown and are left out of answers."""

    slug: NonEmpty
    name: NonEmpty  # e.g. "Xã Hát Môn"
    province: NonEmpty  # e.g. "Thành phố Hà Nội"
    address: str = ""
    hours: str = ""
    hours_en: str = ""
    opening: list[OpeningHours] = Field(default_factory=list)  # for "are staff there now?"
    hotline: str = ""
    # A wider help line (e.g. the province's public-service centre) while the commune's own
    # hotline is unknown, said as such.
    support_line: str = ""
    support_line_en: str = ""
    email: str = ""
    website: str = ""
    # A public list of the province's one-stop desks with their addresses and hotlines.
    directory_url: str = ""
    map_url: str = ""
    online_portal: str = ""  # where the commune's applications are submitted online
    zalo_oa: str = ""
    telegram_bot: str = ""  # username without @
    # Communes merged into this one on 1 July 2025, as citizens still name them.
    former_communes: list[NonEmpty] = Field(default_factory=list)
    sources: list[ProfileSource] = Field(default_factory=list)
