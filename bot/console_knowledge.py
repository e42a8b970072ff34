"""The console's Knowledge page: teach the assistant the questions it missed.

``/console/knowledge`` searches procedures and FAQ entries with the assistant's own matcher,
lists the questions it declined (most asked first), and lets staff say what one meant (the
phrasing becomes an alias of a procedure or FAQ entry) or write an answer (a new FAQ entry,
with its legal citation). Changes are versioned per commune and can be undone; they take
effect at once in this process and within seconds in others (``handlers.knowledge``). A box
asks the assistant a question and shows its answer with the full legal basis.

Admins and officers may both change the knowledge: officers are the ones who answer citizens,
and every change is audited and can be undone.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass
from urllib.parse import urlencode

from aiohttp import web
from pydantic import ValidationError

from bot import posters
from bot.api import OFFICE
from bot.console import (
    CONSOLE,
    PREFIX,
    Staff,
    page_language,
    redirect,
    refuse,
    render,
    staff_required,
)
from handlers.knowledge import LiveKnowledge
from knowledge.answer import Answer, Assistant, clean_question, source_en, source_vi
from knowledge.changes import FAQ_TARGET, Alias, alias_toml, faq_toml
from knowledge.i18n import N_, Lang, Text
from knowledge.match import FAQ
from knowledge.schema import Faq, FaqSource, LegalField
from storage import knowledge_changes as changes
from storage import staff
from storage.db import session_scope

PAGE = f"{PREFIX}/knowledge"
MISSED_DAYS = 90  # declined questions this recent are listed
MAX_PHRASING = 300
MAX_ANSWER = 4000
SEARCH_RESULTS = 10
KINDS = {"procedure": N_("answered about a procedure"), "clarify": N_("asks back which one"),
         "none": N_("declined"), "rule": N_("answered with a legal rule")}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def _live(request: web.Request, who: Staff) -> LiveKnowledge:
    """The staff member's commune's assistant, brought up to date."""
    live = who.served.knowledge
    await live.refresh()
    return live


@dataclass(frozen=True)
class Found:
    """A search result: a procedure or a FAQ entry."""

    target: str  # a procedure code or "faq:<id>"
    title: str
    score: float


@dataclass(frozen=True)
class Asked:
    """The assistant's answer to an officer's question, with what it rests on."""

    answer: Answer
    score: float | None
    basis: list[str]


def _title(assistant: Assistant, target: str, t: Text) -> str:
    """How a procedure or FAQ entry is named in the page."""
    if target.startswith(FAQ_TARGET):
        faq = assistant.faqs.get(f"{FAQ}{target.removeprefix(FAQ_TARGET)}")
        return faq.questions[0] if faq is not None else target
    if target in assistant.kb.procedures:
        return f"{assistant.short_name(target, t)} ({target})"
    return target


def search(assistant: Assistant, words: str, t: Text) -> list[Found]:
    """Procedures and FAQ entries matching ``words``, as the assistant matches questions."""
    analysis = assistant.matcher.analyse(clean_question(words), limit=SEARCH_RESULTS)
    out = []
    for c in analysis.candidates:
        target = (f"{FAQ_TARGET}{c.key.removeprefix(FAQ)}" if c.key.startswith(FAQ)
                  else c.code)
        if not c.outside:
            out.append(Found(target, _title(assistant, target, t), c.score))
    return out


def basis(assistant: Assistant, answer: Answer, lang: Lang) -> list[str]:
    """The legal basis of an answer: a FAQ entry's citations, or the procedure's legal
    documents and its source on the national portal."""
    if answer.faq:
        faq = assistant.faqs[f"{FAQ}{answer.faq}"]
        return [(source_en if lang == "en" else source_vi)(s) for s in faq.sources]
    if answer.code in assistant.kb.procedures:
        proc = assistant.kb.procedures[answer.code]
        return [*(f"{d.title} {d.number}".strip() for d in proc.legal_basis), proc.source_url]
    return []


def ask(assistant: Assistant, question: str, lang: Lang) -> Asked:
    """The assistant's answer as a citizen would get it, with its score and basis."""
    answer = assistant.ask(question, lang=lang)
    score = answer.matches[0].score if answer.matches else None
    return Asked(answer, score, basis(assistant, answer, lang))


