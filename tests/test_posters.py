"""Notice-board posters: the QR codes decode to the right links, the PDF's text is the
procedure's in correct Vietnamese, and the web page the codes open shows the card."""

import re
import unicodedata
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import zxingcpp
from aiohttp.test_utils import TestClient, TestServer
from PIL import Image
from pypdf import PdfReader

from bot.cli import main
from bot.posters import Links, make_posters
from bot.settings import Settings
from bot.web import create_app
from handlers.applications import Office
from knowledge.answer import Assistant
from knowledge.i18n import Text

LINKS = Links(telegram_bot="hatmon_motcua_bot", zalo_oa="2413078913421459321",
              base_url="https://motcua.hatmon.example.vn")


def decoded(png: Path) -> set[str]:
    """Every QR code in an image, as the text it holds."""
    with Image.open(png) as image:
        return {code.text for code in zxingcpp.read_barcodes(image)
                if code.format == zxingcpp.BarcodeFormat.QRCode}


def pdf_text(pdf: Path) -> str:
    """The PDF's text, page after page, as one normalised string."""
    text = "\n".join(page.extract_text() for page in PdfReader(pdf).pages)
    return unicodedata.normalize("NFC", re.sub(r"\s+", " ", text))


@pytest.fixture(scope="module")
def posters(tmp_path_factory: pytest.TempPathFactory, assistant: Assistant) -> Path:
    """Posters for four procedures (a long document list among them) and eleven on a sheet."""
    out = tmp_path_factory.mktemp("posters")
    codes = ["1.001193", "1.004222", "1.000656", "1.001731"]
    others = [c for c in sorted(assistant.kb.bundled_codes) if c not in codes][:7]
    make_posters(assistant, LINKS, out, codes)
    make_posters(assistant, LINKS, out / "sheet", [*codes, *others])
    return out


