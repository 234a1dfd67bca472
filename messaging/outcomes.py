"""The dispatcher's writes, committed in groups: what became of each send and WhatsApp's receipts.

Senders hand their outcomes (messaging.send_queue's record_* functions and give_back) to one Recorder
and go on sending; whatever arrived while the previous group was being written goes into the next
transaction, so fifty busy sessions cost a few commits a second instead of hundreds. A sender waits
for its outcomes (`await`) only before it claims again, so what it claims next sees them.

Until its outcome is committed a message stays `sending` under its lease: if the worker dies first,
the message is resumed and the session is asked whether it already went out (send_queue, dispatcher).

Receipts can overtake the record of the send they are about (both come from the session process, by
different paths). A receipt that matched no sent message is kept for a minute and tried again with
every group that records a send; at most EARLY_RECEIPT_LIMIT of them, the newest (a flood of receipts of
the phone's own messages must not fill memory for a minute: an early receipt overtakes its send by
milliseconds, so the newest are the ones that can still match). Receipts alone wait
RECEIPT_GATHER_SECONDS for company: nobody waits for them, and a number that gets thousands a second
must not keep SQLite's one write lock taken transaction after transaction (the supervisor's lease
renewals wait for that lock too).
"""

import asyncio
import itertools
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor

from django.db import transaction

from core.db_threads import with_fresh_connection

from . import send_queue

log = logging.getLogger(__name__)

EARLY_RECEIPT_SECONDS = 60.0
EARLY_RECEIPT_LIMIT = 10_000
RETRY_SECONDS = 1.0
STALL_WARNING_SECONDS = 30.0
RECEIPT_GATHER_SECONDS = 0.2


class Recorder:
    def __init__(self, executor: Executor):
        self.loop = asyncio.get_running_loop()
        self._executor = executor
        self._writes: list[tuple[Callable, tuple, asyncio.Future]] = []
        self._receipts: list[tuple[list[str], str, float | None]] = []
        self._early: dict[str, tuple[str, float | None, float]] = {}  # wa id -> (kind, timestamp, expiry)
        self._pending = asyncio.Event()
        self._write_pending = asyncio.Event()  # a sender waits for it: no gathering
        self._task = self.loop.create_task(self._run(), name="dispatcher-recorder")

    def write(self, fn: Callable, *args) -> asyncio.Future:
        """Queue `fn(*args)` (a send_queue function) for the next group; the future has its result."""
        future = self.loop.create_future()
        self._writes.append((fn, args, future))
        self._pending.set()
        self._write_pending.set()
        return future

    def receipt(self, wa_message_ids: list[str], kind: str, timestamp: float | None) -> None:
        """Thread-safe."""
        self.loop.call_soon_threadsafe(self._add_receipt, list(wa_message_ids), kind, timestamp)

    def _add_receipt(self, wa_message_ids: list[str], kind: str, timestamp: float | None) -> None:
        self._receipts.append((wa_message_ids, kind, timestamp))
        self._pending.set()

    async def close(self) -> None:
        """Write what is queued, then stop."""
        self._pending.set()
        self._write_pending.set()
        while self._writes or self._receipts:
            await asyncio.sleep(0.01)
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            await self._pending.wait()
            if not self._writes:
                try:
                    await asyncio.wait_for(self._write_pending.wait(), RECEIPT_GATHER_SECONDS)
                except TimeoutError:
                    pass  # gathered long enough: the receipts go now, with whatever came meanwhile
            self._pending.clear()
            self._write_pending.clear()
            writes, self._writes = self._writes, []
            receipts, self._receipts = self._receipts, []
            try:
                results, early = await self._written(writes, receipts)
            except Exception:
                log.exception("dispatcher: recording %d outcome(s) failed; trying again", len(writes))
                self._writes[:0], self._receipts[:0] = writes, receipts
                self._pending.set()
                await asyncio.sleep(RETRY_SECONDS)
                continue
            self._early = early
            for (_, _, future), result in zip(writes, results):
                if future.done():
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    async def _written(self, writes, receipts):
        """_write_group on the database thread; a warning every STALL_WARNING_SECONDS it takes, since
        every sender waits for it (a database that accepts a query and never answers)."""
        started = time.monotonic()
        future = self.loop.run_in_executor(self._executor, with_fresh_connection, _write_group, writes, receipts,
                                           self._early)
        while not (await asyncio.wait({future}, timeout=STALL_WARNING_SECONDS))[0]:
            log.warning("dispatcher: recording %d outcome(s) has waited %.0f s for the database; sending waits too",
                        len(writes), time.monotonic() - started)
        return future.result()


