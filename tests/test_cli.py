"""The ``python -m bot`` commands, run as a user runs them."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from bot.settings import channel_problems as configuration_problems
from tests.conftest import SHARED_DATA

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=ROOT, input=stdin,
                          capture_output=True, text=True, timeout=120, check=False)


def test_ask_json_contract() -> None:
    result = run("ask", "--json", "sao y cccd")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    answer = json.loads(lines[0])
    assert set(answer) == {"question", "kind", "matches", "answer"}
    assert answer["question"] == "sao y cccd"
    assert answer["kind"] == "procedure"
    assert answer["matches"][0]["code"] == "2.000815"
    assert set(answer["matches"][0]) == {"code", "name", "score"}
    scores = [m["score"] for m in answer["matches"]]
    assert scores == sorted(scores, reverse=True)


def test_ask_batch_keeps_order_and_declines_out_of_scope(tmp_path: Path) -> None:
    questions = ["làm sổ đỏ lần đầu", "viết cho tôi bài thơ", "", "đk kết hôn có mất phí ko"]
    batch = tmp_path / "q.txt"
    batch.write_text("\n".join(questions) + "\n", encoding="utf-8")
    result = run("ask", "--json", "--batch", str(batch))
    assert result.returncode == 0, result.stderr
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert [a["question"] for a in answers] == questions
    assert answers[0]["matches"][0]["code"] == "1.013978"
    assert answers[1]["kind"] == "none" and answers[1]["matches"] == []
    assert answers[2]["kind"] == "none"
    assert answers[3]["matches"][0]["code"] == "1.000894"


def test_ask_top_limits_matches() -> None:
    answer = json.loads(run("ask", "--json", "--top", "1", "căn cước").stdout)
    assert len(answer["matches"]) <= 1


def test_ask_plain_prints_the_answer() -> None:
    result = run("ask", "How", "do", "I", "register", "my", "baby's", "birth?")
    assert result.returncode == 0
    assert result.stdout.startswith("Steps — Birth registration (code 1.001193)")  # "how do I"


def test_kb_check_reports_counts() -> None:
    result = run("kb", "check")
    assert result.returncode == 0, result.stderr
    assert "bundled procedures" in result.stdout


def test_missing_batch_file_is_a_clear_error() -> None:
    result = run("ask", "--json", "--batch", "/nonexistent/questions.txt")
    assert result.returncode != 0
    assert "cannot read /nonexistent/questions.txt" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(not SHARED_DATA.exists(), reason="shared portal data not present")
def test_import_portal_then_answer_from_it(tmp_path: Path) -> None:
    out = tmp_path / "portal"
    result = run("kb", "import-portal", str(SHARED_DATA / "procedures-cap-xa.jsonl"),
                 "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "imported 588 procedures" in result.stdout
    # 1.000253 (khai báo tạm trú cho người nước ngoài) is not bundled: it comes from the import.
    assert (out / "1.000253.toml").exists()
    answer = json.loads(run("ask", "--json", "--portal", str(out),
                            "khai báo tạm trú cho người nước ngoài bằng phiếu khai báo").stdout)
    assert answer["matches"][0]["code"] == "1.000253"
    # A bundled entry still wins over the imported one with the same code.
    bundled = json.loads(run("ask", "--json", "--portal", str(out), "gks").stdout)
    assert bundled["matches"][0]["name"] == "Thủ tục đăng ký khai sinh"


def test_broken_knowledge_file_is_refused_with_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "1.000001.toml"
    bad.write_text('code = "1.000001"\nname = "X"\n', encoding="utf-8")
    result = run("ask", "--portal", str(tmp_path), "gks")
    assert result.returncode == 2
    assert f"{bad}: name_en: Field required" in result.stderr
    assert "Traceback" not in result.stderr


SECRET = "Kq7_w2-RmZ0pX4vN8sT1"  # 20 characters Telegram accepts


@pytest.mark.parametrize(("environ", "named"), [
    ({"TELEGRAM_BOT_TOKEN": "123:abc", "PUBLIC_BASE_URL": "https://xa.example"},
     "TELEGRAM_WEBHOOK_SECRET is not set: with TELEGRAM_BOT_TOKEN and PUBLIC_BASE_URL the "
     "webhook is registered with Telegram, and every update would be refused (403)"),
    ({"TELEGRAM_BOT_TOKEN": "123:abc", "PUBLIC_BASE_URL": "https://xa.example",
      "TELEGRAM_WEBHOOK_SECRET": "short-secret"},
     "TELEGRAM_WEBHOOK_SECRET must be 16 to 256 characters, only A-Z, a-z, 0-9, _ and -"),
    ({"TELEGRAM_BOT_TOKEN": "123:abc", "PUBLIC_BASE_URL": "https://xa.example",
      "TELEGRAM_WEBHOOK_SECRET": "a secret with spaces!"},
     "TELEGRAM_WEBHOOK_SECRET must be 16 to 256 characters, only A-Z, a-z, 0-9, _ and -"),
    ({"ZALO_APP_ID": "1", "ZALO_APP_SECRET": "s", "ZALO_OA_SECRET_KEY": "k"},
     "Zalo is half configured: ZALO_ACCESS_TOKEN, ZALO_REFRESH_TOKEN not set"),
])
def test_serve_refuses_a_configuration_that_would_fail_silently(
        tmp_path: Path, environ: dict[str, str], named: str) -> None:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("TELEGRAM_", "ZALO_", "PUBLIC_BASE_URL"))}
    # Were it not refused, the server would start here and the run would time out.
    env.update(environ, DATABASE_URL=f"sqlite:///{tmp_path / 'm.sqlite3'}", MOTCUA_PORT="9")
    result = subprocess.run([sys.executable, "-m", "bot", "serve"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    assert result.stderr.startswith("refusing to start:\n  ")
    assert named in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "m.sqlite3").exists()  # refused before touching anything


def test_a_safe_channel_configuration_has_no_problems() -> None:
    assert configuration_problems({}) == []
    assert configuration_problems({"TELEGRAM_BOT_TOKEN": "123:abc"}) == []  # polling
    assert configuration_problems({"TELEGRAM_BOT_TOKEN": "123:abc",
                                   "PUBLIC_BASE_URL": "https://xa.example",
                                   "TELEGRAM_WEBHOOK_SECRET": SECRET}) == []


def test_a_port_in_use_is_said_plainly(tmp_path: Path) -> None:
    # Not "database unreachable": the database is fine, the port is taken.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "bot", "serve"], cwd=ROOT, capture_output=True, text=True,
            timeout=120, check=False,
            env={**os.environ, "MOTCUA_PORT": str(port),
                 "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'motcua.db'}"})
    assert result.returncode == 3
    assert "address is already in use" in result.stderr
    assert "database" not in result.stderr
