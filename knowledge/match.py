"""Finding the procedure a question is about.

Each procedure contributes *phrases*: its official name (a long portal name without aliases
also piece by piece), each colloquial alias, each example question, the English name and
aliases; FAQ entries and topics outside the commune's services contribute their questions.
A phrase and the question are sets of folded terms — syllables and syllable pairs, question
phrasing ("mất bao lâu", "cần gì") left out — weighted by inverse document frequency.

A phrase fits a question by how much of each the shared terms cover:
``(shared / question) ** QUERY_EXPONENT * (shared / phrase) ** PHRASE_EXPONENT``. A procedure
takes its best-fitting phrase, weighed with how much of the question all its phrases and its
summary explain together. Scores lie in [0, 1], so the thresholds in ``knowledge.answer`` mean
the same with 70 or 2,700 procedures loaded. One question is scored against every phrase at
once with numpy.

Misspellings are corrected against the index vocabulary first (Telex leftovers, held keys,
a dropped "n", regional spellings such as "tạm chú"/"tạm trú", one slip in a long word).
"""

from __future__ import annotations

import math
import re
import tomllib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from knowledge.loader import KnowledgeBase
from knowledge.schema import Faq
from knowledge.text import bigrams, fold, is_syllable, tokenize, translate_english, typing_variants


class Aspect(StrEnum):
    """What a question asks about a procedure; the answer leads with it."""

    DOCUMENTS = "documents"
    FEE = "fee"
    TIME = "time"
    WHERE = "where"
    ONLINE = "online"
    LEGAL = "legal"
    ELIGIBILITY = "eligibility"
    STEPS = "steps"
    RESULT = "result"


# Folded phrases that reveal the aspect asked ("có mất phí ko" → FEE).
ASPECT_CUES: dict[Aspect, tuple[str, ...]] = {
    Aspect.DOCUMENTS: ("giay to", "ho so gom", "ho so can", "can ho so", "mang gi", "mang theo",
                       "can gi", "chuan bi", "thanh phan", "nhung gi", "giay gi", "can giay",
                       "giay nao", "them gi", "nop them", "photo", "khong co giay", "thieu giay",
                       "chua co giay", "thong tin gi", "khai gi", "khai nhung gi",
                       "phai cong chung", "can cong chung", "can mang", "nguoi lam chung",
                       "ho so the nao", "ho so gi", "nhung ho so nao", "mang ban goc",
                       "mang ban chinh", "nop gi", "nop nhung gi", "ho so gom gi",
                       "dem theo", "dem gi", "can dem", "ho so ra sao", "ho so nhu the nao",
                       "ho so nhu nao",
                       "documents", "papers", "bring", "what do i need"),
    Aspect.FEE: ("phi", "tien", "bao nhieu tien", "ton tien", "ton phi", "ton bao nhieu", "ton kem",
                 "het bao nhieu", "mat bao nhieu", "mat dong", "dong nao", "bao nhieu 1 ban",
                 "bao nhieu mot ban", "bao nhieu 1 trang", "gia bao nhieu", "bao nhieu mot trang",
                 "fee", "cost", "how much", "pay", "charge", "free"),
    Aspect.TIME: ("bao lau", "may ngay", "thoi gian", "khi nao co", "bao gio co", "bao nhieu ngay",
                  "lau khong", "lau k", "cho lau", "doi lau", "may hom", "bao hom", "thi xong",
                  "khi nao xong", "bao gio xong", "thoi han giai quyet", "giai quyet trong",
                  "khi nao lay duoc", "bao gio lay duoc", "lay ngay", "lay trong ngay",
                  "lay luon duoc", "co ngay khong", "lay luon trong ngay", "xong trong ngay",
                  "lay lien", "lam trong ngay", "trong ngay co", "trong ngay duoc", "trong ngay dc",
                  "nhan luon", "bao gio duoc", "bao gio thi duoc", "khi nao duoc",
                  "khi nao thi duoc", "luc nao", "bao nhieu thoi gian",
                  "how long", "how many days", "when will"),
    Aspect.WHERE: ("o dau", "nop dau", "cho nao", "noi nao", "dia chi", "den tan", "phai den",
                   "nop o", "nop tai", "lam o xa", "lam tai", "o xa duoc", "tai xa", "xin o",
                   "o xa minh", "ve xa minh", "tai xa minh", "o xa dc", "tai xa dc",
                   "lam o cong an", "o cong an xa", "tai cong an", "nop cho ai", "gui cho ai",
                   "len huyen", "xa lam hay",
                   "where"),
    Aspect.ONLINE: ("online", "truc tuyen", "qua mang", "dich vu cong", "vneid", "tren mang",
                    "internet", "qua dien thoai", "website", "qua app", "tren app",
                    "bang app"),
    Aspect.LEGAL: ("can cu", "luat nao", "nghi dinh", "thong tu", "phap ly", "van ban nao",
                   "quy dinh nao", "theo quy dinh", "luat gi", "quy dinh o dau", "legal basis",
                   "which law", "regulation"),
    Aspect.ELIGIBILITY: ("ai duoc", "ai thi duoc", "ai co the", "dieu kien", "doi tuong", "who can",
                         "nhu the nao thi duoc", "co duoc huong", "duoc huong khong",
                         "nop thay", "lam thay", "di thay", "ky thay", "thay duoc khong",
                         "thay co duoc", "thay dc", "mot minh", "1 minh", "dung ra",
                         "tu di nop", "tu nop", "tu di dang ky", "tu dang ky", "tu di lam",
                         "tu lam duoc", "ho duoc khong", "ho dc khong", "ho duoc ko",
                         "ho dc ko", "eligible", "ai phai", "ai dc", "ai di khai", "ai di lam",
                         "ai co quyen", "ai thi phai", "nhung ai", "ai lam duoc", "ai lam dc",
                         "ai nop duoc", "ai nop dc", "di cung", "phai di kem"),
    Aspect.STEPS: ("cac buoc", "quy trinh", "trinh tu", "thu tuc nhu the nao", "thu tuc ntn",
                   "may buoc", "nhung buoc nao", "buoc nao",
                   "steps", "process"),
    Aspect.RESULT: ("ket qua la gi", "ket qua la giay gi", "ket qua nhan duoc", "nhan duoc gi",
                    "nhan duoc giay gi", "duoc cap giay gi", "cap cho giay gi", "bang van ban",
                    "nhan duoc nhung giay gi", "nhan duoc nhung gi", "duoc cap nhung giay gi",
                    "what will i get", "what do i receive"),
}