def _write_group(writes, receipts, early):
    """On the database thread: one transaction for the whole group. If it fails as a whole, each
    write is tried on its own, so one bad write cannot hold the others back."""
    now = time.monotonic()
    early = {wa: v for wa, v in early.items() if v[2] > now}
    try:
        with transaction.atomic():
            results = _apply_writes(writes)
            early = _apply_receipts(receipts, early, now, retry_early=any(
                fn is send_queue.record_sent for fn, _, _ in writes))
        return results, early
    except Exception:
        log.exception("dispatcher: a group of %d outcome(s) failed; writing them one by one", len(writes))
    results = []
    for fn, args, _ in writes:
        try:
            with transaction.atomic():
                results.append(fn(*args))
        except Exception as exc:
            log.exception("dispatcher: %s%r failed", fn.__name__, args[:1])
            results.append(exc)
    with transaction.atomic():
        early = _apply_receipts(receipts, early, now, retry_early=True)
    return results, early


def _apply_writes(writes) -> list:
    """The sends in one statement per lease owner (send_queue.record_sent_many), the rest one by one."""
    results: list = [None] * len(writes)
    sends: dict[str, list[tuple[int, tuple]]] = {}
    for index, (fn, args, _) in enumerate(writes):
        if fn is send_queue.record_sent:
            pk, owner, wa_message_id, timestamp = args
            sends.setdefault(owner, []).append((index, (pk, wa_message_id, timestamp)))
        else:
            results[index] = fn(*args)
    for owner, rows in sends.items():
        send_queue.record_sent_many(owner, [row for _, row in rows])
        for index, _ in rows:
            results[index] = True
    return results


def _apply_receipts(receipts, early: dict, now: float, retry_early: bool) -> dict:
    """Apply receipts; returns the early ones still unmatched, each with its first expiry. A message
    needs only its first receipt of each kind, and the ids that match no sent message (receipts of what
    the phone itself sent, a client that repeats itself) cost one query for the whole group: only the
    matched ones are updated, one update per kind and timestamp (WhatsApp's are whole seconds)."""
    first: dict[tuple[str, str], tuple[float | None, float]] = {}  # (wa id, kind) -> (timestamp, expiry)
    left = {} if retry_early else dict(early)
    if retry_early:
        for wa_id, (kind, timestamp, expiry) in early.items():
            first.setdefault((wa_id, kind), (timestamp, expiry))
    for ids, kind, timestamp in receipts:
        for wa_id in ids:
            first.setdefault((wa_id, kind), (timestamp, now + EARLY_RECEIPT_SECONDS))
    known = send_queue.sent_wa_ids({wa_id for wa_id, _ in first})
    updates: dict[tuple[str, float | None], list[str]] = {}
    for (wa_id, kind), (timestamp, expiry) in first.items():
        if wa_id in known:
            updates.setdefault((kind, timestamp), []).append(wa_id)
        else:
            left[wa_id] = (kind, timestamp, expiry)
    for (kind, timestamp), ids in updates.items():
        send_queue.apply_receipt(ids, kind, timestamp)
    if len(left) > EARLY_RECEIPT_LIMIT:  # kept in arrival order: the oldest go
        left = dict(itertools.islice(left.items(), len(left) - EARLY_RECEIPT_LIMIT, None))
    return left
