"""Turning the raw body of POST /api/send-pdf (or /api/send-text) into a validated request, or a precise ApiError.

Pure: no database, no Django request. Both entry points (the DRF view and the bare ASGI handler)
call this, so every client sees the same answers.
"""

import hashlib
import re
import unicodedata
from dataclasses import dataclass

import orjson
import pybase64
from django.conf import settings
from django.utils.translation import gettext as _

from sessions_app.ids import InvalidSessionId, validate_session_id
from sessions_app.selectors import invalid_session_id_error
from core.errors import ApiError
from core.phones import phone_digits

DEFAULT_FILE_NAME = "Comprobante.pdf"
MAX_FILE_NAME = 200
MAX_CAPTION = 1024
MAX_TEXT = 4096  # as WhatsApp Cloud API's text messages
MAX_IDEMPOTENCY_KEY = 255
_B64_WHITESPACE = re.compile(rb"\s+")
_DATA_URI = re.compile(rb"^data:[\w.+/-]*;base64,", re.IGNORECASE)
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,%d}" % MAX_IDEMPOTENCY_KEY)
# Control characters other than tab and line breaks: never meant in a caption, and NUL is refused by
# Postgres (which would fail the whole group commit).
_CAPTION_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class SendRequest:
    session_id: str
    to: str
    file_name: str  # "" for a text
    caption: str
    data: bytes  # the PDF, or the text in UTF-8
    sha256: str
    idempotency_key: str | None
    request_hash: str
    kind: str = "document"  # or "text"

    @property
    def mimetype(self) -> str:
        return "text/plain" if self.kind == "text" else "application/pdf"


def too_large() -> ApiError:
    return ApiError(
        413,
        "payload_too_large",
        _("El PDF supera el tamaño máximo permitido (%(max)s bytes).") % {"max": settings.MAX_PDF_BYTES},
    )


def check_content_length(length: int | None) -> None:
    """Refuse a body that cannot hold an acceptable PDF, before reading it."""
    if length is not None and length > settings.MAX_REQUEST_BYTES:
        raise too_large()


def normalize_phone(value: object) -> str:
    """Digits with country code; '+', spaces, dashes (and brackets, dots) tolerated."""
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise ApiError(400, "invalid_phone", _("'to' debe ser un número de teléfono con código de país."))
    digits = phone_digits(value)
    if digits is None:
        raise ApiError(400, "invalid_phone", _("'to' no es un número válido con código de país (ejemplo: 51987654321)."))
    return digits


def clean_file_name(value: object) -> str:
    """Keep the last path component, drop control characters, end in .pdf."""
    if value is None or value == "":
        return DEFAULT_FILE_NAME
    if not isinstance(value, str):
        raise ApiError(400, "invalid_file_name", _("'fileName' debe ser texto."))
    name = value.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip().strip(".").strip()
    if not name:
        raise ApiError(400, "invalid_file_name", _("'fileName' no contiene un nombre de archivo utilizable."))
    if not name.lower().endswith(".pdf"):
        name += ".pdf"
    if len(name) > MAX_FILE_NAME:
        raise ApiError(
            400,
            "invalid_file_name",
            _("'fileName' es demasiado largo (máximo %(max)s caracteres).") % {"max": MAX_FILE_NAME},
        )
    return name


def decode_pdf(value: object) -> bytes:
    """Standard or URL-safe base64, whitespace and a data: URI prefix tolerated; must be a PDF."""
    if not isinstance(value, str):
        raise ApiError(400, "invalid_base64", _("'pdfBase64' debe ser texto en base64."))
    raw = value.encode("ascii", "replace")
    try:  # the common case, strict standard base64, costs one pass
        pdf = pybase64.b64decode(raw, validate=True)
    except ValueError:
        pdf = _decode_tolerant(raw)
    if len(pdf) > settings.MAX_PDF_BYTES:
        raise too_large()
    if not pdf.startswith(b"%PDF-"):
        raise ApiError(400, "not_a_pdf", _("El contenido no es un PDF (debe empezar con %PDF-)."))
    return pdf


