"""Citizens' feedback and satisfaction ratings, through the conversation core and the REST API
(SQLite and PostgreSQL)."""

import asyncio
import datetime as dt
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import col, select

from bot.runtime import create_api_key
from bot.web import SESSION_HEADER, create_app
from handlers.applications import Office, set_status
from handlers.conversation import Dialogue, IncomingMessage, Reply
from handlers.feedback import deadline
from knowledge.answer import Assistant
from knowledge.workdays import TZ
from storage import applications as repo
from storage import feedback as feedback_repo
from storage.db import session_scope
from storage.domain import ApplicationStatus
from storage.models import Application, Feedback, Notification, Rating
from tests.samples import CODE

NUMBER = re.compile(r"PA-\d{4}-\d{6}")
ROOT = Path(__file__).resolve().parents[1]
Client = TestClient[web.Request, web.Application]


@pytest.fixture
def dialogue(office: Office, assistant: Assistant) -> Dialogue:
    return Dialogue(assistant, office, staff_channel=True)


async def say(dialogue: Dialogue, text: str = "", payload: str = "", user: str = "w1",
              channel: str = "web", now: dt.datetime | None = None) -> list[Reply]:
    return await dialogue.handle(IncomingMessage(channel, user, text=text, payload=payload),
                                 now=now)


async def staff_messages(office: Office) -> list[Notification]:
    async with office.sessions() as s:
        return list((await s.exec(select(Notification).where(
            Notification.channel == "staff").order_by(col(Notification.id)))).all())


async def test_a_report_on_the_web_chat_gets_a_number_that_shows_others_only_its_state(
        dialogue: Dialogue, office: Office) -> None:
    [kinds] = await say(dialogue, "tôi muốn phản ánh")
    assert kinds.text.startswith("Bạn muốn phản ánh về việc gì?")
    assert [b.title for b in kinds.buttons] == [
        "Bị đòi thêm giấy tờ ngoài quy định", "Hồ sơ bị trễ hẹn", "Hướng dẫn không rõ ràng",
        "Thái độ cán bộ chưa đúng mực", "Việc khác"]
    [subject] = await say(dialogue, payload=kinds.buttons[0].payload)
    assert subject.text.startswith("Phản ánh về hồ sơ hoặc thủ tục nào?")
    [describe] = await say(dialogue, CODE.lower())
    assert describe.text.startswith("Bạn mô tả sự việc")
    [filed] = await say(dialogue, "Cán bộ bắt tôi nộp thêm bản sao sổ hộ khẩu dù không có trong "
                                  "danh mục.")
    number = filed.detail
    assert NUMBER.fullmatch(number) and number in filed.text
    assert filed.text.startswith(f"Phản ánh của bạn đã được ghi nhận, số {number}.")

    [own] = await say(dialogue, f"tra cứu phản ánh {number}")
    assert own.text.startswith(f"Phản ánh {number}: đã tiếp nhận, đang chờ trả lời.")
    assert "sổ hộ khẩu" in own.text and CODE in own.text
    assert "Loại: Bị đòi thêm giấy tờ ngoài quy định" in own.text
    [other] = await say(dialogue, f"tra cuu phan anh {number.lower()}", user="777",
                        channel="telegram")
    assert other.text == f"Phản ánh {number}: đã tiếp nhận, đang chờ trả lời."
    [wrong] = await say(dialogue, "tra cứu phản ánh PA-2019-000001", user="777",
                        channel="telegram")
    assert wrong.text.startswith("Không có phản ánh nào mang số này")

    [notice] = await staff_messages(office)
    assert notice.text.startswith(f"Phản ánh mới {number} (Bị đòi thêm giấy tờ ngoài quy định; "
                                  f"{CODE}, 1.001193)")
    async with office.sessions() as s:  # the procedure comes from the application's code
        report = (await s.exec(select(Feedback))).one()
    assert (report.kind, report.procedure_code, report.status) == ("extra_papers", "1.001193",
                                                                   "open")