def _targets(assistant: Assistant, t: Text) -> list[tuple[str, str]]:
    """Everything a phrasing may mean: the procedures, then the FAQ entries."""
    kb = assistant.kb
    procedures = sorted(((code, _title(assistant, code, t)) for code in kb.procedures),
                        key=lambda pair: pair[1])
    return procedures + [(f"{FAQ_TARGET}{f.id}", f.questions[0]) for f in kb.faqs]


@staff_required()
async def knowledge_page(request: web.Request, who: Staff) -> web.StreamResponse:
    """``GET /console/knowledge``: search, missed questions, changes, ask the assistant."""
    assistant = (await _live(request, who)).assistant
    lang = page_language(request)
    t = Text(lang)
    words = request.query.get("q", "")[:MAX_PHRASING].strip()
    question = request.query.get("ask", "")[:MAX_PHRASING].strip()
    async with session_scope(request.app[OFFICE].sessions) as session:
        since = _now() - dt.timedelta(days=MISSED_DAYS)
        missed = await changes.missed(session, commune_id=who.commune_id, since=since)
        unsure = await changes.missed(session, commune_id=who.commune_id, since=since,
                                      kind="unsure")
        history = await changes.history(session, commune_id=who.commune_id)
        version = await changes.version(session, commune_id=who.commune_id)
    return render(request, "knowledge.html", staff_member=who, words=words,
                  found=search(assistant, words, t) if words else [],
                  question=question, asked=ask(assistant, question, lang) if question else None,
                  missed=missed, unsure=unsure, history=history, version=version,
                  titles_of={q.answered: _title(assistant, q.answered, t)
                             for q in unsure if q.answered},
                  targets=_targets(assistant, t),
                  titles={c.target: _title(assistant, c.target, t) for c in history},
                  procedures=len(assistant.kb.procedures), faqs=len(assistant.kb.faqs),
                  poster_codes=assistant.kb.procedures,
                  kinds=KINDS,
                  done=request.query.get("done", ""))


def _id(raw: str) -> int | None:
    """A row id from a URL or form (None when it cannot be one: not digits, or too large for
    the column)."""
    return int(raw) if raw.isdigit() and len(raw) <= 9 else None


async def _field(request: web.Request, name: str, limit: int = MAX_PHRASING) -> str:
    value = (await request.post()).get(name, "")
    return value.strip()[:limit] if isinstance(value, str) else ""


async def _unanswered(request: web.Request, who: Staff) -> int | web.Response | None:
    """The missed question a form fixes (None: none), or a 404 when it is not this
    commune's."""
    raw = await _field(request, "unanswered")
    if not raw:
        return None
    number = _id(raw)
    async with session_scope(request.app[OFFICE].sessions) as session:
        found = None if number is None else await changes.unanswered(
            session, commune_id=who.commune_id, unanswered_id=number)
    if found is None:
        return refuse(request, 404, N_("There is no such question."), staff_member=who)
    return number


@staff_required()
async def add_alias(request: web.Request, who: Staff) -> web.StreamResponse:
    """``POST /console/knowledge/alias``: a phrasing means a procedure (or a FAQ entry)."""
    live = await _live(request, who)
    phrasing = clean_question(await _field(request, "phrasing"))
    target = await _field(request, "target", 80)
    known = target in live.assistant.kb.procedures or (
        target.startswith(FAQ_TARGET)
        and f"{FAQ}{target.removeprefix(FAQ_TARGET)}" in live.assistant.faqs)
    if not phrasing or not known:
        return refuse(request, 422, N_("Write the phrasing and choose a procedure or a FAQ "
                                       "entry from the list."), staff_member=who)
    unanswered = await _unanswered(request, who)
    if isinstance(unanswered, web.Response):
        return unanswered
    now = _now()
    async with session_scope(request.app[OFFICE].sessions) as session:
        change = await changes.add_alias(session, commune_id=who.commune_id,
                                         phrasing=phrasing, target=target, actor=who.actor,
                                         now=now, unanswered_id=unanswered)
        await staff.audit(session, commune_id=who.commune_id, actor=who.actor,
                          action="knowledge.alias", target=f"change:{change.id}",
                          detail=f"{phrasing} -> {target}", at=now)
    await live.refresh()
    return _shown(phrasing)


