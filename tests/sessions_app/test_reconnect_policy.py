"""The reconnect policy (sessions_app.worker.policy) case by case, without processes: what a session's
event or its process's end means for it (ARCHITECTURE.md, "Reconnect policy")."""

from datetime import datetime, timedelta, timezone

import pytest

from core.retry import backoff
from sessions_app import session_process
from sessions_app.protocol import (
    ConnectFailure, Connected, Disconnected, Error, KeepaliveRestored, KeepaliveTimeout, LoggedOut, Paired, Qr,
    QrTimeout, Receipt, StreamReplaced, TemporaryBan,
)
from sessions_app.worker.policy import (
    Emitted, Exited, Now, SessionState, Started, StartFailed, Starting, StartRequested, Stop, Timing, decide,
)

WALL = datetime(2026, 12, 4, 12, 0, tzinfo=timezone.utc)
NOW = Now(monotonic=1000.0, wall=WALL)


def full_wait(attempt: int, base: float, cap: float) -> float:
    """The schedule without its jitter, so a test can say exactly when the next start is."""
    return min(cap, base * 2 ** max(0, attempt - 1))


TIMING = Timing(restart_base=2.0, restart_cap=300.0, stream_replaced_wait=60.0, healthy_seconds=60.0,
                backoff=full_wait)
RUNNING = SessionState(next_start=None)  # a process runs for it


def at(seconds: float) -> tuple[float, datetime]:
    return NOW.monotonic + seconds, WALL + timedelta(seconds=seconds)


def assert_planned(decision, seconds: float | None) -> None:
    """The next start, as the worker keeps it and as the row's next_attempt_at says it."""
    assert decision.plan
    assert decision.state.stopped_at == WALL
    if seconds is None:
        assert decision.state.next_start is None and decision.attempt_at is None
    else:
        assert (decision.state.next_start, decision.attempt_at) == at(seconds)


def test_a_transient_loss_changes_nothing_and_the_reconnect_is_counted():
    state = decide(RUNNING, Emitted(Connected("51987654321"), uptime=3), NOW, TIMING)
    assert state.count is None and state.state.was_connected and not state.stop and not state.plan
    lost = decide(state.state, Emitted(Disconnected("connection_lost"), uptime=50), NOW, TIMING)
    assert lost.state == state.state and not lost.stop and not lost.plan and lost.gone is None
    again = decide(lost.state, Emitted(Connected("51987654321"), uptime=90), NOW, TIMING)
    assert again.count == "reconnects" and not again.stop


def test_a_new_link_is_not_a_reconnect():
    linked = SessionState(was_connected=True, next_start=None)
    paired = decide(linked, Emitted(Paired("51987654321")), NOW, TIMING)
    assert decide(paired.state, Emitted(Connected(None)), NOW, TIMING).count is None


def test_logged_out_stops_forgets_the_credentials_and_waits_for_a_new_link():
    d = decide(SessionState(was_connected=True, next_start=None),
               Emitted(LoggedOut("device_removed"), uptime=500), NOW, TIMING)
    assert d.stop and d.forget and d.state.hold == "logged_out" and not d.state.was_connected
    assert_planned(d, None)
    assert d.gone is None and d.count is None  # its status is the event's own, not "process gone"
    # Its process's end changes nothing more; only a start request newer than the stop starts it.
    ended = decide(d.state, Exited(session_process.EXIT_OK, uptime=501), NOW, TIMING)
    assert ended.state == d.state and not ended.plan and ended.gone is None
    later = Now(2000.0, WALL + timedelta(hours=1))
    assert not decide(ended.state, StartRequested(WALL - timedelta(seconds=1)), later, TIMING).state.due(2000.0)
    assert not decide(ended.state, StartRequested(None), later, TIMING).state.due(2000.0)
    requested = decide(ended.state, StartRequested(WALL + timedelta(seconds=1)), later, TIMING)
    assert requested.state.due(2000.0) and not requested.plan


