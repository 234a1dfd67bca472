from django.http import HttpResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from drf_spectacular.utils import (OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema,
                                   extend_schema_serializer)
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import ApiError
from core.openapi import PHONE, error_responses, path_session_id, schema_field
from core.phones import phone_digits

from . import session_commands
from .config_file import remove_session_from_config
from .models import SessionCommand, SessionStatus, WhatsAppSession
from .qr_image import qr_svg
from .selectors import configured_sessions, get_configured_session, session_as_json


@extend_schema_serializer(component_name="Session")
class SessionSerializer(serializers.Serializer):
    sessionId = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    status = serializers.ChoiceField(SessionStatus.values)
    phone = serializers.CharField(allow_null=True, help_text="The linked number, once linked.")
    lastError = serializers.CharField(allow_null=True)
    worker = serializers.CharField(allow_null=True, help_text="the worker running it (host:pid:id), or null")


@extend_schema_serializer(component_name="Success")
class SuccessSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    message = serializers.CharField()


SESSION_EXAMPLE = {"sessionId": "tienda_lima", "description": "Sistema de Ventas de la Sede Lima",
                   "status": "connected", "phone": "51987654321", "lastError": None, "worker": "web-1:4242:w1a2b3c4"}
# A session named in the path: a bad id is 400, one that is not configured 404.
SESSION_PATH_ERRORS = {400: ["invalid_session_id"], 404: ["unknown_session", "not_found"]}
# A command the worker running the session answers (ask_worker): what it can answer besides its own codes.
COMMAND_ERRORS = {409: ["session_not_running", "not_connected"], 502: ["error"],
                  504: ["worker_unavailable", "worker_timeout", "timeout"]}


def _errors(*tables: dict[int, list[str]], takes_body: bool = False) -> dict:
    merged: dict[int, list[str]] = {}
    for table in tables:
        for status, codes in table.items():
            merged.setdefault(status, []).extend(codes)
    return error_responses(merged, takes_body=takes_body)


class SessionListView(APIView):
    @extend_schema(
        operation_id="list_sessions", summary="Every session", tags=["sessions"],
        description="The sessions of sessions.config.json with their state, sorted by id.",
        responses={200: SessionSerializer(many=True), **_errors()},
        examples=[OpenApiExample("Sessions", value=[SESSION_EXAMPLE], response_only=True)],
    )
    def get(self, request):
        return Response([session_as_json(s) for s in configured_sessions()])


class SessionDetailView(APIView):
    @extend_schema(
        operation_id="get_session", summary="One session", tags=["sessions"], parameters=[path_session_id()],
        description="A configured session and its state (`qr`: waiting to be linked; `connected`: sending).",
        responses={200: SessionSerializer, **_errors(SESSION_PATH_ERRORS)},
        examples=[OpenApiExample("Connected", value=SESSION_EXAMPLE, response_only=True)],
    )
    def get(self, request, session_id: str):
        return Response(session_as_json(get_configured_session(session_id)))

    @extend_schema(
        operation_id="delete_session", summary="Delete a session", tags=["sessions"], parameters=[path_session_id()],
        description="Logs the number out, stops the session, deletes its credentials and removes it from "
                    "sessions.config.json. Its messages keep their history.",
        responses={200: SuccessSerializer, **_errors(SESSION_PATH_ERRORS, COMMAND_ERRORS)},
        examples=[OpenApiExample("Deleted", response_only=True,
                                 value={"success": True, "message": "La sesión fue eliminada."})],
    )
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
    "not_connected": (409, _lazy("La sesión no está conectada.")),
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


@extend_schema_serializer(component_name="PairingCodeRequest")
class PairingCodeRequestSerializer(serializers.Serializer):
    phone = schema_field({**PHONE, "description": "The number to link: digits with country code."})


@extend_schema_serializer(component_name="PairingCode")
class PairingCodeSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Type it on the phone: WhatsApp > Linked devices > Link with phone number.")


