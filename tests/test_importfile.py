"""Importing one-stop system exports: what staff see when they upload a CSV or XLSX file."""

import re
import unicodedata
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from openpyxl import Workbook  # type: ignore[import-untyped]

from storage.domain import ApplicationStatus, SubmissionChannel
from storage.importfile import ImportFileError, ImportLimits, read_applications

VI_HEADER = ("Mã hồ sơ,Mã thủ tục,Tên thủ tục,Người nộp,Số điện thoại,Hình thức nộp,"
             "Ngày tiếp nhận,Ngày hẹn trả,Trạng thái,Ngày trả kết quả")


def write(tmp_path: Path, text: str, name: str = "export.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def utc(year: int, month: int, day: int, hour: int, minute: int = 0, second: int = 0
        ) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def test_vietnamese_headers_give_normalized_rows_in_utc(tmp_path: Path) -> None:
    path = write(tmp_path, f"{VI_HEADER}\n000.00.19.h26-251124-0001 ,1.001193,Đăng ký khai sinh,"
                           "Nguyễn Văn An,+84 912 345 678,Trực tuyến,24/11/2026 08:30,25/11/2026,"
                           "Đang xử lý,\n")
    result = read_applications(path)
    assert result.errors == []
    [row] = result.rows
    assert row.line == 2
    assert row.receipt_code == "000.00.19.H26-251124-0001"
    assert row.procedure_code == "1.001193"
    assert row.procedure_name == "Đăng ký khai sinh"
    assert row.applicant_name == "Nguyễn Văn An"
    assert row.phone == "0912345678"
    assert row.channel is SubmissionChannel.ONLINE
    assert row.status is ApplicationStatus.PROCESSING
    assert row.received_at == utc(2026, 11, 24, 1, 30)  # 08:30 in Hà Nội is 01:30 UTC
    assert row.due_at == utc(2026, 11, 25, 10, 0)  # a due date means the end of that day
    assert row.completed_at is None


def test_timezone_conversion_follows_the_commune_zone(tmp_path: Path) -> None:
    path = write(tmp_path, "Mã hồ sơ,Tên thủ tục,Người nộp,Hình thức nộp,Ngày tiếp nhận,"
                           "Trạng thái\n"
                           "H26-0001,Khai sinh,An,Trực tiếp,24/11/2026 08:30,Tiếp nhận\n"
                           "H26-0002,Khai sinh,Bình,Trực tiếp,24/11/2026,Tiếp nhận\n")
    first, second = read_applications(path, tz=ZoneInfo("Asia/Ho_Chi_Minh")).rows
    assert first.received_at == utc(2026, 11, 24, 1, 30)
    assert second.received_at == utc(2026, 11, 24, 1, 0)  # date only: 08:00, office opening
    tokyo = read_applications(path, tz=ZoneInfo("Asia/Tokyo")).rows[0]
    assert tokyo.received_at == utc(2026, 11, 23, 23, 30)


def test_headers_without_diacritics_in_any_case(tmp_path: Path) -> None:
    path = write(tmp_path, "MA HO SO, ma thu tuc ,NGUOI NOP,Hinh thuc  nop,ngay tiep nhan,"
                           "TRANG THAI,so bien nhan cu\n"
                           "H26-0001,1.000656,Trần Thị Bích,truc tiep,01-11-2026 14:05:09,"
                           "da tra ket qua,x\n")
    [row] = read_applications(path).rows
    assert row.channel is SubmissionChannel.IN_PERSON
    assert row.status is ApplicationStatus.RETURNED
    assert row.received_at == utc(2026, 11, 1, 7, 5, 9)
    assert row.procedure_name is None
    assert row.completed_at is None  # returned without a date is kept: the date is unknown


def test_english_headers_and_iso_dates(tmp_path: Path) -> None:
    path = write(tmp_path, "receipt_code,procedure_code,procedure_name,applicant_name,phone,"
                           "channel,received_at,due_at,status,completed_at\n"
                           "H26-0001,1.001193,Birth,Lê Phúc,0243 8123 456,post,"
                           "2026-11-24T08:30:00+07:00,2026-11-26,result_ready,"
                           "2026-11-25 09:00Z\n")
    [row] = read_applications(path).rows
    assert row.channel is SubmissionChannel.POST
    assert row.phone == "02438123456"
    assert row.received_at == utc(2026, 11, 24, 1, 30)
    assert row.due_at == utc(2026, 11, 26, 10, 0)
    assert row.completed_at == utc(2026, 11, 25, 9, 0)


