"""One group commit holds requests of every kind; each gets its own answer, on SQLite and on Postgres (where
the checks are made inside each insert, and only the requests an insert left out are looked up after)."""

import base64
import threading

import pytest
from django.db import connection

from messaging.errors import IdempotencyConflict, UnknownSession
from messaging.intake import document_request
from messaging.models import MessagePayload, OutgoingMessage
from messaging.queue_storage import Enqueued, write_batch
from tests.conftest import make_pdf

pytestmark = pytest.mark.django_db(transaction=True)


def request(key=None, session_id="tienda_lima", seed=1):
    return document_request(session_id=session_id, to="51987654321",
                            file_base64=base64.b64encode(make_pdf(seed=seed)).decode(), idempotency_key=key)


def test_one_batch_answers_each_request_for_itself(configured):
    new, keyed = request(), request("venta-1")
    results = write_batch([
        new,
        request(session_id="tienda_piura"),  # not configured
        keyed,
        request("venta-1"),  # the same request again, in the same batch
        request("venta-1", seed=2),  # the same key with another PDF
        request("venta-2", session_id="tienda_cusco"),
    ])
    assert [type(r) for r in results] == [Enqueued, UnknownSession, Enqueued, Enqueued, IdempotencyConflict, Enqueued]
    assert [r.created for r in results if isinstance(r, Enqueued)] == [True, True, False, True]
    assert (results[1].session_id, results[1].code) == ("tienda_piura", "unknown_session")
    assert results[4].code == "idempotency_conflict" and results[4].message
    assert results[3].message_id == results[2].message_id
    assert OutgoingMessage.objects.count() == MessagePayload.objects.count() == 3
    stored = OutgoingMessage.objects.get(message_id=results[2].message_id)
    assert (stored.session_id, stored.idempotency_key, stored.payload.data) == ("tienda_lima", "venta-1", keyed.data)

    later = write_batch([request("venta-1"), request("venta-1", seed=3), request(session_id="tienda_piura")])
    assert later[0] == Enqueued(results[2].message_id, False)
    assert (type(later[1]), type(later[2])) == (IdempotencyConflict, UnknownSession)
    assert OutgoingMessage.objects.count() == 3


def test_two_writers_racing_one_key_queue_one_message(configured):
    """Two processes (here two connections) commit the same keyed request at the same moment: one inserts,
    the other answers with its message."""
    start = threading.Barrier(2)
    answers = []

    def writer():
        try:
            start.wait()
            answers.append(write_batch([request("venta-9")])[0])
        finally:
            connection.close()

    threads = [threading.Thread(target=writer) for _ in range(2)]
    [t.start() for t in threads]
    [t.join(30) for t in threads]
    assert len(answers) == 2 and all(isinstance(a, Enqueued) for a in answers), answers
    assert answers[0].message_id == answers[1].message_id
    assert sorted(a.created for a in answers) == [False, True]
    assert OutgoingMessage.objects.count() == 1
