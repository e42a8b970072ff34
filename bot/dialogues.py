"""Evaluation of whole conversations: scripted multi-turn dialogues run through the real
conversation core on a throwaway SQLite database holding four sample applications.

A dialogue file is JSON Lines: ``{"id", "intent", "turns": [{"user"|"tap"|"pick", "expect"}]}``
(the format is described in ``tests/data/README.md``). A turn passes when one of its replies
has the expected intent and, where given, the expected procedure, aspects, contact topic,
status, language and words; a dialogue passes when all its turns do.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import tempfile
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from handlers.applications import Office
from handlers.conversation import Dialogue, IncomingMessage, Reply
from handlers.turn import ASPECT, PROCEDURE
from knowledge.answer import Assistant
from knowledge.intents import Intent
from knowledge.text import fold
from knowledge.workdays import TZ, WorkCalendar
from storage import applications as repo
from storage.db import make_engine, make_sessions, session_scope, upgrade
from storage.domain import ApplicationStatus, SubmissionChannel

NOW = dt.datetime(2026, 12, 1, 10, 0, tzinfo=TZ)  # a Tuesday morning, the office open
_VIETNAMESE = re.compile(r"[ăâđêôơưàáảãạằắẳẵặầấẩẫậèéẻẽẹềếểễệìíỉĩịòóỏõọồốổỗộờớởỡợùúủũụừứửữựỳýỷỹỵ]")

# (receipt code, phone, procedure code, name, status, due, staff note)
SAMPLES = [
    ("000.00.19.H26-261120-0001", "0912346789", "1.001193", "Thủ tục đăng ký khai sinh",
     ApplicationStatus.PROCESSING, dt.datetime(2026, 12, 3, 17, tzinfo=TZ), ""),
    ("000.00.19.H26-261001-0002", "0987651234", "2.001035",
     "Chứng thực hợp đồng, giao dịch liên quan đến tài sản là động sản",
     ApplicationStatus.PROCESSING, dt.datetime(2026, 10, 10, 17, tzinfo=TZ), ""),
    ("000.00.19.H26-261115-0003", "0904324321", "1.004222", "Đăng ký thường trú",
     ApplicationStatus.SUPPLEMENT_REQUIRED, dt.datetime(2026, 11, 26, 17, tzinfo=TZ),
     "Bổ sung giấy tờ chứng minh chỗ ở hợp pháp (hợp đồng thuê nhà có công chứng) "
     "trước ngày 10/12/2026."),
    ("000.00.19.H26-261110-0004", "0355555555", "2.000635",
     "Cấp bản sao Trích lục hộ tịch, bản sao Giấy khai sinh",
     ApplicationStatus.RESULT_READY, dt.datetime(2026, 11, 12, 17, tzinfo=TZ), ""),
]


def read_dialogues(path: Path) -> list[dict[str, Any]]:
    """Read a dialogue file, failing with the line number on a bad line."""
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                dialogue = json.loads(line)
                assert isinstance(dialogue["turns"], list) and dialogue["turns"]
            except (json.JSONDecodeError, KeyError, TypeError, AssertionError) as exc:
                raise ValueError(f"{path}:{number}: {exc!r}") from None
            out.append(dialogue)
    return out


async def _seed(office: Office) -> None:
    """The four sample applications of the dialogue format."""
    async with session_scope(office.sessions) as session:
        records = [repo.ApplicationRecord(
            receipt_code=code, procedure_code=procedure, procedure_name=name, field="",
            applicant_name="Người nộp mẫu", phone=phone, channel=SubmissionChannel.IN_PERSON,
            received_at=due - dt.timedelta(days=10), due_at=due, due_estimated=False,
            status=ApplicationStatus.RECEIVED, completed_at=None)
            for code, phone, procedure, name, _, due, _ in SAMPLES]
        await repo.upsert_applications(session, commune_id=office.commune_id, records=records,
                                       actor="evaluation", now=NOW)
        for code, _, _, _, status, _, note in SAMPLES:
            await repo.change_status(session, commune_id=office.commune_id, receipt_code=code,
                                     status=status, actor="evaluation", at=NOW, note=note)


def _tap(want: str, last: list[Reply], topic: str) -> tuple[str, bool]:
    """The payload of the button the citizen taps, and whether it was offered."""
    payloads = [b.payload for r in last for b in r.buttons]
    if want.startswith("aspect:") or want == "full":
        prefix = f"{ASPECT}{want.removeprefix('aspect:')}:"
        found = next((p for p in payloads if p.startswith(prefix)), None)
        return found or f"{prefix}{topic}", found is not None
    if want == "menu":  # the menu of procedures: the menu itself, or its list of fields
        found = next((p for p in payloads if p in (Intent.MENU, Intent.FIELDS)), None)
        return found or want, found is not None
    return want, want in payloads


def _english(text: str) -> bool:
    """Mostly English words; Vietnamese names (capitalised) and terms in brackets allowed."""
    words = re.sub(r"\([^)]*\)", "", text).split()
    vietnamese = sum(bool(_VIETNAMESE.search(w)) and not w[:1].isupper() for w in words)
    return vietnamese <= 0.1 * max(len(words), 1)


def check(expect: dict[str, Any], replies: list[Reply]) -> list[str]:
    """What is wrong with the replies to one turn (empty when the turn passes)."""
    intent = expect.get("intent", "")
    candidates = [r for r in replies if r.intent == intent]
    if not candidates:
        return [f"intent {intent!r}, got {[r.intent for r in replies]}"]
    problems: list[str] = []
    for reply in candidates:
        problems = []
        codes = expect.get("code") or []
        if codes and intent == "clarify":
            offered = {b.payload.removeprefix(PROCEDURE) for b in reply.buttons}
            if not offered & set(codes):
                problems.append(f"options {sorted(offered)}, expected one of {codes}")
        elif codes and reply.code not in codes:
            problems.append(f"code {reply.code!r}, expected {codes}")
        aspects = expect.get("aspects") or []
        if aspects and (not reply.aspects or reply.aspects[0] != aspects[0]
                        or not set(aspects) <= set(reply.aspects)):
            problems.append(f"aspects {list(reply.aspects)}, expected {aspects}")
        if expect.get("topic") and reply.detail != expect["topic"]:
            problems.append(f"topic {reply.detail!r}, expected {expect['topic']!r}")
        if expect.get("status") and reply.detail != expect["status"]:
            problems.append(f"status {reply.detail!r}, expected {expect['status']!r}")
        if expect.get("lang") == "en" and not _english(reply.text):
            problems.append("not in English")
        text = fold(" ".join(r.text for r in replies))
        problems += [f"missing {w!r}" for w in expect.get("include", []) if fold(w) not in text]
        if not problems:
            return []
    return problems


async def run_dialogues(assistant: Assistant, dialogues: Sequence[dict[str, Any]]
                        ) -> dict[str, Any]:
    """Run every dialogue as a new citizen on a fresh database; per-intent pass rates."""
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite:///{directory}/dialogues.sqlite3"
        await upgrade(url)
        engine = make_engine(url)
        try:
            sessions = make_sessions(engine)
            async with session_scope(sessions) as session:
                commune = await repo.ensure_commune(session, slug=assistant.kb.commune.slug,
                                                    name=assistant.kb.commune.name)
            office = Office(sessions, commune, assistant.kb,
                            WorkCalendar.for_commune(assistant.kb.commune.slug))
            await _seed(office)
            dialogue = Dialogue(assistant, office, staff_channel=True)
            results = [await _run_one(dialogue, i, d) for i, d in enumerate(dialogues)]
        finally:
            await engine.dispose()
    by_intent: dict[str, Counter[str]] = defaultdict(Counter)
    turns: dict[str, Counter[str]] = defaultdict(Counter)
    empty = 0
    for d, result in zip(dialogues, results, strict=True):
        by_intent[d.get("intent", "")]["passed" if not result["failures"] else "failed"] += 1
        for expected, ok in result["turns"]:
            turns[expected]["passed" if ok else "failed"] += 1
        empty += result["empty"]
    passed = sum(not r["failures"] for r in results)
    return {
        "dialogues": len(dialogues),
        "passed": _pct(passed, len(dialogues)),
        "empty_replies": empty,
        "by_intent": {k: _pct(c["passed"], c.total()) for k, c in sorted(by_intent.items())},
        "turns_by_expected_intent": {k: f"{c['passed']}/{c.total()}"
                                     for k, c in sorted(turns.items())},
        "failures": [r for r in results if r["failures"]],
    }


async def _run_one(dialogue: Dialogue, index: int, script: dict[str, Any]) -> dict[str, Any]:
    user = f"eval-{index}-{script.get('id', '')}"
    topic = ""
    failures: list[str] = []
    turns: list[tuple[str, bool]] = []
    empty = 0
    # The web chat opens with the menu: a first-turn tap chooses one of its buttons.
    last = await dialogue.handle(IncomingMessage("web", user, payload=Intent.MENU), now=NOW)
    for number, turn in enumerate(script["turns"], 1):
        expect = turn.get("expect", {})
        text, payload, said = "", "", ""
        if "tap" in turn:
            payload, offered = _tap(turn["tap"], last, topic)
            said = f"[tap {turn['tap']}]"
            if not offered:
                failures.append(f"turn {number}: no {turn['tap']!r} button to tap")
        elif "pick" in turn:
            options = [b.payload.removeprefix(PROCEDURE) for r in last for b in r.buttons
                       if b.payload.startswith(PROCEDURE)]
            position = options.index(turn["pick"]) + 1 if turn["pick"] in options else 1
            if turn["pick"] not in options:
                failures.append(f"turn {number}: {turn['pick']} was not offered")
            text = said = str(position)
        else:
            text = said = str(turn.get("user", ""))
        replies = await dialogue.handle(
            IncomingMessage("web", user, text=text, payload=payload),
            now=NOW + dt.timedelta(seconds=20 * number))
        empty += not replies or any(not r.text.strip() for r in replies)
        topic = next((r.code for r in replies if r.code), topic)
        last = replies
        problems = check(expect, replies)
        turns.append((expect.get("intent", ""), not problems))
        if problems:
            reply = replies[0].text[:120] if replies else ""
            failures.append(f"turn {number} {said!r}: {'; '.join(problems)} | reply: {reply!r}")
    return {"id": script.get("id", ""), "intent": script.get("intent", ""),
            "failures": failures, "turns": turns, "empty": empty}


def _pct(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


def render(name: str, report: dict[str, Any]) -> str:
    """A plain-text report for people."""
    lines = [f"== {name}: {report['dialogues']} dialogues, {report['passed']} % passed, "
             f"{report['empty_replies']} empty replies",
             "  by intent (% of dialogues passed): " + ", ".join(
                 f"{k} {v}" for k, v in report["by_intent"].items()),
             "  turns by expected intent (passed/all): " + ", ".join(
                 f"{k} {v}" for k, v in report["turns_by_expected_intent"].items()),
             "  failures:"]
    for failure in report["failures"]:
        lines += [f"    {failure['id']} ({failure['intent']}): {f}" for f in failure["failures"]]
    return "\n".join(lines)
