"""This worker's session leases (sessions_app.session_leases): which sessions it holds and under which
epoch, how long it may trust them, its renewal turns, handing sessions over, and the fence its
dispatcher and its writes go through."""

import asyncio
import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.utils import timezone

from .. import protocol, session_leases, session_state
from ..models import SessionStatus
from ..session_handle import SessionUnavailable
from .db import DatabaseThread
from .pool import ProcessPool, Slot

log = logging.getLogger(__name__)


def lease_margin() -> float:
    """How long before its lease can expire a worker stops trusting it (session processes stop then)."""
    return settings.SESSION_LEASE_SECONDS / 4 + 1.0


class LeaseKeeper:
    def __init__(self, worker_id: str, capacity: int, pool: ProcessPool, db: DatabaseThread,
                 give_up: Callable[[Slot, str], None], save: Callable[[str, session_state.Change], None]):
        self.worker_id = worker_id
        self.capacity = capacity
        self.started_at = timezone.now()
        self.held: dict[str, int] = {}  # session id -> epoch
        self.until = float("-inf")  # monotonic: the leases are trusted until then
        self._last_turn = float("-inf")
        self._handing_over: set[str] = set()
        self._pool = pool
        self._db = db
        self._give_up = give_up  # stop its process here and forget the slot, writing nothing
        self._save = save
        self._tasks: set[asyncio.Task] = set()

    def due(self, now: float) -> bool:
        every = min(settings.SESSION_LEASE_RENEW_SECONDS, settings.WORKER_HEARTBEAT_SECONDS)
        return now - self._last_turn >= every

    def trusted(self, now: float) -> bool:
        """Whether a process started now would have time to connect under these leases."""
        return self.until - now > 1.0

    def fence(self, session_id: str) -> tuple[str, int] | None:
        """(worker id, epoch) while this worker runs the session under its current lease, else None."""
        slot = self._pool.slots.get(session_id)
        epoch = self.held.get(session_id)
        if slot is None or slot.handle is None or epoch is None or slot.epoch != epoch:
            return None
        return self.worker_id, epoch

    def lost(self, slot: Slot) -> bool:
        """No longer held, or its process runs under an older lease."""
        epoch = self.held.get(slot.session_id)
        return epoch is None or (slot.handle is not None and slot.epoch != epoch)

    async def confirmed(self, session_id: str, epoch: int) -> bool:
        """The fence a process starts behind: the database says this worker holds the lease."""
        return await self._db.run(session_leases.holds, self.worker_id, session_id, epoch)

    async def turn(self) -> None:
        """Renew this worker's leases, take its share of free sessions, hand over its surplus."""
        self._last_turn = started = time.monotonic()
        try:
            turn = await self._db.run(session_leases.turn, self.worker_id, self.started_at, self.capacity,
                                      settings.SESSION_LEASE_SECONDS)
        except Exception as exc:  # the database is away: the sessions run until the lease can no longer be trusted
            log.warning("supervisor: cannot renew the session leases: %s", exc)
            return
        self.until = started + settings.SESSION_LEASE_SECONDS - lease_margin()
        for session_id, epoch in self.held.items():
            if turn.held.get(session_id) != epoch and session_id not in self._handing_over:
                log.warning("session %s: lease lost (epoch %d); stopping it here", session_id, epoch)
        for session_id in turn.acquired:
            log.info("session %s: lease taken (epoch %d)", session_id, turn.held[session_id])
        self.held = {s: e for s, e in turn.held.items() if s not in self._handing_over}
        for session_id in turn.surplus:
            if session_id not in self._handing_over:
                self._handing_over.add(session_id)
                self.held.pop(session_id, None)
                task = asyncio.get_running_loop().create_task(self._hand_over(session_id))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        for slot in list(self._pool.slots.values()):
            if slot.handle is not None and slot.epoch is not None and self.held.get(slot.session_id) == slot.epoch:
                try:
                    await slot.handle.send(protocol.Lease(self.until))
                except SessionUnavailable:
                    pass

    async def _hand_over(self, session_id: str) -> None:
        """Above this worker's share (another joined): stop the session here, then release its lease."""
        log.info("session %s: handing it over to another worker", session_id)
        slot = self._pool.slots.get(session_id)
        while slot is not None and slot.starting:
            await asyncio.sleep(0.05)
        if slot is not None:
            self._give_up(slot, "handed_over")
            if slot.handle is not None:
                await slot.handle.exited.wait()
        self._save(session_id, session_state.Change(status=SessionStatus.STOPPED, qr=""))
        try:
            await self._db.run(session_leases.release, self.worker_id, [session_id])
        except Exception:
            log.exception("session %s: could not release its lease", session_id)
        finally:
            self._handing_over.discard(session_id)

    def as_holder(self, session_id: str, epoch: int | None, fn, *args) -> None:
        """On the database thread: fn(*args) if this worker still holds the session's lease."""
        if epoch is not None and not session_leases.holds(self.worker_id, session_id, epoch):
            log.info("session %s: lease of epoch %d gone; not recording its event", session_id, epoch)
            return
        fn(*args)

    def release_all(self) -> None:
        """On shutdown, after every process stopped (queued on the database thread)."""
        self._db.submit(session_leases.release_all, self.worker_id)
