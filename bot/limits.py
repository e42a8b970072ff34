"""Rate limits: who a client of the public endpoints is and how often it may ask, and the
channels' send slots shared by every process (``SharedSlots``, for the outbox's pace).

Counts live in Redis when ``MOTCUA_REDIS_URL`` is set, so that every instance shares them, and
in this process otherwise. A Redis outage never fails a request: counting moves to memory for a
while (with a warning) and goes back to Redis when it answers again.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time
from collections.abc import Sequence

import redis.asyncio as aioredis
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.storage.redis.redispy import RedispyBridge
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from redis.exceptions import RedisError

log = logging.getLogger(__name__)
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
REDIS_RETRY_SECONDS = 30.0  # how long counting stays in memory after Redis failed
REDIS_TIMEOUT_SECONDS = 0.5  # a limiter slower than this would be worse than none


def parse_limit(text: str) -> RateLimitItem:
    """``"20/minute"``, ``"60 per minute"``, ``"1000/hour"``; ValueError when not a limit."""
    return parse(text)


def parse_networks(text: str) -> tuple[Network, ...]:
    """Comma- or space-separated addresses and CIDRs; ValueError names a bad one."""
    return tuple(ipaddress.ip_network(part, strict=False)
                 for part in text.replace(",", " ").split())


def client_address(peer: str | None, forwarded_for: str | None,
                   trusted: Sequence[Network]) -> str:
    """The address a request came from: the peer, or, when the peer is a trusted proxy, the
    nearest ``X-Forwarded-For`` entry that is not itself a trusted proxy."""
    address = peer or "unknown"
    if not forwarded_for or not _trusted(address, trusted):
        return address
    # Read from the right: entries left of the first untrusted hop are whatever the client
    # chose to send, and must not pick the bucket it is counted in.
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return address  # garbage from a client: count the proxy's own view
        address = hop
        if not _trusted(hop, trusted):
            break
    return address


def _trusted(address: str, trusted: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


class Limiter:
    """Moving-window counters: ``hit`` says whether one more request fits, and if not, when
    to come back."""

    def __init__(self, redis_url: str = "", *, prefix: str = "motcua") -> None:
        self.memory = MovingWindowRateLimiter(MemoryStorage())
        self.redis: MovingWindowRateLimiter | None = None
        self.redis_url = redis_url
        self.redis_down_until = 0.0
        if redis_url:
            storage = RedisStorage(
                "async+" + redis_url, implementation="redispy", key_prefix=prefix,
                wrap_exceptions=True, socket_timeout=REDIS_TIMEOUT_SECONDS,
                socket_connect_timeout=REDIS_TIMEOUT_SECONDS)
            self.redis = MovingWindowRateLimiter(storage)

    @property
    def shared(self) -> bool:
        """Whether counts are currently kept in Redis (shared by every instance)."""
        return self.redis is not None and time.monotonic() >= self.redis_down_until

    async def hit(self, limit: RateLimitItem, *key: str) -> int:
        """Count one request against ``limit`` for ``key``: 0 when it fits, else the seconds
        until it would (for ``Retry-After``)."""
        if self.redis is not None and self.shared:
            try:
                return await self._hit(self.redis, limit, key)
            except (StorageError, OSError) as exc:
                self.redis_down_until = time.monotonic() + REDIS_RETRY_SECONDS
                log.warning("rate limits: Redis unreachable (%s); counting in this process "
                            "for %.0f s", type(exc).__name__, REDIS_RETRY_SECONDS)
        return await self._hit(self.memory, limit, key)

    async def waiting(self, limit: RateLimitItem, *key: str) -> int:
        """Without counting: 0 when ``limit`` has room left for ``key``, else the seconds
        until it will."""
        limiter = self.redis if self.redis is not None and self.shared else self.memory
        try:
            if await limiter.test(limit, *key):
                return 0
            stats = await limiter.get_window_stats(limit, *key)
        except (StorageError, OSError):
            return 0  # hit() notices the outage and says so
        return max(1, math.ceil(stats.reset_time - time.time()))

    @staticmethod
    async def _hit(limiter: MovingWindowRateLimiter, limit: RateLimitItem,
                   key: tuple[str, ...]) -> int:
        if await limiter.hit(limit, *key):
            return 0
        stats = await limiter.get_window_stats(limit, *key)
        return max(1, math.ceil(stats.reset_time - time.time()))

    async def close(self) -> None:
        """Release the Redis connections."""
        storage = None if self.redis is None else self.redis.storage
        if isinstance(storage, RedisStorage) and isinstance(storage.bridge, RedispyBridge):
            await storage.bridge.storage.aclose()


# Reserve one send: the next free slot of every overall rate (a channel within another counts
# against both) and, unless the recipient was messaged too recently, its next turn. Atomic, on
# Redis's clock, so processes on several machines agree.
#   KEYS[1] the recipient; KEYS[2..] the overall rates
#   ARGV[1] seconds between two messages to the recipient (0: no limit)
#   ARGV[2] seconds of idle slots that may be caught up; ARGV[3..] each rate's interval
# Returns {1, wait}: send in ``wait`` seconds (slot reserved); {0, wait}: the recipient is free
# in ``wait`` seconds (nothing reserved).
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local slot = now
if #KEYS > 1 then slot = now - tonumber(ARGV[2]) end
for i = 2, #KEYS do
  slot = math.max(slot, tonumber(redis.call('GET', KEYS[i]) or '0'))
end
local at = math.max(slot, now)
local turn = tonumber(redis.call('GET', KEYS[1]) or '0')
if turn > at then return {0, tostring(turn - now)} end
for i = 2, #KEYS do
  redis.call('SET', KEYS[i], tostring(slot + tonumber(ARGV[i + 1])), 'EX', 3600)
end
local gap = tonumber(ARGV[1])
if gap > 0 then
  redis.call('SET', KEYS[1], tostring(at + gap), 'EX', math.ceil(at - now + gap) + 5)
end
return {1, tostring(slot - now)}
"""
# Nothing to ``KEYS[1]`` for ``ARGV[1]`` seconds from now (a 429 from the channel).
_HOLD = """
local t = redis.call('TIME')
local until_ = tonumber(t[1]) + tonumber(t[2]) / 1000000 + tonumber(ARGV[1])
local free = tonumber(redis.call('GET', KEYS[1]) or '0')
if until_ > free then
  redis.call('SET', KEYS[1], tostring(until_), 'EX', math.ceil(tonumber(ARGV[1])) + 5)
end
return 1
"""


