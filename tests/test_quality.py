"""Project checks that run with the tests: lint, types, and complete message catalogs."""

import re
import subprocess
import sys
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ["bot", "handlers", "knowledge", "storage"]


def _tool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, check=False)


def test_ruff_is_clean() -> None:
    result = _tool("ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_clean() -> None:
    result = _tool("mypy")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_message_is_translated() -> None:
    used = {
        message
        for package in PACKAGES
        for _, _, message, _, _ in extract_from_dir(
            ROOT / package, keywords={"t": None, "N_": None})
        if isinstance(message, str)
    }
    assert used, "no messages found: is the extraction keyword still 't'?"
    for lang in ("vi", "en"):
        path = ROOT / "knowledge" / "locale" / lang / "LC_MESSAGES" / "messages.po"
        with path.open("rb") as po:
            catalog = read_po(po, locale=lang)
        missing = sorted(m for m in used if not (catalog.get(m) and catalog.get(m).string))
        assert not missing, f"{lang}: untranslated {missing}"
        placeholders_ok = [m for m in used
                           if sorted(_fields(m)) == sorted(_fields(catalog.get(m).string))]
        assert len(placeholders_ok) == len(used), f"{lang}: a translation lost a placeholder"


def test_no_message_hides_inside_an_f_string() -> None:
    # The extractor cannot see t("...") inside an f-string: such text would stay English.
    hidden = [f"{path.relative_to(ROOT)}:{n}"
              for package in PACKAGES for path in (ROOT / package).rglob("*.py")
              for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
              if re.search(r"""\{t\(\s*["']""", line)]
    assert not hidden, hidden


def _fields(text: str) -> list[str]:
    import string

    return [name for _, name, _, _ in string.Formatter().parse(text) if name]