def test_a_stream_replaced_waits_then_backs_off_and_never_loops():
    state, waits = RUNNING, []
    for _ in range(5):
        d = decide(state, Emitted(StreamReplaced(), uptime=5), NOW, TIMING)
        assert d.stop and d.state.hold == "stream_replaced" and not d.forget
        waits.append(d.state.next_start - NOW.monotonic)
        assert d.attempt_at == WALL + timedelta(seconds=waits[-1])
        state = decide(d.state, Started(), NOW, TIMING).state
    assert waits == [60.0, 120.0, 240.0, 300.0, 300.0]
    # After a healthy period it starts again from the first wait.
    healthy = decide(state, Emitted(StreamReplaced(), uptime=61), NOW, TIMING)
    assert healthy.state.next_start - NOW.monotonic == 60.0 and healthy.state.replaced == 1


def test_a_stream_replaced_wait_is_never_shorter_than_the_wait_itself():
    short_cap = Timing(2.0, 30.0, 60.0, 60.0, backoff=full_wait)
    d = decide(RUNNING, Emitted(StreamReplaced(), uptime=5), NOW, short_cap)
    assert d.state.next_start - NOW.monotonic == 60.0


def test_a_temporary_ban_waits_until_it_expires():
    d = decide(RUNNING, Emitted(TemporaryBan(101, 3600), uptime=9), NOW, TIMING)
    assert d.stop and d.state.hold == "banned" and not d.forget
    assert_planned(d, 3600)
    assert not d.state.due(NOW.monotonic + 3599) and d.state.due(NOW.monotonic + 3600)


def test_a_ban_without_expiry_waits_for_a_start_request():
    d = decide(RUNNING, Emitted(TemporaryBan(102, 0)), NOW, TIMING)
    assert d.stop and d.state.hold == "banned"
    assert_planned(d, None)


def test_a_qr_timeout_stops_until_a_new_start_request():
    d = decide(RUNNING, Emitted(QrTimeout(), uptime=160), NOW, TIMING)
    assert d.stop and d.state.hold == "qr_timeout" and not d.forget and d.gone is None
    assert_planned(d, None)


