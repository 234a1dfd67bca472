"""The session supervisor through its real entry point, `manage.py runworker`, with the simulator backend:
real session processes, real signals, the test's own database shared with the worker."""

import os
import re
import signal
import stat
import time
from datetime import datetime

import pytest
from django.utils import timezone

from sessions_app.config_file import SessionEntry, add_session_to_config
from sessions_app.ids import session_dir
from sessions_app.models import SessionStatus, WhatsAppSession
from simulator.models import SimulatorControl
from tests.processes import alive, descendants, runworker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

WAIT = 30  # generous: only for waiting, never a performance assertion
FAST = {
    "SESSION_POLL_SECONDS": "0.1",
    "SESSION_HEARTBEAT_SECONDS": "0.2",
    "SESSION_HEARTBEAT_TIMEOUT_SECONDS": "3",  # well above the beat, so a loaded machine is not a hang
    "SESSION_RESTART_BACKOFF_SECONDS": "0.2",
    "SESSION_RESTART_BACKOFF_MAX_SECONDS": "1",
    "SESSION_STOP_TIMEOUT_SECONDS": "2",
    "SIMULATOR_RECONNECT_MS": "300",
}
STARTED = re.compile(r"session (\S+): process (\d+) started")


@pytest.fixture
def start_worker(configured, tmp_path):
    workers = []

    def start(**env: str):
        worker = runworker(tmp_path, **{**FAST, **env}).start()
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


