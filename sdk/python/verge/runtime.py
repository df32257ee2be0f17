"""Facts about this request and where it runs."""

from __future__ import annotations

from typing import Optional

from wit_world.imports import downstream as _downstream
from wit_world.imports import runtime as _runtime
from wit_world.imports.downstream import TlsInfo

__all__ = [
    "request_id",
    "trace_id",
    "node_name",
    "app_name",
    "app_version",
    "client_ip",
    "tls",
    "TlsInfo",
]


def request_id() -> str:
    """This request's id (also in its `x-request-id` header and log lines)."""
    return _runtime.request_id()


def trace_id() -> str:
    return _runtime.trace_id()


def node_name() -> str:
    return _runtime.node_name()


def app_name() -> str:
    return _runtime.app_name()


def app_version() -> str:
    return _runtime.app_version()


def client_ip() -> Optional[str]:
    """The client's IP address, when the host knows it."""
    return _downstream.client_ip()


def tls() -> Optional[TlsInfo]:
    """The client connection's TLS parameters; None over plain HTTP."""
    return _downstream.tls()
