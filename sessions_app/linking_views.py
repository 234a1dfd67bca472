"""The admin's linking page: /link/<sessionId>/ for staff users, plus the two things it fetches
(the pending QR as an image, a pairing code). The events themselves come over /ws/session/<id>."""

from functools import wraps

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from core.errors import ApiError, error_json

from .ids import InvalidSessionId, validate_session_id
from .models import SessionCommand, SessionStatus, WhatsAppSession
from .qr_image import qr_svg
from .selectors import get_configured_session
from .views import ask_worker, clean_phone


def staff_json(view):
    """For the page's fetch() calls: a JSON 403 instead of a redirect to the login form."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs):
        user = request.user
        if not (user.is_active and user.is_staff):
            return error_json(403, "forbidden", _("Inicie sesión como personal del administrador."))
        return view(request, *args, **kwargs)

    return wrapped


def page_texts() -> dict[str, object]:
    """Every sentence the page's script may show, translated here so the script has none of its own."""
    return {
        "connecting": _("Conectando con el servidor…"),
        "initializing": _("Iniciando la sesión de WhatsApp…"),
        "qr": _("Escanee el código QR con WhatsApp en su teléfono."),
        "connected": _("¡Listo! El número quedó conectado."),
        "already_connected": _("Este número ya está conectado."),
        "disconnected": _("La sesión está desconectada."),
        "reasons": {
            "qr_timeout": _("El código QR expiró sin ser escaneado."),
            "logged_out": _("El teléfono cerró la sesión o rechazó la vinculación."),
            "banned": _("WhatsApp bloqueó temporalmente este número."),
            "stream_replaced": _("Otra conexión tomó este número."),
            "connect_failure": _("No se pudo conectar con WhatsApp."),
            "process_exited": _("El proceso de la sesión se detuvo; el servicio lo reiniciará."),
            "keepalive_timeout": _("Se perdió la conexión con WhatsApp."),
            "stopped": _("La sesión está detenida."),
        },
        "cause": _("Causa: %(detail)s"),
        "retry_in_seconds": _("Nuevo intento automático en %(seconds)s s."),
        "retry_in_minutes": _("Nuevo intento automático en %(minutes)s min %(seconds)s s."),
        "retry_now": _("Nuevo intento en curso…"),
        "retry_hint": _("Pulse Reintentar para intentarlo ahora."),
        "still_initializing": _("WhatsApp todavía no responde. Puede seguir esperando o pulsar Reintentar."),
        "error": _("No se pudo vincular: %(detail)s"),
        "socket_closed": _("Se perdió la conexión con el servidor."),
        "refused": _("El servidor rechazó la conexión: inicie sesión de nuevo en el administrador."),
        "pairing_waiting": _("Pidiendo el código…"),
        "pairing_code": _("En el teléfono: WhatsApp > Dispositivos vinculados > Vincular con el número de teléfono, e ingrese este código:"),
        "pairing_failed": _("No se pudo obtener el código: %(detail)s"),
    }


@staff_member_required
@require_GET
def link_start(request: HttpRequest) -> HttpResponse:
    """A form for a new number's session id; the page of that id does the rest."""
    raw = request.GET.get("session_id")
    error = ""
    if raw is not None:
        try:
            return redirect("session-link", session_id=validate_session_id(raw.strip()))
        except InvalidSessionId:
            error = _("El id de sesión debe tener de 1 a 64 letras, dígitos, '_' o '-'.")
    return render(request, "sessions_app/link_start.html", {"error": error, "value": raw or "", "title": _("Vincular un número nuevo")})


@staff_member_required
@require_GET
def link_page(request: HttpRequest, session_id: str) -> HttpResponse:
    try:
        validate_session_id(session_id)
    except InvalidSessionId:
        return HttpResponseBadRequest(_("El id de sesión debe tener de 1 a 64 letras, dígitos, '_' o '-'."))
    session = WhatsAppSession.objects.filter(session_id=session_id).first()
    context = {
        "title": _("Vincular el número de %(id)s") % {"id": session_id},
        "session_id": session_id,
        "session": session,
        "ws_path": f"/ws/session/{session_id}",
        "qr_url": reverse("session-link-qr", args=[session_id]),
        "pairing_url": reverse("session-link-pairing-code", args=[session_id]),
        "texts": page_texts(),
    }
    return render(request, "sessions_app/link.html", context)


@never_cache
@staff_json
@require_GET
def link_qr(request: HttpRequest, session_id: str) -> HttpResponse:
    """The QR waiting to be scanned, as SVG; 404 when none is."""
    try:
        validate_session_id(session_id)
    except InvalidSessionId:
        return error_json(400, "invalid_session_id", _("El id de sesión debe tener de 1 a 64 letras, dígitos, '_' o '-'."))
    qr = (
        WhatsAppSession.objects.filter(session_id=session_id, status=SessionStatus.QR)
        .values_list("qr", flat=True)
        .first()
    )
    if not qr:
        return error_json(404, "no_pending_qr", _("No hay un código QR pendiente para esta sesión."))
    return HttpResponse(qr_svg(qr), content_type="image/svg+xml")


@staff_json
@require_POST
def link_pairing_code(request: HttpRequest, session_id: str) -> HttpResponse:
    """The page's alternative to the QR; the same steps as POST /api/sessions/<id>/pairing-code, with the
    staff session (and its CSRF token) instead of the API token."""
    try:
        get_configured_session(session_id)
        phone = clean_phone(request.POST.get("phone"))
        result = ask_worker(session_id, SessionCommand.Kind.PAIRING_CODE, {"phone": phone})
    except ApiError as exc:
        return error_json(exc.status_code, exc.code, exc.message)
    return JsonResponse({"code": result["code"]})