# How people ask, not what about: removed before matching, so that "mất bao lâu" in an example
# question does not make that example resemble every other question about time. "mất" stays
# where it means lost or died; "có mặt" (present) folds to the same letters and goes.
QUESTION_PHRASES = sorted(
    (tuple(p.split()) for p in """
    le phi|mat phi|mat le phi|bao nhieu tien|het bao nhieu|mat tien|ton tien|mat bao nhieu
    bao nhieu|mat bao lau|bao lau|mat may ngay|mat thoi gian|khi nao co|bao gio co|co mat
    thoi han giai quyet
    can nhung gi|can gi|mang gi|mang theo gi|giay to gi|ho so gom nhung gi|can chuan bi gi
    can giay gi|can nhung giay gi|giay gi|giay to nao
    can ho so gi|ho so gom gi|ho so gi
    can chuan bi nhung gi|chuan bi nhung gi|can chuan bi|mang theo nhung gi
    nop o dau|lam o dau|o dau|cho nao|nhu the nao|the nao|lam sao|ra sao|thi sao|thu tuc sao
    nhu nao|tinh the nao|tinh nhu the nao|tinh nhu nao|tinh sao|tinh ra sao
    hoi chut ve|hoi ti ve|hoi xiu ve|cho hoi ve|hoi ve|tim hieu ve|quay lai|quay lai cai|tro lai
    uy ban nhan dan|uy ban
    how much|how long|what do i need|where do i|where can i|how do i|how can i
    """.replace("\n", "|").split("|") if p.strip()),
    key=len, reverse=True,
)


_PHRASES_BY_FIRST: dict[str, list[tuple[str, ...]]] = defaultdict(list)
for _phrase in QUESTION_PHRASES:
    _PHRASES_BY_FIRST[_phrase[0]].append(_phrase)


def strip_question_phrasing(tokens: list[str]) -> list[str]:
    """Remove question phrasing ("mất bao lâu", "cần gì") from a token list."""
    out: list[str] = []
    i = 0
    while i < len(tokens):
        for phrase in _PHRASES_BY_FIRST.get(tokens[i], ()):
            if tuple(tokens[i : i + len(phrase)]) == phrase:
                i += len(phrase)
                if out and out[-1] == "can":  # "cần" + "giấy tờ gì": asks what is needed
                    out.pop()
                break
        else:
            out.append(tokens[i])
            i += 1
    return out


# Folded words that carry no meaning for finding the procedure (question words, politeness,
# pronouns, aspect words). Bigrams are still formed across them ("so do" stays "so_do").
STOP_WORDS = frozenset(
    """
    a ad admin ah ak ba bac bao be biet bn cac can cho chi chu chua co con cua cung da dang
    day de den di dieu do duoc em gi gio giup hay hoi hoac huong khi khong kia la lam len
    lieu luc ma mang minh moi muon nao nay neu nghe nha nhe nhi nhieu nhu nhung nua o oi
    phai phi qua ra rang roi se tai the theo thi thoi gian thu tuc tien toi tren trong tu u
    va vay ve voi vui long xin i me my we our you your he she it its they them an to of for
    in on at by with and or is are am was were does did how what which who whom where when
    why could should would will shall may might must please want need get got have has had
    this that these those much many take takes cost costs fee fees pay any there here about
    from as if just also like procedure procedures apply application
    bo ong noi e v dc ok oke hom ah nhe anh ay ruot tui phuong xa
    s m commune office ward local vietnam vietnamese people committee now documents document
    papers paper old time lien quan loai last week his her ago month yesterday
    """.split()
)
# Everyday words typed right far more often than they are slips for a neighbouring spelling
# ("đầu làm" must not become "đầu năm").
NEVER_CORRECTED = frozenset(
    "lam la co cho thi ma va voi o gi khong duoc nao roi can con di den cua nay khi ra".split()
)

# Several folded Vietnamese words are stop words only as syllables: "can" (cần / căn),
# "the" (thế / thẻ), "bao" (bao nhiêu / bảo trợ). Their bigrams ("can_cuoc", "the_can",
# "bao_tro") still score, so meaning survives where it matters.

MATCHING_FILE = Path(__file__).resolve().parent / "matching.toml"
VARIANT_FACTOR = 0.85  # a special-case procedure whose case the question does not name
UNKNOWN_WEIGHT_FACTOR = 0.5  # an unknown word weighs half as much as the rarest known word
QUERY_EXPONENT = 0.3  # how much unexplained words in the question cost
PHRASE_EXPONENT = 0.7  # how much words of the phrase missing from the question cost
COVERAGE_EXPONENT = 0.45  # how much "all its phrases together explain the question" counts
PART_FACTOR = 0.85  # a piece of an official name cut at a comma names the procedure less well
EXAMPLE_FACTOR = 0.9  # an example question names its procedure less directly than an alias
FAQ_FACTOR = 0.95  # a FAQ must match clearly better than its procedure to be chosen
RULE_SHARE = 0.5  # a FAQ asked the way the question asks the law, this close, answers it
STANDING_SHARE = 0.92  # a rule of its own this close to the procedure answers a rule question
# A question this long tells a story: rather offer choices than decline it, and other bodies'
# matters it names are told in passing.
STORY_WORDS = 25
CLEAR = 0.6  # a procedure named this clearly is asked about whatever else the question mentions
SAME_FIELD = 0.3  # a procedure matched this well puts the question in its field (its FAQ's too)
MARKED_SHARE = 0.3  # a question with this share of words marked was typed with its marks
LONG_PHRASE = 3  # a listed phrase this long is found folded too (a misplaced mark is a slip)
SHORTLIST = 40  # best-fitting procedures whose coverage is computed
# The civil-status events: a question naming one of them (a death) is not about a procedure
# named for another (a birth), whatever else they share ("chồng người Hàn", "giấy bị mất").
# One named for civil status in general ("trích lục hộ tịch") is for every event; an event
# said not to have happened ("chưa đăng ký kết hôn"), or to have happened already ("đã kết
# hôn", "married to …": what the asker is, not what they ask for), is not named.
EVENTS = frozenset({"khai_sinh", "khai_tu", "ket_hon"})
_NOT_ASKED = frozenset({"chua", "khong", "da"})
OTHER_EVENT_FACTOR = 0.85  # a procedure named for another event than the question's
FAQ = "faq:"  # key prefix of FAQ entries
OUTSIDE = "out:"  # key prefix of topics outside the commune's services


@dataclass(frozen=True)
class Phrase:
    """One way of naming a procedure, as weighted terms."""

    key: str  # procedure code, or "faq:<id>"
    terms: frozenset[str]
    weight: float  # sum of term weights
    factor: float  # how strongly this phrase names its procedure (1 = fully)


@dataclass(frozen=True)
class Candidate:
    """A procedure (or FAQ) with its score for one question."""

    key: str  # procedure code, "faq:<id>" or "out:<id>"
    code: str  # the procedure code ("out:<id>" for a topic outside the commune's services)
    score: float
    coverage: float = 1.0  # share of the question's weight its words explain

    @property
    def outside(self) -> bool:
        """Whether this is a service the commune does not provide."""
        return self.key.startswith(OUTSIDE)

    @property
    def rule(self) -> bool:
        """Whether this is a FAQ entry (a legal rule) related to no procedure."""
        return self.code.startswith(FAQ)


@dataclass(frozen=True)
class Analysis:
    """What the matcher understood from a question."""

    tokens: list[str]
    content: list[str]  # tokens that count for matching (after stop words, corrected)
    aspects: list[Aspect]
    english: bool
    candidates: list[Candidate] = field(default_factory=list)
    family: tuple[str, ...] = ()  # procedures to ask back among ("giấy phép xây dựng")
    elsewhere: bool = False  # about something else that shares a word ("bài hát Giấy khai sinh")
    # … only because it mentions an everyday thing or a foreign word its best match does not
    # know ("Google đã khai tử …"; a story's "bác sĩ bảo …" in passing)
    strayed: bool = False
    rules: frozenset[str] = frozenset()  # the kinds of rule it asks for ("thời hạn": deadline)
    yes_no: bool = False  # asked as a yes-or-no question ("… có được không")
    how: bool = False  # asks how to do it ("làm thế nào") and no aspect

    @property
    def shown(self) -> list[Aspect]:
        """What a reply about a procedure leads with: the aspects asked, or its steps."""
        return self.aspects or ([Aspect.STEPS] if self.how else [])