async def test_reports_are_recognised_without_diacritics_and_their_kind_from_the_words(
        dialogue: Dialogue) -> None:
    [kinds] = await say(dialogue, "toi muon phan anh", user="w2")
    assert kinds.intent == "feedback" and len(kinds.buttons) == 5
    [subject] = await say(dialogue, "2", user="w2")  # the kind typed as its number
    assert subject.text.startswith("Phản ánh về hồ sơ")
    [describe] = await say(dialogue, "khai sinh", user="w2")  # a procedure's name
    assert describe.text.startswith("Bạn mô tả sự việc")
    [filed] = await say(dialogue, "Hẹn 3 ngày mà 2 tuần chưa có.", user="w2")
    assert filed.intent == "feedback_filed"
    # The kind named in the first message skips its question.
    [subject] = await say(dialogue, "bi doi them giay to", user="w3")
    assert subject.text.startswith("Phản ánh về hồ sơ")
    [describe] = await say(dialogue, "bỏ qua", user="w3")
    assert describe.text.startswith("Bạn mô tả sự việc")
    [stopped] = await say(dialogue, "thôi", user="w3")
    assert stopped.text == "Vâng, phản ánh chưa được gửi."
    [mine] = await say(dialogue, "tra cứu phản ánh", user="w2")
    assert mine.text.startswith("Phản ánh PA-") and "2 tuần chưa có" in mine.text
    # A late application with its receipt code is a status lookup; rubbish is no report.
    [lookup] = await say(dialogue, f"cho e hỏi hồ sơ {CODE} quá hẹn rồi sao vẫn chưa có kết "
                                   "quả ạ", user="w4")
    assert lookup.intent == "ask_phone"
    # ... and without it, when asked to be checked rather than reported.
    [check] = await say(dialogue, "ho so cua toi bi tre hen chua thay tra, kiem tra giup",
                        user="w5")
    assert check.intent == "ask_code"
    [miss] = await say(dialogue, "thùng rác đầu ngõ 3 ngày rồi không ai thu, phản ánh với ai",
                       user="w4")
    assert miss.intent == "decline"
    async with dialogue.office.sessions() as s:
        reports = (await s.exec(select(Feedback).order_by(col(Feedback.id)))).all()
    assert [(r.kind, r.procedure_code, r.status) for r in reports] == [("late", "1.001193",
                                                                        "open")]


def test_the_deadline_counts_working_days_and_skips_the_weekend(office: Office) -> None:
    thursday = dt.datetime(2026, 11, 26, 9, 0, tzinfo=TZ)
    assert deadline(office.calendar, thursday, 1).astimezone(TZ) == dt.datetime(
        2026, 11, 27, 17, 0, tzinfo=TZ)
    assert deadline(office.calendar, thursday, 2).astimezone(TZ) == dt.datetime(
        2026, 11, 30, 17, 0, tzinfo=TZ)  # Monday: the weekend does not count
    friday = dt.datetime(2026, 11, 27, 16, 0, tzinfo=TZ)
    assert deadline(office.calendar, friday).astimezone(TZ).date() == dt.date(2026, 12, 11)


async def test_a_filed_report_has_its_deadline_ten_working_days_later(dialogue: Dialogue) -> None:
    saturday = dt.datetime(2026, 11, 28, 10, 0, tzinfo=TZ)
    await say(dialogue, "hồ sơ bị trễ hẹn", user="w5", now=saturday)
    await say(dialogue, "bỏ qua", user="w5", now=saturday)
    [filed] = await say(dialogue, "Chưa có kết quả.", user="w5", now=saturday)
    assert "trước ngày 11 tháng 12, 2026" in filed.text
    async with dialogue.office.sessions() as s:
        report = (await s.exec(select(Feedback))).one()
    assert report.due_at is not None
    assert report.due_at.astimezone(TZ) == dt.datetime(2026, 12, 11, 17, 0, tzinfo=TZ)


@pytest.fixture
async def client(office: Office, assistant: Assistant) -> AsyncIterator[tuple[Client, str]]:
    key = await create_api_key(office, "mot-cua-tinh")
    async with TestClient(TestServer(create_app(assistant, office))) as test_client:
        yield test_client, key


