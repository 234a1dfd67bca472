"""Group commit into the durable queue.

Every accepted send-pdf (and send-text) request goes through `enqueue()`: a writer thread takes all the
requests waiting at that moment and commits them in one transaction; each caller gets its answer only
after the commit that holds its row. Durable and fast: the commit (an fsync on SQLite) is paid once
per batch instead of once per request. SQLite has one writer thread per process (its single write lock would
make a second wait); Postgres two, each with its own connection, so that one batch's inserts run on one core
while the other batch runs or commits on the other (POSTGRES_WRITERS).
"""

import asyncio
import functools
import logging
import queue
import threading
import uuid
from concurrent.futures import Future
from dataclasses import dataclass

from django.conf import settings
from django.db import DataError, IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from sessions_app.models import WhatsAppSession
from sessions_app.selectors import unknown_session_error
from core.errors import ApiError

from .intake import SendRequest
from .models import MessagePayload, OutgoingMessage

log = logging.getLogger(__name__)

MAX_BATCH_ITEMS = 128
MAX_BATCH_BYTES = 32 * 1024 * 1024
# With one writer the Postgres backend running a batch's inserts and its commit was 83% of that writer's time
# (py-spy under `serve`), one core busy while the other had room. Measured on 2026-12-03 through `serve`
# (bench/send_pdf_throughput.py's service, two runs of four rounds in alternating order): one writer 934 and 960
# requests/s (medians), two 1,013 and 1,103; two won 7 rounds of 8 (by 0.92-1.29, median 1.14). Three: 906
# against 905 for two, four rounds. Measured and not kept (2026-12-03, second stop): each writer thread handing its
# batches to a process of its own over a socket pair (the bytes raw beside the pickled fields), so that no writer
# waits for the event loop's interpreter. Postgres's backends then waited for the client (ClientRead) a quarter of
# their time inside a transaction instead of 45% (pg_stat_activity sampled), yet through serve it gave 496, 473,
# 525, 473 requests/s against 472, 492, 493, 453 (alternating), with 0.2-0.3 ms more server CPU per request: the
# rest of each batch (the inserts' own CPU in Postgres, the commit's WAL fsync) was what bounded it.
POSTGRES_WRITERS = 2


@dataclass(frozen=True)
class Enqueued:
    message_id: uuid.UUID
    created: bool  # False: an idempotent replay of an earlier request


def idempotency_conflict() -> ApiError:
    return ApiError(
        409,
        "idempotency_conflict",
        _("Esta Idempotency-Key ya se usó con otro contenido."),
    )


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
        checkpoints = None
        if connection.vendor == "sqlite":
            # Copying the WAL back into the database is half the I/O of a 100 KB row; a thread of its
            # own does it, so commits here only append to the WAL.
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA synchronous=FULL")  # a 202 promises the row survives a power cut
                cursor.execute("PRAGMA wal_autocheckpoint=0")
            checkpoints = threading.Thread(target=_checkpoint_until, args=(checkpoints_stop,), name="wal-checkpoint",
                                           daemon=True)
            checkpoints.start()
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
            error = ApiError(503, "database_unavailable", _("La base de datos no está disponible; reintente."))
            error.__cause__ = exc
            results = [error] * len(batch)
        for item, result in zip(batch, results):
            if isinstance(result, BaseException):
                item.future.set_exception(result)
            else:
                item.future.set_result(result)


def _checkpoint_until(stop: threading.Event, interval: float = 0.5) -> None:
    while not stop.wait(interval):
        try:
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except Exception:
            log.warning("WAL checkpoint failed; retrying", exc_info=True)
            connection.close()
    connection.close()


def _write_committed(requests: list[SendRequest]) -> list[Enqueued | ApiError]:
    """_write in one transaction, committed when this returns: on Postgres, outside a transaction of the caller's,
    the batch's own pipeline begins and commits it (_insert_postgres); elsewhere Django's atomic block (inside a
    caller's transaction, a savepoint)."""
    if connection.vendor == "postgresql" and connection.get_autocommit():
        return _write(requests)
    with transaction.atomic():
        return _write(requests)


def write_batch(requests: list[SendRequest]) -> list[Enqueued | ApiError]:
    """Commit the acceptable requests of a batch in one transaction; answers in the same order."""
    try:
        return _write_committed(requests)
    except (IntegrityError, DataError):
        # One request holds a value the database refuses, or breaks a constraint the statements do not check
        # themselves. Redo one by one so only that one is affected.
        results = []
        for request in requests:
            try:
                results.append(_write_committed([request])[0])
            except DataError as exc:
                log.warning("queue writer: the database refused a request: %s", exc)
                results.append(ApiError(400, "invalid_parameters",
                                        _("La base de datos rechazó un valor de la solicitud.")))
        return results


