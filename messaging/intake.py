"""The checks a message passes before it is queued: what a client sent, turned into a SendRequest or a
precise MessageRefused. Pure: no database, no HTTP. messaging.services.message_enqueue is its caller."""

import hashlib
import re
import unicodedata

import orjson
import pybase64
from django.conf import settings
from django.utils.translation import gettext as _

from core.phones import phone_digits
from sessions_app.ids import validate_session_id

from . import file_types
from .errors import InvalidMessage, MessageTooLarge, UnsupportedType
from .models import MessageKind
from .queue_storage import SendRequest

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


def pdf_too_large() -> MessageTooLarge:
    return MessageTooLarge(
        _("El PDF supera el tamaño máximo permitido (%(max)s bytes).") % {"max": settings.MAX_PDF_BYTES}
    )


def file_too_large() -> MessageTooLarge:
    return MessageTooLarge(
        _("El archivo supera el tamaño máximo permitido (%(max)s bytes).") % {"max": settings.MAX_PDF_BYTES}
    )


def document_request(*, session_id: str, to: str, file_base64: str, file_name: str | None = None,
                     caption: str | None = None, idempotency_key: str | None = None) -> SendRequest:
    """A PDF to send. Raises MessageRefused, or sessions_app.ids.InvalidSessionId."""
    key = clean_idempotency_key(idempotency_key)
    session_id = validate_session_id(session_id)
    to = normalize_phone(to)
    file_name = clean_file_name(file_name)
    caption = clean_caption(caption)
    pdf = decode_pdf(file_base64)
    digest = hashlib.sha256(pdf).hexdigest()
    request_hash = hashlib.sha256(orjson.dumps([session_id, to, file_name, caption, digest])).hexdigest()
    return SendRequest(session_id, to, file_name, caption, pdf, digest, key, request_hash)


def file_request(*, session_id: str, to: str, file_base64: str, file_name: str, mime_type: str | None = None,
                 caption: str | None = None, idempotency_key: str | None = None) -> SendRequest:
    """Any document of DOCUMENT_MIME_TYPES, its content checked against its type (messaging.file_types).
    Raises MessageRefused, or sessions_app.ids.InvalidSessionId."""
    key = clean_idempotency_key(idempotency_key)
    session_id = validate_session_id(session_id)
    to = normalize_phone(to)
    declared = clean_mime_type(mime_type)
    name = clean_file_name(file_name, extensions=None)
    caption = clean_caption(caption)
    data = decode_base64(file_base64, "fileBase64", file_too_large)
    mime_type = declared or file_types.detect(data, name)
    if mime_type not in document_types():
        raise UnsupportedType(_("El tipo de archivo %(type)s no se acepta.") % {"type": mime_type})
    if declared and not file_types.matches(data, declared):
        raise InvalidMessage(_("El contenido no es del tipo declarado (%(type)s).") % {"type": declared},
                             "type_mismatch")
    name = clean_file_name(name, extensions=file_types.EXTENSIONS.get(mime_type))
    digest = hashlib.sha256(data).hexdigest()
    request_hash = hashlib.sha256(orjson.dumps(["document", session_id, to, name, mime_type, caption, digest])).hexdigest()
    return SendRequest(session_id, to, name, caption, data, digest, key, request_hash, mimetype=mime_type)


def image_request(*, session_id: str, to: str, image_base64: str, caption: str | None = None,
                  idempotency_key: str | None = None) -> SendRequest:
    """A JPEG, PNG or WebP to send as an image. Raises MessageRefused, or sessions_app.ids.InvalidSessionId."""
    key = clean_idempotency_key(idempotency_key)
    session_id = validate_session_id(session_id)
    to = normalize_phone(to)
    caption = clean_caption(caption)
    data = decode_base64(image_base64, "imageBase64", file_too_large)
    mime_type = file_types.detect(data)
    if mime_type not in file_types.IMAGES:
        raise UnsupportedType(_("La imagen debe ser JPEG, PNG o WebP (el contenido es %(type)s).") % {"type": mime_type})
    digest = hashlib.sha256(data).hexdigest()
    request_hash = hashlib.sha256(orjson.dumps(["image", session_id, to, caption, digest])).hexdigest()
    return SendRequest(session_id, to, "", caption, data, digest, key, request_hash, kind=MessageKind.IMAGE.value,
                       mimetype=mime_type)


