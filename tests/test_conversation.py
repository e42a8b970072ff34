"""The conversation core as a citizen walks through it (state in SQLite and PostgreSQL)."""

import asyncio
import datetime as dt
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import jobs
from handlers.applications import Office, set_status
from handlers.conversation import Dialogue, IncomingMessage, Reply, Unavailable, split_text
from handlers.intents.staff import RELAY_LIMIT, RELAY_WINDOW
from knowledge.answer import Assistant
from storage import conversations as conversations_repo
from storage.db import make_engine, make_sessions
from storage.domain import ApplicationStatus
from storage.models import Notification, Subscription, Unanswered
from storage.retention import RetentionPeriods
from tests.samples import CODE, T0


@pytest.fixture
def dialogue(office: Office, assistant: Assistant) -> Dialogue:
    return Dialogue(assistant, office, staff_channel=True)


async def say(dialogue: Dialogue, text: str = "", payload: str = "",
              user: str = "42") -> list[Reply]:
    return await dialogue.handle(IncomingMessage("telegram", user, text=text, payload=payload))


async def test_menu_walk_to_a_procedure_card(dialogue: Dialogue) -> None:
    [welcome] = await say(dialogue, "/start")
    assert welcome.text.startswith("Xin chào! Tôi là trợ lý của bộ phận một cửa Xã Hát Môn")
    assert [b.title for b in welcome.buttons] == [
        "Thủ tục", "Tra cứu hồ sơ", "Liên hệ cán bộ", "Ngôn ngữ / Language",
        "Nhận thông báo của xã"]
    [fields] = await say(dialogue, payload=welcome.buttons[0].payload)
    assert fields.text == "Chọn lĩnh vực:"
    civil = next(b for b in fields.buttons if b.title == "Hộ tịch")
    [procedures] = await say(dialogue, payload=civil.payload)
    birth = next(b for b in procedures.buttons if b.title == "Làm giấy khai sinh")
    [overview] = await say(dialogue, payload=birth.payload)
    assert overview.text.startswith("Làm giấy khai sinh (mã 1.001193)")
    assert "Tên chính thức: Thủ tục đăng ký khai sinh" in overview.text
    assert len(overview.text) <= 700
    full = next(b for b in overview.buttons if b.title == "Xem đầy đủ")
    [card] = await say(dialogue, payload=full.payload)
    assert card.text.startswith("Thủ tục đăng ký khai sinh (mã 1.001193)")
    assert "Giấy chứng sinh" in card.text and "Căn cứ pháp lý" in card.text


async def test_an_aspect_question_leads_with_that_aspect_in_a_short_reply(
        dialogue: Dialogue) -> None:
    [fee] = await say(dialogue, "đk kết hôn có mất phí ko")
    assert fee.text.startswith("Lệ phí — Đăng ký kết hôn (mã 1.000894): Miễn phí")
    assert len(fee.text) <= 600
    assert fee.intent == "procedure" and fee.code == "1.000894" and fee.aspects == ("fee",)
    titles = [b.title for b in fee.buttons]
    assert "Lệ phí" not in titles and {"Giấy tờ", "Thời gian giải quyết",
                                        "Xem đầy đủ"} <= set(titles)
    [documents] = await say(dialogue, payload=fee.buttons[titles.index("Giấy tờ")].payload)
    assert documents.text.startswith("Giấy tờ cần chuẩn bị — Đăng ký kết hôn (mã 1.000894):")


async def test_follow_ups_are_about_the_procedure_under_discussion(dialogue: Dialogue) -> None:
    await say(dialogue, "làm giấy khai sinh cho bé cần gì")
    [fee] = await say(dialogue, "còn phí?")
    assert fee.text.startswith("Lệ phí — Làm giấy khai sinh (mã 1.001193)")
    [time] = await say(dialogue, "bao lâu thì xong")
    assert time.text.startswith("Thời gian giải quyết — Làm giấy khai sinh")
    assert "1 ngày làm việc (Giải quyết trong ngày" in time.text  # resolved from the law
    [online] = await say(dialogue, "có nộp qua mạng được không")
    assert online.text.startswith("Nộp trực tuyến — Làm giấy khai sinh")
    [case] = await say(dialogue, "mẹ tôi nộp thay được không")
    assert case.code == "1.001193" and "ủy quyền" in case.text
    [late] = await say(dialogue, "để muộn có bị phạt không")
    assert late.code == "1.001193" and "60 ngày" in late.text
    # A long case question about an aspect, in the procedure's own words.
    [fee] = await say(dialogue, "bé sinh từ tháng 8 mà giờ mới đi làm thì có bị phạt hay mất "
                                "tiền ko ạ")
    assert fee.code == "1.001193" and fee.text.startswith("Lệ phí")
    [other] = await say(dialogue, "còn đăng ký kết hôn thì cần giấy tờ gì")
    assert other.code == "1.000894"  # a new topic replaces the context
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    [expired] = await dialogue.handle(IncomingMessage("telegram", "42", text="còn phí?"),
                                      now=later)
    assert expired.code == ""  # the context has expired: no procedure assumed


