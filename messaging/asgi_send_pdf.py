"""POST /api/send-pdf as a bare ASGI handler, served ahead of Django's request path.

Django's per-request machinery costs more than the work itself (see shared/PERFORMANCE.md), so the
one endpoint that takes load answers here. It shares everything else with the DRF view: token check,
validation (messaging.intake), the group-commit writer (messaging.queue_writer), the answers' text.
"""

import logging

from django.utils.translation import gettext as _

from core.auth import check_authorization
from core.errors import ApiError
from core.http_guard import respond, send_json

from .intake import check_content_length, parse_send_pdf, too_large
from . import wakeups
from .queue_writer import enqueue_async
from .views import accepted_body

log = logging.getLogger(__name__)

PATH = "/api/send-pdf"


def wants(scope) -> bool:
    return scope["type"] == "http" and scope["path"] == PATH and scope["method"] == "POST"


async def _read_body(receive, limit: int) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionAbortedError
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large()
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def handle(scope, receive, send) -> None:
    from django.conf import settings

    headers = dict(scope["headers"])
    try:
        refused = check_authorization(headers.get(b"authorization"))
        if refused is not None:
            raise refused
        length = headers.get(b"content-length")
        check_content_length(int(length) if length and length.isdigit() else None)
        body = await _read_body(receive, settings.MAX_REQUEST_BYTES)
        key = headers.get(b"idempotency-key")
        request = parse_send_pdf(body, key.decode("latin-1") if key is not None else None)
        accepted = await enqueue_async(request)
    except ApiError as exc:
        extra = [(b"www-authenticate", b'Bearer realm="api"')] if exc.status_code == 401 else []
        await respond(send, exc.status_code, exc.code, exc.message, extra)
        return
    except ConnectionAbortedError:
        return
    except Exception:
        log.exception("send-pdf failed")
        await respond(send, 500, "internal_error", _("Error interno."))
        return
    await send_json(send, 202, accepted_body(accepted.message_id))
    if accepted.created:
        await wakeups.announce(request.session_id)
