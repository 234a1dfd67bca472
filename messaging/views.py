import uuid

from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import ApiError

from .intake import MAX_TEXT, check_content_length, parse_send_pdf, parse_send_text
from .queue_writer import enqueue
from .wakeups import announce_sync
from .selectors import message_as_json, messages_without_payload

ERROR_BODY = inline_serializer(
    "Error",
    {"success": serializers.BooleanField(), "error": serializers.CharField(), "message": serializers.CharField()},
)


def accepted_body(message_id) -> dict:
    return {
        "success": True,
        "message": _("Mensaje encolado para envío."),
        "messageId": str(message_id),
        "status": "queued",
    }


class SendPdfView(APIView):
    """Queue a PDF for a session. The bare ASGI handler in messaging.asgi_send_pdf serves the same
    URL in front of Django for throughput; this view serves it under `runserver` and documents it."""

    class InputSerializer(serializers.Serializer):
        sessionId = serializers.RegexField(r"^[A-Za-z0-9_-]{1,64}$")
        to = serializers.CharField(help_text="51987654321; '+', spaces and dashes tolerated")
        pdfBase64 = serializers.CharField()
        fileName = serializers.CharField(required=False, default="Comprobante.pdf")
        caption = serializers.CharField(required=False, allow_blank=True, max_length=1024)

    class OutputSerializer(serializers.Serializer):
        success = serializers.BooleanField()
        message = serializers.CharField()
        messageId = serializers.UUIDField()
        status = serializers.CharField()

    @extend_schema(
        operation_id="send_pdf",
        request=InputSerializer,
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)],
        responses={202: OutputSerializer, 400: ERROR_BODY, 401: ERROR_BODY, 403: ERROR_BODY,
                   404: ERROR_BODY, 409: ERROR_BODY, 413: ERROR_BODY},
    )
    def post(self, request):
        return _accept(request, parse_send_pdf)


class SendTextView(APIView):
    """Queue a text message for a session: the same queue, pacing, retries, statuses and webhooks as
    a PDF."""

    class InputSerializer(serializers.Serializer):
        sessionId = serializers.RegexField(r"^[A-Za-z0-9_-]{1,64}$")
        to = serializers.CharField(help_text="51987654321; '+', spaces and dashes tolerated")
        text = serializers.CharField(max_length=MAX_TEXT)

    @extend_schema(
        operation_id="send_text",
        request=InputSerializer,
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)],
        responses={202: SendPdfView.OutputSerializer, 400: ERROR_BODY, 401: ERROR_BODY, 403: ERROR_BODY,
                   404: ERROR_BODY, 409: ERROR_BODY},
    )
    def post(self, request):
        return _accept(request, parse_send_text)


class MessageDetailView(APIView):
    class OutputSerializer(serializers.Serializer):
        messageId = serializers.UUIDField()
        sessionId = serializers.CharField()
        to = serializers.CharField()
        type = serializers.ChoiceField(["document", "text"])
        fileName = serializers.CharField(allow_null=True)
        status = serializers.ChoiceField(["queued", "sending", "sent", "delivered", "read", "failed"])
        attempts = serializers.IntegerField()
        waMessageId = serializers.CharField(allow_null=True)
        error = serializers.CharField(allow_null=True)
        createdAt = serializers.DateTimeField()
        sentAt = serializers.DateTimeField(allow_null=True)
        deliveredAt = serializers.DateTimeField(allow_null=True)
        readAt = serializers.DateTimeField(allow_null=True)

    @extend_schema(operation_id="get_message", responses={200: OutputSerializer, 404: ERROR_BODY})
    def get(self, request, message_id: str):
        try:
            key = uuid.UUID(message_id)
        except ValueError:
            key = None
        message = messages_without_payload().filter(message_id=key).first() if key else None
        if message is None:
            raise ApiError(404, "unknown_message", _("No existe un mensaje con ese id."))
        return Response(message_as_json(message))


def _accept(request, parse) -> Response:
    """Validate (`parse`: intake.parse_send_pdf or parse_send_text), commit to the queue, answer 202."""
    length = request.META.get("CONTENT_LENGTH")
    check_content_length(int(length) if length and length.isdigit() else None)
    message = parse(request.body, request.headers.get("Idempotency-Key"))
    accepted = enqueue(message)
    if accepted.created:
        announce_sync(message.session_id)
    return Response(accepted_body(accepted.message_id), status=202)