def _write(requests: list[SendRequest]) -> list[Enqueued | ApiError]:
    """Each request is inserted by statements that make the checks themselves (the session is configured, the
    idempotency key is new: ON CONFLICT DO NOTHING), so a batch is one pass; on Postgres the batch's statements
    go in one pipeline, one round trip per batch that also commits it, a round trip being a wait for the
    interpreter the event loop keeps busy. Only the requests the statements left out (an unknown session, a key
    seen before) are looked up after (on Postgres, after the commit: the rows they look for were committed
    before)."""
    message_ids = [uuid.uuid4() for _ in requests]
    insert = _insert_postgres if connection.vendor == "postgresql" else _insert_sqlite
    inserted = insert(_rows(message_ids, requests), requests)
    left_out = [r for r, ok in zip(requests, inserted) if not ok]
    known = _known_sessions({r.session_id for r in left_out}) if left_out else set()
    earlier = _earlier([r for r in left_out if r.idempotency_key and r.session_id in known])
    results: list[Enqueued | ApiError] = []
    for message_id, r, ok in zip(message_ids, requests, inserted):
        if ok:
            results.append(Enqueued(message_id, True))
        elif r.session_id not in known:
            results.append(unknown_session_error(r.session_id))
        elif (seen := earlier.get((r.session_id, r.idempotency_key))) is not None:
            message_id, request_hash = seen
            results.append(Enqueued(message_id, False) if request_hash == r.request_hash else idempotency_conflict())
        else:  # the session was configured, or the message holding the key deleted, in the meantime
            results.append(ApiError(503, "database_unavailable", _("La cola cambió durante la solicitud; reintente.")))
    return results


def _known_sessions(session_ids: set[str]) -> set[str]:
    """Those of the sessions that are configured."""
    return set(WhatsAppSession.objects.filter(session_id__in=session_ids, in_config=True).values_list(
        "session_id", flat=True))


def _earlier(keyed: list[SendRequest]) -> dict[tuple[str, str], tuple[uuid.UUID, str]]:
    """(session, idempotency key) -> (message id, request hash) of the messages that already hold those keys."""
    if not keyed:
        return {}
    match = Q()
    for r in keyed:
        match |= Q(session_id=r.session_id, idempotency_key=r.idempotency_key)
    return {(sid, key): (mid, rhash) for sid, key, mid, rhash in OutgoingMessage.objects.filter(match).values_list(
        "session_id", "idempotency_key", "message_id", "request_hash")}


def _rows(message_ids: list[uuid.UUID], requests: list[SendRequest]) -> list[list]:
    """Each new message's column values, as the database takes them: the model's defaults, prepared by its fields
    once (the timestamps once per batch), with the request's own values. Not model objects saved through
    bulk_create: building and saving them took about half of the writer thread's Python time, which shares the
    event loop's interpreter."""
    fields, constant, made = _fields()
    now = timezone.now()
    batch = {**constant, **{f.column: f.get_db_prep_save(now, connection) for f in fields if _is_auto_now(f)}}
    prepare_id = OutgoingMessage._meta.get_field("message_id").get_db_prep_save
    rows = []
    for message_id, r in zip(message_ids, requests):
        # The request's own values are text and whole numbers, as the database takes them; only the id is prepared.
        values = {**batch, "message_id": prepare_id(message_id, connection), "session_id": r.session_id, "to": r.to,
                  "kind": r.kind, "file_name": r.file_name, "caption": r.caption, "mimetype": r.mimetype,
                  "size": len(r.data), "sha256": r.sha256, "idempotency_key": r.idempotency_key,
                  "request_hash": r.request_hash}
        values.update({f.column: f.get_db_prep_save(f.get_default(), connection)
                       for f in made if f.column not in values})
        rows.append([values[f.column] for f in fields])
    return rows


def _is_auto_now(field) -> bool:
    return getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)


@functools.cache
def _fields() -> tuple[list, dict, list]:
    """The message's columns but its key; the defaults that never change, prepared once; the fields whose
    default is made per row (a callable), where the request does not give the value."""
    fields = [f for f in OutgoingMessage._meta.concrete_fields if not f.primary_key]
    made = [f for f in fields if f.has_default() and callable(f.default)]
    constant = {f.column: f.get_db_prep_save(f.get_default(), connection) for f in fields
                if not _is_auto_now(f) and f not in made}
    return fields, constant, made


def _insert_message_sql(placeholder: str) -> str:
    """Inserts one message row when its session is configured and its idempotency key (if any) is new;
    returns its key only then."""
    quote = connection.ops.quote_name
    session = WhatsAppSession._meta
    columns = [f.column for f in _fields()[0]]
    return (f"INSERT INTO {quote(OutgoingMessage._meta.db_table)} ({', '.join(map(quote, columns))}) "
            f"SELECT {', '.join([placeholder] * len(columns))} WHERE EXISTS (SELECT 1 FROM {quote(session.db_table)} "
            f"WHERE {quote(session.pk.column)} = {placeholder} AND {quote(session.get_field('in_config').column)}) "
            f"ON CONFLICT (session_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING "
            f"RETURNING {quote(OutgoingMessage._meta.pk.column)}")


@functools.cache
def _postgres_statement() -> str:
    """One message row and its bytes, in one statement."""
    quote = connection.ops.quote_name
    return (f"WITH message AS ({_insert_message_sql('%s')}) "
            f"INSERT INTO {quote(MessagePayload._meta.db_table)} (message_id, data) "
            f"SELECT {quote(OutgoingMessage._meta.pk.column)}, %b FROM message RETURNING message_id")


