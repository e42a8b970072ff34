"""No input gives a 500: a seeded sample of ``bench/fuzz.py``'s mutations on every endpoint."""

import json

import aiohttp
import pytest

from bench.fuzz import ZALO_APP_ID, ZALO_OA_SECRET, Findings, Fuzzer, fuzz, serving, split_cases
from handlers.applications import Office
from knowledge.answer import Assistant
from tests.fakes.zalo import now_ms, sign

CASES = 1500
SEED = 20261127


def test_the_cases_are_repeatable_and_spread_over_every_endpoint() -> None:
    counts = split_cases(CASES)
    assert sum(counts.values()) == CASES and all(counts.values())

    def sample(seed: int) -> list[tuple[str, bytes]]:
        fuzzer = Fuzzer(seed, api_key="k")
        # Zalo's events carry the current time: compare the rest.
        return [(c.path, c.body) for name, n in counts.items() if name != "zalo"
                for c in fuzzer.cases(name, n // 10)]

    assert sample(SEED) == sample(SEED)
    assert sample(SEED) != sample(SEED + 1)


async def test_no_mutated_request_gives_a_500(office: Office, assistant: Assistant,
                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("CRITICAL")  # thousands of refused requests are logged by design
    report = await fuzz(office, assistant, cases=CASES, seed=SEED)
    assert report.failures == 0, f"{report.table()}\n{report.findings.report()}"
    assert report.healthy, report.health_problem
    for name, result in report.results.items():
        # Each endpoint was reached past its checks, and refused the junk clearly.
        assert result.statuses["200"] > 0, (name, result.statuses)
        assert any(s.startswith("4") for s in result.statuses), (name, result.statuses)


async def test_zalo_checks_the_signature_before_reading_the_body(
        office: Office, assistant: Assistant) -> None:
    deep = b"[" * 30_000 + b"]" * 30_000  # within the size limit, far past the recursion limit
    stamp = now_ms()
    event = {"app_id": ZALO_APP_ID, "event_name": "user_send_text", "timestamp": stamp,
             "sender": {"id": "2468"}, "message": {"text": "gks", "msg_id": "m1"}}
    raw = json.dumps(event).encode()

    def signed(body: bytes, timestamp: str) -> dict[str, str]:
        return {"X-ZEvent-Signature": sign(body, app_id=ZALO_APP_ID,
                                           oa_secret_key=ZALO_OA_SECRET, timestamp=timestamp)}

    async with serving(office, assistant, Findings()) as (base, _), \
            aiohttp.ClientSession() as http:
        async def post(body: bytes, headers: dict[str, str]) -> int:
            async with http.post(base / "webhook/zalo", data=body, headers=headers) as r:
                return r.status

        now = now_ms()
        assert await post(deep, {"X-ZEvent-Signature": "mac=" + "0" * 64,
                                 "X-ZEvent-Timestamp": now}) == 401
        assert await post(deep, {**signed(deep, now), "X-ZEvent-Timestamp": now}) == 400
        # Signed with the header's time while the body states another: not Zalo's event.
        other = str(int(stamp) - 1)
        assert await post(raw, {**signed(raw, other), "X-ZEvent-Timestamp": other}) == 401
        assert await post(raw, signed(raw, stamp)) == 200