def _shown(question: str) -> web.Response:
    """Back to the page, asking the assistant the question just taught."""
    return redirect(f"{PAGE}?{_query(done='1', ask=question)}")


def _query(**values: str) -> str:
    return urlencode(values)


@staff_required()
async def faq_form(request: web.Request, who: Staff) -> web.StreamResponse:
    """``GET /console/knowledge/faq``: the form of a new FAQ entry (for a missed question)."""
    assistant = (await _live(request, who)).assistant
    question, unanswered = "", request.query.get("unanswered", "")
    if unanswered:
        number = _id(unanswered)
        async with session_scope(request.app[OFFICE].sessions) as session:
            found = None if number is None else await changes.unanswered(
                session, commune_id=who.commune_id, unanswered_id=number)
        if found is None:
            return refuse(request, 404, N_("There is no such question."), staff_member=who)
        question = found.text
    return _faq_form(request, who, assistant, values={"questions": question,
                                                      "unanswered": unanswered,
                                                      "facts_date": _now().date().isoformat()})


def _faq_form(request: web.Request, who: Staff, assistant: Assistant, *,
              values: dict[str, str], error: str = "", status: int = 200) -> web.Response:
    t = Text(page_language(request))
    procedures = sorted(((code, _title(assistant, code, t)) for code in assistant.kb.bundled_codes),
                        key=lambda pair: pair[1])
    return render(request, "knowledge_faq.html", status=status, staff_member=who,
                  values=values, error=error, fields=[f.value for f in LegalField],
                  procedures=procedures)


FAQ_FIELDS = ("questions", "questions_en", "answer", "answer_en", "field", "procedure",
              "title", "number", "article", "clause", "facts_date", "unanswered")


@staff_required()
async def add_faq(request: web.Request, who: Staff) -> web.StreamResponse:
    """``POST /console/knowledge/faq``: a new FAQ entry; it needs a legal document's number
    and article."""
    live = await _live(request, who)
    values = {name: await _field(request, name, MAX_ANSWER) for name in FAQ_FIELDS}
    t = Text(page_language(request))
    questions = [clean_question(q) for q in values["questions"].splitlines() if q.strip()]
    problem = ""
    if not questions or not values["answer"]:
        problem = N_("Write at least one question and the answer.")
    elif not (values["number"] and values["article"]):
        problem = N_("Cite the legal document's number and the article the answer rests on.")
    elif values["procedure"] and values["procedure"] not in live.assistant.kb.bundled_codes:
        problem = N_("Choose the related procedure from the list.")
    entry = None
    if not problem:
        try:
            entry = Faq(
                id="new", field=LegalField(values["field"]) if values["field"] in
                LegalField._value2member_map_ else LegalField.ELSEWHERE,
                procedure=values["procedure"], questions=questions,
                questions_en=[q.strip() for q in values["questions_en"].splitlines()
                              if q.strip()],
                answer=values["answer"], answer_en=values["answer_en"] or values["answer"],
                sources=[FaqSource(title=values["title"] or values["number"],
                                   number=values["number"], article=values["article"],
                                   clause=values["clause"])],
                facts_date=dt.date.fromisoformat(values["facts_date"]))
        except ValidationError as exc:
            where = ".".join(str(part) for part in exc.errors()[0]["loc"])
            problem = t("Check the field “{field}”: {reason}", field=where,
                        reason=exc.errors()[0]["msg"])
        except ValueError:
            problem = N_("Write the date of the facts as a date.")
    if entry is None:
        return _faq_form(request, who, live.assistant, values=values, status=422,
                         error=t(problem))
    unanswered = await _unanswered(request, who)
    if isinstance(unanswered, web.Response):
        return unanswered
    now = _now()
    async with session_scope(request.app[OFFICE].sessions) as session:
        change = await changes.add_faq(session, commune_id=who.commune_id, entry=entry,
                                       actor=who.actor, now=now, unanswered_id=unanswered)
        await staff.audit(session, commune_id=who.commune_id, actor=who.actor,
                          action="knowledge.faq", target=f"change:{change.id}",
                          detail=change.target, at=now)
    await live.refresh()
    return _shown(questions[0])