async def test_a_follow_up_matching_several_procedures_stays_with_the_one_at_hand(
        dialogue: Dialogue) -> None:
    [permit] = await say(dialogue, "xin giấy phép xây nhà mới 3 tầng", user="61")
    assert permit.code == "1.013225"
    # "bản vẽ" belongs to every building permit: the one under discussion is meant.
    [drawings] = await say(dialogue, "có cần bản vẽ ko", user="61")
    assert (drawings.intent, drawings.code) == ("procedure", "1.013225")
    # "gian" beside "thoi" is "thời gian", not corrected into another word.
    [time] = await say(dialogue, "thoi gian cap", user="61")
    assert (time.code, time.aspects) == ("1.013225", ("time",))
    [about] = await say(dialogue, "ban lam dc nhung j", user="61")
    assert about.intent == "about"


async def test_a_paper_to_bring_is_asked_of_the_procedure_at_hand(dialogue: Dialogue) -> None:
    [copy] = await say(dialogue, "xin bản sao giấy khai sinh", user="63")
    assert copy.code == "2.000635"
    # The identity card is a paper of this procedure too: not a question about getting one.
    [bring] = await say(dialogue, "có cần mang cccd ko", user="63")
    assert (bring.code, bring.aspects) == ("2.000635", ("documents",))


async def test_an_aspect_asked_after_a_choice_offers_the_choice_for_that_aspect(
        dialogue: Dialogue) -> None:
    [choices] = await say(dialogue, "căn cước", user="64")
    assert choices.intent == "clarify"
    [again] = await say(dialogue, "cần những gì", user="64")
    assert again.intent == "clarify" and again.text.startswith("Bạn muốn hỏi về thủ tục nào?")
    first = choices.buttons[0].payload.removeprefix("p:")
    assert again.buttons[0].payload == f"a:documents:{first}"
    [documents] = await say(dialogue, payload=again.buttons[0].payload, user="64")
    assert (documents.code, documents.aspects) == (first, ("documents",))
    # The legal basis is one tap away from any short reply.
    assert "Căn cứ pháp lý" in [b.title for b in documents.buttons]


async def test_a_story_that_mentions_coming_here_is_no_goodbye_and_english_documents_no_switch(
        dialogue: Dialogue) -> None:
    [story] = await say(dialogue, "Em muốn chuyển hộ khẩu từ quê về đây ở với nhà chồng thì "
                                  "làm thế nào ạ", user="62")
    assert story.intent != "goodbye"
    [case] = await say(dialogue, "đăng ký khai sinh cho con thì giấy tờ bằng tiếng anh có cần "
                                 "dịch không", user="62")
    assert case.intent != "language" and "English" not in case.text  # no switch of language


async def test_a_number_picks_from_the_list_offered(dialogue: Dialogue) -> None:
    [choices] = await say(dialogue, "căn cước")
    assert choices.intent == "clarify"
    second = choices.buttons[1].payload.removeprefix("p:")
    [picked] = await say(dialogue, "2")
    assert picked.code == second
    [nothing] = await say(dialogue, "7", user="43")
    assert nothing.intent == "ack"  # no list was offered: not matched from the digits


