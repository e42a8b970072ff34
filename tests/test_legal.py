"""Legal knowledge: rules cited to the article, matters of other bodies, checked facts, the 2025
merger of communes."""

import dataclasses
import datetime as dt
from collections import Counter

import pytest

from knowledge.answer import Assistant
from knowledge.evaluate import cites, has_fact
from knowledge.i18n import Text
from knowledge.schema import Faq, FaqCase, FaqSource, LegalField, TimeUnit
from tests.test_cli import run

CHECKED_SINCE = "2026-12-01"  # the pass over every bundled fact after the 2025 reform


def _rule(**changes: object) -> Faq:
    """A FAQ entry standing on its own, as a test writes one."""
    fields: dict[str, object] = {
        "id": "test-rule", "field": LegalField.MARRIAGE_FAMILY,
        "questions": ["chồng có được đơn phương xin ly hôn khi vợ đang mang bầu không"],
        "answer": "Khi vợ đang có thai, sinh con hoặc nuôi con dưới 12 tháng tuổi thì chồng "
                  "không có quyền yêu cầu ly hôn.",
        "answer_en": "While the wife is pregnant, giving birth or raising a child under 12 "
                     "months old, the husband may not file for divorce.",
        "sources": [FaqSource(title="Luật Hôn nhân và gia đình", number="52/2014/QH13",
                              article="Điều 51", clause="khoản 3")],
        "facts_date": dt.date(2026, 12, 5), "checked": dt.date(2026, 12, 5),
    }
    fields.update(changes)
    return Faq.model_validate(fields)


def _with(assistant: Assistant, faq: Faq) -> Assistant:
    return Assistant(dataclasses.replace(assistant.kb, faqs=[*assistant.kb.faqs, faq]))


def test_every_faq_entry_cites_a_document_number_and_an_article(assistant: Assistant) -> None:
    uncited = [f.id for f in assistant.kb.faqs if not any(s.legal for s in f.sources)]
    assert uncited == []


def test_every_faq_entry_was_checked_against_the_law_in_force(assistant: Assistant) -> None:
    unchecked = [f.id for f in assistant.kb.faqs
                 if f.checked is None or f.checked < dt.date.fromisoformat(CHECKED_SINCE)
                 or not f.checked_against]
    assert unchecked == []


def test_legal_knowledge_covers_every_field(assistant: Assistant) -> None:
    faqs = assistant.kb.faqs
    assert len(faqs) >= 150
    per_field = Counter(f.field for f in faqs)
    thin = {field.value: per_field[field] for field in LegalField if per_field[field] < 4}
    assert thin == {}


def test_rule_leads_with_the_rule_and_ends_with_the_citation(assistant: Assistant) -> None:
    answer = _with(assistant, _rule()).ask("chồng có được đơn phương ly hôn khi vợ mang bầu ko")
    assert answer.kind == "rule" and answer.faq == "test-rule"
    lines = answer.answer.split("\n")
    assert lines[0].startswith("Khi vợ đang có thai, sinh con hoặc nuôi con dưới 12 tháng")
    assert lines[-1] == ("Nguồn: khoản 3 Điều 51 Luật Hôn nhân và gia đình 52/2014/QH13 "
                         "(thông tin ngày 5 tháng 12, 2026).")


def test_rule_in_english_cites_article_and_clause(assistant: Assistant) -> None:
    faq = _rule(questions_en=["Can a husband file for divorce while his wife is pregnant?"])
    answer = _with(assistant, faq).ask("Can a husband file for divorce while his wife is "
                                       "pregnant?")
    assert answer.lang == "en" and answer.faq == "test-rule"
    assert answer.answer.startswith("While the wife is pregnant")
    assert "Law 52/2014/QH13, Article 51(3)" in answer.answer.split("\n")[-1]


def test_another_bodys_matter_is_declined_naming_it_with_the_rule(
        assistant: Assistant) -> None:
    faq = _rule(authority="Tòa án nhân dân khu vực nơi người bị kiện cư trú",
                authority_en="the regional People's Court where the respondent lives")
    answer = _with(assistant, faq).ask("chồng có được đơn phương ly hôn khi vợ mang bầu ko")
    assert answer.kind == "none" and answer.faq == "test-rule"
    assert answer.answer.split("\n")[0].startswith("Khi vợ đang có thai")
    assert "Việc này do Tòa án nhân dân khu vực nơi người bị kiện cư trú giải quyết." \
        in answer.answer
    assert "Điều 51" in answer.answer.split("\n")[-1]