_ENGLISH = frozenset(
    """
    how what where who when which why do does did i my me is are the a an to of for can need
    get register registration certificate birth death marriage card identity fee cost long
    take where submit online please want apply baby child married house land permit
    residence temporary permanent copy certify signature business household much
    check status ready notify office address hours opening open human talk speak english
    application
    vietnamese switch documents papers cost tell hello thanks thank bye goodbye
    and or with in on at from about here there this that it you your we our they have has had
    be am was were will would should could may might not no yes if so but than then also just
    any some all many more only still yet now today tomorrow person staff member bot real
    track follow marry wife husband son daughter mother father parents id lost new
    renew replace change old year years day days money pay paid free send bring form
    good morning afternoon evening hi hey
    """.split()
)
# Vietnamese chat shorthand, no English word: "lam online dc ko a" is Vietnamese.
_CHAT_SHORTHAND = frozenset("ko k kh khg kg hok dc dk ntn bn ad r vs mk mn ak ah nhe nha j".split())
_VIETNAMESE_ONLY = re.compile(
    r"[ăâđêôơưàáảãạằắẳẵặầấẩẫậèéẻẽẹềếểễệìíỉĩịòóỏõọồốổỗộờớởỡợùúủũụừứửữựỳýỷỹỵ]")


def is_english(text: str, tokens: list[str]) -> bool:
    """Heuristic: no Vietnamese letters, some common English words, and mostly words that
    are English or cannot be Vietnamese syllables ("father", "citizen")."""
    if not tokens:
        return False
    # Vietnamese letters only in a name ("Hát Môn") or a borrowed word ("fiancée") allowed.
    marked = sum(bool(_VIETNAMESE_ONLY.search(w)) and not w[:1].isupper() for w in text.split())
    if marked > len(tokens) // 8 or sum(bool(_VIETNAMESE_ONLY.search(w.lower()))
                                         for w in text.split()) > len(tokens) // 3:
        return False
    words = [t for t in tokens if not any(c.isdigit() for c in t)]  # codes, phone numbers
    hits = sum(t in _ENGLISH for t in words)
    foreign = sum(t not in _ENGLISH and t not in _CHAT_SHORTHAND and not is_syllable(t)
                  for t in words)
    # "can giay to gi": English words that are also Vietnamese syllables do not make it English
    unmistakable = any(not is_syllable(t) and t not in _CHAT_SHORTHAND for t in words)
    return unmistakable and hits >= 2 and (hits + foreign) / max(len(words), 1) >= 0.5


def written_language(text: str) -> str | None:
    """"en" or "vi" when a typed message clearly is one of them, else None ("6789", "ok",
    and a Vietnamese keyword such as "gặp cán bộ" typed by someone who chose English)."""
    if sum(bool(_VIETNAMESE_ONLY.search(w)) for w in text.lower().split()) >= 4:
        return "vi"
    return "en" if is_english(text, tokenize(text)) else None


# "tốn bao lâu", "mất bao nhiêu ngày": time spent, not money; "tiện hỏi", "thuận tiện",
# "tiến độ" fold to the same letters as "tiền" but are not money either, nor is money received
# ("nhận tiền", "lĩnh tiền"); "người đã có giấy tờ" tells who applies, not which papers are
# asked; "ngủ lại mấy hôm" is a stay, not a wait; "đổi địa chỉ" a change, not a question where.
_SPENT_TIME = re.compile(r" (?:ton|mat|het)(?= (?:bao lau|thoi gian|may ngay|bao nhieu ngay) )"
                         r"| tien(?= (?:hoi|the|loi|do) )|(?<= thuan) tien(?= )"
                         r"|(?:(?<= ho tro)|(?<= nhan)|(?<= linh)) tien"
                         r"|(?<= da co) giay to(?= )"
                         r"|(?:(?<= ngu)|(?<= o)|(?<= choi)|(?<= ngu lai)|(?<= o lai)) (?:may|vai) "
                         r"(?:hom|ngay|dem|tuan|thang)(?= )"
                         r"|(?:(?<= doi)|(?<= sua)|(?<= chuyen)) dia chi(?= )")


# A question ending in "… không?", "… chưa?": yes or no, as a rule answers.
_YES_NO = re.compile(r"\b(?:khong|ko|k|kg|hong|hok|chua)\W*"
                     r"(?:\b(?:a|ah|ad|vay|nhi|nhe|ha|v|z)\W*)?$")


# "có được hỗ trợ mai táng không": whether one may get it.
MAY_GET = re.compile(r"\bco (?:duoc|dc)\b")
# A yes/no question whether something may be done, when it asks no other aspect.
_MAY_I = re.compile(r" (?:thi|neu|co) (?:\w+ ){1,6}(?:duoc|dc)"
                    r" (?:khong|ko|k|hong|kg|hok|chua|a|ah) ")


# "How do I …" ("mất cccd làm lại ntn"): answered with the steps when no aspect is asked;
# "được chia như thế nào" asks what one gets, not how to do it.
_HOW = re.compile(r" (?:the nao|nhu nao|lam sao|ra sao|thu tuc sao|thu tuc gi"
                  r"|(?:phai|thi|can) lam gi|how do|how to|how can) ")
_HOW_RECEIVED = re.compile(r" duoc (?:\w+ ){1,3}(?:nhu )?the nao ")


def _asks_how(tokens: list[str]) -> bool:
    """Whether the question asks how to do something."""
    text = f" {' '.join(tokens)} "
    return _HOW.search(text) is not None and _HOW_RECEIVED.search(text) is None


_CUES_LONGEST_FIRST = sorted(((cue, aspect) for aspect, cues in ASPECT_CUES.items()
                              for cue in cues), key=lambda pair: -len(pair[0]))
# Whole follow-ups that name an aspect by a word that elsewhere means something else ("hồ sơ?"
# after a procedure answer asks its papers; "nộp hồ sơ ở đâu" does not).
_ALONE: dict[str, Aspect] = {"ho so": Aspect.DOCUMENTS, "hs": Aspect.DOCUMENTS}


def detect_aspects(folded: str) -> list[Aspect]:
    """Aspects named in a folded question, in the order they are asked."""
    if folded.strip() in _ALONE:
        return [_ALONE[folded.strip()]]
    padded = re.sub(" +", " ", _SPENT_TIME.sub(" ", f" {folded} "))
    found: dict[Aspect, int] = {}
    # The longest cue first, its words then taken: "nhận được giấy gì" asks the result, not
    # also the papers of "giấy gì".
    for cue, aspect in _CUES_LONGEST_FIRST:
        while (at := padded.find(f" {cue} ")) >= 0:
            found[aspect] = min(found.get(aspect, at), at)
            padded = f"{padded[:at + 1]}{'_' * len(cue)}{padded[at + 1 + len(cue):]}"
    if not found and _MAY_I.search(padded):
        return [Aspect.ELIGIBILITY]  # "nhà đi thuê thì có nhập khẩu vào được không"
    return sorted(found, key=lambda aspect: found[aspect])


