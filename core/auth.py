"""The static bearer token that guards /api/*, /ws/* and /metrics: one check for every entry point."""

import hmac

from django.conf import settings
from django.utils.translation import gettext as _
from rest_framework import authentication, exceptions, permissions

from .errors import ApiError


def token_matches(presented: str | bytes | None, expected: str | None = None) -> bool:
    """Constant-time comparison with `expected` (API_STATIC_TOKEN unless given); an unset token matches nothing."""
    wanted = (settings.API_STATIC_TOKEN if expected is None else expected).encode()
    if not wanted or presented is None:
        return False
    if isinstance(presented, str):
        presented = presented.encode("utf-8", "surrogateescape")
    return hmac.compare_digest(presented, wanted)


def bearer_from_header(value: str | bytes | None) -> str | bytes | None:
    """The token of an `Authorization: Bearer <token>` header, or None when there is none."""
    if not value:
        return None
    sep = b" " if isinstance(value, bytes) else " "
    scheme, _, token = value.strip().partition(sep)
    if scheme.lower() not in ("bearer", b"bearer") or not token.strip():
        return None
    return token.strip()


def missing_token() -> ApiError:
    return ApiError(401, "missing_token", _("Falta el encabezado Authorization: Bearer <token>."))


def invalid_token() -> ApiError:
    return ApiError(403, "invalid_token", _("El token no es válido."))


def check_authorization(header: str | bytes | None, expected: str | None = None) -> ApiError | None:
    """None when the Authorization header carries the token (API_STATIC_TOKEN unless `expected` is
    given), else the error to answer: no header 401 missing_token, any other header 403 invalid_token."""
    if not header:
        return missing_token()
    if not token_matches(bearer_from_header(header), expected):
        return invalid_token()
    return None


class StaticTokenAuthentication(authentication.BaseAuthentication):
    """Missing header: not authenticated (401). Wrong token: 403."""

    def authenticate(self, request):
        refused = check_authorization(request.META.get("HTTP_AUTHORIZATION"))
        if refused is None:
            return (None, "static-token")
        if refused.status_code == 401:
            return None  # DRF answers NotAuthenticated, with this class's WWW-Authenticate
        raise exceptions.PermissionDenied()

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


class HasStaticToken(permissions.BasePermission):
    def has_permission(self, request, view):
        return request.auth == "static-token"


class HasStaticTokenOrStaff(permissions.BasePermission):
    """For pages a person opens in the browser (API docs): the token, or a logged-in staff user."""

    def has_permission(self, request, view):
        user = getattr(request, "user", None)
        return request.auth == "static-token" or bool(user and user.is_active and user.is_staff)