def test_a_rule_that_depends_on_the_case_says_which_case_gives_which_answer(
        assistant: Assistant) -> None:
    faq = _rule(cases=[FaqCase(when="Vợ đang mang thai", then="chồng không được xin ly hôn",
                               when_en="The wife is pregnant",
                               then_en="the husband may not file"),
                       FaqCase(when="Vợ yêu cầu", then="tòa vẫn giải quyết",
                               when_en="The wife files", then_en="the court hears it")])
    text = _with(assistant, faq).ask("chồng có được đơn phương ly hôn khi vợ mang bầu ko").answer
    assert "• Vợ đang mang thai: chồng không được xin ly hôn" in text
    assert "• Vợ yêu cầu: tòa vẫn giải quyết" in text


def test_a_rule_on_its_own_is_never_offered_as_a_procedure_to_pick(
        assistant: Assistant) -> None:
    answer = _with(assistant, _rule()).ask("ly hôn")
    assert all(m.code in assistant.kb.procedures for m in answer.matches)


# No text we could read states these two times (Nghị định 123/2015 Điều 20 and 26 as amended,
# Thông tư 04/2020): they are said plainly as unknown, with who to ask, until checked.
UNRESOLVED_TIMES = {"1.004772", "3.000323"}


def test_every_bundled_time_has_a_unit(assistant: Assistant) -> None:
    unitless = {code for code in assistant.kb.bundled_codes
                for m in assistant.kb.procedures[code].methods
                if m.time_unit is TimeUnit.UNSPECIFIED}
    assert unitless == UNRESOLVED_TIMES
    for code in assistant.kb.bundled_codes:
        card = assistant.card(assistant.kb.procedures[code], Text("vi"))
        assert "không ghi đơn vị" not in card, code
        if code in UNRESOLVED_TIMES:
            assert "nguồn chưa ghi rõ" in card and "hãy hỏi bộ phận một cửa" in card


def test_kb_check_lists_entries_not_checked_since_a_date() -> None:
    fresh = run("kb", "check", "--since", CHECKED_SINCE)
    assert fresh.returncode == 0, fresh.stdout
    assert "\n0 of " in fresh.stdout
    later = run("kb", "check", "--since", "2099-01-01")
    assert later.returncode == 1
    assert "procedure 1.001193: 2026-" in later.stdout
    assert "faq tuoi-ket-hon: 2026-" in later.stdout


@pytest.mark.parametrize(("question", "first"), [
    ("tôi ở xã Ngọc Tảo cũ thì nộp hồ sơ ở đâu",
     "Xã Ngọc Tảo (huyện Phúc Thọ cũ) đã nhập vào Xã Hát Môn từ ngày 1/7/2025"),
    ("nguoi Tam Thuan lam giay khai sinh o dau",
     "Xã Tam Thuấn (huyện Phúc Thọ cũ) đã nhập vào Xã Hát Môn"),
])
def test_a_former_commune_of_ours_is_recognised(assistant: Assistant, question: str,
                                                first: str) -> None:
    answer = assistant.ask(question)
    assert answer.answer.startswith(first)
    assert "Hát Môn" in answer.answer.split("\n", 1)[1]  # where, or how to reach the desk


def test_another_commune_is_told_which_commune_serves_it(assistant: Assistant) -> None:
    answer = assistant.ask("nhà em ở xã Võng Xuyên, làm giấy khai sinh ở đâu ạ")
    assert answer.answer.startswith("Xã Võng Xuyên (huyện Phúc Thọ cũ) nay thuộc Xã Phúc Lộc")
    assert "bộ phận một cửa Xã Hát Môn" not in answer.answer  # not sent to the wrong desk
    assert assistant.kb.commune.directory_url in answer.answer
    # Typed without marks, "xa van con" reads as "xã vẫn còn" (the register is still kept)
    # unless the old commune is named as such.
    kept = assistant.ask("mat gks roi, so o xa van con, xin ban sao thi can j")
    assert not kept.places and kept.code == "2.000635"
    assert assistant.ask("toi o xa van con cu thi nop o dau").answer.startswith("Xã Vân Côn")


