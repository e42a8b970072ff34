"""Answering a question: pick the procedure (or ask back, or decline) and compose the reply.

Every value in a reply comes from the knowledge base with its source; labels come from the
message catalog. Thresholds are explicit: a direct answer needs a score of at least ``direct``
and a runner-up scoring at most ``ratio`` times as much; between ``floor`` and that, the
citizen is asked to choose; below ``floor`` the question is declined. They were chosen on the
tuning question sets under tests/data (see ``python -m bot kb evaluate``).
"""

from __future__ import annotations

import copy
import functools
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Literal

from knowledge.i18n import DEFAULT_LANG, N_, Lang, Text
from knowledge.loader import KnowledgeBase
from knowledge.match import (
    CUE_WORDS,
    FAQ,
    MAY_GET,
    OUTSIDE,
    SHORTLIST,
    STOP_WORDS,
    STORY_WORDS,
    Analysis,
    Aspect,
    Candidate,
    Matcher,
)
from knowledge.places import Place, Places
from knowledge.schema import (
    Channel,
    Commune,
    Faq,
    FaqSource,
    FeeStatus,
    Method,
    OutsideTopic,
    Procedure,
    TimeUnit,
)
from knowledge.text import bigrams, fold, tokenize

# "rule": a legal rule related to no procedure (a FAQ entry standing on its own).
Kind = Literal["procedure", "clarify", "none", "rule"]

DIRECT = 0.34
FLOOR = 0.3
RATIO = 0.92
WHO_RULES = frozenset({"duty", "age", "right"})  # rule kinds answered by who may or must apply
MUST_RULES = frozenset({"duty", "age"})  # … of which a rule answering them is who must or may
OFFER_FLOOR = 0.22  # the lowest score still listed as a match or offered as a choice
STORY_DIRECT = 0.27  # a story's best procedure this good, well ahead of the next, is answered
STORY_LEAD = 0.75  # … when the runner-up scores at most this share of it
STORY_COVERAGE_LEAD = 0.5  # … or every close one explains at most this share of what it does
MAX_QUESTION_CHARS = 500

Describe = Callable[[Method, Text], tuple[str, str, str]]  # value, note, legal rule
CHANNEL_LABELS = {
    Channel.IN_PERSON: N_("In person"),
    Channel.POST: N_("By post"),
    Channel.ONLINE: N_("Online"),
}
TIME_UNITS = {
    TimeUnit.WORKING_DAYS: N_("{value} working days"),
    TimeUnit.DAYS: N_("{value} days"),
    TimeUnit.HOURS: N_("{value} hours"),
}
TIME_UNITS_ONE = {  # "1 working day", not "1 working days"
    TimeUnit.WORKING_DAYS: N_("1 working day"),
    TimeUnit.DAYS: N_("1 day"),
    TimeUnit.HOURS: N_("1 hour"),
}
FEE_TEXTS = {
    FeeStatus.FREE: N_("Free of charge"),
    FeeStatus.PROVINCE: N_("Set by the provincial People's Council; the amount varies by province"),
    FeeStatus.NOT_PUBLISHED: N_("The national portal publishes no fee for this"),
}


@dataclass(frozen=True)
class Match:
    """A procedure offered for a question, as the ``ask`` contract shows it."""

    code: str
    name: str
    score: float


FULL = "full"  # offered beside the aspects: the whole card
SHORT_NOTE_CHARS = 300  # a short reply's fee or time note is cut here, the rest one tap away
SHORT_DOCUMENTS_CHARS = 1000  # a document list longer than this is cut, the rest one tap away
SHORT_STEPS_CHARS = 400  # … and the steps: the first ones say where to go and what to bring
CONTEXT_CASE_MIN = 2.0  # weight of shared words a note must reach to answer a case question
STORY_CASE_MIN = 4.0  # … and to answer a story that also asks an aspect of the procedure
STORY_CASE_WORDS = 12  # a question this long tells of a case
_ABOUT_PORTAL = re.compile(r"\b(?:[Cc]ổng|[Pp]ortal)\b")  # a note's sentence on the source's fields
_CODE_REF = re.compile(r"\b(\d\.\d{6})\b")  # a procedure's national code named in a note
_SENTENCE_END = re.compile(r"(?<=\.)\s+(?=[A-ZÀ-ỸĐ])")  # "… tiếp theo. Cổng ghi …"
MIN_COVERAGE = 0.4  # share of the question the best candidate must explain to be offered
PICK_SHARE = 0.7  # a reply to a choice picks the option it fits this nearly as well as the best
PICK_WORDS = 3  # a reply to a choice this short names an option by words only it knows
RULE_OVER_ELSEWHERE = 0.42  # a rule asked for (a cue) matched this well outweighs off-topic words
NAMED_TOPIC = 0.7  # a follow-up on an aspect that names another procedure this clearly moves to it
NEW_TOPIC = 0.5  # an unsure match this strong still wins over a note of the topic at hand
WEAK_TOPIC = 0.4  # an aspect asked with a weaker match elsewhere is asked of the topic at hand
# A declined question with more other words, none of them in a note of the procedure under
# discussion, is about something else ("bao giờ thu tiền vệ sinh môi trường quý 4").
ASPECT_RESIDUAL = 3
SIBLING_SHARE = 0.75  # a sibling matched this little better than the one at hand does not win
FULL_COVERAGE = 0.99  # a procedure knowing this share of a question's words knows them all
COMMON_PAPER = 5  # a paper named by more procedures than this names none in particular
_BRING = frozenset({"mang", "dem"})  # "có cần mang (đem) … không": a paper to bring


@dataclass(frozen=True)
class Answer:
    """The reply to one question."""

    question: str
    kind: Kind
    matches: list[Match]
    answer: str
    lang: Lang = DEFAULT_LANG
    aspects: list[Aspect] = field(default_factory=list)
    faq: str | None = None
    code: str = ""  # the procedure the reply is about ("" when asking back or declining)
    offer: list[str] = field(default_factory=list)  # aspects (and FULL) to offer as buttons
    case: bool = False  # a follow-up about a case of the procedure under discussion
    places: bool = False  # says which commune serves a place the question names

    def contract(self) -> dict[str, object]:
        """The stable JSON object of ``python -m bot ask --json``."""
        return {
            "question": self.question,
            "kind": self.kind,
            "matches": [asdict(m) for m in self.matches],
            "answer": self.answer,
        }


_DOCUMENT_KINDS = (("QH", "Law"), ("NĐ-CP", "Decree"), ("TT-", "Circular"), ("NQ", "Resolution"),
                   ("QĐ", "Decision"))
_ARTICLE = re.compile(r"Điều (\d+[a-z]?)")
_CLAUSE = re.compile(r"(?:điểm ([a-zđ]) )?khoản (\d+)")
_PORTAL_SOURCE = re.compile(r"Cổng Dịch vụ công quốc gia — thủ tục ([\d.]+)")


def source_vi(source: FaqSource) -> str:
    """A legal source in Vietnamese: "khoản 1 Điều 8 Luật Hôn nhân và gia đình 52/2014/QH13"."""
    return " ".join(x for x in (source.clause, source.article, source.title, source.number) if x)


