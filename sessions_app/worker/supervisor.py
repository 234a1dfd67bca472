"""The supervisor: the worker's parts put together on one long-lived asyncio loop (runworker's, or the
web server's in embedded mode, so the in-memory channel layer reaches the sockets).

Every few hundred milliseconds it reads the configured sessions, their start requests and the command
inbox; it renews its leases (LeaseKeeper); a process's events and exit arrive as soon as its pipe or
sentinel is readable (ProcessPool). What each of those means for the session is the reconnect policy's
(policy.decide); this module carries the decisions out: stop, forget, plan, count, save and publish.
"""

import asyncio
import inspect
import logging
import time

from django.conf import settings
from django.utils import timezone

from .. import protocol, session_leases, session_process, session_state, signals, worker_heartbeat
from ..backends import backend_class
from ..models import SessionStatus, WhatsAppSession
from ..session_handle import CommandTimeout, SessionHandle, SessionUnavailable
from . import policy, terminal_qr
from .db import DatabaseThread
from .inbox import CommandInbox
from .leases import LeaseKeeper
from .pool import ProcessPool, Slot
from .publisher import Publisher

log = logging.getLogger(__name__)


class Supervisor:
    def __init__(self, backend: str, print_qr: bool, capacity: int):
        self.backend = backend
        self.print_qr = print_qr
        self.worker_id = worker_heartbeat.new_worker_id()
        self._take_controls = backend_class(backend).take_controls
        self._timing = policy.Timing.from_settings()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.db = DatabaseThread()
        self.pool = ProcessPool(backend, self._on_message, self._on_exit)
        self.leases = LeaseKeeper(self.worker_id, capacity, self.pool, self.db, self._give_up, self._save)
        self.inbox = CommandInbox(self.db, self.call, self._log_out, self._forget_slot)
        self.publisher: Publisher | None = None
        self._tasks: set[asyncio.Task] = set()
        self._stopping = asyncio.Event()
        self._main_task: asyncio.Task | None = None

    # -- public (sessions_app.worker.gateway) ---------------------------------------------------------
    async def start(self) -> None:
        """Start supervising on the running loop; returns at once."""
        self.loop = asyncio.get_running_loop()
        self.publisher = Publisher(self.loop)
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
        return self.pool.handle(session_id) is not None

    def fence(self, session_id: str) -> tuple[str, int] | None:
        return self.leases.fence(session_id)

    async def call(self, session_id: str, command: protocol.Request, timeout: float) -> protocol.Reply:
        """Send a command to the session's process and return its reply. Raises
        SessionUnavailable when no process runs for it, CommandTimeout when no reply comes in time.
        Call it on the supervisor's loop."""
        return await self.pool.call(session_id, command, timeout)

    # -- the loop ----------------------------------------------------------------------------------
    async def _main(self) -> None:
        await self.db.run(lambda: session_state.mark_all_stopped(session_leases.held_elsewhere(self.worker_id)))
        self.publisher.start()
        log.info("supervisor started as %s (backend %s)", self.worker_id, self.backend)
        signals.supervisor_started.send_robust(sender=Supervisor, supervisor=self)
        try:
            while not self._stopping.is_set():
                if self.leases.due(time.monotonic()):
                    await self.leases.turn()
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
            await self.publisher.close()  # the last status changes still reach their listeners
            log.info("supervisor stopped")

    async def _tick(self) -> None:
        rows = await self.db.run(lambda: {r.session_id: r for r in WhatsAppSession.objects.filter(in_config=True)})
        now = time.monotonic()
        trusted = self.leases.trusted(now)
        slots = self.pool.slots
        for session_id, row in rows.items():
            if session_id not in self.leases.held:
                continue
            slot = slots.get(session_id)
            if slot is None:
                slot = slots[session_id] = Slot(session_id)
                if session_state.waits_for_new_link(row):
                    slot.policy = policy.SessionState.waiting_for_link(row.updated_at)
            if slot.handle is not None or slot.starting or slot.retire:
                continue
            self._apply(slot, policy.StartRequested(row.start_requested_at), now)
            if trusted and slot.policy.due(now):
                slot.starting = True
                slot.forget, slot.hung = False, False
                self._apply(slot, policy.Starting())
                self._spawn_task(self._start(slot))
        for slot in list(slots.values()):
            if slot.retire:
                continue
            if slot.session_id not in rows:
                self._retire(slot)
            elif self.leases.lost(slot):
                self._give_up(slot, "lease_lost")
            else:
                self.pool.kill_silent(slot, now)
        for command in await self.inbox.claim(list(slots)):
            self._spawn_task(self.inbox.execute(command))
        if self._take_controls is not None:  # the simulator's phone: to the running processes, in order
            for session_id, control in await self.db.run(self._take_controls, self.pool.running()):
                if (handle := self.pool.handle(session_id)) is not None:
                    try:
                        await handle.send(protocol.Control(**control))
                    except SessionUnavailable:
                        pass  # it ended meanwhile: the phone's action is lost with it

    # -- processes ---------------------------------------------------------------------------------
    async def _start(self, slot: Slot) -> None:
        epoch = self.leases.held.get(slot.session_id)
        try:
            # The fence: a process starts only under a lease the database confirms.
            if epoch is None or not await self.leases.confirmed(slot.session_id, epoch):
                slot.starting = False
                return  # the next lease turn and tick sort it out
            process, conn = await self.pool.spawn(slot, self.leases.until)
        except session_process.LeaseExpired:
            slot.starting = False
            log.warning("session %s: its lease could no longer be trusted when its process was to start; not started",
                        slot.session_id)
            return  # the next lease turn and tick sort it out
        except Exception as exc:
            slot.starting = False
            log.exception("session %s: cannot start its process", slot.session_id)
            self._apply(slot, policy.StartFailed(str(exc)))
            return
        slot.starting = False
        slot.epoch = epoch
        self._apply(slot, policy.Started())
        # Saved before any event of the new process can be: the database thread keeps the order.
        self._save(slot.session_id, session_state.Change(status=SessionStatus.INITIALIZING, qr=""))
        handle = self.pool.attach(slot, process, conn)
        log.info("session %s: process %d started (epoch %d)", slot.session_id, handle.pid, epoch)
        if self._stopping.is_set() or slot.retire or slot.policy.hold is not None:  # decided while it started
            self._spawn_task(self.pool.stop(slot))

    def _on_exit(self, slot: Slot, handle: SessionHandle, code: int | None) -> None:
        if self._stopping.is_set():
            return
        if slot.forget:
            slot.forget = False
            self.db.submit(session_state.forget_credentials, slot.session_id)
        if slot.retire:
            self.pool.slots.pop(slot.session_id, None)
            return
        self._apply(slot, policy.Exited(code, time.monotonic() - handle.started_at, handle.kill_reason, slot.hung))

    def _on_message(self, slot: Slot, handle: SessionHandle, message: protocol.BackendEvent) -> None:
        """A backend event (the handle refuses whatever is not a protocol message)."""
        match message:
            case protocol.Receipt():  # nothing to save: announced at once, here on the loop
                session_state.apply_event(slot.session_id, message)
                return
            case protocol.Qr(data=data) if self.print_qr:
                terminal_qr.print_qr(slot.session_id, str(data or ""))
            case protocol.Error(message=text):
                log.error("session %s: %s", slot.session_id, text)
        self._apply(slot, policy.Emitted(message, time.monotonic() - handle.started_at))
        # Fenced: a worker that was paused past its lease must not overwrite what the new holder wrote.
        self.db.submit(self.leases.as_holder, slot.session_id, slot.epoch, session_state.apply_event,
                       slot.session_id, message, self.publisher.publish)

    # -- carrying out the policy's decisions -------------------------------------------------------
    def _apply(self, slot: Slot, event: policy.Event, monotonic: float | None = None) -> policy.Decision:
        now = policy.Now(time.monotonic() if monotonic is None else monotonic, timezone.now())
        decision = policy.decide(slot.policy, event, now, self._timing)
        slot.policy = decision.state
        slot.forget = slot.forget or decision.forget
        session_id = slot.session_id
        if decision.plan and not slot.retire:  # a slot given up or removed writes nothing more about it
            self.db.submit(self.leases.as_holder, session_id, self.leases.held.get(session_id),
                           session_state.plan_attempt, session_id, decision.attempt_at)
        if decision.count is not None:
            self.db.submit(session_state.count, session_id, decision.count)
        if decision.gone is not None:  # after the plan: the status event says when the next start is
            log.info("session %s: next start in %.1f s (attempt %d)", session_id,
                     decision.state.next_start - now.monotonic, decision.state.failures)
            self._save(session_id, session_state.process_gone(decision.gone))
        elif decision.plan:
            after = decision.state.next_start
            log.info("session %s: %s; %s", session_id, decision.state.hold,
                     "waiting for a start request" if after is None else f"next start in {after - now.monotonic:.1f} s")
        if decision.stop:
            self._spawn_task(self.pool.stop(slot))
        return decision

    def _retire(self, slot: Slot) -> None:
        """No longer configured: stop it and forget the slot."""
        slot.retire = True
        self._save(slot.session_id, session_state.Change(status=SessionStatus.STOPPED, qr=""))
        if slot.handle is None:
            self.pool.slots.pop(slot.session_id, None)
        else:
            self._apply(slot, policy.Stop("removed"))

    def _give_up(self, slot: Slot, reason: str) -> None:
        """Its lease is another worker's now (or about to be): stop its process and forget the slot,
        writing nothing about it (the new holder does)."""
        if slot.retire:
            return
        slot.retire = True
        if slot.handle is None and not slot.starting:
            self.pool.slots.pop(slot.session_id, None)
        else:
            self._apply(slot, policy.Stop(reason))

    def _forget_slot(self, session_id: str) -> None:
        self.pool.slots.pop(session_id, None)

    async def _log_out(self, session_id: str) -> None:
        slot = self.pool.slots.get(session_id)
        if slot is None:
            raise SessionUnavailable(f"{session_id} is not configured")
        self._apply(slot, policy.Stop("logged_out", forget=True, at_once=False))
        if slot.handle is not None:
            try:
                reply = await self.call(session_id, protocol.Logout(), timeout=10)
                if not reply.ok:
                    log.info("session %s: logout: %s", session_id, reply.error)
            except (SessionUnavailable, CommandTimeout) as exc:
                log.warning("session %s: logout: %s", session_id, exc)
        self._save(session_id, session_state.logged_out("logout"))
        await self.pool.stop(slot)
        if slot.forget:  # no process was running to end
            slot.forget = False
            await self.db.run(session_state.forget_credentials, session_id)

    # -- database ----------------------------------------------------------------------------------
    def _save(self, session_id: str, change: session_state.Change) -> None:
        self.db.submit(session_state.apply_change, session_id, change, self.publisher.publish)

    def _spawn_task(self, coro) -> None:
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("supervisor task failed", exc_info=task.exception())

    async def _shutdown(self) -> None:
        await self.pool.stop_all()
        for session_id in self.pool.slots:
            self.db.submit(session_state.mark_stopped, session_id, self.publisher.publish)
        self.leases.release_all()
        self.db.submit(worker_heartbeat.forget, self.worker_id)
        await self.db.run(lambda: None)  # the database thread has saved everything before this
        self.db.shutdown()
        self.pool.shutdown()