@pytest.mark.parametrize(("user", "first", "reply", "code"), [
    # A bare "tạm trú" is asked back (register, extend or remove): "gia hạn ạ" is extending it;
    # the same words after the building permits extend a permit.
    ("70", "tạm trú", "gia hạn ạ", "1.002755"),
    ("71", "giấy phép xây dựng", "gia hạn ạ", "1.013227"),
    ("72", "căn cước", "bị mất ạ", "1.014064"),
    # A new question naming another procedure clearly is answered as asked.
    ("73", "căn cước", "thôi cho hỏi đăng ký khai tử cần gì", "1.000656"),
    # A short reply only one option knows every word of names it, however well it names
    # another procedure on its own: the re-registration of a death, not death registration.
    ("77", "tôi muốn đăng ký lại", "khai tử", "1.005461"),
    ("78", "thủ tục hộ kinh doanh", "đăng ký mới", "1.001612"),
    # … before a bare family name is asked back: "tạm trú" after the residence registrations
    ("79", "đăng ký cư trú", "tạm trú", "1.004194"),
])
async def test_a_reply_to_a_choice_in_words_picks_from_what_was_offered(
        dialogue: Dialogue, user: str, first: str, reply: str, code: str) -> None:
    [choices] = await say(dialogue, first, user=user)
    assert choices.intent == "clarify"
    [picked] = await say(dialogue, reply, user=user)
    assert picked.code == code


async def test_a_bare_family_name_is_asked_back_unless_asked_to_get_the_first(
        dialogue: Dialogue) -> None:
    [residence] = await say(dialogue, "tạm trú", user="70")
    assert {b.payload for b in residence.buttons} == {"p:1.004194", "p:1.002755", "p:1.010028"}
    # Asked to get it ("làm tạm trú"), the registration is answered without asking back.
    [register] = await say(dialogue, "làm tạm trú", user="74")
    assert register.code == "1.004194"


async def test_short_follow_ups_ask_the_fee_per_copy_and_whether_it_is_ready_the_same_day(
        dialogue: Dialogue) -> None:
    [copy] = await say(dialogue, "xin bản sao trích lục khai sinh", user="75")
    assert copy.code == "2.000635"
    [fee] = await say(dialogue, "bao nhiêu 1 bản", user="75")
    assert (fee.code, fee.aspects) == ("2.000635", ("fee",))
    [time] = await say(dialogue, "lấy ngay được ko", user="75")
    assert (time.code, time.aspects) == ("2.000635", ("time",))


async def test_a_short_question_whose_folded_words_are_also_pleasantries_is_answered(
        dialogue: Dialogue) -> None:
    # Folded, "đổi ở xã được à" is also "đợi", "ờ", "được": it asks where all the same.
    [card] = await say(dialogue, "căn cước hết hạn rồi đổi thế nào", user="77")
    assert card.code == "1.014063"
    [where] = await say(dialogue, "đổi ở xã được à", user="77")
    assert (where.intent, where.code, where.aspects) == ("procedure", "1.014063", ("where",))


async def test_who_the_assistant_is_and_the_way_to_the_office_in_other_words(
        dialogue: Dialogue) -> None:
    [about] = await say(dialogue, "cho hỏi bạn có phải nhân viên xã không", user="79")
    assert about.intent == "about"
    [way] = await say(dialogue, "đường đi đến ubnd xã", user="79")
    assert way.intent == "contact"
    for text in ("e là bot hay ng thật z", "e là máy hay người thật vậy", "ai lập ra bạn vậy",
                 "bạn giúp tôi những gì được"):
        [reply] = await say(dialogue, text, user="79")
        assert reply.intent == "about", text
    # Folded, "là mấy giờ" is also "là máy": the hours, not who answers.
    [hours] = await say(dialogue, "giờ hành chính của xã là mấy giờ đến mấy giờ", user="79")
    assert hours.intent == "contact"
    # Thanks for the help is no question about a burial allowance ("hỗ trợ").
    [thanks] = await say(dialogue, "cảm ơn bạn đã hỗ trợ", user="79")
    assert thanks.intent == "thanks"


async def test_a_condition_the_procedure_speaks_of_is_asked_of_it_not_declined(
        dialogue: Dialogue) -> None:
    [allowance] = await say(dialogue, "mẹ tôi 82 tuổi xin trợ cấp hằng tháng thế nào", user="78")
    assert allowance.code == "1.001776"
    # A pension is another body's matter, but whether one with a pension may still get the
    # allowance is the allowance's eligibility.
    [may] = await say(dialogue, "mẹ có lương hưu rồi thì có được ko", user="78")
    assert (may.intent, may.code, may.aspects) == ("procedure", "1.001776", ("eligibility",))
    [pension] = await say(dialogue, "còn lương hưu thì lĩnh ở đâu", user="78")
    assert pension.intent == "decline" and "Bảo hiểm xã hội" in pension.text


