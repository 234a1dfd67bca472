import unicodedata
import uuid

from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext as _
from drf_spectacular.utils import (OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema,
                                   extend_schema_serializer, extend_schema_view)
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import ApiError
from core.openapi import (DOCUMENT_BASE64, IMAGE_BASE64, PDF_BASE64, PHONE, SESSION_ID, char_class, error_responses,
                          schema_field)

from .file_types import EXTENSIONS
from .intake import MAX_CAPTION, MAX_FILE_NAME, MAX_IDEMPOTENCY_KEY, MAX_TEXT, document_types
from .selectors import message_as_json, messages_without_payload

IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key", {"type": "string", "pattern": r"^[\x21-\x7e]{0,%d}$" % MAX_IDEMPOTENCY_KEY},
    OpenApiParameter.HEADER, required=False,
    description="Send the same key again (same body) to get the first answer's messageId instead of a second "
                "message; the same key with another body is 409 idempotency_conflict. Empty: no key.",
)
# A character that is not whitespace for Python's str.strip (the rule of messaging.intake.clean_text).
NOT_ONLY_SPACE = "[^\\t\\n\\x0b\\x0c\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
# messaging.intake.clean_file_name: empty, or a last part (after '/' or '\\') with a character that is kept
# (not a control, format, private or unassigned one) and is not a space or a dot.
FILE_NAME_PATTERN = "^$|^(?:[\\s\\S]*[/\\\\])?[^/\\\\]*%s[^/\\\\]*$" % char_class(
    lambda ch: unicodedata.category(ch)[0] != "C" and not ch.isspace() and ch not in "./\\")
MAX_EXTENSION = max(len(extension) for extensions in EXTENSIONS.values() for extension in extensions)
CAPTION = {
    "type": "string", "nullable": True, "maxLength": MAX_CAPTION, "pattern": r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$",
    "description": "Text under the file; no control characters other than tab and line breaks.",
}
PNG_EXAMPLE = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR42mM4IScHAAK2AQUKW6YGAAAAAElFTkSuQmCC"
# The checks every send makes (messaging.intake), by the `error` they answer.
SEND_ERRORS = {
    400: ["missing_parameters", "invalid_session_id", "invalid_phone", "invalid_idempotency_key"],
    404: ["unknown_session"],
    409: ["idempotency_conflict"],
}


@extend_schema_serializer(component_name="MessageAccepted")
class MessageAcceptedSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    message = serializers.CharField()
    messageId = serializers.UUIDField()
    status = serializers.ChoiceField(["queued"])


ACCEPTED_EXAMPLE = OpenApiExample(
    "Queued", response_only=True, status_codes=["202"],
    value={"success": True, "message": "Mensaje encolado para envío.",
           "messageId": "3f6c2a4e-9b1d-4c8e-a7f2-5d0b9e1c4a21", "status": "queued"},
)


class SendEndpointView(APIView):
    """A send endpoint as the schema shows it. Its POST is answered ahead of Django by messaging.asgi_send
    (whatsapp_service.asgi.application), so `post` here runs only where Django is served without it; the
    other methods get DRF's answers (401, 403, 405) as every route does."""

    def post(self, request):
        raise ImproperlyConfigured(f"POST {request.path} is served by whatsapp_service.asgi.application "
                                   "(messaging.asgi_send), not by Django alone")


def _documented(operation_id: str, component: str, *, summary: str = "", description: str = "",
                errors: dict[int, list[str]] | None = None, example: dict | None = None):
    """The schema of a send endpoint's POST: its InputSerializer in (as the component `component`), 202
    with the message's id, or the errors of every send plus `errors`."""

    def document(view):
        request = extend_schema_serializer(component_name=component)(view.InputSerializer)
        codes = {status: list(c) for status, c in SEND_ERRORS.items()}
        for status, c in (errors or {}).items():
            codes.setdefault(status, []).extend(c)
        examples = [ACCEPTED_EXAMPLE]
        if example is not None:
            examples.append(OpenApiExample("Request", value=example, request_only=True))
        return extend_schema_view(post=extend_schema(
            operation_id=operation_id, summary=summary, description=description, request=request,
            parameters=[IDEMPOTENCY_KEY], examples=examples, tags=["messages"],
            responses={202: OpenApiResponse(MessageAcceptedSerializer, description="Committed to the queue."),
                       **error_responses(codes, takes_body=True)},
        ))(view)

    return document


