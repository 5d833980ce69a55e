"""Just enough of an aiohttp-like web layer, in the standard library: a RouteTableDef with
@routes.get / @routes.post, Request.match_info / json(), json_response, middlewares, and an
HTTP/1.1 server on asyncio.start_server (one request per connection)."""

import asyncio
import json
import re

# Request heads and bodies are read at most this big; larger requests get a 413.
MAX_HEAD = 16 * 1024
MAX_BODY = 1024 * 1024


class Request:
    def __init__(self, method, path, headers, body, match_info):
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body
        self.match_info = match_info

    async def json(self):
        return json.loads(self.body or b"null")


class Response:
    def __init__(self, status=200, body=b"", content_type="application/json"):
        self.status = status
        self.body = body
        self.content_type = content_type


def json_response(obj, status=200):
    return Response(status, json.dumps(obj).encode())


class RouteTableDef:
    def __init__(self):
        self.routes = []

    def _add(self, method, pattern):
        rx = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$")

        def deco(handler):
            self.routes.append((method, rx, handler))
            return handler
        return deco

    def get(self, pattern):
        return self._add("GET", pattern)

    def post(self, pattern):
        return self._add("POST", pattern)


class Application:
    def __init__(self, routes, middlewares=()):
        self.routes = routes
        self.middlewares = list(middlewares)

    async def dispatch(self, request):
        for method, rx, handler in self.routes.routes:
            m = rx.match(request.path)
            if m and method == request.method:
                request.match_info = m.groupdict()
                h = handler
                for mw in reversed(self.middlewares):
                    h = (lambda mw, nxt: lambda req: mw(req, nxt))(mw, h)
                return await h(request)
        return json_response({"error": "no route", "path": request.path}, 404)

    async def _serve(self, reader, writer):
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            if len(head) > MAX_HEAD:
                raise ValueError("head too big")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, v in
                       (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
            n = int(headers.get("content-length") or 0)
            if n > MAX_BODY:
                resp = json_response({"error": "body too big"}, 413)
            else:
                body = await reader.readexactly(n) if n else b""
                resp = await self.dispatch(Request(method, path, headers, body, {}))
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            resp = json_response({"error": "bad request"}, 400)
        writer.write(b"HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
                     b"Connection: close\r\n\r\n" % (resp.status, resp.content_type.encode(),
                                                     len(resp.body)) + resp.body)
        try:
            await writer.drain()
        finally:
            writer.close()

    async def start(self, host, port):
        return await asyncio.start_server(self._serve, host, port, limit=MAX_HEAD)