def _decode_tolerant(raw: bytes) -> bytes:
    raw = _DATA_URI.sub(b"", raw, count=1)
    raw = _B64_WHITESPACE.sub(b"", raw)
    if (len(raw) * 3) // 4 - raw[-2:].count(b"=") > settings.MAX_PDF_BYTES:
        raise too_large()  # without decoding it
    if b"-" in raw or b"_" in raw:
        raw = raw.translate(bytes.maketrans(b"-_", b"+/"))
    raw += b"=" * (-len(raw) % 4)
    try:
        return pybase64.b64decode(raw, validate=True)
    except ValueError:
        raise ApiError(400, "invalid_base64", _("'pdfBase64' no es base64 válido.")) from None


def clean_idempotency_key(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if not _IDEMPOTENCY_KEY.fullmatch(value):
        raise ApiError(
            400,
            "invalid_idempotency_key",
            _("Idempotency-Key debe tener de 1 a %(max)s caracteres ASCII visibles.") % {"max": MAX_IDEMPOTENCY_KEY},
        )
    return value


def _json_with(body: bytes, required: tuple[str, ...]) -> dict:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ApiError(400, "invalid_json", _("El cuerpo no es JSON válido.")) from None
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_json", _("El cuerpo debe ser un objeto JSON."))
    missing = [f for f in required if data.get(f) in (None, "")]
    if missing:
        raise ApiError(
            400,
            "missing_parameters",
            _("Faltan parámetros obligatorios: %(fields)s.") % {"fields": ", ".join(missing)},
        )
    return data


def _session_id(value: object) -> str:
    try:
        return validate_session_id(value)
    except InvalidSessionId:
        raise invalid_session_id_error() from None


def parse_send_text(body: bytes, idempotency_key: str | None = None) -> SendRequest:
    key = clean_idempotency_key(idempotency_key)
    data = _json_with(body, ("sessionId", "to", "text"))
    session_id = _session_id(data["sessionId"])
    to = normalize_phone(data["to"])
    text = data["text"]
    if not isinstance(text, str) or not text.strip():
        raise ApiError(400, "invalid_text", _("'text' debe ser texto no vacío."))
    if len(text) > MAX_TEXT:
        raise ApiError(
            400, "text_too_long", _("'text' es demasiado largo (máximo %(max)s caracteres).") % {"max": MAX_TEXT}
        )
    try:
        encoded = text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate escaped in the JSON
        raise ApiError(400, "invalid_text", _("'text' no es texto Unicode válido.")) from None
    digest = hashlib.sha256(encoded).hexdigest()
    request_hash = hashlib.sha256(orjson.dumps(["text", session_id, to, digest])).hexdigest()
    return SendRequest(session_id, to, "", "", encoded, digest, key, request_hash, kind="text")


def parse_send_pdf(body: bytes, idempotency_key: str | None = None) -> SendRequest:
    key = clean_idempotency_key(idempotency_key)
    data = _json_with(body, ("sessionId", "to", "pdfBase64"))
    session_id = _session_id(data["sessionId"])
    to = normalize_phone(data["to"])
    file_name = clean_file_name(data.get("fileName"))
    caption = data.get("caption") or ""
    if not isinstance(caption, str) or len(caption) > MAX_CAPTION or _CAPTION_CONTROL.search(caption):
        raise ApiError(
            400, "invalid_caption", _("'caption' debe ser texto de hasta %(max)s caracteres, sin caracteres de control.") % {"max": MAX_CAPTION}
        )
    pdf = decode_pdf(data["pdfBase64"])
    digest = hashlib.sha256(pdf).hexdigest()
    request_hash = hashlib.sha256(
        orjson.dumps([session_id, to, file_name, caption, digest])
    ).hexdigest()
    return SendRequest(session_id, to, file_name, caption, pdf, digest, key, request_hash)
