// Verge's APIs for JavaScript apps, over the interfaces `verge build` puts in the
// app's world (`verge:edge`, `wasi:config`, `wasi:logging`). `verge build` bundles
// this module into the app (esbuild, `import ... from "verge"`); types: index.d.ts.
//
// Host calls that fail throw a ComponentError whose `payload` is the WIT error
// (`{ tag, val }` for variants); the wrappers turn those into errors with a message.
// WIT u64/s64 values arrive as BigInt and are returned as Number.

import * as edgeKv from "verge:edge/kv@0.1.0";
import * as edgeSecrets from "verge:edge/secrets@0.1.0";
import * as edgeGeo from "verge:edge/geo@0.1.0";
import * as edgeRatelimit from "verge:edge/ratelimit@0.1.0";
import * as edgeCache from "verge:edge/cache@0.1.0";
import * as edgeLogs from "verge:edge/logs@0.1.0";
import * as edgeRuntime from "verge:edge/runtime@0.1.0";
import * as edgeDownstream from "verge:edge/downstream@0.1.0";
import * as wasiConfig from "wasi:config/store@0.2.0-rc.1";
import * as wasiLogging from "wasi:logging/logging@0.1.0-draft";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function bytes(value) {
  if (typeof value === "string") return encoder.encode(value);
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  throw new TypeError("expected a string, Uint8Array or ArrayBuffer");
}

function payloadOf(error) {
  if (error && typeof error === "object" && "payload" in error) return error.payload;
  throw error;
}

function describe(payload) {
  if (payload && typeof payload === "object" && "tag" in payload) {
    return payload.val === undefined ? payload.tag : `${payload.tag}: ${payload.val}`;
  }
  return String(payload);
}

const optionalNumber = (value) => (value === undefined ? null : Number(value));

function readAll(stream) {
  const chunks = [];
  let length = 0;
  for (;;) {
    let chunk;
    try {
      chunk = stream.blockingRead(65536n);
    } catch (error) {
      if (payloadOf(error)?.tag === "closed") break;
      throw error;
    }
    chunks.push(chunk);
    length += chunk.length;
  }
  dispose(stream);
  const all = new Uint8Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    all.set(chunk, offset);
    offset += chunk.length;
  }
  return all;
}

function writeAll(stream, data) {
  for (let start = 0; start < data.length; start += 4096) {
    stream.blockingWriteAndFlush(data.subarray(start, start + 4096));
  }
  dispose(stream);
}

// Drops a resource handle now (a stream must be gone before its writer finishes).
function dispose(resource) {
  const drop = resource[Symbol.dispose];
  if (typeof drop === "function") drop.call(resource);
}

// ---------------------------------------------------------------- routing

/** Answers each request with `handler(request)` (sync or async). */
export function serve(handler) {
  addEventListener("fetch", (event) => event.respondWith(handler(event.request)));
}

/** A router: `new Router().get("/", h).post("/items", h).get("/items/:id", h)`.
 * Patterns have `:name` segments and may end in `*rest`; handlers get
 * `(request, params)`. No route: 404; a route for another method: 405 with Allow. */
export class Router {
  #routes = [];

  on(method, pattern, handler) {
    const segments = pattern.split("/").filter(Boolean);
    this.#routes.push({ method: method.toUpperCase(), segments, handler });
    return this;
  }
  get(pattern, handler) { return this.on("GET", pattern, handler); }
  post(pattern, handler) { return this.on("POST", pattern, handler); }
  put(pattern, handler) { return this.on("PUT", pattern, handler); }
  patch(pattern, handler) { return this.on("PATCH", pattern, handler); }
  delete(pattern, handler) { return this.on("DELETE", pattern, handler); }

  /** Routes `request`; resolves to the handler's response. */
  async handle(request) {
    const path = new URL(request.url).pathname.split("/").filter(Boolean).map(decodeURIComponent);
    const allowed = [];
    for (const route of this.#routes) {
      const params = match(route.segments, path);
      if (!params) continue;
      const method = request.method === "HEAD" && route.method === "GET" ? "GET" : request.method;
      if (route.method === method) return route.handler(request, params);
      allowed.push(route.method);
    }
    if (allowed.length > 0) {
      return new Response("method not allowed\n", {
        status: 405,
        headers: { allow: [...new Set(allowed)].join(", ") },
      });
    }
    return new Response("not found\n", { status: 404 });
  }

  /** Serves every request through this router. */
  listen() {
    serve((request) => this.handle(request));
  }
}