def test_semicolon_csv_with_bom_as_excel_saves_it(tmp_path: Path) -> None:
    path = write(tmp_path, "\ufeffSTT;Mã hồ sơ;Tên thủ tục;Người nộp;Địa chỉ;Hình thức nộp;"
                           "Ngày tiếp nhận;Trạng thái\r\n"
                           "1;H26-0001;Chứng thực bản sao;Phạm Hương;Thôn 3, xã Hát Môn;"
                           "Bưu chính;24/11/2026 8:30;Chờ trả kết quả\r\n")
    result = read_applications(path)
    assert result.errors == []
    [row] = result.rows
    assert row.receipt_code == "H26-0001"
    assert row.procedure_name == "Chứng thực bản sao"
    assert row.status is ApplicationStatus.RESULT_READY
    assert row.received_at == utc(2026, 11, 24, 1, 30)


def test_xlsx_with_real_date_cells_and_a_title_row(tmp_path: Path) -> None:
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["DANH SÁCH HỒ SƠ THÁNG 11/2026"])
    sheet.append(VI_HEADER.split(","))
    sheet.append(["H26-0001", 1.00119, "Khai tử", "An", 912345678, "Trực tuyến",
                  datetime(2026, 11, 24, 8, 30), datetime(2026, 11, 27), "Đã trả kết quả",
                  datetime(2026, 11, 26, 16, 0)])
    sheet.cell(row=3, column=8).number_format = "dd/mm/yyyy"  # a date cell, no time shown
    sheet.append(["H26-0002", "1.001193", None, "Bình", None, "Trực tiếp", "25/11/2026 10:00",
                  None, "Tiếp nhận", None])
    path = tmp_path / "export.xlsx"
    workbook.save(path)

    result = read_applications(path)
    assert result.errors == []
    first, second = result.rows
    assert (first.line, second.line) == (3, 4)  # Excel's row numbers
    assert first.procedure_code == "1.001190"  # Excel had made the code a number
    assert first.phone == "0912345678"  # and dropped the phone's leading zero
    assert first.received_at == utc(2026, 11, 24, 1, 30)
    assert first.due_at == utc(2026, 11, 27, 10, 0)
    assert first.completed_at == utc(2026, 11, 26, 9, 0)
    assert second.received_at == utc(2026, 11, 25, 3, 0)


def test_every_bad_row_is_reported_and_good_rows_are_kept(tmp_path: Path) -> None:
    path = write(tmp_path, f"""{VI_HEADER}
H26-0001,1.001193,,An,,Trực tuyến,24/11/2026 08:30,,Đang xử lý,
H26-0002,1.001193,,Bình,,Trực tuyến,31/02/2026,,Đang xử lý,

??,1.001193,,Chi,,Qua mạng,24/11/2026,,Đang chờ,
H26-0004,1.001193,,,,Trực tiếp,24/11/2026,23/11/2026,Đã trả,20/11/2026 10:00
H26-0005,1.001193,,Dũng,,Trực tiếp,24/11/2026,,Đang xử lý,
""")
    result = read_applications(path)
    assert [row.receipt_code for row in result.rows] == ["H26-0001", "H26-0005"]
    assert [row.line for row in result.rows] == [2, 7]  # the empty line 4 still counts
    messages = [(e.line, e.message) for e in result.errors]
    assert (3, "Ngày tiếp nhận: '31/02/2026' is not a date (dd/mm/yyyy[ HH:MM] or ISO 8601)"
            ) in messages
    line5 = [m for line, m in messages if line == 5]
    assert any(m.startswith("Mã hồ sơ: '??' is not a receipt code") for m in line5)
    assert any(m.startswith("Hình thức nộp: 'Qua mạng' is not a known channel (accepted: ")
               and "truc tuyen" in m for m in line5)
    assert any(m.startswith("Trạng thái: 'Đang chờ' is not a known status (accepted: ")
               and "dang xu ly" in m for m in line5)
    assert sorted(m for line, m in messages if line == 6) == [
        "Ngày hẹn trả: '23/11/2026' is before Ngày tiếp nhận '24/11/2026'",
        "Ngày trả kết quả: '20/11/2026 10:00' is before Ngày tiếp nhận '24/11/2026'",
        "Người nộp: empty",
    ]
    assert {line for line, _ in messages} == {3, 5, 6}


