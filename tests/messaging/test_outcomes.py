"""The dispatcher's group-committed outcomes (messaging.outcomes.Recorder) against a database that does
not answer: senders wait for it, and the log says so instead of the queue going quiet."""

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections

from messaging import outcomes, send_queue
from messaging.models import MessageStatus, OutgoingMessage
from tests.fault_tools import hold_message_writes
from tests.messaging.test_send_queue import queue_messages

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_outcome_waiting_for_the_database_is_logged_then_recorded(configured, monkeypatch, caplog):
    monkeypatch.setattr(outcomes, "STALL_WARNING_SECONDS", 0.3)
    (row,) = queue_messages(1)
    (claimed,) = send_queue.claim_batch("tienda_lima", "w1", 60)
    other = hold_message_writes()

    async def record() -> bool:
        db_thread = ThreadPoolExecutor(1)
        recorder = outcomes.Recorder(db_thread)
        written = recorder.write(send_queue.record_sent, claimed.pk, "w1", "3EB0AAAA", 1_700_000_000.0)
        await asyncio.sleep(1.0)
        assert not written.done()  # the database holds it back
        other.rollback()  # the other client lets go
        result = await asyncio.wait_for(written, 20)
        await recorder.close()
        db_thread.submit(connections.close_all).result()
        return result

    try:
        with caplog.at_level(logging.WARNING, logger="messaging.outcomes"):
            assert asyncio.run(record()) is True
    finally:
        other.close()
    stalls = [r.getMessage() for r in caplog.records if "waited" in r.getMessage()]
    assert stalls and "recording 1 outcome(s) has waited" in stalls[0] and "for the database" in stalls[0]
    assert OutgoingMessage.objects.get(pk=row.pk).status == MessageStatus.SENT
