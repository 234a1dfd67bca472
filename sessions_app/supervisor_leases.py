"""The supervisor's side of session leases (sessions_app.session_leases): its renewal turns, handing
sessions over, giving up the ones it lost, and the fence its dispatcher and its writes go through.
A mixin of Supervisor: it uses the supervisor's slots, loop and database thread."""

import asyncio
import logging
import time

from django.conf import settings

from . import session_leases, session_state
from .models import SessionStatus
from .session_handle import SessionUnavailable

log = logging.getLogger(__name__)


def lease_margin() -> float:
    """How long before its lease can expire a worker stops trusting it (session processes stop then)."""
    return settings.SESSION_LEASE_SECONDS / 4 + 1.0


class LeaseKeeping:
    def fence(self, session_id: str) -> tuple[str, int] | None:
        """(worker id, epoch) while this worker runs the session under its current lease, else None."""
        slot = self.slots.get(session_id)
        epoch = self.leases.get(session_id)
        if slot is None or slot.handle is None or epoch is None or slot.epoch != epoch:
            return None
        return self.worker_id, epoch

    async def _lease_turn(self) -> None:
        """Renew this worker's leases, take its share of free sessions, hand over its surplus."""
        self._last_turn = started = time.monotonic()
        try:
            turn = await self._in_db(session_leases.turn, self.worker_id, self._started_at, self.capacity,
                                     settings.SESSION_LEASE_SECONDS)
        except Exception as exc:  # the database is away: the sessions run until the lease can no longer be trusted
            log.warning("supervisor: cannot renew the session leases: %s", exc)
            return
        self._lease_until = started + settings.SESSION_LEASE_SECONDS - lease_margin()
        for session_id, epoch in self.leases.items():
            if turn.held.get(session_id) != epoch and session_id not in self._handing_over:
                log.warning("session %s: lease lost (epoch %d); stopping it here", session_id, epoch)
        for session_id in turn.acquired:
            log.info("session %s: lease taken (epoch %d)", session_id, turn.held[session_id])
        self.leases = {s: e for s, e in turn.held.items() if s not in self._handing_over}
        for session_id in turn.surplus:
            if session_id not in self._handing_over:
                self._handing_over.add(session_id)
                self.leases.pop(session_id, None)
                self._spawn_task(self._hand_over(session_id))
        for slot in list(self.slots.values()):
            if slot.handle is not None and slot.epoch is not None and self.leases.get(slot.session_id) == slot.epoch:
                try:
                    await slot.handle.send({"cmd": "lease", "until": self._lease_until})
                except SessionUnavailable:
                    pass

    async def _hand_over(self, session_id: str) -> None:
        """Above this worker's share (another joined): stop the session here, then release its lease."""
        log.info("session %s: handing it over to another worker", session_id)
        slot = self.slots.get(session_id)
        while slot is not None and slot.starting:
            await asyncio.sleep(0.05)
        if slot is not None:
            self._give_up(slot, "handed_over")
            if slot.handle is not None:
                await slot.handle.exited.wait()
        self._save(session_id, session_state.Change(status=SessionStatus.STOPPED, qr=""))
        try:
            await self._in_db(session_leases.release, self.worker_id, [session_id])
        finally:
            self._handing_over.discard(session_id)

    def _give_up(self, slot, reason: str) -> None:
        """Its lease is another worker's now (or about to be): stop its process and forget the slot,
        writing nothing about it (the new holder does)."""
        if slot.retire:
            return
        slot.retire = True
        if slot.handle is None and not slot.starting:
            self.slots.pop(slot.session_id, None)
        else:
            self._hold(slot, reason)

    def _as_holder(self, session_id: str, epoch: int | None, fn, *args) -> None:
        """On the database thread: fn(*args) if this worker still holds the session's lease."""
        if epoch is not None and not session_leases.holds(self.worker_id, session_id, epoch):
            log.info("session %s: lease of epoch %d gone; not recording its event", session_id, epoch)
            return
        fn(*args)
