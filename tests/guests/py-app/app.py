"""Verge's APIs from Python, through the `verge` package; the protocol is in
tests/common/apis.rs (tests/guests/js-app/sdk.js is the JavaScript twin). Besides:
GET /std-kv/KEY reads KEY with the standard `wasi:keyvalue` bindings."""

import verge
from verge import JsonResponse, Request, Response
from wit_world.imports import wasi_keyvalue_store



class IncomingHandler(verge.Handler):
    def handle_request(self, request: Request) -> Response:
        path = request.path
        if path.startswith("/kv/"):
            store = verge.kv.Store.open("data")
            key = path[len("/kv/"):]
            if request.method == "PUT":
                generation = store.put(key, request.body, metadata="from the sdk")
                return Response(f"stored at generation {generation}\n", status=201)
            entry = store.get_entry(key)
            if entry is None:
                return Response("missing\n", status=404)
            return Response(entry.value, headers={"x-metadata": entry.metadata or ""})
        if path.startswith("/std-kv/"):
            # The standard interface, on the same store and data as verge.kv.
            with wasi_keyvalue_store.open("data") as bucket:
                value = bucket.get(path[len("/std-kv/"):])
            return Response(value) if value is not None else Response("missing\n", status=404)
        if path == "/count":
            return Response(str(verge.kv.Store.open("data").increment("counter")))
        if path == "/info":
            verge.log.warn("info was asked for", context="api")
            where = verge.geo.client_location()
            return JsonResponse(
                {
                    "greeting": verge.config.get("greeting"),
                    "secret": verge.secrets.get("keys", "token").decode(),
                    "requestId": verge.runtime.request_id(),
                    "app": verge.runtime.app_name(),
                    "country": where.country_code if where else None,
                    "query": request.query_params,
                }
            )
        if path.startswith("/fetch/"):
            origin = verge.fetch(
                "/" + path[len("/fetch/"):],
                backend="origin",
                headers={"x-from": "sdk"},
            )
            return Response(b"fetched: " + origin.body, origin.status)
        if path == "/fetch-denied":
            try:
                verge.fetch("http://example.invalid/")
            except verge.FetchError as e:
                return Response(f"{e.code}: {e}\n", status=502)
            return Response("sent\n")
        if path == "/limited":
            ip = verge.runtime.client_ip() or "unknown"
            blocked = verge.ratelimit.check_rate(
                "hits", ip, limit=1, window=10, penalty_box="slow", ttl=60
            )
            return Response("slow down\n", status=429) if blocked else Response("ok\n")
        if path == "/cached":
            fills = verge.kv.Store.open("data")

            def fill() -> bytes:
                return f"filled {fills.increment('fills')}".encode()

            body = verge.cache.get_or_set("report", fill, ttl=60, surrogate_keys=["reports"])
            return Response(body)
        if path == "/purge" and request.method == "POST":
            return Response(f"purged {verge.cache.purge_surrogate_key('reports')}\n")
        if path == "/throw":
            raise RuntimeError("the handler gave up: card declined")
        return Response("not found\n", status=404)
