"""The national-portal importer: what a citizen would be told from an imported entry."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import re
from pathlib import Path

import pytest

from knowledge.loader import load_procedure
from knowledge.portal import (
    DEFAULT_FACTS_DATE,
    IMPORT_NOTE,
    PortalRecordError,
    parse_record,
    read_portal,
    write_toml,
)
from knowledge.schema import Channel, FeeStatus, Method, Procedure, TimeUnit

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "dichvucong"
COMMUNE_FILE = DATA / "procedures-cap-xa.jsonl"
ALL_FILE = DATA / "procedures-all.jsonl.gz"

needs_data = pytest.mark.skipif(
    not DATA.is_dir(),
    reason=f"portal export folder {DATA} is absent (reference data, not committed)",
)

HEADER = "Hình thức nộpThời gianPhí, lệ phíMô tả"


def record(code: str = "1.000001", methods: str = "", **fields: object) -> dict[str, object]:
    """A small portal record in the export's shape."""
    base: dict[str, object] = {
        "ma_thu_tuc": code,
        "detail_url": "https://dichvucong.gov.vn/thu-tuc-hanh-chinh/abc",
        "ten_thu_tuc": "Thủ tục thử",
        "cap_thuc_hien": "Cấp xã",
        "linh_vuc": "Hộ tịch",
        "doi_tuong_thuc_hien": "Công dân Việt Nam",
        "co_quan_co_tham_quyen": "Ủy ban nhân dân cấp xã",
        "co_quan_thuc_hien": "Ủy ban nhân dân cấp xã",
        "trinh_tu_thuc_hien": "Bước 1: Nộp hồ sơ.\n\nBước 2: Nhận kết quả.",
        "cach_thuc_thuc_hien": HEADER + methods,
        "thanh_phan_ho_so": "",
        "can_cu_phap_ly": "Không có thông tin",
        "yeu_cau_dieu_kien": "Không có thông tin",
        "ket_qua_xu_ly": "Giấy xác nhậnMã: KQ.G01.000001Từ khóaKhông có thông tinMô tả",
    }
    base.update(fields)
    return base


def by_channel(procedure: Procedure) -> dict[Channel, Method]:
    return {m.channel: m for m in procedure.methods}


def portal_record(path: Path, code: str) -> dict[str, object]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            data: dict[str, object] = json.loads(line)
            if data["ma_thu_tuc"] == code:
                return data
    raise LookupError(code)


# --- real records -----------------------------------------------------------------------------


@needs_data
def test_permanent_residence_fees_differ_by_channel() -> None:
    proc = parse_record(portal_record(COMMUNE_FILE, "1.004222"))
    methods = by_channel(proc)
    assert methods[Channel.IN_PERSON].fee_status is FeeStatus.AMOUNT
    assert methods[Channel.IN_PERSON].fee_vnd == 20_000
    assert methods[Channel.ONLINE].fee_vnd == 10_000
    for m in methods.values():
        assert (m.time_value, m.time_unit, m.time_confirmed) == (7, TimeUnit.WORKING_DAYS, True)
        assert m.fee_confirmed
    assert proc.online_url == proc.source_url


@needs_data
def test_birth_registration_bare_time_is_unspecified_and_unconfirmed() -> None:
    proc = parse_record(portal_record(COMMUNE_FILE, "1.001193"))
    assert set(by_channel(proc)) == {Channel.IN_PERSON, Channel.POST, Channel.ONLINE}
    for m in proc.methods:
        assert m.time_value == 1
        assert m.time_unit is TimeUnit.UNSPECIFIED
        assert not m.time_confirmed
        assert m.fee_status is FeeStatus.FREE
    assert proc.has_unconfirmed
    # The agency field is "Không có thông tin" on the portal: the level is used instead.
    assert proc.agency == "Cấp xã"
    numbers = {d.number: d.title for d in proc.legal_basis}
    assert {"60/2014/QH13", "123/2015/NĐ-CP", "08/2025/TT-BTP"} <= set(numbers)
    assert "hộ tịch điện tử" in numbers["87/2020/NĐ-CP"]
    assert proc.result == "Giấy khai sinh"


@needs_data
def test_fee_set_by_provincial_council_is_province() -> None:
    proc = parse_record(portal_record(ALL_FILE, "1.001266"))
    for m in proc.methods:
        assert m.fee_status is FeeStatus.PROVINCE
        assert m.fee_vnd is None
        assert "Hội đồng nhân dân" in m.fee_note


