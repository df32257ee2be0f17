"""Secret stores (`[secret_stores.NAME]` in `verge.toml`). A value crosses into the
app only when asked for, and lines the app logs have secret values redacted.

    key = verge.secrets.get("keys", "jwt")   # bytes, or None
"""

from __future__ import annotations

from typing import Optional

from componentize_py_types import Err
from wit_world.imports import secrets as _secrets

__all__ = ["get", "SecretsError"]


class SecretsError(Exception):
    """The app declares no secret store of that name."""


def get(store: str, name: str) -> Optional[bytes]:
    """The secret `name` of store `store`; None when the store has no such secret."""
    try:
        with _secrets.Store.open(store) as opened:
            secret = opened.get(name)
    except Err as e:
        raise SecretsError(
            f"no secret store named `{e.value.value}` is declared in verge.toml"
        ) from None
    if secret is None:
        return None
    with secret:
        return secret.plaintext()