@_documented(
    "send_pdf", "SendPdfRequest", summary="Send a PDF",
    description="Queues a PDF for a session's WhatsApp number. The message is committed to the queue before "
                "the 202; its progress is `GET /api/messages/{messageId}` (and the webhooks). `pdfBase64` is "
                "base64 (standard or URL-safe, line breaks and a `data:` prefix tolerated) of a file that "
                "starts with `%PDF-`, at most MAX_PDF_BYTES decoded.",
    errors={400: ["invalid_base64", "not_a_pdf", "invalid_file_name", "invalid_caption"]},
    example={"sessionId": "tienda_lima", "to": "51987654321", "pdfBase64": "JVBERi0xLjQKJSVFT0YK",
             "fileName": "F001-123.pdf", "caption": "Gracias por su compra"},
)
class SendPdfView(SendEndpointView):
    class InputSerializer(serializers.Serializer):
        sessionId = schema_field(SESSION_ID)
        to = schema_field({**PHONE, "description": "The recipient: digits with country code; '+', spaces and "
                                                   "dashes tolerated."})
        pdfBase64 = schema_field({**PDF_BASE64, "description": "The PDF in base64."})
        fileName = schema_field({
            "type": "string", "nullable": True, "maxLength": MAX_FILE_NAME - len(".pdf"),
            "pattern": FILE_NAME_PATTERN,
            "description": "Shown to the recipient (default Comprobante.pdf); '.pdf' is added when missing and a "
                           "path is cut to its last part, which needs a character other than spaces, dots and "
                           "control or unassigned characters.",
        }, required=False)
        caption = schema_field(CAPTION, required=False)


@_documented(
    "send_document", "SendDocumentRequest", summary="Send any document",
    description="Queues a document of one of the types the service takes (DOCUMENT_MIME_TYPES: pdf, docx, "
                "xlsx, pptx, odt, ods, csv, txt, zip, jpeg, png by default): the same queue, order per session, "
                "pacing, retries, statuses and webhooks as a PDF. The content is checked by its bytes: another "
                "type is 415 `unsupported_type`, content that is not its declared `mimeType` is 400 "
                "`type_mismatch`. At most MAX_PDF_BYTES decoded.",
    errors={400: ["invalid_base64", "type_mismatch", "invalid_file_name", "invalid_caption", "invalid_mime_type"],
            415: ["unsupported_type"]},
    example={"sessionId": "tienda_lima", "to": "51987654321", "fileBase64": "Q29kaWdvLFByZWNpbwpBMSwxMAo=",
             "fileName": "cotizacion.csv", "mimeType": "text/csv", "caption": "Su cotización"},
)
class SendDocumentView(SendEndpointView):
    class InputSerializer(serializers.Serializer):
        sessionId = schema_field(SESSION_ID)
        to = schema_field({**PHONE, "description": "The recipient: digits with country code; '+', spaces and "
                                                   "dashes tolerated."})
        fileBase64 = schema_field({**DOCUMENT_BASE64, "description": "The file in base64 (standard or URL-safe, "
                                                                     "line breaks and a `data:` prefix tolerated)."})
        fileName = schema_field({
            "type": "string", "minLength": 1, "maxLength": MAX_FILE_NAME - MAX_EXTENSION,
            "pattern": FILE_NAME_PATTERN,
            "description": "Shown to the recipient, cleaned as a PDF's; the type's extension is added when missing.",
        })
        mimeType = schema_field({
            "type": "string", "nullable": True, "format": "document-mime-type", "maxLength": 100,
            "description": "The file's type, one of DOCUMENT_MIME_TYPES (%s) and what its bytes are; taken "
                           "from its content when absent." % ", ".join(sorted(document_types())),
        }, required=False)
        caption = schema_field(CAPTION, required=False)


