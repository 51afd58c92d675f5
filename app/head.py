"""HEAD on every GET route (RFC 9110, 9.3.2): the GET's status and headers, without its content.

FastAPI's routes answer only the methods they declare, so HEAD of `/v1/timeline` was a 405 while
link checkers, feed readers and caches ask HEAD to learn a resource's size, type, ETag or
Last-Modified. Declaring HEAD on each of the routes would list it in the OpenAPI description
beside each GET; one layer does it for all of them instead, the ones added later included.

The layer sits outside the response cache, gzip and the ETag step, so a HEAD is answered from
the same cache entry as its GET, with the GET's `Content-Length`, `Content-Encoding` and `ETag`
(and a 304 for a matching `If-None-Match`); and inside the access log, the limits and CORS, which
see the HEAD it is. A request of any other method costs one comparison.

A HEAD's answer is complete once its start is sent: the body the route goes on to send is
dropped, and the route is told the client has gone, so a streamed export or a live stream stops
at once rather than running to its end for nobody.
"""

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_REQUEST: Message = {"type": "http.request", "body": b"", "more_body": False}
_DISCONNECT: Message = {"type": "http.disconnect"}
_END: Message = {"type": "http.response.body", "body": b"", "more_body": False}


class HeadAsGet:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        answered = anyio.Event()
        asked = False

        # A HEAD has no content (RFC 9110, 9.3.2), so the client is never read: the route gets
        # an empty request, then a disconnect once the answer is sent.
        async def head_receive() -> Message:
            nonlocal asked
            if not asked:
                asked = True
                return _REQUEST
            await answered.wait()
            return _DISCONNECT

        async def head_send(message: Message) -> None:
            if answered.is_set() or message["type"] != "http.response.start":
                return
            await send(message)
            await send(_END)
            answered.set()

        await self.app({**scope, "method": "GET"}, head_receive, head_send)
