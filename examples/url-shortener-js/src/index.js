// A URL shortener on the edge: the JavaScript twin of examples/url-shortener, with
// Verge's JavaScript module (`import ... from "verge"`, bundled by `verge build`).
//
// - `POST /shorten` with `{"url": "https://…"}` stores the URL under a new random
//   slug and answers `201 {"slug": …, "short_url": …}`; 400 unless the URL is http(s).
// - `GET /<slug>` answers `302` to the stored URL, or 404.
// - `GET /health` answers `ok`.
//
// Links live in the KV store `links` (seeded from `links.json` in development).

import { KvError, Router, kv } from "verge";

// Slug alphabet: no look-alikes (0/O, 1/l/I).
const ALPHABET = "23456789abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ";
const SLUG_LENGTH = 7;

// crypto.getRandomValues asks the host each time; Math.random would repeat the
// sequence frozen into the component when it was pre-initialised.
function newSlug() {
  const random = crypto.getRandomValues(new Uint32Array(SLUG_LENGTH));
  return Array.from(random, (n) => ALPHABET[n % ALPHABET.length]).join("");
}

function isHttpUrl(text) {
  try {
    const url = new URL(text);
    return (url.protocol === "http:" || url.protocol === "https:") && url.hostname !== "";
  } catch {
    return false;
  }
}

const error = (status, message) => Response.json({ error: message }, { status });

async function shorten(request) {
  const links = kv.open("links");
  // Short links point back at the host (and scheme) the client used.
  const base = new URL(request.url).origin;
  let body;
  try {
    body = await request.json();
  } catch {
    return error(400, 'body must be JSON like {"url": "https://example.com/"}');
  }
  if (typeof body?.url !== "string" || !isHttpUrl(body.url)) {
    return error(400, "url must be http(s)");
  }
  // A fresh slug that is already taken is astronomically rare; retry then.
  for (let attempt = 0; attempt < 5; attempt++) {
    const slug = newSlug();
    try {
      links.add(slug, body.url);
    } catch (e) {
      if (e instanceof KvError && e.kind === "exists") continue;
      throw e;
    }
    return Response.json({ slug, short_url: `${base}/${slug}` }, { status: 201 });
  }
  return error(503, "no free slug; try again");
}

/**
 * @param {Request} request
 * @param {import("verge").Params} params
 */
function follow(request, { slug }) {
  const url = kv.open("links").text(slug);
  if (url === null) return error(404, "not found");
  return new Response(null, { status: 302, headers: { location: url, "cache-control": "no-store" } });
}

new Router()
  .get("/health", () => new Response("ok"))
  .post("/shorten", shorten)
  .get("/:slug", follow)
  .get("/", () => error(404, "not found"))
  .listen();
