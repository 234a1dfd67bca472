"""The send endpoints (POST /api/send-pdf, send-document, send-image, send-text) as a bare ASGI handler, served ahead of Django.

Django's per-request path costs more than the work itself (docs/benchmarks.md), so the endpoints that take
load answer here: read the request, call messaging.services.message_enqueue, render its answer. Every
server of the project runs whatsapp_service.asgi.application, which hands these requests here; the DRF
views in messaging.views describe them in the schema (tests/messaging/test_asgi_send.py keeps the two alike).
"""

import logging
from dataclasses import dataclass
from typing import Callable

import orjson
from django.conf import settings
from django.utils.translation import gettext as _

from core.auth import check_authorization
from core.errors import ApiError
from core.http_guard import respond, send_json, too_large_message
from sessions_app.ids import InvalidSessionId
from sessions_app.selectors import invalid_session_id_error, unknown_session_error

from . import intake
from .errors import (IdempotencyConflict, InvalidMessage, MessageRefused, MessageTooLarge, QueueUnavailable,
                     UnknownSession, UnsupportedType)
from .queue_storage import SendRequest
from .services import message_enqueue

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Endpoint:
    build: Callable[..., SendRequest]  # its messaging.intake builder
    fields: dict[str, str]  # body field -> the builder's keyword
    required: tuple[str, ...]
    body_limit: Callable[[], int]  # read per request, as settings may change
    too_large: Callable[[], MessageRefused]


ENDPOINTS = {
    "/api/send-pdf": Endpoint(
        intake.document_request,
        {"sessionId": "session_id", "to": "to", "pdfBase64": "file_base64", "fileName": "file_name",
         "caption": "caption"},
        ("sessionId", "to", "pdfBase64"),
        lambda: settings.MAX_REQUEST_BYTES,
        intake.pdf_too_large,
    ),
    "/api/send-document": Endpoint(
        intake.file_request,
        {"sessionId": "session_id", "to": "to", "fileBase64": "file_base64", "fileName": "file_name",
         "mimeType": "mime_type", "caption": "caption"},
        ("sessionId", "to", "fileBase64", "fileName"),
        lambda: settings.MAX_REQUEST_BYTES,
        intake.file_too_large,
    ),
    "/api/send-image": Endpoint(
        intake.image_request,
        {"sessionId": "session_id", "to": "to", "imageBase64": "image_base64", "caption": "caption"},
        ("sessionId", "to", "imageBase64"),
        lambda: settings.MAX_REQUEST_BYTES,
        intake.file_too_large,
    ),
    "/api/send-text": Endpoint(
        intake.text_request,
        {"sessionId": "session_id", "to": "to", "text": "text"},
        ("sessionId", "to", "text"),
        lambda: settings.MAX_BODY_BYTES,  # as every other body Django takes
        lambda: MessageTooLarge(too_large_message()),
    ),
}

_STATUS = {InvalidMessage: 400, MessageTooLarge: 413, IdempotencyConflict: 409, QueueUnavailable: 503,
           UnsupportedType: 415}


def wants(scope) -> bool:
    return scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in ENDPOINTS


async def handle(scope, receive, send) -> None:
    endpoint = ENDPOINTS[scope["path"]]
    headers = dict(scope["headers"])
    try:
        refused = check_authorization(headers.get(b"authorization"))
        if refused is not None:
            raise refused
        body = await _read_body(receive, headers.get(b"content-length"), endpoint)
        key = headers.get(b"idempotency-key")
        key = key.decode("latin-1") if key is not None else None
        intake.clean_idempotency_key(key)  # a bad header is told before a bad body, as it always was
        data = _json_object(body, endpoint.required)
        accepted = await message_enqueue(build=endpoint.build, idempotency_key=key,
                                         **{name: data.get(field) for field, name in endpoint.fields.items()})
    except ConnectionAbortedError:
        return
    except Exception as exc:
        await _render_error(send, api_error_for(exc))
        return
    await send_json(send, 202, {"success": True, "message": _("Mensaje encolado para envío."),
                                "messageId": str(accepted.message_id), "status": "queued"})


async def _read_body(receive, length: bytes | None, endpoint: Endpoint) -> bytes:
    """The whole body, refused by its declared length before it is read, or as soon as it grows past the limit."""
    limit = endpoint.body_limit()
    if length and length.isdigit() and int(length) > limit:
        raise endpoint.too_large()
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionAbortedError
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise endpoint.too_large()
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _json_object(body: bytes, required: tuple[str, ...]) -> dict:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ApiError(400, "invalid_json", _("El cuerpo no es JSON válido.")) from None
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_json", _("El cuerpo debe ser un objeto JSON."))
    missing = [f for f in required if data.get(f) in (None, "")]
    if missing:
        raise ApiError(400, "missing_parameters",
                       _("Faltan parámetros obligatorios: %(fields)s.") % {"fields": ", ".join(missing)})
    return data


def api_error_for(exc: Exception) -> ApiError:
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, UnknownSession):
        return unknown_session_error(exc.session_id)
    if isinstance(exc, InvalidSessionId):
        return invalid_session_id_error()
    if isinstance(exc, MessageRefused):
        return ApiError(_STATUS.get(type(exc), 400), exc.code, exc.message)
    log.error("send failed", exc_info=exc)
    return ApiError(500, "internal_error", _("Error interno."))


async def _render_error(send, error: ApiError) -> None:
    extra = [(b"www-authenticate", b'Bearer realm="api"')] if error.status_code == 401 else []
    await respond(send, error.status_code, error.code, error.message, extra)
