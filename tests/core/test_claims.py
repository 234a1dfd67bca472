"""The claim-with-lease primitive (core.claims) on the real database, SQLite and Postgres runs: FIFO,
never a row twice, what a poll with nothing to take costs, locked rows skipped."""

import sqlite3
import threading
import time

import pytest
from django.db import connection, connections, transaction

from core.claims import claim
from sessions_app.models import CommandState, SessionCommand

pytestmark = pytest.mark.django_db(transaction=True)

RUNNING = {"state": CommandState.RUNNING}


def pending():
    return SessionCommand.objects.filter(state=CommandState.PENDING).order_by("id")


def make_commands(n: int) -> list[int]:
    return [SessionCommand.objects.create(session_id="tienda_lima", kind="logout").pk for _ in range(n)]


def test_the_oldest_candidates_are_taken_up_to_the_limit_and_returned_as_they_were():
    pks = make_commands(5)
    first = claim(pending(), take=RUNNING, limit=3)
    assert [c.pk for c in first] == pks[:3]
    assert {c.state for c in first} == {CommandState.PENDING}  # as read, before the claim
    assert set(SessionCommand.objects.filter(state=CommandState.RUNNING).values_list("pk", flat=True)) == set(pks[:3])
    assert [c.pk for c in claim(pending(), take=RUNNING, limit=3)] == pks[3:]
    assert claim(pending(), take=RUNNING, limit=3) == []


@pytest.mark.parametrize("limit", [1, 5])
def test_concurrent_claimers_never_take_the_same_row(limit):
    make_commands(40)
    taken: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def claimer() -> None:
        try:
            start.wait()
            while True:
                won = claim(pending(), take=RUNNING, limit=limit)
                if not won and not pending().exists():
                    break
                taken.extend(c.pk for c in won)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=claimer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(taken) == 40 and len(set(taken)) == 40


@pytest.mark.sqlite_only
def test_a_poll_with_nothing_to_take_does_not_wait_for_sqlites_write_lock():
    """Pollers (commands every half second, the webhook outbox) must not queue behind the writer."""
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's write lock: runs in the SQLite run of the suite")
    make_commands(1)
    claim(pending(), take=RUNNING, limit=10)
    writer = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        started = time.monotonic()
        assert claim(pending(), take=RUNNING, limit=10) == []
        assert time.monotonic() - started < 1.0  # busy_timeout is 20 s: it never waited
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_a_row_another_claimer_has_locked_is_skipped_not_waited_for():
    if connection.vendor != "postgresql":
        pytest.skip("row locks: runs in the Postgres run of the suite")
    first, second = make_commands(2)
    locked, release = threading.Event(), threading.Event()

    def hold_first() -> None:
        try:
            with transaction.atomic():
                list(SessionCommand.objects.select_for_update().filter(pk=first))
                locked.set()
                release.wait(10)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_first)
    holder.start()
    try:
        assert locked.wait(10)
        started = time.monotonic()
        assert [c.pk for c in claim(pending(), take=RUNNING, limit=2)] == [second]
        assert time.monotonic() - started < 1.0
    finally:
        release.set()
        holder.join()
    assert [c.pk for c in claim(pending(), take=RUNNING, limit=2)] == [first]