@staff_required()
async def undo(request: web.Request, who: Staff) -> web.StreamResponse:
    """``POST /console/knowledge/changes/{id}/undo``: the change no longer applies."""
    live = await _live(request, who)
    number = _id(request.match_info["id"])
    now = _now()
    async with session_scope(request.app[OFFICE].sessions) as session:
        change = None if number is None else await changes.undo(
            session, commune_id=who.commune_id, change_id=number, actor=who.actor, now=now)
        if change is not None:
            await staff.audit(session, commune_id=who.commune_id, actor=who.actor,
                              action="knowledge.undo", target=f"change:{change.id}",
                              detail=f"{change.phrasing} -> {change.target}", at=now)
    if change is None:
        return refuse(request, 404, N_("There is no such change, or it is undone already."),
                      staff_member=who)
    await live.refresh()
    return redirect(f"{PAGE}?{_query(done='1', ask=change.phrasing)}")


@staff_required()
async def export(request: web.Request, who: Staff) -> web.StreamResponse:
    """``GET /console/knowledge/export``: the changes in force in the bundled files' format
    (TOML), to be copied into ``knowledge/`` when they become part of the bundled base."""
    async with session_scope(request.app[OFFICE].sessions) as session:
        found = [c for c in await changes.history(session, commune_id=who.commune_id)
                 if c.undone_at is None]
    parts = [faq_toml(changes.entry_of(c), note=f"knowledge/faq/{c.target}.toml (version "
                      f"{c.version}, {c.created_by})") if c.kind == "faq"
             else alias_toml(Alias(c.phrasing, c.target),
                             note=f"version {c.version}, {c.created_by}")
             for c in reversed(found)]
    return web.Response(text="\n".join(parts), content_type="text/plain", charset="utf-8",
                        headers={"Cache-Control": "no-store", "Content-Disposition":
                                 'attachment; filename="knowledge-changes.toml"'})


SHEET, SERVICE = "bang-tin", "dich-vu"  # the notice-board sheet, the whole service's poster


@staff_required()
async def poster(request: web.Request, who: Staff) -> web.StreamResponse:
    """``GET /console/knowledge/posters/{name}``: a printable A4 PDF: a procedure's poster
    (``name`` its code), the notice-board sheet of every procedure, or the service's poster."""
    assistant = (await _live(request, who)).assistant
    lang, name = page_language(request), request.match_info["name"]
    links = posters.Links.from_settings(request.app[CONSOLE].settings, who.served.settings,
                                        assistant.kb.commune)
    if name == SERVICE:
        pages = [posters.service_poster(assistant, links, lang)]
    elif name == SHEET:
        pages = posters.notice_sheet(assistant, sorted(assistant.kb.procedures), links, lang)
    elif name in assistant.kb.procedures:
        pages = [posters.procedure_poster(assistant, name, links, lang)]
    else:
        return refuse(request, 404, N_("There is no such poster."), staff_member=who)
    body = await asyncio.to_thread(posters.pdf_bytes, pages, assistant.kb.commune.name)
    return web.Response(body=body, content_type="application/pdf", headers={
        "Cache-Control": "no-store",
        "Content-Disposition": f'attachment; filename="{name}.pdf"'})


def add_routes(app: web.Application) -> None:
    """Serve the Knowledge page."""
    app.router.add_get(PAGE, knowledge_page)
    app.router.add_post(f"{PAGE}/alias", add_alias)
    app.router.add_get(f"{PAGE}/faq", faq_form)
    app.router.add_post(f"{PAGE}/faq", add_faq)
    app.router.add_post(f"{PAGE}/changes/{{id}}/undo", undo)
    app.router.add_get(f"{PAGE}/export", export)
    app.router.add_get(f"{PAGE}/posters/{{name}}", poster)