def text_request(*, session_id: str, to: str, text: str, idempotency_key: str | None = None) -> SendRequest:
    """A text to send. Raises MessageRefused, or sessions_app.ids.InvalidSessionId."""
    key = clean_idempotency_key(idempotency_key)
    session_id = validate_session_id(session_id)
    to = normalize_phone(to)
    encoded = clean_text(text)
    digest = hashlib.sha256(encoded).hexdigest()
    request_hash = hashlib.sha256(orjson.dumps(["text", session_id, to, digest])).hexdigest()
    return SendRequest(session_id, to, "", "", encoded, digest, key, request_hash, kind=MessageKind.TEXT.value,
                       mimetype="text/plain")


def clean_idempotency_key(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if not _IDEMPOTENCY_KEY.fullmatch(value):
        raise InvalidMessage(
            _("Idempotency-Key debe tener de 1 a %(max)s caracteres ASCII visibles.") % {"max": MAX_IDEMPOTENCY_KEY},
            "invalid_idempotency_key",
        )
    return value


def normalize_phone(value: object) -> str:
    """Digits with country code; '+', spaces, dashes (and brackets, dots) tolerated."""
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise InvalidMessage(_("'to' debe ser un número de teléfono con código de país."), "invalid_phone")
    digits = phone_digits(value)
    if digits is None:
        raise InvalidMessage(_("'to' no es un número válido con código de país (ejemplo: 51987654321)."),
                             "invalid_phone")
    return digits


def clean_mime_type(value: object) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 100:
        raise InvalidMessage(_("'mimeType' debe ser un tipo MIME (ejemplo: application/pdf)."), "invalid_mime_type")
    return file_types.normalize(value)


def document_types() -> set[str]:
    return {file_types.mime_type_of(name) for name in settings.DOCUMENT_MIME_TYPES}


def clean_file_name(value: object, extensions: tuple[str, ...] | None = (".pdf",)) -> str:
    """Keep the last path component, drop control characters, end in one of `extensions` (the first is
    added when it ends in none; None: as it is)."""
    if value is None or value == "":
        return DEFAULT_FILE_NAME
    if not isinstance(value, str):
        raise InvalidMessage(_("'fileName' debe ser texto."), "invalid_file_name")
    name = value.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip().strip(".").strip()
    if not name:
        raise InvalidMessage(_("'fileName' no contiene un nombre de archivo utilizable."), "invalid_file_name")
    if extensions and not name.lower().endswith(extensions):
        name += extensions[0]
    if len(name) > MAX_FILE_NAME:
        raise InvalidMessage(
            _("'fileName' es demasiado largo (máximo %(max)s caracteres).") % {"max": MAX_FILE_NAME},
            "invalid_file_name",
        )
    return name


def clean_caption(value: object) -> str:
    caption = "" if value is None else value  # not `value or ""`: 0, false, [] are no caption either
    if not isinstance(caption, str) or len(caption) > MAX_CAPTION or _CAPTION_CONTROL.search(caption):
        raise InvalidMessage(_("'caption' debe ser texto de hasta %(max)s caracteres, sin caracteres de control.")
                             % {"max": MAX_CAPTION}, "invalid_caption")
    return caption


def clean_text(value: object) -> bytes:
    """The text in UTF-8."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidMessage(_("'text' debe ser texto no vacío."), "invalid_text")
    if len(value) > MAX_TEXT:
        raise InvalidMessage(_("'text' es demasiado largo (máximo %(max)s caracteres).") % {"max": MAX_TEXT},
                             "text_too_long")
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate escaped in the JSON
        raise InvalidMessage(_("'text' no es texto Unicode válido."), "invalid_text") from None


def decode_pdf(value: object) -> bytes:
    """decode_base64 of pdfBase64; must be a PDF."""
    pdf = decode_base64(value, "pdfBase64", pdf_too_large)
    if not pdf.startswith(b"%PDF-"):
        raise InvalidMessage(_("El contenido no es un PDF (debe empezar con %PDF-)."), "not_a_pdf")
    return pdf


def decode_base64(value: object, field: str, too_large) -> bytes:
    """Standard or URL-safe base64, whitespace and a data: URI prefix tolerated, up to MAX_PDF_BYTES decoded
    (else too_large()); `field` names the body field in the messages."""
    if not isinstance(value, str):
        raise InvalidMessage(_("'%(field)s' debe ser texto en base64.") % {"field": field}, "invalid_base64")
    raw = value.encode("ascii", "replace")
    try:  # the common case, strict standard base64, costs one pass
        data = pybase64.b64decode(raw, validate=True)
    except ValueError:
        data = _decode_tolerant(raw, field, too_large)
    if len(data) > settings.MAX_PDF_BYTES:
        raise too_large()
    return data


def _decode_tolerant(raw: bytes, field: str, too_large) -> bytes:
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
        raise InvalidMessage(_("'%(field)s' no es base64 válido.") % {"field": field}, "invalid_base64") from None
