"""The conversation core as a citizen walks through it (state in SQLite and PostgreSQL)."""

import asyncio
import datetime as dt
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.outbox import Dispatcher
from handlers.applications import Office
from handlers.conversation import (
    Dialogue,
    IncomingMessage,
    Reply,
    Unavailable,
    lookup_deep_link,
    procedure_deep_link,
    read_deep_link,
    split_text,
)
from knowledge.answer import Assistant
from storage import conversations as conversations_repo
from storage.db import make_engine, make_sessions
from storage.models import Notification, Subscription, Unanswered
from tests.samples import CODE


@pytest.fixture
def dialogue(office: Office, assistant: Assistant) -> Dialogue:
    return Dialogue(assistant, office)


async def say(dialogue: Dialogue, text: str = "", payload: str = "",
              user: str = "42") -> list[Reply]:
    return await dialogue.handle(IncomingMessage("telegram", user, text=text, payload=payload))


async def test_menu_walk_to_a_procedure_card(dialogue: Dialogue) -> None:
    [welcome] = await say(dialogue, "/start")
    assert welcome.text.startswith("Xin chào! Tôi là trợ lý của bộ phận một cửa Xã Hát Môn")
    assert [b.title for b in welcome.buttons] == [
        "Thủ tục", "Tra cứu hồ sơ", "Liên hệ cán bộ", "Ngôn ngữ / Language"]
    [fields] = await say(dialogue, payload=welcome.buttons[0].payload)
    assert fields.text == "Chọn lĩnh vực:"
    civil = next(b for b in fields.buttons if b.title == "Hộ tịch")
    [procedures] = await say(dialogue, payload=civil.payload)
    birth = next(b for b in procedures.buttons if b.title == "Thủ tục đăng ký khai sinh")
    [card] = await say(dialogue, payload=birth.payload)
    assert card.text.startswith("Thủ tục đăng ký khai sinh (mã 1.001193)")


async def test_deep_links_from_the_notice_board(dialogue: Dialogue) -> None:
    assert procedure_deep_link("1.001193") == "p_1_001193"
    assert read_deep_link("p_1_001193") == ("p", "1.001193")
    assert read_deep_link(lookup_deep_link(CODE)) == ("s", CODE)
    assert len(lookup_deep_link(CODE)) <= 64
    [card] = await say(dialogue, "/start p_1_004222")
    assert card.text.startswith("Đăng ký thường trú (mã 1.004222)")
    [ask] = await say(dialogue, f"/start {lookup_deep_link(CODE)}")
    assert ask.text.startswith("Tiếp theo, nhập 4 số cuối")
    [status] = await say(dialogue, "5678")
    assert "Trạng thái: đã tiếp nhận" in status.text


async def test_lookup_then_follow_then_unfollow(dialogue: Dialogue,
                                                sessions: async_sessionmaker[AsyncSession]) -> None:
    [follow_first] = await say(dialogue, payload="follow")
    assert follow_first.text.startswith("Hãy tra cứu hồ sơ trước")
    [ask_code] = await say(dialogue, "tra cứu")
    assert ask_code.text == "Vui lòng nhập mã hồ sơ in trên giấy biên nhận."
    [not_code] = await say(dialogue, "hồ sơ của tôi")
    assert not_code.text.startswith("Mã này không giống mã hồ sơ")
    await say(dialogue, CODE.lower())
    [again] = await say(dialogue, "56 7")
    assert again.text.startswith("Vui lòng nhập đúng 4 số cuối")
    [status] = await say(dialogue, "5678")
    assert "Trạng thái: đã tiếp nhận" in status.text
    assert [b.payload for b in status.buttons] == ["follow", "menu"]
    [followed] = await say(dialogue, payload="follow")
    assert followed.text == "Bạn sẽ nhận tin nhắn tại đây khi hồ sơ thay đổi trạng thái."
    [twice] = await say(dialogue, "/theodoi")
    assert twice.text == "Bạn đã theo dõi hồ sơ này rồi."
    async with sessions() as s:
        subs = (await s.exec(select(Subscription))).all()
    assert [(x.channel, x.recipient) for x in subs] == [("telegram", "42")]
    [stopped] = await say(dialogue, "hủy theo dõi")
    assert stopped.text == "Bạn sẽ không nhận tin nhắn về hồ sơ này nữa."


async def test_wrong_digits_offer_a_retry_and_staff(dialogue: Dialogue) -> None:
    await say(dialogue, payload="lookup")
    await say(dialogue, CODE)
    [wrong] = await say(dialogue, "0000")
    assert wrong.text.startswith("Không tìm thấy hồ sơ")
    assert [b.payload for b in wrong.buttons] == ["lookup", "staff"]


async def test_handoff_round_trip(dialogue: Dialogue,
                                  sessions: async_sessionmaker[AsyncSession]) -> None:
    [handed] = await say(dialogue, "gặp cán bộ")
    assert handed.text.startswith("Tôi đã chuyển cuộc trò chuyện đến cán bộ Xã Hát Môn")
    assert await say(dialogue, "cho tôi hỏi về hồ sơ đất") == []  # the bot stays silent
    async with sessions() as s:
        relayed = (await s.exec(select(Notification).where(
            Notification.channel == "staff"))).all()
    assert [n.text for n in relayed] == ["Công dân muốn trao đổi với cán bộ.",
                                         "cho tôi hỏi về hồ sơ đất"]
    assert {n.recipient for n in relayed} == {"telegram:42"}
    [back] = await say(dialogue, "kết thúc")
    assert back.text == "Bạn đã quay lại với trợ lý tự động."
    [answer] = await say(dialogue, "đk kết hôn có mất phí ko")
    assert answer.text.startswith("Thủ tục đăng ký kết hôn")