@_documented(
    "send_image", "SendImageRequest", summary="Send an image",
    description="Queues a JPEG, PNG or WebP image, sent as an image message (shown in the chat, not as a "
                "file): the same queue, pacing, retries, statuses and webhooks as a PDF. Anything else is 415 "
                "`unsupported_type`. At most MAX_PDF_BYTES decoded.",
    errors={400: ["invalid_base64", "invalid_caption"], 415: ["unsupported_type"]},
    example={"sessionId": "tienda_lima", "to": "51987654321", "imageBase64": PNG_EXAMPLE,
             "caption": "El producto que consultó"},
)
class SendImageView(SendEndpointView):
    class InputSerializer(serializers.Serializer):
        sessionId = schema_field(SESSION_ID)
        to = schema_field({**PHONE, "description": "The recipient: digits with country code; '+', spaces and "
                                                   "dashes tolerated."})
        imageBase64 = schema_field({**IMAGE_BASE64, "description": "The image in base64."})
        caption = schema_field(CAPTION, required=False)


@_documented(
    "send_text", "SendTextRequest", summary="Send a text",
    description="Queues a text message: the same queue, order per session, pacing, retries, statuses and "
                "webhooks as a PDF.",
    errors={400: ["invalid_text", "text_too_long"]},
    example={"sessionId": "tienda_lima", "to": "51987654321", "text": "Su boleta F001-123 está lista."},
)
class SendTextView(SendEndpointView):
    class InputSerializer(serializers.Serializer):
        sessionId = schema_field(SESSION_ID)
        to = schema_field({**PHONE, "description": "The recipient: digits with country code; '+', spaces and "
                                                   "dashes tolerated."})
        text = schema_field({"type": "string", "maxLength": MAX_TEXT, "pattern": NOT_ONLY_SPACE,
                             "description": "The message; not only whitespace."})


@extend_schema_serializer(component_name="Message")
class MessageSerializer(serializers.Serializer):
    messageId = serializers.UUIDField()
    sessionId = serializers.CharField()
    to = serializers.CharField()
    type = serializers.ChoiceField(["document", "image", "text"])
    fileName = serializers.CharField(allow_null=True)
    mimeType = serializers.CharField(help_text="text/plain for a text.")
    status = serializers.ChoiceField(["queued", "sending", "sent", "delivered", "read", "failed"],
                                     help_text="Moves only forward, except to failed.")
    attempts = serializers.IntegerField()
    waMessageId = serializers.CharField(allow_null=True)
    error = serializers.CharField(allow_null=True, help_text="Why it failed, once it has.")
    createdAt = serializers.DateTimeField()
    sentAt = serializers.DateTimeField(allow_null=True)
    deliveredAt = serializers.DateTimeField(allow_null=True)
    readAt = serializers.DateTimeField(allow_null=True)


class MessageDetailView(APIView):
    @extend_schema(
        operation_id="get_message", summary="A message's status", tags=["messages"],
        description="The message as the queue holds it: its status, attempts and WhatsApp's id once sent.",
        parameters=[OpenApiParameter("message_id", {"type": "string", "format": "uuid"}, OpenApiParameter.PATH,
                                     required=True, description="The `messageId` of the 202.")],
        responses={200: MessageSerializer, **error_responses({404: ["unknown_message"]})},
        examples=[OpenApiExample("Sent", response_only=True, value={
            "messageId": "3f6c2a4e-9b1d-4c8e-a7f2-5d0b9e1c4a21", "sessionId": "tienda_lima", "to": "51987654321",
            "type": "document", "fileName": "F001-123.pdf", "mimeType": "application/pdf", "status": "sent",
            "attempts": 1,
            "waMessageId": "3EB0C431C26A1916F0E5", "error": None, "createdAt": "2026-12-04T10:00:00Z",
            "sentAt": "2026-12-04T10:00:01Z", "deliveredAt": None, "readAt": None})],
    )
    def get(self, request, message_id: str):
        try:
            key = uuid.UUID(message_id)
        except ValueError:
            key = None
        message = messages_without_payload().filter(message_id=key).first() if key else None
        if message is None:
            raise ApiError(404, "unknown_message", _("No existe un mensaje con ese id."))
        return Response(message_as_json(message))
