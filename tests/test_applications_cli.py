"""The applications commands as staff run them: import, status, stats (embedded SQLite)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEADER = ("Mã hồ sơ,Mã thủ tục,Tên thủ tục,Người nộp,Số điện thoại,Hình thức nộp,"
          "Ngày tiếp nhận,Ngày hẹn trả,Trạng thái,Ngày trả kết quả\n")
GOOD = [
    "000.00.19.H26-251127-0001,1.001193,,Nguyễn Văn A,0912 345 678,Trực tuyến,"
    "27/11/2026 09:15,,Đang xử lý,\n",
    "000.00.19.H26-251127-0002,2.000815,,Trần Thị B,0987654321,Trực tiếp,"
    "27/11/2026 16:20,28/11/2026,Đã trả kết quả,27/11/2026 16:40\n",
]
BAD = "000.00.19.H26-251127-0003,1.004222,,Lê Văn C,0900000003,Bưu chính,31/02/2026,,Đang xử lý,\n"


def run(tmp: Path, *args: str, **environ: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp / 'motcua.sqlite3'}", **environ}
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_bad_file_imports_nothing_then_skip_bad_imports_the_rest(tmp_path: Path) -> None:
    export = tmp_path / "mot-cua.csv"
    export.write_text(HEADER + "".join(GOOD) + BAD, encoding="utf-8")
    refused = run(tmp_path, "applications", "import", str(export))
    assert refused.returncode == 1
    assert "line 4: Ngày tiếp nhận: '31/02/2026' is not a date" in refused.stderr
    assert "nothing imported" in refused.stderr
    nothing = run(tmp_path, "stats", "--from", "2026-11-01", "--to", "2026-11-30", "--json")
    assert json.loads(nothing.stdout)["received"] == 0
    done = run(tmp_path, "applications", "import", str(export), "--skip-bad")
    assert done.returncode == 0
    assert "2 new, 0 updated, 0 unchanged" in done.stdout and "1 bad rows skipped" in done.stdout
    again = run(tmp_path, "applications", "import", str(export), "--skip-bad")
    assert "0 new, 0 updated, 2 unchanged" in again.stdout
    stats = json.loads(run(tmp_path, "stats", "--from", "2026-11-01", "--to", "2026-11-30",
                           "--json").stdout)
    assert (stats["received"], stats["online"], stats["in_person"]) == (2, 1, 1)
    assert stats["settled_on_time"] == 1


def test_status_needs_the_phone_digits(tmp_path: Path) -> None:
    export = tmp_path / "mot-cua.csv"
    export.write_text(HEADER + "".join(GOOD), encoding="utf-8")
    assert run(tmp_path, "applications", "import", str(export)).returncode == 0
    found = run(tmp_path, "status", "000.00.19.h26-251127-0002", "--phone", "4321")
    assert found.returncode == 0
    assert "Trạng thái: đã trả kết quả" in found.stdout
    assert "Có kết quả ngày 27 tháng 11, 2026." in found.stdout
    wrong = run(tmp_path, "status", "000.00.19.H26-251127-0002", "--phone", "0000",
                "--json")
    assert wrong.returncode == 1
    assert json.loads(wrong.stdout)["found"] is False


def test_unreadable_files_are_refused_clearly(tmp_path: Path) -> None:
    latin = tmp_path / "latin.csv"
    latin.write_bytes(HEADER.encode("utf-8") + "Nguyễn".encode("utf-16"))
    result = run(tmp_path, "applications", "import", str(latin))
    assert result.returncode == 1
    assert "not UTF-8" in result.stderr and "Traceback" not in result.stderr
    missing = tmp_path / "missing.csv"
    missing.write_text("Mã hồ sơ,Người nộp\nX-0001,A\n", encoding="utf-8")
    result = run(tmp_path, "applications", "import", str(missing))
    assert "missing columns" in result.stderr and "Traceback" not in result.stderr


def test_large_file_with_one_bad_row_leaves_the_database_as_it_was(tmp_path: Path) -> None:
    export = tmp_path / "mot-cua.csv"
    export.write_text(HEADER + GOOD[0], encoding="utf-8")
    assert run(tmp_path, "applications", "import", str(export)).returncode == 0
    big = tmp_path / "big.csv"
    with big.open("w", encoding="utf-8") as out:
        out.write(HEADER)
        n = 0
        while out.tell() < 50 * 2**20:
            n += 1
            out.write(f"000.00.19.H26-{n // 10000:06d}-{n % 10000:04d},1.001193,,Nguyễn Văn "
                      f"Một Hai Ba,09{n:08d},Trực tuyến,27/11/2026 09:15,,Đang xử lý,\n")
        out.write(BAD)
    result = run(tmp_path, "applications", "import", str(big), MOTCUA_IMPORT_MAX_ROWS="500000")
    assert result.returncode == 1
    assert f"line {n + 2}: Ngày tiếp nhận: '31/02/2026' is not a date" in result.stderr
    stats = json.loads(run(tmp_path, "stats", "--from", "2026-11-01", "--to", "2026-11-30",
                           "--json").stdout)
    assert stats["received"] == 1  # only the application imported before


def test_many_bad_rows_print_the_first_hundred_and_count_the_rest(tmp_path: Path) -> None:
    export = tmp_path / "mot-cua.csv"
    bad = [f"??{n:04d},1.001193,,Lê Văn C,,Bưu chính,01/01/0001,,Đang xử lý,\n"  # two problems
           for n in range(300)]
    export.write_text(HEADER + "".join(GOOD) + "".join(bad), encoding="utf-8")
    refused = run(tmp_path, "applications", "import", str(export))
    assert refused.returncode == 1
    lines = refused.stderr.splitlines()
    assert lines[:2] == [
        "line 4: Mã hồ sơ: '??0000' is not a receipt code (4–64 letters, digits, '.', '-', '/')",
        "line 4: Ngày tiếp nhận: '01/01/0001' is not between 01/01/2000 and 31/12/2100",
    ]
    assert sum(line.startswith("line ") for line in lines) == 100
    assert lines[-2:] == [
        "… and 500 more problems",
        "nothing imported: 600 problems in 300 of 302 rows (fix them, or use --skip-bad to "
        "import the good rows)",
    ]
    done = run(tmp_path, "applications", "import", str(export), "--skip-bad")
    assert done.returncode == 0, done.stderr
    assert "imported 302 rows: 2 new" in done.stdout and "300 bad rows skipped" in done.stdout


def test_a_file_beyond_the_row_limit_imports_nothing(tmp_path: Path) -> None:
    export = tmp_path / "mot-cua.csv"
    export.write_text(HEADER + "".join(GOOD), encoding="utf-8")
    refused = run(tmp_path, "applications", "import", str(export), MOTCUA_IMPORT_MAX_ROWS="1")
    assert refused.returncode == 1
    assert refused.stderr == ("nothing imported: mot-cua.csv has more rows than the limit of 1: "
                              "export a shorter period\n")
    stats = json.loads(run(tmp_path, "stats", "--from", "2026-11-01", "--to", "2026-11-30",
                           "--json").stdout)
    assert stats["received"] == 0
    wrong = run(tmp_path, "applications", "import", str(export), MOTCUA_IMPORT_MAX_ROWS="many")
    assert wrong.returncode == 1
    assert wrong.stderr.strip() == "MOTCUA_IMPORT_MAX_ROWS must be a positive whole number"


def test_the_last_day_accepted_imports_and_counts(tmp_path: Path) -> None:
    export = tmp_path / "mot-cua.csv"
    export.write_text(HEADER + "000.00.19.H26-210012-0001,1.001193,,Nguyễn Văn A,,Trực tuyến,"
                      "31/12/2100 16:00,,Đang xử lý,\n", encoding="utf-8")
    done = run(tmp_path, "applications", "import", str(export))
    assert done.returncode == 0, done.stderr  # its due date, in 2101, is computed too
    stats = json.loads(run(tmp_path, "stats", "--from", "2100-12-01", "--to", "2100-12-31",
                           "--json").stdout)
    assert stats["received"] == 1


@pytest.mark.parametrize(("options", "message"), [
    (["--from", "0001-01-01"], "argument --from: '0001-01-01' is not between 2000-01-01 and "
                               "2100-12-31"),
    (["--to", "9999-12-31"], "argument --to: '9999-12-31' is not between 2000-01-01 and "
                             "2100-12-31"),
    (["--from", "2026-13-01"], "argument --from: '2026-13-01' is not a date (YYYY-MM-DD)"),
    (["--from", "2026-11-30", "--to", "2026-11-01"], "stats: --to is before --from"),
])
def test_stats_dates_out_of_bounds_are_refused_clearly(tmp_path: Path, options: list[str],
                                                       message: str) -> None:
    result = run(tmp_path, "stats", *options)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
