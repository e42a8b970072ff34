"""Rate limits: who a client is behind proxies, budgets in memory and shared through Redis,
and what happens when Redis is away."""

import logging
import os
import uuid
from collections.abc import AsyncIterator

import pytest

from bot.limits import Limiter, client_address, parse_limit, parse_networks
from bot.settings import Settings

REDIS = os.environ.get("MOTCUA_TEST_REDIS", "redis://127.0.0.1:6379/0")
PROXIES = parse_networks("10.0.0.0/8, 127.0.0.1")


@pytest.mark.parametrize(("peer", "forwarded", "expected"), [
    ("203.0.113.5", None, "203.0.113.5"),
    ("203.0.113.5", "198.51.100.1", "203.0.113.5"),  # not a proxy of ours: header ignored
    ("127.0.0.1", "198.51.100.1", "198.51.100.1"),
    ("127.0.0.1", "6.6.6.6, 198.51.100.1", "198.51.100.1"),  # the client wrote "6.6.6.6"
    ("127.0.0.1", "198.51.100.1, 10.1.2.3", "198.51.100.1"),  # two proxies of ours
    ("127.0.0.1", "10.9.9.9, 10.1.2.3", "10.9.9.9"),  # every hop ours: the farthest
    ("127.0.0.1", "not-an-address", "127.0.0.1"),
    ("127.0.0.1", "2001:db8::1", "2001:db8::1"),
    (None, None, "unknown"),
])
def test_client_address(peer: str | None, forwarded: str | None, expected: str) -> None:
    assert client_address(peer, forwarded, PROXIES) == expected


async def test_budget_refuses_with_the_time_to_wait() -> None:
    limiter = Limiter()
    budget = parse_limit("3/minute")
    assert [await limiter.hit(budget, "address", "a") for _ in range(3)] == [0, 0, 0]
    wait = await limiter.hit(budget, "address", "a")
    assert 55 <= wait <= 60
    assert await limiter.waiting(budget, "address", "a") == wait
    assert await limiter.hit(budget, "address", "b") == 0  # another client is unaffected


@pytest.fixture
async def shared() -> AsyncIterator[tuple[Limiter, Limiter]]:
    """Two instances' limiters on one Redis (a fresh key prefix per test)."""
    prefix = f"motcua-test-{uuid.uuid4().hex[:8]}"
    first, second = Limiter(REDIS, prefix=prefix), Limiter(REDIS, prefix=prefix)
    yield first, second
    await first.close()
    await second.close()


async def test_instances_share_counts_through_redis(shared: tuple[Limiter, Limiter]) -> None:
    first, second = shared
    budget = parse_limit("4/minute")
    results = [await (first if i % 2 else second).hit(budget, "chat-user", "web-1")
               for i in range(4)]
    assert results == [0, 0, 0, 0]
    assert await first.hit(budget, "chat-user", "web-1") > 0
    assert await second.hit(budget, "chat-user", "web-1") > 0
    assert first.shared and second.shared


async def test_redis_away_falls_back_to_memory_with_a_warning(
        caplog: pytest.LogCaptureFixture) -> None:
    limiter = Limiter("redis://127.0.0.1:1/0")  # nothing listens on port 1
    budget = parse_limit("2/minute")
    with caplog.at_level(logging.WARNING, logger="bot.limits"):
        results = [await limiter.hit(budget, "address", "a") for _ in range(3)]
    assert results[:2] == [0, 0] and results[2] > 0  # still limited, never an error
    assert not limiter.shared
    warnings = [r for r in caplog.records if "Redis unreachable" in r.getMessage()]
    assert len(warnings) == 1  # once per outage, not once per request
    await limiter.close()


@pytest.mark.parametrize(("name", "value"), [
    ("MOTCUA_LIMIT_CHAT_USER", "lots"), ("MOTCUA_TRUSTED_PROXIES", "10.0.0.0/33"),
    ("MOTCUA_BODY_TIMEOUT", "0"), ("MOTCUA_KEEPALIVE_TIMEOUT", "soon"),
])
def test_bad_settings_stop_the_start(name: str, value: str) -> None:
    with pytest.raises(SystemExit, match=name):
        Settings.from_env({name: value})


def test_settings_from_the_environment() -> None:
    settings = Settings.from_env({
        "MOTCUA_LIMIT_CHAT_USER": "10 per minute", "MOTCUA_TRUSTED_PROXIES": "10.0.0.1 fd00::/8",
        "MOTCUA_EMBED_ORIGINS": "https://hatmon.hanoi.gov.vn,https://*.gov.vn",
        "MOTCUA_REDIS_URL": REDIS, "MOTCUA_SECRET_KEY": "s3cret"})
    assert settings.limit_chat_user == "10 per minute"
    assert settings.limit_chat_address == "60/minute"  # defaults stay
    assert [str(n) for n in settings.trusted_proxies] == ["10.0.0.1/32", "fd00::/8"]
    assert settings.embed_origins == ("https://hatmon.hanoi.gov.vn", "https://*.gov.vn")
    assert "s3cret" not in repr(settings)
