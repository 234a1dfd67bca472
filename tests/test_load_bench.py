"""bench/mixed_load.py, briefly: the same mixed traffic (send-pdf, status reads, sockets opening and
closing) against the real service, judged by what a user would notice. The figures of the long run
(memory and open files over 10 minutes) are the bench's to print, not this test's to time."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.slow, pytest.mark.sqlite_only]


def test_half_a_minute_of_mixed_traffic_loses_nothing_and_errs_nowhere():
    run = subprocess.run(
        [sys.executable, "bench/mixed_load.py", "--minutes", "0.5", "--sessions", "4"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert run.stdout, run.stderr[-2000:]
    result = json.loads(run.stdout)
    assert run.returncode == 0, (result["failures"], run.stderr[-2000:])
    requests = result["requests"]
    assert requests["send_pdf"] >= 250 and requests["status_read"] >= 250 and requests["socket"] >= 50
    messages = result["messages"]
    assert messages["accepted"] == requests["send_pdf"]
    assert messages["statuses"] == {"delivered": messages["accepted"]}
    assert messages["received_by_whatsapp"] == messages["accepted"] and messages["duplicates"] == 0
    # Who holds the web process's memory is read while it runs: a leak, fragmentation and caches told apart.
    heap = result["memory"]["server_heap"]
    assert heap and all(figure["last"] is not None for figure in heap.values()), result["memory"]
    assert heap["gc_tracked_objects"]["last"] > 1000 and heap["malloc_in_use_mb"]["last"] > 1, heap
    assert heap["sqlite_mb"]["last"] > 0, heap
