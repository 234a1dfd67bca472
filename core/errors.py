"""One error type for the API and one handler that shapes every error body.

Body: {"success": false, "error": "<machine_code>", "message": "<texto legible>"}.
"""

from django.utils.translation import gettext as _
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler


class ApiError(Exception):
    """An error a client caused or must be told about; `code` is machine-readable."""

    def __init__(self, status_code: int, code: str, message: str):
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message

    def body(self) -> dict:
        return {"success": False, "error": self.code, "message": self.message}


def _code_for(exc: exceptions.APIException) -> tuple[str, str]:
    if isinstance(exc, exceptions.NotAuthenticated):
        return "missing_token", _("Falta el encabezado Authorization: Bearer <token>.")
    if isinstance(exc, exceptions.AuthenticationFailed):
        return "invalid_token", _("El token no es válido.")
    if isinstance(exc, exceptions.PermissionDenied):
        return "invalid_token", _("El token no es válido.")
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
    if isinstance(exc, ApiError):
        return Response(exc.body(), status=exc.status_code)
    # DRF's handler first, so headers such as WWW-Authenticate survive.
    response = exception_handler(exc, context)
    if response is None:
        return None
    code, message = _code_for(exc)
    response.data = {"success": False, "error": code, "message": message}
    return response


def _api_or_default(request, default, status_code: int, code: str, message: str):
    """Under /api/ every answer is the contract's JSON; elsewhere (admin, linking page) Django's page."""
    from django.http import JsonResponse

    if request.path == "/api" or request.path.startswith("/api/"):
        return JsonResponse({"success": False, "error": code, "message": message}, status=status_code)
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


def error_response(status_code: int, code: str, message: str) -> Response:
    return Response({"success": False, "error": code, "message": message}, status=status_code)


__all__ = ["ApiError", "api_exception_handler", "error_response", "status"]
