"""A Verge edge app in Python: every request runs `IncomingHandler.handle_request`
in a fresh, sandboxed instance.

    verge serve            build and serve on http://127.0.0.1:7878
    curl http://127.0.0.1:7878/
    curl -d 'hello' http://127.0.0.1:7878/echo
"""

import verge
from verge import JsonResponse, Request, Response


class IncomingHandler(verge.Handler):
    def handle_request(self, request: Request) -> Response:
        if request.path == "/":
            return Response("Hello from the edge!\n")
        if request.path == "/echo":
            # The request body, back as it came.
            content_type = request.headers.get("content-type", "application/octet-stream")
            return Response(request.body, headers={"content-type": content_type})
        if request.path == "/json":
            query = {name: values[-1] for name, values in request.query_params.items()}
            return JsonResponse({"method": request.method, "path": request.path, "query": query})
        return Response("not found\n", status=404)
