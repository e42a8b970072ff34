"""Everyday intents from the word lists: whole messages, phrases inside a sentence, receipt
codes inside a sentence, Telegram commands."""

import pytest

from bot.telegram import command_payload, lookup_deep_link, procedure_deep_link
from knowledge.intents import Intent, intent_words
from knowledge.match import written_language
from storage.domain import find_phone_beside_code, find_receipt_code, normalize_receipt_code

CODE = "000.00.19.H26-251127-0001"


@pytest.mark.parametrize(("text", "intent"), [
    ("cảm ơn ad nhiều ạ!", Intent.THANKS), ("cam on", Intent.THANKS),
    ("ok cảm ơn", Intent.THANKS), ("chào bạn", Intent.GREETING), ("alo", Intent.GREETING),
    ("👍", Intent.ACK), ("vâng ạ", Intent.ACK), ("tạm biệt nhé", Intent.GOODBYE),
    ("tra cứu hồ sơ", Intent.LOOKUP), ("tiếng anh", Intent.ENGLISH),
    ("hủy theo dõi", Intent.UNFOLLOW), ("kết thúc", Intent.END),
    ("cam on, tam biet", Intent.THANKS), ("vâng chào bạn nhé", Intent.GOODBYE),
    ("thôi bác đi đây, chào cháu nhé", Intent.GOODBYE), ("dc r", Intent.ACK),
    ("Chào cháu, chúc cháu buổi sáng tốt lành", Intent.GREETING),
    ("chào buổi sáng các cán bộ xã", Intent.GREETING), ("cán bộ", Intent.STAFF),
    ("hellooo", Intent.GREETING), ("alooo", Intent.GREETING),  # a letter held down
    ("c.on b nhieu", Intent.THANKS), ("oke e hieu r", Intent.ACK),
    ("thoi khoi theo doi nua", Intent.UNFOLLOW), ("bat dau lai tu dau di", Intent.MENU),
    ("quay lại tiếng việt", Intent.VIETNAMESE), ("quay lai tieng anh", Intent.ENGLISH),
])
def test_a_whole_message_is_an_intent(text: str, intent: Intent) -> None:
    assert intent_words().whole_intent(text) is intent


@pytest.mark.parametrize("text", ["cảm ơn, cho hỏi làm khai sinh cần gì", "chào thủ tục ly hôn",
                                  "làm giấy khai sinh"])
def test_a_question_is_not_a_pleasantry(text: str) -> None:
    assert intent_words().whole_intent(text) is None


@pytest.mark.parametrize(("text", "intent"), [
    ("cho hỏi giờ làm việc của xã", Intent.CONTACT_HOURS),
    ("số điện thoại của ubnd xã là gì", Intent.CONTACT_PHONE),
    ("gửi mình bản đồ đường đến ủy ban", Intent.CONTACT_MAP),
    ("hồ sơ của tôi đến đâu rồi", Intent.LOOKUP),
    ("hồ sơ khai sinh của con tôi tới đâu rồi", Intent.LOOKUP),
    ("tra thêm hồ sơ khác", Intent.LOOKUP),
    ("bạn là người thật hay máy vậy", Intent.ABOUT),
    ("cho tôi nói chuyện trực tiếp với cán bộ", Intent.STAFF),
    # Chat shorthand reads as in full: "hs của e" is "hồ sơ của em".
    ("hs của e xong chưa vậy", Intent.LOOKUP),
    ("nhờ ad check giúp e cái hồ sơ", Intent.LOOKUP),
    ("trợ lý giúp gì được cho e", Intent.ABOUT),
    ("giờ có cán bộ nào trực ko ạ", Intent.STAFF),
    ("nối máy cho tôi với tổng đài viên", Intent.STAFF),
    ("máy trả lời sai rồi, chuyển cho người hỗ trợ giúp", Intent.STAFF),
    ("hồ sơ chứng thực nộp hôm thứ hai giờ đã xong chưa", Intent.LOOKUP),
    ("hồ sơ nhập khẩu nộp lâu rồi chưa thấy gì", Intent.LOOKUP),
    ("hồ sơ nhập khẩu của tôi sao rồi", Intent.LOOKUP),
    ("hs nhập khẩu của e sao r ad", Intent.LOOKUP),
    ("hồ sơ khai sinh cho cháu nộp tuần trước giờ sao rồi", Intent.LOOKUP),
    ("tôi muốn được cán bộ tư pháp tư vấn trực tiếp", Intent.STAFF),
    ("hs chứng thực hợp đồng của tôi quá hẹn rồi mà chưa xong là sao", Intent.LOOKUP),
    ("hs cấp lại căn cước của mẹ e đang ở bước nào r ad", Intent.LOOKUP),
    ("e muốn nói chuyện vs người thật, ko phải bot", Intent.STAFF),
    ("Hi, what can this bot do?", Intent.ABOUT),
    ("truong hop nha e phuc tap lam, cho e noi chuyen vs can bo", Intent.STAFF),
    ("co the ket noi vs nhan vien tu van ko", Intent.STAFF),
    ("ho so cua me e da duoc duyet chua a", Intent.LOOKUP),
    ("ban giup dc j", Intent.ABOUT),
    ("chuc ad buoi chieu vui ve", Intent.GOODBYE),
    ("e muốn xem hồ sơ thường trú đã duyệt chưa", Intent.LOOKUP),
    ("bạn có phải người thật ko", Intent.ABOUT),
    ("danh mục thủ tục có những gì", Intent.MENU),
])
def test_a_phrase_inside_a_sentence_names_its_intent(text: str, intent: Intent) -> None:
    assert intent_words().contained(text)[0] is intent


