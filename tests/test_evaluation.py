"""Accuracy on our own question sets, against the levels the assistant promises.

The sets under tests/data: questions_dev, questions_tune, questions_tune0, questions_tune2 and
questions_tune3 were studied while tuning; questions_heldout was written blind by a separate
writer and never studied. The levels are asserted on all of them together and on the held-out
part alone; ``python -m bot kb evaluate`` reports each part.
"""

from pathlib import Path

import pytest

from knowledge.answer import Assistant
from knowledge.evaluate import Question, evaluate, read_questions

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="module")
def questions() -> list[Question]:
    files = sorted(DATA.glob("questions_*.jsonl"))
    assert {f.stem for f in files} >= {"questions_dev", "questions_heldout"}
    return [q for f in files for q in read_questions(f)]


@pytest.fixture(scope="module")
def report(assistant: Assistant, questions: list[Question]) -> dict[str, object]:
    return evaluate(assistant, questions)


def test_the_set_is_large_and_covers_every_procedure(
    assistant: Assistant, questions: list[Question]
) -> None:
    assert len(questions) >= 300
    asked = {code for q in questions for code in q.codes}
    assert set(assistant.kb.bundled_codes) <= asked
    assert sum(not q.codes for q in questions) >= 30
    assert {q.style for q in questions} >= {"diacritics", "plain", "abbrev", "typo",
                                            "colloquial", "english", "oos"}


def test_in_scope_questions_are_answered_directly_and_correctly(report: dict[str, object]) -> None:
    assert float(str(report["direct_correct"])) >= 92.0
    assert float(str(report["top3_correct"])) >= 98.0


def test_confident_wrong_answers_are_rare(report: dict[str, object]) -> None:
    assert float(str(report["wrong_confident"])) <= 2.0


def test_out_of_scope_questions_are_declined(report: dict[str, object]) -> None:
    assert float(str(report["out_of_scope_declined"])) >= 95.0


def test_held_out_questions_generalise(assistant: Assistant) -> None:
    held_out = evaluate(assistant, read_questions(DATA / "questions_heldout.jsonl"))
    assert held_out["direct_correct"] >= 92.0
    assert held_out["top3_correct"] >= 98.0
    assert held_out["wrong_confident"] <= 2.0
    assert held_out["out_of_scope_declined"] >= 95.0


def test_naive_baselines_are_beaten_by_a_wide_margin(report: dict[str, object]) -> None:
    ours = float(str(report["direct_correct"]))
    baselines = report["baselines"]
    assert isinstance(baselines, dict)
    for name, figures in baselines.items():
        assert ours >= figures["top1"] + 25, name


def test_report_has_a_confused_with_table(report: dict[str, object]) -> None:
    per_procedure = report["per_procedure"]
    assert isinstance(per_procedure, dict)
    assert all({"n", "direct"} <= set(stats) for stats in per_procedure.values())
