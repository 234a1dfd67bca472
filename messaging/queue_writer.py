"""Group commit into the durable queue.

A writer thread takes every request waiting at that moment and commits them in one transaction
(messaging.queue_storage); each caller gets its answer only after the commit that holds its row, so the
commit (an fsync) is paid once per batch instead of once per request. SQLite has one writer per process
(its single write lock would make a second wait); Postgres POSTGRES_WRITERS, each with its own
connection, so one batch's inserts run while another commits.
"""

import asyncio
import logging
import queue
import threading
from concurrent.futures import Future

from django.conf import settings
from django.db import connection
from django.utils.translation import gettext as _

from .errors import QueueUnavailable
from .queue_storage import Enqueued, SendRequest, start_sqlite_checkpoints, write_batch

log = logging.getLogger(__name__)

MAX_BATCH_ITEMS = 128
MAX_BATCH_BYTES = 32 * 1024 * 1024
# Two keep a core busy with one batch's inserts while the other commits; a third added nothing
# (docs/benchmarks.md, "The write path: changes kept").
POSTGRES_WRITERS = 2


class _Item:
    __slots__ = ("request", "future")

    def __init__(self, request: SendRequest):
        self.request = request
        self.future: Future = Future()


_STOP = object()


class QueueWriter:
    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def submit(self, request: SendRequest) -> Future:
        """A future of the request's Enqueued, or of the MessageRefused that says why it was not taken."""
        item = _Item(request)
        self._queue.put(item)
        self._ensure_threads()
        return item.future

    def shutdown(self, timeout: float = 10.0) -> None:
        """Let the writers finish what is queued, close their database connections and end."""
        threads = [t for t in self._threads if t.is_alive()]
        for _ in threads:  # each writer ends at the first stop marker it takes
            self._queue.put(_STOP)
        for thread in threads:
            thread.join(timeout)

    def _ensure_threads(self) -> None:
        if self._threads and all(t.is_alive() for t in self._threads):
            return
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            while len(self._threads) < (POSTGRES_WRITERS if connection.vendor == "postgresql" else 1):
                thread = threading.Thread(target=self._run, name=f"queue-writer-{len(self._threads) + 1}", daemon=True)
                thread.start()
                self._threads.append(thread)

    def _next_batch(self) -> list:
        """The items waiting now, up to a size; a stop marker ends the batch."""
        batch = [self._queue.get()]
        size = 0
        while batch[-1] is not _STOP and len(batch) < MAX_BATCH_ITEMS and size < MAX_BATCH_BYTES:
            size += len(batch[-1].request.data)
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _run(self) -> None:
        checkpoints_stop = threading.Event()
        checkpoints = start_sqlite_checkpoints(checkpoints_stop)
        while True:
            batch = self._next_batch()
            if batch[-1] is _STOP:
                batch.pop()
                if batch:
                    self._answer(batch)
                if checkpoints is not None:  # it ends with the writer, not when the database is gone
                    checkpoints_stop.set()
                    checkpoints.join()
                connection.close()
                return
            self._answer(batch)

    def _answer(self, batch: list[_Item]) -> None:
        # One long-lived connection per writer: reconnecting per batch would cost more than the batch.
        try:
            results = write_batch([i.request for i in batch])
        except Exception as exc:  # the database is down or broken: every caller hears of it
            log.exception("queue writer: batch of %d failed", len(batch))
            connection.close()
            error = QueueUnavailable(_("La base de datos no está disponible; reintente."))
            error.__cause__ = exc
            results = [error] * len(batch)
        for item, result in zip(batch, results):
            if isinstance(result, BaseException):
                item.future.set_exception(result)
            else:
                item.future.set_result(result)


_writer = QueueWriter()


async def enqueue(request: SendRequest) -> Enqueued:
    """Commit the request to the queue (or find its idempotent twin). Raises MessageRefused; QueueUnavailable
    when the commit does not come within QUEUE_WRITE_TIMEOUT_SECONDS."""
    try:
        timeout = settings.QUEUE_WRITE_TIMEOUT_SECONDS
        return await asyncio.wait_for(asyncio.wrap_future(_writer.submit(request)), timeout)
    except TimeoutError:
        # The row may still be committed later: the client retries with the same Idempotency-Key.
        log.error("queue writer: no commit within %s s; the caller is told to retry", timeout)
        raise QueueUnavailable(
            _("La base de datos no respondió a tiempo; reintente con la misma Idempotency-Key.")) from None


def shutdown_writer() -> None:
    _writer.shutdown()
