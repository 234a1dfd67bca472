"""The session supervisor: a session process for every configured session, kept alive and honest.

It lives on one long-lived asyncio loop: runworker's, or the web server's in embedded mode (so the
in-memory channel layer reaches the sockets). Blocking work runs on threads: all database work on one
thread, in order (a session's changes are saved in the order they happened); process starts and pipe
writes on others. Every few hundred milliseconds it reads the configured sessions, start requests and
SessionCommand rows; a process's events and exit arrive as soon as the pipe or its sentinel is readable.

Reconnect policy (ARCHITECTURE.md): a crash or a hang is restarted with exponential backoff and jitter,
reset after a healthy period; logged out stops, deletes the credentials and waits for a new link
(start_requested_at newer than the stop); stream replaced waits and backs off; a temporary ban waits
until it expires; QR timeout stops until a new start request; a failed connect retries on the backoff
schedule.
"""

import asyncio
import inspect
import logging
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from channels.layers import get_channel_layer
from django.conf import settings
from django.utils import timezone

from core.db_threads import in_db_thread, with_fresh_connection
from core.retry import backoff

from . import protocol, session_commands, session_leases, session_process, session_state, signals, worker_heartbeat
from .backends import backend_class
from .models import SessionCommand, SessionStatus, WhatsAppSession
from .session_handle import CommandTimeout, SessionHandle, SessionUnavailable
from .supervisor_leases import LeaseKeeping

log = logging.getLogger(__name__)

__all__ = ["CommandTimeout", "SessionUnavailable", "Supervisor"]


@dataclass(eq=False)
class Slot:
    """A configured session, across the processes that run it one after the other."""

    session_id: str
    handle: SessionHandle | None = None  # while a process runs
    failures: int = 0  # consecutive, for the restart backoff
    replaced: int = 0  # consecutive stream replacements
    next_start: float | None = 0.0  # monotonic; None: not before a start request newer than stopped_at
    stopped_at: datetime | None = None
    hold: str | None = None  # why the process is being stopped on purpose
    forget: bool = False  # delete the credentials once the process is gone
    retire: bool = False  # drop the slot once the process is gone
    hung: bool = False
    starting: bool = False
    was_connected: bool = False  # since its last link: a later "connected" is a reconnect
    epoch: int | None = None  # of the session lease its process runs under