class SharedSlots:
    """The channels' send slots in Redis, shared by every process sending for the same bot:
    its overall rate (Telegram: about 30 messages/s) and each chat's turn hold across
    processes. ``reserve`` and ``hold`` raise ``RedisError`` or ``OSError`` when Redis does
    not answer; ``up`` is False for a while after (the caller paces on its own share then)."""

    def __init__(self, redis_url: str, *, prefix: str = "motcua:pace") -> None:
        self.client = aioredis.Redis.from_url(
            redis_url, socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS)
        self.prefix = prefix
        self._reserve = self.client.register_script(_RESERVE)
        self._hold = self.client.register_script(_HOLD)
        self.down_until = 0.0

    @property
    def up(self) -> bool:
        """Whether Redis is used now (it failed less than ``REDIS_RETRY_SECONDS`` ago: no)."""
        return time.monotonic() >= self.down_until

    def failed(self, exc: BaseException) -> None:
        """Pace in this process for a while: Redis did not answer."""
        self.down_until = time.monotonic() + REDIS_RETRY_SECONDS
        log.warning("outbox pace: Redis unreachable (%s); pacing on this process's share for "
                    "%.0f s", type(exc).__name__, REDIS_RETRY_SECONDS)

    async def reserve(self, rates: Sequence[tuple[str, float]], recipient: str,
                      per_recipient: float, burst: float) -> tuple[bool, float]:
        """Reserve the next slot of each ``(name, messages/s)`` and ``recipient``'s turn
        (``per_recipient`` messages/s, 0: any): ``(True, seconds to wait before sending)``,
        or ``(False, seconds until the recipient's turn)`` with nothing reserved."""
        keys = [f"{self.prefix}:to:{recipient}", *(f"{self.prefix}:rate:{n}" for n, _ in rates)]
        args = [1 / per_recipient if per_recipient > 0 else 0, burst,
                *(1 / rate for _, rate in rates)]
        reserved, wait = await self._reserve(keys=keys, args=args)
        return bool(int(reserved)), float(wait)

    async def hold(self, key: str, seconds: float, *, rate: bool = False) -> None:
        """Nothing to recipient ``key`` (or, with ``rate``, at the overall rate ``key``) for
        ``seconds``."""
        await self._hold(keys=[f"{self.prefix}:{'rate' if rate else 'to'}:{key}"],
                         args=[seconds])

    async def close(self) -> None:
        """Release the connections."""
        await self.client.aclose()


SharedError = (RedisError, OSError)  # what a Redis that does not answer raises
