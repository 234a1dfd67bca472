"""The reconnect policy (ARCHITECTURE.md), as a pure function: decide(state, event) -> Decision.

A crash or a hang is restarted with exponential backoff and jitter, reset after a healthy period; a
reconnect after a lost connection is counted; logged out stops, deletes the credentials and waits for a
new link (a start request newer than the stop); stream replaced waits and backs off; a temporary ban
waits until it expires; QR timeout stops until a new start request; a failed connect retries on the
backoff schedule. Nothing here touches a process, the database or the clock: the caller passes the time
(`Now`) and the settings (`Timing`), and carries out the Decision.
"""

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from core.retry import backoff

from .. import protocol, session_process


@dataclass(frozen=True, slots=True)
class Timing:
    restart_base: float
    restart_cap: float
    stream_replaced_wait: float
    healthy_seconds: float
    backoff: Callable[[int, float, float], float] = backoff  # (attempt, base, cap) -> seconds

    @classmethod
    def from_settings(cls) -> "Timing":
        from django.conf import settings

        return cls(settings.SESSION_RESTART_BACKOFF_SECONDS, settings.SESSION_RESTART_BACKOFF_MAX_SECONDS,
                   settings.SESSION_STREAM_REPLACED_WAIT_SECONDS, settings.SESSION_HEALTHY_SECONDS)


@dataclass(frozen=True, slots=True)
class Now:
    monotonic: float  # time.monotonic(): when the next start is due
    wall: datetime  # timezone.now(): what the row's next_attempt_at says


@dataclass(frozen=True, slots=True)
class SessionState:
    """What the policy remembers of a session across the processes that run it one after the other."""

    failures: int = 0  # consecutive, for the restart backoff
    replaced: int = 0  # consecutive stream replacements
    was_connected: bool = False  # since its last link: a later "connected" is a reconnect
    hold: str | None = None  # why the running process is being stopped on purpose
    next_start: float | None = 0.0  # monotonic; None: not before a start request newer than stopped_at
    stopped_at: datetime | None = None

    @classmethod
    def waiting_for_link(cls, since: datetime) -> "SessionState":
        """A session found logged out or timed out: it waits for a start request newer than `since`."""
        return cls(next_start=None, stopped_at=since)

    def due(self, now: float) -> bool:
        return self.next_start is not None and self.next_start <= now

    def stopping(self, reason: str) -> "SessionState":
        """Its process is stopped with the worker: no policy applies to its end."""
        return replace(self, hold=self.hold or reason)


# -- the events the policy hears -------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Emitted:
    """A session process reported a backend event; `uptime`: seconds it has run."""

    event: protocol.BackendEvent
    uptime: float = 0.0


@dataclass(frozen=True, slots=True)
class Exited:
    """A session process ended: its exit code, why this side killed it (flood), whether it hung."""

    code: int | None
    uptime: float
    kill_reason: str | None = None
    hung: bool = False


@dataclass(frozen=True, slots=True)
class StartFailed:
    error: str


@dataclass(frozen=True, slots=True)
class Stop:
    """Stop it on purpose and wait for a start request: a logout command (forget), removed, lease lost,
    handed over. `at_once`: stop the process now; a logout first asks the process to unlink."""

    reason: str
    forget: bool = False
    at_once: bool = True


@dataclass(frozen=True, slots=True)
class StartRequested:
    """The row's start_requested_at (the linking socket, Reintentar, a new link)."""

    at: datetime | None


@dataclass(frozen=True, slots=True)
class Starting:
    """A process is being started for it."""


@dataclass(frozen=True, slots=True)
class Started:
    """Its process runs: what ends it decides when the next one starts."""


Event = Emitted | Exited | StartFailed | Stop | StartRequested | Starting | Started


@dataclass(frozen=True, slots=True)
class Decision:
    state: SessionState
    stop: bool = False  # stop the running process now (state.hold says why)
    forget: bool = False  # delete the credentials once no process runs
    plan: bool = False  # a stopped session's next start was decided: write attempt_at to its row
    attempt_at: datetime | None = None  # when it is (None: on a start request)
    count: str | None = None  # the session counter to add one to
    gone: str | None = None  # the process is gone: the status change's detail


