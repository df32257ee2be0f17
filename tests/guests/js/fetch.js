// A JavaScript handler (StarlingMonkey fetch event) that fetches from an origin with
// the standard fetch(): GET /fetch/HOST/PATH answers `js fetched: BODY`, or 502.
addEventListener("fetch", (event) => event.respondWith(handle(event.request)));

async function handle(request) {
  const url = new URL(request.url);
  if (!url.pathname.startsWith("/fetch/")) {
    return new Response("not found", { status: 404 });
  }
  const target = "http://" + url.pathname.slice("/fetch/".length);
  try {
    const response = await fetch(target);
    const text = await response.text();
    return new Response("js fetched: " + text, { status: response.status });
  } catch (e) {
    return new Response("error: " + e, { status: 502 });
  }
}