async def test_an_aspect_asked_with_a_weak_match_elsewhere_stays_with_the_procedure(
        dialogue: Dialogue) -> None:
    [marriage] = await say(dialogue, "thu tuc dang ky ket hon can nhung giay to gi", user="76")
    assert marriage.code == "1.000894"
    [where] = await say(dialogue, "2 dua o 2 xa khac nhau thi nop o dau", user="76")
    assert (where.code, where.aspects) == ("1.000894", ("where",))
    # A procedure named clearly enough is a new topic.
    [permit] = await say(dialogue, "tiện hỏi luôn, sửa lại mái nhà với nâng tường thì xin giấy "
                                   "phép cần gì", user="76")
    assert permit.code == "1.013229"


async def test_police_procedures_are_submitted_to_the_commune_police(
        dialogue: Dialogue) -> None:
    [where] = await say(dialogue, "đăng ký tạm trú nộp ở đâu")
    assert where.code == "1.004194"
    assert "Công an xã" in where.text.split("\n")[0]
    assert "bộ phận một cửa" not in where.text.split("\n")[0]


async def test_pleasantries_are_answered_and_never_hand_over(
        dialogue: Dialogue, sessions: async_sessionmaker[AsyncSession]) -> None:
    replies = [r for text in ["chào ad", "cảm ơn nhiều ạ", "ok", "👍", "tạm biệt",
                              "cam on ad nhe", "ạ"] for r in await say(dialogue, text, user="9")]
    assert [r.intent for r in replies] == ["greeting", "thanks", "ack", "ack", "goodbye",
                                           "thanks", "ack"]
    assert all(r.text for r in replies)
    async with sessions() as s:
        assert (await s.exec(select(Unanswered).where(Unanswered.user_id == "9"))).all() == []
        relayed = (await s.exec(select(Notification).where(Notification.recipient == "telegram:9")
                                )).all()
    assert relayed == []


async def test_a_follow_up_beside_thanks_is_answered(dialogue: Dialogue) -> None:
    await say(dialogue, "tách hộ cần những gì", user="90")
    [fee] = await say(dialogue, "cảm ơn, còn phí thì sao", user="90")
    assert (fee.code, fee.aspects) == ("1.010038", ("fee",))
    [thanks] = await say(dialogue, "ok tks", user="90")
    assert thanks.intent == "thanks"


async def test_a_question_beside_a_greeting_is_answered(dialogue: Dialogue) -> None:
    [death] = await say(dialogue, "chao ad, cho hoi thu tuc khai tu", user="10")
    assert (death.intent, death.code) == ("procedure", "1.000656")
    # Leave-taking that puts no question stays a goodbye, even naming the office.
    [bye] = await say(dialogue, "thôi chào em nhé, mai chú ra xã", user="10")
    assert bye.intent == "goodbye"


async def test_legal_questions_get_their_rule_and_never_count_as_unanswered(
        dialogue: Dialogue, sessions: async_sessionmaker[AsyncSession]) -> None:
    replies = [r for text in ["chồng có được ly hôn khi vợ đang mang thai không",
                              "con dưới 36 tháng khi ly hôn thì ai nuôi",
                              "tài sản riêng của vợ chồng gồm những gì",
                              "tôi ở xã Ngọc Tảo cũ thì nộp hồ sơ ở đâu"]
               for r in await say(dialogue, text, user="77")]
    assert [r.intent for r in replies] == ["decline", "decline", "procedure", "contact"]
    assert "Tòa án" in replies[0].text and "52/2014/QH13" in replies[0].text.split("\n")[-1]
    assert replies[2].text.startswith("Tài sản riêng của vợ, chồng gồm")
    assert replies[3].text.startswith("Xã Ngọc Tảo (huyện Phúc Thọ cũ) đã nhập vào Xã Hát Môn")
    async with sessions() as s:  # answered: nothing for staff, no hand-over
        assert (await s.exec(select(Unanswered).where(Unanswered.user_id == "77"))).all() == []