def wait_for(predicate, what: str, timeout: float = WAIT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def row(session_id: str) -> WhatsAppSession:
    return WhatsAppSession.objects.get(session_id=session_id)


def wait_status(session_id: str, status: str, worker=None) -> WhatsAppSession:
    try:
        return wait_for(lambda: (r := row(session_id)).status == status and r, f"{session_id} {status}")
    except AssertionError:
        if worker is not None:
            print(worker.output())
        raise


def starts(worker, session_id: str) -> list[int]:
    """The pids of the session processes the worker started for this session, in order."""
    return [int(pid) for sid, pid in STARTED.findall(worker.output()) if sid == session_id]


def phone_action(session_id: str, action: str, **payload) -> None:
    """What the simulated phone does (the /api/simulator endpoints write exactly this row)."""
    SimulatorControl.objects.create(session_id=session_id, action=action, payload=payload)


def link(session_id: str, worker, phone: str = "51900000001") -> int:
    """QR shown, scanned, connected; returns the session process's pid."""
    wait_status(session_id, SessionStatus.QR, worker)
    phone_action(session_id, "scan", phone=phone)
    wait_status(session_id, SessionStatus.CONNECTED, worker)
    return starts(worker, session_id)[-1]


def test_qr_scan_connects_and_the_credentials_survive_a_new_process(start_worker):
    worker = start_worker()
    qr = wait_status("tienda_lima", SessionStatus.QR, worker).qr
    assert qr.startswith("2@") and qr.count(",") == 3  # whatsmeow's shape: ref, three keys
    phone_action("tienda_lima", "scan", phone="51911111111")
    connected = wait_status("tienda_lima", SessionStatus.CONNECTED, worker)
    assert (connected.phone, connected.qr, connected.last_error) == ("51911111111", "", "")

    store = session_dir("tienda_lima")
    assert stat.S_IMODE(store.stat().st_mode) == 0o700
    assert any(store.iterdir())

    worker.stop()
    assert row("tienda_lima").status == SessionStatus.STOPPED
    worker = start_worker()
    # Linked before: the new process connects with nobody scanning anything.
    assert wait_status("tienda_lima", SessionStatus.CONNECTED, worker).phone == "51911111111"


def test_a_dropped_connection_reconnects_by_itself_and_a_remote_logout_does_not_loop(start_worker):
    worker = start_worker()
    pid = link("tienda_lima", worker)
    phone_action("tienda_lima", "drop")
    wait_status("tienda_lima", SessionStatus.DISCONNECTED, worker)
    wait_status("tienda_lima", SessionStatus.CONNECTED, worker)
    assert starts(worker, "tienda_lima") == [pid]  # the same process: the client reconnected

    phone_action("tienda_lima", "logout")
    logged_out = wait_status("tienda_lima", SessionStatus.LOGGED_OUT, worker)
    assert logged_out.last_error == "logged_out: device_removed"
    assert logged_out.phone == ""
    wait_for(lambda: not alive(pid), "the logged-out process to end")
    wait_for(lambda: not session_dir("tienda_lima").exists(), "the stale credentials to be deleted")
    time.sleep(2)  # many poll turns and backoff periods: nothing may start it again
    assert starts(worker, "tienda_lima") == [pid]
    assert row("tienda_lima").status == SessionStatus.LOGGED_OUT

    # A new link is asked (what opening the linking socket does): a fresh process shows a QR.
    WhatsAppSession.objects.filter(session_id="tienda_lima").update(start_requested_at=timezone.now())
    wait_status("tienda_lima", SessionStatus.QR, worker)
    assert len(starts(worker, "tienda_lima")) == 2


def test_qr_codes_rotate_then_time_out_and_wait_for_a_start_request(start_worker):
    worker = start_worker(SIMULATOR_QR_FIRST_SECONDS="0.6", SIMULATOR_QR_NEXT_SECONDS="0.3", SIMULATOR_QR_COUNT="3",
                          PRINT_QR="true")
    codes = set()

    def timed_out():
        r = row("tienda_lima")
        if r.qr:
            codes.add(r.qr)
        return r.status == SessionStatus.DISCONNECTED and r

    timed_out_row = wait_for(timed_out, "the QR timeout")
    assert timed_out_row.last_error == "qr_timeout"
    assert timed_out_row.qr == ""
    assert len(codes) == 3
    # Each code also drawn in the terminal, for whoever runs the service by hand.
    assert worker.wait_output("Sesión tienda_lima: escanee este QR", 3).count("Sesión tienda_lima: escanee este QR") == 3
    assert "█ ▄▄▄▄▄ █" in worker.output()  # a finder pattern's top edge
    time.sleep(1.5)
    assert len(starts(worker, "tienda_lima")) == 1
    WhatsAppSession.objects.filter(session_id="tienda_lima").update(start_requested_at=timezone.now())
    wait_status("tienda_lima", SessionStatus.QR, worker)
    assert len(starts(worker, "tienda_lima")) == 2


def test_a_killed_or_hanging_session_process_is_replaced_and_the_other_session_stays_connected(start_worker):
    worker = start_worker(SESSION_RESTART_BACKOFF_SECONDS="1")
    lima = link("tienda_lima", worker)
    cusco = link("tienda_cusco", worker)

    os.kill(lima, signal.SIGKILL)
    # At once: the row no longer claims a connection its process cannot have.
    gone = wait_status("tienda_lima", SessionStatus.DISCONNECTED, worker)
    assert gone.last_error == "process_exited: killed by SIGKILL"
    cusco_statuses = set()

    def back(session_id: str, processes: int):
        def check():
            cusco_statuses.add(row("tienda_cusco").status)
            return len(starts(worker, session_id)) == processes and row(session_id).status == SessionStatus.CONNECTED

        return check

    wait_for(back("tienda_lima", 2), "tienda_lima to be restarted and connected")
    assert cusco_statuses == {SessionStatus.CONNECTED}
    assert starts(worker, "tienda_cusco") == [cusco] and alive(cusco)

    lima = starts(worker, "tienda_lima")[-1]
    os.kill(lima, signal.SIGSTOP)  # alive but silent: only the missing heartbeat gives it away
    try:
        wait_for(back("tienda_lima", 3), "a new process for the hanging tienda_lima")
    finally:
        if alive(lima):
            os.kill(lima, signal.SIGCONT)
    assert not alive(lima)
    assert "tienda_lima: no heartbeat" in worker.wait_output("tienda_lima: no heartbeat")
    assert cusco_statuses == {SessionStatus.CONNECTED}
    assert starts(worker, "tienda_cusco") == [cusco]


def logged_at(worker, pattern: str) -> list[datetime]:
    """When the worker logged lines matching `pattern` (its log lines start with their time)."""
    return [
        datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
        for line in worker.output().splitlines()
        if re.search(pattern, line)
    ]


def seconds_between(earlier: datetime, later: datetime) -> float:
    return (later - earlier).total_seconds()


def test_stream_replaced_waits_longer_each_time_and_a_ban_waits_until_it_expires(start_worker):
    # The backoff cap above the doubled wait (FAST caps it at 1 s: 0.5 to 1 s, not 0.6 to 1.2).
    worker = start_worker(SESSION_STREAM_REPLACED_WAIT_SECONDS="0.6", SESSION_RESTART_BACKOFF_MAX_SECONDS="5")
    link("tienda_lima", worker)
    for replacements in (1, 2):
        phone_action("tienda_lima", "replace")
        replaced = wait_status("tienda_lima", SessionStatus.DISCONNECTED, worker)
        assert replaced.last_error == "stream_replaced"
        wait_for(lambda: len(starts(worker, "tienda_lima")) == replacements + 1 and
                 row("tienda_lima").status == SessionStatus.CONNECTED, "the number back after the replacement")
    held = logged_at(worker, r"tienda_lima: stream_replaced")
    started = logged_at(worker, r"tienda_lima: process \d+ started")
    # Never at once: 0.6 s (with jitter: 0.3 to 0.6) the first time, then twice that.
    assert seconds_between(held[0], started[1]) >= 0.3
    assert seconds_between(held[1], started[2]) >= 0.6

    phone_action("tienda_lima", "ban", expire_seconds=1)
    banned = wait_status("tienda_lima", SessionStatus.BANNED, worker)
    assert banned.last_error == "temporary_ban: code 101, expires in 1 s"
    wait_for(lambda: len(starts(worker, "tienda_lima")) == 4 and
             row("tienda_lima").status == SessionStatus.CONNECTED, "the number back after the ban")
    assert seconds_between(logged_at(worker, r"tienda_lima: banned")[0], logged_at(worker, r"tienda_lima: process \d+ started")[-1]) >= 1


def test_a_session_added_later_is_started(start_worker):
    worker = start_worker()
    wait_status("tienda_lima", SessionStatus.QR, worker)
    add_session_to_config(SessionEntry("tienda_trujillo", "Sede Trujillo"))
    WhatsAppSession.objects.create(session_id="tienda_trujillo", description="Sede Trujillo")
    wait_status("tienda_trujillo", SessionStatus.QR, worker)
    assert len(starts(worker, "tienda_trujillo")) == 1


def test_sigterm_stops_every_session_process_and_leaves_no_child(start_worker):
    worker = start_worker()
    link("tienda_lima", worker)
    wait_status("tienda_cusco", SessionStatus.QR, worker)
    children = descendants(worker.proc.pid)
    session_pids = {*starts(worker, "tienda_lima"), *starts(worker, "tienda_cusco")}
    assert session_pids <= children  # and the forkserver they were forked from
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.proc.wait(WAIT) == 0
    wait_for(lambda: not any(alive(pid) for pid in children), "every child process to end", timeout=5)
    assert "session tienda_lima: process %d ended" % starts(worker, "tienda_lima")[-1] in worker.output()
    statuses = {r.session_id: r.status for r in WhatsAppSession.objects.all()}
    assert statuses == {"tienda_lima": SessionStatus.STOPPED, "tienda_cusco": SessionStatus.STOPPED}


def test_killing_the_worker_takes_its_session_processes_along(start_worker):
    worker = start_worker()
    wait_status("tienda_lima", SessionStatus.QR, worker)
    wait_status("tienda_cusco", SessionStatus.QR, worker)
    children = descendants(worker.proc.pid)
    assert len(children) >= 3
    os.kill(worker.proc.pid, signal.SIGKILL)  # no clean shutdown: only the death signal and the pipe
    worker.proc.wait(WAIT)
    wait_for(lambda: not any(alive(pid) for pid in children), "orphaned session processes to end", timeout=10)