@needs_data
def test_temporary_fee_reduction_is_not_confirmed() -> None:
    # The headline says 5,000 VND online but the note says 7.000 đồng: not stated as fact.
    online = by_channel(parse_record(portal_record(COMMUNE_FILE, "1.002755")))[Channel.ONLINE]
    assert online.fee_vnd == 5_000
    assert not online.fee_confirmed
    assert "7.000" in online.fee_note


@needs_data
@pytest.mark.parametrize(("path", "count"), [(COMMUNE_FILE, 588), (ALL_FILE, 2642)])
def test_every_portal_record_imports(path: Path, count: int) -> None:
    result = read_portal(path)
    assert result.problems == []
    assert len(result.procedures) == count
    assert all(p.methods and p.notes == IMPORT_NOTE for p in result.procedures)


@needs_data
def test_confirmed_values_are_written_on_the_portal() -> None:
    """Never invent: a confirmed amount or time appears in the record's own text."""
    with gzip.open(ALL_FILE, "rt", encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle]
    parsed_time = parsed_fee = total = 0
    for data in records:
        proc = parse_record(data)
        text = str(data["cach_thuc_thuc_hien"])
        for m in proc.methods:
            if m.fee_status is FeeStatus.AMOUNT and m.fee_confirmed:
                assert f"{m.fee_vnd:,}" in text or str(m.fee_vnd) in text, proc.code
            if m.time_value is not None and m.time_confirmed:
                assert re.search(rf"(?<!\d){m.time_value:g}\s*(Ngày|Giờ)", text), proc.code
            parsed_time += m.time_confirmed
            parsed_fee += m.fee_confirmed
            total += 1
    # Measured on the July 2026 crawl: 5,617 times and 5,863 fees of 6,844 methods.
    assert parsed_time / total > 0.8
    assert parsed_fee / total > 0.8


@needs_data
def test_commune_records_round_trip_through_toml(tmp_path: Path) -> None:
    for proc in read_portal(COMMUNE_FILE).procedures:
        assert load_procedure(write_toml(proc, tmp_path)) == proc


# --- submission methods -----------------------------------------------------------------------


def test_working_days_and_amount() -> None:
    proc = parse_record(
        record(methods="Trực tiếp7 Ngày làm việc10,000 Việt Nam Đồng(10.000 đồng/lần)Nộp tại xã")
    )
    (m,) = proc.methods
    assert (m.channel, m.time_value, m.time_unit) == (Channel.IN_PERSON, 7, TimeUnit.WORKING_DAYS)
    assert (m.fee_status, m.fee_vnd, m.fee_confirmed) == (FeeStatus.AMOUNT, 10_000, True)
    assert m.fee_note == "10.000 đồng/lần"
    assert proc.online_url == ""


def test_days_hours_and_free() -> None:
    proc = parse_record(
        record(methods="Trực tuyến15 NgàyMiễn phíDịch vụ bưu chính1 GiờKhôngTrực tiếp8 GiờMiễn phí")
    )
    methods = by_channel(proc)
    assert methods[Channel.ONLINE].time_unit is TimeUnit.DAYS
    assert methods[Channel.POST].time_unit is TimeUnit.HOURS
    assert all(m.fee_status is FeeStatus.FREE and m.fee_confirmed for m in proc.methods)
    assert proc.online_url.startswith("https://")


def test_no_information_fee_is_not_published() -> None:
    (m,) = parse_record(record(methods="Trực tiếp7 NgàyKhông có thông tinNộp tại xã")).methods
    assert m.fee_status is FeeStatus.NOT_PUBLISHED
    assert m.fee_vnd is None


def test_free_with_amounts_in_the_note_is_not_confirmed() -> None:
    (m,) = parse_record(
        record(methods="Trực tiếp12 NgàyMiễn phí(Cho một loại hình: 8.000.000/lần.)")
    ).methods
    assert m.fee_status is FeeStatus.FREE
    assert not m.fee_confirmed
    assert "8.000.000" in m.fee_note


def test_time_glued_to_fee_is_not_guessed() -> None:
    # "120 VNĐ(20.000 vnđ/tờ khai)": a bare time "1" and a fee missing its thousands.
    (m,) = parse_record(record(methods="Trực tuyến120 VNĐ(20.000 vnđ /tờ khai)")).methods
    assert m.fee_status is FeeStatus.NOT_PUBLISHED
    assert m.fee_vnd is None
    assert not m.fee_confirmed and not m.time_confirmed
    assert "120 VNĐ" in m.fee_note


def test_foreign_currency_is_not_converted() -> None:
    (m,) = parse_record(record(methods="Trực tiếp5 Ngày làm việc145 USD(145 USD/thẻ.)")).methods
    assert m.fee_status is FeeStatus.NOT_PUBLISHED
    assert not m.fee_confirmed
    assert "145 USD" in m.fee_note
    assert m.time_confirmed