def decide(state: SessionState, event: Event, now: Now, timing: Timing) -> Decision:
    match event:
        case Starting():
            return Decision(replace(state, hold=None))
        case Started():
            return Decision(replace(state, next_start=None))
        case StartRequested(at=at):
            if at is not None and state.stopped_at is not None and at > state.stopped_at:
                return Decision(replace(state, next_start=now.monotonic))
            return Decision(state)
        case Stop(reason=reason, forget=forget, at_once=at_once):
            return _hold(state, reason, None, now, forget=forget, stop=at_once)
        case StartFailed(error=error):
            return _restart(state, 0.0, now, timing, f"start_failed: {error}")
        case Exited():
            return _exited(state, event, now, timing)
        case Emitted():
            return _emitted(state, event, now, timing)
    raise TypeError(f"not a policy event: {event!r}")


def _emitted(state: SessionState, emitted: Emitted, now: Now, timing: Timing) -> Decision:
    healthy = _healthy(emitted.uptime, timing)
    match emitted.event:
        case protocol.Connected():
            return Decision(replace(state, was_connected=True), count="reconnects" if state.was_connected else None)
        case protocol.Paired():  # a new link is not a reconnect
            return Decision(replace(state, was_connected=False))
        case protocol.LoggedOut():
            return _hold(replace(state, was_connected=False), "logged_out", None, now, forget=True)
        case protocol.QrTimeout():
            return _hold(state, "qr_timeout", None, now)
        case protocol.TemporaryBan(expire_seconds=expire):
            expire = float(expire or 0)
            return _hold(state, "banned", expire if expire > 0 else None, now)
        case protocol.StreamReplaced():
            replaced = (0 if healthy else state.replaced) + 1
            wait = timing.stream_replaced_wait
            after = timing.backoff(replaced, wait, max(wait, timing.restart_cap))
            return _hold(replace(state, replaced=replaced), "stream_replaced", after, now)
        case protocol.ConnectFailure():
            failures = (0 if healthy else state.failures) + 1
            after = timing.backoff(failures, timing.restart_base, timing.restart_cap)
            return _hold(replace(state, failures=failures), "connect_failure", after, now)
    return Decision(state)


def _exited(state: SessionState, event: Exited, now: Now, timing: Timing) -> Decision:
    if state.hold is not None:
        return Decision(state)  # stopped on purpose: its policy already said what comes next
    if event.code == session_process.EXIT_LEASE_LOST:  # this worker could not renew in time: not a failure
        return Decision(replace(state, next_start=now.monotonic))  # again once the lease is trusted, if held
    if event.kill_reason is not None:
        detail = event.kill_reason
    elif event.hung:
        detail = "no_heartbeat: the session process stopped answering"
    else:
        detail = f"process_exited: {session_process.describe_exit(event.code)}"
    return _restart(state, event.uptime, now, timing, detail)


def _restart(state: SessionState, uptime: float, now: Now, timing: Timing, detail: str) -> Decision:
    failures = (0 if _healthy(uptime, timing) else state.failures) + 1
    after = timing.backoff(failures, timing.restart_base, timing.restart_cap)
    planned = _plan(replace(state, failures=failures), after, now)
    return replace(planned, count="process_restarts", gone=detail)


def _hold(state: SessionState, reason: str, after: float | None, now: Now, forget: bool = False,
          stop: bool = True) -> Decision:
    """Stop on purpose; start again after `after` seconds, or (None) on a new start request."""
    return replace(_plan(replace(state, hold=reason), after, now), stop=stop, forget=forget)


def _plan(state: SessionState, after: float | None, now: Now) -> Decision:
    """The one place a stopped session's next start is decided: in `after` seconds, or (None) on a
    start request newer than now. The row's next_attempt_at says the same to the web side, which
    tells it to the linking socket and moves it to now by a start request."""
    next_start = None if after is None else now.monotonic + after
    attempt_at = None if after is None else now.wall + timedelta(seconds=after)
    return Decision(replace(state, next_start=next_start, stopped_at=now.wall), plan=True, attempt_at=attempt_at)


def _healthy(uptime: float, timing: Timing) -> bool:
    return uptime > 0 and uptime >= timing.healthy_seconds
