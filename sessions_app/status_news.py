"""What a person watching a session is told about its state: the socket's status event (the contract's
status, its reason, the last error in words, the seconds to the next attempt). Built the same way for the
event published when the state changes and for the one a socket gets when it opens, so a watcher who was
already there and one who arrives later read the same thing.
"""

import math
import re
from datetime import datetime

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .credential_store import redacted
from .models import SessionStatus, WhatsAppSession

# What a status becomes on the WebSocket (the contract's statuses), and the reason it implies.
ANNOUNCED = {
    SessionStatus.INITIALIZING: ("initializing", None),
    SessionStatus.CONNECTED: ("connected", None),
    SessionStatus.DISCONNECTED: ("disconnected", None),
    SessionStatus.LOGGED_OUT: ("disconnected", "logged_out"),
    SessionStatus.BANNED: ("disconnected", "banned"),
    SessionStatus.STOPPED: ("disconnected", "stopped"),
}
# Reasons that already say all the last error would: no "error" beside them.
SELF_EXPLAINED = {"qr_timeout", "logged_out", "banned", "stream_replaced", "stopped"}

# What a network failure's technical text means, for the person who has to fix it (first match wins).
CAUSES = [
    (("no such host", "server misbehaving", "name resolution"),
     gettext_lazy("No se encontró el servidor de WhatsApp: este equipo no puede resolver nombres de internet "
                  "(sin DNS o sin conexión).")),
    (("proxyconnect",), gettext_lazy("El proxy configurado no dejó pasar la conexión con WhatsApp.")),
    (("connection refused",), gettext_lazy("La conexión con WhatsApp fue rechazada (por un proxy, un cortafuegos "
                                           "o el servidor).")),
    (("network is unreachable", "no route to host"),
     gettext_lazy("No hay ruta de red hacia WhatsApp: este equipo no tiene salida a internet.")),
    (("i/o timeout", "deadline exceeded", "timed out", "timeout"),
     gettext_lazy("WhatsApp no respondió a tiempo: la red es lenta o está bloqueada.")),
    (("unexpected eof", "connection reset", "broken pipe"),
     gettext_lazy("La conexión con WhatsApp se cortó antes de establecerse (¿un proxy o un cortafuegos la "
                  "bloquea?).")),
    (("x509", "certificate"), gettext_lazy("El certificado del servidor no es válido: ¿un proxy intercepta la "
                                           "conexión?")),
]
# What the code a last error starts with means, when its text names no known cause.
BY_CODE = {
    "connect_failure": gettext_lazy("No se pudo conectar con WhatsApp."),
    "process_exited": gettext_lazy("El proceso de la sesión terminó inesperadamente."),
    "no_heartbeat": gettext_lazy("El proceso de la sesión dejó de responder y fue reemplazado."),
    "start_failed": gettext_lazy("No se pudo iniciar el proceso de la sesión."),
    "temporary_ban": gettext_lazy("WhatsApp bloqueó temporalmente este número."),
    "logged_out": gettext_lazy("La sesión se cerró."),
    "qr_timeout": gettext_lazy("El código QR expiró sin ser escaneado."),
    "stream_replaced": gettext_lazy("Otra conexión tomó este número."),
}
# The machine codes a last error starts with, not for a person: its kind, and for a failed connect the
# client's error code ("connect_failure: connect_failed: ..."); a Go package prefix ("pq: ") stays.
_CODES = re.compile(r"^[a-z_]+: (?:[a-z]+_[a-z_]+: )?")
DETAIL_MAX = 240  # the end of a long Go error is its cause: that is what is kept


def readable_error(last_error: str) -> str:
    """A raw last error as a person can read it: a Spanish sentence, then the technical detail. Never a
    password (credential_store.redacted)."""
    text = redacted(last_error.strip())
    first_code = text.split(":", 1)[0]
    detail = _CODES.sub("", text)
    if re.fullmatch(r"[a-z_]+", detail):  # nothing but a code: "qr_timeout"
        detail = ""
    lowered = detail.lower()
    sentence = next((str(meaning) for needles, meaning in CAUSES if any(n in lowered for n in needles)), None)
    if sentence is None:
        sentence = str(BY_CODE.get(first_code, gettext_lazy("La sesión informó un error.")))
    if not detail:
        return sentence
    if len(detail) > DETAIL_MAX:
        detail = "…" + detail[-DETAIL_MAX:]
    return _("%(sentence)s Detalle técnico: %(detail)s") % {"sentence": sentence, "detail": detail}


def seconds_until(moment: datetime, now: datetime | None = None) -> int:
    return max(0, math.ceil((moment - (now or timezone.now())).total_seconds()))


def status_event(row: WhatsAppSession, next_attempt_at: datetime | None = None) -> dict | None:
    """The status event that tells the row's state: {"event": "status", "data", ["reason", "error",
    "retryInSeconds"]}; None for a status the socket does not announce. `next_attempt_at` stands for the
    row's when the caller just moved the attempt."""
    announced, implied = ANNOUNCED.get(row.status, (None, None))
    if announced is None:
        return None
    event = {"event": "status", "data": announced}
    if announced != "disconnected":
        return event
    reason = row.status_reason or implied
    if reason:
        event["reason"] = reason
    if row.last_error and reason not in SELF_EXPLAINED:
        event["error"] = readable_error(row.last_error)
    attempt = next_attempt_at or row.next_attempt_at
    if attempt is not None:
        event["retryInSeconds"] = seconds_until(attempt)
    return event