def test_free_text_time_is_kept_as_a_note() -> None:
    text = "Trực tuyếnKhông phải trả kết quả cho người nộp thuếMiễn phíQua Cổng"
    (m,) = parse_record(record(methods=text)).methods
    assert m.time_value is None and not m.time_confirmed
    assert m.time_note == "Không phải trả kết quả cho người nộp thuế"
    assert m.fee_status is FeeStatus.FREE


def test_months_have_no_unit_in_the_schema() -> None:
    (m,) = parse_record(record(methods="Trực tiếp3 ThángMiễn phí")).methods
    assert m.time_value is None
    assert m.time_note == "3 Tháng"
    assert not m.time_confirmed


def test_channel_words_inside_a_description_do_not_start_a_row() -> None:
    text = "Trực tiếp5 Ngày làm việcMiễn phíNộp trực tiếp hoặc Trực tuyến qua Cổng dịch vụ công"
    assert [m.channel for m in parse_record(record(methods=text)).methods] == [Channel.IN_PERSON]


def test_labelled_fee() -> None:
    (m,) = parse_record(record(methods="Trực tiếp2 NgàyPhí : 50.000 Đồng")).methods
    assert (m.fee_status, m.fee_vnd) == (FeeStatus.AMOUNT, 50_000)


def test_unparseable_methods_fall_back_to_unconfirmed_channels() -> None:
    empty = parse_record(record(methods=""))
    (m,) = empty.methods
    assert m.channel is Channel.IN_PERSON
    assert m.fee_status is FeeStatus.NOT_PUBLISHED
    assert not (m.fee_confirmed or m.time_confirmed)

    prose = parse_record(record(methods="Nộp hồ sơ trực tuyến hoặc qua dịch vụ bưu chính."))
    assert set(by_channel(prose)) == {Channel.ONLINE, Channel.POST}
    assert prose.online_url == prose.source_url


# --- other fields -----------------------------------------------------------------------------


def test_documents_with_counts_groups_and_templates() -> None:
    text = (
        "* Giấy tờ phải nộp:Tên giấy tờMẫu đơn, tờ khaiSố lượng"
        "Tờ khai đăng ký (mẫu CT01)Mau CT01.docx1 bản chính"
        "Giấy chứng nhận kết hôn0 bản chính,1 bản sao"
        "Đơn theo Mẫu số 181 bản chính"
        "* Giấy tờ phải xuất trình:Tên giấy tờMẫu đơn, tờ khaiSố lượngThẻ căn cước1 bản chính"
    )
    docs = parse_record(record(thanh_phan_ho_so=text)).documents
    assert [(d.name, d.originals, d.copies, d.present_only) for d in docs] == [
        ("Tờ khai đăng ký (mẫu CT01)", 1, 0, False),
        ("Giấy chứng nhận kết hôn", 0, 1, False),
        ("Đơn theo Mẫu số 18", 1, 0, False),
        ("Thẻ căn cước", 1, 0, True),
    ]


def test_long_document_names_are_shortened() -> None:
    text = (
        "--Tên giấy tờMẫu đơn, tờ khaiSố lượng" + " ".join(["Giấy tờ rất dài"] * 40) + "1 bản chính"
    )
    (doc,) = parse_record(record(thanh_phan_ho_so=text)).documents
    assert len(doc.name) <= 301 and doc.name.endswith("…")


def test_legal_basis_numbers_and_titles() -> None:
    text = (
        "Tên văn bản pháp lýMã văn bản"
        "Luật Nhập cảnh, xuất cảnh của người nước ngoài tại Việt NamLuật 47/2014/QH13"
        "Nghị định 126/2020/NĐ-CP126/2020/NĐ-CP"
        "Quyết định số 24/2021/QĐ-TTg ngày 1/7/2021 của Thủ tướng24/2021/QĐ-TTg"
        "Quyết định công bố2353/QĐ-BTC"
        "Thông tư phân định thẩm quyền08/2025/TT-BTPLuật Hộ tịch60/2014/QH13"
    )
    basis = {d.number: d.title for d in parse_record(record(can_cu_phap_ly=text)).legal_basis}
    assert list(basis) == [
        "47/2014/QH13",
        "126/2020/NĐ-CP",
        "24/2021/QĐ-TTg",
        "2353/QĐ-BTC",
        "08/2025/TT-BTP",
        "60/2014/QH13",
    ]
    assert basis["47/2014/QH13"] == "Luật Nhập cảnh, xuất cảnh của người nước ngoài tại Việt Nam"
    assert basis["08/2025/TT-BTP"] == "Thông tư phân định thẩm quyền"
    assert basis["60/2014/QH13"] == "Luật Hộ tịch"


