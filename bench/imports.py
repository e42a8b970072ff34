"""Time and peak memory of reading hostile import files (nothing is written to a database).

    python bench/imports.py [--real]

Each file is read in a fresh process (peak memory is per process): a 95 MB CSV of junk rows;
a workbook declaring 3,000,000 rows; one holding 3,000,000 junk rows while declaring one; one
whose shared strings are just under the limit for 200,000 rows. ``--real`` adds a real-looking
200,000-row workbook (slow: openpyxl reads about 3,000 rows a second here).
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from openpyxl import Workbook  # type: ignore[import-untyped]  # noqa: E402

from storage.importfile import ImportFileError, ImportLimits, read_applications  # noqa: E402

HEADER = ["Mã hồ sơ", "Mã thủ tục", "Tên thủ tục", "Người nộp", "Số điện thoại",
          "Hình thức nộp", "Ngày tiếp nhận", "Ngày hẹn trả", "Trạng thái", "Ngày trả kết quả"]


def junk_csv(path: Path) -> None:
    with path.open("w", encoding="utf-8") as out:
        out.write(",".join(HEADER) + "\n")
        n = 0
        while out.tell() < 95 * 2**20:
            n += 1
            out.write(f"??{n},,,,,\n")


def _workbook(path: Path, sheet: Callable[[], Iterator[bytes]] | None = None,
              shared_strings: int = 0) -> None:
    """A one-row workbook, its sheet XML replaced by ``sheet`` and shared strings added."""
    base = path.with_suffix(".base.xlsx")
    workbook = Workbook()
    workbook.active.append(HEADER)
    workbook.save(base)
    with zipfile.ZipFile(base) as source, zipfile.ZipFile(
            path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "xl/worksheets/sheet1.xml" and sheet is not None:
                with target.open(item.filename, "w", force_zip64=True) as out:
                    for chunk in sheet():
                        out.write(chunk)
                continue
            if item.filename == "[Content_Types].xml" and shared_strings:
                data = data.replace(b"</Types>", b'<Override PartName="/xl/sharedStrings.xml" '
                                    b'ContentType="application/vnd.openxmlformats-officedocument'
                                    b'.spreadsheetml.sharedStrings+xml"/></Types>')
            if item.filename == "xl/_rels/workbook.xml.rels" and shared_strings:
                data = data.replace(b"</Relationships>", b'<Relationship Id="rId99" Type="http:'
                                    b"//schemas.openxmlformats.org/officeDocument/2006/"
                                    b'relationships/sharedStrings" Target="sharedStrings.xml"/>'
                                    b"</Relationships>")
            target.writestr(item, data)
        if shared_strings:
            with target.open("xl/sharedStrings.xml", "w", force_zip64=True) as out:
                out.write(b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/'
                          b'2006/main">')
                n = size = 0
                while size < shared_strings - 100_000:
                    chunk = b"".join(b"<si><t>%d</t></si>" % (n + i) for i in range(1000))
                    n, size = n + 1000, size + len(chunk)
                    out.write(chunk)
                out.write(b"</sst>")
    base.unlink()


def junk_rows(rows: int, declared: int) -> Callable[[], Iterator[bytes]]:
    def sheet() -> Iterator[bytes]:
        yield (b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
               b'<dimension ref="A1:J%d"/><sheetData><row r="1">' % declared)
        yield b"".join(b'<c t="inlineStr"><is><t>%s</t></is></c>' % h.encode() for h in HEADER)
        yield b"</row>"
        for r in range(2, rows + 1):
            yield (b'<row r="%d"><c t="inlineStr"><is><t>x</t></is></c>'
                   b'<c t="inlineStr"><is><t>y</t></is></c></row>' % r)
        yield b"</sheetData></worksheet>"
    return sheet


def real_workbook(path: Path) -> None:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet()
    sheet.append(HEADER)
    for n in range(200_000):
        sheet.append([f"000.00.19.H26-{n // 10000:06d}-{n % 10000:04d}", "1.001193",
                      "Đăng ký khai sinh", f"Nguyễn Văn {n}", f"09{n:08d}", "Trực tuyến",
                      dt.datetime(2026, 11, 27, 9, 15), dt.datetime(2026, 11, 29),
                      "Đang xử lý", None])
    workbook.save(path)


def measure(path: Path) -> None:
    """Read one file in this process and print the outcome, time and peak memory."""
    started = time.perf_counter()
    try:
        result = read_applications(path)
        outcome = (f"read: {len(result.rows):,} rows, {result.bad_rows:,} bad, "
                   f"{len(result.errors) + result.more_errors:,} problems")
    except ImportFileError as exc:
        outcome = f"refused: {exc}"
    took = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  {took:6.1f} s  {peak:6.0f} MB peak  {outcome}")


def main() -> None:
    """Write the files, then read each in its own process."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--real", action="store_true", help="add a real 200,000-row workbook")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args.measure)
        return
    limit = ImportLimits().max_shared_strings_bytes
    cases: list[tuple[str, str, Callable[[Path], None]]] = [
        ("95 MB CSV of junk rows", "junk.csv", junk_csv),
        ("workbook declaring 3,000,000 rows", "declared.xlsx",
         lambda p: _workbook(p, junk_rows(10, 3_000_000))),
        ("workbook of 3,000,000 junk rows declaring one", "liar.xlsx",
         lambda p: _workbook(p, junk_rows(3_000_000, 1))),
        (f"workbook with {limit / 2**20:.0f} MB of shared strings", "strings.xlsx",
         lambda p: _workbook(p, shared_strings=limit)),
    ]
    if args.real:
        cases.append(("real 200,000-row workbook", "real.xlsx", real_workbook))
    with tempfile.TemporaryDirectory() as folder:
        for label, name, write in cases:
            path = Path(folder) / name
            write(path)
            print(f"{label} ({path.stat().st_size / 2**20:.1f} MB on disk):", flush=True)
            subprocess.run([sys.executable, __file__, "--measure", str(path)], check=True)
            path.unlink()


if __name__ == "__main__":
    main()
