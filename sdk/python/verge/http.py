"""HTTP for Verge apps: the request a handler gets, the response it returns, and
`fetch` for requests to the app's backends or to the internet.

Everything here is synchronous: Verge runs each request in its own instance, so a
handler that waits for a backend blocks nobody else.
"""

from __future__ import annotations

import json as _json
from typing import Any, Iterable, Iterator, Mapping, Optional, Tuple, Union
from urllib.parse import parse_qs, urlsplit

import sys
import traceback

from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.imports import outgoing_handler
from wit_world.imports import runtime as _runtime
from wit_world.imports.streams import StreamError_Closed
from wit_world.imports.types import (
    Fields,
    IncomingBody,
    IncomingRequest,
    Method_Connect,
    Method_Delete,
    Method_Get,
    Method_Head,
    Method_Options,
    Method_Other,
    Method_Patch,
    Method_Post,
    Method_Put,
    Method_Trace,
    OutgoingBody,
    OutgoingRequest,
    OutgoingResponse,
    ResponseOutparam,
    Scheme_Http,
    Scheme_Https,
    Scheme_Other,
)

try:
    # Written by `verge build`: the directories the app was built from.
    from ._build import BUILD_PATHS
except ImportError:
    BUILD_PATHS: dict[str, str] = {}

__all__ = ["Headers", "Request", "Response", "JsonResponse", "Handler", "fetch", "FetchError"]

# A WASI output stream takes at most this much per blocking write.
_WRITE_CHUNK = 4096
_READ_CHUNK = 64 * 1024

Body = Union[bytes, bytearray, str, None]


def _to_bytes(body: Body) -> bytes:
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode("utf-8")
    return bytes(body)


class Headers:
    """HTTP header fields: names are case-insensitive, a name may repeat, and the
    order is kept. Values are text (UTF-8; other bytes survive a round trip)."""

    def __init__(
        self, items: Union["Headers", Mapping[str, str], Iterable[Tuple[str, str]], None] = None
    ) -> None:
        self._items: list[tuple[str, str]] = []
        if items is None:
            return
        pairs = items.items() if isinstance(items, (Headers, Mapping)) else items
        for name, value in pairs:
            self.add(name, value)

    def add(self, name: str, value: str) -> None:
        """Adds a field, keeping those already under `name`."""
        self._items.append((name.lower(), str(value)))

    def get(self, name: str, default: Optional[str] = None) -> Optional[str]:
        """The first value under `name`, or `default`."""
        name = name.lower()
        for key, value in self._items:
            if key == name:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        name = name.lower()
        return [value for key, value in self._items if key == name]

    def items(self) -> list[tuple[str, str]]:
        """Every field, in order, names in lower case."""
        return list(self._items)

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __setitem__(self, name: str, value: str) -> None:
        """Replaces every field under `name` with one."""
        del self[name]
        self.add(name, value)

    def __delitem__(self, name: str) -> None:
        name = name.lower()
        self._items = [(k, v) for k, v in self._items if k != name]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[str]:
        seen: list[str] = []
        for key, _ in self._items:
            if key not in seen:
                seen.append(key)
        return iter(seen)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"

    def _to_fields(self) -> Fields:
        return Fields.from_list(
            [(k, v.encode("utf-8", "surrogateescape")) for k, v in self._items]
        )

    @classmethod
    def _from_fields(cls, fields: Fields) -> "Headers":
        headers = cls()
        with fields:
            for name, value in fields.entries():
                headers._items.append((name, value.decode("utf-8", "surrogateescape")))
        return headers


class _Message:
    headers: Headers
    body: bytes

    def text(self) -> str:
        """The body decoded as UTF-8."""
        return self.body.decode("utf-8")

    def json(self) -> Any:
        """The body parsed as JSON (raises `ValueError` when it is not)."""
        return _json.loads(self.body)