def test_record_level_fields() -> None:
    proc = parse_record(
        record(
            co_quan_thuc_hien="Không có thông tin",
            co_quan_co_tham_quyen="Không có thông tin",
            yeu_cau_dieu_kien="Người yêu cầu phải đủ 18 tuổi.",
            ket_qua_xu_ly="Giấy phépMã: KQ.G01.000001Văn bản từ chốiMã: 000.00.00.G04-KQ2350"
            "Từ khóaKhông có thông tin",
        ),
        facts_date=dt.date(2026, 8, 1),
    )
    assert proc.agency == "Cấp xã"
    assert proc.name_en == "Procedure 1.000001"
    assert proc.summary == "Thủ tục thử (lĩnh vực Hộ tịch, cấp xã)."
    assert "commune level" in proc.summary_en
    assert proc.steps == ["Bước 1: Nộp hồ sơ.", "Bước 2: Nhận kết quả."]
    assert proc.eligibility == "Người yêu cầu phải đủ 18 tuổi."
    assert proc.result == "Giấy phép; Văn bản từ chối"
    assert proc.facts_date == dt.date(2026, 8, 1)
    assert parse_record(record()).facts_date == DEFAULT_FACTS_DATE
    assert parse_record(record()).eligibility == ""


@pytest.mark.parametrize("url", ["http://dichvucong.gov.vn/x", "", None])
def test_source_url_falls_back_to_the_portal_page(url: str | None) -> None:
    proc = parse_record(record(detail_url=url))
    assert proc.source_url == (
        "https://dichvucong.gov.vn/p/home/dvc-tthc-thu-tuc-hanh-chinh-chi-tiet.html"
        "?ma_thu_tuc=1.000001"
    )


@pytest.mark.parametrize(("code", "reason"), [("", "missing"), ("TTHC-01", "not a national")])
def test_bad_code_is_rejected(code: str, reason: str) -> None:
    with pytest.raises(PortalRecordError, match=reason):
        parse_record(record(code=code))


# --- files ------------------------------------------------------------------------------------


def test_broken_lines_are_reported_and_others_import(tmp_path: Path) -> None:
    lines = [
        json.dumps(record("1.000001", methods="Trực tiếp1 NgàyMiễn phí")),
        '{"ma_thu_tuc": "1.000002", ',  # cut short
        json.dumps({k: v for k, v in record("1.000003").items() if k != "ma_thu_tuc"}),
        json.dumps(record("9-999")),
        "",
        json.dumps(record("1.000005", methods="Trực tiếp2 NgàyMiễn phí")),
        json.dumps(record("1.000001", methods="Trực tiếp3 NgàyMiễn phí")),
    ]
    path = tmp_path / "export.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = read_portal(path)
    codes = {p.code: p for p in result.procedures}
    assert sorted(codes) == ["1.000001", "1.000005"]
    assert codes["1.000001"].methods[0].time_value == 3  # the later line wins
    assert [p.split(": ", 1)[0] for p in result.problems] == [
        f"{path}:2",
        f"{path}:3",
        f"{path}:4",
        f"{path}:7",
    ]
    assert "invalid JSON" in result.problems[0]
    assert "missing ma_thu_tuc" in result.problems[1]
    assert "9-999" in result.problems[2]
    assert "duplicate code 1.000001" in result.problems[3]


def test_gzip_export(tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write(json.dumps(record()) + "\nnot json\n")
    result = read_portal(path, facts_date=dt.date(2026, 1, 2))
    assert [p.facts_date for p in result.procedures] == [dt.date(2026, 1, 2)]
    assert result.problems[0].startswith(f"{path}:2: invalid JSON")


def test_write_toml_round_trips(tmp_path: Path) -> None:
    proc = parse_record(
        record(
            methods="Trực tuyến1Miễn phíTrực tiếp7 Ngày làm việc20,000 Việt Nam Đồng(ghi chú)",
            thanh_phan_ho_so="--Tên giấy tờMẫu đơn, tờ khaiSố lượngTờ khai1 bản chính",
            can_cu_phap_ly="Tên văn bản pháp lýMã văn bảnLuật Hộ tịch60/2014/QH13",
        )
    )
    path = write_toml(proc, tmp_path / "out")
    assert path == tmp_path / "out" / "1.000001.toml"
    assert "facts_date = 2026-07-17" in path.read_text(encoding="utf-8")
    assert load_procedure(path) == proc