@pytest.mark.parametrize("code", ["1.001193", "1.004222", "1.000656", "1.001731"])
def test_each_poster_points_to_its_procedure(posters: Path, code: str) -> None:
    telegram = f"https://t.me/hatmon_motcua_bot?start=p_{code.replace('.', '_')}"
    assert decoded(posters / f"thu-tuc-{code}.png") == {
        telegram, "https://zalo.me/2413078913421459321",
        f"https://motcua.hatmon.example.vn/thu-tuc/{code}"}
    # Telegram takes at most 64 letters, digits, _ and - after ?start=
    [start] = parse_qs(urlsplit(telegram).query)["start"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", start)


def test_poster_text_is_the_procedures_in_vietnamese(posters: Path) -> None:
    text = pdf_text(posters / "thu-tuc-1.001193.pdf")
    assert "Làm giấy khai sinh" in text
    assert "Tên chính thức: Thủ tục đăng ký khai sinh" in text
    assert "Mã thủ tục: 1.001193" in text
    assert "Lệ phí: Miễn phí" in text
    assert "Thời gian giải quyết: 1 ngày làm việc" in text
    assert "Giấy chứng sinh" in text
    assert "Bộ phận một cửa Xã Hát Môn" in text


def test_a_long_document_list_points_to_the_rest(posters: Path) -> None:
    text = pdf_text(posters / "thu-tuc-1.004222.pdf")
    assert "Đăng ký thường trú (nhập khẩu)" in text
    assert "Trực tiếp: 20.000" in text and "Trực tuyến: 10.000" in text
    assert re.search(r"… và \d+ giấy tờ khác: quét mã QR bên dưới để xem đầy đủ", text)


def test_fee_set_by_the_province_or_unpublished_is_said_so(posters: Path) -> None:
    t = Text("vi")
    province = t("Set by the provincial People's Council; the amount varies by province")
    assert f"Lệ phí: {province}" in pdf_text(posters / "thu-tuc-1.000656.pdf")
    unpublished = t("The national portal publishes no fee for this")
    assert f"Lệ phí: {unpublished}" in pdf_text(posters / "thu-tuc-1.001731.pdf")


def test_notice_sheet_has_a_code_per_procedure_on_each_page(posters: Path,
                                                            assistant: Assistant) -> None:
    sheet = posters / "sheet"
    codes = sorted(p.name[len("thu-tuc-"):-len(".pdf")] for p in sheet.glob("thu-tuc-*.pdf"))
    assert len(codes) == 11
    first, second = decoded(sheet / "bang-tin-1.png"), decoded(sheet / "bang-tin-2.png")
    assert len(first) == 10 and len(second) == 1
    assert first | second == {f"https://motcua.hatmon.example.vn/thu-tuc/{c}" for c in codes}
    text = pdf_text(sheet / "bang-tin.pdf")
    assert all(assistant.short_name(c, Text("vi")) in text for c in codes)
    assert len(PdfReader(sheet / "bang-tin.pdf").pages) == 2


def test_service_poster(posters: Path) -> None:
    assert decoded(posters / "dich-vu.png") == {
        "https://t.me/hatmon_motcua_bot", "https://zalo.me/2413078913421459321",
        "https://motcua.hatmon.example.vn/"}
    text = pdf_text(posters / "dich-vu.pdf")
    assert "Xã Hát Môn" in text and "Trợ lý số của bộ phận một cửa" in text
    assert "Đường dây hỗ trợ: tổng đài hỗ trợ của Trung tâm Phục vụ hành chính công" in text


def test_unset_links_are_left_out(tmp_path: Path, assistant: Assistant) -> None:
    web_only = Links(base_url="https://motcua.hatmon.example.vn")
    make_posters(assistant, web_only, tmp_path, ["1.001193"])
    assert decoded(tmp_path / "thu-tuc-1.001193.png") == {
        "https://motcua.hatmon.example.vn/thu-tuc/1.001193"}
    assert len(Links().missing()) == 3 and web_only.missing() == [
        "TELEGRAM_BOT_USERNAME is not set: the posters have no Telegram code",
        "ZALO_OA_ID is not set: the posters have no Zalo code"]


def test_cli_writes_the_posters_from_the_settings(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)  # no .env of the checkout
    monkeypatch.setenv("TELEGRAM_BOT_USERNAME", "@hatmon_motcua_bot")
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://motcua.hatmon.example.vn/")
    monkeypatch.delenv("ZALO_OA_ID", raising=False)
    assert main(["posters", "--out", str(tmp_path / "out"), "--codes", "1.001193"]) == 0
    assert "ZALO_OA_ID is not set" in capsys.readouterr().err
    assert decoded(tmp_path / "out" / "thu-tuc-1.001193.png") == {
        "https://t.me/hatmon_motcua_bot?start=p_1_001193",
        "https://motcua.hatmon.example.vn/thu-tuc/1.001193"}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "bang-tin.pdf", "bang-tin.png", "dich-vu.pdf", "dich-vu.png",
        "thu-tuc-1.001193.pdf", "thu-tuc-1.001193.png"]
    with pytest.raises(SystemExit, match=r"no procedure with the code 9\.999999"):
        main(["posters", "--out", str(tmp_path / "out"), "--codes", "9.999999"])


@pytest.fixture
async def client(assistant: Assistant, office: Office
                 ) -> AsyncIterator[TestClient[object, object]]:
    app = create_app(assistant, office, settings=Settings(secret_key="test-secret"))
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def test_procedure_page_shows_the_card(client: TestClient[object, object]) -> None:
    response = await client.get("/thu-tuc/1.001193")
    assert response.status == 200
    assert response.content_type == "text/html"
    page = await response.text()
    assert "<h1>Làm giấy khai sinh</h1>" in page
    for part in ("Thủ tục đăng ký khai sinh (mã 1.001193)", "<h2>Giấy tờ cần chuẩn bị</h2>",
                 "Giấy chứng sinh (1 bản chính)", "<h2>Lệ phí</h2>", "Miễn phí",
                 "<h2>Thời gian giải quyết</h2>", "<h2>Nơi nộp</h2>", "<h2>Căn cứ pháp lý</h2>",
                 "Luật Hộ tịch 60/2014/QH13", '<a class="ask" href="../">Hỏi trợ lý</a>',
                 '<a href="https://dichvucong.gov.vn/'):
        assert part in page
    english = await (await client.get("/thu-tuc/1.001193?lang=en")).text()
    assert "Birth registration" in english and "Ask the assistant" in english


async def test_unknown_procedure_is_a_vietnamese_404(client: TestClient[object, object]) -> None:
    response = await client.get("/thu-tuc/%3Cscript%3Ealert(1)%3C%2Fscript%3E")
    assert response.status == 404
    page = await response.text()
    assert "Không tìm thấy thủ tục" in page
    assert "Không có thủ tục nào mang mã &lt;script&gt;alert(1)&lt;/script&gt;." in page
    assert "<script>" not in page
    assert (await client.get("/thu-tuc/9.999999")).status == 404
