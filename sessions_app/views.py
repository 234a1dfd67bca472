from django.http import HttpResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import ApiError
from core.phones import phone_digits

from . import session_commands
from .config_file import remove_session_from_config
from .models import SessionCommand, SessionStatus, WhatsAppSession
from .qr_image import qr_svg
from .selectors import configured_sessions, get_configured_session, session_as_json


class SessionOutputSerializer(serializers.Serializer):
    sessionId = serializers.CharField()
    description = serializers.CharField()
    status = serializers.ChoiceField(SessionStatus.values)
    phone = serializers.CharField(allow_null=True)
    lastError = serializers.CharField(allow_null=True)
    worker = serializers.CharField(allow_null=True, help_text="the worker running it (host:pid:id), or null")


class SuccessSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    message = serializers.CharField()


class SessionListView(APIView):
    @extend_schema(operation_id="list_sessions", responses={200: SessionOutputSerializer(many=True)})
    def get(self, request):
        return Response([session_as_json(s) for s in configured_sessions()])


class SessionDetailView(APIView):
    @extend_schema(operation_id="get_session", responses={200: SessionOutputSerializer})
    def get(self, request, session_id: str):
        return Response(session_as_json(get_configured_session(session_id)))

    @extend_schema(operation_id="delete_session", responses={200: SuccessSerializer})
    def delete(self, request, session_id: str):
        """Log out, stop, delete the credentials and drop it from sessions.config.json. The row stays
        (not configured) so the session's messages keep their history."""
        get_configured_session(session_id)
        ask_worker(session_id, SessionCommand.Kind.DELETE)
        remove_session_from_config(session_id)
        WhatsAppSession.objects.filter(pk=session_id).update(in_config=False)
        return Response({"success": True, "message": _("La sesión fue eliminada.")})


# -- linking and unlinking: answered by the worker that runs the session ---------------------------

def clean_phone(value: object) -> str:
    """Digits with country code ('+', spaces, dashes tolerated); ApiError 400 invalid_phone otherwise."""
    digits = phone_digits(value) if isinstance(value, str) else None
    if digits is None:
        raise ApiError(
            400, "invalid_phone", _("'phone' debe ser un número válido con código de país (ejemplo: 51987654321).")
        )
    return digits


_COMMAND_ERRORS = {
    "worker_unavailable": (504, _lazy("Ningún worker atendió la solicitud; ¿está corriendo `manage.py runworker`?")),
    "worker_timeout": (504, _lazy("El worker no terminó a tiempo; intente de nuevo.")),
    "timeout": (504, _lazy("La sesión no respondió a tiempo; intente de nuevo.")),
    "session_not_running": (409, _lazy("La sesión no está en ejecución.")),
    "not_waiting_for_link": (409, _lazy("La sesión no está esperando ser vinculada.")),
}


def ask_worker(session_id: str, kind: str, payload: dict | None = None) -> dict:
    """The worker's result, or the ApiError that tells the client why there is none."""
    try:
        return session_commands.request(session_id, kind, payload)
    except session_commands.CommandFailed as exc:
        status, message = _COMMAND_ERRORS.get(exc.code, (502, _lazy("La sesión no pudo completar la solicitud.")))
        raise ApiError(status, exc.code, str(message)) from None


def body_object(request) -> dict:
    """The JSON body as an object ({} when there is none); JSON that is not an object is a 400."""
    data = request.data
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_json", _("El cuerpo debe ser un objeto JSON."))
    return data


class PairingCodeInputSerializer(serializers.Serializer):
    phone = serializers.CharField()


class PairingCodeOutputSerializer(serializers.Serializer):
    code = serializers.CharField()


class SessionQrView(APIView):
    """The pending QR as JSON, or as an SVG image with ?format=svg."""

    def perform_content_negotiation(self, request, force=False):
        # `format` names the image here; errors are always JSON.
        return (JSONRenderer(), JSONRenderer.media_type)

    @extend_schema(
        operation_id="get_session_qr",
        parameters=[OpenApiParameter("format", str, enum=["json", "svg"], required=False)],
        responses={200: inline_serializer("QrOutput", {"qr": serializers.CharField()})},
    )
    def get(self, request, session_id: str):
        session = get_configured_session(session_id)
        if session.status != SessionStatus.QR or not session.qr:
            raise ApiError(404, "no_pending_qr", _("No hay un código QR pendiente para esta sesión."))
        if request.query_params.get("format") == "svg":
            return HttpResponse(qr_svg(session.qr), content_type="image/svg+xml")
        return Response({"qr": session.qr})


class SessionPairingCodeView(APIView):
    @extend_schema(
        operation_id="request_pairing_code",
        request=PairingCodeInputSerializer,
        responses={200: PairingCodeOutputSerializer},
    )
    def post(self, request, session_id: str):
        get_configured_session(session_id)
        phone = clean_phone(body_object(request).get("phone"))
        result = ask_worker(session_id, SessionCommand.Kind.PAIRING_CODE, {"phone": phone})
        return Response({"code": result["code"]})


class SessionLogoutView(APIView):
    @extend_schema(operation_id="logout_session", request=None, responses={200: SuccessSerializer})
    def post(self, request, session_id: str):
        get_configured_session(session_id)
        ask_worker(session_id, SessionCommand.Kind.LOGOUT)
        return Response({"success": True, "message": _("El número fue desvinculado.")})