def source_en(source: FaqSource) -> str:
    """A legal source in English: the document's kind and number, its article and clause."""
    if portal := _PORTAL_SOURCE.match(source.title):
        return f"national public service portal, procedure {portal[1]}"
    if not source.number:
        return source.title
    kind = next((en for mark, en in _DOCUMENT_KINDS if mark in source.number), "Document")
    article = _ARTICLE.search(source.article)
    where = ""
    if article:
        clause = _CLAUSE.search(source.clause)
        where = f", Article {article[1]}" + ("".join(
            f"({x})" for x in (clause[2], clause[1]) if x) if clause else "")
    return f"{kind} {source.number}{where}"


def clean_question(raw: str) -> str:
    """Drop control and unprintable characters and cut the question to a sane length."""
    text = unicodedata.normalize("NFC", raw[: MAX_QUESTION_CHARS * 4])
    text = "".join(c if c.isprintable() else " " for c in text)
    return re.sub(r"\s+", " ", text).strip()[:MAX_QUESTION_CHARS]


class Assistant:
    """Answers questions from one knowledge base."""

    def __init__(self, kb: KnowledgeBase, *, direct: float = DIRECT, floor: float = FLOOR,
                 ratio: float = RATIO) -> None:
        self.kb = kb
        self.matcher = Matcher(kb)
        self.faqs = {f"{FAQ}{f.id}": f for f in kb.faqs}
        self.outside = {f"{OUTSIDE}{o.id}": o for o in kb.outside}
        self.direct, self.floor, self.ratio = direct, floor, ratio
        # Replies only depend on the (unchanging) knowledge base: compose each once.
        self.card_parts = functools.lru_cache(maxsize=2048)(self._compose_card_parts)
        self.short_section = functools.lru_cache(maxsize=8192)(self._compose_short_section)
        self._notes = CaseNotes(kb)
        self.places = Places(kb.commune)

    def for_commune(self, commune: Commune,
                    procedures: dict[str, Procedure] | None = None) -> Assistant:
        """The same assistant for another commune of the deployment: the matcher's indexes
        and the case notes are shared; the profile, the places it serves, the composed cards
        (they name the commune) and ``procedures`` (the same ones with the fees its province
        set, ``knowledge.fees``) are its own."""
        procedures = self.kb.procedures if procedures is None else procedures
        if commune == self.kb.commune and procedures is self.kb.procedures:
            return self
        other = copy.copy(self)
        other.kb = replace(self.kb, commune=commune, procedures=procedures)
        other.card_parts = functools.lru_cache(maxsize=2048)(other._compose_card_parts)
        other.short_section = functools.lru_cache(maxsize=8192)(other._compose_short_section)
        other.places = Places(commune)
        return other

    def ask(self, question: str, *, top: int = 3, lang: Lang | None = None,
            context: str = "", options: Sequence[str] = ()) -> Answer:
        """Answer ``question``; ``lang`` forces the reply language (default: the question's).

        ``context`` is the procedure under discussion: a follow-up that names no other
        procedure ("còn phí?", "mẹ tôi nộp thay được không") is answered about it.
        ``options`` are the procedures just offered as a choice: a reply that fits one of them
        about as well as anything else picks it ("bị mất ạ" after the identity cards). A commune
        the question names by its former name, or another commune, is said to serve it first.
        """
        places, rest = self.places.mentioned(clean_question(question))
        answer = self._ask(rest, top=top, lang=lang, context=context, options=options)
        if not places:
            return answer
        t = Text(answer.lang)
        lines = [self._place_line(p, t) for p in places[:3]]
        ours = all(p.ours for p in places)
        # "ở Ngọc Tảo cũ thì nộp ở đâu": the place line answers where; a list to pick from
        # would not
        where_only = answer.kind == "clarify" and Aspect.WHERE in answer.aspects
        # A rule of law holds in every commune: said after where to apply.
        rule = answer.faq is not None and answer.kind != "clarify"
        kept = rule or (ours and answer.kind != "none" and not where_only)
        if kept:
            lines.append(answer.answer)
        elif ours:
            lines.append(t("You can also contact {contact}.", contact=self.contact(t)))
        else:  # where to apply is there; what a procedure asks is the same everywhere
            if answer.code:
                lines.append(t("What {name} asks for is the same in every commune: ask me about "
                               "its papers or fee if you like.",
                               name=self.short_name(answer.code, t)))
            if self.kb.commune.directory_url:
                lines.append(t("The addresses and hotlines of every one-stop desk: {url}",
                               url=self.kb.commune.directory_url))
        if not kept and (ours or not answer.code):  # only the place is answered
            answer = replace(answer, kind="none", matches=[], code="", offer=[])
        return replace(answer, question=question, answer="\n".join(lines), places=True)

    def _place_line(self, place: Place, t: Text) -> str:
        """Which commune serves a place the citizen named."""
        commune = self.kb.commune.name
        if place.ours:
            return t("{place} ({district}, before the merger) has been part of {commune} "
                     "since 1 July 2025: you apply at {commune}.", place=place.name,
                     district=_lower_first(place.district), commune=commune)
        now = t(" or ").join(place.now)
        if place.district:
            return t("{place} ({district}, before the merger) is now part of {now}: you apply "
                     "there, not at {commune}.", place=place.name,
                     district=_lower_first(place.district), now=now, commune=commune)
        return t("{place} is another commune of {province}: you apply there, not at "
                 "{commune}.", place=place.name, province=self.kb.commune.province,
                 commune=commune)

    def _ask(self, question: str, *, top: int, lang: Lang | None, context: str,
             options: Sequence[str] = ()) -> Answer:
        text = clean_question(question)
        analysis = self.matcher.analyse(
            text, limit=max(top, 3, SHORTLIST if options or context else 0))
        lang = lang or ("en" if analysis.english else "vi")
        t = Text(lang)
        if not analysis.tokens:
            return Answer(question, "none", [], self._empty(t), lang)
        ranked = analysis.candidates
        # A question asking the law that a rule of its own matches well is about that rule,
        # whatever else it mentions ("xã tổ chức mừng thọ … tuổi nào"), and a story that also
        # strays among everyday things is offered its likeliest procedures; else declined,
        # with its office when it is another office's matter.
        words = len(text.split())
        story = words >= STORY_WORDS
        # "có được … không": whether one may, which who may apply answers
        may = analysis.yes_no and MAY_GET.search(" ".join(analysis.tokens)) is not None
        rule_asked = bool(analysis.rules and ranked and ranked[0].rule
                          and ranked[0].score >= RULE_OVER_ELSEWHERE)
        # … unless the procedure under discussion knows every word of it (a condition of its
        # case: "mẹ có lương hưu rồi thì có được không" after the monthly allowance)
        if analysis.elsewhere and not rule_asked and not (story and analysis.strayed) and not (
                context in self.kb.procedures
                and self.matcher.knows_all(context, analysis.content)):
            topic = self.outside.get(ranked[0].key) if ranked and (
                ranked[0].score >= self.floor) else None
            return Answer(question, "none", [], self._decline(t, topic), lang, analysis.aspects)
        # A short reply that one option knows every word of, and fits clearly best of those
        # that do, names it ("khai tử" after the re-registrations, "tạm trú" after the
        # residence registrations)
        named = [c for c in ranked if c.code in options and c.coverage >= FULL_COVERAGE]
        only = bool(named) and len(analysis.content) <= PICK_WORDS and (
            named[0].score >= self.floor) and all(
            c.score <= self.ratio * named[0].score for c in named[1:])
        if analysis.family and not only:  # only the name several share: ask which one
            codes = list(analysis.family[:top])
            return Answer(question, "clarify", [self._match_code(c) for c in codes],
                          self.choice(codes, t), lang)
        kind = self._decide(ranked)
        if kind == "none" and story and ranked and (
                not ranked[0].outside and ranked[0].score >= OFFER_FLOOR):
            kind = "clarify"  # a story that only implies its need: offer the likeliest ones
        if kind == "clarify" and story and _story_lead(ranked):
            kind = "procedure"
        elif kind == "procedure" and analysis.strayed and not (rule_asked or _clear_lead(ranked)):
            kind = "clarify"  # a story about other things too: offered, not asserted
        if kind != "procedure" and ranked and ranked[0].rule and (
                ranked[0].score >= self.floor and (analysis.rules or analysis.yes_no)
                and words >= STORY_CASE_WORDS):
            # a case told at length, asking what the law says, that a rule matches well
            kind = "procedure"
        if context in self.kb.procedures and kind == "clarify":
            # "nếu người mất là người nước ngoài thì sao" after death registration: of the
            # choices, the special case of the procedure at hand
            variant = next((c for c in ranked[:top] if c.code in self.matcher.variants_of(
                context)), None)
            if variant is None and ranked[0].code != context and self.matcher.siblings(
                    context, ranked[0].code):
                # "còn giấy phép bị mất thì xin cấp lại thế nào" after a building permit's
                # extension: the sibling it names, best of the choices
                variant = ranked[0]
            if variant is not None:
                ranked, kind = [variant, *(c for c in ranked if c is not variant)], "procedure"
        picked = named[0] if only else next((c for c in ranked if c.code in options), None)
        if picked is not None and (only or (
                picked.score >= max(self.floor, PICK_SHARE * ranked[0].score)
                and not any(c.code in options and c.code != picked.code
                            and c.score > self.ratio * picked.score for c in ranked))):
            # "gia hạn ạ" after the building permits: that one of them, not residence
            ranked = [replace(picked, key=picked.code),
                      *(c for c in ranked if c.code != picked.code)]
            kind = "procedure"
        if context in self.kb.procedures:
            follow_up = self._in_context(question, analysis, kind, context, t)
            if follow_up is not None:
                return follow_up
        if kind == "none" or ranked[0].outside:
            return Answer(question, "none", [], self._decline(t, self._other_body(ranked)), lang,
                          analysis.aspects)
        faq = self.faqs.get(ranked[0].key)
        # "con 14 tuổi đã bắt buộc làm căn cước chưa": asking the law about one of two
        # sibling procedures is answered by the rule rather than asked back
        siblings = kind == "clarify" and bool(analysis.rules) and ranked[0].score >= self.direct
        codes = [c.code for c in ranked[:2 if siblings else 1] if c.code in self.kb.procedures]
        if faq is None and (kind == "procedure" or siblings) and codes:
            # "cháu 17 tuổi tự đăng ký tạm trú được không": a case the procedure's rules answer;
            # with an aspect asked, only a case told at length and in telling words; asked how
            # to do it (the steps), only a whole story
            note = max((n for c in codes if (n := self._case(c, question, analysis))),
                       key=lambda n: n.weight, default=None)
            told = STORY_CASE_WORDS if analysis.aspects else STORY_WORDS
            if note is not None and note.faq is not None and (
                    not analysis.shown or analysis.rules
                    or (note.weight >= STORY_CASE_MIN and len(question.split()) >= told)):
                faq = note.faq
        # Two rules alike cannot be offered as a choice: the better one answers; nor is a
        # question asking for the rule asked back.
        if faq is not None and (kind == "procedure" or ranked[0].score >= self.direct
                                or (kind == "clarify" and bool(analysis.rules))):
            # "có phải khai báo tạm vắng không": who must is what its rule answers
            who = [Aspect.ELIGIBILITY] if analysis.rules & MUST_RULES or may else []
            return self.rule(faq, t, question=question, aspects=analysis.aspects or who,
                             score=ranked[0].score)
        # Only procedures are offered or asked about; a rule is answered or left out.
        others = ranked
        ranked = [c for c in ranked if not c.outside and not c.rule]
        matches = [self._match(c) for c in ranked[:top] if c.score >= OFFER_FLOOR]
        if not matches:
            return Answer(question, "none", [], self._decline(t, self._other_body(others)), lang,
                          analysis.aspects)
        if kind == "clarify" and (len(matches) > 1 or matches[0].score < self.floor):
            return Answer(question, kind, matches, self.choice([m.code for m in matches], t), lang,
                          analysis.aspects)
        code = ranked[0].code  # a choice of one, good enough, is no choice: it answers
        proc = self.kb.procedures[code]
        # "có bắt buộc phải làm … không", "mấy tuổi thì được …" with no rule of its own: who
        # must or may do it is the answer, not the whole card.
        aspects = ([Aspect.ELIGIBILITY] if not analysis.aspects and (
            analysis.rules & WHO_RULES or may) and (proc.eligibility or proc.applicants)
            else analysis.shown)
        return self.about(code, aspects, t, question=question, matches=matches)

    def rule(self, faq: Faq, t: Text, *, question: str = "", aspects: Sequence[Aspect] = (),
             score: float = 1.0) -> Answer:
        """A FAQ entry's rule (matched this well): a decline naming the authority for another
        body's matter, an answer about its procedure, or a rule on its own."""
        code = faq.procedure if faq.procedure in self.kb.procedures else ""
        kind: Kind = "none" if faq.authority else "procedure" if code else "rule"
        matches = [Match(code, self.kb.procedures[code].name, score)] if (
            code and kind == "procedure") else []
        return Answer(question, kind, matches, self.faq_text(faq, t), t.lang, list(aspects),
                      faq.id, code if kind == "procedure" else "",
                      self._offer(code, []) if kind == "procedure" else [])

    def _in_context(self, question: str, analysis: Analysis, kind: Kind, code: str,
                    t: Text) -> Answer | None:
        """The answer about ``code`` when the question follows up on it; None for a new topic."""
        ranked = analysis.candidates
        if analysis.aspects:  # "vợ tôi đi xuất khẩu lao động, tôi ký thay được không": a
            # reason told in passing, or a condition the procedure's texts speak of ("mẹ có
            # lương hưu rồi thì có được không"), the aspect asked of the procedure at hand
            condition = analysis.aspects == [Aspect.ELIGIBILITY]
            ranked = [c for c in ranked if not (c.key in self.outside and (
                self.outside[c.key].reason or (
                    condition and self.matcher.knows_topic(code, c.key, analysis.tokens))))]
        rival = next((c for c in ranked[1:] if c.key == c.code and not c.outside), None)
        if ranked and ranked[0].rule and ranked[0].code != code and rival is not None and (
                rival.code != code and rival.score >= self.ratio * ranked[0].score):
            # a rule elsewhere and another procedure about as close ("văn bản chia di sản …
            # làm ở xã được không" after the refusal of an estate): the procedure is named
            ranked = [rival, *(c for c in ranked if c is not rival)]
        mine = next((c for c in ranked if c.code == code), None)
        own = mine.score if mine else 0.0
        found = kind  # before a rule elsewhere is discounted below
        residual = [w for w in analysis.content if w not in CUE_WORDS]
        if kind == "procedure" and len(residual) > 1 and (
                ranked[0].code in self.matcher.variants_of(code)):
            return None  # "chồng sắp cưới là người Đài Loan" after marriage: its foreign variant
        if ranked and ranked[0].code != code and ranked[0].score < NAMED_TOPIC and (
                ranked[0].key.startswith(FAQ) or (own >= SIBLING_SHARE * ranked[0].score
                                                  and self.matcher.siblings(code, ranked[0].code))):
            # A rule elsewhere, or a sibling of the procedure at hand ("bản vẽ" of another
            # building permit), matched less than clearly, does not pull the talk away.
            kind = "none"
        offered = {c.code for c in ranked[:3]}
        # Words the procedure at hand knows every one of, and matches nearly as well, keep to
        # it ("gia hạn mất bao lâu" after a building permit's extension).
        explained = mine is not None and bool(ranked) and (
            mine.coverage >= FULL_COVERAGE and own >= SIBLING_SHARE * ranked[0].score)
        named_other = kind == "procedure" and ranked[0].code != code and (
            ranked[0].score >= NAMED_TOPIC) and not explained  # "còn làm sổ đỏ lần đầu …"
        asks = bool(analysis.aspects) or (analysis.how and not analysis.content)  # "ra sao"
        own_rule = next((self.faqs[c.key] for c in ranked if c.key in self.faqs
                         and c.code == code and c.score >= self.floor
                         and analysis.rules & self.matcher.rule_kinds_of(self.faqs[c.key])),
                        None)
        if own_rule is not None and not named_other:
            # "đi làm xa bao lâu thì phải khai" after the absence declaration: its rule of
            # that kind, not its processing time
            return self.rule(own_rule, t, question=question, aspects=analysis.aspects)
        if asks and len(residual) <= 1 and not named_other:
            return self.about(code, analysis.shown, t, question=question)  # "còn phí?"
        if ranked and ranked[0].outside and ranked[0].score >= self.floor and (
                not analysis.aspects):
            return None  # a matter of another office ("làm visa"), declined as such
        at_hand = kind == "none" or (kind == "procedure" and ranked[0].code == code)
        related = self._case(code, question, analysis)
        proc = self.kb.procedures[code]
        if not analysis.aspects and ranked and ranked[0].code == code and (
                related is None or related.faq is None) and analysis.rules & WHO_RULES and (
                proc.eligibility or proc.applicants):
            # "trường hợp nào thì phải khai báo", no rule of its own: who must or may do it
            return self.about(code, [Aspect.ELIGIBILITY], t, question=question)
        if not analysis.aspects and at_hand and self._notes.names_document(code, analysis.tokens):
            # "bệnh viện không cấp giấy báo tử thì sao": the documents, with their alternatives
            return self.about(code, [Aspect.DOCUMENTS], t, question=question)
        if analysis.aspects == [Aspect.DOCUMENTS] and not named_other and (
                _BRING & set(analysis.tokens)) and self._notes.names_document(
                    code, analysis.tokens, common=True):
            # "có cần mang cccd không": a paper of the procedure at hand, to bring
            return self.about(code, analysis.aspects, t, question=question)
        note = None if analysis.aspects else related
        # A few weak candidates ("2 đứa ở 2 tỉnh khác nhau thì nộp ở đâu") do not pull the
        # conversation away from its procedure; a clear one, or a list of strong ones, does.
        if kind == "procedure":
            elsewhere = ranked[0].code != code and not explained and (
                not analysis.aspects or ranked[0].score >= WEAK_TOPIC)
        else:
            elsewhere = kind == "clarify" and code not in offered and (
                ranked[0].score >= NEW_TOPIC)
        if kind != "none" and elsewhere and (note is None or ranked[0].score >= NEW_TOPIC):
            return None  # a procedure (or a few) of its own, not a case of the one at hand
        if analysis.aspects and (kind != "none" or len(residual) <= ASPECT_RESIDUAL
                                 or related is not None
                                 or self.matcher.knows(code, residual)):
            return self.about(code, analysis.aspects, t, question=question)
        if note is None and (kind == "procedure" or (kind == "clarify" and code not in offered)
                             or len(analysis.content) > 4
                             or not any(w in self.matcher.vocabulary for w in analysis.tokens)):
            return None  # not about the procedure under discussion, or not words at all
        if note is None and found == "procedure" and ranked[0].score >= NEW_TOPIC:
            return None  # rather what was found elsewhere ("phải xóa thường trú cho ông không")
        referred = {c for c in _CODE_REF.findall(note.vi) if c != code} if (
            note is not None and note.faq is None) else set()
        if len(referred) == 1 and (other := referred.pop()) in self.kb.procedures:
            # "giấy đó bị rách, muốn đổi cái mới" after the first disability certificate: the
            # statement that case matches points to another procedure (its re-issue)
            return self.about(other, analysis.shown, t, question=question)
        if note is None:
            lines = [t("I have no information about this particular case for {name}.",
                       name=self.short_name(code, t)),
                     t("Please check with {contact}.", contact=self.contact(t))]
        else:
            lines = [self.faq_text(note.faq, t)] if note.faq else [
                note.en if t.lang == "en" else note.vi,
                self.source_line(self.kb.procedures[code], t)]
        return Answer(question, "procedure", [self._match_code(code)], "\n".join(lines), t.lang,
                      [], None, code, self._offer(code, []), case=True)

    def _case(self, code: str, question: str, analysis: Analysis) -> CaseNote | None:
        """What the procedure's entry says about the case the question tells of; an entry
        asked for the same kind of rule first."""
        return self._notes.best(code, question, lambda faq: bool(
            analysis.rules & self.matcher.rule_kinds_of(faq)))

    def about(self, code: str, aspects: Sequence[Aspect], t: Text, *, question: str = "",
              matches: list[Match] | None = None) -> Answer:
        """The short reply about a procedure: the asked aspects first, else an overview."""
        proc = self.kb.procedures[code]
        asked = list(dict.fromkeys(aspects))
        text = self._aspects_text(proc, asked, t) if asked else self._overview(proc, t)
        return Answer(question, "procedure", matches or [self._match_code(code)], text, t.lang,
                      asked, None, code, self._offer(code, asked))

    def _offer(self, code: str, shown: Sequence[Aspect]) -> list[str]:
        """The other aspects worth a button, and the whole card."""
        proc = self.kb.procedures[code]
        wanted = [Aspect.DOCUMENTS, Aspect.FEE, Aspect.TIME, Aspect.WHERE]
        if proc.online_url:
            wanted.append(Aspect.ONLINE)
        wanted.append(Aspect.STEPS)
        if proc.eligibility:
            wanted.append(Aspect.ELIGIBILITY)
        wanted.append(Aspect.LEGAL)
        if proc.result:
            wanted.append(Aspect.RESULT)
        return [*[a.value for a in wanted if a not in shown], FULL]

    def aspect_label(self, code: str, aspect: Aspect, lang: Lang) -> str:
        """The label a reply puts before an aspect ("Lệ phí")."""
        return self.card_parts(code, lang)[1][aspect][0]

    def _other_body(self, ranked: Sequence[Candidate]) -> OutsideTopic | None:
        """Another body's matter among the best matches, named even when unsure."""
        return next((self.outside[c.key] for c in ranked[:3]
                     if c.outside and c.score >= OFFER_FLOOR), None)

    def _decide(self, ranked: Sequence[Candidate]) -> Kind:
        if not ranked or ranked[0].score < self.floor:
            return "none"
        # a rule of the same procedure is no rival: it answers the same thing
        runner_up = next((c.score for c in ranked[1:] if c.code != ranked[0].code), 0.0)
        if ranked[0].score >= self.direct and runner_up <= self.ratio * ranked[0].score:
            return "procedure"
        # Asking back is only worth it when the candidates explain most of the question:
        # otherwise it merely shares a word or two with them ("cài chế độ giám hộ trên điện
        # thoại") and is declined. A close sibling of a good match may explain what it does
        # not ("căn cước bị hỏng, muốn đổi thẻ mới": re-issue or exchange).
        close = [c for c in ranked[1:] if c.score > self.ratio * ranked[0].score] if (
            ranked[0].score >= self.direct) else []
        explained = ranked[0].coverage >= MIN_COVERAGE or any(
            c.coverage >= MIN_COVERAGE and self.matcher.siblings(c.code, ranked[0].code)
            for c in close)
        return "clarify" if explained else "none"

    def _match(self, candidate: Candidate) -> Match:
        return Match(candidate.code, self.kb.procedures[candidate.code].name, candidate.score)

    def _match_code(self, code: str) -> Match:
        return Match(code, self.kb.procedures[code].name, 1.0)

    # --- composition -------------------------------------------------------------------

    def contact(self, t: Text) -> str:
        """How to reach the commune's staff, from the profile's non-empty fields."""
        commune = self.kb.commune
        parts = [t("the one-stop desk of {commune}", commune=commune.name)]
        if commune.address:
            parts.append(t("address: {address}", address=commune.address))
        if commune.hotline:
            parts.append(t("phone: {phone}", phone=commune.hotline))
        hours = commune.hours_en if t.lang == "en" and commune.hours_en else commune.hours
        if hours:
            parts.append(t("opening hours: {hours}", hours=hours))
        if commune.support_line and not commune.hotline:
            support = (commune.support_line_en if t.lang == "en" and commune.support_line_en
                       else commune.support_line)
            parts.append(t("or {support}", support=support))
        return ", ".join(parts)

    def _empty(self, t: Text) -> str:
        return t("Please type your question, for example: \"làm giấy khai sinh cần gì\".")

    def _decline(self, t: Text, topic: OutsideTopic | None = None) -> str:
        where = [] if topic is None else [topic.answer_en if t.lang == "en" else topic.answer]
        apology = [] if topic and not topic.apology else [
            t("Sorry, I can only answer questions about the administrative procedures of "
              "{commune}.", commune=self.kb.commune.name)]
        return "\n".join([
            *where,
            *apology,
            t("Type \"menu\" to see the procedures by field, or \"gặp cán bộ\" to talk to a "
              "member of staff."),
            t("You can also contact {contact}.", contact=self.contact(t)),
        ])

    def choice(self, codes: Sequence[str], t: Text) -> str:
        """The numbered list of procedures a citizen is asked to choose from (one: whether
        it is the one meant)."""
        numbered = [f"{i}. {self.name(code, t)}" for i, code in enumerate(codes, 1)]
        if len(codes) == 1:
            return "\n".join([t("Do you mean this procedure?"), *numbered,
                              t("Reply 1 to see it, or ask in other words.")])
        return "\n".join([t("Which procedure do you mean?"), *numbered,
                          t("Reply with the number or the name of the procedure.")])

    def name(self, code: str, t: Text) -> str:
        """A procedure's official name in the reply language."""
        proc = self.kb.procedures[code]
        return proc.name_en if t.lang == "en" and proc.code in self.kb.bundled_codes else proc.name

    def short_name(self, code: str, t: Text) -> str:
        """The everyday name of a procedure (the official one where it has none)."""
        proc = self.kb.procedures[code]
        short = _english(proc, "short_name", t) if proc.short_name else ""
        return short or self.name(code, t)

    def _faq_source(self, faq: Faq, t: Text) -> str:
        sources = "; ".join(source_en(s) if t.lang == "en" else source_vi(s)
                            for s in faq.sources)
        return t("Source: {sources} (as of {date}).", sources=sources,
                 date=t.date(faq.checked or faq.facts_date))

    def faq_text(self, faq: Faq, t: Text) -> str:
        """A rule: the rule first, each case, who handles it elsewhere or the related
        procedure, and the citation last."""
        en = t.lang == "en"
        lines = [faq.answer_en if en else faq.answer]
        lines += [f"• {c.when_en if en else c.when}: {c.then_en if en else c.then}"
                  for c in faq.cases]
        if faq.authority:
            lines.append(t("This is handled by {authority}.",
                           authority=faq.authority_en if en else faq.authority))
        if faq.procedure in self.kb.procedures:
            lines.append(t("Related procedure: {name} (code {code}).",
                           name=self.short_name(faq.procedure, t), code=faq.procedure))
        lines.append(self._faq_source(faq, t))
        return "\n".join(lines)

    def _title(self, proc: Procedure, t: Text) -> str:
        """"Everyday name (code …)" for a short reply."""
        return t("{name} (code {code})", name=self.short_name(proc.code, t), code=proc.code)

    def source_line(self, proc: Procedure, t: Text) -> str:
        """Where the entry's facts come from, and when they were checked."""
        if proc.checked:
            return t("Source: national public service portal, checked against the law in "
                     "force on {date}.", date=t.date(proc.checked))
        return t("Source: national public service portal (as of {date}).",
                 date=t.date(proc.facts_date))

    def _closing(self, proc: Procedure, t: Text, *, unsure: bool) -> list[str]:
        """The last lines of a short reply: check with the desk where a shown time or fee is
        unconfirmed (``unsure``: the reply shows one), and the source."""
        check = [t("Please check with {contact} before you go.", contact=self.desk(proc, t))]
        return [*(check if unsure and proc.has_unconfirmed else []), self.source_line(proc, t)]

    def _aspects_text(self, proc: Procedure, aspects: Sequence[Aspect], t: Text) -> str:
        """The asked aspects, the first one leading the first line with the procedure's name."""
        _, sections, _ = self.card_parts(proc.code, t.lang)
        blocks: list[str] = []
        for i, aspect in enumerate(aspects):
            label = sections[aspect][0]
            body = self.short_section(proc.code, t.lang, aspect)
            head = t("{aspect} — {title}", aspect=label, title=self._title(proc, t)) if i == 0 \
                else label
            blocks.append(_block(head, body))
        unsure = any(a in (Aspect.FEE, Aspect.TIME) for a in aspects)
        return "\n".join([*blocks, *self._closing(proc, t, unsure=unsure)])

    def _compose_short_section(self, code: str, lang: Lang, aspect: Aspect) -> str:
        """An aspect's body as a short reply shows it: a long document or step list cut, a fee
        or time note cut to its first sentences (its legal rule kept), the others whole."""
        proc, t = self.kb.procedures[code], Text(lang)
        body = self.card_parts(code, lang)[1][aspect][1]
        if not body:  # a result the entry does not state
            return t("the source does not say; please ask {contact}.", contact=self.contact(t))
        if aspect is Aspect.DOCUMENTS:
            return _cut_list(body, SHORT_DOCUMENTS_CHARS, t)
        if aspect is Aspect.STEPS:
            return _cut_list(body, SHORT_STEPS_CHARS, t, steps=True)
        if aspect in (Aspect.FEE, Aspect.TIME):
            describe = self.fee_text if aspect is Aspect.FEE else self.time_text
            return self.per_method(proc, describe, t, notes=SHORT_NOTE_CHARS)
        return body

    def _overview(self, proc: Procedure, t: Text) -> str:
        """What the procedure is, and its documents, fee, time and place in one line each."""
        _, sections, _ = self.card_parts(proc.code, t.lang)
        summary = _english(proc, "summary", t)
        first = re.split(r"(?<=[.!?])\s", summary, maxsplit=1)[0]
        lines = [self._title(proc, t)]
        if self.short_name(proc.code, t) != self.name(proc.code, t):
            lines.append(t("Official name: {name}", name=self.name(proc.code, t)))
        lines.append(first)
        always = sum(1 for d in proc.documents if not d.when)
        sometimes = len(proc.documents) - always
        if proc.documents:
            lines.append("• " + (t("Documents: {n} always, {m} in particular cases",
                                   n=always, m=sometimes) if sometimes
                                 else t("Documents: {n}", n=always)))
        values = {Aspect.FEE: self.fee_text, Aspect.TIME: self.time_text}
        for aspect in (Aspect.FEE, Aspect.TIME, Aspect.WHERE):
            label, _ = sections[aspect]
            # the value alone: its notes are one tap away
            body = self._where(proc, t, links=False) if aspect is Aspect.WHERE else \
                self.per_method(proc, values[aspect], t, notes=0)
            if "\n" not in body:
                lines.append(f"• {label}: {body}")
            else:
                lines.append("• " + t("{aspect}: depends on how you submit", aspect=label))
        return "\n".join([*lines, *self._closing(proc, t, unsure=True)])

    def card(self, proc: Procedure, t: Text) -> str:
        """The full answer about a procedure (every section, notes and source)."""
        head, sections, tail = self.card_parts(proc.code, t.lang)
        blocks = [head]
        for label, body in sections.values():
            block = _block(label, body)
            if body and block not in blocks:
                blocks.append(block)
        return "\n\n".join([*blocks, *tail])

    def _compose_card_parts(self, code: str, lang: Lang
                            ) -> tuple[str, dict[Aspect, tuple[str, str]], list[str]]:
        """A card's title and summary, its sections by aspect (label, body), and its notes."""
        proc, t = self.kb.procedures[code], Text(lang)
        sections = {
            Aspect.DOCUMENTS: (t("Documents to prepare"), self._documents(proc, t)),
            Aspect.FEE: (t("Fee"), self.per_method(proc, self.fee_text, t)),
            Aspect.TIME: (t("Processing time"), self.per_method(proc, self.time_text, t)),
            Aspect.WHERE: (t("Where to submit"), self._where(proc, t)),
            Aspect.ONLINE: (t("Online submission"), self._online(proc, t)),
            Aspect.ELIGIBILITY: (t("Who may apply"), self._eligibility(proc, t)),
            Aspect.STEPS: (t("Steps"), self._steps(proc, t)),
            Aspect.LEGAL: (t("Legal basis"), self._legal(proc, t)),
            Aspect.RESULT: (t("Result"), _english(proc, "result", t)),
        }
        summary = _english(proc, "summary", t)
        title = t("{name} (code {code})", name=self.name(proc.code, t), code=proc.code)
        tail = []
        notes = _english(proc, "notes", t)
        if notes:
            tail.append(t("Note: {note}", note=notes))
        if proc.has_unconfirmed:
            tail.append(t("Some details above are not confirmed by the source; please check "
                          "with {contact} before you go.", contact=self.contact(t)))
        tail.append(t("Source: national public service portal, {url} (as of {date}).",
                      url=proc.source_url, date=t.date(proc.facts_date)))
        if proc.checked:
            tail.append(t("Checked against the law in force on {date}.",
                          date=t.date(proc.checked)))
        return f"{title}\n{summary}", sections, tail

    def _documents(self, proc: Procedure, t: Text) -> str:
        if not proc.documents:
            return t("the source lists none; please ask the one-stop desk.")
        lines = []
        for i, doc in enumerate(proc.documents, 1):
            counts = []
            if doc.originals:
                counts.append(t("originals: {n}", n=doc.originals))
            if doc.copies:
                counts.append(t("copies: {n}", n=doc.copies))
            if doc.present_only:
                counts.append(t("show only"))
            name = doc.name_en if t.lang == "en" and doc.name_en else doc.name
            line = f"{i}. {name}" + (f" ({', '.join(counts)})" if counts else "")
            when = doc.when_en if t.lang == "en" and doc.when_en else doc.when
            if when:
                line += f" — {when}"
            lines.append(line)
        return "\n".join(lines)

    def fee_text(self, method: Method, t: Text) -> tuple[str, str, str]:
        """One method's fee exactly as the source states it, the source's note on it and the
        legal rule it is taken from."""
        if method.fee_status is FeeStatus.AMOUNT and method.fee_vnd is not None:
            text = t.money(method.fee_vnd)
        else:
            text = t(FEE_TEXTS[method.fee_status])
        if not method.fee_confirmed:
            text += " " + t("[not confirmed]")
        en = t.lang == "en"
        note = method.fee_note_en if en and method.fee_note_en else method.fee_note
        basis = method.fee_basis_en if en and method.fee_basis_en else method.fee_basis
        return text, note, basis

    def time_text(self, method: Method, t: Text) -> tuple[str, str, str]:
        """One method's processing time, the source's note on it and its legal rule; plainly
        unknown where the source gives no usable value (a bare number without a unit is not
        shown)."""
        note = method.time_note_en if t.lang == "en" and method.time_note_en else method.time_note
        if (method.time_value is None or method.time_unit is None
                or method.time_unit is TimeUnit.UNSPECIFIED):
            return t("the source does not state it clearly"), note, ""
        text = t(TIME_UNITS_ONE[method.time_unit]) if method.time_value == 1 else \
            t(TIME_UNITS[method.time_unit], value=t.number(method.time_value))
        if not method.time_confirmed:
            text += " " + t("[not confirmed]")
        basis = method.time_basis_en if t.lang == "en" and method.time_basis_en \
            else method.time_basis
        return text, note, basis

    @staticmethod
    def per_method(proc: Procedure, describe: Describe, t: Text, *,
                   notes: int | None = None) -> str:
        """One line when every submission method has the same value, else one per method;
        each note's sentences and each legal rule said once. ``notes``: at most this many
        characters of each note, its legal rule always kept (0: the values alone)."""
        described = [describe(m, t) for m in proc.methods]
        if notes is not None:
            described = [(value, _brief(note, notes), basis) for value, note, basis in described]
        if len({value for value, _, _ in described}) == 1:
            said = _with_basis(*_shared_notes(described))
            return described[0][0] + (f" ({said})" if notes != 0 and said else "")
        lines, cited = [], set()
        for m, (value, note, basis) in zip(proc.methods, described, strict=True):
            said = _with_basis(note, "" if basis in cited else basis) if notes != 0 else ""
            cited.add(basis)
            lines.append(f"- {t(CHANNEL_LABELS[m.channel])}: {value}"
                         + (f" ({said})" if said else ""))
        return "\n".join(lines)

    def notes_of(self, proc: Procedure, describe: Describe, t: Text) -> list[str]:
        """The notes and legal rules of a fee or time, each once (a poster's small print)."""
        return [x for x in _shared_notes([describe(m, t) for m in proc.methods]) if x]

    def desk(self, proc: Procedure, t: Text) -> str:
        """Where papers are handed in: the commune police for its procedures, else the
        one-stop desk."""
        if "cong an" in fold(proc.agency):
            return t("the commune police (Công an xã) of {commune}",
                     commune=self.kb.commune.name)
        return t("the one-stop desk of {commune}", commune=self.kb.commune.name)

    def _where(self, proc: Procedure, t: Text, *, links: bool = True) -> str:
        channels = [m.channel for m in proc.methods]
        ways = []
        if Channel.IN_PERSON in channels:
            ways.append(t("in person at {desk}", desk=self.desk(proc, t)))
        if Channel.POST in channels:
            ways.append(t("by post to {desk}", desk=self.desk(proc, t)))
        if Channel.ONLINE in channels:
            ways.append(t("online at {url}", url=proc.online_url) if links else t("online"))
        return "; ".join(ways)

    def _online(self, proc: Procedure, t: Text) -> str:
        if proc.online_url and any(m.channel is Channel.ONLINE for m in proc.methods):
            return t("yes, at {url}", url=proc.online_url)
        return t("not available for this procedure; submit {where}", where=self._where(proc, t))

    def _eligibility(self, proc: Procedure, t: Text) -> str:
        lines = []
        applicants = _english(proc, "applicants", t)
        if applicants:
            lines.append(applicants)
        eligibility = _english(proc, "eligibility", t)
        if eligibility:
            lines.append(t("Conditions: {conditions}", conditions=eligibility))
        return "\n".join(lines) or t("the source states no particular condition.")

    def _steps(self, proc: Procedure, t: Text) -> str:
        steps = proc.steps_en if t.lang == "en" and proc.steps_en else proc.steps
        if not steps:
            return t("the source lists no steps; please ask the one-stop desk.")
        lines = [f"{i}. {s}" for i, s in enumerate(steps, 1)]
        result = _english(proc, "result", t)
        if result:
            lines.append(t("Result: {result}", result=result))
        return "\n".join(lines)

    def _legal(self, proc: Procedure, t: Text) -> str:
        if not proc.legal_basis:
            return t("the source lists none.")
        return "\n".join(f"- {d.title} {d.number}".replace("-  ", "- ")
                         for d in proc.legal_basis)


