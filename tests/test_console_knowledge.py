"""The console's Knowledge page: a missed question fixed by staff is answered by the chat at
the next try, without a restart; undo restores the decline; new FAQ entries carry their legal
citation; communes do not share their changes (SQLite and PostgreSQL)."""

import asyncio
import datetime as dt
import re
import tomllib
from collections.abc import Callable
from typing import Any

from aiohttp.test_utils import TestClient

from handlers.applications import Office
from handlers.intents.questions import UNSURE_BELOW
from handlers.knowledge import LiveKnowledge
from knowledge.answer import Assistant
from knowledge.schema import Faq
from storage import applications as repo
from storage import conversations as conversations_repo
from storage import knowledge_changes as changes
from storage.db import session_scope
from tests.samples import T0
from tests.test_console_auth import Browser, add_account, audited
from tests.test_console_auth import browser as browser  # the fixtures
from tests.test_console_auth import client as client
from tests.test_web import Chat

MISSED = "giấy phép nuôi chim yến"  # declined today: it names no procedure the commune has
BUILDING_PERMIT = "1.013225"  # a swiftlet house is a building: it needs a building permit
FAQ_QUESTION = "nuôi chim yến trong nhà có phải khai báo không"


async def ask_chat(client: TestClient[Any, Any], text: str) -> dict[str, Any]:
    """The first reply a new web-chat visitor gets to ``text``."""
    reply: dict[str, Any] = (await Chat(client).send(text=text))["replies"][0]
    return reply


async def page(chrome: Browser, path: str = "/console/knowledge") -> str:
    response = await chrome.get(path)
    assert response.status == 200, response.status
    return await response.text()


async def test_missed_question_taught_as_an_alias_is_answered_at_once_and_undo_restores_it(
        office: Office, client: TestClient[Any, Any],
        browser: Callable[[], Browser]) -> None:
    declined = await ask_chat(client, MISSED)
    assert declined["intent"] == "decline"
    await add_account(office, "an", "officer")  # officers may teach the assistant
    chrome = browser()
    assert (await chrome.sign_in("an")).status == 303
    html = await page(chrome)
    assert MISSED in html
    unanswered = re.search(r'name="unanswered" value="(\d+)"', html)
    assert unanswered is not None
    token = await chrome.csrf("/console/knowledge")
    saved = await chrome.post("/console/knowledge/alias", {
        "csrf": token, "unanswered": unanswered[1], "phrasing": MISSED,
        "target": BUILDING_PERMIT})
    assert saved.status == 303
    # The page asks the assistant the question just taught, and shows its legal basis.
    shown = await page(chrome, saved.headers["Location"])
    assert "(mã 1.013225)" in shown and "Luật Xây dựng" in shown
    assert "<strong>Loại câu trả lời:</strong> trả lời về một thủ tục" in shown
    answered = await ask_chat(client, MISSED)  # the very next try, no restart
    assert answered["intent"] == "procedure" and "(mã 1.013225)" in answered["text"]
    assert "Chưa có câu hỏi nào bị bỏ lỡ" in shown  # the missed question is handled
    assert [e.actor for e in await audited(office, "knowledge.alias")] == ["staff:an"]
    change = re.search(r'action="/console/knowledge/changes/(\d+)/undo"', shown)
    assert change is not None
    undone = await chrome.post(f"/console/knowledge/changes/{change[1]}/undo", {"csrf": token})
    assert undone.status == 303
    assert (await ask_chat(client, MISSED))["intent"] == "decline"
    after = await page(chrome)
    assert "Đã hoàn tác bởi staff:an" in after and MISSED in after  # missed again, kept
    again = await chrome.post(f"/console/knowledge/changes/{change[1]}/undo", {"csrf": token})
    assert again.status == 404  # undone already


# Answered today on a weak match, with a grandparent's allowance: the orphan's is meant.
WEAK = "xin tiền trợ cấp cho cháu mồ côi đang ở với bà"
ORPHAN_ALLOWANCE = "1.001776"