def test_a_connect_failure_retries_on_the_backoff_schedule():
    state, waits = RUNNING, []
    for _ in range(10):
        d = decide(state, Emitted(ConnectFailure("service_unavailable", "503"),
                                  uptime=1), NOW, TIMING)
        assert d.stop and d.state.hold == "connect_failure"
        waits.append(d.attempt_at - WALL)
        state = decide(decide(d.state, Starting(), NOW, TIMING).state, Started(), NOW, TIMING).state
    assert [w.total_seconds() for w in waits] == [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
    assert state.failures == 10


def test_the_schedule_has_its_jitter():
    real = Timing(2.0, 300.0, 60.0, 60.0)  # core.retry.backoff
    assert real.backoff is backoff
    waits = {decide(SessionState(failures=2, next_start=None), Emitted(ConnectFailure("service_unavailable", "503")), NOW, real)
             .state.next_start - NOW.monotonic for _ in range(100)}
    assert len(waits) > 50 and all(4.0 <= w <= 8.0 for w in waits)  # attempt 3 of 2 s: half to all of 8 s


@pytest.mark.parametrize("code,kill_reason,hung,detail", [
    (-9, None, False, "process_exited: killed by SIGKILL"),
    (session_process.EXIT_CRASHED, None, False, "process_exited: crashed"),
    (session_process.EXIT_CONNECT_FAILED, None, False, "process_exited: connect failed"),
    (-9, None, True, "no_heartbeat: the session process stopped answering"),
    (-9, "flood: more than 2000 messages in a second", False, "flood: more than 2000 messages in a second"),
])
def test_a_crash_or_a_hang_restarts_with_backoff(code, kill_reason, hung, detail):
    d = decide(SessionState(failures=2, next_start=None), Exited(code, 5.0, kill_reason, hung), NOW, TIMING)
    assert d.gone == detail and d.count == "process_restarts" and not d.stop and not d.forget
    assert d.state.failures == 3
    assert_planned(d, 8.0)


def test_the_backoff_starts_over_after_a_healthy_period():
    failing = SessionState(failures=6, next_start=None)
    assert decide(failing, Exited(-9, 59.0), NOW, TIMING).state.failures == 7
    healthy = decide(failing, Exited(-9, 60.0), NOW, TIMING)
    assert healthy.state.failures == 1 and healthy.state.next_start - NOW.monotonic == 2.0


def test_a_process_that_could_not_be_started_is_tried_again_on_the_schedule():
    d = decide(SessionState(failures=1), StartFailed("OSError: [Errno 24] Too many open files"), NOW, TIMING)
    assert d.gone == "start_failed: OSError: [Errno 24] Too many open files"
    assert d.count == "process_restarts" and d.state.failures == 2
    assert_planned(d, 4.0)


def test_a_lease_not_renewed_in_time_is_no_failure():
    d = decide(SessionState(failures=3, next_start=None), Exited(session_process.EXIT_LEASE_LOST, 30.0), NOW, TIMING)
    assert d.state.next_start == NOW.monotonic and d.state.failures == 3
    assert not d.plan and d.gone is None and d.count is None


def test_a_process_stopped_on_purpose_is_not_restarted():
    for reason in ("removed", "lease_lost", "handed_over"):
        held = decide(RUNNING, Stop(reason), NOW, TIMING)
        assert held.stop and not held.forget and held.state.hold == reason
        assert_planned(held, None)
        ended = decide(held.state, Exited(-15, 100.0), NOW, TIMING)
        assert ended.state == held.state and ended.gone is None and ended.count is None


def test_a_logout_command_forgets_the_credentials_and_lets_the_process_unlink_first():
    d = decide(RUNNING, Stop("logged_out", forget=True, at_once=False), NOW, TIMING)
    assert not d.stop and d.forget and d.state.hold == "logged_out"
    assert_planned(d, None)


def test_a_start_request_starts_a_waiting_session_at_once():
    waiting = SessionState.waiting_for_link(WALL)
    assert not waiting.due(NOW.monotonic)
    d = decide(waiting, StartRequested(WALL + timedelta(milliseconds=1)), NOW, TIMING)
    assert d.state.due(NOW.monotonic) and not d.plan and not d.stop
    # One in backoff too: the socket's request cuts its wait short.
    backing_off = decide(RUNNING, Emitted(ConnectFailure("service_unavailable", "503")), NOW, TIMING).state
    assert not backing_off.due(NOW.monotonic)
    later = Now(NOW.monotonic + 0.5, WALL + timedelta(seconds=0.5))
    assert decide(backing_off, StartRequested(later.wall), later, TIMING).state.due(later.monotonic)


def test_a_new_process_clears_the_hold_and_runs_until_its_end_decides():
    held = decide(RUNNING, Emitted(QrTimeout()), NOW, TIMING).state
    starting = decide(held, Starting(), NOW, TIMING).state
    assert starting.hold is None and starting.next_start is None  # next_start: still on request
    started = decide(SessionState(), Started(), NOW, TIMING).state
    assert started.next_start is None and not started.due(NOW.monotonic + 10**6)


def test_other_events_change_nothing():
    for event in (Qr("2@abc,k1,k2,k3"), KeepaliveTimeout(), KeepaliveRestored(), Error("handler failed"),
                  Disconnected("connection_lost"), Receipt(("3EB0AAA",), "read", 1.5e9)):
        d = decide(RUNNING, Emitted(event), NOW, TIMING)
        assert d.state == RUNNING and not (d.stop or d.forget or d.plan or d.count or d.gone)