def _clear_lead(ranked: Sequence[Candidate]) -> bool:
    """The best candidate is a procedure of ours, good enough and well ahead of the next."""
    if not ranked or ranked[0].outside or ranked[0].rule or ranked[0].score < STORY_DIRECT:
        return False
    runner_up = ranked[1].score if len(ranked) > 1 else 0.0
    return runner_up <= STORY_LEAD * ranked[0].score


def _story_lead(ranked: Sequence[Candidate]) -> bool:
    """A story's best procedure leads clearly (its many other words lower every score alike):
    well ahead of the next; or explaining far more of the story than any close one ("chia
    nhau … sang tên": the division of an estate, not a vehicle's change of owner); or matched
    well and leading every close one both in score and in how much of the story it explains."""
    if _clear_lead(ranked):
        return True
    if not ranked or ranked[0].outside or ranked[0].rule:
        return False
    lead = ranked[0]
    close = [c for c in ranked[1:] if c.score > STORY_LEAD * lead.score]
    return (lead.coverage >= MIN_COVERAGE and all(
        c.coverage <= STORY_COVERAGE_LEAD * lead.coverage for c in close)) or (
        lead.score >= FLOOR and all(c.score <= RATIO * lead.score
                                    and c.coverage <= lead.coverage for c in close))


