"""The simulator's control endpoints, routed only where the simulator is installed (WHATSAPP_BACKEND=
simulator; elsewhere whatsapp_service.urls answers 404 on their paths): what a phone would do to a session
(scan its QR, lose the connection, unlink the device, read a chat) and what was delivered. Beyond the
contract, replace and ban let a staging system see how the service takes a number taken over by another
connection, or banned for a while. The actions are SimulatorControl rows that the session's process picks
up, wherever it runs."""

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import ApiError
from core.openapi import PHONE, SESSION_ID_PATTERN, error_responses, path_session_id, schema_field
from core.phones import phone_digits
from sessions_app.ids import InvalidSessionId, validate_session_id
from sessions_app.models import SessionStatus
from sessions_app.selectors import get_configured_session, invalid_session_id_error
from sessions_app.views import SuccessSerializer, body_object, clean_phone

from .models import SimulatorControl, SimulatorOutbox

DEFAULT_SCAN_PHONE = "51900000001"


class SimulatorActionView(APIView):
    action: str = ""
    # The statuses in which the phone can do this; otherwise 409 with `refusal`.
    allowed: tuple[str, ...] = ()
    refusal: tuple[str, str] = ("", "")

    def payload(self, body: dict) -> dict:
        """What the phone needs to know besides the action; ApiError 400 when the body does not say it."""
        return {}

    def post(self, request, session_id: str):
        session = get_configured_session(session_id)
        payload = self.payload(body_object(request))
        if session.status not in self.allowed:
            raise ApiError(409, self.refusal[0], str(self.refusal[1]))
        SimulatorControl.objects.create(session_id=session.session_id, action=self.action, payload=payload)
        return Response({"success": True, "message": _("Acción enviada al teléfono simulado.")}, status=202)


@extend_schema_view(post=extend_schema(
    operation_id="simulator_scan", summary="The phone scans the QR", tags=["simulator"], parameters=[path_session_id()],
    request=inline_serializer("SimulatorScanRequest", {
        "phone": schema_field({**PHONE, "nullable": True, "description": "The number that links (default 51900000001)."},
                              required=False)}),
    responses={202: OpenApiResponse(SuccessSerializer, description="The simulated phone will do it."),
               **error_responses({400: ["invalid_session_id", "invalid_phone"], 404: ["unknown_session", "not_found"], 409: ["no_pending_qr"]},
                                 takes_body=True)},
))
class SimulatorScanView(SimulatorActionView):
    action = SimulatorControl.Action.SCAN
    allowed = (SessionStatus.QR,)
    refusal = ("no_pending_qr", _lazy("No hay un código QR pendiente para esta sesión."))

    def payload(self, body: dict) -> dict:
        phone = body.get("phone")  # absent: the default number; anything else must be a number
        return {"phone": clean_phone(DEFAULT_SCAN_PHONE if phone is None else phone)}


@extend_schema_view(post=extend_schema(
    operation_id="simulator_drop", summary="The connection drops", tags=["simulator"], parameters=[path_session_id()],
    request=None,
    responses={202: OpenApiResponse(SuccessSerializer, description="The simulated phone will do it."),
               **error_responses({400: ["invalid_session_id"], 404: ["unknown_session", "not_found"], 409: ["not_connected"]},
                                 takes_body=True)},
))
class SimulatorDropView(SimulatorActionView):
    action = SimulatorControl.Action.DROP
    allowed = (SessionStatus.CONNECTED,)
    refusal = ("not_connected", _lazy("La sesión no está conectada."))


@extend_schema_view(post=extend_schema(
    operation_id="simulator_logout", summary="The phone unlinks the device", tags=["simulator"], parameters=[path_session_id()],
    request=None,
    responses={202: OpenApiResponse(SuccessSerializer, description="The simulated phone will do it."),
               **error_responses({400: ["invalid_session_id"], 404: ["unknown_session", "not_found"], 409: ["not_linked"]},
                                 takes_body=True)},
))
class SimulatorLogoutView(SimulatorActionView):
    action = SimulatorControl.Action.LOGOUT
    allowed = (SessionStatus.CONNECTED, SessionStatus.DISCONNECTED)
    refusal = ("not_linked", _lazy("La sesión no tiene un número vinculado."))


@extend_schema_view(post=extend_schema(
    operation_id="simulator_replace", summary="Another connection takes the number", tags=["simulator"], parameters=[path_session_id()],
    request=None,
    responses={202: OpenApiResponse(SuccessSerializer, description="The simulated phone will do it."),
               **error_responses({400: ["invalid_session_id"], 404: ["unknown_session", "not_found"], 409: ["not_connected"]},
                                 takes_body=True)},
))
class SimulatorReplaceView(SimulatorActionView):
    """Another connection takes the number (WhatsApp's "stream replaced")."""

    action = SimulatorControl.Action.REPLACE
    allowed = (SessionStatus.CONNECTED,)
    refusal = ("not_connected", _lazy("La sesión no está conectada."))