async def test_everyday_questions_about_the_office(dialogue: Dialogue) -> None:
    [who] = await say(dialogue, "bạn là ai vậy")
    assert who.intent == "about" and who.text.startswith("Tôi là trợ lý tự động")
    [hours] = await say(dialogue, "ubnd xa lam viec may gio")
    assert hours.intent == "contact"
    assert "Trung tâm Phục vụ hành chính công TP Hà Nội: 024.1022" in hours.text
    assert "ttpvhcc.hanoi.gov.vn" in hours.text  # where the desk's own details are listed
    # An address changed is a procedure's matter, not the office's address.
    await say(dialogue, "dang ky ho kinh doanh can giay to gi", user="12")
    [change] = await say(dialogue, "neu muon doi dia chi cua hang thi lam thu tuc gi", user="12")
    assert change.intent == "procedure" and "2.000720" in change.text


async def test_contact_details_asked_in_other_words(dialogue: Dialogue) -> None:
    [portal] = await say(dialogue, "link cổng dịch vụ công để nộp hồ sơ online", user="80")
    assert portal.intent == "contact" and "https://dichvucong.gov.vn" in portal.text
    [phone] = await say(dialogue, "sđt hỗ trợ", user="80")
    assert phone.intent == "contact" and "024.1022" in phone.text
    [address] = await say(dialogue, "địa chỉ nộp hồ sơ", user="81")
    assert address.intent == "contact"
    [portal_page] = await say(dialogue, "nộp hồ sơ trực tuyến trên trang nào", user="89")
    assert portal_page.intent == "contact" and "https://dichvucong.gov.vn" in portal_page.text
    [web] = await say(dialogue, "có web ko", user="81")
    assert web.intent == "contact" and "https://dichvucong.gov.vn" in web.text
    [staff] = await say(dialogue, "bot trả lời không đúng, chuyển nhân viên giúp", user="81")
    assert staff.intent == "staff"
    # After a procedure answer, submitting through a website is that procedure's online link.
    await say(dialogue, "làm giấy khai sinh cần gì", user="82")
    [online] = await say(dialogue, "có nộp qua website được không", user="82")
    assert (online.code, online.aspects) == ("1.001193", ("online",))


async def test_a_bare_hoso_is_the_papers_of_the_procedure_at_hand_else_a_lookup(
        dialogue: Dialogue) -> None:
    await say(dialogue, "tạm trú sắp hết hạn, gia hạn thế nào", user="83")
    [papers] = await say(dialogue, "hồ sơ?", user="83")
    assert (papers.code, papers.aspects) == ("1.002755", ("documents",))
    [lookup] = await say(dialogue, "hồ sơ", user="84")
    assert lookup.intent == "ask_code"
    [progress] = await say(dialogue, "nộp hồ sơ khai sinh hôm trước giờ xem tiến độ thế nào",
                           user="85")
    assert progress.intent == "ask_code"
    [check] = await say(dialogue, "kiểm tra giúp hồ sơ", user="88")
    assert check.intent == "ask_code"


async def test_a_case_whose_note_points_to_another_procedure_moves_to_it(
        dialogue: Dialogue) -> None:
    [first] = await say(dialogue, "xin giấy xác nhận khuyết tật lần đầu", user="86")
    assert first.code == "1.001699"
    [torn] = await say(dialogue, "giấy đó của bố tôi bị rách rồi muốn đổi cái mới", user="86")
    assert torn.code == "1.001653"
    [papers] = await say(dialogue, "cần giấy tờ gì", user="86")
    assert (papers.code, papers.aspects) == ("1.001653", ("documents",))


async def test_a_receipt_code_in_a_sentence_starts_a_lookup(dialogue: Dialogue) -> None:
    [ask] = await say(dialogue, f"cho em hỏi hồ sơ {CODE} đến đâu rồi ạ")
    assert ask.intent == "ask_phone"
    [status] = await say(dialogue, "5678 ạ")
    assert "Trạng thái: đã tiếp nhận" in status.text
    # The application's procedure is now the one under discussion.
    [fee] = await say(dialogue, "còn phí?")
    assert fee.code == "1.001193" and fee.text.startswith("Lệ phí")
    [start] = await say(dialogue, "hồ sơ của tôi đến đâu rồi", user="44")
    assert start.intent == "ask_code"
    [left] = await say(dialogue, "làm giấy khai sinh cần gì", user="44")
    assert left.code == "1.001193"  # a new question leaves the lookup
    await say(dialogue, "tra cứu hồ sơ", user="45")
    # Saying why there is no code does not keep the citizen in the lookup.
    [left] = await say(dialogue, "em để quên phiếu hẹn ở nhà rồi, thế làm khai tử cần mang gì",
                       user="45")
    assert (left.intent, left.code) == ("procedure", "1.000656")