def test_a_rule_asked_about_another_commune_is_still_stated(assistant: Assistant) -> None:
    # The law is the same everywhere: where to apply first, then the rule.
    answer = assistant.ask("Mẹ tôi mất, trước khi mất bà ở với tôi tại phường Yên Hòa nhưng "
                           "thường trú vẫn ở quê. Vậy khai tử ở đâu?")
    assert answer.answer.startswith("Phường Yên Hòa")
    assert has_fact(answer.answer, "cư trú lần cuối") and cites(answer.answer, "60/2014/QH13",
                                                                "Điều 32")


def test_a_rule_question_matched_clearly_outweighs_an_off_topic_word(
        assistant: Assistant) -> None:
    # "tuổi nào" is also how horoscopes are asked; the law on birthday honours answers.
    answer = assistant.ask("xa to chuc mung tho cho nguoi cao tuoi vao nhung tuoi nao a")
    assert answer.faq == "mung-tho-nguoi-cao-tuoi" and has_fact(answer.answer, "70, 75, 80")


def test_a_commune_word_that_names_no_commune_is_no_place(assistant: Assistant) -> None:
    answer = assistant.ask("ông tôi mất ở bệnh viện ngoài tỉnh thì về xã mình khai được không")
    assert not answer.places  # "xã mình" is no "Phường Minh Khai"
    assert not assistant.ask("hội liên hiệp phụ nữ xã ở đâu").places


def test_legal_answers_are_scored_on_facts_and_citation() -> None:
    answer = "Nam từ đủ 20 tuổi.\nNguồn: Điều 8 Luật Hôn nhân và gia đình 52/2014/QH13."
    assert has_fact(answer, "20 tuoi") and has_fact(answer, "hai mươi | 20 tuổi")
    assert not has_fact(answer, "18 tuổi")
    assert cites(answer, "52/2014/QH13", "Điều 8")
    assert not cites(answer, "52/2014/QH13", "Điều 80")
    assert not cites(answer, "60/2014/QH13", "Điều 8")
    assert cites("Source: Law 52/2014/QH13, Article 8(1)", "52/2014/QH13", "Điều 8")


# Task L (issue 9): legal questions answered by the rule rather than a procedure card.
@pytest.mark.parametrize(("question", "faq", "fact", "article"), [
    ("Tôi chưa lập gia đình, có được nhận một bé 16 tuổi không họ hàng làm con nuôi không?",
     "tuoi-nguoi-nhan-va-con-nuoi", "20 tuổi", ("52/2010/QH12", "Điều 14")),
    ("Cho con làm con nuôi nhà khác rồi thì bố mẹ đẻ còn nghĩa vụ nuôi dưỡng con nữa không?",
     "quan-he-cha-me-de-sau-cho-con-nuoi", "", ("52/2010/QH12", "")),
    ("I have just started renting a room near my job. How many days after moving in must I "
     "register temporary residence?", "tam-tru-khi-thue-tro", "30 days", ("68/2020/QH14", "")),
    ("Tôi bị khuyết tật nặng, đã có giấy xác nhận. Đi xe buýt trong tỉnh thì có phải trả tiền "
     "vé không?", "nguoi-khuyet-tat-di-phuong-tien-cong-cong", "",
     ("51/2010/QH12", "Điều 41")),
    ("Con chú con bác ruột lấy nhau thì có được đăng ký kết hôn không?",
     "cam-ket-hon-ho-hang-ba-doi", "ba đời", ("52/2014/QH13", "")),
    # Asked of another procedure's rule than the one "hộ khẩu" names (registration).
    ("so ho khau giay con dung de lam thu tuc duoc khong", "so-ho-khau-con-dung-khong",
     "31/12/2022", ("68/2020/QH14", "Điều 38")),
])
def test_a_legal_question_gets_the_rule_with_its_citation(
        assistant: Assistant, question: str, faq: str, fact: str,
        article: tuple[str, str]) -> None:
    answer = assistant.ask(question)
    assert answer.faq == faq and answer.kind != "clarify"
    assert not fact or has_fact(answer.answer, fact)
    number, article_no = article
    assert number in answer.answer and (not article_no or cites(answer.answer, *article))