class Request(_Message):
    """An HTTP request: the one a handler gets, or one to `fetch`.

    `url` is absolute for a request the handler gets (`https://host/path?query`); a
    request to a named backend needs only the path.
    """

    def __init__(
        self,
        method: str = "GET",
        url: str = "/",
        headers: Union[Headers, Mapping[str, str], Iterable[Tuple[str, str]], None] = None,
        body: Body = None,
    ) -> None:
        self.method = method.upper()
        self.url = url
        self.headers = Headers(headers)
        self.body = _to_bytes(body)

    @property
    def path(self) -> str:
        """The URL's path: `/items/7`."""
        return urlsplit(self.url).path or "/"

    @property
    def query(self) -> str:
        """The URL's query, without the `?`."""
        return urlsplit(self.url).query

    @property
    def query_params(self) -> dict[str, list[str]]:
        """The query decoded: each name with its values."""
        return parse_qs(self.query, keep_blank_values=True)

    def __repr__(self) -> str:
        return f"Request({self.method} {self.url})"


class Response(_Message):
    """An HTTP response: what a handler returns, or what `fetch` got."""

    def __init__(
        self,
        body: Body = None,
        status: int = 200,
        headers: Union[Headers, Mapping[str, str], Iterable[Tuple[str, str]], None] = None,
    ) -> None:
        if not 100 <= status <= 999:
            raise ValueError(f"{status} is not an HTTP status code")
        self.status = status
        self.headers = Headers(headers)
        self.body = _to_bytes(body)
        if isinstance(body, str) and "content-type" not in self.headers:
            self.headers["content-type"] = "text/plain; charset=utf-8"

    @classmethod
    def redirect(cls, location: str, status: int = 302) -> "Response":
        return cls(None, status, {"location": location})

    def __repr__(self) -> str:
        return f"Response({self.status}, {len(self.body)} bytes)"


class JsonResponse(Response):
    """A response holding `value` as JSON: `JsonResponse({"id": 7}, status=201)`."""

    def __init__(self, value: Any, status: int = 200, headers: Any = None) -> None:
        super().__init__(_json.dumps(value).encode("utf-8"), status, headers)
        self.headers["content-type"] = "application/json"


class FetchError(Exception):
    """A request that got no response. `code` is the `wasi:http` error code's name:
    `HttpRequestDenied` when no backend or egress rule allows the destination,
    `ConnectionRefused`, `DnsError`, `HttpResponseTimeout`, …"""

    def __init__(self, destination: str, code: str) -> None:
        super().__init__(f"the request to {destination} failed: {code}")
        self.destination = destination
        self.code = code

    @property
    def denied(self) -> bool:
        """Whether the host refused to send it (no such backend, no egress rule)."""
        return self.code == "HttpRequestDenied"


_METHODS = {
    "GET": Method_Get,
    "HEAD": Method_Head,
    "POST": Method_Post,
    "PUT": Method_Put,
    "DELETE": Method_Delete,
    "CONNECT": Method_Connect,
    "OPTIONS": Method_Options,
    "TRACE": Method_Trace,
    "PATCH": Method_Patch,
}


def _method_name(method: Any) -> str:
    if isinstance(method, Method_Other):
        return method.value
    return type(method).__name__.removeprefix("Method_").upper()


def _error_name(code: Any) -> str:
    name = type(code).__name__.removeprefix("ErrorCode_")
    value = getattr(code, "value", None)
    return f"{name}({value})" if value is not None and not isinstance(value, bool) else name


def _read_all(body: IncomingBody) -> bytes:
    data = bytearray()
    with body.stream() as stream:
        while True:
            try:
                data += stream.blocking_read(_READ_CHUNK)
            except Err as e:
                if isinstance(e.value, StreamError_Closed):
                    break
                raise
    IncomingBody.finish(body)
    return bytes(data)


def _write_all(body: OutgoingBody, data: bytes) -> None:
    with body.write() as stream:
        for start in range(0, len(data), _WRITE_CHUNK):
            stream.blocking_write_and_flush(data[start : start + _WRITE_CHUNK])
    OutgoingBody.finish(body, None)


