"""The console's citizens' feedback page: staff find a report, give it to a colleague, answer
the citizen (the answer reaches the chat they wrote from) and close it; and the Overview's
satisfaction, feedback and chart sections — each for the staff member's own commune only
(SQLite and PostgreSQL)."""

import datetime as dt
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import col, select

from bot.web import DIALOGUE
from handlers.applications import Office
from handlers.conversation import Dialogue, IncomingMessage, Reply
from knowledge.answer import Assistant
from storage import applications as repo
from storage import feedback as feedback_repo
from storage.db import session_scope
from storage.models import Feedback, Notification, Rating
from tests.conftest import deployment
from tests.test_console_auth import SETTINGS, Browser, add_account, audited
from tests.test_console_auth import browser as browser  # the fixture, over this client

CITIZEN = "987654321"  # the citizen's Telegram chat id: never shown in the console
STORY = "Cán bộ bắt tôi nộp thêm bản sao sổ hộ khẩu dù không có trong danh mục."
ANSWER = "Xã đã nhắc nhở cán bộ; bạn không phải nộp bản sao sổ hộ khẩu. Xin lỗi bạn."


@pytest.fixture
async def client(assistant: Assistant, office: Office, phuc_tho: Office
                 ) -> AsyncIterator[TestClient[Any, Any]]:
    app = deployment(assistant, office, phuc_tho, settings=SETTINGS, staff_channel=True)
    async with TestClient(TestServer(app)) as c:
        yield c


def dialogue_of(client: TestClient[Any, Any]) -> Dialogue:
    app: web.Application = client.app
    return app[DIALOGUE]


async def filed(client: TestClient[Any, Any], user: str = CITIZEN) -> str:
    """A Telegram citizen reports being asked for extra papers for a birth registration;
    the tracking number they were given."""
    dialogue = dialogue_of(client)
    replies: list[Reply] = []
    for n, text in enumerate(("bị đòi thêm giấy tờ", "khai sinh", STORY)):
        replies = await dialogue.handle(IncomingMessage("telegram", user, text=text,
                                                        event_id=f"{user}-{n}"))
    number = str(replies[0].detail)
    assert re.fullmatch(r"PA-\d{4}-\d{6}", number), replies[0].text
    return number


async def elsewhere(office: Office) -> tuple[int, str]:
    """Another commune (Phúc Thọ) with a report of its own: its id and tracking number."""
    now = dt.datetime.now(dt.UTC)
    async with session_scope(office.sessions) as session:
        other = await repo.ensure_commune(session, slug="phuc-tho", name="Xã Phúc Thọ")
        draft = await feedback_repo.start_draft(session, commune_id=other, channel="zalo",
                                                recipient="zalo-1", lang="vi", at=now)
        draft.kind = "rude"
        report = await feedback_repo.file(session, draft, description="Chuyện ở Phúc Thọ",
                                          at=now, due_at=now + dt.timedelta(days=14))
        return other, feedback_repo.tracking_number(report)


async def to_citizen(office: Office, user: str = CITIZEN) -> list[Notification]:
    async with office.sessions() as session:
        return list((await session.exec(select(Notification).where(
            Notification.channel == "telegram", Notification.recipient == user,
            Notification.kind == "staff").order_by(col(Notification.id)))).all())


async def report(office: Office) -> Feedback:
    async with office.sessions() as session:
        return (await session.exec(select(Feedback).where(
            Feedback.commune_id == office.commune_id, Feedback.status != "draft"))).one()


