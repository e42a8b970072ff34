"""A seeded fuzz run of every public endpoint: nothing a client sends may give a 500.

    python bench/fuzz.py [--cases 100000] [--seed 1] [--database URL] [--findings FILE]

Builds the real aiohttp application in this process as the tests do (web chat, REST API,
Telegram and Zalo webhooks, against local fake Telegram and Zalo servers; SQLite in a
temporary file unless ``--database`` names another, which it migrates and writes to), then
sends repeatable mutations of valid requests, endpoint after endpoint, through one client
session:

- Telegram updates (valid secret) built from message, command, button and staff-reply updates:
  fields dropped, retyped, nested wrongly, huge or non-finite numbers, negative and huge dates,
  unicode junk, lone surrogates, NUL, very long strings, broken JSON;
- Zalo events, correctly signed so that parsing is reached, plus unsigned, stale, oversized
  and deeply nested bodies;
- web chat bodies to ``POST /api/chat``;
- REST API calls: ``POST /api/v1/applications``, ``PATCH /api/v1/applications/{code}``,
  ``GET /api/v1/stats`` with junk queries, and broadcasts: ``POST /api/v1/broadcasts``, then
  ``GET /api/v1/broadcasts/{id}`` and ``POST …/{id}/send`` or ``…/{id}/cancel`` on the drafts
  made and on junk ids.

Prints per endpoint the cases, the status codes, the 5xx other than a deliberate 503 and the
rate; then checks the server still answers (``GET /healthz`` and a plain question). Every
distinct exception behind a 5xx (and every exception the server only logged) is listed with
its stack and one input that caused it, also in ``--findings``. Exit status 1 on any 5xx
other than 503 or a dropped connection.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import copy
import hashlib
import json
import logging
import random
import sys
import tempfile
import time
import traceback
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
from yarl import URL

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.runtime import create_api_key, open_office  # noqa: E402
from bot.settings import (  # noqa: E402
    Settings,
    TelegramConfig,
    ZaloConfig,
)
from bot.telegram import add_telegram_routes, build_application  # noqa: E402
from bot.web import DIALOGUE, create_app  # noqa: E402
from bot.zalo import ZaloClient, add_zalo_routes  # noqa: E402
from handlers.applications import Office  # noqa: E402
from knowledge.answer import Assistant  # noqa: E402
from storage import applications as repo  # noqa: E402
from storage.db import session_scope  # noqa: E402
from tests.fakes.telegram import FakeTelegram, button_update, text_update  # noqa: E402
from tests.fakes.zalo import FakeZalo, now_ms, sign  # noqa: E402
from tests.samples import CODE, T0, record  # noqa: E402

TELEGRAM_TOKEN = "123456:FUZZ-token"
TELEGRAM_SECRET = "fuzz-secret_1"
STAFF_CHAT = -100500
ZALO_APP_ID = "4321890765123456789"
ZALO_APP_SECRET = "fuzz-app-secret"
ZALO_OA_SECRET = "fuzz-oa-secret"
CASE_HEADER = "X-Fuzz-Case"
SESSION_HEADER = "X-Chat-Session"
SESSIONS = 200  # web chat sessions kept to go on with
UNLIMITED = "1000000/second"  # rate limits are tested elsewhere; here they would hide bugs
CONCURRENCY = 8
MAX_BODY = 64 * 1024  # the server's limit; a few cases go just past it

# Share of the cases each endpoint gets, in the order they run.
WEIGHTS = {"telegram": 35, "zalo": 20, "chat": 20, "api-post": 10, "api-patch": 10,
           "api-stats": 5, "api-broadcasts": 10}
QUESTIONS = ["gks", "làm giấy khai sinh cần gì", "lam giay khai sinh mat phi khong", "menu",
             "tra cứu", CODE, "5678", "1234", "gặp cán bộ", "kết thúc", "cảm ơn", "2", "số 1",
             "còn phí?", "bao lâu thì xong", "đăng ký kết hôn", "How do I register a birth?",
             "/start", "/help", "/thutuc", "/tracuu", "/theodoi", "/huytheodoi", "/lienhe",
             "/ngonngu", "/start p_1_001193", "/start s_000_00_19_H26-251127-0001",
             "/start p_", "/start s_", "theo dõi", "hủy theo dõi", "địa chỉ xã ở đâu", "ok", "👍",
             "nhận thông báo của xã thôn Đông 3", "huỷ nhận thông báo"]
PAYLOADS = ["fields", "lookup", "staff", "language", "lang:en", "lang:vi", "follow", "unfollow",
            "menu", "a:full:1.001193", "a:fee:1.001193", "a:documents:9.999999", "a:x:",
            "p:1.001193", "p:", "f:Hộ tịch", "f:", "pick:2", "#", "::::", "announcements:on",
            "announcements:off"]
DATES = ["0001-01-01T00:00:00+00:00", "0001-01-01T00:00:00+07:00", "9999-12-31T23:59:59-07:00",
         "9999-12-31T23:59:59+00:00", "2026-02-30T00:00:00+07:00", "2026-11-27T09:15:00",
         "2026-11-27", "27/11/2026", "27/11/2026 25:61", "1969-12-31T23:59:59Z", "", " ",
         "2026-11-27T09:15:00+07:00", "2026-11-28T09:15:00+07:00", "+275760-09-13", "NaN"]
STATUSES = ["received", "processing", "supplement_required", "result_ready", "returned",
            "rejected", "withdrawn", "Đang xử lý", "Chờ trả kết quả", "đã trả kết quả", "",
            "RECEIVED", "done"]
# Numbers JSON can carry but Python's json module or the database may not take.
RAW_NUMBERS = ["1" * 5000, "-" + "9" * 400, "1e999", "-1e999", "NaN", "Infinity", "-Infinity",
               "1.5e-400", "-0", "1E+2", "0.1"]
INTS = [0, -1, 1, 2**31, 2**31 - 1, -(2**31), 2**53 + 1, 2**63, 2**63 - 1, -(2**63) - 1,
        2**64, 10**30, -(10**30), 10**300]
JUNK_STRINGS = ["", " ", "\x00", "a\x00b", "\ud800", "x\udfffy", "\ud83d", "\u202egks",
                "\u200b\u200c\u200d\ufeff", "\ufffe\uffff", "\x1b[31m", "\r\n\r\n", "\t",
                "\u2028\u2029", "{name}", "{0}", "%s%n", "<script>alert(1)</script>",
                "' OR 1=1 --", "../../etc/passwd", "\\", "\"", "０１２３", "١٢٣٤", "五六七八",
                "𝕘𝕜𝕤", "ﷺ" * 50, "e\u0301" * 200, "null", "true", "[]", "{}", "#staff",
                "[telegram:1] hi", "[web:x]", "[zalo:\x00]"]

CURRENT_CASE: contextvars.ContextVar[str] = contextvars.ContextVar("fuzz_case", default="")


@dataclass
class Case:
    """One request: where it goes and exactly what it carries."""

    endpoint: str
    method: str
    path: str  # already percent-encoded (sent as is)
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class Json:
    """Turns a value tree into request bytes; ``raw`` leaves in it become literal JSON text
    (numbers Python cannot write, nesting deeper than its encoder goes)."""

    def __init__(self) -> None:
        self._raws: dict[str, str] = {}

    def raw(self, text: str) -> str:
        """A placeholder leaf that :meth:`dumps` replaces with ``text`` verbatim."""
        marker = f"@@raw{len(self._raws)}@@"
        self._raws[marker] = text
        return marker

    def dumps(self, value: Any, *, ascii_only: bool) -> bytes:
        """JSON bytes; a lone surrogate is ``\\ud800`` when ``ascii_only``, else CESU bytes."""
        text = json.dumps(value, ensure_ascii=ascii_only)
        for marker, raw in self._raws.items():
            text = text.replace(f'"{marker}"', raw)
        self._raws.clear()
        return text.encode("utf-8", "surrogatepass")


class Fuzzer:
    """Seeded generator of mutated requests for every public endpoint."""

    def __init__(self, seed: int, *, api_key: str) -> None:
        self.rng = random.Random(seed)
        self.api_key = api_key
        self.json = Json()
        self._update_id = 10_000
        self._codes = [CODE]
        self.sessions: list[str] = []  # web chat session tokens the server handed out
        self.broadcasts: list[int] = []  # ids of the broadcasts the API made

    # -- values ---------------------------------------------------------------------------

    def junk_text(self) -> str:
        """A string a careless or hostile client might send."""
        rng = self.rng
        kind = rng.randrange(6)
        if kind == 0:
            return rng.choice(JUNK_STRINGS)
        if kind == 1:  # random code points from every awkward range
            ranges = [(0x0, 0x1F), (0x7F, 0x9F), (0x20, 0x7E), (0xC0, 0x1FF), (0x300, 0x36F),
                      (0x1EA0, 0x1EF9), (0x200B, 0x202E), (0xD800, 0xDFFF), (0xE000, 0xE0FF),
                      (0xFFF0, 0xFFFF), (0x4E00, 0x4EFF), (0x1F300, 0x1F6FF), (0x10FFF0,
                                                                                0x10FFFF)]
            return "".join(chr(rng.randint(*rng.choice(ranges)))
                           for _ in range(rng.randint(1, 60)))
        if kind == 2:  # long
            unit = rng.choice(["a", "gks ", "Làm giấy khai sinh ", "👍", "\u0301", " ", "\n"])
            return unit * (rng.choice([1000, 4096, 4097, 20_000, 60_000]) // len(unit))
        if kind == 3:  # a real question with something spliced in
            question = rng.choice(QUESTIONS)
            at = rng.randint(0, len(question))
            return question[:at] + rng.choice(JUNK_STRINGS) + question[at:]
        if kind == 4:
            return rng.choice(QUESTIONS + PAYLOADS + DATES + STATUSES)
        return "".join(rng.choice("0123456789.-:+ TZ") for _ in range(rng.randint(1, 30)))

    def junk_value(self) -> Any:
        """A JSON value of any type."""
        rng = self.rng
        kind = rng.randrange(10)
        if kind == 0:
            return rng.choice([None, True, False])
        if kind == 1:
            return rng.choice(INTS)
        if kind == 2:
            return rng.choice([0.5, -0.0, 1e308, -1e308, 5e-324, 1.0])
        if kind == 3:
            return self.json.raw(rng.choice(RAW_NUMBERS))
        if kind == 4:
            return [self.junk_text() for _ in range(rng.randint(0, 3))]
        if kind == 5:
            return {self.junk_text()[:20]: self.junk_text() for _ in range(rng.randint(0, 3))}
        if kind == 6:
            return self.json.raw(self.deep(rng.choice([30, 200, 999, 1001, 5000])))
        return self.junk_text()

    def deep(self, depth: int) -> str:
        """JSON text nested ``depth`` levels deep."""
        if self.rng.random() < 0.5:
            return "[" * depth + "1" + "]" * depth
        return '{"a":' * depth + "1" + "}" * depth

    def date_value(self) -> Any:
        """What a Unix ``date`` field might hold instead of a sensible time."""
        rng = self.rng
        return rng.choice([0, -1, -(10**12), 10**11, 10**12, 10**18, 2**63, -(2**63) - 1,
                           253402300800, -62135596801, 1.5e300, self.json.raw("1e999"),
                           self.json.raw("NaN"), "1764300000", None, [], {}])

    # -- mutation of a value tree -----------------------------------------------------------

    def _slots(self, value: Any, out: list[tuple[Any, Any]]) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                out.append((value, key))
                self._slots(item, out)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                out.append((value, index))
                self._slots(item, out)

    def mutate(self, tree: Any, times: int) -> Any:
        """``tree`` with ``times`` random changes at random places."""
        rng = self.rng
        for _ in range(times):
            slots: list[tuple[Any, Any]] = []
            self._slots(tree, slots)
            if not slots or rng.random() < 0.03:  # the whole body replaced
                tree = self.junk_value()
                continue
            parent, key = rng.choice(slots)
            current = parent[key]
            op = rng.randrange(9)
            if op == 0 and isinstance(parent, dict):
                del parent[key]
            elif op == 1:
                parent[key] = self.junk_value()
            elif op == 2:  # retyped
                parent[key] = (rng.choice(INTS) if isinstance(current, str)
                               else str(current) if isinstance(current, int | float)
                               else list(current.values()) if isinstance(current, dict)
                               else self.junk_text())
            elif op == 3:  # nested wrongly
                parent[key] = rng.choice([[current], {"x": current}, {str(key): current}])
            elif op == 4 and isinstance(parent, dict):
                parent[self.junk_text()[:40] or "x"] = self.junk_value()
            elif op == 5 and isinstance(current, str):
                at = rng.randint(0, len(current))
                parent[key] = current[:at] + self.junk_text() + current[at:]
            elif op == 6 and isinstance(current, int) and not isinstance(current, bool):
                parent[key] = rng.choice(INTS)
            elif op == 7 and key in ("date", "edit_date", "timestamp"):
                parent[key] = self.date_value()
            else:
                parent[key] = self.junk_text()
        return tree

    def body(self, tree: Any, *, deep_share: float = 0.04) -> bytes:
        """Request bytes for ``tree``, now and then broken at the byte level."""
        rng = self.rng
        roll = rng.random()
        if roll < deep_share:
            return self.deep(rng.choice([999, 1001, 5000, 50_000])).encode()
        raw = self.json.dumps(tree, ascii_only=rng.random() < 0.5)
        if roll < deep_share + 0.03:
            return raw[:rng.randint(0, len(raw))]  # truncated
        if roll < deep_share + 0.05:
            at = rng.randint(0, len(raw))
            return raw[:at] + rng.choice([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00",
                                          b"\xef\xbb\xbf"]) + raw[at:]
        if roll < deep_share + 0.06:
            return b"\xef\xbb\xbf" + raw  # a byte-order mark
        if roll < deep_share + 0.07:
            return raw + b" " * (MAX_BODY - len(raw) + 1) if len(raw) <= MAX_BODY else raw
        return raw

    # -- endpoints ------------------------------------------------------------------------

    def _next_update_id(self) -> int:
        if self.rng.random() < 0.03:  # a redelivery
            return self._update_id
        self._update_id += 1
        return self._update_id

    def telegram(self) -> Case:
        """A mutated Telegram update, with the right secret (most of the time)."""
        rng = self.rng
        update_id, chat = self._next_update_id(), rng.randint(1, 3000)
        kind = rng.randrange(6)
        if kind == 0:
            update = button_update(update_id, chat, rng.choice([*PAYLOADS, self.junk_text()]))
        elif kind == 1:  # a staff member answering a relayed message in the staff group
            update = text_update(update_id, STAFF_CHAT, rng.choice(QUESTIONS))
            update["message"]["chat"] = {"id": STAFF_CHAT, "type": "supergroup",
                                         "title": "Cán bộ"}
            update["message"]["reply_to_message"] = {
                "message_id": 7, "date": 1764300000, "chat": update["message"]["chat"],
                "text": rng.choice([f"[telegram:{chat}] gks", f"[web:w{chat}] hi",
                                    f"[zalo:z{chat}] ?", "no tag", self.junk_text()])}
        elif kind == 2:  # another update type, or a message without text
            update = text_update(update_id, chat, "x")
            message = update.pop("message")
            if rng.random() < 0.5:
                del message["text"]
                message[rng.choice(["sticker", "photo", "location", "new_chat_members"])] = (
                    self.junk_value())
                update["message"] = message
            else:
                update[rng.choice(["edited_message", "channel_post", "my_chat_member",
                                   "inline_query", "poll"])] = message
        else:
            update = text_update(update_id, chat, rng.choice(QUESTIONS)
                                 if rng.random() < 0.6 else self.junk_text())
        # A copy: the templates share the fake's bot user, which must stay intact.
        tree = self.mutate(copy.deepcopy(update), rng.choice([0, 1, 1, 2, 3, 5]))
        headers = {"Content-Type": "application/json",
                   "X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET}
        if rng.random() < 0.03:
            headers["X-Telegram-Bot-Api-Secret-Token"] = rng.choice(["", "wrong", "fuzz-secr"])
        return Case("telegram", "POST", "/webhook/telegram", self.body(tree), headers)

    def zalo(self) -> Case:
        """A mutated Zalo event: mostly correctly signed, else unsigned, forged or stale."""
        rng = self.rng
        event: dict[str, Any] = {
            "app_id": ZALO_APP_ID, "user_id_by_app": "552177279717587730",
            "event_name": rng.choice(["user_send_text"] * 6 + ["follow", "user_send_image",
                                                               "user_reacted_message"]),
            "timestamp": now_ms(rng.choice([0] * 20 + [-400, 400])),
            "sender": {"id": str(rng.randint(10**17, 10**17 + 3000))},
            "recipient": {"id": "579745863508352884"},
            "message": {"text": rng.choice(QUESTIONS + ["#" + p for p in PAYLOADS])
                        if rng.random() < 0.6 else self.junk_text(),
                        "msg_id": uuid.UUID(int=rng.getrandbits(128)).hex}}
        header_time = rng.random() < 0.1
        if header_time:  # one implementation puts the time in a header instead
            timestamp = event.pop("timestamp")
        tree = self.mutate(event, rng.choice([0, 1, 1, 2, 3, 5]))
        raw = self.body(tree, deep_share=0.06)
        if not header_time:  # signed with the time the body now says, as Zalo would
            found = tree.get("timestamp") if isinstance(tree, dict) else None
            timestamp = str(found) if isinstance(found, str | int) else now_ms()
            timestamp = timestamp if timestamp.isascii() else now_ms()  # refused anyway
        headers = {"Content-Type": "application/json"}
        roll = rng.random()
        if header_time:
            headers["X-ZEvent-Timestamp"] = timestamp
        if roll < 0.85:  # signed as Zalo signs: parsing is reached
            headers["X-ZEvent-Signature"] = sign(raw, app_id=ZALO_APP_ID,
                                                 oa_secret_key=ZALO_OA_SECRET,
                                                 timestamp=timestamp)
        elif roll < 0.9:
            headers["X-ZEvent-Signature"] = "mac=" + hashlib.sha256(raw).hexdigest()
        elif roll < 0.95:
            headers["X-ZEvent-Signature"] = rng.choice(["mac=", "mac", "sha256=00", "mac=zz"])
        return Case("zalo", "POST", "/webhook/zalo", raw, headers)

    def chat(self) -> Case:
        """A mutated web chat message."""
        rng = self.rng
        body: dict[str, Any] = {"user": f"web-{rng.randint(1, 3000)}"}
        if rng.random() < 0.7:
            body["text"] = rng.choice(QUESTIONS) if rng.random() < 0.5 else self.junk_text()
        else:
            body["payload"] = rng.choice(PAYLOADS) if rng.random() < 0.5 else self.junk_text()
        if rng.random() < 0.3:
            body["lang"] = rng.choice(["vi", "en", "fr", "", None, 1])
        tree = self.mutate(body, rng.choice([0, 1, 1, 2, 3]))
        headers = {"Content-Type": rng.choice(["application/json"] * 8 + ["text/plain", ""])}
        roll = rng.random()
        if roll < 0.5 and self.sessions:  # an open conversation goes on
            headers[SESSION_HEADER] = rng.choice(self.sessions)
        elif roll < 0.6:
            headers[SESSION_HEADER] = rng.choice(["", ".", "web-1.", "web-1.AAAA", "x" * 300,
                                                  "web-1.." + "A" * 32])
        if rng.random() < 0.05:
            headers["Origin"] = rng.choice(["http://evil.example", "null", "http://127.0.0.1"])
        return Case("chat", "POST", "/api/chat", self.body(tree), headers)

    def _auth(self) -> dict[str, str]:
        roll = self.rng.random()
        if roll < 0.9:
            return {"Authorization": f"Bearer {self.api_key}"}
        if roll < 0.93:
            return {"X-API-Key": self.api_key}
        return self.rng.choice([{}, {"Authorization": "Bearer "}, {"Authorization": "Basic x"},
                                {"X-API-Key": "forged"}, {"Authorization": "Bearer forged"}])

    def usually(self, good: Any, bad: list[Any]) -> Any:
        """``good`` four times in five, else one of ``bad``."""
        return good if self.rng.random() < 0.8 else self.rng.choice(bad)

    def _application(self) -> dict[str, Any]:
        rng = self.rng
        code = f"000.00.19.H26-2511{rng.randint(10, 30)}-{rng.randint(0, 9999):04d}"
        self._codes.append(code)
        return {"receipt_code": code,
                "procedure_code": self.usually("1.001193", ["1.000894", "9.999999", "x"]),
                "applicant_name": self.usually("Nguyễn Văn A", ["Trần Thị B", "x" * 300,
                                                               "y" * 5000, "\x00"]),
                "phone": self.usually("0912345678", ["+84912345678", "12", "0" * 40]),
                "channel": self.usually("Trực tuyến", ["Trực tiếp", "Bưu chính", "online", "?"]),
                "received_at": self.usually("2026-11-27T09:15:00+07:00", DATES),
                "status": self.usually("received", STATUSES)}

    def api_post(self) -> Case:
        """A mutated ``POST /api/v1/applications``."""
        rng = self.rng
        records = [self._application() for _ in range(rng.choice([1, 1, 1, 2, 5]))]
        for item in records:
            for name in ("due_at", "completed_at"):
                if rng.random() < 0.2:
                    item[name] = rng.choice(DATES)
        shape = rng.randrange(3)
        tree: Any = (records[0] if shape == 0 else records if shape == 1
                     else {"applications": records})
        tree = self.mutate(tree, rng.choice([0, 1, 1, 2, 3]))
        return Case("api-post", "POST", "/api/v1/applications", self.body(tree),
                    {"Content-Type": "application/json", **self._auth()})

    def _code_in_path(self) -> str:
        rng = self.rng
        roll = rng.random()
        if roll < 0.6:  # the sample application half the time: most posted ones were refused
            code = rng.choice([CODE, rng.choice(self._codes[-200:])])
            return code.lower() if rng.random() < 0.2 else code
        if roll < 0.8:
            return "".join(f"%{b:02X}" for b in self.junk_text()[:200].encode(
                "utf-8", "surrogatepass"))
        return rng.choice(["%00", "%ZZ", "..", "%2e%2e", "x" * 5000, "%C0%AE", "a%2Fb",
                           CODE.replace(".", "%2E")])

    def api_patch(self) -> Case:
        """A mutated ``PATCH /api/v1/applications/{code}``."""
        rng = self.rng
        body: dict[str, Any] = {"status": rng.choice(STATUSES)}
        for name in ("note", "completed_at", "changed_at"):
            if rng.random() < 0.4:
                body[name] = (self.usually("Đã bổ sung giấy tờ.", [self.junk_text()])
                              if name == "note" else self.usually(
                                  "2026-11-28T09:15:00+07:00", DATES))
        if rng.random() < 0.3:  # any move, with a note saying why (else a 409 mostly)
            body["correction"] = self.usually(True, [False, None, "true", 1])
            body.setdefault("note", "Nhập nhầm trạng thái.")
        tree = self.mutate(body, rng.choice([0, 1, 1, 2]))
        return Case("api-patch", "PATCH", f"/api/v1/applications/{self._code_in_path()}",
                    self.body(tree), {"Content-Type": "application/json", **self._auth()})

    def api_stats(self) -> Case:
        """``GET /api/v1/stats`` with a junk query."""
        rng = self.rng
        parts = []
        for _ in range(rng.randint(0, 3)):
            name = rng.choice(["from", "to", "from", "to", "x", ""])
            value = rng.choice([*DATES, "2026-11-01", "2026-11-30", "0000-00-00", "2026-1-1",
                                "20261101"]) if rng.random() < 0.6 else self.junk_text()[:300]
            encoded = "".join(c if (c.isalnum() and c.isascii()) or c in "-.:" else
                              "".join(f"%{b:02X}" for b in c.encode("utf-8", "surrogatepass"))
                              for c in value)
            parts.append(f"{name}={encoded}")
        if rng.random() < 0.05:
            parts.append(rng.choice(["%", "%zz", "from", "=&=&", "from=%FF%FE"]))
        query = "&".join(parts)
        return Case("api-stats", "GET", "/api/v1/stats" + (f"?{query}" if query else ""),
                    headers=self._auth())

    def api_broadcasts(self) -> Case:
        """A mutated ``POST /api/v1/broadcasts``, or a broadcast's status, send or cancel."""
        rng = self.rng
        if rng.random() < 0.4 or not self.broadcasts:
            tree: Any = {"text": self.usually("Thứ Bảy tiêm chủng tại nhà văn hoá thôn 3.",
                                              ["", " ", "x" * 1801, self.junk_text()])}
            for name, good, bad in (
                    ("link", "https://hatmon.example/tb", ["ftp://x", "http://", "x" * 600]),
                    ("image", "https://hatmon.example/a.jpg", ["http://x/a.jpg", "https://",
                                                               "https://" + "a" * 2050]),
                    ("audience", "hamlet", ["all", "lang", "field", "procedure", "x", ""]),
                    ("value", "thôn Đông 3", ["en", "vi", "", "1.001193", "Hộ tịch"])):
                if rng.random() < 0.3:
                    tree[name] = self.usually(good, [*bad, self.junk_text()])
            tree = self.mutate(tree, rng.choice([0, 1, 1, 2]))
            return Case("api-broadcasts", "POST", "/api/v1/broadcasts", self.body(tree),
                        {"Content-Type": "application/json", **self._auth()})
        path = f"/api/v1/broadcasts/{self._broadcast_in_path()}"
        action = rng.choice(["", "/send", "/send", "/cancel"])
        if not action:
            return Case("api-broadcasts", "GET", path, headers=self._auth())
        body = b""
        if action == "/send" and rng.random() < 0.5:  # at a time, or junk
            at = self.usually("2026-12-08T07:30:00+07:00", DATES)
            body = self.body(self.mutate({"at": at}, rng.choice([0, 0, 1])))
        headers = {"Content-Type": "application/json"} if body else {}
        return Case("api-broadcasts", "POST", path + action, body, {**headers, **self._auth()})

    def _broadcast_in_path(self) -> str:
        rng = self.rng
        if rng.random() < 0.8:
            return str(rng.choice(self.broadcasts[-50:]))
        return rng.choice(["0", "999999999", "1234567890", "-1", "%31", "1%00", "x", "%00",
                           "1.5", "01", "%EF%BC%91", "1e3"])

    def cases(self, endpoint: str, n: int) -> Iterator[Case]:
        """``n`` cases for one endpoint (made as they are sent: Zalo's times must be fresh)."""
        make: dict[str, Callable[[], Case]] = {
            "telegram": self.telegram, "zalo": self.zalo, "chat": self.chat,
            "api-post": self.api_post, "api-patch": self.api_patch, "api-stats": self.api_stats,
            "api-broadcasts": self.api_broadcasts}
        for _ in range(n):
            yield make[endpoint]()


