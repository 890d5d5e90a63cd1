"""When discovery's events reconcile a zone: at once in a quiet zone, then at most once per window.

A leading edge and a trailing window, per zone, decided in Redis by one Lua script, so any number of watch
processes and workers agree:

- the first event in a quiet zone reconciles it at once and opens a window of `window_ms`;
- the first event during an open window schedules one reconcile for the window's end (the trailing edge);
  later events of that window ride along with it (the reconcile reads the endpoints when it runs);
- a trailing reconcile opens the next window: a steady stream of events gives one reconcile per window;
- a window in which nothing came in ends without a reconcile, and the zone is quiet again.

The script reads Redis's own clock (`TIME`), so processes whose clocks disagree share one window, and returns
the delay rather than a time of day for the same reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

KEY_PREFIX = "dnsportal:reconcile-debounce:"

# KEYS[1] = the zone's window (its value: the window's end, ms of Redis's clock; gone when the zone is quiet)
# KEYS[2] = set while a trailing reconcile is scheduled for the window's end
# KEYS[3] = the zone's changed names (see "which names changed" below); ARGV[2...] = this event's names
# ARGV[1] = window (ms). Returns {kind, delay ms}: 1 = now (leading), 2 = at the window's end (trailing),
# 0 = the trailing reconcile already scheduled covers this event.
_LUA = """
for i = 2, #ARGV, 1000 do  -- unpack() of more than a few thousand values overflows Lua's stack
  redis.call('SADD', KEYS[3], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local ends = tonumber(redis.call('GET', KEYS[1]))
if ends == nil or ends <= now then
  redis.call('SET', KEYS[1], now + window, 'PX', window)
  return {1, 0}
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  return {0, ends - now}
end
redis.call('SET', KEYS[2], 1, 'PX', ends - now)
redis.call('SET', KEYS[1], ends + window, 'PX', ends + window - now)
return {2, ends - now}
"""


@dataclass(frozen=True, slots=True)
class Decision:
    """What one discovery event does to a zone's reconciles."""

    enqueue: bool  # whether this event queues a reconcile (otherwise one already queued covers it)
    delay_s: float  # when that reconcile plans: 0 now (leading edge), else the window's end (trailing)

    @property
    def leading(self) -> bool:
        return self.enqueue and self.delay_s == 0


NOW = Decision(enqueue=True, delay_s=0.0)


def decide(redis: Any, zone_id: int, window_ms: int, names: Sequence[str] = ()) -> Decision:
    """The decision for one event in zone `zone_id` (see the module docstring); a window of 0 reconciles
    every event at once. The event's changed `names` are noted first (`note_names`), in the same call."""
    if window_ms <= 0:
        note_names(redis, zone_id, names)
        return NOW
    key = f"{KEY_PREFIX}{zone_id}"
    kind, delay_ms = redis.eval(
        _LUA, 3, key, f"{key}:trailing", f"{NAMES_PREFIX}{zone_id}", int(window_ms), *[n for n in names if n]
    )
    kind, delay_ms = int(kind), int(delay_ms)
    if kind == 1:
        return NOW
    return Decision(enqueue=kind == 2, delay_s=delay_ms / 1000)


# --- which names changed ---------------------------------------------------------------------------------
# Each event also adds its names to the zone's set; a reconcile of discovery's events plans just those names
# (records.plan_scope) and takes them out once planned. Each whole-zone plan stamps the set with the run id of
# the Redis it read it from (INFO's run_id, new at every start of the server): a set without the stamp of
# the running Redis (never planned; or Redis restarted, and may have lost the last writes before it stopped)
# says "what changed is not known", and the next reconcile plans the whole zone.
NAMES_PREFIX = "dnsportal:reconcile-names:"


@dataclass(frozen=True, slots=True)
class Noted:
    """What a reconcile reads of a zone's changed names."""

    known: bool  # every change since the last whole-zone plan is among `names`
    names: frozenset[str]
    run_id: str  # the Redis server's run they were read from


def note_names(redis: Any, zone_id: int, names: Any) -> None:
    """Remember that discovery changed these host names (lower case, no trailing dot) in the zone."""
    names = [n for n in names if n]
    if names:
        redis.sadd(f"{NAMES_PREFIX}{zone_id}", *names)


def changed_names(redis: Any, zone_id: int) -> Noted:
    """The names noted since the zone's last plans took theirs, and whether they are all there is."""
    key = f"{NAMES_PREFIX}{zone_id}"
    with redis.pipeline(transaction=False) as pipe:
        pipe.smembers(key).get(f"{key}:run").info("server")
        members, stamp, info = pipe.execute()
    run_id = str(info.get("run_id", ""))
    stamp = stamp.decode() if isinstance(stamp, bytes) else stamp
    names = frozenset(m.decode() if isinstance(m, bytes) else m for m in members)
    return Noted(known=bool(run_id) and stamp == run_id, names=names, run_id=run_id)


def names_planned(redis: Any, zone_id: int, names: Any, *, whole_zone: str = "") -> None:
    """These names are in a stored plan now; with `whole_zone` (the run id its names were read from), every
    other name too. A Redis that restarted since has another run id: the stamp then says "not known"."""
    key = f"{NAMES_PREFIX}{zone_id}"
    names = [n for n in names if n]
    with redis.pipeline() as pipe:
        if names:
            pipe.srem(key, *names)
        if whole_zone:
            pipe.set(f"{key}:run", whole_zone)
        pipe.execute()
