"""The group-commit writer's own threads: what it starts ends with it."""

import threading

import orjson
import pytest

from messaging.intake import parse_send_pdf
from messaging.models import OutgoingMessage
from messaging.queue_writer import QueueWriter
from tests.conftest import pdf_body

# Only SQLite's WAL is the service's to checkpoint; the Postgres run of the suite leaves this file out.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.sqlite_only]


def checkpoint_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name == "wal-checkpoint")


def test_the_wal_checkpoint_thread_ends_with_its_writer(configured):
    """On SQLite each writer has a thread that copies the WAL back into the database. It outlived the writer,
    one more each time a writer started, and asked for a database that was gone: a traceback at exit."""
    before = checkpoint_threads()
    for round_ in range(3):
        writer = QueueWriter()
        writer.submit(parse_send_pdf(orjson.dumps(pdf_body(caption=f"ronda {round_}")))).result(timeout=10)
        assert checkpoint_threads() == before + 1
        writer.shutdown()
        assert checkpoint_threads() == before
    assert OutgoingMessage.objects.count() == 3
