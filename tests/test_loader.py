"""The bundled knowledge base loads, and a bad file is refused with file, field and reason."""

import shutil
from pathlib import Path

import pytest

from knowledge.loader import BUNDLED_DIR, KnowledgeError, load_knowledge, load_procedure
from knowledge.schema import FeeStatus

# The 66 rows of shared/reference/procedures.md (two rows hold two codes) and the re-issue
# of the disability certificate.
REQUIRED = """
1.001193 1.000656 1.000894 1.004873 1.001022 1.000689 1.004884 1.004772 1.005461 1.004746
1.004859 2.000635 2.002516 1.004837 1.004845 2.000528 2.000806 1.001766 2.000554 3.000323
3.000722 2.000815 2.000884 2.000908 2.001035 2.001019 2.001406 2.001016 2.001263 1.004222
1.004194 1.002755 1.003197 1.010028 1.003677 2.001159 1.010038 1.010041 1.010039 1.014061
1.014062 1.014063 1.014064 3.000228 1.012566 1.013067 1.013076 1.001612 2.000720 1.001570
1.001266 2.000575 1.013978 1.012812 1.013967 1.012796 1.013225 1.013229 1.013227 1.013228
1.014159 1.014632 1.011606 1.011607 1.011608 1.001776 1.001731 1.001699 1.001653
""".split()

EXAMPLE = BUNDLED_DIR / "procedures" / "1.001193.toml"


def test_bundled_base_covers_the_required_procedures() -> None:
    kb = load_knowledge()
    assert set(REQUIRED) <= set(kb.procedures)
    assert kb.commune.name == "Xã Hát Môn"
    assert kb.faqs, "FAQ entries are bundled"
    for faq in kb.faqs:
        assert not faq.procedure or faq.procedure in kb.procedures, faq.id


def test_every_entry_has_source_and_facts_date() -> None:
    for proc in load_knowledge().procedures.values():
        assert proc.source_url.startswith("https://")
        assert proc.aliases, f"{proc.code} has no colloquial names"


def test_residence_fees_are_the_portals() -> None:
    proc = load_knowledge().procedures["1.004222"]
    fees = {m.channel.value: (m.fee_status, m.fee_vnd) for m in proc.methods}
    assert fees["truc_tiep"] == (FeeStatus.AMOUNT, 20000)
    assert fees["truc_tuyen"] == (FeeStatus.AMOUNT, 10000)


def _broken(tmp_path: Path, old: str, new: str) -> Path:
    path = tmp_path / EXAMPLE.name
    text = EXAMPLE.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("old", "new", "field", "reason"),
    [
        ('name_en = "Birth registration"\n', "", "name_en", "Field required"),
        ('code = "1.001193"', 'code = "1001193"', "code", "not a national code"),
        ('fee_status = "free"', 'fee_status = "cheap"', "methods[0].fee_status", "Input should be"),
        ('fee_status = "free"', 'fee_status = "amount"', "methods[0]", "needs fee_vnd"),
        ("originals = 1", "originals = -1", "documents[0].originals", "greater than or equal"),
        ('time_unit = "working_days"', 'time_unit = "unspecified"', "methods[0]",
         "time_confirmed = false"),
        ("facts_date = 2026-07-17", 'facts_date = "last year"', "facts_date", "date"),
        ('field = "Hộ tịch"', 'field = "Hộ tịch"\nfeild = "x"', "feild", "Extra inputs"),
    ],
)
def test_bad_file_is_refused_naming_file_and_field(
    tmp_path: Path, old: str, new: str, field: str, reason: str
) -> None:
    path = _broken(tmp_path, old, new)
    with pytest.raises(KnowledgeError) as error:
        load_procedure(path)
    message = str(error.value)
    assert message.startswith(f"{path}: {field}: ")
    assert reason in message


def test_invalid_toml_and_binary_are_refused(tmp_path: Path) -> None:
    path = _broken(tmp_path, 'name = "Thủ tục', 'name = Thủ tục')
    with pytest.raises(KnowledgeError, match="invalid TOML"):
        load_procedure(path)
    path.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(KnowledgeError, match="not UTF-8"):
        load_procedure(path)


def test_file_name_must_be_the_code(tmp_path: Path) -> None:
    path = tmp_path / "1.000001.toml"
    shutil.copy(EXAMPLE, path)
    with pytest.raises(KnowledgeError, match="does not match the file name"):
        load_procedure(path)


def test_bundled_entry_wins_over_imported(tmp_path: Path) -> None:
    imported = load_procedure(EXAMPLE).model_copy(update={"name": "Tên cũ từ cổng"})
    other = imported.model_copy(update={"code": "9.999999", "name": "Thủ tục nhập từ cổng"})
    kb = load_knowledge(imported=[imported, other])
    assert kb.procedures["1.001193"].name == "Thủ tục đăng ký khai sinh"
    assert kb.procedures["9.999999"].name == "Thủ tục nhập từ cổng"
    assert "9.999999" not in kb.bundled_codes
