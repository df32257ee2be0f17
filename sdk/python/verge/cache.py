"""The edge cache, programmable: objects under keys the app chooses, with TTLs,
stale-while-revalidate and surrogate keys, in the app's namespace of the node's
cache (the same cache as the HTTP cache in front of the app).

    body = verge.cache.get_or_set("report", lambda: render(), ttl=60,
                                  surrogate_keys=["reports"])
    verge.cache.purge_surrogate_key("reports")
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence, Union

from componentize_py_types import Err
from wit_world.imports import cache as _cache
from wit_world.imports.streams import StreamError_Closed

__all__ = [
    "CachedObject",
    "lookup",
    "insert",
    "get_or_set",
    "purge",
    "purge_surrogate_key",
    "CacheError",
]

Key = Union[str, bytes]


class CacheError(Exception):
    """A key, surrogate key or option that breaks a rule, or an object too large."""


def _error(e: Err) -> CacheError:
    value = e.value
    if isinstance(value, _cache.Error_TooLarge):
        return CacheError(f"the object is larger than the node's limit of {value.value} bytes")
    return CacheError(value.value)


def _key(key: Key) -> bytes:
    return key.encode("utf-8") if isinstance(key, str) else bytes(key)


@dataclass
class CachedObject:
    """An object found in the cache."""

    body: bytes
    stale: bool
    age: float
    """Seconds since it was stored."""
    remaining_ttl: float
    """Seconds of freshness left (0 once stale)."""
    surrogate_keys: list[str] = field(default_factory=list)
    user_metadata: bytes = b""


def _found(entry: _cache.Entry) -> CachedObject:
    with entry:
        body = bytearray()
        with entry.body() as stream:
            while True:
                try:
                    body += stream.blocking_read(64 * 1024)
                except Err as e:
                    if isinstance(e.value, StreamError_Closed):
                        break
                    raise
        return CachedObject(
            bytes(body),
            entry.state() == _cache.ObjectState.STALE,
            entry.age_ms() / 1000,
            entry.remaining_ttl_ms() / 1000,
            entry.surrogate_keys(),
            entry.user_metadata(),
        )


def _options(
    body: bytes,
    ttl: float,
    stale_while_revalidate: float,
    surrogate_keys: Sequence[str],
    user_metadata: bytes,
) -> _cache.WriteOptions:
    return _cache.WriteOptions(
        round(ttl * 1000),
        round(stale_while_revalidate * 1000),
        list(surrogate_keys),
        [],
        user_metadata,
        len(body),
    )


def _write(writer: _cache.Writer, body: bytes) -> None:
    with writer.body() as stream:
        for start in range(0, len(body), 4096):
            stream.blocking_write_and_flush(body[start : start + 4096])
    _cache.Writer.finish(writer)


def lookup(key: Key) -> Optional[CachedObject]:
    """The usable object under `key` (fresh, or stale within stale-while-revalidate)."""
    try:
        entry = _cache.lookup(_key(key), [])
    except Err as e:
        raise _error(e) from None
    return None if entry is None else _found(entry)


def insert(
    key: Key,
    body: Union[bytes, str],
    *,
    ttl: float,
    stale_while_revalidate: float = 0,
    surrogate_keys: Sequence[str] = (),
    user_metadata: bytes = b"",
) -> None:
    """Stores `body` under `key`, fresh for `ttl` seconds."""
    data = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    options = _options(data, ttl, stale_while_revalidate, surrogate_keys, user_metadata)
    try:
        _write(_cache.insert(_key(key), [], options), data)
    except Err as e:
        raise _error(e) from None


def get_or_set(
    key: Key,
    fill: Callable[[], Union[bytes, str]],
    *,
    ttl: float,
    stale_while_revalidate: float = 0,
    surrogate_keys: Sequence[str] = (),
) -> bytes:
    """The body under `key`; on a miss, `fill()`'s, stored for `ttl` seconds.

    Concurrent misses on one node collapse: one request runs `fill`, the others wait
    for its object. If `fill` raises, a waiting request takes over.
    """
    try:
        transaction = _cache.Transaction.lookup(_key(key), [])
    except Err as e:
        raise _error(e) from None
    with transaction:
        found = transaction.found()
        if found is not None and not transaction.must_insert():
            return _found(found).body
        try:
            value = fill()
        except BaseException:
            transaction.cancel()
            raise
        data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
        options = _options(data, ttl, stale_while_revalidate, surrogate_keys, b"")
        try:
            _write(transaction.insert(options), data)
        except Err as e:
            raise _error(e) from None
        return data


def purge(key: Key, soft: bool = False) -> int:
    """Purges every variant under `key` (`soft`: marks them stale); returns how many."""
    try:
        return _cache.purge(_key(key), soft)
    except Err as e:
        raise _error(e) from None


def purge_surrogate_key(surrogate_key: str, soft: bool = False) -> int:
    """Purges the app's objects carrying `surrogate_key`, HTTP objects included."""
    try:
        return _cache.purge_surrogate_key(surrogate_key, soft)
    except Err as e:
        raise _error(e) from None
