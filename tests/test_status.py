"""Status lookup as a citizen uses it, and what followers are sent (SQLite and PostgreSQL)."""

import datetime as dt

import pytest
from sqlmodel import select

from handlers.applications import Office, set_status
from handlers.status import (
    CODE_FAILURES,
    DAILY_FAILURES,
    WEAK_FAILURES,
    WINDOW,
    lookup_status,
)
from storage import applications as repo
from storage.db import session_scope
from storage.domain import ApplicationStatus
from storage.models import LookupAttempt, Notification
from tests.samples import CODE, T0

PHONE = "0912345678"  # the sample application's


async def lookup(office: Office, code: str, phone: str, user: str = "telegram:1",
                 now: dt.datetime = T0, client: str = "") -> str:
    async with session_scope(office.sessions) as s:
        answer = await lookup_status(s, commune_id=office.commune_id, receipt_code=code,
                                     phone=phone, user_key=user, client_key=client, lang="vi",
                                     now=now)
    return answer.text


@pytest.mark.parametrize("phone", [PHONE, "+84 912 345 678", "sdt e 0912.345.678", "5678",
                                   "4 số cuối 5678"])
async def test_code_and_phone_show_the_status(office: Office, phone: str) -> None:
    text = await lookup(office, " 000.00.19.h26-251127-0001 ", phone)
    assert text.splitlines()[0] == f"Hồ sơ {CODE}: Thủ tục đăng ký khai sinh"
    assert "Trạng thái: đã tiếp nhận" in text
    assert "Ngày hẹn trả: 3 tháng 11, 2026." in text
    assert "Nguyễn Văn A" not in text and PHONE not in text


async def test_unknown_code_and_wrong_number_read_the_same(office: Office) -> None:
    wrong = await lookup(office, CODE, "0912345679", user="zalo:1")
    unknown = await lookup(office, "000.00.19.H26-251127-9999", PHONE, user="zalo:2")
    assert wrong.replace(CODE, "X") == unknown.replace("000.00.19.H26-251127-9999", "X")
    assert "Không tìm thấy hồ sơ" in unknown
    assert "Trạng thái" not in await lookup(office, CODE, "345678", user="zalo:3")


async def test_a_guesser_is_turned_away_for_the_day_and_the_owner_is_not(office: Office) -> None:
    wrong = [f"09{n:08d}" for n in range(DAILY_FAILURES)]
    for phone in wrong:
        await lookup(office, CODE, phone, user="web:guesser", client="10.0.0.1")
    refused = await lookup(office, CODE, PHONE, user="web:guesser", client="10.0.0.1")
    assert refused.startswith("Bạn đã nhập sai quá nhiều lần với mã này trong hôm nay")
    # New user ids from the same address are turned away too…
    assert "Trạng thái" not in await lookup(office, CODE, PHONE, user="web:new", client="10.0.0.1")
    # …while the owner, elsewhere, gets the status; and the guesser again the next day.
    assert "Trạng thái" in await lookup(office, CODE, PHONE, user="web:owner", client="10.0.0.2")
    tomorrow = T0 + dt.timedelta(days=1, minutes=1)
    assert "Trạng thái" in await lookup(office, CODE, PHONE, user="web:guesser",
                                        client="10.0.0.1", now=tomorrow)
    async with office.sessions() as s:
        audit = (await s.exec(select(LookupAttempt))).all()
    assert len(audit) == DAILY_FAILURES + 4  # every attempt is audited, refused ones too
    assert sum(a.success for a in audit) == 2 and sum(a.refused for a in audit) == 2


async def test_a_code_under_attack_locks_for_at_most_the_window(office: Office) -> None:
    async def guess(n: int, at: dt.datetime) -> str:
        return await lookup(office, CODE, f"09{n:08d}", user=f"web:bot{n}",
                            client=f"127.0.{n // 250}.{n % 250}", now=at)

    async with session_scope(office.sessions) as s:  # the owner proved it once, last week
        await lookup_status(s, commune_id=office.commune_id, receipt_code=CODE, phone=PHONE,
                            user_key="zalo:owner", lang="vi", now=T0 - dt.timedelta(days=7))
    for n in range(CODE_FAILURES):
        await guess(n, T0 + dt.timedelta(seconds=n))
    # Locked for everyone else, even with the right number…
    assert (await lookup(office, CODE, PHONE, user="web:someone", client="10.1.1.1",
                         now=T0 + dt.timedelta(minutes=1))).startswith("Bạn đã nhập sai quá")
    # …except the account that proved it owns the code.
    assert "Trạng thái" in await lookup(office, CODE, PHONE, user="zalo:owner",
                                        now=T0 + dt.timedelta(minutes=1))
    # Refused guesses during the lock do not extend it: it ends a window after the failures.
    for n in range(CODE_FAILURES, CODE_FAILURES + 30):
        assert (await guess(n, T0 + dt.timedelta(minutes=2, seconds=n))).startswith(
            "Bạn đã nhập sai quá")
    after = T0 + WINDOW + dt.timedelta(seconds=CODE_FAILURES)
    assert "Trạng thái" in await lookup(office, CODE, PHONE, user="web:someone",
                                        client="10.1.1.1", now=after)


async def test_last_digits_are_accepted_only_while_few_guesses_failed(office: Office) -> None:
    for n in range(WEAK_FAILURES):
        await lookup(office, CODE, f"{n:04d}", user=f"web:{n}", client=f"10.0.0.{n}")
    asked = await lookup(office, CODE, "5678", user="web:owner", client="10.9.9.9")
    assert asked.startswith("Với hồ sơ này, bạn vui lòng nhập đầy đủ số điện thoại")
    # The whole number still works: the owner is not locked out.
    assert "Trạng thái" in await lookup(office, CODE, PHONE, user="web:owner", client="10.9.9.9")


async def test_enumerating_codes_on_last_digits_soon_needs_whole_numbers(office: Office
                                                                        ) -> None:
    answers = set()
    async with session_scope(office.sessions) as s:  # one transaction keeps the test quick
        for n in range(2_000):
            code = f"000.00.19.H26-251127-{n:04d}"  # the real code is among them
            answer = await lookup_status(s, commune_id=office.commune_id, receipt_code=code,
                                         phone=f"{n:04d}", user_key=f"web:bot{n}",
                                         client_key=f"127.0.{n // 250}.{n % 250}", lang="vi",
                                         now=T0 + dt.timedelta(seconds=n / 100))
            answers.add(answer.text.replace(code, "X"))
    # "not found" a few times across the commune, then only "type the whole number".
    assert len(answers) == 2
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
