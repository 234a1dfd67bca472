"""The group-commit writer's own threads: what it starts ends with it."""

import base64
import threading

import pytest

from messaging.intake import document_request
from messaging.models import OutgoingMessage
from messaging.queue_storage import Enqueued
from messaging.queue_writer import QueueWriter
from tests.conftest import make_pdf

pytestmark = pytest.mark.django_db(transaction=True)


def pdf_request(**fields):
    return document_request(session_id="tienda_lima", to="51987654321",
                            file_base64=base64.b64encode(make_pdf()).decode(), **fields)


def checkpoint_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name == "wal-checkpoint")


def writer_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name.startswith("queue-writer"))


def test_one_key_sent_many_times_at_once_makes_one_message_and_the_writers_end(configured):
    """On Postgres two writers commit at the same time, so the same Idempotency-Key can arrive in both of
    their batches: still one message, and every caller gets its id."""
    before = writer_threads()
    writer = QueueWriter()
    request = pdf_request(caption="una venta", idempotency_key="venta-77")
    answers = [f.result(timeout=30) for f in [writer.submit(request) for _ in range(60)]]
    assert {type(a) for a in answers} == {Enqueued}
    assert len({a.message_id for a in answers}) == 1
    assert sum(a.created for a in answers) == 1
    assert OutgoingMessage.objects.count() == 1
    writer.shutdown()
    assert writer_threads() == before


@pytest.mark.sqlite_only  # only SQLite's WAL is the service's to checkpoint
def test_the_wal_checkpoint_thread_ends_with_its_writer(configured):
    """On SQLite each writer has a thread that copies the WAL back into the database. It outlived the writer,
    one more each time a writer started, and asked for a database that was gone: a traceback at exit."""
    before = checkpoint_threads()
    for round_ in range(3):
        writer = QueueWriter()
        writer.submit(pdf_request(caption=f"ronda {round_}")).result(timeout=10)
        assert checkpoint_threads() == before + 1
        writer.shutdown()
        assert checkpoint_threads() == before
    assert OutgoingMessage.objects.count() == 3
