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
    # What SQLite holds in the web process is read while it runs (the part of its memory that grows
    # with the database up to a ceiling, told apart from the rest).
    sqlite = result["memory"]["server_sqlite_mb"]
    assert sqlite and 0 < sqlite["last"]["used"] <= sqlite["last"]["highest"], result["memory"]