async def test_weak_answer_is_listed_for_staff_and_teaching_it_makes_the_next_answer_right(
        assistant: Assistant, office: Office, client: TestClient[Any, Any],
        browser: Callable[[], Browser]) -> None:
    weak = assistant.ask(WEAK)
    assert weak.kind == "procedure" and weak.code != ORPHAN_ALLOWANCE
    assert weak.matches[0].score < UNSURE_BELOW  # what makes it "low confidence"
    first = await ask_chat(client, WEAK)
    assert first["intent"] == "procedure" and f"(mã {weak.code})" in first["text"]
    await add_account(office, "an", "officer")
    chrome = browser()
    assert (await chrome.sign_in("an")).status == 303
    html = await page(chrome)
    declined, unsure = html.split('id="kb-unsure"')
    unsure = unsure.split("</section>")[0]
    assert WEAK not in declined  # it was answered: not among the declined questions
    assert WEAK in unsure and f"({weak.code})" in unsure  # what the assistant answered
    unanswered = re.search(r'name="unanswered" value="(\d+)"', unsure)
    assert unanswered is not None
    saved = await chrome.post("/console/knowledge/alias", {
        "csrf": await chrome.csrf("/console/knowledge"), "unanswered": unanswered[1],
        "phrasing": WEAK, "target": ORPHAN_ALLOWANCE})
    assert saved.status == 303
    answered = await ask_chat(client, WEAK)
    assert f"(mã {ORPHAN_ALLOWANCE})" in answered["text"]
    listed = (await page(chrome)).split('id="kb-unsure"')[1].split("</section>")[0]
    assert WEAK not in listed  # handled
    async with session_scope(office.sessions) as session:  # the overview counts declines only
        assert not await changes.missed(session, commune_id=office.commune_id,
                                        since=T0 - dt.timedelta(days=3650))


async def test_new_faq_entry_answers_its_question_with_its_citation(
        office: Office, client: TestClient[Any, Any],
        browser: Callable[[], Browser]) -> None:
    await add_account(office, "an", "admin")  # admins may too
    chrome = browser()
    assert (await chrome.sign_in("an")).status == 303
    token = await chrome.csrf("/console/knowledge/faq")
    entry = {"csrf": token, "questions": f"{FAQ_QUESTION}\nnhà yến có cần khai báo với xã",
             "answer": "Có: nuôi chim yến phải khai báo với Ủy ban nhân dân cấp xã theo Luật "
                       "Chăn nuôi.",
             "answer_en": "Yes: swiftlet farming must be declared to the commune.",
             "questions_en": "Must swiftlet farming be declared to the commune?",
             "field": "Cơ quan khác", "procedure": "", "title": "Luật Chăn nuôi",
             "number": "", "article": "Điều 64", "clause": "", "facts_date": "2026-12-06"}
    uncited = await chrome.post("/console/knowledge/faq", entry)
    assert uncited.status == 422
    assert "Hãy ghi số văn bản pháp luật" in await uncited.text()
    saved = await chrome.post("/console/knowledge/faq", {**entry, "number": "32/2018/QH14"})
    assert saved.status == 303
    reply = await ask_chat(client, FAQ_QUESTION)
    assert reply["text"].startswith("Có: nuôi chim yến phải khai báo")
    assert "Điều 64 Luật Chăn nuôi 32/2018/QH14" in reply["text"]
    shown = await page(chrome, saved.headers["Location"])
    assert "Điều 64 Luật Chăn nuôi 32/2018/QH14" in shown
    english = await ask_chat(client, "must swiftlet farming be declared to the commune")
    assert english["text"].startswith("Yes: swiftlet farming must be declared")
    assert "Law 32/2018/QH14, Article 64" in english["text"]
    assert len(await audited(office, "knowledge.faq")) == 1
    exported = await chrome.get("/console/knowledge/export")  # ready for knowledge/faq/
    bundled = Faq.model_validate(tomllib.loads(await exported.text()))
    assert bundled.questions[0] == FAQ_QUESTION and bundled.sources[0].number == "32/2018/QH14"


async def test_another_communes_changes_do_not_apply_here(
        office: Office, client: TestClient[Any, Any],
        browser: Callable[[], Browser]) -> None:
    async with session_scope(office.sessions) as session:
        other = await repo.ensure_commune(session, slug="phuc-tho", name="Xã Phúc Thọ")
    await add_account(office, "son", "officer", commune_id=other)
    await add_account(office, "an", "officer")
    neighbour, hat_mon = browser(), browser()
    assert (await neighbour.sign_in("son")).status == 303
    assert (await hat_mon.sign_in("an")).status == 303
    await ask_chat(client, MISSED)  # a Hát Môn citizen's miss
    mine = await page(hat_mon)
    unanswered = re.search(r'name="unanswered" value="(\d+)"', mine)
    assert unanswered is not None
    assert MISSED not in await page(neighbour)  # another commune's missed questions stay hidden
    token = await neighbour.csrf("/console/knowledge")
    stolen = await neighbour.post("/console/knowledge/alias", {
        "csrf": token, "unanswered": unanswered[1], "phrasing": MISSED,
        "target": BUILDING_PERMIT})
    assert stolen.status == 404
    saved = await neighbour.post("/console/knowledge/alias", {
        "csrf": token, "phrasing": MISSED, "target": BUILDING_PERMIT})
    assert saved.status == 303
    assert "(mã 1.013225)" in await page(neighbour, saved.headers["Location"])  # theirs
    assert (await ask_chat(client, MISSED))["intent"] == "decline"  # not Hát Môn's
    html = await page(hat_mon)
    assert "Chưa có thay đổi nào" in html and MISSED in html
    change = re.search(r'/console/knowledge/changes/(\d+)/undo',
                       await page(neighbour))
    assert change is not None
    refused = await hat_mon.post(f"/console/knowledge/changes/{change[1]}/undo",
                                 {"csrf": await hat_mon.csrf("/console/knowledge")})
    assert refused.status == 404