# Words that only say which aspect is asked ("online", "bao lâu"): a follow-up made of them
# names no procedure of its own.
CUE_WORDS = frozenset(w for cues in ASPECT_CUES.values() for cue in cues for w in cue.split())
# … and their word pairs, never corrected into something else ("thời gian cấp" is no "dân cấp").
CUE_PAIRS = frozenset(pair for cues in ASPECT_CUES.values() for cue in cues
                      for pair in zip(cue.split(), cue.split()[1:], strict=False))


# Regional spellings: initial and final consonants that southern/central speakers swap; and a
# final "ch" typed without its "h" ("tác hộ": tách hộ).
_INITIAL_SWAPS = (("tr", "ch"), ("ch", "tr"), ("s", "x"), ("x", "s"), ("gi", "d"), ("d", "gi"),
                  ("r", "d"), ("d", "r"), ("v", "d"), ("l", "n"), ("n", "l"))
_FINAL_SWAPS = (("ng", "n"), ("n", "ng"), ("c", "ch"), ("c", "t"), ("t", "c"),
                ("i", "y"), ("y", "i"))


def dropped_h(token: str) -> list[str]:
    """``token`` with the "h" of a final "nh" or "ch" put back ("tìn": tình)."""
    return [token + "h"] if token.endswith(("n", "c")) and not token.endswith("ng") else []


def english(text: str) -> list[str]:
    """Tokens of an English text, with known terms read as Vietnamese (as queries are)."""
    return translate_english(tokenize(text))


def read_example(text: str) -> list[str]:
    """Tokens of an example question, read as the matcher reads a question in its language."""
    tokens = tokenize(text)
    return translate_english(tokens) if is_english(text, tokens) else tokens


def regional_variants(token: str) -> list[str]:
    """Spellings of ``token`` with one swapped initial or final consonant."""
    out = [new + token[len(old):] for old, new in _INITIAL_SWAPS if token.startswith(old)]
    out += [token[: -len(old)] + new for old, new in _FINAL_SWAPS if token.endswith(old)]
    return out


@dataclass(frozen=True)
class Variant:
    """A special case of a procedure, marked by words of its name, and how citizens name it."""

    marker: str  # words in the special procedure's official name ("cấp lại")
    named_by: tuple[Wording, ...]
    first: bool = True  # naming the case puts the special procedure first
    # markers of cases this one, named, rules out ("gãy" is no "cấp đổi", however "đổi" is said)
    over: frozenset[str] = frozenset()


@dataclass(frozen=True)
class MatchingWords:
    """The word lists of ``matching.toml``, folded."""

    negation: re.Pattern[str]
    variants: tuple[Variant, ...]
    # (phrasings, codes offered, phrasings that ask for the first code, phrasings without
    # which the family is not asked back)
    ask_back: tuple[tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]],
                    ...]
    off_topic: tuple[Wording, ...]
    everyday: tuple[Wording, ...]
    local_matters: tuple[Wording, ...]
    to_the_office: tuple[Wording, ...]
    rule_cues: tuple[tuple[str, Wording], ...]  # (kind of rule, how it is asked)

    @classmethod
    def load(cls, path: Path = MATCHING_FILE) -> MatchingWords:
        """Read and fold the lists."""
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        negations = sorted((" ".join(_words(n)) for n in data["negations"]), key=len,
                           reverse=True)
        negation = re.compile(r"\b(?:" + "|".join(map(re.escape, negations))
                              + r")\b[^,.;:!?\n]*?(?=[,.;:!?\n]|\bma\b|\bbut\b|$)")
        variants = tuple(Variant(" ".join(_words(v["name"])), tuple(map(Wording.of, v["named_by"])),
                                 bool(v.get("named_first", True)),
                                 frozenset(" ".join(_words(o)) for o in v.get("over", [])))
                         for v in data["variants"])
        raised = tuple(f" {' '.join(_words(w))} " for w in data.get("raised", []))
        ask_back = tuple((tuple(a["words"]), tuple(a["codes"]),
                          tuple(f" {' '.join(_words(w))} " for w in a.get("first_if", [])),
                          raised if a.get("only_raised") else ())
                         for a in data.get("ask_back", []))
        off_topic = tuple(map(Wording.of, data.get("off_topic", [])))
        everyday = tuple(map(Wording.of, data.get("everyday", [])))
        local_matters = tuple(map(Wording.of, data.get("local_matters", [])))
        to_the_office = tuple(map(Wording.of, data.get("to_the_office", [])))
        rule_cues = tuple((kind, Wording.of(w)) for kind, wordings
                          in data.get("rule_cues", {}).items() for w in wordings)
        return cls(negation, variants, ask_back, off_topic, everyday, local_matters,
                   to_the_office, rule_cues)

    def named_cases(self, asked: Asked) -> dict[int, bool]:
        """The special cases (indexes into ``variants``) a question names, each with whether
        it then comes first; a case another named case rules out is left out."""
        named = [i for i, v in enumerate(self.variants) if said(v.named_by, asked)]
        ruled_out = frozenset().union(*(self.variants[i].over for i in named))
        return {i: self.variants[i].first for i in named
                if self.variants[i].marker not in ruled_out}

    def rule_cues_in(self, asked: Asked) -> frozenset[str]:
        """The kinds of rule the question asks for ("thời hạn": a deadline; "thời hạn giải
        quyết" is the processing time, an aspect)."""
        asked = replace(asked, text=_PROCESSING_TIME.sub(" ", asked.text))
        return frozenset(kind for kind, w in self.rule_cues if found(w, asked))

    def elsewhere(self, question: str | Asked) -> bool:
        """True when the question is about something else (a song, a honeymoon, a hotel)."""
        asked = question if isinstance(question, Asked) else Asked.of(question)
        return said(self.off_topic, asked)

    def everyday_in(self, asked: Asked, *, everyday: bool) -> list[Wording]:
        """The local affairs the question mentions ("bãi rác") and, with ``everyday``, the
        everyday things ("điện thoại samsung")."""
        return [w for w in (*(self.everyday if everyday else ()), *self.local_matters)
                if found(w, asked)]

    def without_negated(self, text: str) -> str:
        """The question less what it says it is not about (folded); also "không X mà Y"."""
        return _NOT_BUT.sub(" ma ", self.negation.sub(" ", fold(text)))


_WRITTEN = re.compile(r"\w+")


@dataclass(frozen=True)
class Wording:
    """A listed phrase, space-padded, as written and folded."""

    written: str
    folded: str  # "" for one syllable with its marks: folded it means too many things ("đổi")
    long: bool = False  # three words or more: found folded even in a question typed with marks

    @classmethod
    def of(cls, phrase: str) -> Wording:
        one_marked = len(phrase.split()) == 1 and fold(phrase) != phrase.lower()
        return cls(f" {' '.join(_WRITTEN.findall(phrase.lower()))} ",
                   "" if one_marked else f" {' '.join(_words(phrase))} ",
                   len(phrase.split()) >= LONG_PHRASE)


