"""One scripted conversation, run on every channel by that channel's end-to-end test.

A driver sends what the citizen types or taps and returns what reached the citizen on that
channel (from the fake Telegram/Zalo servers, or the web chat's HTTP answer).
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tests.samples import CODE


@dataclass(frozen=True)
class Received:
    """What reached the citizen for one message: texts in order, and every button offered."""

    texts: list[str]
    buttons: list[tuple[str, str]]  # (title, payload)

    @property
    def text(self) -> str:
        return "\n".join(self.texts)

    def payload(self, title: str) -> str:
        return next(p for t, p in self.buttons if t == title)


Send = Callable[..., Awaitable[Received]]  # send(text="", payload="")


async def scripted_conversation(send: Send) -> None:
    """Menu walk, typed question, deep link, status lookup, follow, handoff and back, English."""
    greeting = await send(text="/start")
    assert greeting.texts[0].startswith("Xin chào! Tôi là trợ lý của bộ phận một cửa Xã Hát Môn")
    fields = await send(payload=greeting.payload("Thủ tục"))
    assert fields.texts[0] == "Chọn lĩnh vực:"
    procedures = await send(payload=fields.payload("Hộ tịch"))
    overview = await send(payload=procedures.payload("Làm giấy khai sinh"))
    assert overview.texts[0].startswith("Làm giấy khai sinh (mã 1.001193)")
    card = await send(payload=overview.payload("Xem đầy đủ"))
    assert "Giấy chứng sinh" in card.text

    typed = await send(text="đk kết hôn có mất phí ko")
    assert typed.texts[0].startswith("Lệ phí — Đăng ký kết hôn (mã 1.000894): Miễn phí")
    follow_up = await send(text="còn giấy tờ thì sao")  # about the same procedure
    assert follow_up.texts[0].startswith("Giấy tờ cần chuẩn bị — Đăng ký kết hôn")
    tapped = await send(payload=follow_up.payload("Thời gian giải quyết"))
    assert tapped.texts[0].startswith("Thời gian giải quyết — Đăng ký kết hôn")

    linked = await send(payload="p:1.004222")  # a procedure chosen by a link or a button
    assert linked.texts[0].startswith("Đăng ký thường trú (nhập khẩu) (mã 1.004222)")

    assert (await send(payload="lookup")).texts == [
        "Vui lòng nhập mã hồ sơ in trên giấy biên nhận."]
    assert (await send(text=CODE.lower())).texts[0].startswith("Bạn nhập số điện thoại đã khai")
    status = await send(text="0912 345 678")
    assert "Trạng thái: đã tiếp nhận" in status.text
    followed = await send(payload=status.payload("Theo dõi hồ sơ này"))
    assert followed.texts == ["Bạn sẽ nhận tin nhắn tại đây khi hồ sơ thay đổi trạng thái."]

    handed = await send(text="gặp cán bộ")
    assert handed.texts[0].startswith("Tôi đã chuyển cuộc trò chuyện đến cán bộ Xã Hát Môn")
    assert (await send(text="hồ sơ đất của tôi")).texts == ["✓ Đã chuyển cho cán bộ."]
    assert (await send(text="kết thúc")).texts[0] == "Bạn đã quay lại với trợ lý tự động."

    english = await send(payload="lang:en")
    assert english.texts[0] == "The assistant now speaks English."
    answer = await send(text="How do I register my baby's birth?")
    assert answer.texts[0].startswith("Steps — Birth registration (code 1.001193)")