def test_missing_procedure_and_bad_phone_are_row_errors(tmp_path: Path) -> None:
    path = write(tmp_path, f"""{VI_HEADER}
H26-0001,,,An,12345,Trực tuyến,24/11/2026,,Đang xử lý,
H26-0002,abc,,Bình,,Trực tuyến,24/11/2026,,Đang xử lý,
""")
    result = read_applications(path)
    assert result.rows == []
    assert [(e.line, e.message) for e in result.errors] == [
        (2, "Mã thủ tục / Tên thủ tục: empty"),
        (2, "Số điện thoại: '12345' is not a phone number"),
        (3, "Mã thủ tục: 'abc' is not a national procedure code (like 1.001193)"),
    ]


def test_duplicate_receipt_code_names_the_first_line(tmp_path: Path) -> None:
    path = write(tmp_path, f"""{VI_HEADER}
H26-0001,1.001193,,An,,Trực tuyến,24/11/2026,,Đang xử lý,
H26-0002,1.001193,,Bình,,Trực tuyến,24/11/2026,,Đang xử lý,
h26 - 0001,1.001193,,Chi,,Trực tuyến,24/11/2026,,Đang xử lý,
""")
    result = read_applications(path)
    assert [row.line for row in result.rows] == [2, 3]
    assert [(e.line, e.message) for e in result.errors] == [
        (4, "Mã hồ sơ: 'H26-0001' already appears on line 2"),
    ]


def test_missing_columns_are_listed(tmp_path: Path) -> None:
    path = write(tmp_path, "Mã hồ sơ,Người nộp,Ghi chú\nH26-0001,An,\n")
    with pytest.raises(ImportFileError) as caught:
        read_applications(path)
    message = str(caught.value)
    assert "missing columns: Hình thức nộp (channel); Ngày tiếp nhận (received_at); " \
           "Trạng thái (status); Mã thủ tục (procedure_code) or Tên thủ tục (procedure_name)" \
           in message
    assert "Columns found: 'Mã hồ sơ', 'Người nộp', 'Ghi chú'" in message


TONES = "\u0300\u0301\u0303\u0309\u0323"  # the combining marks Windows-1258 has


def windows_1258(text: str) -> bytes:
    """Text as Vietnamese Windows saves it: tone marks as separate combining characters."""
    out = b""
    for char in text:
        try:
            out += char.encode("cp1258")
        except UnicodeEncodeError:
            marks = unicodedata.normalize("NFD", char)
            tones = "".join(m for m in marks if m in TONES)
            base = unicodedata.normalize("NFC", "".join(m for m in marks if m not in TONES))
            out += (base + tones).encode("cp1258")
    return out


def test_a_windows_1258_file_is_refused_with_how_to_fix(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(windows_1258(
        f"{VI_HEADER}\nH26-0001,1.001193,,Ngô Bảo Châu,,Trực tuyến,24/11/2026,,Đang xử lý,\n"))
    with pytest.raises(ImportFileError) as caught:
        read_applications(path)
    assert str(caught.value) == (
        "export.csv is not UTF-8 text (byte 0xDE on line 1). In Excel, save it with "
        "'Save as type: CSV UTF-8 (Comma delimited) (*.csv)' and import it again")


def test_a_latin1_file_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "Ma ho so,Nguoi nop\nH26-0001,Ngô Châu\n", encoding="latin-1")
    with pytest.raises(ImportFileError, match=r"is not UTF-8 text .*CSV UTF-8"):
        read_applications(path)


def test_non_utf8_bytes_deep_in_a_large_file_are_refused(tmp_path: Path) -> None:
    good = "H26-{:04d},1.001193,,An,,Trực tuyến,24/11/2026,,Đang xử lý,\n"
    text = VI_HEADER + "\n" + "".join(good.format(i) for i in range(2000))
    path = tmp_path / "export.csv"
    path.write_bytes(text.encode() + windows_1258("H26-9999,1.001193,,Bảo\n"))
    with pytest.raises(ImportFileError, match="is not UTF-8 text"):
        read_applications(path)


@pytest.mark.parametrize("name", ["export.xls", "export.txt", "export"])
def test_other_file_types_are_refused(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, f"{VI_HEADER}\n", name=name)
    with pytest.raises(ImportFileError, match=r"not supported; export the list as \.xlsx"):
        read_applications(path)


