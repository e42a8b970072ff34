"""Knowledge changes staff make in the console, applied over the bundled knowledge base.

Two kinds: an *alias* (a phrasing citizens use, attached to a procedure as one of its aliases
or to a FAQ entry as one of its questions) and a new *FAQ entry*. They live in the database
(``storage.knowledge_changes``); here they are only merged into a ``KnowledgeBase``, so the
assistant built from the result matches and answers them exactly as bundled entries. Bundled
files are never written; ``faq_toml``/``alias_toml`` print a change in the bundled format.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from knowledge.loader import KnowledgeBase
from knowledge.schema import Faq
from knowledge.text import fold

FAQ_TARGET = "faq:"  # an alias target naming a FAQ entry: "faq:<id>"; else a procedure code


@dataclass(frozen=True)
class Alias:
    """A phrasing that means a procedure (``target`` a code) or a FAQ entry ("faq:<id>")."""

    phrasing: str
    target: str


def faq_id(question: str, version: int) -> str:
    """A new FAQ entry's id: its first question as a slug, made unique by the version."""
    slug = "-".join(re.findall(r"[a-z0-9]+", fold(question)))[:48].strip("-")
    return f"{slug or 'hoi-dap'}-v{version}"


def apply_changes(kb: KnowledgeBase, *, aliases: Iterable[Alias] = (),
                  faqs: Sequence[Faq] = ()) -> KnowledgeBase:
    """``kb`` with the new FAQ entries added and the aliases attached to their targets.

    An alias whose target is not in the result (an undone FAQ entry, a procedure no longer
    loaded) is left out; a FAQ entry reusing a bundled id is left out too (bundled wins)."""
    known = {f.id for f in kb.faqs}
    entries = [*kb.faqs, *(f for f in faqs if f.id not in known)]
    to_procedure: dict[str, list[str]] = {}
    to_faq: dict[str, list[str]] = {}
    for alias in aliases:
        if alias.target.startswith(FAQ_TARGET):
            to_faq.setdefault(alias.target.removeprefix(FAQ_TARGET), []).append(alias.phrasing)
        elif alias.target in kb.procedures:
            to_procedure.setdefault(alias.target, []).append(alias.phrasing)
    if not to_procedure and not to_faq and len(entries) == len(kb.faqs):
        return kb
    procedures = dict(kb.procedures)
    for code, phrasings in to_procedure.items():
        proc = procedures[code]
        procedures[code] = proc.model_copy(update={"aliases": [*proc.aliases, *phrasings]})
    entries = [f.model_copy(update={"questions": [*f.questions, *to_faq[f.id]]})
               if f.id in to_faq else f for f in entries]
    return replace(kb, procedures=procedures, faqs=entries)


def _toml_string(value: str) -> str:
    """A TOML basic string."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _toml_list(values: Sequence[str]) -> str:
    if not values:
        return "[]"
    return "[\n" + "".join(f"  {_toml_string(v)},\n" for v in values) + "]"


def faq_toml(faq: Faq, *, note: str = "") -> str:
    """A FAQ entry as a bundled ``knowledge/faq/<id>.toml`` file."""
    lines = [f"# {note}", ""] if note else []
    lines += [f"id = {_toml_string(faq.id)}", f"field = {_toml_string(faq.field.value)}"]
    if faq.procedure:
        lines.append(f"procedure = {_toml_string(faq.procedure)}")
    lines += [f"questions = {_toml_list(faq.questions)}",
              f"questions_en = {_toml_list(faq.questions_en)}",
              f"answer = {_toml_string(faq.answer)}",
              f"answer_en = {_toml_string(faq.answer_en)}",
              f"facts_date = {faq.facts_date.isoformat()}"]
    for source in faq.sources:
        lines += ["", "[[sources]]", f"title = {_toml_string(source.title)}"]
        lines += [f"{name} = {_toml_string(value)}" for name, value in (
            ("number", source.number), ("article", source.article), ("clause", source.clause))
            if value]
    return "\n".join(lines) + "\n"


def alias_toml(alias: Alias, *, note: str = "") -> str:
    """An alias as the line to add to its procedure's ``aliases`` (or its FAQ's
    ``questions``), commented with where it goes."""
    where = (f"knowledge/faq/{alias.target.removeprefix(FAQ_TARGET)}.toml: questions"
             if alias.target.startswith(FAQ_TARGET)
             else f"knowledge/procedures/{alias.target}.toml: aliases")
    return f"# {where}{f' ({note})' if note else ''}\n{_toml_string(alias.phrasing)},\n"
