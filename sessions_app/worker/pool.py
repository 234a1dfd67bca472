"""The pool of session processes: a slot for every session this worker holds, the process running it
(started from the forkserver on a thread, so the loop never waits for a fork), how it is stopped, and
the heartbeat watch that kills a process gone silent. What to do when one ends is the policy's."""

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

from django.conf import settings

from .. import protocol, session_process
from ..session_handle import SessionHandle, SessionUnavailable
from .policy import SessionState

log = logging.getLogger(__name__)

@dataclass(eq=False)
class Slot:
    """A session this worker holds, across the processes that run it one after the other."""

    session_id: str
    policy: SessionState = field(default_factory=SessionState)  # the reconnect policy's memory
    handle: SessionHandle | None = None  # while a process runs
    epoch: int | None = None  # of the session lease its process runs under
    starting: bool = False
    hung: bool = False
    forget: bool = False  # delete the credentials once the process is gone
    retire: bool = False  # drop the slot once the process is gone


OnMessage = Callable[[Slot, SessionHandle, protocol.BackendEvent], None]
OnExit = Callable[[Slot, SessionHandle, int | None], None]


class ProcessPool:
    def __init__(self, backend: str, on_message: OnMessage, on_exit: OnExit):
        self.backend = backend
        self.slots: dict[str, Slot] = {}
        self._on_message = on_message
        self._on_exit = on_exit
        self._spawner = ThreadPoolExecutor(1, thread_name_prefix="supervisor-spawn")
        self._writers = ThreadPoolExecutor(8, thread_name_prefix="supervisor-pipe")

    def handle(self, session_id: str) -> SessionHandle | None:
        """The session's running process, if one runs."""
        slot = self.slots.get(session_id)
        return slot.handle if slot is not None and slot.handle is not None and slot.handle.running else None

    def running(self) -> list[str]:
        return [s for s in self.slots if self.handle(s) is not None]

    async def call(self, session_id: str, command: protocol.Request, timeout: float) -> protocol.Reply:
        handle = self.handle(session_id)
        if handle is None:
            raise SessionUnavailable(f"no session process runs for {session_id}")
        return await handle.request(command, timeout)

    async def spawn(self, slot: Slot, lease_until: float):
        """Fork its process (session_process.spawn; raises LeaseExpired past `lease_until`)."""
        return await asyncio.get_running_loop().run_in_executor(
            self._spawner, session_process.spawn, slot.session_id, self.backend, lease_until,
        )

    def attach(self, slot: Slot, process, conn) -> SessionHandle:
        """From now on its events and its end reach on_message and on_exit."""
        slot.handle = SessionHandle(slot.session_id, process, conn, self._writers,
                                    partial(self._on_message, slot), partial(self._exited, slot))
        return slot.handle

    def _exited(self, slot: Slot, handle: SessionHandle, code: int | None) -> None:
        slot.handle = None
        self._on_exit(slot, handle, code)

    async def stop(self, slot: Slot) -> None:
        """Stop command, then terminate, then kill."""
        if slot.handle is not None:
            await slot.handle.stop(settings.SESSION_STOP_TIMEOUT_SECONDS)

    def kill_silent(self, slot: Slot, now: float) -> None:
        """A process without a heartbeat for SESSION_HEARTBEAT_TIMEOUT_SECONDS hangs: kill it (once)."""
        if slot.handle is None or slot.hung:
            return
        silent = now - slot.handle.last_seen
        if silent > settings.SESSION_HEARTBEAT_TIMEOUT_SECONDS:
            log.warning("session %s: no heartbeat for %.0f s; killing its process", slot.session_id, silent)
            slot.hung = True
            slot.handle.kill()

    async def stop_all(self) -> None:
        """Every process, a slot still being forked included (stopped once it runs)."""
        while any(slot.starting for slot in self.slots.values()):
            await asyncio.sleep(0.05)
        running = [slot for slot in self.slots.values() if slot.handle is not None]
        for slot in running:
            slot.policy = slot.policy.stopping("shutdown")
        await asyncio.gather(*(self.stop(slot) for slot in running))

    def shutdown(self) -> None:
        self._spawner.shutdown()
        self._writers.shutdown(wait=False)