async def test_code_and_phone_in_one_message_answer_at_once(dialogue: Dialogue) -> None:
    [status] = await say(dialogue, f"ma ho so cua toi la {CODE}, sdt 0912 345 678, xem giup")
    assert status.intent == "status" and "Trạng thái: đã tiếp nhận" in status.text
    # Asking to be told when it is done follows the application, not the announcements.
    [followed] = await say(dialogue, "đăng ký nhận thông báo khi hồ sơ này có kết quả nhé")
    assert followed.intent == "follow"
    [wrong] = await say(dialogue, f"tra giúp hồ sơ {CODE} sđt 0900000000", user="43")
    assert wrong.intent == "lookup_failed"


async def test_lookup_then_follow_then_unfollow(dialogue: Dialogue,
                                                sessions: async_sessionmaker[AsyncSession]) -> None:
    [follow_first] = await say(dialogue, payload="follow")
    assert follow_first.text.startswith("Hãy tra cứu hồ sơ trước")
    [ask_code] = await say(dialogue, "tra cứu")
    assert ask_code.text == "Vui lòng nhập mã hồ sơ in trên giấy biên nhận."
    await say(dialogue, CODE.lower())
    [again] = await say(dialogue, "56 7")
    assert again.text.startswith("Bạn nhập số điện thoại đã khai khi nộp hồ sơ (10 chữ số")
    [status] = await say(dialogue, "5678")
    assert "Trạng thái: đã tiếp nhận" in status.text
    # Due on 3 November 2026, so overdue: the staff are one tap away.
    assert [b.payload for b in status.buttons] == ["follow", "staff", "menu"]
    [followed] = await say(dialogue, payload="follow")
    assert followed.text == "Bạn sẽ nhận tin nhắn tại đây khi hồ sơ thay đổi trạng thái."
    [twice] = await say(dialogue, "/theodoi")
    assert twice.text == "Bạn đã theo dõi hồ sơ này rồi."
    async with sessions() as s:
        subs = (await s.exec(select(Subscription))).all()
    assert [(x.channel, x.recipient) for x in subs] == [("telegram", "42")]
    [stopped] = await say(dialogue, "hủy theo dõi")
    assert stopped.text == "Bạn sẽ không nhận tin nhắn về hồ sơ này nữa."


async def test_an_application_waiting_for_papers_offers_the_staff(dialogue: Dialogue,
                                                                  office: Office) -> None:
    await set_status(office, receipt_code=CODE, status=ApplicationStatus.SUPPLEMENT_REQUIRED,
                     actor="staff:lan", now=T0, note="Bổ sung bản sao Giấy chứng nhận kết hôn.")
    [status] = await say(dialogue, f"tra hồ sơ {CODE} sđt 0912 345 678")
    assert "cần bổ sung giấy tờ" in status.text
    assert [b.payload for b in status.buttons] == ["follow", "staff", "menu"]


async def test_wrong_digits_offer_a_retry_and_staff(dialogue: Dialogue) -> None:
    await say(dialogue, payload="lookup")
    await say(dialogue, CODE)
    [wrong] = await say(dialogue, "0000")
    assert wrong.text.startswith("Không tìm thấy hồ sơ")
    assert [b.payload for b in wrong.buttons] == ["lookup", "staff"]
    # The phone number typed again is tried on the same code.
    [right] = await say(dialogue, "à nhầm, 0912 345 678")
    assert right.intent == "status" and "Trạng thái: đã tiếp nhận" in right.text
    # A code typed with spaces around its dashes is still one code.
    [ask] = await say(dialogue, CODE.replace("-", " - "), user="46")
    assert ask.intent == "ask_phone"