function match(segments, path) {
  const params = {};
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i];
    if (segment.startsWith("*")) {
      params[segment.slice(1)] = path.slice(i).join("/");
      return params;
    }
    if (i >= path.length) return null;
    if (segment.startsWith(":")) params[segment.slice(1)] = path[i];
    else if (segment !== path[i]) return null;
  }
  return segments.length === path.length ? params : null;
}

// ---------------------------------------------------------------- backends

/** `fetch()` to the backend `name` of verge.toml: `fetchBackend("origin", "/users/7")`.
 * `input` is a path (with its query) or a Request, whose path is used. */
export function fetchBackend(name, input, init) {
  if (input instanceof Request) {
    const url = new URL(input.url);
    return fetch(new Request(`http://${name}${url.pathname}${url.search}`, input), init);
  }
  if (typeof input !== "string" || !input.startsWith("/")) {
    throw new TypeError(`fetchBackend: give a path starting with "/", not ${JSON.stringify(input)}`);
  }
  return fetch(`http://${name}${input}`, init);
}

// ---------------------------------------------------------------- KV

/** A KV call that failed. `kind`: `no-such-store`, `invalid`, `exists`,
 * `generation-mismatch` (then `generation` is the item's now, or null),
 * `not-a-number` or `storage`. */
export class KvError extends Error {
  constructor(payload) {
    super(describe(payload));
    this.name = "KvError";
    this.kind = payload?.tag ?? "storage";
    if (this.kind === "generation-mismatch") this.generation = optionalNumber(payload.val);
  }
}

function kvCall(call) {
  try {
    return call();
  } catch (error) {
    throw new KvError(payloadOf(error));
  }
}

const MODES = ["overwrite", "add", "append", "prepend"];

class KvStore {
  #inner;
  constructor(inner, name) {
    this.#inner = inner;
    this.name = name;
  }