def split_cases(total: int) -> dict[str, int]:
    """How many of ``total`` cases each endpoint gets (by ``WEIGHTS``)."""
    weight = sum(WEIGHTS.values())
    counts = {name: total * share // weight for name, share in WEIGHTS.items()}
    counts["telegram"] += total - sum(counts.values())
    return counts


# -- what went wrong, with the input that did it ---------------------------------------------


@dataclass
class Finding:
    """One kind of failure: an exception type at one place in our code (or a bad status)."""

    endpoint: str
    kind: str  # "500" (answered 5xx) or "logged" (swallowed and logged by the server)
    summary: str
    count: int = 0
    stack: str = ""
    example: str = ""


def _origin(exc: BaseException) -> str:
    """Where an exception was raised: the innermost frame in this project, else the last."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if str(ROOT) in f.filename and "/.venv" not in f.filename]
    if not frames:
        return "?"
    frame = (ours or frames)[-1]
    return f"{Path(frame.filename).name}:{frame.lineno} {frame.name}"


def _shown(case: Case | None) -> str:
    if case is None:
        return "(request not kept)"
    body = case.body if len(case.body) <= 600 else case.body[:600] + b"..."
    return f"{case.method} {case.path[:300]}\n{body!r}"


class Findings(logging.Handler):
    """Collects the exceptions behind 5xx answers (a middleware) and logged exceptions (a
    logging handler), each attributed to the case that caused it."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.found: dict[tuple[str, str, str], Finding] = {}
        self.in_flight: dict[str, Case] = {}
        self._seen: set[int] = set()

    def add(self, case_id: str, kind: str, summary: str, stack: str) -> None:
        """Count one failure of ``case_id``."""
        case = self.in_flight.get(case_id)
        endpoint = case.endpoint if case else case_id.partition(":")[0] or "?"
        finding = self.found.setdefault((endpoint, kind, summary),
                                        Finding(endpoint, kind, summary, stack=stack,
                                                example=_shown(case)))
        finding.count += 1

    @web.middleware
    async def middleware(self, request: web.Request,
                         handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                         ) -> web.StreamResponse:
        """Note which case is being handled; record an exception that escapes a handler."""
        case_id = request.headers.get(CASE_HEADER, "")
        CURRENT_CASE.set(case_id)
        try:
            response = await handler(request)
        except web.HTTPException:
            raise
        except Exception as exc:
            self.add(case_id, "500", f"{type(exc).__name__} at {_origin(exc)}",
                     "".join(traceback.format_exception(exc)))
            self._seen.add(id(exc))  # aiohttp logs it next: counted once
            raise
        if response.status >= 500 and response.status != 503:
            self.add(case_id, "500", f"answered {response.status}", "")
        return response

    def emit(self, record: logging.LogRecord) -> None:
        """A logged exception (PTB's and aiohttp's error logs, our own log.exception)."""
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None or id(exc) in self._seen:
            self._seen.discard(id(exc))
            return
        self.add(CURRENT_CASE.get(), "logged",
                 f"{type(exc).__name__} at {_origin(exc)} ({record.name})",
                 "".join(traceback.format_exception(exc)))

    def report(self) -> str:
        """Markdown: every finding with its count, one input and its stack."""
        if not self.found:
            return "No exceptions.\n"
        out = []
        for f in sorted(self.found.values(), key=lambda f: (f.kind, f.endpoint, -f.count)):
            out.append(f"## {f.endpoint}: {f.kind}: {f.summary} ({f.count} cases)\n\n"
                       f"Example input:\n\n```\n{f.example}\n```\n")
            if f.stack:
                out.append(f"```\n{f.stack.rstrip()}\n```\n")
        return "\n".join(out)


# -- the server and the run ------------------------------------------------------------------


@dataclass
class EndpointResult:
    """What one endpoint answered."""

    cases: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def failures(self) -> int:
        """5xx other than a deliberate 503, and connections the server dropped."""
        return sum(n for s, n in self.statuses.items()
                   if (s.startswith("5") and s != "503") or not s.isdigit())


@dataclass
class Report:
    """The whole run."""

    seed: int
    results: dict[str, EndpointResult]
    findings: Findings
    healthy: bool = False
    health_problem: str = ""
    seconds: float = 0.0

    @property
    def failures(self) -> int:
        """Cases answered 5xx (not 503) or dropped, over all endpoints."""
        return sum(r.failures for r in self.results.values())

    def table(self) -> str:
        """The per-endpoint summary."""
        lines = [f"seed {self.seed}; {sum(r.cases for r in self.results.values())} cases in "
                 f"{self.seconds:.1f} s"]
        for name, r in self.results.items():
            codes = ", ".join(f"{s}: {n}" for s, n in sorted(r.statuses.items()))
            rate = r.cases / r.seconds if r.seconds else 0.0
            lines.append(f"  {name:10} {r.cases:6} cases  5xx (not 503): {r.failures:5}  "
                         f"{rate:6.0f}/s  [{codes}]")
        lines.append("server healthy afterwards" if self.healthy
                     else f"server NOT healthy afterwards: {self.health_problem}")
        return "\n".join(lines)


@asynccontextmanager
async def serving(office: Office, assistant: Assistant, findings: Findings
                  ) -> AsyncIterator[tuple[URL, str]]:
    """The application as ``python -m bot serve`` wires it, every channel on, against fake
    Telegram and Zalo servers; yields its base URL and an API key."""
    telegram = FakeTelegram(TELEGRAM_TOKEN)
    async with TestServer(telegram.app()) as telegram_api, \
            TestServer(FakeZalo(ZALO_APP_ID, ZALO_APP_SECRET, access_token="at-1",
                                refresh_token="rt-1").app()) as zalo_api:
        config = TelegramConfig(token=TELEGRAM_TOKEN, webhook_secret=TELEGRAM_SECRET,
                                api_base_url=str(telegram_api.make_url("")).rstrip("/"),
                                staff_chat_id=str(STAFF_CHAT))
        zalo_url = str(zalo_api.make_url("")).rstrip("/")
        zalo = ZaloConfig(app_id=ZALO_APP_ID, app_secret=ZALO_APP_SECRET,
                          oa_secret_key=ZALO_OA_SECRET, access_token="at-1",
                          refresh_token="rt-1", api_base_url=zalo_url, oauth_base_url=zalo_url)
        settings = Settings(secret_key="fuzz-session-key", limit_chat_user=UNLIMITED,
                            limit_chat_address=UNLIMITED, limit_api_key=UNLIMITED,
                            limit_address=UNLIMITED)
        app = create_app(assistant, office, staff_channel=True, settings=settings)
        app.middlewares.insert(0, findings.middleware)  # outermost: sees every exception
        add_telegram_routes(app, build_application(config, app[DIALOGUE]), config)
        zalo_client = ZaloClient(zalo, office)
        add_zalo_routes(app, dialogue=app[DIALOGUE], config=zalo, client=zalo_client)
        key = await create_api_key(office, f"fuzz-{uuid.uuid4().hex[:8]}")
        try:
            async with TestServer(app) as server:
                yield server.make_url(""), key
        finally:
            await zalo_client.close()


async def _send(http: aiohttp.ClientSession, base: URL, case: Case) -> tuple[str, bytes]:
    """The status code as text (or the name of the error when the connection broke), and
    the answer's body."""
    url = URL(str(base).rstrip("/") + case.path, encoded=True)
    try:
        async with http.request(case.method, url, data=case.body or None,
                                headers=case.headers) as response:
            return str(response.status), await response.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        return type(exc).__name__, b""


def _created(answer: bytes) -> int | None:
    """The id of the broadcast a ``POST /api/v1/broadcasts`` answer made, if any."""
    try:
        made = json.loads(answer).get("id")
    except (ValueError, AttributeError):
        return None
    return made if isinstance(made, int) else None


def _session(answer: bytes) -> str:
    """The web chat session token a chat answer opened, if any."""
    try:
        token = json.loads(answer).get("session")
    except (ValueError, AttributeError):
        return ""
    return token if isinstance(token, str) else ""


async def healthy(http: aiohttp.ClientSession, base: URL) -> str:
    """"" when the server answers its health check and a plain question, else what failed."""
    async with http.get(base / "healthz") as response:
        if response.status != 200:
            return f"GET /healthz answered {response.status}"
    async with http.post(base / "api/chat", json={"text": "làm giấy khai sinh cần gì"}) as r:
        body = await r.json() if r.status == 200 else {}
        texts = [reply.get("text", "") for reply in body.get("replies", [])]
        if not any("1.001193" in text for text in texts):
            return f"a plain question answered {r.status} without the procedure"
    return ""


async def fuzz(office: Office, assistant: Assistant, *, cases: int, seed: int,
               progress: Callable[[str], None] | None = None) -> Report:
    """Send ``cases`` mutated requests (seeded) to every endpoint of a server on ``office``."""
    async with session_scope(office.sessions) as session:  # something to look up and patch
        await repo.upsert_applications(session, commune_id=office.commune_id, actor="fuzz",
                                       now=T0, records=[record(CODE)])
    findings = Findings()
    root = logging.getLogger()
    root.addHandler(findings)
    results: dict[str, EndpointResult] = {}
    started = time.perf_counter()
    try:
        async with serving(office, assistant, findings) as (base, key), \
                aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY),
                                      timeout=aiohttp.ClientTimeout(total=60)) as http:
            fuzzer = Fuzzer(seed, api_key=key)
            for endpoint, n in split_cases(cases).items():
                result = results[endpoint] = EndpointResult(cases=n)
                pending = enumerate(fuzzer.cases(endpoint, n))

                async def worker(result: EndpointResult = result,
                                 pending: Iterator[tuple[int, Case]] = pending,
                                 endpoint: str = endpoint) -> None:
                    for index, case in pending:
                        case_id = f"{endpoint}:{index}"
                        case.headers[CASE_HEADER] = case_id
                        findings.in_flight[case_id] = case
                        status, answer = await _send(http, base, case)
                        result.statuses[status] += 1
                        if endpoint == "chat" and status == "200" and (token := _session(answer)):
                            fuzzer.sessions = [*fuzzer.sessions[-SESSIONS + 1:], token]
                        if endpoint == "api-broadcasts" and status == "201" and (
                                made := _created(answer)) is not None:
                            fuzzer.broadcasts.append(made)
                        findings.in_flight.pop(case_id, None)

                began = time.perf_counter()
                await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
                result.seconds = time.perf_counter() - began
                if progress:
                    progress(f"{endpoint}: {n} cases in {result.seconds:.1f} s, "
                             f"{result.failures} failures")
            problem = await healthy(http, base)
    finally:
        root.removeHandler(findings)
    return Report(seed, results, findings, healthy=not problem, health_problem=problem,
                  seconds=time.perf_counter() - started)


