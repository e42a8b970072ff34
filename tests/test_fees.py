"""Fees a province's People's Council sets (``knowledge.fees``): an operator's folder sets the
fee of death registration (1.000656, left to the province nationally) for Hà Nội and, otherwise,
for Phúc Thọ alone; the citizen of each commune is told the fee of their own commune, on its web
chat and its procedure page, on SQLite and PostgreSQL. A file that would change a fee the law
sets nationally is refused at start."""

import logging
import shutil
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app import build
from bot.runtime import open_offices
from bot.settings import Settings
from knowledge.answer import Assistant
from knowledge.fees import with_fees
from knowledge.loader import KnowledgeBase, KnowledgeError, load_commune
from knowledge.schema import FeeStatus
from tests.conftest import PROFILES
from tests.test_web import Chat

DEATH = "1.000656"  # fee left to the province on every method
BIRTH = "1.001193"  # free by law

PROVINCE = f"""
province = "Thành phố Hà Nội"

[[fees]]
procedure = "{DEATH}"
fee_status = "amount"
fee_vnd = 8000
fee_note = "Miễn khi đăng ký đúng hạn"
fee_note_en = "Free when registered on time"
basis = "Nghị quyết mẫu 01/2026/NQ-HĐND, Điều 2"
facts_date = 2026-12-01
"""

PHUC_THO = f"""
[[fees]]
procedure = "{DEATH}"
channels = ["truc_tuyen"]
fee_status = "free"
basis = "Nghị quyết mẫu 02/2026/NQ-HĐND, Điều 3"
facts_date = 2026-12-01
"""


def folder(tmp_path: Path, **files: str) -> Path:
    """An operator's profiles folder: Phúc Thọ's profile and these fee files (by stem)."""
    shutil.copy(PROFILES / "phuc-tho.toml", tmp_path / "phuc-tho.toml")
    for stem, text in files.items():
        (tmp_path / f"{stem.replace('_', '-')}.fees.toml").write_text(text, encoding="utf-8")
    return tmp_path


def commune_kb(kb: KnowledgeBase, slug: str, directory: Path) -> KnowledgeBase:
    """``kb`` for commune ``slug`` as ``open_offices`` makes it."""
    profile = kb.commune if slug == "hat-mon" else load_commune(slug, directory)
    return with_fees(replace(kb, commune=profile), directory)


def fees(kb: KnowledgeBase, code: str = DEATH) -> dict[str, tuple[FeeStatus, int | None]]:
    return {m.channel: (m.fee_status, m.fee_vnd) for m in kb.procedures[code].methods}


def test_the_province_sets_a_fee_and_a_commune_its_own(assistant: Assistant,
                                                       tmp_path: Path) -> None:
    directory = folder(tmp_path, province=PROVINCE, phuc_tho=PHUC_THO)
    hat_mon, phuc_tho = (commune_kb(assistant.kb, s, directory) for s in ("hat-mon", "phuc-tho"))
    amount = (FeeStatus.AMOUNT, 8000)
    assert set(fees(hat_mon).values()) == {amount}
    # Phúc Thọ's own file wins for the online method it names; the others keep the province's.
    assert fees(phuc_tho) == {"truc_tiep": amount, "buu_chinh": amount,
                              "truc_tuyen": (FeeStatus.FREE, None)}
    # The bundled knowledge base itself is not changed: a commune elsewhere keeps "province".
    assert {s for s, _ in fees(assistant.kb).values()} == {FeeStatus.PROVINCE}
    reply = Assistant(hat_mon).ask("lệ phí đăng ký khai tử bao nhiêu tiền").answer
    assert "8.000" in reply and "Nghị quyết mẫu 01/2026/NQ-HĐND" in reply
    assert "Miễn khi đăng ký đúng hạn" in reply


def test_another_provinces_fees_are_not_applied(assistant: Assistant, tmp_path: Path) -> None:
    directory = folder(tmp_path, province=PROVINCE.replace("Thành phố Hà Nội", "Tỉnh Bắc Ninh"))
    kb = commune_kb(assistant.kb, "phuc-tho", directory)
    assert {s for s, _ in fees(kb).values()} == {FeeStatus.PROVINCE}
    reply = Assistant(kb).ask("lệ phí đăng ký khai tử bao nhiêu tiền").answer
    assert "8.000" not in reply


