"""A field filter in front of a JSON API: `GET /api/PATH` fetches `/PATH` from the
backend `origin` and answers only the fields listed in `FIELDS` (comma-separated,
dotted for nested objects: `id,name,owner.login`). Arrays of objects are filtered
element by element. An answer that is not JSON is passed through untouched, with an
`x-filter-error` header saying why. Anything but `GET /api/*` answers 404 (or 405).

The Python twin of `examples/api-filter`.
"""

from __future__ import annotations

import json
import os
from typing import Any

import verge
from verge import JsonResponse, Request, Response

Fields = dict[str, "Fields"]


def parse_fields(spec: str) -> Fields:
    """`id,owner.login` → `{"id": {}, "owner": {"login": {}}}`; an empty inner
    dict keeps the whole value."""
    root: Fields = {}
    for path in (p.strip() for p in spec.split(",")):
        if not path:
            continue
        node = root
        for part in path.split("."):
            node = node.setdefault(part, {})
    return root


def apply(fields: Fields, value: Any) -> Any:
    if isinstance(value, dict) and fields:
        return {k: apply(fields[k], v) for k, v in value.items() if k in fields}
    if isinstance(value, list):
        return [apply(fields, item) for item in value]
    return value


def is_json(content_type: str | None) -> bool:
    if content_type is None:
        return False
    mime = content_type.split(";")[0].strip().lower()
    return mime == "application/json" or mime.endswith("+json")


def filter_api(request: Request) -> Response:
    path = request.path[len("/api"):]
    query = f"?{request.query}" if request.query else ""
    upstream = verge.fetch(
        verge.Request("GET", path + query, request.headers), backend="origin"
    )
    content_type = upstream.headers.get("content-type")
    if not is_json(content_type):
        why = f"the origin answered {content_type or 'without a content-type'}, not JSON"
        upstream.headers["x-filter-error"] = why
        return upstream
    try:
        value = json.loads(upstream.body)
    except ValueError as e:
        del upstream.headers["content-length"]
        upstream.headers["x-filter-error"] = f"the origin's JSON is invalid: {e}"
        return upstream
    fields = parse_fields(os.environ.get("FIELDS", ""))
    return JsonResponse(apply(fields, value), status=upstream.status)


class IncomingHandler(verge.Handler):
    def handle_request(self, request: Request) -> Response:
        if not request.path.startswith("/api/"):
            return Response("not found\n", status=404)
        if request.method != "GET":
            return Response("method not allowed\n", status=405, headers={"allow": "GET"})
        return filter_api(request)
