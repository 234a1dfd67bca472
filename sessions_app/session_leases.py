"""Which worker runs which session: leases in the database, renewed by their holder, fenced by epochs.

Every SESSION_LEASE_RENEW_SECONDS a worker takes its turn (`turn()`): it writes its heartbeat, renews
the leases it holds, works out its fair share of the configured sessions among the live workers (by
their capacities) and takes free sessions up to it. A lease is free when nobody holds it, when it
expired (its holder stopped renewing), or when its holder is a process of this host that is gone.
Above its share (a worker joined), a worker stops the surplus sessions and then releases them.

Fencing: a session changes hands only after its lease expired by the database's clock, and the epoch
grows by one each time. The holder stops its session processes before the lease can expire, on its own
monotonic clock (durations, never wall-clock times, so clock skew between hosts does not matter), and
the session process stops itself too if its supervisor stops renewing (a paused worker). A session
process starts, and a message is claimed, only under a lease checked in the database (`holds()`).
"""

import logging
import math
import os
import socket
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from django.db import connection, transaction
from django.db.models import DateTimeField, ExpressionWrapper, F, Q
from django.db.models.functions import Now
from django.utils import timezone

from core.claims import claim

from . import worker_heartbeat
from .models import SessionLease, WhatsAppSession, WorkerHeartbeat

log = logging.getLogger(__name__)

# A process of this host found gone counts as dead only after this long: the session processes it
# forked die with it (PR_SET_PDEATHSIG), a moment later.
LOCAL_DEATH_GRACE_SECONDS = 2.0
_seen_dead: dict[str, float] = {}


@dataclass
class Turn:
    held: dict[str, int]  # session id -> epoch: the leases this worker holds now
    surplus: list[str] = field(default_factory=list)  # held beyond its share: stop, then release()
    acquired: list[str] = field(default_factory=list)


def _in(seconds: float) -> ExpressionWrapper:
    return ExpressionWrapper(Now() + timedelta(seconds=seconds), output_field=DateTimeField())


def is_dead_local(worker_id: str, me: str = "") -> bool:
    """A worker of this host (id host:pid:token) whose process no longer runs."""
    host, _, rest = worker_id.partition(":")
    pid, _, _token = rest.partition(":")
    if host != socket.gethostname() or not pid.isdigit() or worker_id == me:
        return False
    if int(pid) == os.getpid():  # an earlier worker of this process (ids differ): gone
        return True
    try:  # a zombie (killed, not yet reaped by its parent) is as gone as a missing process
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return True


def _dead_long_enough(worker_id: str, me: str) -> bool:
    if not is_dead_local(worker_id, me):
        _seen_dead.pop(worker_id, None)
        return False
    first = _seen_dead.setdefault(worker_id, time.monotonic())
    return time.monotonic() - first >= LOCAL_DEATH_GRACE_SECONDS


def fair_share(total: int, capacities: list[int], mine: int) -> int:
    """How many of `total` sessions a worker of capacity `mine` should run, when the live workers
    (itself included) have `capacities` (0: no limit): equal shares, except that a worker never gets
    more than its capacity and the rest goes to the others. Rounded up, so no session is left over."""
    caps = sorted(c if c > 0 else total for c in capacities)
    remaining, level = total, float(total)
    for index, cap in enumerate(caps):
        even = remaining / (len(caps) - index)
        if cap >= even:
            level = even
            break
        remaining -= cap
    mine = mine if mine > 0 else total
    return min(mine, math.ceil(level))


def turn(worker_id: str, started_at, capacity: int, lease_seconds: float) -> Turn:
    """One renewal turn of worker `worker_id` (see the module's docstring)."""
    worker_heartbeat.beat(worker_id, started_at, capacity)
    configured = set(WhatsAppSession.objects.filter(in_config=True).values_list("session_id", flat=True))
    known = set(SessionLease.objects.values_list("session_id", flat=True))
    SessionLease.objects.bulk_create([SessionLease(session_id=s) for s in configured - known], ignore_conflicts=True)

    mine = SessionLease.objects.filter(owner=worker_id)
    mine.exclude(session_id__in=configured).update(owner="", expires_at=Now())  # no longer configured
    mine.update(expires_at=_in(lease_seconds))
    held = dict(mine.values_list("session_id", "epoch"))

    since = timezone.now() - timedelta(seconds=lease_seconds)
    others = WorkerHeartbeat.objects.filter(beat_at__gte=since).exclude(worker_id=worker_id)
    capacities = [c for w, c in others.values_list("worker_id", "capacity") if not is_dead_local(w, worker_id)]
    share = fair_share(len(configured), [*capacities, capacity], capacity)

    acquired: list[str] = []
    if len(held) < share:
        acquired = _acquire(worker_id, configured, share - len(held), lease_seconds)
        held.update(SessionLease.objects.filter(session_id__in=acquired, owner=worker_id).values_list("session_id", "epoch"))
    surplus = sorted(held)[share:] if len(held) > share else []
    return Turn(held=held, surplus=surplus, acquired=acquired)


def bound_locks(lease_seconds: float) -> None:
    """Inside a transaction that locks lease rows: on Postgres, the server ends it if its client stops
    talking for a fifth of a lease (a worker paused mid-transaction), so the rows it locked never keep
    another worker from taking a session over."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL idle_in_transaction_session_timeout = {max(1000, int(lease_seconds * 200))}")


def _acquire(worker_id: str, configured: set[str], wanted: int, lease_seconds: float) -> list[str]:
    owners = set(SessionLease.objects.exclude(owner="").exclude(owner=worker_id).values_list("owner", flat=True))
    dead = [o for o in owners if _dead_long_enough(o, worker_id)]
    free = Q(owner="") | Q(expires_at__isnull=True) | Q(expires_at__lt=Now()) | Q(owner__in=dead)
    with transaction.atomic():
        bound_locks(lease_seconds)
        candidates = SessionLease.objects.filter(free, session_id__in=configured).exclude(owner=worker_id)
        won = claim(candidates.order_by("expires_at", "session_id"), limit=wanted, fields=("session_id", "owner"),
                    take={"owner": worker_id, "epoch": F("epoch") + 1, "expires_at": _in(lease_seconds),
                          "acquired_at": Now()})
    for lease in won:
        if lease.owner:
            log.info("session %s: taken over from %s", lease.session_id, lease.owner)
    return [lease.session_id for lease in won]


def holds(worker_id: str, session_id: str, epoch: int) -> bool:
    """Whether `worker_id` still holds the session's lease of this epoch, unexpired."""
    return SessionLease.objects.filter(
        session_id=session_id, owner=worker_id, epoch=epoch, expires_at__gt=Now()
    ).exists()


def release(worker_id: str, session_ids: list[str]) -> int:
    """Give sessions up (their processes have stopped): free for the next worker at once."""
    return SessionLease.objects.filter(owner=worker_id, session_id__in=session_ids).update(owner="", expires_at=Now())


def release_all(worker_id: str) -> int:
    return SessionLease.objects.filter(owner=worker_id).update(owner="", expires_at=Now())


def held_elsewhere(worker_id: str) -> set[str]:
    """Sessions another live worker holds: their status rows are that worker's to write."""
    rows = SessionLease.objects.filter(expires_at__gt=Now()).exclude(owner="").exclude(owner=worker_id)
    return {s for s, owner in rows.values_list("session_id", "owner") if not is_dead_local(owner, worker_id)}


def owners() -> dict[str, str]:
    """Session id -> the worker that holds it now (an unexpired lease)."""
    return dict(SessionLease.objects.filter(expires_at__gt=Now()).exclude(owner="").values_list("session_id", "owner"))
