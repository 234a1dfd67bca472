"""What opening a linking socket does to a session: create it when new, ask the worker to (re)start it.

The worker's supervisor polls the database; a session that waits for a new link (logged out, QR timed
out) starts again when `start_requested_at` is newer than its stop. This module never talks to the worker.
"""

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from .config_file import SessionEntry, add_session_to_config
from .ids import validate_session_id
from .models import SessionStatus, WhatsAppSession
from .session_state import waits_for_new_link


@dataclass(frozen=True)
class LinkState:
    """The session as the socket finds it."""

    session_id: str
    status: str
    qr: str
    created: bool
    start_requested: bool


def _needs_start(row: WhatsAppSession) -> bool:
    # A running session, or one the supervisor is reconnecting on its own schedule (a socket must not
    # shortcut its backoff), is left alone; asking again while a QR is shown would restart it right
    # after a later timeout.
    return row.status == SessionStatus.STOPPED or waits_for_new_link(row)


def request_link(session_id: str) -> LinkState:
    """The session's current state; a new id is added to sessions.config.json and the database first.

    Raises InvalidSessionId (checked before anything else) and config_file.ConfigError (the file exists
    but cannot be read, so it is not rewritten)."""
    validate_session_id(session_id)
    row = WhatsAppSession.objects.filter(session_id=session_id).first()
    created = row is None or not row.in_config
    if created:
        # The file first: it is what the worker runs; a row without its entry would be marked unconfigured.
        add_session_to_config(SessionEntry(session_id, row.description if row else ""))
        with transaction.atomic():
            row, _ = WhatsAppSession.objects.select_for_update().get_or_create(session_id=session_id)
            if not row.in_config:
                row.in_config = True
                row.save(update_fields=["in_config", "updated_at"])
    start = _needs_start(row)
    if start:
        WhatsAppSession.objects.filter(session_id=session_id).update(start_requested_at=timezone.now())
    return LinkState(session_id, row.status, row.qr, created, start)
