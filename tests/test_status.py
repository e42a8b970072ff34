"""Status lookup as a citizen uses it, and what followers are sent (SQLite and PostgreSQL)."""

import datetime as dt

from sqlmodel import select

from handlers.applications import Office, set_status
from handlers.status import MAX_FAILURES, lookup_status
from storage import applications as repo
from storage.db import session_scope
from storage.domain import ApplicationStatus
from storage.models import LookupAttempt, Notification
from tests.samples import CODE, T0


async def lookup(office: Office, code: str, last4: str, user: str = "telegram:1",
                 now: dt.datetime = T0) -> str:
    async with session_scope(office.sessions) as s:
        answer = await lookup_status(s, commune_id=office.commune_id, receipt_code=code,
                                     phone_last4=last4, user_key=user, lang="vi", now=now)
    return answer.text


async def test_code_and_phone_digits_show_the_status(office: Office) -> None:
    text = await lookup(office, " 000.00.19.h26-251127-0001 ", "5678")
    assert text.splitlines()[0] == f"Hồ sơ {CODE}: Thủ tục đăng ký khai sinh"
    assert "Trạng thái: đã tiếp nhận" in text
    assert "Ngày hẹn trả: 3 tháng 11, 2026." in text
    assert "Nguyễn Văn A" not in text and "0912345678" not in text


async def test_unknown_code_and_wrong_digits_read_the_same(office: Office) -> None:
    wrong_digits = await lookup(office, CODE, "1111", user="zalo:1")
    unknown = await lookup(office, "000.00.19.H26-251127-9999", "5678", user="zalo:2")
    assert wrong_digits.replace(CODE, "X") == unknown.replace("000.00.19.H26-251127-9999", "X")
    assert "Không tìm thấy hồ sơ" in unknown


async def test_guessing_is_slowed_down_and_audited(office: Office) -> None:
    guesses = [f"000.00.19.H26-251127-{n:04d}" for n in range(2, 2 + MAX_FAILURES)]
    for code in guesses:
        await lookup(office, code, "5678", user="web:guesser")
    # Even the right code and digits are refused now, for this user.
    refused = await lookup(office, CODE, "5678", user="web:guesser")
    assert refused.startswith("Bạn đã nhập sai quá nhiều lần")
    # Another citizen is not affected; and the window passes.
    assert "Trạng thái" in await lookup(office, CODE, "5678", user="web:other")
    later = T0 + dt.timedelta(minutes=16)
    assert "Trạng thái" in await lookup(office, CODE, "5678", user="web:guesser", now=later)
    async with office.sessions() as s:
        audit = (await s.exec(select(LookupAttempt))).all()
    assert len(audit) == MAX_FAILURES + 3
    assert sum(a.success for a in audit) == 2


async def test_enumeration_of_10000_codes_learns_nothing(office: Office) -> None:
    answers = set()
    async with session_scope(office.sessions) as s:  # one transaction keeps the test quick
        for n in range(10_000):
            code = f"000.00.19.H26-251127-{n:04d}"  # the real code is among them
            answer = await lookup_status(s, commune_id=office.commune_id, receipt_code=code,
                                         phone_last4=f"{n:04d}", user_key="web:bot", lang="vi",
                                         now=T0 + dt.timedelta(seconds=n / 100))
            answers.add(answer.text.replace(code, "X"))
    assert len(answers) == 2  # "not found" five times, then "too many attempts"; nothing else
    assert not any("Trạng thái" in a for a in answers)


async def test_followers_get_a_message_per_change(office: Office) -> None:
    async with session_scope(office.sessions) as s:
        app = (await repo.existing(s, commune_id=office.commune_id, codes=[CODE]))[CODE]
        assert app.id is not None
        assert await repo.subscribe(s, commune_id=office.commune_id, application_id=app.id,
                                    channel="telegram", recipient="42", lang="vi")
        assert not await repo.subscribe(s, commune_id=office.commune_id, application_id=app.id,
                                        channel="telegram", recipient="42", lang="vi")
    change = await set_status(office, receipt_code=CODE, status=ApplicationStatus.RESULT_READY,
                              actor="staff:lan", now=T0 + dt.timedelta(hours=5))
    assert change is not None
    async with office.sessions() as s:
        queued = (await s.exec(select(Notification))).all()
    assert [(n.channel, n.recipient) for n in queued] == [("telegram", "42")]
    assert "Trạng thái: đã có kết quả, chờ nhận" in queued[0].text
    assert "Mang giấy biên nhận" in queued[0].text
    assert await set_status(office, receipt_code="NO-SUCH-CODE", status=ApplicationStatus.RETURNED,
                            actor="staff:lan", now=T0) is None


async def test_an_overdue_application_says_so_and_what_to_do(office: Office) -> None:
    late = T0 + dt.timedelta(days=10)  # due the day after T0, still being received
    text = await lookup(office, CODE, "5678", user="web:late", now=late)
    assert "nay đã quá hạn" in text
    assert "hỏi bộ phận một cửa lý do và ngày hẹn trả mới" in text
    assert "Bạn chưa cần làm gì" not in text


async def test_a_supplement_request_says_what_is_asked_for(office: Office) -> None:
    await set_status(office, receipt_code=CODE, status=ApplicationStatus.SUPPLEMENT_REQUIRED,
                     actor="staff:lan", now=T0,
                     note="Bổ sung bản sao Giấy chứng nhận kết hôn trước ngày 10/11/2026.")
    text = await lookup(office, CODE, "5678", user="web:supplement")
    assert "Trạng thái: cần bổ sung giấy tờ" in text
    assert "Cơ quan yêu cầu: Bổ sung bản sao Giấy chứng nhận kết hôn trước ngày 10/11/2026." \
        in text
