"""The queue's durable write: a batch of validated messages inserted in one transaction, through psycopg's
pipeline on Postgres and sqlite3's own cursor on SQLite. Knows nothing of HTTP: what it cannot take it
answers with a messaging.errors.MessageRefused. Measured variants: docs/benchmarks.md."""

import functools
import logging
import threading
import uuid
from dataclasses import dataclass

from django.db import DataError, IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from sessions_app.models import WhatsAppSession

from .errors import IdempotencyConflict, InvalidMessage, MessageRefused, QueueUnavailable, UnknownSession
from .models import MessagePayload, OutgoingMessage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SendRequest:
    """A message that passed messaging.intake, ready to be stored."""

    session_id: str
    to: str
    file_name: str  # "" for a text
    caption: str
    data: bytes  # the file, or the text in UTF-8
    sha256: str
    idempotency_key: str | None
    request_hash: str
    kind: str = "document"  # or "image", "text"
    mimetype: str = "application/pdf"


@dataclass(frozen=True)
class Enqueued:
    message_id: uuid.UUID
    created: bool  # False: an idempotent replay of an earlier request


def write_batch(requests: list[SendRequest]) -> list[Enqueued | MessageRefused]:
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
                results.append(InvalidMessage(_("La base de datos rechazó un valor de la solicitud.")))
        return results


def _write_committed(requests: list[SendRequest]) -> list[Enqueued | MessageRefused]:
    """_write in one transaction, committed when this returns: on Postgres outside a caller's transaction the
    batch's own pipeline begins and commits it; elsewhere Django's atomic block (a savepoint in a caller's)."""
    if connection.vendor == "postgresql" and connection.get_autocommit():
        return _write(requests)
    with transaction.atomic():
        return _write(requests)


def _write(requests: list[SendRequest]) -> list[Enqueued | MessageRefused]:
    """Each insert checks its own session and idempotency key (ON CONFLICT DO NOTHING), so a batch is one pass;
    only the requests it left out are looked up after (on Postgres after the commit: what they look for was
    committed before)."""
    message_ids = [uuid.uuid4() for _ in requests]
    insert = _insert_postgres if connection.vendor == "postgresql" else _insert_sqlite
    inserted = insert(_rows(message_ids, requests), requests)
    left_out = [r for r, ok in zip(requests, inserted) if not ok]
    known = _known_sessions({r.session_id for r in left_out}) if left_out else set()
    earlier = _earlier([r for r in left_out if r.idempotency_key and r.session_id in known])
    results: list[Enqueued | MessageRefused] = []
    for message_id, r, ok in zip(message_ids, requests, inserted):
        if ok:
            results.append(Enqueued(message_id, True))
        elif r.session_id not in known:
            results.append(UnknownSession(r.session_id))
        elif (seen := earlier.get((r.session_id, r.idempotency_key))) is not None:
            message_id, request_hash = seen
            results.append(Enqueued(message_id, False) if request_hash == r.request_hash else
                           IdempotencyConflict(_("Esta Idempotency-Key ya se usó con otro contenido.")))
        else:  # the session was configured, or the message holding the key deleted, in the meantime
            results.append(QueueUnavailable(_("La cola cambió durante la solicitud; reintente.")))
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
    """Each new message's column values as the database takes them: the model's defaults prepared once (the
    timestamps once per batch), with the request's own values. Not model objects through bulk_create, whose
    Python time the writer thread shares with the event loop's interpreter."""
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
    COMMIT, then the Sync, answered once the commit is on disk (inside a caller's transaction, only the inserts).
    Through psycopg's own cursors: Django's bind client-side, escaping 100 KB of bytea into the SQL text."""
    import psycopg
    from psycopg.pq import TransactionStatus

    statement = _postgres_statement()
    connection.ensure_connection()
    raw = connection.connection
    # Prepared, though Django turns psycopg's prepared statements off: unprepared, Postgres plans each insert
    # for its values, copying the 100 KB of bytes into the plan twice.
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
    placeholders); the process's own library, so a statement is a call, not a round trip."""
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


def start_sqlite_checkpoints(stop: threading.Event) -> threading.Thread | None:
    """On SQLite, set up this thread's connection for the writer and start the thread that copies the WAL back
    into the database (half the I/O of a 100 KB row), so commits only append to the WAL. None elsewhere."""
    if connection.vendor != "sqlite":
        return None
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA synchronous=FULL")  # a 202 promises the row survives a power cut
        cursor.execute("PRAGMA wal_autocheckpoint=0")
    thread = threading.Thread(target=_checkpoint_until, args=(stop,), name="wal-checkpoint", daemon=True)
    thread.start()
    return thread


def _checkpoint_until(stop: threading.Event, interval: float = 0.5) -> None:
    while not stop.wait(interval):
        try:
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except Exception:
            log.warning("WAL checkpoint failed; retrying", exc_info=True)
            connection.close()
    connection.close()
