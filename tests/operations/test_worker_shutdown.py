"""SIGTERM to `manage.py runworker` while it sends: it stops claiming, lets the send in flight finish,
stops its session processes and exits; nothing accepted is lost, nothing is left `sending`, and the
next worker sends the rest exactly once."""

import signal
import time
from collections import Counter

import pytest

from messaging.models import MessageStatus, OutgoingMessage
from tests.conftest import make_pdf
from tests.messaging.test_dispatcher import FAST, Api
from tests.processes import alive, descendants, runworker, serve

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

SLOW_SENDS = {**FAST, "SIMULATOR_SEND_LATENCY_MS": "400", "DISPATCH_SHUTDOWN_GRACE_SECONDS": "20"}


def test_sigterm_during_sending_loses_nothing_and_leaves_nothing_sending(configured, auth, tmp_path):
    web = serve(tmp_path, "--no-worker", **SLOW_SENDS).start()
    worker = runworker(tmp_path, **SLOW_SENDS).start()
    try:
        api = Api(web, auth)
        api.link("tienda_lima")
        ids = [api.send(caption=f"n {n}", pdf=make_pdf(1500, seed=n)) for n in range(20)]
        api.wait(lambda: len(api.outbox()) >= 3, timeout=60, every=0.05)
        # A send is in flight now (each takes 400 ms); systemd and supervisord signal the main process.
        children = descendants(worker.proc.pid)
        assert children, "the worker runs session processes"
        signalled = time.monotonic()
        worker.proc.send_signal(signal.SIGTERM)
        code = worker.proc.wait(60)
        took = time.monotonic() - signalled
        assert code == 0, worker.output()
        deadline = time.monotonic() + 5  # the forkserver notices its parent is gone on its own
        while any(alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [open(f"/proc/{pid}/cmdline").read() for pid in children if alive(pid)]

        rows = {str(m.message_id): m for m in OutgoingMessage.objects.all()}
        statuses = Counter(rows[i].status for i in ids)
        delivered_captions = Counter(item["caption"] for item in api.outbox())
        assert statuses[MessageStatus.SENDING] == 0, statuses
        assert set(statuses) <= {MessageStatus.QUEUED, MessageStatus.SENT, MessageStatus.DELIVERED}
        assert statuses[MessageStatus.QUEUED] > 0, "SIGTERM came mid-run: some must still wait"
        # What the simulated WhatsApp received is exactly what the database says went out.
        went_out = {rows[i].caption for i in ids if rows[i].status != MessageStatus.QUEUED}
        assert set(delivered_captions) == went_out and max(delivered_captions.values()) == 1
        assert all(rows[i].attempts == 0 for i in ids if rows[i].status == MessageStatus.QUEUED)
        assert "supervisor stopped" in worker.output()

        with runworker(tmp_path, **SLOW_SENDS):  # the next worker sends the rest, each once
            api.wait(lambda: len(api.outbox()) >= 20, timeout=90, every=0.2)
            api.wait(lambda: set(api.statuses(ids)) <= {"sent", "delivered"}, timeout=30)
            outbox = api.outbox()
    finally:
        worker.stop()
        web.stop()
    copies = Counter(item["caption"] for item in outbox)
    assert copies == Counter({f"n {n}": 1 for n in range(20)})
    print(f"\nSIGTERM mid-send: worker exited in {took:.1f} s")
