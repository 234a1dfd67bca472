"""What every HTTP request passes before the application sees it, on both paths (the send-pdf fast
path and Django): the per-client rate limit of /api/*, a size limit on bodies that refuses them before
they are read whole, and the usual security headers on every answer (static files included).
"""

import orjson
from django.conf import settings
from django.utils.translation import gettext as _

from . import rate_limit
from .errors import error_bytes

SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
)


async def send_json(send, status: int, body: dict, extra_headers=()) -> None:
    """A JSON answer written straight to ASGI, with the headers every answer carries."""
    await _send_bytes(send, status, orjson.dumps(body), extra_headers)


async def respond(send, status: int, code: str, message: str, extra_headers=()) -> None:
    """The error body (core.errors) written straight to ASGI."""
    await _send_bytes(send, status, error_bytes(code, message), extra_headers)


async def _send_bytes(send, status: int, data: bytes, extra_headers) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
               (b"cache-control", b"no-store"), *SECURITY_HEADERS, *extra_headers]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


def too_large_message() -> str:
    return _("El cuerpo de la solicitud es demasiado grande (máximo %(max)s bytes).") % {"max": settings.MAX_BODY_BYTES}


async def rate_limited(scope, send) -> bool:
    """Answers 429 and returns True when the client has used up its share of /api/*."""
    limiter = rate_limit.limiter()
    if limiter is None or not scope["path"].startswith("/api/"):
        return False
    wait = limiter.wait_for(rate_limit.client_address(scope))
    if wait <= 0:
        return False
    await respond(send, 429, "rate_limited", _("Demasiadas solicitudes; intente más tarde."),
                  [(b"retry-after", str(max(1, round(wait + 0.5))).encode())])
    return True


def _content_length(scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


async def guarded(app, scope, receive, send) -> None:
    """Run a Django (or static files) request with the body limit and the security headers."""
    limit = settings.MAX_BODY_BYTES
    length = _content_length(scope)
    if length is not None and length > limit:
        return await respond(send, 413, "payload_too_large", too_large_message())

    received = 0
    overflow = False
    started = False

    async def limited_receive():
        nonlocal received, overflow
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:  # a chunked body that says no length: stop reading it here
                overflow = True
                return {"type": "http.disconnect"}
        return message

    async def with_headers(message):
        nonlocal started
        if message["type"] == "http.response.start":
            started = True
            present = {name.lower() for name, _ in message.get("headers", [])}
            missing = [h for h in SECURITY_HEADERS if h[0] not in present]
            if missing:
                message = {**message, "headers": [*message.get("headers", []), *missing]}
        await send(message)

    await app(scope, limited_receive, with_headers)
    if overflow and not started:
        await respond(send, 413, "payload_too_large", too_large_message())
