"""Rate limits for the public endpoints: who a client is, and how often it may ask.

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

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.storage.redis.redispy import RedispyBridge
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError

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
