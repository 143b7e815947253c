"""The front door of prmkit's HTTP servers: a pure ASGI middleware that sees every request before
anything parses it.

In order, for each HTTP request:

1. Authentication (when a token is set): the `Authorization: Bearer <token>` header is compared in
   constant time (`hmac.compare_digest`) before a single body byte is read; a wrong or missing one
   gets 401 and no detail about the body. Paths in `open_paths` (`/health`) pass through, and the
   app is told whether the client authenticated (`scope["state"]["authenticated"]`), so it can
   leave out details for strangers.
2. Body size: a Content-Length over `max_bytes` gets 413 at once; a body without one is counted as
   it arrives and refused with 413 as soon as it passes the limit.
3. Body time: the whole body must arrive within `body_timeout_s` of the request's start; a client
   that stops sending half-way gets 408 and its connection is closed, never held open.

The body is then replayed to the app in one piece.
"""

from __future__ import annotations

import asyncio
import hmac
import json

DEFAULT_MAX_BODY = 8 * 1024 * 1024
DEFAULT_BODY_TIMEOUT_S = 30.0


def token_ok(header: str | bytes | None, token: str) -> bool:
    """Whether an Authorization header carries `Bearer <token>`, compared in constant time."""
    if isinstance(header, str):
        header = header.encode("latin-1", "replace")
    return hmac.compare_digest(header or b"", f"Bearer {token}".encode())


async def send_json(send, status: int, payload: dict, headers: list | None = None) -> None:
    body = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


class GuardMiddleware:
    """Authentication, body size and body time limits, in that order (see the module docstring)."""

    def __init__(self, app, max_bytes: int = DEFAULT_MAX_BODY, token: str | None = None,
                 body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S, open_paths: tuple = ("/health",)):
        if max_bytes < 1 or body_timeout_s <= 0:
            raise ValueError("max_bytes and body_timeout_s must be positive")
        self.app, self.max_bytes, self.token = app, max_bytes, token or None
        self.body_timeout_s, self.open_paths = body_timeout_s, tuple(open_paths)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        authed = self.token is None or token_ok(headers.get(b"authorization"), self.token)
        scope.setdefault("state", {})["authenticated"] = authed
        if not authed and scope.get("path") not in self.open_paths:
            return await send_json(send, 401, {"detail": "missing or wrong bearer token"},
                                   [(b"www-authenticate", b"Bearer")])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            return await self._too_large(send, int(length))
        body = await self._read(receive, send)
        if body is None:
            return None
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)

    async def _read(self, receive, send) -> bytes | None:
        """The whole body, or None once a response (413, 408) was sent or the client went away."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.body_timeout_s
        chunks, size, more = [], 0, True
        while more:
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                await send_json(send, 408, {"detail": f"request body: not received within {self.body_timeout_s:g} s"},
                                [(b"connection", b"close")])
                return None
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            more = message.get("more_body", False)
            if size > self.max_bytes:
                await self._too_large(send, size)
                return None
        return b"".join(chunks)

    async def _too_large(self, send, size: int) -> None:
        await send_json(send, 413, {"detail": f"request body: {size} bytes is over the limit of {self.max_bytes} "
                                              "bytes; send fewer items per request"})


# ---------------------------------------------------------------------------------------------
# the apps' own answer to a malformed body


def _field_name(loc) -> str:
    """('body', 'steps', 1, 0) -> 'steps[1][0]'."""
    parts = [p for p in loc if p != "body"]
    name = ""
    for p in parts:
        name += f"[{p}]" if isinstance(p, int) else (f".{p}" if name else str(p))
    return name or "body"


def validation_handler(request, exc):
    """422 naming each malformed field (`field 'steps[1][0]': ...`), without echoing the input
    (FastAPI's default answer would, and fails on a NaN in it)."""
    from fastapi.responses import JSONResponse

    errors = exc.errors()
    msgs = []
    for e in errors[:5]:
        name = _field_name(e.get("loc", ()))
        msg = e.get("msg", "invalid")
        if e.get("type") == "json_invalid":
            msg = f"body is not valid JSON ({e.get('ctx', {}).get('error', msg)})"
            name = "body"
        msgs.append(f"field '{name}': {msg}")
    return JSONResponse(status_code=422, content={
        "detail": "; ".join(msgs),
        "errors": [{"field": _field_name(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")}
                   for e in errors]})
