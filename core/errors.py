"""The one error body of the service and the one DRF exception handler that shapes every error.

Body: {"success": false, "error": "<machine_code>", "message": "<texto legible>"}, built by
`error_body` (as bytes for answers written straight to ASGI: `error_bytes`).
"""

import orjson
from django.http import JsonResponse
from django.utils.translation import gettext as _
from rest_framework import exceptions
from rest_framework.response import Response


def error_body(code: str, message: str, **extra) -> dict:
    """The error body; `extra` adds fields after the three (readyz's checks)."""
    return {"success": False, "error": code, "message": message, **extra}


def error_bytes(code: str, message: str, **extra) -> bytes:
    return orjson.dumps(error_body(code, message, **extra))


def error_json(status_code: int, code: str, message: str, **extra) -> JsonResponse:
    """The error body as a Django answer, for views outside DRF."""
    return JsonResponse(error_body(code, message, **extra), status=status_code)


class ApiError(Exception):
    """An error a client caused or must be told about; `code` is machine-readable."""

    def __init__(self, status_code: int, code: str, message: str):
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message

    def body(self) -> dict:
        return error_body(self.code, self.message)


def _code_for(exc: exceptions.APIException) -> tuple[str, str]:
    from .auth import invalid_token, missing_token

    if isinstance(exc, exceptions.NotAuthenticated):
        refused = missing_token()
        return refused.code, refused.message
    if isinstance(exc, (exceptions.AuthenticationFailed, exceptions.PermissionDenied)):
        refused = invalid_token()
        return refused.code, refused.message
    if isinstance(exc, exceptions.NotFound):
        return "not_found", _("No encontrado.")
    if isinstance(exc, exceptions.MethodNotAllowed):
        return "method_not_allowed", _("Método no permitido.")
    if isinstance(exc, exceptions.UnsupportedMediaType):
        return "unsupported_media_type", _("El cuerpo debe ser JSON.")
    if isinstance(exc, exceptions.ParseError):
        return "invalid_json", _("El cuerpo no es JSON válido.")
    if isinstance(exc, exceptions.Throttled):
        return "rate_limited", _("Demasiadas solicitudes; intente más tarde.")
    if isinstance(exc, exceptions.ValidationError):
        return "invalid_parameters", _("Parámetros inválidos.")
    return "error", str(exc.detail)


def api_exception_handler(exc, context):
    # Imported here: rest_framework.views reads the API settings, whose authentication class
    # (core.auth) imports this module.
    from rest_framework.views import exception_handler

    if isinstance(exc, ApiError):
        return Response(exc.body(), status=exc.status_code)
    # DRF's handler first, so headers such as WWW-Authenticate survive.
    response = exception_handler(exc, context)
    if response is None:
        return None
    response.data = error_body(*_code_for(exc))
    return response


def _api_or_default(request, default, status_code: int, code: str, message: str):
    """Under /api/ every answer is the contract's JSON; elsewhere (admin, linking page) Django's page."""
    if request.path == "/api" or request.path.startswith("/api/"):
        return error_json(status_code, code, message)
    return default()


def handler400(request, exception=None):
    from django.views import defaults

    return _api_or_default(request, lambda: defaults.bad_request(request, exception), 400, "bad_request",
                           _("Solicitud inválida."))


def handler404(request, exception=None):
    from django.views import defaults

    return _api_or_default(request, lambda: defaults.page_not_found(request, exception), 404, "not_found",
                           _("No encontrado."))


def handler500(request):
    from django.views import defaults

    return _api_or_default(request, lambda: defaults.server_error(request), 500, "internal_error", _("Error interno."))


__all__ = ["ApiError", "api_exception_handler", "error_body", "error_bytes", "error_json"]