async def test_the_whole_phone_number_is_read_for_its_last_digits(dialogue: Dialogue) -> None:
    await say(dialogue, payload="lookup")
    await say(dialogue, CODE)
    [status] = await say(dialogue, "sdt em 0912 345 678")  # the sample phone ends in 5678
    assert status.intent == "status"
    # … also said in a sentence, as an elderly citizen would
    await say(dialogue, CODE, user="47")
    [status] = await say(dialogue, "số điện thoại của bác là 0912 345 678 cháu ạ", user="47")
    assert status.intent == "status"


async def test_handoff_round_trip(dialogue: Dialogue,
                                  sessions: async_sessionmaker[AsyncSession]) -> None:
    [handed] = await say(dialogue, "gặp cán bộ")
    assert handed.text.startswith("Tôi đã chuyển cuộc trò chuyện đến cán bộ Xã Hát Môn")
    [receipt] = await say(dialogue, "cho tôi hỏi về hồ sơ đất")
    assert receipt.text == "✓ Đã chuyển cho cán bộ."  # staff answer; the bot only confirms
    async with sessions() as s:
        relayed = (await s.exec(select(Notification).where(
            Notification.channel == "staff"))).all()
    assert [n.text for n in relayed] == ["Công dân muốn trao đổi với cán bộ.",
                                         "cho tôi hỏi về hồ sơ đất"]
    assert {n.recipient for n in relayed} == {"telegram:42"}
    [back] = await say(dialogue, "kết thúc")
    assert back.text == "Bạn đã quay lại với trợ lý tự động."
    [answer] = await say(dialogue, "đk kết hôn có mất phí ko")
    assert answer.code == "1.000894"


async def test_with_staff_the_assistant_still_answers_what_it_clearly_can(
        dialogue: Dialogue, sessions: async_sessionmaker[AsyncSession]) -> None:
    await say(dialogue, "gặp cán bộ")
    [fee] = await say(dialogue, "thôi cho hỏi lệ phí đăng ký kết hôn")
    assert fee.code == "1.000894" and fee.aspects == ("fee",)
    [phone] = await say(dialogue, "sđt của xã là gì")
    assert phone.intent == "contact"
    [receipt] = await say(dialogue, "hôm qua tôi đã nộp rồi")  # for staff to answer
    assert receipt.intent == "staff"
    [wait] = await say(dialogue, "vâng em đợi")
    assert wait.intent == "ack"
    async with sessions() as s:
        relayed = (await s.exec(select(Notification).where(
            Notification.channel == "staff"))).all()
    assert [n.text for n in relayed][1:] == ["thôi cho hỏi lệ phí đăng ký kết hôn",
                                             "sđt của xã là gì", "hôm qua tôi đã nộp rồi",
                                             "vâng em đợi"]


async def test_without_a_staff_channel_the_citizen_gets_the_contact_details(
        office: Office, assistant: Assistant) -> None:
    alone = Dialogue(assistant, office)  # no staff group configured
    replies = [r for text in ["viết cho tôi bài thơ", "giá vàng hôm nay", "gks"]
               for r in await alone.handle(IncomingMessage("web", "w1", text=text))]
    assert [r.intent for r in replies] == ["decline", "decline", "staff", "procedure"]
    assert "024.1022" in replies[2].text  # who to call instead
    assert all(r.text for r in replies)


async def test_staff_conversation_times_out(dialogue: Dialogue) -> None:
    await say(dialogue, "gặp cán bộ")
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=25)
    [answer] = await dialogue.handle(IncomingMessage("telegram", "42", text="gks"), now=later)
    assert answer.code == "1.001193"


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
    assert "Documents: 2 always, 4 in particular cases" in card.text
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
    retention = jobs.retention_job(office, RetentionPeriods())
    now = dt.datetime.now(dt.UTC)
    await jobs.run_job(office, retention, now + dt.timedelta(days=1))
    assert await dialogue.handle(message) == []  # still known: a redelivery
    await jobs.run_job(office, retention, now + dt.timedelta(days=8))
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


async def test_odd_characters_are_answered_not_failed(dialogue: Dialogue) -> None:
    for text in ["\ud800 khai sinh", "gks\x00", "😀😀", "x" * 5000, "\x00"]:
        replies = await say(dialogue, text, user="odd\ud800")
        assert replies and all(r.text for r in replies), repr(text)


