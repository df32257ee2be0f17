// Verge's APIs from JavaScript, through Verge's module (`import ... from "verge"`,
// bundled by `verge build`); the protocol is in tests/common/apis.rs
// (tests/guests/py-app/app.py is the Python twin).
import { Router, cache, config, fetchBackend, geo, kv, log, ratelimit, runtime, secrets } from "verge";

const text = (body, status = 200, headers = {}) => new Response(body, { status, headers });

new Router()
  .put("/kv/:key", async (request, { key }) => {
    const generation = kv.open("data").put(key, await request.arrayBuffer(), { metadata: "from the sdk" });
    return text(`stored at generation ${generation}\n`, 201);
  })
  .get("/kv/:key", (request, { key }) => {
    const entry = kv.open("data").getEntry(key);
    if (entry === null) return text("missing\n", 404);
    return text(entry.value, 200, { "x-metadata": entry.metadata ?? "" });
  })
  .get("/count", () => text(String(kv.open("data").increment("counter"))))
  .get("/info", (request) => {
    log.warn("info was asked for", "api");
    const query = {};
    for (const [name, value] of new URL(request.url).searchParams) (query[name] ??= []).push(value);
    return Response.json({
      greeting: config.get("greeting"),
      secret: secrets.get("keys", "token"),
      requestId: runtime.requestId(),
      app: runtime.appName(),
      country: geo.clientLocation()?.countryCode ?? null,
      query,
    });
  })
  .get("/fetch/*path", async (request, { path }) => {
    const origin = await fetchBackend("origin", `/${path}`, { headers: { "x-from": "sdk" } });
    return text(`fetched: ${await origin.text()}`, origin.status);
  })
  .get("/fetch-denied", async () => {
    try {
      await fetch("http://example.invalid/");
      return text("sent\n");
    } catch (error) {
      return text(`${error}\n`, 502);
    }
  })
  .get("/limited", () => {
    const blocked = ratelimit.checkRate("hits", runtime.clientIp() ?? "unknown", {
      limit: 1,
      window: 10,
      penaltyBox: "slow",
      ttl: 60,
    });
    return blocked ? text("slow down\n", 429) : text("ok\n");
  })
  .get("/cached", async () => {
    const fills = kv.open("data");
    const body = await cache.getOrSet("report", () => `filled ${fills.increment("fills")}`, {
      ttl: 60,
      surrogateKeys: ["reports"],
    });
    return text(body);
  })
  .post("/purge", () => text(`purged ${cache.purgeSurrogateKey("reports")}\n`))
  .get("/throw", () => {
    throw new Error("the handler gave up: card declined");
  })
  .listen();