@extend_schema_view(post=extend_schema(
    operation_id="simulator_ban", summary="WhatsApp bans the number for a while", tags=["simulator"], parameters=[path_session_id()],
    request=inline_serializer("SimulatorBanRequest", {
        "expireSeconds": serializers.IntegerField(required=False, min_value=1, max_value=30 * 86400,
                                                  help_text="Default 3600.")}),
    responses={202: OpenApiResponse(SuccessSerializer, description="The simulated phone will do it."),
               **error_responses({400: ["invalid_session_id", "invalid_parameters"], 404: ["unknown_session", "not_found"], 409: ["not_connected"]},
                                 takes_body=True)},
))
class SimulatorBanView(SimulatorActionView):
    """A temporary ban of the number, `expireSeconds` long (default 3600)."""

    action = SimulatorControl.Action.BAN
    allowed = (SessionStatus.CONNECTED,)
    refusal = ("not_connected", _lazy("La sesión no está conectada."))

    def payload(self, body: dict) -> dict:
        expire = body.get("expireSeconds", 3600)
        if not isinstance(expire, int) or isinstance(expire, bool) or not 1 <= expire <= 30 * 86400:
            raise ApiError(400, "invalid_parameters", _("'expireSeconds' debe ser un entero de 1 a 2592000."))
        return {"expire_seconds": expire}


@extend_schema_view(post=extend_schema(
    operation_id="simulator_read", summary="The recipient reads the chat", tags=["simulator"], parameters=[path_session_id()],
    request=inline_serializer("SimulatorReadRequest", {
        "to": schema_field({**PHONE, "description": "The number whose phone opens the chat."})}),
    responses={202: OpenApiResponse(SuccessSerializer, description="The simulated phone will do it."),
               **error_responses({400: ["invalid_session_id", "invalid_phone"], 404: ["unknown_session", "not_found"], 409: ["not_connected"]},
                                 takes_body=True)},
))
class SimulatorReadView(SimulatorActionView):
    """The recipient `to` opens the chat: one read receipt names what this session sent to it and it had
    not read yet."""

    action = SimulatorControl.Action.READ
    allowed = (SessionStatus.CONNECTED,)
    refusal = ("not_connected", _lazy("La sesión no está conectada."))

    def payload(self, body: dict) -> dict:
        to = body.get("to")
        to = phone_digits(to) if isinstance(to, str) else None  # a string, as its schema says
        if to is None:
            raise ApiError(400, "invalid_phone",
                           _("'to' debe ser un número válido con código de país (ejemplo: 51987654321)."))
        return {"to": to}


class OutboxItemSerializer(serializers.Serializer):
    sessionId = serializers.CharField()
    to = serializers.CharField()
    type = serializers.ChoiceField(["document", "image", "text"])
    mimeType = serializers.CharField()
    fileName = serializers.CharField()
    caption = serializers.CharField()
    text = serializers.CharField(help_text="a text message's text ('' for a document)")
    sha256 = serializers.CharField()
    size = serializers.IntegerField()
    waMessageId = serializers.CharField()
    sentAt = serializers.DateTimeField()


class SimulatorOutboxView(APIView):
    @extend_schema(
        operation_id="simulator_outbox", summary="What was delivered", tags=["simulator"],
        parameters=[
            OpenApiParameter("sessionId", {"type": "string", "pattern": "^$|" + SESSION_ID_PATTERN}, required=False,
                             description="Only this session's (empty: every session's)."),
            OpenApiParameter("to", {"type": "string", "format": "phone"}, required=False,
                             description="Only what went to this number."),
        ],
        responses={200: OutboxItemSerializer(many=True),
                   **error_responses({400: ["invalid_session_id", "invalid_phone"]})},
    )
    def get(self, request):
        rows = SimulatorOutbox.objects.all()
        session_id = request.query_params.get("sessionId")
        if session_id:
            try:
                rows = rows.filter(session_id=validate_session_id(session_id))
            except InvalidSessionId:
                raise invalid_session_id_error() from None
        to = request.query_params.get("to")
        if to:
            rows = rows.filter(to=clean_phone(to))
        return Response(
            [
                {
                    "sessionId": r.session_id,
                    "to": r.to,
                    "type": r.kind,
                    "mimeType": r.mimetype,
                    "fileName": r.file_name,
                    "caption": r.caption,
                    "text": r.text,
                    "sha256": r.sha256,
                    "size": r.size,
                    "waMessageId": r.wa_message_id,
                    "sentAt": r.sent_at.isoformat(),
                }
                for r in rows.order_by("id")
            ]
        )
