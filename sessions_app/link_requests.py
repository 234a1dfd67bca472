"""What opening a linking socket does to a session: create it when new, ask the worker to (re)start it,
and say what state it is in.

The worker's supervisor polls the database; a session with no process starts again when
`start_requested_at` is newer than its stop. That starts a session that waits for a new link (logged out,
QR timed out), and moves the next attempt of one that is failing to connect, or waiting out its restart
backoff, to now: the seed's "opening the socket starts or reconnects the session". Moving an attempt is
limited to one per LINK_RETRY_MIN_SECONDS per session, by a conditional UPDATE, so that the limit holds
across web processes and a storm of sockets never becomes a storm of connects to WhatsApp. This module
never talks to the worker.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .config_file import SessionEntry, add_session_to_config
from .ids import validate_session_id
from .models import SessionStatus, WhatsAppSession
from .session_state import waits_for_new_link
from .status_news import status_event


@dataclass(frozen=True)
class LinkState:
    """The session as the socket finds it."""

    session_id: str
    status: str
    qr: str
    created: bool
    start_requested: bool
    # The status event that says why it is not linking right now (disconnected, banned), sent right
    # after "initializing"; None when "initializing" (and a pending QR) says it all.
    news: dict | None = None


def _retries_by_itself(row: WhatsAppSession) -> bool:
    """Disconnected with an attempt planned by the supervisor (failed connect, crashed process, stream
    replaced). A ban is not shortened: trying before it ends only prolongs it."""
    return row.status == SessionStatus.DISCONNECTED and row.next_attempt_at is not None


def _attempt_now(session_id: str) -> bool:
    """Ask for an attempt now unless one was asked for less than LINK_RETRY_MIN_SECONDS ago; True when
    this call asked. One UPDATE with the condition in it: of concurrent callers in any process, one wins."""
    now = timezone.now()
    recent = now - timedelta(seconds=settings.LINK_RETRY_MIN_SECONDS)
    return WhatsAppSession.objects.filter(
        Q(start_requested_at__isnull=True) | Q(start_requested_at__lte=recent), session_id=session_id
    ).update(start_requested_at=now) == 1


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
    news = None
    if row.status == SessionStatus.STOPPED or waits_for_new_link(row):
        # A new link starts; asking again while a QR is shown would restart it after a later timeout,
        # so a running session is never asked.
        WhatsAppSession.objects.filter(session_id=session_id).update(start_requested_at=timezone.now())
        start = True
    elif _retries_by_itself(row):
        start = _attempt_now(session_id)
        news = status_event(row, next_attempt_at=timezone.now() if start else None)
    else:
        start = False
        if row.status in (SessionStatus.DISCONNECTED, SessionStatus.BANNED):
            news = status_event(row)
    return LinkState(session_id, row.status, row.qr, created, start, news)