@dataclass(frozen=True)
class Asked:
    """A question as its listed phrases are looked for in it: with its marks when it is typed
    with them ("địa điểm thì" is no "điểm thi"), folded otherwise."""

    text: str
    marked: bool
    folded: str = ""  # the text folded, where a phrase of three words or more is also looked for

    @classmethod
    def of(cls, question: str) -> Asked:
        written = _WRITTEN.findall(question.lower())
        marked = sum(bool(_VIETNAMESE_ONLY.search(w)) for w in written) >= MARKED_SHARE * max(
            len(written), 1)
        question = _SHORTHAND_WORD.sub(lambda m: _SHORTHAND[m[0].lower()], question)
        # An age typed as a number is also said as the age group of the identity card ("dưới
        # 14t": below it).
        question = _AGE.sub(lambda m: f"{m[0]} ({'dưới' if int(m[2]) < 14 or m[1] else 'từ đủ'}"
                                      " 14)", question)
        folded = f" {' '.join(_words(question))} "
        return cls(f" {' '.join(_WRITTEN.findall(question.lower()))} " if marked else folded,
                   marked, folded)


def found(wording: Wording, asked: Asked) -> bool:
    """Whether the question contains the phrase; one of three words or more also when the
    question misplaces a mark in it ("người nươc ngoai")."""
    phrase = wording.written if asked.marked else wording.folded
    return bool(phrase) and (phrase in asked.text or (
        asked.marked and wording.long and wording.folded in asked.folded))


def said(wordings: Iterable[Wording], asked: Asked) -> bool:
    """Whether the question contains one of the phrases (``found`` inlined: it runs for
    hundreds of phrases per question)."""
    text = asked.text
    if asked.marked:
        folded = asked.folded
        return any(w.written in text or (w.long and w.folded in folded) for w in wordings)
    return any(w.folded in text for w in wordings if w.folded)


_VOWEL_GROUPS = re.compile(r"[aeiouy]+")
_AGE = re.compile(r"(\b(?:dưới|duoi|chưa đủ|chua du|under) )?\b(\d{1,2}) ?"
                  r"(?:tuổi|tuoi|t|years? old)\b", re.IGNORECASE)
# Chat shorthand spelled out before listed phrases are looked for ("bn tuổi" asks an age).
_SHORTHAND = {"bn": "bao nhiêu", "ko": "không", "k": "không", "kg": "không", "khum": "không",
              "hok": "không", "đc": "được", "dc": "được", "j": "gì", "ntn": "như thế nào",
              "hs": "hồ sơ", "đk": "đăng ký", "dk": "đăng ký", "đky": "đăng ký",
              "dky": "đăng ký", "cc": "căn cước", "ck": "chồng", "vk": "vợ", "ng": "người"}
_SHORTHAND_WORD = re.compile(r"\b(?:" + "|".join(_SHORTHAND) + r")\b", re.IGNORECASE)
# "thời hạn giải quyết", "bao lâu … kể từ khi nộp hồ sơ": the processing time, no deadline
_PROCESSING_TIME = re.compile(r" (?:thời hạn|thoi han) (?:giải quyết|giai quyet) "
                              r"| (?:kể từ|ke tu|tính từ|tinh tu)(?= (?:(?:khi|ngày|ngay|lúc|luc)"
                              r" )?(?:nộp|nop|nhận|nhan) )")
_NOT_BUT = re.compile(r"\b(?:khong|ko)\b[^,.;:!?\n]*?\bma\b")


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", fold(text))


def _plain_name(name: str) -> str:
    """A procedure's folded name without the "thủ tục" it may start with."""
    return re.sub(r"^thu tuc ", "", " ".join(name.split()))


