// Types of Verge's JavaScript SDK (index.js). `verge build` bundles the module into
// the app; point your editor here (the template's jsconfig.json does).

export type Bytes = string | Uint8Array | ArrayBuffer | ArrayBufferView;
export type Handler = (request: Request) => Response | Promise<Response>;
/** A route's `:name` and `*rest` segments, decoded. */
export type Params = Record<string, string>;
export type RouteHandler = (request: Request, params: Params) => Response | Promise<Response>;

/** Answers each request with `handler(request)`. */
export function serve(handler: Handler): void;

/** Routes by method and path: `:name` segments, a trailing `*rest`; 404 without a
 * route, 405 with `Allow` when only other methods match. */
export class Router {
  on(method: string, pattern: string, handler: RouteHandler): this;
  get(pattern: string, handler: RouteHandler): this;
  post(pattern: string, handler: RouteHandler): this;
  put(pattern: string, handler: RouteHandler): this;
  patch(pattern: string, handler: RouteHandler): this;
  delete(pattern: string, handler: RouteHandler): this;
  handle(request: Request): Promise<Response>;
  /** Serves every request through this router. */
  listen(): void;
}

/** `fetch()` to a backend declared in verge.toml, by name; `input` is a path (with
 * its query) or a Request whose path is used. Rejects with a TypeError naming the
 * `wasi:http` error code when no response came. */
export function fetchBackend(
  name: string,
  input: string | Request,
  init?: RequestInit,
): Promise<Response>;

export type KvErrorKind =
  | "no-such-store"
  | "invalid"
  | "exists"
  | "generation-mismatch"
  | "not-a-number"
  | "storage";

export class KvError extends Error {
  kind: KvErrorKind;
  /** For `generation-mismatch`: the item's generation now (null: absent). */
  generation?: number | null;
}

export interface KvEntry {
  value: Uint8Array;
  metadata: string | null;
  /** Changes with every write; what `ifGeneration` compares. */
  generation: number;
  expiresAt: Date | null;
}

export interface PutOptions {
  /** Expire this many seconds after the write. */
  ttl?: number;
  /** Text stored beside the value. */
  metadata?: string;
  mode?: "overwrite" | "add" | "append" | "prepend";
  /** Write only if the item is at this generation (compare-and-swap). */
  ifGeneration?: number;
  /** Store `value` as JSON. */
  json?: boolean;
}

export interface KvStore {
  readonly name: string;
  get(key: string): Uint8Array | null;
  text(key: string): string | null;
  json<T = unknown>(key: string): T | null;
  getEntry(key: string): KvEntry | null;
  /** Returns the item's new generation. */
  put(key: string, value: Bytes | unknown, options?: PutOptions): number;
  add(key: string, value: Bytes | unknown, options?: Omit<PutOptions, "mode">): number;
  delete(key: string): boolean;
  increment(key: string, delta?: number): number;
  list(options?: { prefix?: string; cursor?: string | null; limit?: number }): {
    keys: string[];
    cursor: string | null;
  };
  keys(prefix?: string): Generator<string>;
}

export const kv: {
  /** Opens a store the app declares (`[kv_stores.NAME]`); throws KvError otherwise. */
  open(name: string): KvStore;
};

export const config: {
  get(key: string): string | null;
  get(key: string, fallback: string): string;
  getAll(): Record<string, string>;
};

export const secrets: {
  /** The secret as UTF-8 text, or null; throws when the store is not declared. */
  get(store: string, name: string): string | null;
  getBytes(store: string, name: string): Uint8Array | null;
};

export interface Location {
  countryCode?: string;
  countryName?: string;
  continentCode?: string;
  regionCode?: string;
  region?: string;
  city?: string;
  postalCode?: string;
  latitude?: number;
  longitude?: number;
  timeZone?: string;
  asn?: number;
  asOrganization?: string;
}

export const geo: {
  lookup(ip: string): Location | null;
  clientLocation(): Location | null;
};

export interface TlsInfo {
  protocol: string;
  cipherSuite: string;
  serverName?: string;
  alpn?: string;
}

export const runtime: {
  requestId(): string;
  traceId(): string;
  nodeName(): string;
  appName(): string;
  appVersion(): string;
  cpuUsedUs(): number;
  cpuLimitUs(): number;
  clientIp(): string | null;
  tls(): TlsInfo | null;
};

export const ratelimit: {
  checkRate(
    counter: string,
    entry: string,
    options: { limit: number; window?: 1 | 10 | 60; delta?: number; penaltyBox: string; ttl?: number },
  ): boolean;
  increment(counter: string, entry: string, delta?: number): void;
  lookupRate(counter: string, entry: string, window?: 1 | 10 | 60): number;
  lookupCount(counter: string, entry: string, seconds: number): number;
  penaltyBoxAdd(penaltyBox: string, entry: string, ttl: number): void;
  penaltyBoxHas(penaltyBox: string, entry: string): boolean;
};

export interface CachedObject {
  body: Uint8Array;
  text(): string;
  stale: boolean;
  /** Seconds since it was stored. */
  age: number;
  /** Seconds of freshness left. */
  remainingTtl: number;
  surrogateKeys: string[];
  userMetadata: Uint8Array;
}

export interface CacheWriteOptions {
  /** Fresh for this many seconds. */
  ttl: number;
  staleWhileRevalidate?: number;
  surrogateKeys?: string[];
  userMetadata?: Bytes;
}

export const cache: {
  lookup(key: Bytes): CachedObject | null;
  insert(key: Bytes, body: Bytes, options: CacheWriteOptions): void;
  getOrSet(key: Bytes, fill: () => Bytes | Promise<Bytes>, options: CacheWriteOptions): Promise<Uint8Array>;
  purge(key: Bytes, options?: { soft?: boolean }): number;
  purgeSurrogateKey(surrogateKey: string, options?: { soft?: boolean }): number;
};

export type Level = "trace" | "debug" | "info" | "warn" | "error" | "critical";

export const log: {
  log(level: Level, message: string, context?: string): void;
  trace(message: string, context?: string): void;
  debug(message: string, context?: string): void;
  info(message: string, context?: string): void;
  warn(message: string, context?: string): void;
  error(message: string, context?: string): void;
  endpoint(name: string): { write(line: string): void };
};

// The fetch event of the service-worker style that componentize-js (StarlingMonkey)
// supports: `addEventListener("fetch", (event) => event.respondWith(...))`.
declare global {
  interface FetchEvent extends Event {
    readonly request: Request;
    respondWith(response: Response | Promise<Response>): void;
    waitUntil(promise: Promise<unknown>): void;
  }
  function addEventListener(type: "fetch", listener: (event: FetchEvent) => void): void;
}