  /** The value under `key` (Uint8Array), or null when absent or expired. */
  get(key) {
    const entry = kvCall(() => this.#inner.lookup(key));
    return entry === undefined ? null : entry.value;
  }
  /** The value as UTF-8 text, or null. */
  text(key) {
    const value = this.get(key);
    return value === null ? null : decoder.decode(value);
  }
  /** The value parsed as JSON, or null. */
  json(key) {
    const text = this.text(key);
    return text === null ? null : JSON.parse(text);
  }
  /** The item with its metadata, generation and expiry, or null. */
  getEntry(key) {
    const entry = kvCall(() => this.#inner.lookup(key));
    if (entry === undefined) return null;
    return {
      value: entry.value,
      metadata: entry.metadata ?? null,
      generation: Number(entry.generation),
      expiresAt: entry.expiresAtMs === undefined ? null : new Date(Number(entry.expiresAtMs)),
    };
  }
  /** Writes durably; returns the item's new generation. `value`: string, bytes, or
   * (with `json: true`) any JSON value. Options: `ttl` (seconds), `metadata`,
   * `mode` (`overwrite`, `add`, `append`, `prepend`), `ifGeneration`. */
  put(key, value, options = {}) {
    const mode = options.mode ?? "overwrite";
    if (!MODES.includes(mode)) throw new TypeError(`mode must be one of ${MODES.join(", ")}, not ${mode}`);
    const data = options.json ? encoder.encode(JSON.stringify(value)) : bytes(value);
    const insertOptions = {
      mode,
      ttlMs: options.ttl === undefined ? undefined : BigInt(Math.max(1, Math.round(options.ttl * 1000))),
      metadata: options.metadata,
      ifGeneration: options.ifGeneration === undefined ? undefined : BigInt(options.ifGeneration),
    };
    return Number(kvCall(() => this.#inner.insert(key, data, insertOptions)));
  }
  /** `put` only when the key is absent (else a KvError of kind `exists`). */
  add(key, value, options = {}) {
    return this.put(key, value, { ...options, mode: "add" });
  }
  /** Whether a live item was there. */
  delete(key) {
    return kvCall(() => this.#inner.delete(key));
  }
  /** Adds `delta` to the decimal integer under `key` (absent counts as 0). */
  increment(key, delta = 1) {
    return Number(kvCall(() => this.#inner.increment(key, BigInt(delta))));
  }
  /** One page of keys: `{ keys, cursor }`; `cursor` is null after the last page. */
  list({ prefix = "", cursor = null, limit = 100 } = {}) {
    const page = kvCall(() => this.#inner.list(prefix, cursor ?? undefined, limit));
    return { keys: page.keys, cursor: page.cursor ?? null };
  }
  /** Every key starting with `prefix`. */
  *keys(prefix = "") {
    let cursor = null;
    do {
      const page = this.list({ prefix, cursor, limit: 1000 });
      yield* page.keys;
      cursor = page.cursor;
    } while (cursor !== null);
  }
}

export const kv = {
  /** Opens a store the app declares (`[kv_stores.NAME]`). */
  open(name) {
    return new KvStore(kvCall(() => edgeKv.Store.open(name)), name);
  },
};

// ---------------------------------------------------------------- config, secrets

export const config = {
  /** The value under `key` (`[config]`), or `fallback`. */
  get(key, fallback = null) {
    try {
      return wasiConfig.get(key) ?? fallback;
    } catch (error) {
      throw new Error(`config: ${describe(payloadOf(error))}`);
    }
  },
  /** Every key and value. */
  getAll() {
    return Object.fromEntries(wasiConfig.getAll());
  },
};

function secretBytes(store, name) {
  let opened;
  try {
    opened = edgeSecrets.Store.open(store);
  } catch (error) {
    throw new Error(`no secret store named \`${payloadOf(error)?.val ?? store}\` is declared in verge.toml`);
  }
  const secret = opened.get(name);
  return secret === undefined ? null : secret.plaintext();
}

export const secrets = {
  /** The secret `name` of store `store` as text, or null. */
  get(store, name) {
    const value = secretBytes(store, name);
    return value === null ? null : decoder.decode(value);
  },
  /** The secret's bytes, or null. */
  getBytes(store, name) {
    return secretBytes(store, name);
  },
};

// ---------------------------------------------------------------- geo, runtime

export const geo = {
  /** What is known about `ip`, or null. Throws a TypeError when `ip` is not an address. */
  lookup(ip) {
    try {
      return edgeGeo.lookup(ip) ?? null;
    } catch (error) {
      throw new TypeError(String(payloadOf(error)));
    }
  },
  /** The location of the client this request came from, or null. */
  clientLocation() {
    const ip = edgeDownstream.clientIp();
    return ip === undefined ? null : geo.lookup(ip);
  },
};

export const runtime = {
  requestId: () => edgeRuntime.requestId(),
  traceId: () => edgeRuntime.traceId(),
  nodeName: () => edgeRuntime.nodeName(),
  appName: () => edgeRuntime.appName(),
  appVersion: () => edgeRuntime.appVersion(),
  /** Guest CPU time used so far and the limit, in microseconds. */
  cpuUsedUs: () => Number(edgeRuntime.guestCpuUsedUs()),
  cpuLimitUs: () => Number(edgeRuntime.guestCpuLimitUs()),
  /** The client's IP address, or null. */
  clientIp: () => edgeDownstream.clientIp() ?? null,
  /** The client connection's TLS parameters, or null over plain HTTP. */
  tls: () => edgeDownstream.tls() ?? null,
};

// ---------------------------------------------------------------- rate limiting

const WINDOWS = { 1: "one-second", 10: "ten-seconds", 60: "sixty-seconds" };

function windowOf(seconds) {
  const window = WINDOWS[seconds];
  if (!window) throw new RangeError(`window must be 1, 10 or 60 seconds, not ${seconds}`);
  return window;
}

function rateCall(call) {
  try {
    return call();
  } catch (error) {
    throw new RangeError(describe(payloadOf(error)));
  }
}

export const ratelimit = {
  /** Counts `delta` for `entry` and answers whether it is blocked: in the penalty box,
   * or now over `limit` per second averaged over `window` seconds (1, 10, 60; it then
   * goes into the penalty box for `ttl` seconds). */
  checkRate(counter, entry, { limit, window = 10, delta = 1, penaltyBox, ttl = 60 }) {
    return rateCall(() => edgeRatelimit.checkRate(counter, entry, delta, windowOf(window), limit, penaltyBox, ttl));
  },
  increment(counter, entry, delta = 1) {
    rateCall(() => edgeRatelimit.increment(counter, entry, delta));
  },
  lookupRate(counter, entry, window = 10) {
    return rateCall(() => edgeRatelimit.lookupRate(counter, entry, windowOf(window)));
  },
  lookupCount(counter, entry, seconds) {
    return rateCall(() => edgeRatelimit.lookupCount(counter, entry, seconds));
  },
  penaltyBoxAdd(penaltyBox, entry, ttl) {
    rateCall(() => edgeRatelimit.penaltyBoxAdd(penaltyBox, entry, ttl));
  },
  penaltyBoxHas(penaltyBox, entry) {
    return rateCall(() => edgeRatelimit.penaltyBoxHas(penaltyBox, entry));
  },
};

// ---------------------------------------------------------------- cache

function cacheCall(call) {
  try {
    return call();
  } catch (error) {
    const payload = payloadOf(error);
    if (payload?.tag === "too-large") {
      throw new RangeError(`the object is larger than the node's limit of ${payload.val} bytes`);
    }
    throw new Error(`cache: ${describe(payload)}`);
  }
}

const cacheKey = (key) => bytes(key);

function found(entry) {
  const body = readAll(entry.body());
  return {
    body,
    text: () => decoder.decode(body),
    stale: entry.state() === "stale",
    age: Number(entry.ageMs()) / 1000,
    remainingTtl: Number(entry.remainingTtlMs()) / 1000,
    surrogateKeys: entry.surrogateKeys(),
    userMetadata: entry.userMetadata(),
  };
}

function writeOptions(body, { ttl, staleWhileRevalidate = 0, surrogateKeys = [], userMetadata }) {
  if (typeof ttl !== "number") throw new TypeError("cache: give the object's ttl in seconds");
  return {
    ttlMs: BigInt(Math.round(ttl * 1000)),
    staleWhileRevalidateMs: BigInt(Math.round(staleWhileRevalidate * 1000)),
    surrogateKeys,
    varyBy: [],
    userMetadata: userMetadata === undefined ? new Uint8Array() : bytes(userMetadata),
    knownLength: BigInt(body.length),
  };
}

function finishWrite(writer, body) {
  writeAll(cacheCall(() => writer.body()), body);
  cacheCall(() => edgeCache.Writer.finish(writer));
}

export const cache = {
  /** The usable object under `key` (fresh, or stale within stale-while-revalidate), or null. */
  lookup(key) {
    const entry = cacheCall(() => edgeCache.lookup(cacheKey(key), []));
    return entry === undefined ? null : found(entry);
  },
  /** Stores `body` under `key`. Options: `ttl` (seconds, required),
   * `staleWhileRevalidate`, `surrogateKeys`, `userMetadata`. */
  insert(key, body, options) {
    const data = bytes(body);
    const writer = cacheCall(() => edgeCache.insert(cacheKey(key), [], writeOptions(data, options)));
    finishWrite(writer, data);
  },
  /** The body under `key`; on a miss, what `fill()` (sync or async) returns, stored.
   * Concurrent misses collapse: one request fills, the others wait for its object. */
  async getOrSet(key, fill, options) {
    const transaction = cacheCall(() => edgeCache.Transaction.lookup(cacheKey(key), []));
    const entry = transaction.found();
    if (entry !== undefined && !transaction.mustInsert()) return found(entry).body;
    let data;
    try {
      data = bytes(await fill());
    } catch (error) {
      transaction.cancel();
      throw error;
    }
    finishWrite(cacheCall(() => transaction.insert(writeOptions(data, options))), data);
    return data;
  },
  /** Purges every variant under `key` (`soft`: marks them stale); returns how many. */
  purge(key, { soft = false } = {}) {
    return Number(cacheCall(() => edgeCache.purge(cacheKey(key), soft)));
  },
  /** Purges the app's objects carrying `surrogateKey`, HTTP objects included. */
  purgeSurrogateKey(surrogateKey, { soft = false } = {}) {
    return Number(cacheCall(() => edgeCache.purgeSurrogateKey(surrogateKey, soft)));
  },
};

// ---------------------------------------------------------------- logging

const LEVELS = ["trace", "debug", "info", "warn", "error", "critical"];

/** A line in the request's log stream (`[logging]` filters by level). */
function write(level, message, context = "") {
  if (!LEVELS.includes(level)) throw new TypeError(`level must be one of ${LEVELS.join(", ")}`);
  wasiLogging.log(level, context, String(message));
}

export const log = {
  log: write,
  trace: (message, context) => write("trace", message, context),
  debug: (message, context) => write("debug", message, context),
  info: (message, context) => write("info", message, context),
  warn: (message, context) => write("warn", message, context),
  error: (message, context) => write("error", message, context),
  /** A named log endpoint (`[log_endpoints.NAME]`). */
  endpoint(name) {
    let inner;
    try {
      inner = edgeLogs.Endpoint.open(name);
    } catch (error) {
      throw new Error(String(payloadOf(error)));
    }
    return { write: (line) => inner.write(String(line)) };
  },
};