class Matcher:
    """An index over the procedures and FAQ entries of one knowledge base."""

    def __init__(self, kb: KnowledgeBase) -> None:
        # A FAQ entry speaks for its related procedure; one with none stands for itself.
        self.faq_codes = {f"{FAQ}{f.id}": f.procedure or f"{FAQ}{f.id}" for f in kb.faqs}
        self.words = MatchingWords.load()
        # How each FAQ entry's phrasings ask what the law says.
        self._rule_cues = {f"{FAQ}{f.id}": frozenset().union(*(
            self.words.rule_cues_in(Asked.of(q)) for q in [*f.questions, *f.questions_en]))
            for f in kb.faqs}
        # The special cases each procedure is for, as indexes into the variants.
        names = {p.code: f" {' '.join(_words(p.name))} " for p in kb.procedures.values()}
        self._cases: dict[str, list[int]] = {}
        for code, name in names.items():
            cases = [i for i, v in enumerate(self.words.variants) if f" {v.marker} " in name]
            if cases:
                self._cases[code] = cases
        # The common variant of each special case ("đăng ký khai sinh" for "… có yếu tố nước
        # ngoài"), with the cases that, named, make it the less likely one.
        by_name = {_plain_name(name): code for code, name in names.items()}
        self._commons: dict[str, list[tuple[int, str]]] = defaultdict(list)
        for code, cases in self._cases.items():
            for i in cases:
                marker = self.words.variants[i].marker
                # "… có yếu tố nước ngoài tại khu vực biên giới" is the border case of "… có
                # yếu tố nước ngoài"; "đăng ký lại khai tử" the re-registration of "đăng ký
                # khai tử"
                common = by_name.get(_plain_name(re.sub(
                    rf" (?:tai )?{marker} ", " dang ky " if marker == "dang ky lai" else " ",
                    names[code])))
                if common and common != code and (i, code) not in self._commons[common]:
                    self._commons[common].append((i, code))
        # Each procedure's name and aliases as folded words, longest first.
        self._names = {p.code: sorted({f" {' '.join(tokenize(n))} " for n in (p.name, *p.aliases)}
                                      - {"  "}, key=len, reverse=True)
                       for p in kb.procedures.values()}
        self._name_words = {code: frozenset(" ".join(names).split())
                            for code, names in self._names.items()}
        # Each outside topic's phrases as folded words, to tell one said outright.
        self._outside_phrases = [(f" {' '.join(tokenize(p))} ", f"{OUTSIDE}{topic.id}")
                                 for topic in kb.outside if not topic.reason
                                 for p in topic.phrases]
        self._events: dict[str, frozenset[str]] = {}  # the events each procedure is named for
        for proc in kb.procedures.values():
            pairs = set(bigrams(tokenize(proc.name)))
            self._events[proc.code] = frozenset() if "ho_tich" in pairs else EVENTS & pairs
        raw: list[tuple[str, list[str], float]] = []
        context: dict[str, list[str]] = defaultdict(list)  # words that explain, not name
        for proc in kb.procedures.values():
            # A long portal name without aliases is also matched piece by piece.
            parts = [] if proc.aliases else re.split(r"[,;()]", proc.name)
            named = [(proc.name, 1.0), *((p, PART_FACTOR) for p in parts if len(parts) > 1)]
            named += [(text, 1.0) for text in proc.aliases]
            raw += [(proc.code, tokenize(text), factor) for text, factor in named]
            raw += [(proc.code, read_example(text), EXAMPLE_FACTOR) for text in proc.examples]
            raw += [(proc.code, english(text), 1.0) for text in [proc.name_en, *proc.aliases_en]]
            context[proc.code] = tokenize(proc.summary) + english(proc.summary_en)
        for faq in kb.faqs:
            raw += [(f"{FAQ}{faq.id}", tokenize(text), FAQ_FACTOR) for text in faq.questions]
            raw += [(f"{FAQ}{faq.id}", english(text), FAQ_FACTOR) for text in faq.questions_en]
        for topic in kb.outside:
            raw += [(f"{OUTSIDE}{topic.id}", tokenize(text), 1.0) for text in topic.phrases]
            raw += [(f"{OUTSIDE}{topic.id}", english(text), 1.0) for text in topic.phrases_en]
        raw = [entry for entry in raw if entry[1]]
        # A FAQ entry of a procedure counts as part of that procedure's document.
        self._weights = self._idf([(self.faq_codes.get(k, k), t, f) for k, t, f in raw],
                                  len(set(kb.procedures) | set(self.faq_codes.values()))
                                  + len(kb.outside))
        self.vocabulary = frozenset(t for t in self._weights if "_" not in t)
        self._by_initial: dict[str, list[str]] = defaultdict(list)
        for word in sorted(self.vocabulary):
            self._by_initial[word[0]].append(word)
        self._unknown = max(self._weights.values(), default=1.0) * UNKNOWN_WEIGHT_FACTOR
        self._spellings = sorted(self.vocabulary | CUE_WORDS)  # what a slip may be a slip of
        # Family names asked back, keyed by what matching keeps of them.
        self._ask_back: dict[tuple[str, ...], tuple[str, ...]] = {}
        # … and each family's words with its names' ("làm lại giấy khai sinh bị mất" names
        # the family in words of two of its names)
        self._families: list[tuple[frozenset[str], list[frozenset[str]], tuple[str, ...]]] = []
        self._first_if: dict[tuple[str, ...], tuple[str, ...]] = {}
        self._only_if: dict[tuple[str, ...], tuple[str, ...]] = {}
        for phrasings, codes, first_if, only_if in self.words.ask_back:
            known = tuple(c for c in codes if c in kb.procedures)
            if len(known) < 2:
                continue
            self._first_if[known], self._only_if[known] = first_if, only_if
            kept = [tuple(self._content(self.correct(tokenize(w)))) for w in phrasings]
            for wording in kept:
                if wording:
                    self._ask_back[wording] = known
            sets = [frozenset(n) for n in kept if n]
            self._families.append((frozenset().union(*sets), sets, known))
        self.phrases: list[Phrase] = []
        seen: set[tuple[str, frozenset[str]]] = set()
        for key, tokens, factor in raw:
            terms = self._terms(tokens)
            if terms and (key, terms) not in seen:
                seen.add((key, terms))
                weight = sum(self._weights[t] for t in terms)
                self.phrases.append(Phrase(key, terms, weight, factor))
        # Column arrays over phrases, so that one question is scored against all in numpy.
        self._keys = sorted({p.key for p in self.phrases})
        key_index = {key: i for i, key in enumerate(self._keys)}
        self._phrase_key = np.array([key_index[p.key] for p in self.phrases], dtype=np.int32)
        self._phrase_weight = np.array([p.weight for p in self.phrases])
        self._phrase_factor = np.array([p.factor for p in self.phrases])
        postings: dict[str, list[int]] = defaultdict(list)
        for i, phrase in enumerate(self.phrases):
            for term in phrase.terms:
                postings[term].append(i)
        self._postings = {t: np.array(ids, dtype=np.int32) for t, ids in postings.items()}
        # Every term a key knows (its phrases and context), as key postings for coverage.
        union: dict[str, frozenset[str]] = {
            key: self._terms(tokens) for key, tokens in context.items()}
        for phrase in self.phrases:
            union[phrase.key] = union.get(phrase.key, frozenset()) | phrase.terms
        self._knows = union
        key_postings: dict[str, list[int]] = defaultdict(list)
        for key, index in key_index.items():
            for term in union.get(key, ()):
                key_postings[term].append(index)
        self._key_postings = {t: np.array(ids, dtype=np.int32) for t, ids in key_postings.items()}

    @staticmethod
    def _terms(tokens: list[str]) -> frozenset[str]:
        """Content unigrams plus all bigrams of a token list, question phrasing left out."""
        tokens = strip_question_phrasing(tokens)
        return frozenset([t for t in tokens if t not in STOP_WORDS] + bigrams(tokens))

    def _idf(self, raw: list[tuple[str, list[str], float]], documents: int) -> dict[str, float]:
        """Inverse document frequency of every term (document = procedure or FAQ entry)."""
        keys_by_term: dict[str, set[str]] = defaultdict(set)
        for key, tokens, _ in raw:
            for term in self._terms(tokens):
                keys_by_term[term].add(key)
        n = max(documents, 1)
        return {term: math.log((n - len(keys) + 0.5) / (len(keys) + 0.5) + 1.0)
                for term, keys in keys_by_term.items()}

    def correct(self, tokens: list[str]) -> list[str]:
        """Replace unknown words by the closest known spelling, when one is close enough."""
        out: list[str] = []
        for i, token in enumerate(tokens):
            previous = out[-1] if out else ""
            following = tokens[i + 1] if i + 1 < len(tokens) else ""
            out.append(self._correct_one(token, previous, following))
        return out

    def _known_pair(self, a: str, b: str) -> bool:
        return f"{a}_{b}" in self._weights

    def _correct_one(self, token: str, previous: str, following: str) -> str:
        if token.isdigit() or token in NEVER_CORRECTED or (
                (previous, token) in CUE_PAIRS or (token, following) in CUE_PAIRS):
            return token
        neighbours = [(w, side) for w, side in ((previous, 0), (following, 1))
                      if w and w not in STOP_WORDS]

        def fits_side(word: str, n: str, side: int) -> bool:
            return self._known_pair(*((n, word) if side == 0 else (word, n)))

        def fits(word: str) -> bool:
            return any(fits_side(word, n, side) for n, side in neighbours)

        if fits(token) or (token in self.vocabulary and not neighbours):
            # … one side only: a slip of a word that fits both ("xác nhận tìn trạng": tình)
            if len(neighbours) == 2 and not all(fits_side(token, n, side)
                                                for n, side in neighbours):
                for variant in dropped_h(token):
                    if all(fits_side(variant, n, side) for n, side in neighbours):
                        return variant
            return token
        # A known word in an unknown pair may still be a regional slip ("tam chu" → "tam tru").
        for variant in [*typing_variants(token), *regional_variants(token)]:
            if fits(variant):
                return variant
        if token in self.vocabulary or token in STOP_WORDS:
            return token
        for variant in typing_variants(token):
            if variant in self.vocabulary:
                return variant
        if len(token) < 4 or is_syllable(token):
            return token
        # A slip that left no Vietnamese syllable ("sinhh", "kinnh"): the closest known word with
        # the same first letter. A word that is a syllable is left alone: it is more likely an
        # unknown real word ("tiet", "chieu") than a typo of a known one.
        limit = 1 if len(token) < 8 else 2
        candidates = self._by_initial.get(token[0], [])
        best = process.extractOne(token, candidates, scorer=Levenshtein.distance,
                                  score_cutoff=limit)
        return str(best[0]) if best and len(best[0]) >= 4 else token

    def _content(self, tokens: list[str]) -> list[str]:
        """The words that count for matching: question phrasing and stop words left out."""
        return [t for t in strip_question_phrasing(tokens) if t not in STOP_WORDS]

    def analyse(self, question: str, *, limit: int = 5) -> Analysis:
        """Tokenise, correct and score ``question`` against every phrase."""
        raw_tokens = tokenize(question)
        english = is_english(question, raw_tokens)
        tokens = self.correct(translate_english(raw_tokens) if english else raw_tokens)
        aspects = detect_aspects(" ".join(tokens))
        meant = self.words.without_negated(question)
        if meant != fold(question):  # "… chứ không phải …": match what is meant only
            meant_tokens = tokenize(meant)
            tokens = self.correct(translate_english(meant_tokens) if english else meant_tokens)
        content = self._content(tokens)
        asked = Asked.of(question)
        # The special cases the question names (less what it says it is not), and whether
        # each then comes first.
        meant_asked = asked if meant == fold(question) else Asked.of(meant)
        named = self.words.named_cases(meant_asked)
        # Unknown words count against every phrase; unknown pairs say nothing and are dropped.
        query = {t for t in self._terms(tokens) if "_" not in t or t in self._weights}
        cues = self.words.rule_cues_in(asked)
        yes_no = _YES_NO.search(fold(question)) is not None
        how = not aspects and _asks_how(tokens)
        analysis = Analysis(tokens, content, aspects, english,
                            family=self._family(tokens, content, aspects),
                            elsewhere=self.words.elsewhere(asked), rules=cues, yes_no=yes_no,
                            how=how)
        if not content and not any("_" in t and not detect_aspects(t.replace("_", " "))
                                   for t in query):
            # only question words ("còn phí?"), unless a known pair that asks no aspect
            # ("báo tử … cần giấy tờ gì")
            return analysis
        weight = {t: self._weights.get(t, self._unknown) for t in query}
        total = sum(weight.values())
        matched = np.zeros(len(self.phrases))
        covered = np.zeros(len(self._keys))  # weight of the question's terms each key knows
        for term, w in weight.items():
            ids = self._postings.get(term)
            if ids is not None:
                matched[ids] += w  # a phrase holds a term once, so ids are unique
            ids = self._key_postings.get(term)
            if ids is not None:
                covered[ids] += w
        hit = np.flatnonzero(matched)
        m = matched[hit]
        fit = (self._phrase_factor[hit] * (m / total) ** QUERY_EXPONENT
               * (m / self._phrase_weight[hit]) ** PHRASE_EXPONENT)
        best = np.zeros(len(self._keys))
        np.maximum.at(best, self._phrase_key[hit], fit)
        shortlist = np.flatnonzero(best)
        if len(shortlist) > SHORTLIST:
            # Coverage can only lower a score: only the best-fitting keys need it computed.
            shortlist = shortlist[np.argpartition(-best[shortlist], SHORTLIST)[:SHORTLIST]]
        scored = []
        events = {pair for i, pair in enumerate(bigrams(tokens))
                  if pair in EVENTS and not _NOT_ASKED & set(tokens[max(i - 4, 0):i])}
        for index in shortlist:
            key = self._keys[index]
            explained = float(covered[index]) / total
            score = float(best[index]) ** (1 - COVERAGE_EXPONENT) * explained ** COVERAGE_EXPONENT
            named_for = self._events.get(self.faq_codes.get(key, key))
            if events and named_for and not events & named_for:
                score *= OTHER_EVENT_FACTOR
            cases = self._cases.get(key)
            if cases:
                # The common variant fits a question that does not name the special case;
                # the special case fits one that does (a case named in passing: neither).
                firsts = [named[i] for i in cases if i in named]
                if any(firsts):
                    score /= VARIANT_FACTOR
                elif not firsts:
                    score *= VARIANT_FACTOR
            scored.append(Candidate(key, self.faq_codes.get(key, key), round(score, 4),
                                    round(explained, 4)))
        scores = {c.key: c.score for c in scored}
        # A special case named first is what the question is about ("I'm Australian …
        # birth"): the common variant gives way to it, down to the most special one named
        # ("… foreign … at the border").
        promoted: dict[str, Candidate] = {}
        for c in scored:
            special = self._special(c.key, named)
            if special != c.key:
                c = replace(c, key=special, code=special,
                            score=max(c.score, scores.get(special, 0.0)))
            if c.key not in promoted or c.score > promoted[c.key].score:
                promoted[c.key] = c
        scored = sorted(promoted.values(), key=lambda c: (-c.score, c.key))
        # A FAQ entry speaks for its procedure: it is only offered when that procedure is also
        # the best-named one, so a generic FAQ wording cannot pull a question elsewhere —
        # unless the question asks the law (no aspect), names no procedure clearly and is
        # asked clearly better as the entry ("sổ hộ khẩu còn dùng được không" is no
        # registration).
        leader = next((c for c in scored if c.key == c.code and not c.rule), None)
        loose = leader is not None and not aspects and (yes_no or bool(cues)) and (
            not leader.outside and SAME_FIELD <= leader.score < CLEAR)
        scored = [c for c in scored if not c.key.startswith(FAQ) or c.rule or (
            leader is not None and (c.code == leader.code
                                    or (loose and c.score >= leader.score / FAQ_FACTOR)))]
        scored = self._rule_first(scored, cues, aspects, frozenset(content), yes_no=yes_no)
        analysis.candidates.extend(_dedupe_by_code(scored)[:limit])
        leading = next(iter(analysis.candidates), None)
        outside = None if english or len(tokens) >= STORY_WORDS else self._outside_said(
            tokens, leading, scored)
        if outside is not None:  # "làm hộ chiếu cho con dưới 14 tuổi" is no identity card
            return replace(analysis, elsewhere=True, candidates=[outside, *(
                c for c in analysis.candidates if c.key != outside.key)])
        if self._strays(leading, asked, aspects, [] if english else content):
            return replace(analysis, elsewhere=True, strayed=not analysis.elsewhere)
        if aspects and leading is not None:
            # A cue inside the procedure's own name asks nothing: "khai tử nộp" is no "tự
            # nộp", "xác nhận đủ điều kiện mua nhà" no question about eligibility.
            rest = f" {' '.join(tokens)} "
            for name in self._names.get(leading.code, ()):
                rest = rest.replace(name, " ")
            left = detect_aspects(rest.strip())
            return replace(analysis, aspects=left, how=not left and _asks_how(tokens))
        return analysis

    def variants_of(self, code: str) -> frozenset[str]:
        """The special variants of a common procedure, however special ("khai tử có yếu tố
        nước ngoài" of "khai tử")."""
        found = {special for _, special in self._commons.get(code, ())}
        return frozenset(found.union(*(self.variants_of(c) for c in found)))

    def _special(self, code: str, named: dict[int, bool]) -> str:
        """The most special variant of ``code`` whose cases the question names first."""
        for i, special in self._commons.get(code, ()):
            if named.get(i):
                return self._special(special, named)
        return code

    def _rule_first(self, scored: list[Candidate], cues: frozenset[str],
                    aspects: list[Aspect], content: frozenset[str], *,
                    yes_no: bool = False) -> list[Candidate]:
        """A question asking what the law says about the procedure it names, the way one of
        that procedure's FAQ entries is asked (``cues``), gets that entry in its place; one
        asking how to do it, or about one of its aspects, or naming it and nothing more (its
        words that count, ``content``, all in its names), gets the procedure."""
        if not scored or scored[0].outside or scored[0].rule:
            return scored
        lead = scored[0]
        rules = [c for c in scored if c.key.startswith(FAQ) and c.code == lead.code
                 and c.score >= RULE_SHARE * lead.score and cues & self._rule_cues[c.key]]
        # "có được đăng ký kết hôn không": a rule of its own matched about as well as the
        # procedure answers a question asking for the law (a rule is never offered as a choice)
        standing = next((c for c in scored[1:] if c.rule and (cues or (yes_no and not aspects))
                         and c.score >= STANDING_SHARE * lead.score), None)
        if standing is not None and (not rules or standing.score > rules[0].score):
            return [standing, *[c for c in scored if c is not standing]]
        # A rule that matches best stays unless one asked for this kind of rule fits as well.
        if rules and not (lead.key.startswith(FAQ) and rules[0].score < FAQ_FACTOR * lead.score):
            return [replace(lead, key=rules[0].key), *scored[1:]]
        own = next((c for c in scored if c.key == lead.code), None)
        if lead.key.startswith(FAQ) and ((not cues and aspects) or (
                own is not None and lead.score < own.score / FAQ_FACTOR) or (
                own is not None and not cues and not yes_no
                and content <= self._name_words[lead.code])):
            # "đk kết hôn có mất phí ko", "how do I register a birth", "đăng ký nhận con nuôi"
            # (only the procedure's name): the procedure answers
            return [replace(lead, key=lead.code), *scored[1:]]
        return scored

    def rule_kinds_of(self, faq: Faq) -> frozenset[str]:
        """The kinds of rule a FAQ entry is asked for."""
        return self._rule_cues.get(f"{FAQ}{faq.id}", frozenset())

    def siblings(self, code: str, other: str) -> bool:
        """Whether two procedures are of one family asked back together (building permits)."""
        return any(code in family and other in family for family in self._ask_back.values())

    def knows_topic(self, code: str, key: str, tokens: list[str]) -> bool:
        """Whether the question says another body's topic (``key``) in words the procedure's
        own texts hold ("lương hưu" in the monthly allowance's eligibility): a condition of
        its case, not that body's matter."""
        known = self._knows.get(code, frozenset())
        text = f" {' '.join(tokens)} "
        return any(topic == key and phrase in text and _holds(known, phrase)
                   for phrase, topic in self._outside_phrases)

    def knows_all(self, code: str, words: Iterable[str]) -> bool:
        """Whether a procedure's texts hold every one of these words."""
        known = self._knows.get(code, frozenset())
        return all(w in known or w in STOP_WORDS for w in words)

    def knows(self, code: str, words: Iterable[str]) -> bool:
        """Whether a procedure's names, aliases or summary hold one of these words ("bé sinh
        tháng 8 mà giờ mới đi làm" is about birth registration)."""
        known = self._knows.get(code, frozenset())
        return any(w in known and w.isalpha() and w not in STOP_WORDS for w in words)

    def _family(self, tokens: list[str], content: list[str],
                aspects: list[Aspect]) -> tuple[str, ...]:
        """The procedures to ask back among when the question only names what they share; an
        aspect asked beyond that name ("chứng thực giấy tờ" asks none) answers instead."""
        family = self._ask_back.get(tuple(content), ())
        words = frozenset(content)
        if not family and words:  # the family's words only, one of its names whole
            family = next((codes for union, names, codes in self._families
                           if words <= union and any(n <= words for n in names)), ())
        rest = " ".join(t for t in tokens if t not in content)
        if not family or (aspects and detect_aspects(rest)):
            return ()
        # "xin giấy xác nhận khuyết tật", "làm tạm trú", "nhà mới": the family's first; a
        # family asked back only when raised as a subject ("hỏi về giấy khai sinh") is not
        # asked back when requested ("giấy khai sinh")
        text = f" {' '.join(tokens)} "
        only_if = self._only_if[family]
        if only_if and not any(p in text for p in only_if):
            return ()
        return () if any(p in text for p in self._first_if[family]) else family

    def _strays(self, best: Candidate | None, asked: Asked, aspects: list[Aspect],
                vietnamese: list[str]) -> bool:
        """Whether the question, naming no procedure clearly, is about something else: it
        mentions a local affair, or — asking the office for nothing — an everyday thing, that
        its best match knows nothing of ("Google đã khai tử ứng dụng nào"), or a foreign word
        that is no slip of a known one ("Outlook"; ``vietnamese``: the content words of a
        question not in English)."""
        if best is not None and best.score >= CLEAR:
            return False
        office = said(self.words.to_the_office, asked)
        known = frozenset() if best is None else (
            self._knows.get(best.key, frozenset()) | self._knows.get(best.code, frozenset()))
        known |= CUE_WORDS if aspects else frozenset()
        if any(not self._knows_phrase(known, w)
               for w in self.words.everyday_in(asked, everyday=not office)):
            return True
        return not office and any(
            len(_VOWEL_GROUPS.findall(t)) >= 2 and not is_syllable(t)
            and t not in self.vocabulary and t not in CUE_WORDS and t not in STOP_WORDS
            and not any(c.isdigit() for c in t)
            and process.extractOne(t, self._spellings, scorer=Levenshtein.distance,
                                   score_cutoff=2) is None
            for t in vietnamese)

    def _outside_said(self, tokens: list[str], best: Candidate | None,
                      scored: list[Candidate]) -> Candidate | None:
        """Another body's topic said outright ("hộ chiếu", "án phí") that the best-matching
        procedure neither knows nor is named beside: that topic, leading."""
        if best is None or best.key not in self._names:  # a procedure, not a rule or topic
            return None
        text = f" {' '.join(tokens)} "
        if any(name in text for name in self._names[best.key]) or (
                self._events.get(best.key, frozenset()) & set(bigrams(tokens))):
            return None  # "đk kết hôn ở xã thì cần hộ chiếu bản gốc không"
        known = self._knows.get(best.key, frozenset())
        for phrase, key in self._outside_phrases:
            at = text.find(phrase)
            # … not said as the purpose ("… để được hỗ trợ mua bảo hiểm y tế")
            if at >= 0 and "de" not in text[:at].split()[-4:] and not _holds(known, phrase):
                topic = next((c for c in scored if c.key == key), None)
                return topic and replace(topic, score=max(topic.score, best.score))
        return None

    @staticmethod
    def _knows_phrase(known: frozenset[str], wording: Wording) -> bool:
        """Whether these terms hold the listed phrase. One marked syllable is never held:
        folded, a procedure's "quyền" would be "quyển" (its ``folded`` is empty)."""
        return _holds(known, wording.folded)


def _holds(known: frozenset[str], folded: str) -> bool:
    """Whether these terms hold a folded phrase: its pairs ("khach_san"), or its one word."""
    words = folded.split()
    return bool(words) and set(bigrams(words) or words) <= known


def _dedupe_by_code(candidates: Iterable[Candidate]) -> list[Candidate]:
    """Keep each procedure once (a FAQ and its procedure count as one), best first."""
    seen: set[str] = set()
    out = []
    for c in candidates:
        if c.code not in seen:
            seen.add(c.code)
            out.append(c)
    return out