async def test_forms_need_a_session_and_the_csrf_token(
        office: Office, client: TestClient[Any, Any],
        browser: Callable[[], Browser]) -> None:
    anonymous = browser()
    assert (await anonymous.get("/console/knowledge")).headers["Location"] == "/console/login"
    await add_account(office, "an")
    chrome = browser()
    assert (await chrome.sign_in("an")).status == 303
    forged = await chrome.post("/console/knowledge/alias", {
        "csrf": "forged", "phrasing": MISSED, "target": BUILDING_PERMIT})
    assert forged.status == 403
    unknown = await chrome.post("/console/knowledge/alias", {
        "csrf": await chrome.csrf("/console/knowledge"), "phrasing": MISSED,
        "target": "9.999999"})
    assert unknown.status == 422
    token = await chrome.csrf("/console/knowledge")
    for wrong in ("99999999999999999999", "abc"):
        assert (await chrome.post(f"/console/knowledge/changes/{wrong}/undo",
                                  {"csrf": token})).status == 404
        assert (await chrome.get(f"/console/knowledge/faq?unanswered={wrong}")).status == 404
    assert (await ask_chat(client, MISSED))["intent"] == "decline"


async def test_missed_questions_most_asked_first_and_fixed_ones_left_out(office: Office) -> None:
    async with session_scope(office.sessions) as session:
        other = await repo.ensure_commune(session, slug="phuc-tho", name="Xã Phúc Thọ")
        for commune, text in [(office.commune_id, "hỏi một lần"),
                              (office.commune_id, "hỏi hai lần"),
                              (office.commune_id, "Hỏi hai lần"),  # case aside, the same
                              (office.commune_id, "đã sửa"), (other, "của Phúc Thọ")]:
            await conversations_repo.record_unanswered(
                session, commune_id=commune, channel="web", user_id="u", text=text)
        fixed = (await changes.missed(session, commune_id=office.commune_id,
                                      since=T0 - dt.timedelta(days=3650)))
        fixed_id = next(m.id for m in fixed if m.text == "đã sửa")
        await changes.add_alias(session, commune_id=office.commune_id, phrasing="đã sửa",
                                target=BUILDING_PERMIT, actor="staff:an", now=T0,
                                unanswered_id=fixed_id)
        listed = await changes.missed(session, commune_id=office.commune_id,
                                      since=T0 - dt.timedelta(days=3650))
        assert [(m.text.lower(), m.times) for m in listed] == [
            ("hỏi hai lần", 2), ("hỏi một lần", 1)]
        assert await changes.version(session, commune_id=office.commune_id) == 1
        assert await changes.version(session, commune_id=other) == 0


async def test_other_instances_pick_changes_up_within_seconds(
        assistant: Assistant, office: Office) -> None:
    """Another server process, sharing the database, applies a change without a restart,
    and a server starting later begins with the changes in force."""
    elsewhere = LiveKnowledge(assistant, office.sessions, office.commune_id, every=0.05)
    watching = elsewhere.watching(None)
    await anext(watching)
    assert elsewhere.assistant.ask(MISSED).kind == "none"
    async with session_scope(office.sessions) as session:
        await changes.add_alias(session, commune_id=office.commune_id, phrasing=MISSED,
                                target=BUILDING_PERMIT, actor="staff:an", now=T0)
    for _ in range(200):
        if elsewhere.version == 1:
            break
        await asyncio.sleep(0.05)
    assert elsewhere.assistant.ask(MISSED).code == BUILDING_PERMIT
    assert assistant.ask(MISSED).kind == "none"  # the bundled assistant is left untouched
    await anext(watching, None)
    restarted = LiveKnowledge(assistant, office.sessions, office.commune_id)
    starting = restarted.watching(None)
    await anext(starting)
    assert restarted.assistant.ask(MISSED).code == BUILDING_PERMIT
    await anext(starting, None)



async def test_posters_download_from_the_knowledge_page(
        office: Office, browser: Callable[[], Browser]) -> None:
    await add_account(office, "an", "officer")
    chrome = browser()
    assert (await chrome.sign_in("an")).status == 303
    html = await page(chrome, "/console/knowledge?q=khai+sinh")
    assert 'href="/console/knowledge/posters/1.001193"' in html  # next to the search result
    for name in ("1.001193", "bang-tin", "dich-vu"):
        response = await chrome.get(f"/console/knowledge/posters/{name}")
        assert response.status == 200 and response.content_type == "application/pdf"
        assert (await response.read()).startswith(b"%PDF")
    assert (await chrome.get("/console/knowledge/posters/9.999999")).status == 404