class Supervisor(LeaseKeeping):
    def __init__(self, backend: str | None = None, print_qr: bool | None = None, capacity: int | None = None):
        self.backend = backend or settings.WHATSAPP_BACKEND
        self.capacity = settings.WORKER_CAPACITY if capacity is None else capacity
        backend_class(self.backend)  # an unknown name fails here, not in every session process
        if print_qr is None:
            print_qr = settings.PRINT_QR
        self.print_qr = (settings.DEBUG or sys.stdout.isatty()) if print_qr is None else print_qr
        self.slots: dict[str, Slot] = {}
        self._take_controls = backend_class(self.backend).take_controls
        self.loop: asyncio.AbstractEventLoop | None = None
        self._db = ThreadPoolExecutor(1, thread_name_prefix="supervisor-db")
        self._spawner = ThreadPoolExecutor(1, thread_name_prefix="supervisor-spawn")
        self._writers = ThreadPoolExecutor(8, thread_name_prefix="supervisor-pipe")
        self._tasks: set[asyncio.Task] = set()
        self._stopping = asyncio.Event()
        # Channel-layer messages, sent one after the other: a listener sees them in the order they happened.
        self._outbox: asyncio.Queue[tuple[str, dict]] = asyncio.Queue()
        self._main_task: asyncio.Task | None = None
        self.worker_id = worker_heartbeat.new_worker_id()
        self._started_at = timezone.now()
        # The sessions this worker holds (session_leases): id -> epoch; trusted until _lease_until (monotonic).
        self.leases: dict[str, int] = {}
        self._lease_until = float("-inf")
        self._last_turn = float("-inf")
        self._handing_over: set[str] = set()

    # -- public ----------------------------------------------------------------------------------
    async def start(self) -> None:
        """Start supervising on the running loop; returns at once."""
        self.loop = asyncio.get_running_loop()
        self._main_task = self.loop.create_task(self._main(), name="session-supervisor")

    async def stop(self) -> None:
        """Stop every session process (stop command, then terminate, then kill) and return."""
        self._stopping.set()
        if self._main_task is not None:
            await self._main_task

    async def wait(self) -> None:
        """Until the supervisor has stopped."""
        await self._main_task

    def is_running(self, session_id: str) -> bool:
        return self._handle(session_id) is not None

    def _handle(self, session_id: str) -> SessionHandle | None:
        slot = self.slots.get(session_id)
        return slot.handle if slot is not None and slot.handle is not None and slot.handle.running else None

    async def call(self, session_id: str, command: dict, timeout: float) -> dict:
        """Send a command (protocol.py: send_document, check_numbers, pairing_code, logout) to the
        session's process and return its reply ({"ok", "result", "error", "error_code"}). Raises
        SessionUnavailable when no process runs for it, CommandTimeout when no reply comes in time.
        Call it on the supervisor's loop."""
        handle = self._handle(session_id)
        if handle is None:
            raise SessionUnavailable(f"no session process runs for {session_id}")
        return await handle.request(command, timeout)

    # -- the loop ----------------------------------------------------------------------------------
    async def _main(self) -> None:
        await self._in_db(lambda: session_state.mark_all_stopped(session_leases.held_elsewhere(self.worker_id)))
        publisher = self.loop.create_task(self._publisher(), name="session-events")
        log.info("supervisor started as %s (backend %s)", self.worker_id, self.backend)
        signals.supervisor_started.send_robust(sender=Supervisor, supervisor=self)
        try:
            while not self._stopping.is_set():
                every = min(settings.SESSION_LEASE_RENEW_SECONDS, settings.WORKER_HEARTBEAT_SECONDS)
                if time.monotonic() - self._last_turn >= every:
                    await self._lease_turn()
                try:
                    await self._tick()
                except Exception:
                    log.exception("supervisor: a turn failed; trying again")
                try:
                    await asyncio.wait_for(self._stopping.wait(), settings.SESSION_POLL_SECONDS)
                except TimeoutError:
                    pass
        finally:
            # A receiver may return an awaitable (the dispatcher finishing its sends in flight):
            # the session processes are stopped only after it is done.
            for _, result in signals.supervisor_stopping.send_robust(sender=Supervisor, supervisor=self):
                if inspect.isawaitable(result):
                    try:
                        await result
                    except Exception:
                        log.exception("supervisor: a stopping receiver failed")
            await self._shutdown()
            try:  # the last status changes still reach their listeners
                await asyncio.wait_for(self._outbox.join(), 5)
            except TimeoutError:
                log.warning("supervisor: some session events could not be published")
            publisher.cancel()
            log.info("supervisor stopped")

    async def _tick(self) -> None:
        rows = await self._in_db(lambda: {r.session_id: r for r in WhatsAppSession.objects.filter(in_config=True)})
        now = time.monotonic()
        trusted = self._lease_until - now > 1.0  # a process started now would have time to connect
        for session_id, row in rows.items():
            if session_id not in self.leases:
                continue
            slot = self.slots.get(session_id)
            if slot is None:
                slot = self.slots[session_id] = Slot(session_id)
                if session_state.waits_for_new_link(row):
                    slot.next_start, slot.stopped_at = None, row.updated_at
            if slot.handle is not None or slot.starting or slot.retire:
                continue
            requested = row.start_requested_at
            if requested is not None and slot.stopped_at is not None and requested > slot.stopped_at:
                slot.next_start = now
            if trusted and slot.next_start is not None and slot.next_start <= now:
                slot.starting = True
                slot.hold, slot.forget, slot.hung = None, False, False
                self._spawn_task(self._start(slot))
        for slot in list(self.slots.values()):
            if slot.retire:
                continue
            if slot.session_id not in rows:
                self._retire(slot)
            elif slot.session_id not in self.leases or (slot.handle is not None and slot.epoch != self.leases[slot.session_id]):
                self._give_up(slot, "lease_lost")
            elif slot.handle is not None and not slot.hung:
                silent = now - slot.handle.last_seen
                if silent > settings.SESSION_HEARTBEAT_TIMEOUT_SECONDS:
                    log.warning("session %s: no heartbeat for %.0f s; killing its process", slot.session_id, silent)
                    slot.hung = True
                    slot.handle.kill()
        for command in await self._in_db(session_commands.claim_pending, list(self.slots)):
            self._spawn_task(self._execute(command))
        if self._take_controls is not None:  # the simulator's phone: to the running processes, in order
            running = [s for s in self.slots if self._handle(s) is not None]
            for session_id, control in await self._in_db(self._take_controls, running):
                if (handle := self._handle(session_id)) is not None:
                    try:
                        await handle.send({"cmd": "control", **control})
                    except SessionUnavailable:
                        pass  # it ended meanwhile: the phone's action is lost with it

    # -- processes ---------------------------------------------------------------------------------
    async def _start(self, slot: Slot) -> None:
        epoch = self.leases.get(slot.session_id)
        try:
            # The fence: a process starts only under a lease the database confirms.
            if epoch is None or not await self._in_db(session_leases.holds, self.worker_id, slot.session_id, epoch):
                slot.starting = False
                return  # the next lease turn and tick sort it out
            process, conn = await self.loop.run_in_executor(
                self._spawner, session_process.spawn, slot.session_id, self.backend, self._lease_until,
            )
        except session_process.LeaseExpired:
            slot.starting = False
            log.warning("session %s: its lease could no longer be trusted when its process was to start; not started",
                        slot.session_id)
            return  # the next lease turn and tick sort it out
        except Exception as exc:
            slot.starting = False
            log.exception("session %s: cannot start its process", slot.session_id)
            self._schedule_restart(slot)
            self._save(slot.session_id, session_state.process_gone(f"start_failed: {exc}"))
            return
        slot.starting = False
        slot.epoch = epoch
        slot.next_start = None  # while it runs; what ends it decides when the next one starts
        # Saved before any event of the new process can be: the database thread keeps the order.
        self._save(slot.session_id, session_state.Change(status=SessionStatus.INITIALIZING, qr=""))
        slot.handle = SessionHandle(slot.session_id, process, conn, self._writers,
                                    partial(self._on_message, slot), partial(self._on_exit, slot))
        log.info("session %s: process %d started (epoch %d)", slot.session_id, process.pid, epoch)
        if self._stopping.is_set() or slot.retire or slot.hold is not None:  # decided while it started
            self._spawn_task(self._stop_process(slot))

    def _on_exit(self, slot: Slot, handle: SessionHandle, code: int | None) -> None:
        slot.handle = None
        if self._stopping.is_set():
            return
        if slot.forget:
            slot.forget = False
            self._db.submit(_quietly, session_state.forget_credentials, slot.session_id)
        if slot.retire:
            self.slots.pop(slot.session_id, None)
            return
        if slot.hold is not None:
            return  # stopped on purpose: its policy already said what comes next
        if code == session_process.EXIT_LEASE_LOST:  # this worker could not renew in time: not a failure
            slot.next_start = time.monotonic()  # again as soon as the lease is trusted, if still held
            return
        if handle.kill_reason is not None:
            detail = handle.kill_reason
        elif slot.hung:
            detail = "no_heartbeat: the session process stopped answering"
        else:
            detail = f"process_exited: {session_process.describe_exit(code)}"
        self._schedule_restart(slot, handle.started_at)  # first: the status event says when the next start is
        self._save(slot.session_id, session_state.process_gone(detail))

    def _schedule_restart(self, slot: Slot, started_at: float = 0.0) -> None:
        if self._healthy(started_at):
            slot.failures = 0
        slot.failures += 1
        delay = backoff(slot.failures, settings.SESSION_RESTART_BACKOFF_SECONDS,
                        settings.SESSION_RESTART_BACKOFF_MAX_SECONDS)
        self._plan_start(slot, delay)
        self._db.submit(_quietly, session_state.count, slot.session_id, "process_restarts")
        log.info("session %s: next start in %.1f s (attempt %d)", slot.session_id, delay, slot.failures)

    @staticmethod
    def _healthy(started_at: float) -> bool:
        return started_at > 0 and time.monotonic() - started_at >= settings.SESSION_HEALTHY_SECONDS

    async def _stop_process(self, slot: Slot) -> None:
        if slot.handle is not None:
            await slot.handle.stop(settings.SESSION_STOP_TIMEOUT_SECONDS)

    # -- events and policy -------------------------------------------------------------------------
    def _on_message(self, slot: Slot, handle: SessionHandle, message: object) -> None:
        name = protocol.kind(message)
        if name is None:
            log.warning("session %s: unknown message %.200r", slot.session_id, message)
            return
        if name == "receipt":  # nothing to save: announced at once, here on the loop
            session_state.apply_event(slot.session_id, message)
            return
        if name == "qr" and self.print_qr:
            self._print_qr(slot.session_id, str(message.get("data") or ""))
        elif name == "connected":
            if slot.was_connected:
                self._db.submit(_quietly, session_state.count, slot.session_id, "reconnects")
            slot.was_connected = True
        elif name in ("paired", "logged_out"):  # a new link is not a reconnect
            slot.was_connected = False
        if name == "logged_out":
            self._hold(slot, "logged_out", forget=True)
        elif name == "qr_timeout":
            self._hold(slot, "qr_timeout")
        elif name == "temporary_ban":
            expire = float(message.get("expire_seconds") or 0)
            self._hold(slot, "banned", after=expire if expire > 0 else None)
        elif name == "stream_replaced":
            slot.replaced = (0 if self._healthy(handle.started_at) else slot.replaced) + 1
            wait = settings.SESSION_STREAM_REPLACED_WAIT_SECONDS
            cap = max(wait, settings.SESSION_RESTART_BACKOFF_MAX_SECONDS)
            self._hold(slot, "stream_replaced", after=backoff(slot.replaced, wait, cap))
        elif name == "connect_failure":
            slot.failures = (0 if self._healthy(handle.started_at) else slot.failures) + 1
            after = backoff(slot.failures, settings.SESSION_RESTART_BACKOFF_SECONDS,
                            settings.SESSION_RESTART_BACKOFF_MAX_SECONDS)
            self._hold(slot, "connect_failure", after=after)
        elif name == "error":
            log.error("session %s: %s", slot.session_id, message.get("message"))
        # Fenced: a worker that was paused past its lease must not overwrite what the new holder wrote.
        self._db.submit(_quietly, self._as_holder, slot.session_id, slot.epoch, session_state.apply_event,
                        slot.session_id, message, self._publish)

    def _hold(self, slot: Slot, reason: str, after: float | None = None, forget: bool = False,
              stop: bool = True) -> None:
        """Stop on purpose; start again after `after` seconds, or (None) on a new start request."""
        slot.hold = reason
        slot.forget = slot.forget or forget
        self._plan_start(slot, after)
        log.info("session %s: %s; %s", slot.session_id, reason,
                 "waiting for a start request" if after is None else f"next start in {after:.1f} s")
        if stop:
            self._spawn_task(self._stop_process(slot))

    def _plan_start(self, slot: Slot, after: float | None) -> None:
        """The one place a stopped session's next start is decided: in `after` seconds, or (None) on a
        start request newer than now. The row's next_attempt_at says the same to the web side, which
        tells it to the linking socket and moves it to now by a start request."""
        slot.stopped_at = timezone.now()
        slot.next_start = None if after is None else time.monotonic() + after
        if not slot.retire:  # a slot given up or removed writes nothing more about its session
            at = None if after is None else slot.stopped_at + timedelta(seconds=after)
            self._db.submit(_quietly, self._as_holder, slot.session_id, self.leases.get(slot.session_id),
                            session_state.plan_attempt, slot.session_id, at)

    def _retire(self, slot: Slot) -> None:
        """No longer configured: stop it and forget the slot."""
        slot.retire = True
        self._save(slot.session_id, session_state.Change(status=SessionStatus.STOPPED, qr=""))
        if slot.handle is None:
            self.slots.pop(slot.session_id, None)
        else:
            self._hold(slot, "removed")

    def _print_qr(self, session_id: str, data: str) -> None:
        import segno

        print(f"\nSesión {session_id}: escanee este QR en WhatsApp > Dispositivos vinculados", flush=True)
        segno.make(data, error="l", micro=False).terminal(compact=True)
        sys.stdout.flush()

    # -- commands from web processes ---------------------------------------------------------------
    async def _execute(self, command: SessionCommand) -> None:
        session_id, result, error_code, error = command.session_id, None, None, ""
        try:
            if command.kind == SessionCommand.Kind.PAIRING_CODE:
                phone = str((command.payload or {}).get("phone") or "")
                reply = await self.call(session_id, {"cmd": "pairing_code", "phone": phone}, timeout=10)
                if reply["ok"]:
                    result = reply["result"]
                else:
                    error_code, error = reply["error_code"] or "error", reply["error"] or ""
            elif command.kind in (SessionCommand.Kind.LOGOUT, SessionCommand.Kind.DELETE):
                await self._log_out(session_id)
                if command.kind == SessionCommand.Kind.DELETE:
                    await self._in_db(_unconfigure, session_id)
                    self.slots.pop(session_id, None)
                result = {}
            else:
                error_code, error = "unknown_command", f"unknown command {command.kind!r}"
        except SessionUnavailable as exc:
            error_code, error = "session_not_running", str(exc)
        except CommandTimeout as exc:
            error_code, error = "timeout", str(exc)
        await self._in_db(session_commands.finish, command.pk, result, error_code, error)

    async def _log_out(self, session_id: str) -> None:
        slot = self.slots.get(session_id)
        if slot is None:
            raise SessionUnavailable(f"{session_id} is not configured")
        self._hold(slot, "logged_out", forget=True, stop=False)
        if slot.handle is not None:
            try:
                reply = await self.call(session_id, {"cmd": "logout"}, timeout=10)
                if not reply["ok"]:
                    log.info("session %s: logout: %s", session_id, reply["error"])
            except (SessionUnavailable, CommandTimeout) as exc:
                log.warning("session %s: logout: %s", session_id, exc)
        self._save(session_id, session_state.logged_out("logout"))
        await self._stop_process(slot)
        if slot.forget:  # no process was running to end
            slot.forget = False
            await self._in_db(session_state.forget_credentials, session_id)

    # -- database and channel layer ----------------------------------------------------------------
    async def _in_db(self, fn, *args):
        return await in_db_thread(self._db, fn, *args)

    def _save(self, session_id: str, change: session_state.Change) -> None:
        self._db.submit(_quietly, session_state.apply_change, session_id, change, self._publish)

    def _publish(self, session_id: str, message: dict) -> None:
        """Called on the database thread after a commit; the channel layer is used on the loop."""
        try:
            self.loop.call_soon_threadsafe(self._publish_on_loop, session_id, message)
        except RuntimeError:  # the loop is closed: nobody is left to tell
            pass

    def _publish_on_loop(self, session_id: str, message: dict) -> None:
        self._outbox.put_nowait((session_id, message))

    async def _publisher(self) -> None:
        layer = get_channel_layer()
        while True:
            session_id, message = await self._outbox.get()
            try:
                await layer.group_send(protocol.group_name(session_id), message)
            except Exception:  # the row is the truth; a listener that missed this reads it on (re)connect
                log.exception("session %s: could not publish %s", session_id, message.get("event"))
            finally:
                self._outbox.task_done()

    def _spawn_task(self, coro) -> None:
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("supervisor task failed", exc_info=task.exception())

    async def _shutdown(self) -> None:
        while any(slot.starting for slot in self.slots.values()):  # a process being forked is stopped too
            await asyncio.sleep(0.05)
        running = [slot for slot in self.slots.values() if slot.handle is not None]
        for slot in running:
            slot.hold = slot.hold or "shutdown"
        await asyncio.gather(*(self._stop_process(slot) for slot in running))
        for slot in self.slots.values():
            self._db.submit(_quietly, session_state.mark_stopped, slot.session_id, self._publish)
        self._db.submit(_quietly, session_leases.release_all, self.worker_id)
        self._db.submit(_quietly, worker_heartbeat.forget, self.worker_id)
        await self._in_db(lambda: None)  # the database thread has saved everything before this
        self._db.shutdown()
        self._spawner.shutdown()
        self._writers.shutdown(wait=False)


def _quietly(fn, *args) -> None:
    """For work nobody awaits: log its failure instead of losing it in a Future."""
    try:
        with_fresh_connection(fn, *args)
    except Exception:
        log.exception("supervisor: %s failed", getattr(fn, "__name__", fn))


def _unconfigure(session_id: str) -> None:
    WhatsAppSession.objects.filter(pk=session_id).update(
        in_config=False, status=SessionStatus.STOPPED, qr="", phone="", updated_at=timezone.now()
    )
