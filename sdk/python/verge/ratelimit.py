"""Edge rate limiting: rate counters over the last minute and penalty boxes, on
the node, per app.

    if verge.ratelimit.check_rate("api", client_ip, limit=10, window=10,
                                  penalty_box="api", ttl=60):
        return verge.Response("slow down\\n", status=429)
"""

from __future__ import annotations

from componentize_py_types import Err
from wit_world.imports import ratelimit as _rl

__all__ = [
    "check_rate",
    "increment",
    "lookup_rate",
    "lookup_count",
    "penalty_box_add",
    "penalty_box_has",
    "RateLimitError",
]

_WINDOWS = {1: _rl.Window.ONE_SECOND, 10: _rl.Window.TEN_SECONDS, 60: _rl.Window.SIXTY_SECONDS}


class RateLimitError(ValueError):
    """A name, duration or TTL out of range; the text says which."""


def _window(seconds: int) -> _rl.Window:
    if seconds not in _WINDOWS:
        raise RateLimitError(f"window must be 1, 10 or 60 seconds, not {seconds}")
    return _WINDOWS[seconds]


def _call(function, *args):
    try:
        return function(*args)
    except Err as e:
        raise RateLimitError(e.value.value) from None


def check_rate(
    counter: str,
    entry: str,
    *,
    limit: int,
    window: int = 10,
    delta: int = 1,
    penalty_box: str,
    ttl: int = 60,
) -> bool:
    """Counts `delta` for `entry` and answers whether it is blocked: already in the
    penalty box, or now over `limit` per second averaged over `window` seconds (1, 10
    or 60; it then goes into the penalty box for `ttl` seconds)."""
    return _call(
        _rl.check_rate, counter, entry, delta, _window(window), limit, penalty_box, ttl
    )


def increment(counter: str, entry: str, delta: int = 1) -> None:
    _call(_rl.increment, counter, entry, delta)


def lookup_rate(counter: str, entry: str, window: int = 10) -> int:
    """`entry`'s average per-second rate over `window` seconds (1, 10 or 60)."""
    return _call(_rl.lookup_rate, counter, entry, _window(window))


def lookup_count(counter: str, entry: str, seconds: int) -> int:
    """`entry`'s total over the last `seconds` (1-60)."""
    return _call(_rl.lookup_count, counter, entry, seconds)


def penalty_box_add(penalty_box: str, entry: str, ttl: int) -> None:
    _call(_rl.penalty_box_add, penalty_box, entry, ttl)


def penalty_box_has(penalty_box: str, entry: str) -> bool:
    return _call(_rl.penalty_box_has, penalty_box, entry)
