"""A session process stops itself when its worker's lease on the number can no longer be trusted
(sessions_app.session_process, `lease_until`), so that the number never runs in two workers at once."""

import json
import multiprocessing
import os
import subprocess
import sys
import time

import pytest
from django.conf import settings

from sessions_app.session_process import EXIT_LEASE_LOST, LeaseExpired, spawn

SPAWN_LATE = """
import json, sys, time
sys.path.insert(0, {root!r})
import django
django.setup()
from sessions_app.session_process import spawn
spawn("tienda_lima", backend="simulator")[0].join(0)  # the forkserver is up: what follows times the start alone
deadline = time.monotonic() + 3.0  # the supervisor trusts its lease until then
time.sleep(2.0)  # ... and the start waits: the spawner busy with other sessions, the machine loaded
process, conn = spawn("tienda_lima", backend="simulator", lease_until=deadline)
process.join(10)
print(json.dumps({{"exit": process.exitcode, "past_deadline": round(time.monotonic() - deadline, 2)}}))
"""


FORK_LATE = """
import json, os, signal, sys, threading, time
sys.path.insert(0, {root!r})
import django
django.setup()
from multiprocessing import forkserver
from sessions_app.session_process import spawn
spawn("tienda_lima", backend="simulator")[0].join(0)  # the forkserver is up
deadline = time.monotonic() + 0.3
os.kill(forkserver._forkserver._forkserver_pid, signal.SIGSTOP)  # the machine stalls as the fork is asked for
threading.Timer(1.0, os.kill, (forkserver._forkserver._forkserver_pid, signal.SIGCONT)).start()
process, conn = spawn("tienda_lima", backend="simulator", lease_until=deadline)  # asked in time, forked late
process.join(10)
events = []
while conn.poll(0.5):
    try:
        events.append(conn.recv())
    except EOFError:
        break
print(json.dumps({{"exit": process.exitcode, "events": events}}))
"""


def _run_script(script: str, tmp_path) -> dict:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "whatsapp_service.settings", "ENV_FILE": os.devnull,
           "SESSIONS_DIR": str(tmp_path / "sessions"), "WHATSAPP_BACKEND": "simulator"}
    out = subprocess.run([sys.executable, "-c", script.format(root=str(settings.BASE_DIR))], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "stderr": out.stderr[-3000:]}


def test_no_session_process_is_forked_once_its_lease_deadline_has_passed(service_files):
    """Found by the three-worker test: a worker paused while it started its sessions resumed after its leases
    had gone to another worker, and started a process for a number the other already ran."""
    before = multiprocessing.active_children()
    with pytest.raises(LeaseExpired):
        spawn("tienda_lima", backend="simulator", lease_until=time.monotonic() - 0.01)
    assert multiprocessing.active_children() == before


def test_a_session_process_forked_after_its_lease_deadline_exits_before_its_client_does_anything(tmp_path):
    result = _run_script(FORK_LATE, tmp_path)
    assert result["exit"] == EXIT_LEASE_LOST, result["stderr"]
    assert result["events"] == []  # not even the first QR code: the client never ran


def test_a_session_process_stops_by_its_lease_deadline_however_long_its_start_waited(tmp_path):
    """Found by the three-worker test on a loaded machine: the process was given how many seconds the lease
    had left, counted from its own start; a start that waited in line let it outlive the lease, and the
    worker that took the number over ran it at the same time."""
    result = _run_script(SPAWN_LATE, tmp_path)
    assert result["exit"] == EXIT_LEASE_LOST, result["stderr"]
    # It notices within 0.1 s and is gone 0.5 s later (session_process.keep_lease); counted from its start it
    # would have lived 2 s longer.
    assert result["past_deadline"] < 1.5, result