def test_a_rule_question_close_to_its_procedure_is_not_asked_back(
        assistant: Assistant) -> None:
    # Asked as a duty ("có bắt buộc"): the rule that says it answers; no list to pick from.
    answer = assistant.ask("Cháu mới sinh được mấy tiếng thì mất, nhà tôi có bắt buộc phải làm "
                           "khai sinh, khai tử cho cháu không?")
    assert answer.kind != "clarify" and answer.faq == "tre-song-duoi-24-gio"
    assert has_fact(answer.answer, "24 giờ")


@pytest.mark.parametrize(("question", "fact"), [
    ("con toi nam nay du 14 tuoi co bat buoc phai di lam the can cuoc khong", "phải làm"),
    ("Con tôi mới 5 tuổi thì có làm thẻ căn cước được không?", "theo nhu cầu"),
])
def test_whether_one_must_or_may_apply_is_answered_with_the_article(
        assistant: Assistant, question: str, fact: str) -> None:
    # No rule entry of its own: the procedure's conditions answer, with the law that sets them.
    answer = assistant.ask(question)
    assert answer.kind == "procedure" and answer.aspects[0].value == "eligibility"
    assert has_fact(answer.answer, fact) and cites(answer.answer, "26/2023/QH15", "Điều 19")


@pytest.mark.parametrize(("question", "fact", "citation"), [
    ("đăng ký tạm trú cần điều kiện gì", "30 ngày", ("68/2020/QH14", "Điều 27")),
    ("lam giay khai sinh can dieu kien gi", "60 ngày", ("60/2014/QH13", "Điều 15")),
])
def test_a_procedures_conditions_cite_the_law_that_sets_them(
        assistant: Assistant, question: str, fact: str, citation: tuple[str, str]) -> None:
    answer = assistant.ask(question)
    assert answer.aspects and answer.aspects[0].value == "eligibility"
    assert has_fact(answer.answer, fact) and cites(answer.answer, *citation)


def test_a_rule_asked_for_outweighs_a_word_from_elsewhere(assistant: Assistant) -> None:
    # "bảo hiểm xã hội … có đúng không" asks the law: the rule and who handles it, not a
    # bare decline because social insurance is another body's matter.
    answer = assistant.ask("Nghe nói đóng bảo hiểm xã hội bắt buộc 15 năm là được hưởng lương "
                           "hưu, có đúng không?")
    assert answer.faq == "dieu-kien-huong-luong-huu"
    assert "15 năm" in answer.answer and "Bảo hiểm xã hội" in answer.answer


def test_a_decline_names_the_other_body_among_the_best_matches(assistant: Assistant) -> None:
    # A long story matched by nothing well enough still says who handles divorce.
    answer = assistant.ask("Vợ chồng tôi sống ly thân đã gần ba năm nay, con cái lớn cả rồi, "
                           "giờ cả hai bên đều đồng ý chia tay cho xong. Chúng tôi mang đơn ly "
                           "hôn ra UBND xã nộp có được không ạ?")
    assert answer.kind == "none" and "Tòa án" in answer.answer


def test_which_body_decides_is_answered_by_the_rule_of_competence(
        assistant: Assistant) -> None:
    # "cơ quan nào" asks who handles it: Công an xã for residence, not a choice of cards.
    answer = assistant.ask("làm thường trú với tạm trú thì nộp cho cơ quan nào")
    assert answer.faq == "co-quan-dang-ky-cu-tru" and "Công an" in answer.answer


def test_from_how_many_days_asks_the_threshold_not_the_processing_time(
        assistant: Assistant) -> None:
    answer = assistant.ask("thuê trọ ở lại từ bao nhiêu ngày trở lên thì phải làm tạm trú")
    assert answer.faq == "tam-tru-khi-thue-tro" and "30 ngày" in answer.answer
