"""A Python wasi:http handler that fetches from an origin with plain
`wasi:http/outgoing-handler`: GET /fetch/AUTHORITY/PATH answers
`python fetched: BODY` with the origin's status, or 502 and the error code."""

import asyncio

import poll_loop
from componentize_py_types import Err, Ok
from poll_loop import PollLoop, Sink, Stream
from wit_world import exports
from wit_world.imports.types import (
    Fields,
    IncomingRequest,
    OutgoingRequest,
    OutgoingResponse,
    ResponseOutparam,
    Scheme_Http,
)


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        loop = PollLoop()
        asyncio.set_event_loop(loop)
        loop.run_until_complete(handle_async(request, response_out))


async def respond(response_out: ResponseOutparam, status: int, body: bytes) -> None:
    response = OutgoingResponse(Fields.from_list([("content-type", b"text/plain")]))
    response.set_status_code(status)
    out_body = response.body()
    ResponseOutparam.set(response_out, Ok(response))
    sink = Sink(out_body)
    await sink.send(body)
    sink.close()


async def handle_async(request: IncomingRequest, response_out: ResponseOutparam) -> None:
    path = request.path_with_query() or "/"
    if not path.startswith("/fetch/"):
        await respond(response_out, 404, b"not found")
        return
    authority, _, rest = path[len("/fetch/"):].partition("/")
    outgoing = OutgoingRequest(Fields())
    outgoing.set_scheme(Scheme_Http())
    outgoing.set_authority(authority)
    outgoing.set_path_with_query("/" + rest)
    try:
        response = await poll_loop.send(outgoing)
    except Err as e:
        await respond(response_out, 502, f"error: {e.value}".encode())
        return
    stream = Stream(response.consume())
    body = bytearray()
    while True:
        chunk = await stream.next()
        if chunk is None:
            break
        body += chunk
    await respond(response_out, response.status(), b"python fetched: " + bytes(body))
