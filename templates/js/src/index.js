// A Verge edge app in JavaScript: every request runs this module's `fetch` event
// handler in a fresh, sandboxed instance.
//
//   verge serve            build and serve on http://127.0.0.1:7878
//   curl http://127.0.0.1:7878/
//   curl -d 'hello' http://127.0.0.1:7878/echo

addEventListener("fetch", (event) => {
  event.respondWith(handle(event.request));
});

/** @param {Request} request */
async function handle(request) {
  const url = new URL(request.url);
  switch (url.pathname) {
    case "/":
      return new Response("Hello from the edge!\n", {
        headers: { "content-type": "text/plain; charset=utf-8" },
      });
    case "/echo":
      // The request body, back as it came.
      return new Response(await request.arrayBuffer(), {
        headers: { "content-type": request.headers.get("content-type") ?? "application/octet-stream" },
      });
    case "/json":
      return Response.json({ method: request.method, path: url.pathname, query: Object.fromEntries(url.searchParams) });
    default:
      return new Response("not found\n", { status: 404 });
  }
}
