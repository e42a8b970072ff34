"""Answering a question: pick the procedure (or ask back, or decline) and compose the reply.

Every value in a reply comes from the knowledge base with its source; labels come from the
message catalog. Thresholds are explicit: a direct answer needs a score of at least ``direct``
and a runner-up scoring at most ``ratio`` times as much; between ``floor`` and that, the
citizen is asked to choose; below ``floor`` the question is declined. They were chosen on the
tuning question sets under tests/data (see ``python -m bot kb evaluate``).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal

from knowledge.i18n import DEFAULT_LANG, N_, Lang, Text
from knowledge.loader import KnowledgeBase
from knowledge.match import FAQ, OUTSIDE, Aspect, Candidate, Matcher
from knowledge.schema import Channel, Faq, FeeStatus, Method, OutsideTopic, Procedure, TimeUnit

Kind = Literal["procedure", "clarify", "none"]

DIRECT = 0.34
FLOOR = 0.3
RATIO = 0.92
OFFER_FLOOR = 0.22  # the lowest score still listed as a match or offered as a choice
MAX_QUESTION_CHARS = 500

CHANNEL_LABELS = {
    Channel.IN_PERSON: N_("In person"),
    Channel.POST: N_("By post"),
    Channel.ONLINE: N_("Online"),
}
TIME_UNITS = {
    TimeUnit.WORKING_DAYS: N_("{value} working days"),
    TimeUnit.DAYS: N_("{value} days"),
    TimeUnit.HOURS: N_("{value} hours"),
    TimeUnit.UNSPECIFIED: N_("{value} (the portal gives no unit)"),
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

    def contract(self) -> dict[str, object]:
        """The stable JSON object of ``python -m bot ask --json``."""
        return {
            "question": self.question,
            "kind": self.kind,
            "matches": [asdict(m) for m in self.matches],
            "answer": self.answer,
        }


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
        # Cards only depend on the (unchanging) knowledge base: compose each once per language.
        self._card_parts = functools.lru_cache(maxsize=2048)(self._compose_card_parts)

    def ask(self, question: str, *, top: int = 3, lang: Lang | None = None) -> Answer:
        """Answer ``question``; ``lang`` forces the reply language (default: the question's)."""
        text = clean_question(question)
        analysis = self.matcher.analyse(text, limit=max(top, 3))
        lang = lang or ("en" if analysis.english else "vi")
        t = Text(lang)
        if not analysis.tokens:
            return Answer(question, "none", [], self._empty(t), lang)
        ranked = analysis.candidates
        kind = self._decide(ranked)
        if kind == "none" or ranked[0].outside:
            topic = self.outside.get(ranked[0].key) if kind != "none" else None
            return Answer(question, "none", [], self._decline(t, topic), lang, analysis.aspects)
        ranked = [c for c in ranked if not c.outside]
        matches = [self._match(c) for c in ranked[:top] if c.score >= OFFER_FLOOR]
        if kind == "clarify":
            return Answer(question, kind, matches, self._clarify(matches, t), lang,
                          analysis.aspects)
        best = ranked[0]
        faq = self.faqs.get(best.key)
        procedure = self.kb.procedures[best.code]
        body = self.faq_text(faq, procedure, t) if faq else self.card(
            procedure, t, analysis.aspects)
        return Answer(question, kind, matches, body, lang, analysis.aspects,
                      faq.id if faq else None)

    def _decide(self, ranked: Sequence[Candidate]) -> Kind:
        if not ranked or ranked[0].score < self.floor:
            return "none"
        runner_up = ranked[1].score if len(ranked) > 1 else 0.0
        if ranked[0].score >= self.direct and runner_up <= self.ratio * ranked[0].score:
            return "procedure"
        return "clarify"

    def _match(self, candidate: Candidate) -> Match:
        return Match(candidate.code, self.kb.procedures[candidate.code].name, candidate.score)

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

    def _clarify(self, matches: Sequence[Match], t: Text) -> str:
        lines = [t("Which procedure do you mean?")]
        lines += [f"{i}. {self.name(m.code, t)}" for i, m in enumerate(matches, 1)]
        lines.append(t("Reply with the number or the name of the procedure."))
        return "\n".join(lines)

    def name(self, code: str, t: Text) -> str:
        """A procedure's name in the reply language."""
        proc = self.kb.procedures[code]
        return proc.name_en if t.lang == "en" and proc.code in self.kb.bundled_codes else proc.name

    def faq_text(self, faq: Faq, procedure: Procedure, t: Text) -> str:
        """A FAQ answer with its sources and the procedure it belongs to."""
        sources = "; ".join(
            " ".join(x for x in (s.article, s.title, s.number) if x) for s in faq.sources)
        return "\n".join([
            faq.answer_en if t.lang == "en" else faq.answer,
            "",
            t("Source: {sources} (as of {date}).", sources=sources, date=t.date(faq.facts_date)),
            t("Related procedure: {name} (code {code}).", name=self.name(procedure.code, t),
              code=procedure.code),
        ])

    def card(self, proc: Procedure, t: Text, aspects: Sequence[Aspect] = ()) -> str:
        """The full answer about a procedure, leading with the aspects asked about."""
        head, sections, tail = self._card_parts(proc.code, t.lang)
        blocks = [head]
        for aspect in [*aspects, *sections]:
            block = sections[aspect]
            if block and block not in blocks:
                blocks.append(block)
        return "\n\n".join([*blocks, *tail])

    def _compose_card_parts(self, code: str, lang: Lang
                            ) -> tuple[str, dict[Aspect, str], list[str]]:
        """A card's title and summary, its sections by aspect, and its closing notes."""
        proc, t = self.kb.procedures[code], Text(lang)
        sections = {
            Aspect.DOCUMENTS: self._documents(proc, t),
            Aspect.FEE: self._per_method(t("Fees:"), proc, self.fee_text, t),
            Aspect.TIME: self._per_method(t("Processing time:"), proc, self.time_text, t),
            Aspect.WHERE: self._where(proc, t),
            Aspect.ONLINE: self._where(proc, t),
            Aspect.ELIGIBILITY: self._eligibility(proc, t),
            Aspect.STEPS: self._steps(proc, t),
            Aspect.LEGAL: self._legal(proc, t),
        }
        summary = proc.summary_en if t.lang == "en" else proc.summary
        title = t("{name} (code {code})", name=self.name(proc.code, t), code=proc.code)
        tail = []
        if proc.notes:
            tail.append(t("Note: {note}", note=proc.notes))
        if proc.has_unconfirmed:
            tail.append(t("Some details above are not confirmed by the source; please check "
                          "with {contact} before you go.", contact=self.contact(t)))
        tail.append(t("Source: national public service portal, {url} (as of {date}).",
                      url=proc.source_url, date=t.date(proc.facts_date)))
        return f"{title}\n{summary}", sections, tail

    def _documents(self, proc: Procedure, t: Text) -> str:
        if not proc.documents:
            return t("Documents: the source lists none; please ask the one-stop desk.")
        lines = [t("Documents to prepare:")]
        for i, doc in enumerate(proc.documents, 1):
            counts = []
            if doc.originals:
                counts.append(t("originals: {n}", n=doc.originals))
            if doc.copies:
                counts.append(t("copies: {n}", n=doc.copies))
            if doc.present_only:
                counts.append(t("show only"))
            line = f"{i}. {doc.name}" + (f" ({', '.join(counts)})" if counts else "")
            if doc.when:
                line += f" — {doc.when}"
            lines.append(line)
        return "\n".join(lines)

    @staticmethod
    def _annotate(text: str, note: str, confirmed: bool, t: Text) -> str:
        """Add the source's note and, where the source does not confirm the value, a warning."""
        if note:
            text += f" ({note})"
        return text if confirmed else text + " " + t("[not confirmed]")

    def fee_text(self, method: Method, t: Text) -> str:
        """One method's fee exactly as the source states it."""
        if method.fee_status is FeeStatus.AMOUNT and method.fee_vnd is not None:
            text = t.money(method.fee_vnd)
        else:
            text = t(FEE_TEXTS[method.fee_status])
        return self._annotate(text, method.fee_note, method.fee_confirmed, t)

    def time_text(self, method: Method, t: Text) -> str:
        """One method's processing time exactly as the source states it."""
        if method.time_value is None or method.time_unit is None:
            text = t("not published")
        else:
            text = t(TIME_UNITS[method.time_unit], value=t.number(method.time_value))
        return self._annotate(text, method.time_note, method.time_confirmed, t)

    @staticmethod
    def _per_method(title: str, proc: Procedure, describe: Callable[[Method, Text], str],
                    t: Text) -> str:
        """A titled list with one line per submission method."""
        lines = [title] + [f"- {t(CHANNEL_LABELS[m.channel])}: {describe(m, t)}"
                           for m in proc.methods]
        return "\n".join(lines)

    def _where(self, proc: Procedure, t: Text) -> str:
        lines = [t("Where and how to submit: {agency}", agency=proc.agency)]
        for method in proc.methods:
            if method.channel is Channel.ONLINE:
                lines.append(t("- Online: {url}", url=proc.online_url))
            elif method.channel is Channel.POST:
                lines.append(t("- By post to the one-stop desk of {commune}",
                               commune=self.kb.commune.name))
            else:
                lines.append(t("- In person at the one-stop desk of {commune}",
                               commune=self.kb.commune.name))
        if proc.decides:
            lines.append(t("Decided by: {who}", who=proc.decides))
        return "\n".join(lines)

    def _eligibility(self, proc: Procedure, t: Text) -> str:
        lines = []
        if proc.applicants:
            lines.append(t("Who may apply: {who}", who=proc.applicants))
        if proc.eligibility:
            lines.append(t("Conditions: {conditions}", conditions=proc.eligibility))
        return "\n".join(lines)

    def _steps(self, proc: Procedure, t: Text) -> str:
        if not proc.steps:
            return ""
        lines = [t("Steps:")] + [f"{i}. {s}" for i, s in enumerate(proc.steps, 1)]
        if proc.result:
            lines.append(t("Result: {result}", result=proc.result))
        return "\n".join(lines)

    def _legal(self, proc: Procedure, t: Text) -> str:
        if not proc.legal_basis:
            return ""
        items = [f"{d.title} {d.number}".strip() for d in proc.legal_basis]
        return t("Legal basis: {documents}", documents="; ".join(items))
