"""Where an IP address is, from the node's geolocation database or the app's
`[geo.overrides]`.

    where = verge.geo.client_location()
    country = where.country_code if where else None
"""

from __future__ import annotations

from typing import Optional

from componentize_py_types import Err
from wit_world.imports import downstream as _downstream
from wit_world.imports import geo as _geo
from wit_world.imports.geo import Location

__all__ = ["Location", "lookup", "client_location"]


def lookup(ip: str) -> Optional[Location]:
    """What is known about `ip` (None: nothing). Raises `ValueError` when `ip` is
    not an IP address."""
    try:
        return _geo.lookup(ip)
    except Err as e:
        raise ValueError(e.value) from None


def client_location() -> Optional[Location]:
    """The location of the client this request came from, when known."""
    ip = _downstream.client_ip()
    return None if ip is None else lookup(ip)