def _brief(note: str, limit: int) -> str:
    """A note's first sentence, and the next ones within ``limit`` characters, leaving out
    what it says about the portal's own fields (the full card keeps them); "…" where more
    was left out."""
    sentences = [s for s in _SENTENCE_END.split(note) if not _ABOUT_PORTAL.search(s)]
    kept: list[str] = []
    for sentence in sentences:
        if kept and len(" ".join([*kept, sentence])) > limit:
            break
        kept.append(sentence)
    brief = " ".join(kept)
    return brief if len(kept) == len(sentences) else brief.rstrip(" .") + " …"


def _with_basis(note: str, basis: str) -> str:
    """A source's note on a value, then the legal rule the value is taken from."""
    return "; ".join(x for x in (note.rstrip(" ."), basis) if x)


def _shared_notes(described: Sequence[tuple[str, str, str]]) -> tuple[str, str]:
    """Several methods' notes as one, each sentence once (they mostly repeat each other), and
    their legal rules, each once."""
    sentences = (s.rstrip(" .") for _, note, _ in described for s in _SENTENCE_END.split(note))
    return (". ".join(dict.fromkeys(s for s in sentences if s)),
            "; ".join(dict.fromkeys(basis for _, _, basis in described if basis)))


def _lower_first(name: str) -> str:
    """A unit's kind in lower case inside a sentence: "huyện Phúc Thọ"."""
    return name[:1].lower() + name[1:]