def test_a_damaged_workbook_or_too_large_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match="not a readable Excel workbook"):
        read_applications(write(tmp_path, VI_HEADER, name="export.xlsx"))
    with pytest.raises(ImportFileError, match=r"too large \(\d+ bytes; the limit is 10 bytes\)"):
        read_applications(write(tmp_path, VI_HEADER), limits=ImportLimits(max_bytes=10))
    with pytest.raises(ImportFileError, match="is empty"):
        read_applications(write(tmp_path, ""))


def test_xlsx_rows_beyond_a_wrong_declared_sheet_size_are_read(tmp_path: Path) -> None:
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["Mã hồ sơ", "Tên thủ tục", "Người nộp", "Hình thức nộp", "Ngày tiếp nhận",
                  "Trạng thái"])
    for i in range(3):
        sheet.append([f"H26-000{i}", "Khai sinh", "An", "Trực tiếp", "24/11/2026", "Tiếp nhận"])
    saved = tmp_path / "saved.xlsx"
    workbook.save(saved)
    path = tmp_path / "export.xlsx"  # declared size too small: A1:F2
    with zipfile.ZipFile(saved) as source, zipfile.ZipFile(path, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "xl/worksheets/sheet1.xml":
                data, count = re.subn(rb'<dimension ref="[^"]*" ?/>', b'<dimension ref="A1:F2"/>',
                                      data)
                assert count == 1
            target.writestr(item, data)
    assert [row.line for row in read_applications(path).rows] == [2, 3, 4]


SHORT_HEADER = ["Mã hồ sơ", "Tên thủ tục", "Người nộp", "Hình thức nộp", "Ngày tiếp nhận",
                "Trạng thái"]
SHORT_ROW = ["Khai sinh", "An", "Trực tiếp", "24/11/2026", "Tiếp nhận"]


def rewrite_sheet(saved: Path, path: Path, change: Callable[[bytes], bytes],
                  extra: dict[str, bytes] | None = None) -> Path:
    """A copy of a saved workbook with its sheet's XML changed (and members added)."""
    with zipfile.ZipFile(saved) as source, zipfile.ZipFile(path, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = change(data)
            target.writestr(item, data)
        for name, data in (extra or {}).items():
            target.writestr(name, data)
    return path


def small_workbook(tmp_path: Path, rows: int) -> Path:
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(SHORT_HEADER)
    for i in range(rows):
        sheet.append([f"H26-{i:06d}", *SHORT_ROW])
    saved = tmp_path / "saved.xlsx"
    workbook.save(saved)
    return saved


def test_a_workbook_declaring_millions_of_rows_is_refused_before_reading(tmp_path: Path) -> None:
    def declare_millions(xml: bytes) -> bytes:
        # Rows that cannot be parsed: refused for its declared size, they are never read.
        xml = xml.replace(b"</sheetData>", b"<row r='3'><c><broken></sheetData>")
        return re.sub(rb'<dimension ref="[^"]*" ?/>', b'<dimension ref="A1:J3000000"/>', xml)

    path = rewrite_sheet(small_workbook(tmp_path, 1), tmp_path / "junk.xlsx", declare_millions)
    with pytest.raises(ImportFileError) as caught:
        read_applications(path)
    assert str(caught.value) == ("junk.xlsx declares 3,000,000 rows; the limit is 200,000: "
                                 "export a shorter period")


def test_a_workbook_jumping_to_row_a_billion_is_refused(tmp_path: Path) -> None:
    def jump(xml: bytes) -> bytes:
        # openpyxl hands over every row skipped as a blank one: counted, they are refused.
        return xml.replace(b"</sheetData>", b'<row r="1000000000"><c t="inlineStr"><is><t>x'
                                            b"</t></is></c></row></sheetData>")

    path = rewrite_sheet(small_workbook(tmp_path, 1), tmp_path / "junk.xlsx", jump)
    with pytest.raises(ImportFileError, match="has more rows than the limit of 200,000"):
        read_applications(path)


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_rows_beyond_the_limit_refuse_the_file_whatever_it_declares(tmp_path: Path,
                                                                    kind: str) -> None:
    def write_rows(rows: int) -> Path:
        if kind == "csv":
            lines = [",".join(SHORT_HEADER)] + [f"H26-{i:06d}," + ",".join(SHORT_ROW)
                                                for i in range(rows)]
            return write(tmp_path, "\n".join(lines) + "\n")
        # A sheet declaring one row ("A1") but holding more, as some exporters write it.
        return rewrite_sheet(small_workbook(tmp_path, rows), tmp_path / "export.xlsx",
                             lambda xml: re.sub(rb'<dimension ref="[^"]*" ?/>',
                                                b'<dimension ref="A1"/>', xml))

    limits = ImportLimits(max_rows=50)
    assert len(read_applications(write_rows(50), limits=limits).rows) == 50
    with pytest.raises(ImportFileError) as caught:
        read_applications(write_rows(51), limits=limits)
    assert str(caught.value) == (f"export.{kind} has more rows than the limit of 50: "
                                 "export a shorter period")


def test_a_workbook_unpacking_to_too_much_text_is_refused(tmp_path: Path) -> None:
    saved = small_workbook(tmp_path, 1)
    limits = ImportLimits(max_rows=10)  # 3,200 bytes of shared strings, 25,600 in all
    bomb = rewrite_sheet(saved, tmp_path / "bomb.xlsx", lambda xml: xml,
                         {"xl/sharedStrings.xml": b"<si><t>0</t></si>" * 1000})
    with pytest.raises(ImportFileError) as caught:
        read_applications(bomb, limits=limits)
    assert str(caught.value) == ("bomb.xlsx holds text of 17,000 bytes (the limit for 10 rows "
                                 "is 3,200 bytes); this is not an export of applications")
    padded = rewrite_sheet(saved, tmp_path / "padded.xlsx", lambda xml: xml,
                           {"docProps/custom.xml": b" " * 30_000})
    with pytest.raises(ImportFileError, match=r"padded.xlsx unpacks to [\d,]+ bytes \(the "
                                              r"limit for 10 rows is 25,600 bytes\)"):
        read_applications(padded, limits=limits)
    assert len(read_applications(saved, limits=limits).rows) == 1


def test_a_csv_line_without_line_breaks_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, VI_HEADER + "\n" + "H26-0001," + "x," * 60_000 + "\n")
    with pytest.raises(ImportFileError) as caught:
        read_applications(path)
    assert str(caught.value) == ("export.csv: line 2 is longer than 100,000 characters; "
                                 "this is not an export of applications")


def test_many_bad_rows_list_the_first_problems_and_count_the_rest(tmp_path: Path) -> None:
    good = "H26-{:06d},1.001193,,An,,Trực tuyến,24/11/2026,,Đang xử lý,\n"
    bad = "??{:06d},1.001193,,Bình,,Trực tuyến,24/11/2026,,Đang chờ {},\n"  # two problems
    rows = [(good if i % 10 == 0 else bad).format(i, i) for i in range(1000)]
    result = read_applications(write(tmp_path, VI_HEADER + "\n" + "".join(rows)))
    assert len(result.rows) == 100
    assert result.bad_rows == 900
    assert len(result.errors) == 100  # the first ones, in file order
    assert [e.line for e in result.errors[:4]] == [3, 3, 4, 4]
    assert result.errors[1].message.startswith("Trạng thái: 'Đang chờ 1' is not a known status")
    assert result.more_errors == 1800 - 100
    few = read_applications(write(tmp_path, VI_HEADER + "\n" + "".join(rows)),
                            limits=ImportLimits(max_errors=3))
    assert (len(few.errors), few.more_errors, few.bad_rows) == (3, 1797, 900)


@pytest.mark.parametrize("written", [
    "01/01/0001", "31/12/9999 23:59", "0001-01-01T00:00:00+07:00", "9999-12-31", "31/12/1999"])
def test_dates_outside_2000_to_2100_are_row_errors(tmp_path: Path, written: str) -> None:
    path = write(tmp_path, f"{VI_HEADER}\n"
                           f"H26-0001,1.001193,,An,,Trực tuyến,{written},,Đang xử lý,\n"
                           f"H26-0002,1.001193,,Bình,,Trực tuyến,24/11/2026,{written},Tiếp nhận,\n"
                           "H26-0003,1.001193,,Chi,,Trực tuyến,01/01/2000,31/12/2100,Tiếp nhận,\n")
    result = read_applications(path)
    assert [(e.line, e.message) for e in result.errors] == [
        (2, f"Ngày tiếp nhận: '{written}' is not between 01/01/2000 and 31/12/2100"),
        (3, f"Ngày hẹn trả: '{written}' is not between 01/01/2000 and 31/12/2100"),
    ]
    [row] = result.rows
    assert row.received_at == utc(2000, 1, 1, 1)
    assert row.due_at == utc(2100, 12, 31, 10)