async def test_staff_conversation_times_out(dialogue: Dialogue) -> None:
    await say(dialogue, "gặp cán bộ")
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=25)
    [answer] = await dialogue.handle(IncomingMessage("telegram", "42", text="gks"), now=later)
    assert answer.text.startswith("Thủ tục đăng ký khai sinh")


async def test_two_unanswered_questions_reach_staff(
    dialogue: Dialogue, sessions: async_sessionmaker[AsyncSession]
) -> None:
    [first] = await say(dialogue, "viết cho tôi bài thơ", user="7")
    assert "Xin lỗi" in first.text or "ngoài phạm vi" in first.text
    replies = await say(dialogue, "giá vàng hôm nay", user="7")
    assert replies[-1].text.startswith("Tôi đã chuyển cuộc trò chuyện đến cán bộ")
    async with sessions() as s:
        kept = (await s.exec(select(Unanswered))).all()
    assert [u.text for u in kept] == ["viết cho tôi bài thơ", "giá vàng hôm nay"]


async def test_language_switch_is_remembered(dialogue: Dialogue) -> None:
    [choose] = await say(dialogue, "/ngonngu")
    assert [b.payload for b in choose.buttons] == ["lang:vi", "lang:en"]
    [switched] = await say(dialogue, payload="lang:en")
    assert switched.text == "The assistant now speaks English."
    assert switched.buttons[0].title == "Procedures"
    [card] = await say(dialogue, "gks")
    assert card.text.startswith("Birth registration (code 1.001193)")
    [back] = await say(dialogue, "tiếng việt")
    assert back.text == "Trợ lý đã chuyển sang tiếng Việt."


def test_long_answers_split_between_lines() -> None:
    lines = [f"{i}. Giấy tờ số {i} " + "x" * 40 for i in range(1, 120)]
    parts = split_text("\n".join(lines), 4096)
    assert len(parts) > 1 and all(len(p) <= 4096 for p in parts)
    assert "\n".join(parts).split("\n") == lines  # no line cut, nothing lost
    long_line = "từ " * 3000
    assert all(len(p) <= 2000 for p in split_text(long_line, 2000))


async def test_messages_arriving_together_are_answered_in_order(dialogue: Dialogue) -> None:
    # A citizen typing fast: the messages share a batch and must still act one after another.
    texts = ["/start", "tra cứu", CODE, "5678", "/theodoi"]
    answers = await asyncio.gather(*(say(dialogue, text) for text in texts))
    assert "Trạng thái: đã tiếp nhận" in answers[3][0].text
    assert answers[4][0].text == "Bạn sẽ nhận tin nhắn tại đây khi hồ sơ thay đổi trạng thái."


async def test_a_failing_message_fails_alone(dialogue: Dialogue,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    ask = dialogue.assistant.ask

    def broken(question: str, **kwargs: Any) -> Any:
        if question == "boom":
            raise RuntimeError("a bug in the assistant")
        return ask(question, **kwargs)

    monkeypatch.setattr(dialogue.assistant, "ask", broken)
    results = await asyncio.gather(say(dialogue, "english", user="1"), say(dialogue, "boom"),
                                   say(dialogue, "english", user="2"), return_exceptions=True)
    assert isinstance(results[1], RuntimeError)
    assert [r[0].text for r in results if isinstance(r, list)] == [
        "The assistant now speaks English."] * 2
    [menu] = await say(dialogue, "/start", user="2")  # the others' state was saved
    assert menu.text.startswith("Hello!")


async def test_a_redelivered_event_is_answered_once(dialogue: Dialogue) -> None:
    message = IncomingMessage("telegram", "42", text="/start", event_id="1001")
    first, second = await asyncio.gather(dialogue.handle(message), dialogue.handle(message))
    assert len(first) == 1 and second == []  # delivered twice at once: answered once
    assert await dialogue.handle(message) == []  # and again later


async def test_handled_events_are_forgotten_after_a_week(dialogue: Dialogue,
                                                         office: Office) -> None:
    message = IncomingMessage("zalo", "42", text="/start", event_id="evt-7")
    assert len(await dialogue.handle(message)) == 1
    outbox = Dispatcher(office, {})
    now = dt.datetime.now(dt.UTC)
    assert await outbox.tidy(now + dt.timedelta(days=1)) == 0
    assert await dialogue.handle(message) == []  # still known: a redelivery
    assert await outbox.tidy(now + dt.timedelta(days=8)) >= 1
    assert len(await dialogue.handle(message)) == 1  # forgotten, so treated as new


@pytest.mark.parametrize("url", ["postgresql://postgres@127.0.0.1:1/motcua",
                                 "sqlite:////nonexistent-dir/motcua.sqlite3"])
async def test_a_database_away_says_unavailable(url: str, office: Office,
                                                assistant: Assistant) -> None:
    engine = make_engine(url)
    away = Office(make_sessions(engine), office.commune_id, office.kb, office.calendar)
    try:
        with pytest.raises(Unavailable):
            await Dialogue(assistant, away).handle(IncomingMessage("web", "42", text="gks"))
    finally:
        await engine.dispose()


async def test_a_database_away_fails_a_batch_at_once(dialogue: Dialogue,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0

    async def away(*args: object, **kwargs: object) -> object:
        nonlocal calls
        calls += 1
        raise OperationalError("INSERT INTO seenevent", {}, ConnectionRefusedError())

    monkeypatch.setattr(conversations_repo, "first_times", away)
    results = await asyncio.gather(*(say(dialogue, "gks", user=str(u)) for u in range(5)),
                                   return_exceptions=True)
    assert all(isinstance(r, Unavailable) for r in results)
    assert calls <= 2  # the first message, then one batch of the others: no retry one by one