def _insert_postgres(rows: list[list], requests: list[SendRequest]) -> list[bool]:
    """Whether each message went in. The batch is one pipeline and one round trip: BEGIN, an insert per message,
    COMMIT, then the Sync whose answer comes once the commit is on disk (inside a caller's transaction, only the
    inserts). Through Django's transaction it was three: psycopg sends BEGIN and waits for it before the first
    insert, then the inserts (executemany waits for RETURNING rows), then Django's COMMIT; Postgres's backends
    idled in their transaction 15% of the time after BEGIN alone (pg_stat_activity sampled). Through serve on
    2026-12-03 against the three: 9 of 13 alternating pairs won, +1% to +7% (median +4%) in the five where the
    host took under 0.13 cores from either (the rest moved by a third with it). Through psycopg's own cursors:
    Django's binds client-side, escaping 100 KB of bytea into the SQL text. Measured on 2026-12-03 and not kept:
    the COMMIT in the pipeline inside Django's transaction (within the noise through serve, +3% once the rounds'
    order is allowed for, with Postgres's CPU per request up a quarter); the whole batch as one statement over
    unnest()ed arrays (the queue writer alone no faster, with or without a thread holding the interpreter beside
    it); and, with BEGIN and COMMIT in the pipeline, one executemany without RETURNING (the rows that went in
    told by its row count, else looked up): no faster than a cursor per insert in six alternating pairs."""
    import psycopg
    from psycopg.pq import TransactionStatus

    statement = _postgres_statement()
    connection.ensure_connection()
    raw = connection.connection
    # Prepared, though Django turns psycopg's prepared statements off: unprepared, Postgres plans each insert
    # for its values, copying the 100 KB of bytes into the plan twice; that was a quarter of its CPU per row.
    raw.prepare_threshold = 0
    own = connection.get_autocommit()  # else the caller's transaction holds the batch
    with connection.wrap_database_errors:  # Django's errors
        try:
            with raw.pipeline():
                if own:
                    psycopg.Cursor(raw).execute("BEGIN", prepare=False)
                cursors = [psycopg.Cursor(raw).execute(statement, [*row, r.session_id, r.data])
                           for row, r in zip(rows, requests)]
                if own:
                    psycopg.Cursor(raw).execute("COMMIT", prepare=False)
        except BaseException:
            # An insert refused, or a value psycopg could not send after the first inserts went: the Sync ended the
            # pipeline with the transaction open or failed. None of the batch stays.
            if own and raw.pgconn.transaction_status != TransactionStatus.IDLE:
                raw.rollback()
            raise
    return [cursor.fetchone() is not None for cursor in cursors]


@functools.cache
def _sqlite_statements() -> tuple[str, str]:
    return (_insert_message_sql("?"),
            f"INSERT INTO {connection.ops.quote_name(MessagePayload._meta.db_table)} (message_id, data) VALUES (?, ?)")


def _insert_sqlite(rows: list[list], requests: list[SendRequest]) -> list[bool]:
    """Whether each message went in, through sqlite3's own cursor (Django's rewrites each statement's
    placeholders); the process's own library, so a statement is a call, not a round trip. Two statements per
    batch (every message from one `SELECT * FROM (VALUES ...)`, then every payload) were measured slower on
    2026-12-03: 737-822 rows/s against 809-1,309, the queue writer alone with 16 callers, four alternating runs."""
    insert_message, insert_payload = _sqlite_statements()
    inserted = []
    with connection.wrap_database_errors:  # Django's errors
        cursor = connection.connection.cursor()
        try:
            for row, r in zip(rows, requests):
                returned = cursor.execute(insert_message, [*row, r.session_id]).fetchall()
                if returned:
                    cursor.execute(insert_payload, (returned[0][0], r.data))
                inserted.append(bool(returned))
        finally:
            cursor.close()
    return inserted


_writer = QueueWriter()


def enqueue(request: SendRequest) -> Enqueued:
    """Commit the request to the queue (or find its idempotent twin). Raises ApiError, 503 when the
    commit does not come within QUEUE_WRITE_TIMEOUT_SECONDS."""
    try:
        return _writer.submit(request).result(timeout=settings.QUEUE_WRITE_TIMEOUT_SECONDS)
    except TimeoutError:
        raise _no_answer() from None


async def enqueue_async(request: SendRequest) -> Enqueued:
    try:
        return await asyncio.wait_for(asyncio.wrap_future(_writer.submit(request)), settings.QUEUE_WRITE_TIMEOUT_SECONDS)
    except TimeoutError:
        raise _no_answer() from None


def _no_answer() -> ApiError:
    # The row may still be committed later: the client retries with the same Idempotency-Key.
    log.error("queue writer: no commit within %s s; answering 503", settings.QUEUE_WRITE_TIMEOUT_SECONDS)
    return ApiError(503, "database_unavailable",
                    _("La base de datos no respondió a tiempo; reintente con la misma Idempotency-Key."))


def shutdown_writer() -> None:
    _writer.shutdown()
