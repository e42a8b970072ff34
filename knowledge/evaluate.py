"""Evaluation of the answering core over labelled question sets (Rasa-style report).

A question file is JSON Lines: ``{"q": str, "codes": [accepted codes], "style": str}``;
``codes`` empty means out of scope (the assistant should decline). Two naive baselines are
measured on the same questions: rapidfuzz WRatio over official names, and BM25 over names.
A legal-question file (``legal_*.jsonl``) gives each question the key facts and the citations
a right answer holds: ``{"id", "q", "field", "style", "facts": [...], "citations":
[{"number", "article"}]}``.
"""

from __future__ import annotations

import json
import math
import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from rapidfuzz import fuzz, process

from knowledge.answer import Answer, Assistant
from knowledge.text import fold, tokenize


@dataclass(frozen=True)
class Question:
    """One labelled question."""

    q: str
    codes: tuple[str, ...]
    style: str


_Row = TypeVar("_Row")
SEVERAL = "several"  # replies to questions asking several aspects at once, measured apart


def _read_rows(path: Path, make: Callable[[dict[str, Any]], _Row]) -> list[_Row]:
    """Read a JSON Lines file row by row, failing with the line number on a bad line."""
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(make(json.loads(line)))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{number}: {exc}") from None
    return out


def read_questions(path: Path) -> list[Question]:
    """Read a question file."""
    return _read_rows(path, lambda row: Question(row["q"], tuple(row["codes"]),
                                                 row.get("style", "")))


