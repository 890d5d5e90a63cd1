"""One token bucket per AWS account, shared by every worker process through Redis.

Route53 limits API requests per AWS *account*, all operations together (route53.md, "API limits": historically
5 requests/s; since July 2026 a bucket of 10/s refill with a burst of 50). A limiter per process would let N
workers send N times the rate and collect `Throttling` errors, so the bucket lives in Redis and a Lua script
takes tokens atomically. The script reads Redis's own clock (`TIME`), so workers on machines whose clocks
disagree still share one consistent bucket.

A caller *reserves* its token: when the bucket is empty the token count goes negative and the caller is told
how long to sleep for its turn. One round trip per request, no polling, and waiting callers are served in the
order they asked. A reservation that would wait longer than `max_wait` is not taken and raises
`ProviderError(retryable=True)` instead.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import redis as redis_lib

from records.providers.base import ProviderError

__all__ = [
    "DEFAULT_BURST",
    "DEFAULT_RATE",
    "LocalTokenBucket",
    "RateLimiter",
    "RedisTokenBucket",
    "expected_max_requests",
    "local_bucket",
]

# Route53's documented per-account rate for older accounts and partitions; a newer account can configure 10/s
# with a burst of 50 (route53.md, "API limits").
DEFAULT_RATE = 5.0
DEFAULT_BURST = 5
DEFAULT_MAX_WAIT = 60.0
KEY_PREFIX = "dnsportal:route53:bucket:"

# KEYS[1] = the account's bucket; ARGV = rate (tokens/s), burst, max wait (s).
# Returns {granted (1 or 0), wait in microseconds}. State: tokens (may be negative: reserved by callers that
# are sleeping until their turn) and the time of the last refill, in microseconds of Redis's clock.
_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
if now > ts then
  tokens = math.min(burst, tokens + (now - ts) * rate / 1000000)
  ts = now
end
local wait = 0
if tokens < 1 then
  wait = (1 - tokens) / rate
end
if wait > max_wait then
  return {0, math.ceil(wait * 1000000)}
end
tokens = tokens - 1
redis.call('HSET', KEYS[1], 'tokens', string.format('%.9f', tokens), 'ts', string.format('%.0f', ts))
-- the key outlives the time the bucket needs to refill completely, then Redis drops it (= a full bucket)
redis.call('PEXPIRE', KEYS[1], math.ceil(((burst - tokens) / rate + 1) * 1000))
return {1, math.ceil(wait * 1000000)}
"""


class RateLimiter(Protocol):
    """What the provider needs: block until the account may send one more request."""

    def acquire(self, account_key: str) -> float:
        """Take one token for `account_key`, sleeping until it is due; returns the seconds waited."""
        ...


def _check(rate: float, burst: int, max_wait: float) -> None:
    if not rate > 0:
        raise ValueError("rate must be a positive number of requests per second")
    if burst < 1:
        raise ValueError("burst must be at least 1 request")
    if max_wait < 0:
        raise ValueError("max_wait must not be negative")


def _too_long(account_key: str, wait: float, max_wait: float, rate: float) -> ProviderError:
    return ProviderError(
        f"Route53 request budget for account {account_key or '(default)'} is exhausted: the next request "
        f"would wait {wait:.1f} s (more than {max_wait:.0f} s) at {rate:g} requests/s; other workers are "
        "busy with this account, try again later",
        retryable=True,
    )


class RedisTokenBucket:
    """The shared per-account bucket in Redis (see the module docstring).

    `redis` is a redis-py client; `rate` tokens per second refill a bucket of `burst` tokens. `sleep` is
    injectable so tests can observe waits.
    """

    def __init__(
        self,
        redis: Any,
        *,
        rate: float = DEFAULT_RATE,
        burst: int = DEFAULT_BURST,
        max_wait: float = DEFAULT_MAX_WAIT,
        sleep: Callable[[float], None] = time.sleep,
        key_prefix: str = KEY_PREFIX,
    ) -> None:
        _check(rate, burst, max_wait)
        self.rate, self.burst, self.max_wait = float(rate), int(burst), float(max_wait)
        self._redis = redis
        self._script = redis.register_script(_LUA)
        self._sleep = sleep
        self._prefix = key_prefix

    def acquire(self, account_key: str) -> float:
        """Reserve one token for the account and sleep until it is due; returns the seconds waited."""
        try:
            granted, wait_us = self._script(
                keys=[self._prefix + account_key], args=[self.rate, self.burst, self.max_wait]
            )
        except redis_lib.RedisError as exc:
            raise ProviderError(
                f"the shared Route53 rate limiter (Redis) is unavailable: {type(exc).__name__}",
                retryable=True,
            ) from exc
        wait = int(wait_us) / 1_000_000
        if not int(granted):
            raise _too_long(account_key, wait, self.max_wait, self.rate)
        if wait > 0:
            self._sleep(wait)
        return wait


class LocalTokenBucket:
    """The same bucket in process memory, for a provider built without Redis (one process, many threads)."""

    def __init__(
        self,
        *,
        rate: float = DEFAULT_RATE,
        burst: int = DEFAULT_BURST,
        max_wait: float = DEFAULT_MAX_WAIT,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        _check(rate, burst, max_wait)
        self.rate, self.burst, self.max_wait = float(rate), int(burst), float(max_wait)
        self._sleep = sleep
        self._clock = clock
        self._lock = threading.Lock()
        self._state: dict[str, tuple[float, float]] = {}  # account -> (tokens, time of last refill)

    def acquire(self, account_key: str) -> float:
        """Reserve one token for the account and sleep until it is due; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            tokens, ts = self._state.get(account_key, (float(self.burst), now))
            if now > ts:
                tokens, ts = min(float(self.burst), tokens + (now - ts) * self.rate), now
            wait = (1 - tokens) / self.rate if tokens < 1 else 0.0
            if wait > self.max_wait:
                raise _too_long(account_key, wait, self.max_wait, self.rate)
            self._state[account_key] = (tokens - 1, ts)
        if wait > 0:
            self._sleep(wait)
        return wait


_LOCAL: dict[tuple[float, int, float], LocalTokenBucket] = {}
_LOCAL_LOCK = threading.Lock()


def local_bucket(
    rate: float = DEFAULT_RATE, burst: int = DEFAULT_BURST, max_wait: float = DEFAULT_MAX_WAIT
) -> LocalTokenBucket:
    """The process-wide in-memory bucket for these settings, so providers in one process share it."""
    key = (float(rate), int(burst), float(max_wait))
    with _LOCAL_LOCK:
        bucket = _LOCAL.get(key)
        if bucket is None:
            bucket = _LOCAL[key] = LocalTokenBucket(rate=rate, burst=burst, max_wait=max_wait)
        return bucket


def expected_max_requests(window: float, *, rate: float, burst: int) -> int:
    """The most requests a bucket of `rate`/`burst` can let through in any `window` seconds."""
    return burst + math.floor(window * rate)
