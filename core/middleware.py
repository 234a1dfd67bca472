"""Django middleware of the service's own."""

import logging

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse
from django.utils.translation import gettext as _

from .errors import error_json

log = logging.getLogger(__name__)


class DatabaseUnavailableMiddleware:
    """The database cannot be reached: 503 with a clear error instead of a 500 page (JSON under /api/)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, (OperationalError, InterfaceError)):
            return None
        log.warning("database unavailable for %s %s: %s", request.method, request.path, exception)
        message = _("La base de datos no está disponible; reintente.")
        if request.path.startswith("/api/"):
            response = error_json(503, "database_unavailable", message)
        else:
            response = HttpResponse(message, status=503, content_type="text/plain; charset=utf-8")
        response["Retry-After"] = "5"
        return response


class AdminLoginRateLimitMiddleware:
    """Failed logins to the admin, counted per client address: after ADMIN_LOGIN_MAX_FAILURES of them,
    further attempts are refused (429) until ADMIN_LOGIN_WINDOW_SECONDS have passed since the last one.
    Counted in the cache (per process with the default in-memory cache)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from django.conf import settings
        from django.core.cache import cache
        from django.urls import reverse

        if request.method != "POST" or request.path != reverse("admin:login"):
            return self.get_response(request)
        key = "admin-login-failures:" + (request.META.get("REMOTE_ADDR") or "unknown")
        failures = cache.get(key, 0)
        if failures >= settings.ADMIN_LOGIN_MAX_FAILURES:
            log.warning("admin login refused: %d failed attempts from %s", failures, request.META.get("REMOTE_ADDR"))
            response = HttpResponse(
                _("Demasiados intentos fallidos de inicio de sesión; espere unos minutos."),
                status=429, content_type="text/plain; charset=utf-8",
            )
            response["Retry-After"] = str(settings.ADMIN_LOGIN_WINDOW_SECONDS)
            return response
        response = self.get_response(request)
        if response.status_code == 200:  # the form shown again: the credentials were wrong
            cache.set(key, failures + 1, timeout=settings.ADMIN_LOGIN_WINDOW_SECONDS)
        elif 300 <= response.status_code < 400:  # logged in
            cache.delete(key)
        return response