def _pct(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


class NameBaselines:
    """The naive matchers a reader would try first, over official names only."""

    def __init__(self, assistant: Assistant) -> None:
        self.codes = list(assistant.kb.procedures)
        self.names = [fold(assistant.kb.procedures[c].name) for c in self.codes]
        docs = [tokenize(n) for n in self.names]
        self._docs = [Counter(d) for d in docs]
        self._lengths = [len(d) for d in docs]
        self._avg = sum(self._lengths) / max(len(docs), 1)
        df: Counter[str] = Counter(t for d in docs for t in set(d))
        n = len(docs)
        self._idf = {t: math.log((n - f + 0.5) / (f + 0.5) + 1) for t, f in df.items()}

    def wratio(self, question: str, k: int = 3) -> list[str]:
        """Top-k codes by rapidfuzz WRatio between the folded question and each name."""
        hits = process.extract(fold(question), self.names, scorer=fuzz.WRatio, limit=k)
        return [self.codes[i] for _, _, i in hits]

    def bm25(self, question: str, k: int = 3, k1: float = 1.5, b: float = 0.75) -> list[str]:
        """Top-k codes by Okapi BM25 over the folded names."""
        terms = tokenize(question)
        scores = []
        for i, doc in enumerate(self._docs):
            norm = k1 * (1 - b + b * self._lengths[i] / self._avg)
            s = sum(self._idf.get(t, 0.0) * doc[t] * (k1 + 1) / (doc[t] + norm)
                    for t in terms if t in doc)
            scores.append((s, i))
        scores.sort(key=lambda x: -x[0])
        return [self.codes[i] for s, i in scores[:k] if s > 0]


def _outcome(question: Question, answer: Answer) -> str:
    """How one answer went: "direct", "clarify", "none" (in scope), or "wrong"."""
    if answer.kind == "procedure" and answer.matches[0].code not in question.codes:
        return "wrong"
    return "direct" if answer.kind == "procedure" else answer.kind


def evaluate(assistant: Assistant, questions: Sequence[Question]) -> dict[str, Any]:
    """Accuracy figures and the per-procedure ``confused_with`` table for one question set."""
    in_scope = [q for q in questions if q.codes]
    out_scope = [q for q in questions if not q.codes]
    answers = {id(q): assistant.ask(q.q) for q in questions}
    outcomes = Counter(_outcome(q, answers[id(q)]) for q in in_scope)
    top3 = sum(answers[id(q)].kind != "none"
               and any(m.code in q.codes for m in answers[id(q)].matches[:3]) for q in in_scope)
    per_procedure: dict[str, dict[str, Any]] = {}
    by_style: dict[str, Counter[str]] = defaultdict(Counter)
    failures = []
    for q in questions:
        answer = answers[id(q)]
        got = [m.code for m in answer.matches][:3]
        if not q.codes:
            if answer.kind != "none":
                failures.append({"q": q.q, "expected": [], "kind": answer.kind, "got": got})
            continue
        outcome = _outcome(q, answer)
        by_style[q.style][outcome] += 1
        stats = per_procedure.setdefault(q.codes[0], {"n": 0, "direct": 0})
        stats["n"] += 1
        if outcome == "direct":
            stats["direct"] += 1
            continue
        confused = stats.setdefault("confused_with", {})
        label = got[0] if outcome == "wrong" else outcome
        confused[label] = confused.get(label, 0) + 1
        failures.append({"q": q.q, "expected": list(q.codes), "kind": answer.kind, "got": got})
    declined = sum(answers[id(q)].kind == "none" for q in out_scope)
    # aspect → (length, position); questions asking several aspects at once apart ("several")
    shapes: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for q in in_scope:
        answer = answers[id(q)]
        if answer.kind == "procedure" and answer.aspects and not answer.faq and answer.code:
            label = assistant.aspect_label(answer.code, answer.aspects[0], answer.lang)
            key = answer.aspects[0].value if len(answer.aspects) == 1 else SEVERAL
            shapes[key].append((len(answer.answer), answer.answer.find(label)))
    single = [p for aspect, ps in shapes.items() if aspect != SEVERAL for p in ps]
    return {
        "questions": len(questions),
        "in_scope": len(in_scope),
        "out_of_scope": len(out_scope),
        "direct_correct": _pct(outcomes["direct"], len(in_scope)),
        "top3_correct": _pct(top3, len(in_scope)),
        "wrong_confident": _pct(outcomes["wrong"], len(in_scope)),
        "clarified": _pct(outcomes["clarify"], len(in_scope)),
        "in_scope_declined": _pct(outcomes["none"], len(in_scope)),
        "out_of_scope_declined": _pct(declined, len(out_scope)),
        "by_style": {style: _pct(c["direct"], sum(c.values()))
                     for style, c in sorted(by_style.items())},
        "aspect_replies": {aspect: {
            "n": len(pairs),
            "median_chars": statistics.median(n for n, _ in pairs),
            "median_position": statistics.median(p for _, p in pairs),
            "position_over_200": sum(p > 200 or p < 0 for _, p in pairs),
        } for aspect, pairs in sorted({**shapes, "all": single}.items()) if pairs},
        "baselines": _baselines(assistant, in_scope),
        "per_procedure": dict(sorted(per_procedure.items())),
        "failures": failures,
    }


def _baselines(assistant: Assistant, in_scope: Sequence[Question]) -> dict[str, Any]:
    """Top-1 and top-3 accuracy of the naive matchers on the same in-scope questions."""
    base = NameBaselines(assistant)
    out = {}
    for name, rank in (("wratio_names", base.wratio), ("bm25_names", base.bm25)):
        hits = [(q, rank(q.q)) for q in in_scope]
        out[name] = {
            "top1": _pct(sum(bool(h) and h[0] in q.codes for q, h in hits), len(in_scope)),
            "top3": _pct(sum(any(c in q.codes for c in h) for q, h in hits), len(in_scope)),
        }
    return out


def evaluate_files(assistant: Assistant, paths: Sequence[Path]) -> dict[str, Any]:
    """One report per question file, keyed by file name."""
    return {p.name: evaluate(assistant, read_questions(p)) for p in paths}


def render(report: dict[str, Any]) -> str:
    """A plain-text report for people."""
    lines = []
    for name, r in report.items():
        lines.append(f"== {name}: {r['questions']} questions "
                     f"({r['in_scope']} in scope, {r['out_of_scope']} out of scope)")
        for key in ("direct_correct", "top3_correct", "wrong_confident", "clarified",
                    "in_scope_declined", "out_of_scope_declined"):
            lines.append(f"  {key:<24}{r[key]:>6} %")
        lines.append("  by style (direct correct %): " + ", ".join(
            f"{k} {v}" for k, v in r["by_style"].items()))
        lines.append("  aspect replies (chars median, position of the aspect median, "
                     "position > 200; all = questions asking one aspect):")
        for aspect, shape in r["aspect_replies"].items():
            lines.append(f"    {aspect:<12} n={shape['n']:<4} {shape['median_chars']:>6} chars, "
                         f"at {shape['median_position']}, {shape['position_over_200']} late")
        for base, figures in r["baselines"].items():
            lines.append(f"  baseline {base:<15} top1 {figures['top1']} %, "
                         f"top3 {figures['top3']} %, out of scope declined 0 %")
        lines.append("  confused_with (procedures below 100 %):")
        for code, stats in r["per_procedure"].items():
            if "confused_with" in stats:
                lines.append(f"    {code}: {stats['direct']}/{stats['n']} direct, "
                             f"confused with {stats['confused_with']}")
        lines.append("  failures:")
        lines += [f"    {f['q']!r} expected {f['expected']} got {f['kind']} {f['got']}"
                  for f in r["failures"]]
    return "\n".join(lines)


@dataclass(frozen=True)
class LegalQuestion:
    """One legal question with the key facts and the citations a right answer holds."""

    id: str
    q: str
    field: str
    style: str
    facts: tuple[str, ...]  # each may list spellings as "a | b"
    citations: tuple[tuple[str, str], ...]  # (document number, "Điều N"); any one will do


def read_legal(path: Path) -> list[LegalQuestion]:
    """Read a legal-question file."""
    return _read_rows(path, lambda row: LegalQuestion(
        row["id"], row["q"], row["field"], row.get("style", ""), tuple(row["facts"]),
        tuple((c["number"], c["article"]) for c in row["citations"])))


def has_fact(answer: str, fact: str) -> bool:
    """Whether the answer states the fact in one of its spellings (case and marks aside)."""
    text = " ".join(fold(answer).split())
    return any(" ".join(fold(s).split()) in text for s in fact.split("|") if s.strip())


def cites(answer: str, number: str, article: str) -> bool:
    """Whether the answer cites this document number and article (in either language)."""
    text = fold(answer)
    digits = re.sub(r"\D", "", article)
    return fold(number) in text and re.search(
        rf"\b(?:dieu|article) {re.escape(digits)}\b", text) is not None


def evaluate_legal(assistant: Assistant, questions: Sequence[LegalQuestion]) -> dict[str, Any]:
    """How many answers hold the key facts and a right citation, by field and style."""
    rows = []
    for q in questions:
        answer = assistant.ask(q.q)
        facts = all(has_fact(answer.answer, f) for f in q.facts)
        cited = any(cites(answer.answer, n, a) for n, a in q.citations)
        rows.append((q, answer, facts, cited))

    def share(selected: list[tuple[LegalQuestion, Answer, bool, bool]]) -> float:
        return _pct(sum(f and c for _, _, f, c in selected), len(selected))

    groups: dict[str, dict[str, list[tuple[LegalQuestion, Answer, bool, bool]]]] = {
        "field": defaultdict(list), "style": defaultdict(list)}
    for row in rows:
        groups["field"][row[0].field].append(row)
        groups["style"][row[0].style].append(row)
    return {
        "questions": len(rows),
        "passed": share(rows),
        "facts": _pct(sum(f for _, _, f, _ in rows), len(rows)),
        "citation": _pct(sum(c for _, _, _, c in rows), len(rows)),
        "rule_answers": _pct(sum(a.faq is not None for _, a, _, _ in rows), len(rows)),
        "by_field": {k: share(v) for k, v in sorted(groups["field"].items())},
        "by_style": {k: share(v) for k, v in sorted(groups["style"].items())},
        "failures": [{"id": q.id, "q": q.q, "facts": facts, "citation": cited,
                      "kind": a.kind, "faq": a.faq, "code": a.code, "answer": a.answer[:160]}
                     for q, a, facts, cited in rows if not (facts and cited)],
    }


def render_legal(name: str, r: dict[str, Any]) -> str:
    """A plain-text legal report for people."""
    lines = [f"== {name}: {r['questions']} legal questions, {r['passed']} % with the key facts "
             f"and a right citation (facts {r['facts']} %, citation {r['citation']} %, "
             f"answered by a rule {r['rule_answers']} %)",
             "  by field: " + ", ".join(f"{k} {v}" for k, v in r["by_field"].items()),
             "  by style: " + ", ".join(f"{k} {v}" for k, v in r["by_style"].items()),
             "  failures:"]
    lines += [f"    {f['id']} {f['q']!r}: facts {f['facts']}, citation {f['citation']}, "
              f"got {f['kind']} {f['faq'] or f['code']}" for f in r["failures"]]
    return "\n".join(lines)
