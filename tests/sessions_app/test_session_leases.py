"""Session leases on the real database (both SQLite and Postgres runs): shares, takeovers, epochs, fencing.
The same in real processes: tests/sessions_app/test_multiple_workers.py."""

import time

import pytest
from django.utils import timezone

from sessions_app import session_leases
from sessions_app.models import SessionLease, WhatsAppSession
from sessions_app.session_leases import fair_share, holds, release, turn

pytestmark = pytest.mark.django_db(transaction=True)

LEASE = 2.0


@pytest.fixture
def sessions(db):
    ids = [f"tienda_{n:02d}" for n in range(10)]
    WhatsAppSession.objects.bulk_create([WhatsAppSession(session_id=s) for s in ids])
    return ids


def test_fair_share_splits_evenly_and_respects_capacities():
    assert fair_share(30, [0, 0, 0], 0) == 10
    assert fair_share(30, [0, 0, 0, 0], 0) == 8  # rounded up: 8 + 8 + 8 + 6, nobody left over
    assert fair_share(30, [5, 0], 0) == 25  # the small worker takes 5, the rest falls to the other
    assert fair_share(30, [5, 0], 5) == 5
    assert fair_share(30, [5, 5], 5) == 5  # not enough capacity for all: the rest waits unowned
    assert fair_share(0, [0], 0) == 0


def test_one_worker_takes_every_session_and_renews_them(sessions):
    first = turn("host:1:a", timezone.now(), 0, LEASE)
    assert set(first.held) == set(sessions) and set(first.acquired) == set(sessions)
    assert set(first.held.values()) == {1}
    again = turn("host:1:a", timezone.now(), 0, LEASE)
    assert again.held == first.held and again.acquired == []  # renewed, same epochs
    assert all(holds("host:1:a", s, 1) for s in sessions)


def test_a_second_worker_gets_a_fair_share_once_the_first_hands_it_over(sessions):
    a = turn("host:1:a", timezone.now(), 0, LEASE)
    b = turn("host:1:b", timezone.now(), 0, LEASE)  # A's leases are live: nothing free yet
    assert b.held == {}
    a = turn("host:1:a", timezone.now(), 0, LEASE)
    assert len(a.surplus) == 5  # above its share of 10 / 2 workers
    assert release("host:1:a", a.surplus) == 5
    b = turn("host:1:b", timezone.now(), 0, LEASE)
    assert sorted(b.held) == a.surplus
    assert set(b.held.values()) == {2}  # a new epoch for each session that changed hands
    owners = dict(SessionLease.objects.values_list("session_id", "owner"))
    assert sorted(owners.values()).count("host:1:a") == 5 and sorted(owners.values()).count("host:1:b") == 5


def test_an_expired_lease_is_taken_over_with_a_new_epoch_and_fences_the_old_holder(sessions):
    turn("host:1:a", timezone.now(), 3, LEASE)
    assert holds("host:1:a", "tienda_00", 1)
    b = turn("host:1:b", timezone.now(), 0, LEASE)
    assert set(b.held).isdisjoint(["tienda_00", "tienda_01", "tienda_02"])  # A's three are still live
    time.sleep(LEASE + 0.3)  # A stops renewing (paused, or cut off from the database)
    b = turn("host:1:b", timezone.now(), 0, LEASE)
    assert b.held["tienda_00"] == 2
    assert not holds("host:1:a", "tienda_00", 1)
    a = turn("host:1:a", timezone.now(), 3, LEASE)  # A comes back: its old leases are gone for good
    assert "tienda_00" not in a.held


def test_a_dead_process_of_this_host_loses_its_sessions_without_waiting_for_the_lease(sessions, monkeypatch):
    monkeypatch.setattr(session_leases, "LOCAL_DEATH_GRACE_SECONDS", 0.2)
    gone = f"{__import__('socket').gethostname()}:999999999:dead"  # no such pid
    turn(gone, timezone.now(), 0, 60.0)
    assert turn("host:1:b", timezone.now(), 0, 60.0).held == {}  # first seen dead: a grace period
    time.sleep(0.3)
    assert set(turn("host:1:b", timezone.now(), 0, 60.0).held) == set(sessions)


def test_a_capacity_caps_what_a_worker_takes(sessions):
    assert len(turn("host:1:a", timezone.now(), 4, LEASE).held) == 4
    assert len(turn("host:1:b", timezone.now(), 0, LEASE).held) == 6


def test_claims_need_the_current_lease(sessions):
    from messaging.models import OutgoingMessage
    from messaging.send_queue import claim_batch

    turn("host:1:a", timezone.now(), 0, LEASE)
    OutgoingMessage.objects.create(session_id="tienda_00", to="51987654321", file_name="a.pdf")
    assert claim_batch("tienda_00", "disp-b", 30, 1, fence=("host:1:b", 1)) == []  # not B's
    assert claim_batch("tienda_00", "disp-a", 30, 1, fence=("host:1:a", 0)) == []  # an old epoch
    [claimed] = claim_batch("tienda_00", "disp-a", 30, 1, fence=("host:1:a", 1))
    # B takes over after A's lease expired: A's claim in flight is taken back at once, marked resumed.
    time.sleep(LEASE + 0.3)
    b = turn("host:1:b", timezone.now(), 0, LEASE)
    [again] = claim_batch("tienda_00", "disp-b", 30, 1, fence=("host:1:b", b.held["tienda_00"]))
    assert again.pk == claimed.pk and again.resumed


def test_a_killed_worker_not_yet_reaped_counts_as_gone():
    import signal
    import socket
    import subprocess

    child = subprocess.Popen(["sleep", "60"])
    worker = f"{socket.gethostname()}:{child.pid}:cafe"
    assert not session_leases.is_dead_local(worker)
    child.send_signal(signal.SIGKILL)
    time.sleep(0.2)  # a zombie now: its parent (this test) has not waited for it
    assert session_leases.is_dead_local(worker)
    child.wait()
    assert session_leases.is_dead_local(worker)
    assert not session_leases.is_dead_local(f"other-host:{child.pid}:cafe")  # another host's: unknown here


def test_a_worker_paused_inside_a_claim_does_not_keep_its_session_from_moving(sessions):
    """Postgres: the claim locks the lease row; a client that stops talking mid-transaction has it ended
    by the server, so the lock cannot outlive the lease."""
    import threading

    from django.db import connection, connections, transaction

    if connection.vendor != "postgresql":
        pytest.skip("row locks and server-side timeouts: runs in the Postgres run of the suite")
    turn("host:1:a", timezone.now(), 1, LEASE)
    paused = threading.Event()

    def claim_then_freeze():
        try:
            with transaction.atomic():
                session_leases.bound_locks(LEASE)
                list(SessionLease.objects.select_for_update(no_key=True).filter(session_id="tienda_00"))
                paused.set()
                time.sleep(LEASE + 2)  # frozen mid-transaction, holding the row
        except Exception:
            pass  # the server ended the transaction: what this test is about
        finally:
            connections.close_all()

    frozen = threading.Thread(target=claim_then_freeze)
    frozen.start()
    assert paused.wait(10)
    time.sleep(LEASE + 0.5)
    b = turn("host:1:b", timezone.now(), 0, LEASE)
    frozen.join()
    assert "tienda_00" in b.held
