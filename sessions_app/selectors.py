"""Reads of sessions, shaped as the contract shows them."""

from django.db.models import OuterRef, QuerySet, Subquery
from django.db.models.functions import Now
from django.utils.translation import gettext as _

from core.errors import ApiError

from .ids import InvalidSessionId, validate_session_id
from .models import SessionLease, WhatsAppSession


def configured_sessions() -> QuerySet[WhatsAppSession]:
    """With `worker`: the worker that holds the session's lease now (runs it), or None."""
    holder = SessionLease.objects.filter(session_id=OuterRef("pk"), expires_at__gt=Now()).exclude(owner="")
    return WhatsAppSession.objects.filter(in_config=True).annotate(worker=Subquery(holder.values("owner")[:1]))


def invalid_session_id_error() -> ApiError:
    return ApiError(400, "invalid_session_id", _("El id de sesión debe tener de 1 a 64 letras, dígitos, '_' o '-'."))


def unknown_session_error(session_id: str) -> ApiError:
    return ApiError(404, "unknown_session", _("La sesión '%(id)s' no está configurada.") % {"id": session_id})


def get_configured_session(session_id: str) -> WhatsAppSession:
    """The session, or ApiError 400 (bad id) / 404 (not configured)."""
    try:
        validate_session_id(session_id)
    except InvalidSessionId:
        raise invalid_session_id_error() from None
    session = configured_sessions().filter(session_id=session_id).first()
    if session is None:
        raise unknown_session_error(session_id)
    return session


def session_as_json(s: WhatsAppSession) -> dict:
    return {
        "sessionId": s.session_id,
        "description": s.description,
        "status": s.status,
        "phone": s.phone or None,
        "lastError": s.last_error or None,
        "worker": getattr(s, "worker", None) or None,
    }
