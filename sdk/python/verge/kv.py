"""The KV store: the stores an app declares in `verge.toml` (`[kv_stores.NAME]`),
durable on the node, with per-item TTL and metadata, insert modes, compare-and-swap
on generations and prefix listing.

    store = verge.kv.Store.open("links")
    store.put("a", b"https://example.com", ttl=3600)
    store.get("a")            # b"https://example.com", or None
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Optional, Union

from componentize_py_types import Err
from wit_world.imports import kv as _kv

__all__ = ["Store", "Entry", "KvError", "ExistsError", "GenerationMismatch"]


class KvError(Exception):
    """A KV call that failed; the text names the store, rule or limit."""


class ExistsError(KvError):
    """`add` (or `mode="add"`) and the key exists."""


class GenerationMismatch(KvError):
    """`if_generation` did not match; `generation` is the item's now (None: absent)."""

    def __init__(self, generation: Optional[int]) -> None:
        super().__init__(f"the item is at generation {generation}, not the one expected")
        self.generation = generation


def _error(e: Err) -> KvError:
    value = e.value
    if isinstance(value, _kv.Error_Exists):
        return ExistsError("the key exists")
    if isinstance(value, _kv.Error_GenerationMismatch):
        return GenerationMismatch(value.value)
    if isinstance(value, _kv.Error_NoSuchStore):
        return KvError(f"no KV store named `{value.value}` is declared in verge.toml")
    return KvError(f"{type(value).__name__.removeprefix('Error_')}: {getattr(value, 'value', '')}")


@dataclass
class Entry:
    """An item with its details."""

    value: bytes
    metadata: Optional[str]
    generation: int
    expires_at_ms: Optional[int]


_MODES = {
    "overwrite": _kv.InsertMode.OVERWRITE,
    "add": _kv.InsertMode.ADD,
    "append": _kv.InsertMode.APPEND,
    "prepend": _kv.InsertMode.PREPEND,
}


class Store:
    """A declared KV store. Values are bytes (text is stored as UTF-8)."""

    def __init__(self, inner: _kv.Store, name: str) -> None:
        self._inner = inner
        self.name = name

    @classmethod
    def open(cls, name: str) -> "Store":
        try:
            return cls(_kv.Store.open(name), name)
        except Err as e:
            raise _error(e) from None

    def get(self, key: str) -> Optional[bytes]:
        """The value under `key`; None when absent or expired."""
        entry = self.get_entry(key)
        return None if entry is None else entry.value

    def get_entry(self, key: str) -> Optional[Entry]:
        try:
            found = self._inner.lookup(key)
        except Err as e:
            raise _error(e) from None
        if found is None:
            return None
        return Entry(found.value, found.metadata, found.generation, found.expires_at_ms)

    def put(
        self,
        key: str,
        value: Union[bytes, str],
        *,
        ttl: Optional[float] = None,
        metadata: Optional[str] = None,
        mode: str = "overwrite",
        if_generation: Optional[int] = None,
    ) -> int:
        """Writes durably and returns the item's new generation.

        `ttl` is in seconds; `mode` is `overwrite`, `add` (fails with `ExistsError`
        when the key exists), `append` or `prepend`; `if_generation` writes only if
        the item is at that generation (else `GenerationMismatch`).
        """
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {', '.join(_MODES)}, not {mode!r}")
        data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
        options = _kv.InsertOptions(
            _MODES[mode],
            None if ttl is None else max(1, round(ttl * 1000)),
            metadata,
            if_generation,
        )
        try:
            return self._inner.insert(key, data, options)
        except Err as e:
            raise _error(e) from None

    def add(self, key: str, value: Union[bytes, str], **options) -> int:
        """`put` only when the key is absent."""
        return self.put(key, value, mode="add", **options)

    def delete(self, key: str) -> bool:
        """Whether a live item was there."""
        try:
            return self._inner.delete(key)
        except Err as e:
            raise _error(e) from None

    def increment(self, key: str, delta: int = 1) -> int:
        """Adds `delta` to the decimal integer under `key` (absent counts as 0)."""
        try:
            return self._inner.increment(key, delta)
        except Err as e:
            raise _error(e) from None

    def list(
        self, prefix: str = "", cursor: Optional[str] = None, limit: int = 100
    ) -> tuple[list[str], Optional[str]]:
        """One page of keys starting with `prefix`, and the cursor of the next page
        (None after the last)."""
        try:
            page = self._inner.list(prefix, cursor, limit)
        except Err as e:
            raise _error(e) from None
        return page.keys, page.cursor

    def keys(self, prefix: str = "") -> Iterator[str]:
        """Every key starting with `prefix`, page by page."""
        cursor = None
        while True:
            keys, cursor = self.list(prefix, cursor, 1000)
            yield from keys
            if cursor is None:
                return