async def test_staff_answer_through_the_api_reaches_the_citizen(
        client: tuple[Client, str], office: Office) -> None:
    http, key = client
    auth = {"Authorization": f"Bearer {key}"}
    first = await (await http.post("/api/chat", json={"text": "kiến nghị"})).json()
    mine = {SESSION_HEADER: first["session"]}
    for text in ("5", "bỏ qua", "Bảng hướng dẫn ở bộ phận một cửa đã cũ."):
        answer = await (await http.post("/api/chat", json={"text": text}, headers=mine)).json()
    number = answer["replies"][0]["detail"]
    assert NUMBER.fullmatch(number)

    assert (await http.get("/api/v1/feedback")).status == 401
    listed = await (await http.get("/api/v1/feedback", headers=auth)).json()
    assert [(r["number"], r["kind"], r["status"], r["overdue"]) for r in listed["feedback"]] == [
        (number, "other", "open", False)]
    assigned = await http.post(f"/api/v1/feedback/{number}/assign", json={"login": "Lan"},
                               headers=auth)
    assert (await assigned.json())["assignee"] == "lan"
    empty = await http.post(f"/api/v1/feedback/{number}/answer", json={"text": " "},
                            headers=auth)
    assert empty.status == 422 and (await empty.json())["field"] == "text"
    assert (await http.post("/api/v1/feedback/PA-2026-999999/answer", json={"text": "x"},
                            headers=auth)).status == 404
    answered = await http.post(f"/api/v1/feedback/{number}/answer", headers=auth, json={
        "text": "Xã đã thay bảng hướng dẫn mới. Cảm ơn bạn.", "by": "lan"})
    assert answered.status == 200
    assert (await answered.json())["status"] == "answered"

    inbox = await (await http.get("/api/chat/inbox", headers=mine)).json()
    assert [r["text"] for r in inbox["replies"]] == [
        f"Trả lời phản ánh {number} của bạn:\nXã đã thay bảng hướng dẫn mới. Cảm ơn bạn."]
    other = await (await http.post("/api/chat", json={
        "text": f"tra cứu phản ánh {number}"})).json()  # a new session: another citizen
    # Only the state: the answer may name the citizen, so it is for their account alone.
    assert other["replies"][0]["text"] == f"Phản ánh {number}: đã được trả lời."
    closed = await http.post(f"/api/v1/feedback/{number}/close", headers=auth)
    assert (await closed.json())["status"] == "closed"
    stats = await (await http.get("/api/v1/feedback/stats", headers=auth)).json()
    assert stats["feedback"]["by_kind"] == {"other": 1} and stats["feedback"]["pending"] == 0


async def follow(office: Office, *users: str) -> int:
    async with session_scope(office.sessions) as s:
        app = (await s.exec(select(Application))).one()
        assert app.id is not None
        for user in users:
            await repo.subscribe(s, commune_id=office.commune_id, application_id=app.id,
                                 channel="telegram", recipient=user, lang="vi")
    return app.id