def fetch(
    request: Union[Request, str],
    *,
    backend: Optional[str] = None,
    method: Optional[str] = None,
    headers: Any = None,
    body: Body = None,
) -> Response:
    """Sends a request and returns the whole response.

    With `backend`, the request goes to that backend of `verge.toml` and `request`
    needs only a path (`fetch("/users/7", backend="origin")`); without it, `request`
    is an absolute URL that the app's egress rules must allow. Raises `FetchError`
    when no response came.
    """
    if isinstance(request, str):
        request = Request(method or "GET", request, headers, body)
    elif method is not None or headers is not None or body is not None:
        raise TypeError("pass method, headers and body in the Request, or a URL with them")
    parts = urlsplit(request.url)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    if backend is not None:
        scheme, authority, destination = Scheme_Http(), backend, f"backend `{backend}`"
    else:
        if not parts.scheme or not parts.netloc:
            raise ValueError(
                f"`{request.url}` is not an absolute URL; pass backend= to send it to a named backend"
            )
        scheme = {"http": Scheme_Http(), "https": Scheme_Https()}.get(
            parts.scheme, Scheme_Other(parts.scheme)
        )
        authority, destination = parts.netloc, f"`{request.url}`"
    outgoing_headers = Headers(request.headers)
    if request.body or request.method not in ("GET", "HEAD"):
        outgoing_headers["content-length"] = str(len(request.body))
    outgoing = OutgoingRequest(outgoing_headers._to_fields())
    method_type = _METHODS.get(request.method)
    outgoing.set_method(method_type() if method_type else Method_Other(request.method))
    outgoing.set_scheme(scheme)
    outgoing.set_authority(authority)
    outgoing.set_path_with_query(path)
    outgoing_body = outgoing.body()
    future = outgoing_handler.handle(outgoing, None)
    _write_all(outgoing_body, request.body)
    with future:
        with future.subscribe() as ready:
            ready.block()
        result = future.get()
    assert result is not None, "the response is ready after block()"
    if isinstance(result, Err):
        raise FetchError(destination, "the response was already taken")
    inner = result.value
    if isinstance(inner, Err):
        raise FetchError(destination, _error_name(inner.value))
    with inner.value as incoming:
        status = incoming.status()
        response_headers = Headers._from_fields(incoming.headers())
        data = _read_all(incoming.consume())
    response = Response(data, status)
    response.headers = response_headers
    return response


def _incoming(request: IncomingRequest) -> Request:
    scheme = request.scheme()
    scheme_name = (
        "https" if isinstance(scheme, Scheme_Https)
        else scheme.value if isinstance(scheme, Scheme_Other)
        else "http"
    )
    url = f"{scheme_name}://{request.authority() or 'localhost'}{request.path_with_query() or '/'}"
    result = Request(_method_name(request.method()), url)
    result.headers = Headers._from_fields(request.headers())
    result.body = _read_all(request.consume())
    return result


def _respond(response: Response, out: ResponseOutparam) -> None:
    outgoing = OutgoingResponse(response.headers._to_fields())
    outgoing.set_status_code(response.status)
    body = outgoing.body()
    ResponseOutparam.set(out, Ok(outgoing))
    _write_all(body, response.body)


class Handler(exports.IncomingHandler):
    """The base of an app's handler. Name the subclass `IncomingHandler` in the app's
    module and give it `handle_request`:

        class IncomingHandler(verge.Handler):
            def handle_request(self, request: verge.Request) -> verge.Response:
                return verge.Response("hello\\n")

    An exception raised by `handle_request` answers 500; its traceback goes to the
    request's log lines.
    """

    def handle_request(self, request: Request) -> Response:
        raise NotImplementedError("define handle_request in your IncomingHandler")

    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        try:
            response = self.handle_request(_incoming(request))
            if not isinstance(response, Response):
                raise TypeError(
                    f"handle_request returned {type(response).__name__}, not a verge.Response"
                )
        except Exception:
            # The traceback goes to the request's log lines, the client gets no detail.
            _print_traceback()
            response = Response(
                f"500 Internal Server Error\nrequest id: {_runtime.request_id()}\n", 500
            )
        _respond(response, response_out)


def _print_traceback() -> None:
    """The current exception's traceback on stderr, with the paths componentize-py
    gave the app's directories (`/0/app.py`) shown as the app's own (`src/app.py`)."""
    text = traceback.format_exc()
    for inside, outside in BUILD_PATHS.items():
        text = text.replace(f'File "{inside}', f'File "{outside}')
    sys.stderr.write(text)
    sys.stderr.flush()
