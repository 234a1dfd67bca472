"""The static bearer token that guards /api/* and /ws/*."""

import hmac

from django.conf import settings
from rest_framework import authentication, exceptions, permissions


def token_matches(presented: str | bytes | None) -> bool:
    """Constant-time comparison with API_STATIC_TOKEN; an unset token matches nothing."""
    expected = settings.API_STATIC_TOKEN.encode()
    if not expected or presented is None:
        return False
    if isinstance(presented, str):
        presented = presented.encode("utf-8", "surrogateescape")
    return hmac.compare_digest(presented, expected)


def bearer_from_header(value: str | bytes | None) -> str | bytes | None:
    """The token of an `Authorization: Bearer <token>` header, or None when there is none."""
    if not value:
        return None
    sep = b" " if isinstance(value, bytes) else " "
    scheme, _, token = value.strip().partition(sep)
    if scheme.lower() not in ("bearer", b"bearer") or not token.strip():
        return None
    return token.strip()


class StaticTokenAuthentication(authentication.BaseAuthentication):
    """Missing header: not authenticated (401). Wrong token: 403."""

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION")
        if not header:
            return None
        token = bearer_from_header(header)
        if token is None or not token_matches(token):
            raise exceptions.PermissionDenied()
        return (None, "static-token")

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