async def test_staff_assign_answer_and_close_a_report_and_the_answer_reaches_the_citizen(
        client: TestClient[Any, Any], office: Office, browser: Callable[[], Browser]) -> None:
    number = await filed(client)
    await add_account(office, "an")
    await add_account(office, "lan")
    chrome = browser()
    assert (await chrome.sign_in("an")).status == 303
    listing = await chrome.get("/console/feedback")
    assert listing.status == 200
    html = await listing.text()
    assert f'href="/console/feedback/{number}"' in html
    assert "Bị đòi thêm giấy tờ ngoài quy định" in html and "1.001193" in html
    assert "quá hạn" not in html and CITIZEN not in html
    assert 'href="/console/feedback">Phản ánh, kiến nghị</a>' in html  # in the menu

    page = await (await chrome.get(f"/console/feedback/{number}")).text()
    assert STORY in page and "Telegram" in page and CITIZEN not in page
    assert '<option value="lan">Cán bộ lan (lan)</option>' in page
    token = await chrome.csrf(f"/console/feedback/{number}")
    given = await chrome.post(f"/console/feedback/{number}/assign",
                              {"csrf": token, "login": "lan"})
    assert (given.status, given.headers["Location"]) == (303, f"/console/feedback/{number}")
    assert ((await report(office)).assignee, (await report(office)).status) == ("lan",
                                                                                "assigned")
    listed = await (await chrome.get("/console/feedback")).text()
    assert "Cán bộ lan" in listed

    empty = await chrome.post(f"/console/feedback/{number}/answer", {"csrf": token, "text": " "})
    assert empty.status == 400 and "Hãy viết câu trả lời trước." in await empty.text()
    assert await to_citizen(office) == []
    answered = await chrome.post(f"/console/feedback/{number}/answer",
                                 {"csrf": token, "text": ANSWER})
    assert answered.status == 303
    [sent] = await to_citizen(office)
    assert sent.text == f"Trả lời phản ánh {number} của bạn:\n{ANSWER}"
    again = await chrome.post(f"/console/feedback/{number}/answer",  # a double tap
                              {"csrf": token, "text": ANSWER})
    assert again.status == 303 and len(await to_citizen(office)) == 1
    shown = await (await chrome.get(f"/console/feedback/{number}")).text()
    assert ANSWER in shown and "Đã được trả lời" in shown
    # The citizen following their report sees the answer in the chat.
    [status] = await dialogue_of(client).handle(IncomingMessage(
        "telegram", CITIZEN, text=f"tra cứu phản ánh {number}", event_id="follow"))
    assert ANSWER in status.text

    closed = await chrome.post(f"/console/feedback/{number}/close", {"csrf": token})
    assert closed.status == 303 and (await report(office)).status == "closed"
    assert "Phản ánh này đã đóng." in await (await chrome.get(f"/console/feedback/{number}")).text()
    assert number not in await (await chrome.get("/console/feedback")).text()  # not pending
    assert number in await (await chrome.get("/console/feedback?show=all")).text()
    for action, detail in (("feedback.assign", "lan"), ("feedback.answer", ""),
                           ("feedback.close", "")):
        [entry] = await audited(office, action)
        assert (entry.actor, entry.target, entry.detail) == ("staff:an", f"feedback:{number}",
                                                             detail)


async def test_overdue_reports_are_highlighted_and_filtered(
        client: TestClient[Any, Any], office: Office, browser: Callable[[], Browser]) -> None:
    late, on_time = await filed(client), await filed(client, "123456")
    async with session_scope(office.sessions) as session:
        found = await feedback_repo.get(session, commune_id=office.commune_id, reference=late)
        assert found is not None
        found.due_at = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
        session.add(found)
    await add_account(office, "an")
    chrome = browser()
    assert (await chrome.sign_in("an")).status == 303
    html = await (await chrome.get("/console/feedback")).text()
    assert html.index(late) < html.index(on_time)  # the nearest deadline first
    row = re.search(rf'<tr class="fb-late">\s*<td><a href="/console/feedback/{late}"', html)
    assert row is not None and html.count("quá hạn") == 1
    overdue = await (await chrome.get("/console/feedback?show=overdue")).text()
    assert late in overdue and on_time not in overdue
    other_kind = await (await chrome.get("/console/feedback?kind=rude")).text()
    assert late not in other_kind and "Không có phản ánh nào phù hợp." in other_kind
    by_procedure = await (await chrome.get("/console/feedback?procedure=1.001193")).text()
    assert late in by_procedure and on_time in by_procedure


