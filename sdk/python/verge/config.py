"""The app's configuration: `[config]` in `verge.toml` (and the node's overrides),
through the standard `wasi:config/store`.

    greeting = verge.config.get("greeting", "hello")
"""

from __future__ import annotations

from typing import Optional

from componentize_py_types import Err
from wit_world.imports import wasi_config_store as _store

__all__ = ["get", "get_all", "ConfigError"]


class ConfigError(Exception):
    """The host could not read the configuration."""


def get(key: str, default: Optional[str] = None) -> Optional[str]:
    """The value under `key`, or `default`."""
    try:
        value = _store.get(key)
    except Err as e:
        raise ConfigError(str(getattr(e.value, "value", e.value))) from None
    return default if value is None else value


def get_all() -> dict[str, str]:
    try:
        return dict(_store.get_all())
    except Err as e:
        raise ConfigError(str(getattr(e.value, "value", e.value))) from None