def test_the_communes_own_name_reads_as_filler() -> None:
    words = intent_words().with_places(["Xã Hát Môn", "Hát Môn"])
    assert words.contained("uy ban xa hat mon o dau vay")[0] is Intent.CONTACT_ADDRESS
    assert intent_words().contained("uy ban xa hat mon o dau vay") == []
    assert words.whole_intent("chào ủy ban xã Hát Môn") is Intent.GREETING


@pytest.mark.parametrize(("text", "lang"), [
    ("I'm British and want to marry my Vietnamese fiancée here, what documents do I need?", "en"),
    ("track application 000.00.19.H26-261120-0001", "en"), ("Đăng Ký Khai Sinh", None),
    ("lam giay khai sinh o dau", None), ("làm giấy khai sinh cho con cần những gì ạ", "vi"),
    ("lam online dc ko a", None),  # chat shorthand is no English
    ("can giay to gi", None),  # nor unaccented words that happen to be English ("can", "to")
])
def test_the_language_a_message_is_written_in(text: str, lang: str | None) -> None:
    assert written_language(text) == lang


def test_a_receipt_code_is_found_anywhere_but_dates_and_phones_are_not_codes() -> None:
    assert find_receipt_code(f"cho em hỏi hồ sơ {CODE.lower()} sao rồi") == CODE
    assert find_receipt_code("nộp ngày 12/10/2026, sđt 0912.345.678") is None
    assert find_receipt_code("làm giấy khai sinh cần gì") is None
    # A phone's long dashes, or the dots left out, are the same code.
    long_dashes = CODE.replace("-", "–")
    assert find_receipt_code(f"mã: {long_dashes}") == CODE
    assert normalize_receipt_code(CODE.replace(".", "").lower()) == CODE
    # Spaces around its dashes; a phone number after a dash is no part of it.
    assert find_receipt_code(CODE.replace("-", " - ")) == CODE
    assert find_receipt_code(f"đã có kết quả chưa ạ {CODE} - 0355555555") == CODE
    # Typed as one run of characters, or with spaces for its dots and dashes.
    assert find_receipt_code(CODE.replace(".", "").replace("-", "")) == CODE
    spaced = CODE.replace(".", " ").replace("-", " ")
    assert find_receipt_code(f"mã hồ sơ {spaced}") == CODE
    assert find_phone_beside_code(f"{spaced} sđt 0904 324 321") == "0904 324 321"
    assert find_phone_beside_code(spaced) is None


def test_telegram_commands_and_deep_links_become_payloads() -> None:
    assert procedure_deep_link("1.001193") == "p_1_001193"
    assert command_payload("/start p_1_001193") == "p:1.001193"
    assert command_payload(f"/start {lookup_deep_link(CODE)}") == f"lookup:{CODE}"
    assert len(lookup_deep_link(CODE)) <= 64
    assert command_payload("/start") == "menu"
    assert command_payload("/tracuu@motcua_bot") == "lookup"
    assert command_payload("/unknown") == "menu"
    assert command_payload("làm giấy khai sinh") is None


@pytest.mark.parametrize(("text", "intent"), [
    ("cho em nhận thông báo của xã Hát Môn với", Intent.ANNOUNCEMENTS_ON),
    ("đăng ký nhận tin", Intent.ANNOUNCEMENTS_ON), ("subscribe", Intent.ANNOUNCEMENTS_ON),
    ("huỷ nhận thông báo của xã Hát Môn", Intent.ANNOUNCEMENTS_OFF),
    ("stop announcements", Intent.ANNOUNCEMENTS_OFF),
])
def test_announcement_phrases_are_intents_like_the_others(text: str, intent: Intent) -> None:
    words = intent_words().with_places(["Xã Hát Môn", "Hát Môn"])
    assert intent in words.contained(text)
    assert words.whole_intent(text) is not intent  # "contains" phrases only