async def test_the_rating_question_comes_once_after_the_result_is_returned(
        dialogue: Dialogue, office: Office) -> None:
    await follow(office, "42", "43")
    now = dt.datetime.now(dt.UTC)
    for status in (ApplicationStatus.PROCESSING, ApplicationStatus.RESULT_READY,
                   ApplicationStatus.RETURNED):
        await set_status(office, receipt_code=CODE, status=status, actor="staff:lan", now=now)
    async with office.sessions() as s:
        told = (await s.exec(select(Notification).where(Notification.recipient == "42")
                             .order_by(col(Notification.id)))).all()
    assert [n.text.endswith("từ 1 (rất không hài lòng) đến 5 (rất hài lòng).") for n in told] \
        == [False, False, True]

    [thanks] = await say(dialogue, "5", user="42", channel="telegram")  # typed
    assert thanks.intent == "rating" and thanks.buttons[0].payload == "rate:skip"
    [done] = await say(dialogue, "Cán bộ rất nhiệt tình", user="42", channel="telegram")
    assert done.text == "Cảm ơn bạn, góp ý của bạn đã được chuyển tới cán bộ."
    [again] = await say(dialogue, "5", user="42", channel="telegram")
    assert again.intent == "ack"  # asked once: now a number is just a number

    [low] = await say(dialogue, payload="rate:1", user="43", channel="telegram")  # tapped
    assert low.intent == "rating"
    await say(dialogue, payload="rate:skip", user="43", channel="telegram")
    async with office.sessions() as s:
        ratings = (await s.exec(select(Rating).order_by(col(Rating.id)))).all()
    assert [(r.recipient, r.score, r.officer, r.procedure_code, r.comment) for r in ratings] == [
        ("42", 5, "staff:lan", "1.001193", "Cán bộ rất nhiệt tình"),
        ("43", 1, "staff:lan", "1.001193", "")]
    [alert] = await staff_messages(office)  # only the low score
    assert alert.recipient == "telegram:43" and alert.text.startswith(
        f"Đánh giá thấp 1/5 (hồ sơ {CODE}; thủ tục 1.001193; cán bộ staff:lan)")

    async with office.sessions() as s:
        report = await feedback_repo.distribution(
            s, commune_id=office.commune_id, start=now - dt.timedelta(days=1),
            end=now + dt.timedelta(days=1))
    assert report.overall == {1: 1, 2: 0, 3: 0, 4: 0, 5: 1} and report.average == 3
    assert report.by_officer == {"staff:lan": {1: 1, 2: 0, 3: 0, 4: 0, 5: 1}}
    assert list(report.by_procedure) == ["1.001193"]


async def test_the_end_of_a_hand_over_asks_for_a_rating_and_a_low_one_alerts_staff(
        dialogue: Dialogue, office: Office) -> None:
    await say(dialogue, "gặp cán bộ", user="50", channel="telegram")
    await dialogue.from_staff(channel="telegram", user_id="50", text="Anh cần giúp gì ạ?",
                              reply_id="1", officer="telegram:777")
    [back, question] = await say(dialogue, "kết thúc", user="50", channel="telegram")
    assert back.text == "Bạn đã quay lại với trợ lý tự động."
    assert question.text.startswith("Bạn đánh giá thế nào về việc phục vụ?")
    assert [b.payload for b in question.buttons] == [f"rate:{n}" for n in range(1, 6)]
    await say(dialogue, payload=question.buttons[1].payload, user="50", channel="telegram")
    await say(dialogue, "chờ lâu quá", user="50", channel="telegram")  # the comment
    [number] = await say(dialogue, "2", user="50", channel="telegram")
    assert number.intent == "ack"  # already rated: the number is no second rating
    async with office.sessions() as s:
        rating = (await s.exec(select(Rating))).one()
    assert (rating.score, rating.officer, rating.channel, rating.comment) == (
        2, "telegram:777", "telegram", "chờ lâu quá")
    score, comment = (await staff_messages(office))[-2:]  # the score, then its comment
    assert score.recipient == comment.recipient == "telegram:50"
    assert score.text == "Đánh giá thấp 2/5 (trò chuyện với cán bộ; thủ tục -; cán bộ telegram:777)"
    assert comment.text.endswith("\nGóp ý: chờ lâu quá")

    # Staff ending it: the question is queued for the citizen, with its buttons.
    await say(dialogue, "gặp cán bộ", user="51", channel="telegram")
    await dialogue.from_staff(channel="telegram", user_id="51", text="kết thúc", reply_id="2",
                              officer="telegram:778")
    async with office.sessions() as s:
        queued = (await s.exec(select(Notification).where(Notification.recipient == "51")
                               .order_by(col(Notification.id)))).all()
    back, question_queued = queued[-2:]
    assert back.text == "Bạn đã quay lại với trợ lý tự động."
    assert question_queued.text.startswith("Bạn đánh giá thế nào") and question_queued.buttons
    assert question_queued.next_attempt_at > back.next_attempt_at  # it follows staff's last word
    [comment] = await say(dialogue, "4 sao, trả lời nhanh", user="51", channel="telegram")
    assert comment.text == "Cảm ơn bạn đã đánh giá."