async def test_another_communes_reports_and_staff_are_out_of_reach(
        client: TestClient[Any, Any], office: Office, browser: Callable[[], Browser]) -> None:
    number = await filed(client)
    other, theirs = await elsewhere(office)
    await add_account(office, "an")
    await add_account(office, "son", commune_id=other)
    chrome = browser()
    assert (await chrome.sign_in("an")).status == 303
    html = await (await chrome.get("/console/feedback?show=all")).text()
    assert number in html and theirs not in html
    assert (await chrome.get(f"/console/feedback/{theirs}")).status == 404
    token = await chrome.csrf("/console/feedback")
    for action, data in (("answer", {"text": "x"}), ("assign", {"login": "an"}),
                         ("close", {})):
        refused = await chrome.post(f"/console/feedback/{theirs}/{action}",
                                    {"csrf": token, **data})
        assert refused.status == 404
    # A colleague of another commune cannot be given a report, even by a forged form.
    page = await (await chrome.get(f"/console/feedback/{number}")).text()
    assert 'value="son"' not in page
    refused = await chrome.post(f"/console/feedback/{number}/assign",
                                {"csrf": token, "login": "son"})
    assert refused.status == 400 and "Hãy chọn một cán bộ của xã." in await refused.text()
    assert (await report(office)).assignee == ""
    son = browser()
    assert (await son.sign_in("son")).status == 303
    assert (await son.get(f"/console/feedback/{number}")).status == 404
    async with office.sessions() as session:
        theirs_row = (await session.exec(select(Feedback).where(
            Feedback.commune_id == other))).one()
    assert theirs_row.status == "open" and theirs_row.answer == ""
    assert await audited(office, "feedback.assign") == []


async def test_actions_need_a_session_and_the_forms_token(
        client: TestClient[Any, Any], office: Office, browser: Callable[[], Browser]) -> None:
    number = await filed(client)
    await add_account(office, "an")
    stranger = browser()
    for path in ("/console/feedback", f"/console/feedback/{number}"):
        response = await stranger.get(path)
        assert (response.status, response.headers["Location"]) == (303, "/console/login")
    posted = await stranger.post(f"/console/feedback/{number}/answer", {"text": ANSWER})
    assert (posted.status, posted.headers["Location"]) == (303, "/console/login")
    chrome = browser()
    assert (await chrome.sign_in("an")).status == 303
    for data in ({"text": ANSWER}, {"text": ANSWER, "csrf": "forged"}):
        refused = await chrome.post(f"/console/feedback/{number}/answer", data)
        assert refused.status == 403
    assert (await chrome.post(f"/console/feedback/{number}/close", {})).status == 403
    assert await to_citizen(office) == [] and (await report(office)).status == "open"


async def rated(office: Office, commune_id: int, scores: list[int], officer: str) -> None:
    now = dt.datetime.now(dt.UTC)
    async with session_scope(office.sessions) as session:
        for n, score in enumerate(scores):
            session.add(Rating(commune_id=commune_id, channel="telegram", recipient=f"r{n}",
                               subject=f"application:{n}", procedure_code="1.001193",
                               officer=officer, score=score, asked_at=now, rated_at=now))


async def test_the_overview_shows_this_communes_satisfaction_feedback_and_chart(
        client: TestClient[Any, Any], office: Office, browser: Callable[[], Browser]) -> None:
    await filed(client)
    other, _ = await elsewhere(office)
    await rated(office, office.commune_id, [5, 5, 4, 1], "staff:an")
    await rated(office, other, [2, 2, 2], "staff:son")
    await add_account(office, "an")
    chrome = browser()
    assert (await chrome.sign_in("an")).status == 303
    page = await chrome.get("/console/")
    assert page.status == 200
    html = await page.text()
    assert "4 lượt đánh giá, trung bình 3,8/5." in html
    assert re.search(r"<td>5/5</td><td class=\"num\">2</td>", html)
    assert re.search(r"<td>2/5</td><td class=\"num\">0</td>", html)  # Phúc Thọ's are not here
    assert "Cán bộ an" in html and "Cán bộ son" not in html  # satisfaction by officer
    assert re.search(r"<dt>Phản ánh đã nhận</dt><dd>1</dd>", html)
    assert re.search(r"<td>Bị đòi thêm giấy tờ ngoài quy định</td><td class=\"num\">1</td>",
                     html)
    assert "Thái độ cán bộ chưa đúng mực" not in html  # Phúc Thọ's report
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="chart"' in html
    assert "Hồ sơ theo thời gian" in html
    assert "style=" not in html  # the CSP forbids inline styles
    english = await (await chrome.get("/console/?lang=en&step=week")).text()
    assert "4 ratings, average 3.8 out of 5." in english
    assert '<option value="week" selected>By week</option>' in english