def _block(label: str, body: str) -> str:
    """"Label: value" on one line, or the label over a list."""
    return f"{label}:\n{body}" if "\n" in body else f"{label}: {body}"


def _english(proc: Procedure, name: str, t: Text) -> str:
    """A free-text field in the reply language (its ``_en`` twin in English, where filled)."""
    value: str = getattr(proc, name)
    if t.lang == "en":
        return str(getattr(proc, f"{name}_en", "") or value)
    return value


def _cut_list(body: str, limit: int, t: Text, *, steps: bool = False) -> str:
    """A numbered list cut to ``limit`` characters at an item's end (two items at least),
    saying how many are left."""
    if len(body) <= limit:
        return body
    items = body.split("\n")
    kept: list[str] = items[:2]
    for item in items[2:]:
        if len("\n".join([*kept, item])) > limit - 60:
            break
        kept.append(item)
    if len(kept) == len(items):
        return body
    left = sum(1 for item in items[len(kept):] if item[:1].isdigit())  # steps, not the result
    kept.append(t("… and {n} more steps (tap \"Full details\")", n=left) if steps
                else t("… and {n} more (tap \"Full details\")", n=len(items) - len(kept)))
    return "\n".join(kept)


def _sentences(vi: str, en: str) -> list[tuple[str, str]]:
    """A note's statements one by one, each with its translation, so that a case is answered
    by its own statement ("bị rách … đổi": the one naming the re-issue), not the whole note;
    whole when the two texts do not split alike."""
    vis = [p for p in _SENTENCE_END.split(vi) if p[:1].isupper()] if vi else []
    ens = [p for p in _SENTENCE_END.split(en) if p[:1].isupper()] if en else []
    if len(vis) > 1 and len(vis) == len(ens) and " ".join(vis) == vi.strip() and (
            " ".join(ens) == en.strip()):
        return list(zip(vis, ens, strict=True))
    return [(vi, en)]


