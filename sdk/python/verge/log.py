"""Logging: lines in the request's log stream (tagged with its request id), through
the standard `wasi:logging`, and named log endpoints (`[log_endpoints.NAME]`).

    verge.log.info("cache miss", context="links")
    verge.log.Endpoint("audit").write("user 7 signed in")

`print()` works too: stdout and stderr lines reach the log tagged the same way.
"""

from __future__ import annotations

from componentize_py_types import Err
from wit_world.imports import logging as _logging
from wit_world.imports import logs as _logs

__all__ = ["log", "trace", "debug", "info", "warn", "error", "Endpoint"]

_LEVELS = {
    "trace": _logging.Level.TRACE,
    "debug": _logging.Level.DEBUG,
    "info": _logging.Level.INFO,
    "warn": _logging.Level.WARN,
    "error": _logging.Level.ERROR,
    "critical": _logging.Level.CRITICAL,
}


def log(level: str, message: str, context: str = "") -> None:
    if level not in _LEVELS:
        raise ValueError(f"level must be one of {', '.join(_LEVELS)}, not {level!r}")
    _logging.log(_LEVELS[level], context, message)


def trace(message: str, context: str = "") -> None:
    log("trace", message, context)


def debug(message: str, context: str = "") -> None:
    log("debug", message, context)


def info(message: str, context: str = "") -> None:
    log("info", message, context)


def warn(message: str, context: str = "") -> None:
    log("warn", message, context)


def error(message: str, context: str = "") -> None:
    log("error", message, context)


class Endpoint:
    """A named log endpoint the app declares."""

    def __init__(self, name: str) -> None:
        try:
            self._inner = _logs.Endpoint.open(name)
        except Err as e:
            raise ValueError(e.value) from None

    def write(self, line: str) -> None:
        self._inner.write(line)