@pytest.mark.parametrize(("text", "message"), [
    (PROVINCE.replace(DEATH, BIRTH), f"{BIRTH}: its fee is set nationally (free)"),
    (PHUC_THO.replace(DEATH, BIRTH), f"{BIRTH} (truc_tuyen): its fee is set nationally"),
    (PROVINCE.replace('province = "Thành phố Hà Nội"', ""), "province: the province"),
    (PROVINCE + PROVINCE.split("\n", 2)[2], f"{DEATH} is set twice"),
    (PROVINCE.replace("fee_vnd = 8000", ""), "fee_vnd goes with fee_status 'amount'"),
    (PROVINCE.replace("basis = ", "# basis = "), "basis"),
])
def test_a_wrong_fees_file_is_refused_with_its_path(assistant: Assistant, tmp_path: Path,
                                                    text: str, message: str) -> None:
    directory = folder(tmp_path, **({"phuc_tho": text} if "channels" in text else
                                    {"province": text}))
    with pytest.raises(KnowledgeError, match=r"\.fees\.toml: ") as refused:
        commune_kb(assistant.kb, "phuc-tho", directory)
    assert message in str(refused.value)


def test_a_procedure_not_loaded_is_skipped_with_a_warning(
        assistant: Assistant, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    directory = folder(tmp_path, province=PROVINCE + PROVINCE.split("\n", 2)[2].replace(
        DEATH, "2.002999"))
    with caplog.at_level(logging.WARNING, logger="knowledge.fees"):
        kb = commune_kb(assistant.kb, "hat-mon", directory)
    assert "2.002999 is not loaded" in caplog.text
    assert set(fees(kb).values()) == {(FeeStatus.AMOUNT, 8000)}


@pytest.fixture
async def web_chat(database_url: str, sessions: object, assistant: Assistant,
                   tmp_path: Path) -> AsyncIterator[TestClient[object, object]]:
    """Hát Môn and Phúc Thọ served together, web chat only, with the fee files above."""
    directory = folder(tmp_path, province=PROVINCE, phuc_tho=PHUC_THO)
    settings = Settings.from_env({
        "DATABASE_URL": database_url, "MOTCUA_COMMUNES": "hat-mon,phuc-tho",
        "MOTCUA_COMMUNE_PROFILES": str(directory), "MOTCUA_QUIET_HOURS": "",
        "MOTCUA_LIMIT_CHAT_USER": "1000/minute", "MOTCUA_LIMIT_CHAT_ADDRESS": "1000/minute",
        "MOTCUA_LIMIT_ADDRESS": "1000/minute", "MOTCUA_REFUSAL_DELAY": "0"})
    async with open_offices(settings, assistant.kb) as offices:
        server = await build(settings, assistant.kb, offices)
        try:
            async with TestClient(TestServer(server.app)) as http:
                yield http
        finally:
            for close in server.closing:
                await close()


async def test_each_communes_chat_and_page_give_its_own_fee(
        web_chat: TestClient[object, object]) -> None:
    question = "lệ phí khai tử nộp online bao nhiêu"
    hat_mon = (await Chat(web_chat).send(text=question))["replies"][0]["text"]
    phuc_tho = (await Chat(web_chat, "phuc-tho").send(text=question))["replies"][0]["text"]
    assert "8.000" in hat_mon and "01/2026/NQ-HĐND" in hat_mon
    assert "02/2026/NQ-HĐND" in phuc_tho and "Miễn" in phuc_tho
    pages = {c: await (await web_chat.get(f"/c/{c}/thu-tuc/{DEATH}")).text()
             for c in ("hat-mon", "phuc-tho")}
    assert "8.000" in pages["hat-mon"] and "02/2026/NQ-HĐND" not in pages["hat-mon"]
    assert "02/2026/NQ-HĐND" in pages["phuc-tho"] and "8.000" in pages["phuc-tho"]
