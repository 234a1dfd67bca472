"""Claim rows of a work table for one claimer: the one way the queues take work (messages, webhook
events, session commands, session leases).

A caller says which rows may be taken now, in its order (`candidates`: due, free or expired, FIFO)
and what taking one writes (`take`: its lease columns). On Postgres the rows are read with
SELECT ... FOR UPDATE SKIP LOCKED and taken in the same short transaction: rows another claimer is
taking are skipped, never waited for. On SQLite, which has no row locks, they are read and taken
by a compare-and-swap, UPDATE ... WHERE pk IN (...) AND <still a candidate>, in one transaction;
SQLite runs one writing transaction at a time, so every row read is taken, and were one not, the
claim is rolled back and takes nothing. The network work happens after the transaction.
"""

from django.db import connection, transaction
from django.db.models import QuerySet


class _Raced(Exception):
    pass


def claim(candidates: QuerySet, *, take: dict, limit: int, fields=()) -> list:
    """Take up to `limit` rows of `candidates` (filtered and ordered, not sliced) by writing `take`
    on them. Returns the rows won, in order, as they were before the claim (only `fields` of them
    when given). Inside a caller's transaction it joins it: a caller may check a fence first."""
    rows = candidates.only(*fields) if fields else candidates
    if connection.features.has_select_for_update_skip_locked:
        with transaction.atomic(savepoint=False):
            won = list(rows.select_for_update(skip_locked=True)[:limit])
            if won:  # locked by this transaction: every one is ours
                candidates.model._default_manager.filter(pk__in=[r.pk for r in won]).update(**take)
        return won
    if not connection.in_atomic_block and not rows[:1].exists():
        return []  # nothing to take: no write lock taken (a transaction takes SQLite's at BEGIN)
    try:
        with transaction.atomic():
            won = list(rows[:limit])
            if won and candidates.filter(pk__in=[r.pk for r in won]).update(**take) != len(won):
                raise _Raced  # not serialized after all: take none rather than guess which
    except _Raced:
        return []
    return won