async def main() -> int:
    """Parse the options, run the fuzz on a fresh database, print and write the findings."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database", default="", help="default: SQLite in a temporary file")
    parser.add_argument("--findings", type=Path, help="write the findings (markdown) here")
    args = parser.parse_args()
    logging.getLogger().setLevel(logging.ERROR)  # the findings collect errors; nothing printed
    from bot.cli import build_knowledge

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(database_url=args.database or f"sqlite:///{tmp}/fuzz.sqlite3")
        kb = build_knowledge([], settings.communes[0].slug)
        async with open_office(settings, kb) as office:
            report = await fuzz(office, Assistant(kb), cases=args.cases, seed=args.seed,
                                progress=lambda line: print(line, flush=True))
    database = "PostgreSQL" if "postgres" in args.database else "SQLite"
    print(f"{database}; {report.table()}")
    findings = report.findings.report()
    print(f"\n{len(report.findings.found)} kinds of exception:")
    for f in report.findings.found.values():
        print(f"  {f.endpoint:10} {f.kind:6} {f.count:6}  {f.summary}")
    if args.findings:
        args.findings.write_text(f"# Fuzz findings ({database}, seed {args.seed}, "
                                 f"{args.cases} cases)\n\n{report.table()}\n\n{findings}",
                                 encoding="utf-8")
    return 1 if report.failures or not report.healthy else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
