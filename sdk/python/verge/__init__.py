"""Verge's Python SDK: write an edge app as a handler class, with the platform's
APIs one import away.

    import verge

    class IncomingHandler(verge.Handler):
        def handle_request(self, request: verge.Request) -> verge.Response:
            if request.path == "/":
                return verge.Response("hello from the edge\\n")
            origin = verge.fetch(request.path, backend="origin")
            return verge.Response(origin.body, origin.status, origin.headers)

`verge build` supplies this package and the WIT it binds; it is not installed with
pip. Modules: `kv`, `config`, `secrets`, `geo`, `ratelimit`, `cache`, `log`, `runtime`.
"""

from . import cache, config, geo, kv, log, ratelimit, runtime, secrets
from .http import FetchError, Handler, Headers, JsonResponse, Request, Response, fetch

__all__ = [
    "Handler",
    "Request",
    "Response",
    "JsonResponse",
    "Headers",
    "fetch",
    "FetchError",
    "cache",
    "config",
    "geo",
    "kv",
    "log",
    "ratelimit",
    "runtime",
    "secrets",
]
