// Verge's APIs from JavaScript, imported by interface: KV (wasi:keyvalue), config
// (wasi:config), logging (wasi:logging) and verge:edge (runtime, geo).
//
// PUT /kv/KEY stores the body; GET /kv/KEY reads it (404 when missing);
// GET /info answers the config greeting, the request id and the app's name, and logs
// a warning; GET /throw throws.
import { open } from "wasi:keyvalue/store@0.2.0-draft2";
import { increment } from "wasi:keyvalue/atomics@0.2.0-draft2";
import { get as config } from "wasi:config/store@0.2.0-rc.1";
import { log } from "wasi:logging/logging@0.1.0-draft";
import { requestId, appName } from "verge:edge/runtime@0.1.0";

addEventListener("fetch", (event) => event.respondWith(handle(event.request)));

async function handle(request) {
  const url = new URL(request.url);
  if (url.pathname.startsWith("/kv/")) {
    const key = url.pathname.slice(4);
    const bucket = open("data");
    if (request.method === "PUT") {
      bucket.set(key, new Uint8Array(await request.arrayBuffer()));
      return new Response("stored\n", { status: 201 });
    }
    const value = bucket.get(key);
    if (value === undefined) {
      return new Response("missing\n", { status: 404 });
    }
    return new Response(value);
  }
  if (url.pathname === "/count") {
    return new Response(String(increment(open("data"), "counter", 1n)));
  }
  if (url.pathname === "/throw") {
    throw new Error("the handler gave up: card declined");
  }
  if (url.pathname === "/info") {
    log("warn", "js-app", "info was asked for");
    return Response.json({ greeting: config("greeting") ?? null, requestId: requestId(), app: appName() });
  }
  return new Response("not found\n", { status: 404 });
}