@extend_schema_serializer(component_name="Qr")
class QrSerializer(serializers.Serializer):
    qr = serializers.CharField(help_text="The text to show as a QR code.")


QR_FORMATS = ("json", "svg")


class SessionQrView(APIView):
    """The pending QR as JSON, or as an SVG image with ?format=svg."""

    def perform_content_negotiation(self, request, force=False):
        # `format` names the image here; errors are always JSON.
        return (JSONRenderer(), JSONRenderer.media_type)

    @extend_schema(
        operation_id="get_session_qr", summary="The QR to scan", tags=["linking"],
        description="The QR code waiting to be scanned with WhatsApp > Linked devices: its text as JSON, or "
                    "an SVG image with `?format=svg`. 404 `no_pending_qr` when the session is not waiting for one.",
        parameters=[path_session_id(), OpenApiParameter(
            "format", {"type": "string", "enum": list(QR_FORMATS), "default": "json"}, required=False,
            description="json (default) or svg.")],
        responses={
            (200, "application/json"): OpenApiResponse(QrSerializer, description="The QR's text."),
            (200, "image/svg+xml"): OpenApiResponse({"type": "string"}, description="The QR as an SVG image."),
            **_errors({400: ["invalid_session_id", "invalid_format"], 404: ["unknown_session", "not_found",
                                                                           "no_pending_qr"]}),
        },
        examples=[OpenApiExample("Pending", response_only=True, media_type="application/json",
                                 value={"qr": "2@Xy1...,Ab2...,Cd3...,Ef4..."})],
    )
    def get(self, request, session_id: str):
        session = get_configured_session(session_id)
        shape = request.query_params.get("format", "json")
        if shape not in QR_FORMATS:
            raise ApiError(400, "invalid_format", _("'format' debe ser json o svg."))
        if session.status != SessionStatus.QR or not session.qr:
            raise ApiError(404, "no_pending_qr", _("No hay un código QR pendiente para esta sesión."))
        if shape == "svg":
            return HttpResponse(qr_svg(session.qr), content_type="image/svg+xml")
        return Response({"qr": session.qr})


class SessionPairingCodeView(APIView):
    @extend_schema(
        operation_id="request_pairing_code", summary="Link by code", tags=["linking"],
        parameters=[path_session_id()],
        description="Links the session by a code typed on the phone instead of scanning the QR; the session "
                    "must be waiting to be linked (status `qr`).",
        request=PairingCodeRequestSerializer,
        responses={200: PairingCodeSerializer, **_errors(
            SESSION_PATH_ERRORS, COMMAND_ERRORS,
            {400: ["invalid_phone"], 409: ["not_waiting_for_link"], 502: ["pairing_failed"]}, takes_body=True)},
        examples=[OpenApiExample("Request", request_only=True, value={"phone": "51987654321"}),
                  OpenApiExample("Code", response_only=True, value={"code": "ABCD-1234"})],
    )
    def post(self, request, session_id: str):
        get_configured_session(session_id)
        phone = clean_phone(body_object(request).get("phone"))
        result = ask_worker(session_id, SessionCommand.Kind.PAIRING_CODE, {"phone": phone})
        return Response({"code": result["code"]})


class SessionLogoutView(APIView):
    @extend_schema(
        operation_id="logout_session", summary="Unlink the number", tags=["linking"],
        parameters=[path_session_id()], request=None,
        description="Unlinks the number from the session (it stays configured and can be linked again).",
        responses={200: SuccessSerializer, **_errors(SESSION_PATH_ERRORS, COMMAND_ERRORS,
                                                     {502: ["logout_failed"]}, takes_body=True)},
        examples=[OpenApiExample("Unlinked", response_only=True,
                                 value={"success": True, "message": "El número fue desvinculado."})],
    )
    def post(self, request, session_id: str):
        get_configured_session(session_id)
        ask_worker(session_id, SessionCommand.Kind.LOGOUT)
        return Response({"success": True, "message": _("El número fue desvinculado.")})
