"""What opening a linking socket asks of a failing session, from many web processes at once: each thread
here has its own database connection, as separate web processes do, so only the database can keep the
limit of one immediate attempt per session per LINK_RETRY_MIN_SECONDS."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from sessions_app.link_requests import request_link
from sessions_app.models import SessionStatus, WhatsAppSession

pytestmark = pytest.mark.django_db(transaction=True)


def test_concurrent_openings_from_separate_connections_make_one_attempt(configured, settings):
    settings.LINK_RETRY_MIN_SECONDS = 60
    WhatsAppSession.objects.filter(pk="tienda_lima").update(
        status=SessionStatus.DISCONNECTED, status_reason="connect_failure", last_error="connect_failure: x: y",
        next_attempt_at=timezone.now() + timedelta(seconds=120),
    )
    start = threading.Barrier(8)
    states, errors = [], []

    def open_socket() -> None:
        try:
            start.wait()
            states.append(request_link("tienda_lima"))
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=open_socket) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sum(s.start_requested for s in states) == 1
    assert [s.news["retryInSeconds"] for s in states if s.start_requested] == [0]
    assert all(s.news["retryInSeconds"] > 100 for s in states if not s.start_requested)


def test_a_session_waiting_for_a_new_link_is_started_whatever_was_asked_just_before(configured, settings):
    """The QR ran out a moment after the last opening: "Reintentar" must start a new link at once."""
    settings.LINK_RETRY_MIN_SECONDS = 60
    just_now = timezone.now() - timedelta(seconds=1)
    WhatsAppSession.objects.filter(pk="tienda_lima").update(
        status=SessionStatus.DISCONNECTED, status_reason="qr_timeout", last_error="qr_timeout",
        start_requested_at=just_now,
    )
    state = request_link("tienda_lima")
    assert state.start_requested and state.news is None  # "initializing" says it: a new link starts
    assert WhatsAppSession.objects.get(pk="tienda_lima").start_requested_at > just_now
