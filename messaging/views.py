import uuid

from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext as _
from drf_spectacular.utils import (OpenApiParameter, extend_schema, extend_schema_serializer, extend_schema_view,
                                   inline_serializer)
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import ApiError

from .intake import MAX_CAPTION, MAX_TEXT
from .selectors import message_as_json, messages_without_payload

ERROR_BODY = inline_serializer(
    "Error",
    {"success": serializers.BooleanField(), "error": serializers.CharField(), "message": serializers.CharField()},
)
IDEMPOTENCY_KEY = OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)


class AcceptedSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    message = serializers.CharField()
    messageId = serializers.UUIDField()
    status = serializers.CharField()


class SendEndpointView(APIView):
    """A send endpoint as the schema shows it. Its POST is answered ahead of Django by messaging.asgi_send
    (whatsapp_service.asgi.application), so `post` here runs only where Django is served without it; the
    other methods get DRF's answers (401, 403, 405) as every route does."""

    def post(self, request):
        raise ImproperlyConfigured(f"POST {request.path} is served by whatsapp_service.asgi.application "
                                   "(messaging.asgi_send), not by Django alone")


def _documented(operation_id: str, component: str):
    """The schema of a send endpoint's POST: its InputSerializer in (a component of its own name: nested
    serializers are all named "Input"), 202 or an error out."""

    def document(view):
        request = extend_schema_serializer(component_name=component)(view.InputSerializer)
        return extend_schema_view(post=extend_schema(
            operation_id=operation_id, request=request, parameters=[IDEMPOTENCY_KEY],
            responses={202: AcceptedSerializer, **{code: ERROR_BODY for code in (400, 401, 403, 404, 409, 413, 503)}},
        ))(view)

    return document


@_documented("send_pdf", "SendPdfInput")
class SendPdfView(SendEndpointView):
    """Queue a PDF for a session."""

    class InputSerializer(serializers.Serializer):
        sessionId = serializers.RegexField(r"^[A-Za-z0-9_-]{1,64}$")
        to = serializers.CharField(help_text="51987654321; '+', spaces and dashes tolerated")
        pdfBase64 = serializers.CharField()
        fileName = serializers.CharField(required=False, default="Comprobante.pdf")
        caption = serializers.CharField(required=False, allow_blank=True, max_length=MAX_CAPTION)


@_documented("send_text", "SendTextInput")
class SendTextView(SendEndpointView):
    """Queue a text message for a session: the same queue, pacing, retries, statuses and webhooks as
    a PDF."""

    class InputSerializer(serializers.Serializer):
        sessionId = serializers.RegexField(r"^[A-Za-z0-9_-]{1,64}$")
        to = serializers.CharField(help_text="51987654321; '+', spaces and dashes tolerated")
        text = serializers.CharField(max_length=MAX_TEXT)


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

