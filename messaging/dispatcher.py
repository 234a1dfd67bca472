"""The dispatcher: every accepted PDF reaches WhatsApp once, in order, at a safe pace.

It runs on the session supervisor's event loop (started by the supervisor_started signal), one sender
task per session: a session that is slow or stuck delays only itself. A sender claims its session's
next due message (messaging.send_queue), waits its turn (messaging.pacing), sends through the session
process (SessionGateway.call) and records the outcome. Senders sleep until woken: by the API through the
channel layer (messaging.wakeups) the moment a message is committed, by a session connecting, or by
the slow sweep that is the safety net.
"""

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection

from core.db_threads import in_db_thread
from core.ttl_cache import TtlCache
from sessions_app import protocol, session_leases, signals as session_signals
from sessions_app.models import SessionStatus, WhatsAppSession
from sessions_app.worker import CommandTimeout, SessionGateway, SessionUnavailable

from . import send_queue, wakeups
from .outcomes import Recorder
from .pacing import Pacer

log = logging.getLogger(__name__)


class Dispatcher:
    def __init__(self, supervisor: SessionGateway):
        self.supervisor = supervisor
        self.owner = supervisor.worker_id  # host:pid:token, also the owner of its session leases
        self.loop = asyncio.get_running_loop()
        # SQLite has one writer at a time: more threads would only queue on its lock, sleeping.
        self._db = ThreadPoolExecutor(1 if connection.vendor == "sqlite" else 4, thread_name_prefix="dispatcher-db")
        self._wake: dict[str, asyncio.Event] = {}
        self._senders: dict[str, asyncio.Task] = {}
        self._pacers: dict[str, Pacer] = {}
        self._numbers = TtlCache(settings.DISPATCH_NUMBER_CHECK_TTL_SECONDS, settings.DISPATCH_NUMBER_CACHE_SIZE)
        self._connected: set[str] = set()
        self._tasks: set[asyncio.Task] = set()
        self._stopping = False
        self.recorder: Recorder | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        self.recorder = Recorder(self._db)
        dead = [o for o in await self._in_db(send_queue.lease_owners) if session_leases.is_dead_local(o, self.owner)]
        if dead:
            count = await self._in_db(send_queue.expire_leases_of, dead)
            log.warning("dispatcher: resuming %d message(s) claimed by stopped workers %s", count, dead)
        self._connected = await self._in_db(_connected_sessions)
        session_signals.session_status_changed.connect(self._on_status_signal, weak=False)
        session_signals.message_receipt.connect(self._on_receipt_signal, weak=False)
        for coro in (self._listen_for_wakeups(), self._sweep_forever()):
            task = self.loop.create_task(coro)
            self._tasks.add(task)
        for session_id in self._connected:
            self.wake(session_id)
        log.info("dispatcher started as %s", self.owner)

    async def stop(self, timeout: float) -> None:
        """Stop claiming; let the sends in flight finish (bounded by timeout)."""
        self._stopping = True
        session_signals.session_status_changed.disconnect(self._on_status_signal)
        session_signals.message_receipt.disconnect(self._on_receipt_signal)
        for event in self._wake.values():
            event.set()
        if self._senders:
            await asyncio.wait(list(self._senders.values()), timeout=timeout)
        for task in [*self._senders.values(), *self._tasks]:
            task.cancel()
        await asyncio.gather(*self._senders.values(), *self._tasks, return_exceptions=True)
        await self.recorder.close()
        self._db.shutdown(wait=True)

    def wake(self, session_id: str) -> None:
        if self._stopping:
            return
        self._wake.setdefault(session_id, asyncio.Event()).set()
        task = self._senders.get(session_id)
        if task is None or task.done():
            self._senders[session_id] = self.loop.create_task(self._sender(session_id), name=f"sender-{session_id}")

    # -- one session's sender --------------------------------------------------------------------
    async def _sender(self, session_id: str) -> None:
        event = self._wake[session_id]
        pacer = self._pacers.get(session_id)
        if pacer is None:
            try:
                recent = await self._in_db(send_queue.sent_in_last_hour, session_id)
            except Exception:  # the database is away: the cap counts from now, the sender lives on
                log.warning("session %s: cannot read its recent sends; the hourly cap counts from now", session_id)
                recent = []
            pacer = self._pacers[session_id] = Pacer(
                settings.SEND_MIN_INTERVAL_SECONDS, settings.SEND_INTERVAL_JITTER_SECONDS,
                settings.SEND_HOURLY_CAP, [t.timestamp() for t in recent],
            )
        # Paced sends are seconds apart: claim one at a time. Unpaced, claim several per transaction.
        paced = settings.SEND_MIN_INTERVAL_SECONDS + settings.SEND_INTERVAL_JITTER_SECONDS > 0
        limit = 1 if paced else max(1, settings.DISPATCH_CLAIM_BATCH)
        lease = settings.DISPATCH_SEND_TIMEOUT_SECONDS + 30
        while not self._stopping:
            event.clear()  # before looking, so a wake-up during the look is not lost
            if session_id not in self._connected or not self.supervisor.is_running(session_id):
                await self._sleep(event, settings.DISPATCH_SWEEP_SECONDS)
                continue
            await pacer.wait_turn()
            if self._stopping:
                return
            fence = self.supervisor.fence(session_id)
            if fence is None:  # its process is between leases: the next start wakes this sender
                await self._sleep(event, settings.DISPATCH_SWEEP_SECONDS)
                continue
            try:
                batch = await self._in_db(send_queue.claim_batch, session_id, self.owner, lease, limit, fence)
            except Exception:
                log.exception("session %s: claiming failed; retrying", session_id)
                await self._sleep(event, 1.0)
                continue
            if not batch:
                await self._sleep(event, await self._idle_seconds(session_id))
                continue
            claimed_at = time.monotonic()
            try:
                await self._send_batch(batch, pacer, claimed_at + lease)
            except Exception:
                log.exception("session %s: sending a batch failed", session_id)
                await asyncio.sleep(1.0)  # what is left leased expires and is resumed

    async def _send_batch(self, batch: list[send_queue.Claimed], pacer: Pacer, lease_ends: float) -> None:
        """Send the claimed messages in order; what cannot be sent now goes back to the queue. Returns
        once every outcome is committed, so the next claim sees them."""
        outcomes: list[asyncio.Future] = []
        for index, m in enumerate(batch):
            if index:
                await pacer.wait_turn()
            # Never start a send the lease might not cover, nor one after a stop was asked for.
            if self._stopping or time.monotonic() + settings.DISPATCH_SEND_TIMEOUT_SECONDS >= lease_ends:
                rest = batch[index:]
            else:
                sent, blocked = await self._deliver(m, outcomes)
                if sent:
                    pacer.sent()
                if not blocked:
                    continue
                rest = batch[index + 1:]
            for r in rest:
                outcomes.append(self.recorder.write(send_queue.give_back, r.pk, self.owner))
            break
        await asyncio.gather(*outcomes)

    async def _idle_seconds(self, session_id: str) -> float:
        try:
            due = await self._in_db(send_queue.next_due_at, session_id)
        except Exception:  # the database is away: look again soon rather than let the sender die
            log.warning("session %s: cannot read when its next message is due", session_id, exc_info=True)
            return 1.0
        if due is None:
            return settings.DISPATCH_SWEEP_SECONDS
        return max(0.0, min(settings.DISPATCH_SWEEP_SECONDS, due.timestamp() - time.time()))

    async def _sleep(self, event: asyncio.Event, seconds: float) -> None:
        try:
            await asyncio.wait_for(event.wait(), seconds)
        except TimeoutError:
            pass

    async def _deliver(self, m: send_queue.Claimed, outcomes: list[asyncio.Future]) -> tuple[bool, bool]:
        """Send one claimed message and queue the record of its outcome. Returns (a send was
        attempted, the rest of the batch must wait: the session cannot send now)."""
        sid, pk, owner, record = m.session_id, m.pk, self.owner, self.recorder.write
        try:
            if m.resumed:
                earlier = await self._already_sent(sid, m.message_id)
                if earlier is not None:
                    log.info("session %s: message %s had gone out before its sender vanished", sid, m.message_id)
                    outcomes.append(record(send_queue.record_sent, pk, owner, earlier["wa_message_id"],
                                           earlier.get("timestamp")))
                    return False, False
            if not await self._on_whatsapp(sid, m.to):
                outcomes.append(record(send_queue.record_failed, pk, owner, "not_on_whatsapp"))
                return False, False
            if m.kind == "text":
                command = protocol.SendText(m.to, m.data.decode(), ref=m.message_id)
            elif m.kind == "image":
                command = protocol.SendImage(m.to, m.data, m.mimetype, m.caption, ref=m.message_id)
            else:
                command = protocol.SendDocument(m.to, m.data, m.file_name, m.mimetype, m.caption, ref=m.message_id)
            reply = await self.supervisor.call(sid, command, settings.DISPATCH_SEND_TIMEOUT_SECONDS)
        except SessionUnavailable:
            outcomes.append(record(send_queue.give_back, pk, owner))
            return False, True
        except CommandTimeout as exc:
            # It may have gone out: resumed (and asked about) by the next claim, before anything newer.
            outcomes.append(record(send_queue.record_unknown, pk, owner, f"timeout: {exc}"))
            return True, True
        if reply.ok:
            result = reply.result or {}
            outcomes.append(record(send_queue.record_sent, pk, owner, result["wa_message_id"], result.get("timestamp")))
            log.info("session %s: message %s sent to %s as %s", sid, m.message_id, m.to, result["wa_message_id"])
            return True, False
        code = reply.error_code or "send_failed"
        if code == "not_on_whatsapp":
            self._numbers.put((sid, m.to), False)
            outcomes.append(record(send_queue.record_failed, pk, owner, "not_on_whatsapp"))
        elif code == "not_connected":
            outcomes.append(record(send_queue.give_back, pk, owner))
            return True, True
        else:
            future = record(send_queue.record_retry, pk, owner, m.attempts, f"{code}: {reply.error}")
            future.add_done_callback(partial(_log_retry, sid, m.message_id, m.attempts))
            outcomes.append(future)
        return True, False

    async def _already_sent(self, session_id: str, message_id: str) -> dict | None:
        try:
            reply = await self.supervisor.call(session_id, protocol.LookupSent((message_id,)), 10.0)
        except CommandTimeout:
            return None
        return (reply.result or {}).get(message_id) if reply.ok else None

    async def _on_whatsapp(self, session_id: str, number: str) -> bool:
        cached = self._numbers.get((session_id, number))
        if cached is not None:
            return cached
        try:
            reply = await self.supervisor.call(session_id, protocol.CheckNumbers((number,)), 30.0)
        except CommandTimeout:
            return True  # unknown: the send itself will tell
        if not reply.ok:
            return True
        registered = bool((reply.result or {}).get(number, True))
        self._numbers.put((session_id, number), registered)
        return registered

    # -- wake-ups, status, receipts, sweep -------------------------------------------------------
    async def _listen_for_wakeups(self) -> None:
        layer = get_channel_layer()
        while not self._stopping:
            try:
                channel = await layer.new_channel()
                await layer.group_add(wakeups.GROUP, channel)
                while not self._stopping:
                    message = await layer.receive(channel)
                    if isinstance(message.get("session_id"), str):
                        self.wake(message["session_id"])
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("dispatcher: channel layer unavailable; the sweep carries on", exc_info=True)
                await asyncio.sleep(2.0)

    def _on_status_signal(self, sender, session_id: str, status: str, **kwargs) -> None:
        self.loop.call_soon_threadsafe(self._on_status, session_id, status)

    def _on_status(self, session_id: str, status: str) -> None:
        if status == SessionStatus.CONNECTED:
            self._connected.add(session_id)
            self.wake(session_id)
        else:
            self._connected.discard(session_id)

    def _on_receipt_signal(self, sender, session_id: str, wa_message_ids: list[str], type: str,
                           timestamp: float | None = None, **kwargs) -> None:
        self.recorder.receipt(wa_message_ids, type, timestamp)

    async def _sweep_forever(self) -> None:
        while not self._stopping:
            await asyncio.sleep(settings.DISPATCH_SWEEP_SECONDS)
            try:
                due, unlinked = await self._in_db(_sweep_reads)
                if unlinked:
                    failed = await self._in_db(
                        send_queue.fail_waiting_for_unlinked_sessions, unlinked,
                        settings.DISPATCH_UNLINKED_FAIL_AFTER_SECONDS,
                    )
                    if failed:
                        log.warning("dispatcher: %d messages failed waiting for a logged-out session", failed)
                for session_id in due & self._connected:
                    self.wake(session_id)
            except Exception:
                log.exception("dispatcher: sweep failed")

    async def _in_db(self, fn, *args):
        return await in_db_thread(self._db, fn, *args)


def _log_retry(session_id: str, message_id: str, attempt: int, future: asyncio.Future) -> None:
    if not future.cancelled() and future.exception() is None:
        log.warning("session %s: message %s attempt %d failed; now %s", session_id, message_id, attempt, future.result())


def _connected_sessions() -> set[str]:
    return set(WhatsAppSession.objects.filter(status=SessionStatus.CONNECTED).values_list("session_id", flat=True))


def _sweep_reads() -> tuple[set[str], list[str]]:
    unlinked = list(
        WhatsAppSession.objects.filter(status__in=[SessionStatus.LOGGED_OUT, SessionStatus.BANNED]).values_list(
            "session_id", flat=True
        )
    )
    return send_queue.sessions_with_due_messages(), unlinked