async def test_everyday_words_inside_a_procedure_question_do_not_take_it_over(
        dialogue: Dialogue) -> None:
    # "những thủ tục gì" would open the menu: the procedure named wins.
    [answer] = await say(dialogue, "Tôi cần xin giấy xác nhận tình trạng hôn nhân để vay ngân "
                                   "hàng, phải làm những thủ tục gì?")
    assert answer.code == "1.004873"
    [menu] = await say(dialogue, "xã mình làm được những thủ tục nào")
    assert menu.intent == "menu"


async def test_hello_after_an_answer_takes_leave(dialogue: Dialogue) -> None:
    [hello] = await say(dialogue, "chào ad", user="8")
    assert hello.intent == "greeting"
    await say(dialogue, "đk kết hôn có mất phí ko", user="8")
    [bye] = await say(dialogue, "dạ vâng, e chào ad ạ", user="8")
    assert bye.intent == "goodbye"


async def test_a_flood_of_messages_does_not_flood_staff(dialogue: Dialogue, office: Office
                                                        ) -> None:
    await say(dialogue, "cho tôi gặp cán bộ", user="flood")
    replies = [await say(dialogue, f"alo alo {n} có ai không", user="flood") for n in range(25)]
    async with office.sessions() as s:
        relayed = (await s.exec(select(Notification).where(
            Notification.channel == "staff", Notification.recipient == "telegram:flood"))).all()
    assert len(relayed) == RELAY_LIMIT
    assert replies[-1][0].text.startswith("Cán bộ đã nhận nhiều tin nhắn của bạn")
    later = dt.datetime.now(dt.UTC) + RELAY_WINDOW + dt.timedelta(minutes=1)
    await dialogue.handle(IncomingMessage("telegram", "flood", text="còn đó không"), now=later)
    async with office.sessions() as s:
        assert len((await s.exec(select(Notification).where(
            Notification.channel == "staff"))).all()) == RELAY_LIMIT + 1


# Announcements from the main menu (task P).
async def test_the_menu_subscribes_to_announcements_and_then_offers_to_stop_them(
        dialogue: Dialogue) -> None:
    [welcome] = await say(dialogue, "/start", user="77")
    assert welcome.buttons[-1].title == "Nhận thông báo của xã"
    [on] = await say(dialogue, payload=welcome.buttons[-1].payload, user="77")
    assert on.text.startswith("Bạn sẽ nhận các thông báo của Xã Hát Môn tại đây.")
    [menu] = await say(dialogue, "menu", user="77")
    assert menu.buttons[-1].title == "Huỷ nhận thông báo"
    [off] = await say(dialogue, payload=menu.buttons[-1].payload, user="77")
    assert off.text == "Bạn sẽ không nhận thông báo của Xã Hát Môn nữa."
    [english] = await say(dialogue, payload="lang:en", user="77")
    assert english.buttons[-1].title == "Receive announcements"
    [on] = await say(dialogue, payload=english.buttons[-1].payload, user="77")
    assert on.text.startswith("You will receive the announcements of")
    [menu] = await say(dialogue, "menu", user="77")
    assert menu.buttons[-1].title == "Stop announcements"
    [other] = await say(dialogue, "/start", user="78")  # someone else: not subscribed
    assert other.buttons[-1].title == "Nhận thông báo của xã"


async def test_a_menu_right_after_subscribing_offers_to_stop(dialogue: Dialogue) -> None:
    # Typed fast, the messages share a batch: each menu reflects the message before it.
    texts = ["/start", "nhận thông báo của xã", "menu", "huỷ nhận thông báo", "menu"]
    answers = await asyncio.gather(*(say(dialogue, text, user="79") for text in texts))
    assert answers[1][0].text.startswith("Bạn sẽ nhận các thông báo của Xã Hát Môn tại đây.")
    assert answers[2][0].buttons[-1].title == "Huỷ nhận thông báo"
    assert answers[3][0].text == "Bạn sẽ không nhận thông báo của Xã Hát Môn nữa."
    assert answers[4][0].buttons[-1].title == "Nhận thông báo của xã"


async def test_another_bodys_matter_said_outright_leaves_the_procedure_at_hand(
        dialogue: Dialogue) -> None:
    await say(dialogue, "tạm trú sắp hết hạn, gia hạn thế nào", user="91")
    [passport] = await say(dialogue, "lam ho chieu cho con duoi 14 tuoi can gi a", user="91")
    assert passport.intent == "decline" and "xuất nhập cảnh" in passport.text