async def test_feedback_counts_by_kind_and_procedure(dialogue: Dialogue, office: Office) -> None:
    for user, first in (("a", "bị đòi thêm giấy tờ"), ("b", "hồ sơ bị trễ hẹn"),
                        ("c", "cán bộ hách dịch")):
        await say(dialogue, first, user=user)
        await say(dialogue, "khai sinh" if user != "c" else "bỏ qua", user=user)
        await say(dialogue, "Chuyện xảy ra hôm thứ Hai.", user=user)
    now = dt.datetime.now(dt.UTC)
    async with office.sessions() as s:
        counts = await feedback_repo.counts(s, commune_id=office.commune_id,
                                            start=now - dt.timedelta(days=1),
                                            end=now + dt.timedelta(days=1),
                                            now=now + dt.timedelta(days=30))
    assert counts.by_kind == {"extra_papers": 1, "late": 1, "rude": 1}
    assert counts.by_procedure == {"1.001193": 2, "": 1}
    assert (counts.total, counts.pending, counts.overdue) == (3, 3, 3)


def cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url, "MOTCUA_COMMUNE": "hat-mon"}
    return subprocess.run([sys.executable, "-m", "bot", "feedback", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


async def test_staff_list_and_answer_reports_from_the_command_line(
        dialogue: Dialogue, office: Office, database_url: str) -> None:
    await say(dialogue, "cán bộ hách dịch", user="61", channel="zalo")
    await say(dialogue, "bỏ qua", user="61", channel="zalo")
    [filed] = await say(dialogue, "Cán bộ quát tôi ở quầy số 2.", user="61", channel="zalo")
    number = filed.detail
    listed = await asyncio.to_thread(cli, database_url, "list")
    assert listed.returncode == 0 and listed.stdout.startswith(f"{number}  open ")
    assert (await asyncio.to_thread(cli, database_url, "assign", number, "lan")).returncode == 0
    answered = await asyncio.to_thread(cli, database_url, "answer", number,
                                       "Xã đã nhắc nhở cán bộ.")
    assert answered.returncode == 0
    assert "Trả lời của xã: Xã đã nhắc nhở cán bộ." in answered.stdout
    assert (await asyncio.to_thread(cli, database_url, "show", "PA-1999-000001")).returncode == 1
    async with office.sessions() as s:
        sent = (await s.exec(select(Notification).where(Notification.channel == "zalo",
                                                        Notification.kind == "staff"))).one()
    assert sent.recipient == "61" and sent.text.endswith("Xã đã nhắc nhở cán bộ.")


async def test_ratings_are_counted_by_month_in_vietnam_time(office: Office) -> None:
    def rating(score: int, at: dt.datetime, officer: str) -> Rating:
        return Rating(commune_id=office.commune_id, channel="web", recipient=f"u{at:%d%H}",
                      subject=f"application:{at:%d%H}", procedure_code="1.001193",
                      officer=officer, score=score, asked_at=at, rated_at=at)
    async with session_scope(office.sessions) as session:
        session.add_all([
            # 17:30 UTC on 30 November is half past midnight on 1 December in Hà Nội.
            rating(4, dt.datetime(2026, 11, 30, 17, 30, tzinfo=dt.UTC), "staff:lan"),
            rating(2, dt.datetime(2026, 11, 30, 16, 30, tzinfo=dt.UTC), "staff:lan"),
            rating(5, dt.datetime(2026, 12, 3, 2, 0, tzinfo=dt.UTC), "staff:minh")])
    async with office.sessions() as s:
        report = await feedback_repo.distribution(
            s, commune_id=office.commune_id, start=dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
            end=dt.datetime(2027, 1, 1, tzinfo=dt.UTC))
    assert report.by_month == {"2026-11": {1: 0, 2: 1, 3: 0, 4: 0, 5: 0},
                               "2026-12": {1: 0, 2: 0, 3: 0, 4: 1, 5: 1}}
    assert report.by_officer["staff:lan"] == {1: 0, 2: 1, 3: 0, 4: 1, 5: 0}
    assert report.count == 3 and report.average == pytest.approx(11 / 3)