@dataclass(frozen=True)
class CaseNote:
    """One statement of an entry about a particular case, with its words for matching."""

    words: frozenset[str]
    vi: str
    en: str
    faq: Faq | None = None
    weight: float = 0.0  # how telling its shared words are, for the question it was found for


# Words too common in a question to tie it to a note ("thế … thì sao", "xã có … không",
# "sinh ở VN").
_FUNCTION_WORDS = frozenset("thi sao the nay xa thang nhu nao vay roi luon ma la va voi o nua "
                            "khi neu hay khong co bi vn".split())
# Who is meant, and "muộn" (late, folded like "muốn"), matter in a case question ("mẹ tôi nộp
# thay được không", "để muộn có bị phạt không"), though not in matching.
_KEPT = frozenset("me bo ong ba con chau vo chong anh chi em muon".split())


class CaseNotes:
    """What a procedure's entry says about particular cases (its notes, the conditions of its
    documents, who may apply, its FAQ entries), to answer "what if…" follow-ups."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self._kb = kb
        self._by_code = {code: self._notes(kb.procedures[code],
                                           [f for f in kb.faqs if f.procedure == code])
                         for code in kb.bundled_codes}
        documents: Counter[str] = Counter()
        for notes in self._by_code.values():
            for note in notes:
                documents.update(note.words)
        total = max(sum(len(v) for v in self._by_code.values()), 1)
        self._idf = {w: math.log(total / n) for w, n in documents.items()}
        # The words of each procedure's own names: every statement of it shares them.
        self._named = {code: frozenset(tokenize(" ".join([proc.name, *proc.aliases])))
                       for code, proc in ((c, kb.procedures[c]) for c in kb.bundled_codes)}
        # The word pairs naming each procedure's papers; pairs most procedures ask for
        # ("tờ khai", "giấy tờ") name none in particular, nor do the procedure's own names
        # ("Đề nghị khai báo tạm vắng" of "khai báo tạm vắng").
        pairs = {code: {pair for d in kb.procedures[code].documents
                        for pair in bigrams(tokenize(d.name))} for code in kb.bundled_codes}
        common = Counter(pair for held in pairs.values() for pair in held)
        named = {code: set(bigrams(tokenize(f"{proc.name} . {proc.short_name}")))
                 for code, proc in ((c, kb.procedures[c]) for c in kb.bundled_codes)}
        self._pairs = pairs
        self._papers = {code: {p for p in held if common[p] <= COMMON_PAPER
                               and p not in named[code]} for code, held in pairs.items()}

    def names_document(self, code: str, tokens: list[str], *, common: bool = False) -> bool:
        """Whether the question names one of the papers the procedure asks for (``common``:
        also one most procedures ask for, such as the identity card)."""
        papers = self._pairs if common else self._papers
        return bool(papers.get(code, set()) & set(bigrams(tokens)))

    @staticmethod
    def _notes(proc: Procedure, faqs: list[Faq]) -> list[CaseNote]:
        """The case statements of one procedure."""
        # A FAQ entry is matched by how citizens ask it, not by every word of its answer.
        out = [CaseNote(frozenset(tokenize(" ".join(f.questions))), f.answer, f.answer_en, f)
               for f in faqs]
        texts = [(proc.notes, proc.notes_en)]
        texts += [(f"{d.when}: {d.name}.", f"{d.when_en or d.when}: {d.name_en or d.name}.")
                  for d in proc.documents if d.when]
        texts += [(proc.applicants, proc.applicants_en), (proc.eligibility, proc.eligibility_en)]
        texts += [(m.time_note, m.time_note_en) for m in proc.methods]
        texts += [(m.fee_note, m.fee_note_en) for m in proc.methods]
        seen: set[str] = set()
        for vi, en in texts:
            if vi and vi not in seen:
                seen.add(vi)
                out.append(CaseNote(frozenset(tokenize(vi)), vi, en or vi))
        return out

    def best(self, code: str, question: str,
             asks_rule: Callable[[Faq], bool] = lambda _: False) -> CaseNote | None:
        """The statement sharing the most telling words with the question, if telling enough;
        a FAQ entry asked for the same kind of rule (``asks_rule``) first ("để muộn có bị phạt
        không": the deadline's entry).

        Words of the procedure's own name are left out: every statement shares them."""
        notes = self._by_code.get(code)
        if not notes:
            return None
        asked = (frozenset(tokenize(question)) - self._named[code] - (STOP_WORDS - _KEPT)
                 - _FUNCTION_WORDS)
        scored = [(sum(self._idf.get(w, 0.0) for w in asked & n.words), n) for n in notes]
        rules = [(w, n) for w, n in scored if w > 0 and n.faq and asks_rule(n.faq)]
        weight, note = max(rules or scored, key=lambda pair: pair[0])
        if not rules and weight < CONTEXT_CASE_MIN:
            return None
        # Of a note of several sentences, the one the case matches ("bị rách … đổi": the one
        # naming the re-issue, not the whole note)
        vi, en = max(_sentences(note.vi, note.en), key=lambda pair: sum(
            self._idf.get(w, 0.0) for w in asked & frozenset(tokenize(pair[0])))) if (
            note.faq is None) else (note.vi, note.en)
        return replace(note, vi=vi, en=en, weight=weight)
