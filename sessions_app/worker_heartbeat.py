"""The worker's heartbeat row: a supervisor says it is alive (WorkerHeartbeat), /readyz and the
restore command ask whether one is."""

import os
import socket
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from .models import WorkerHeartbeat


def new_worker_id() -> str:
    """host:pid:token; the token starts with a letter, so the log's phone-number masking never hides it."""
    return f"{socket.gethostname()}:{os.getpid()}:w{uuid.uuid4().hex[:8]}"


# Rows of workers that died without stopping cleanly (kill -9, power loss) are dropped after this long.
FORGOTTEN_AFTER = timedelta(days=1)


def beat(worker_id: str, started_at: datetime, capacity: int = 0) -> None:
    WorkerHeartbeat.objects.filter(beat_at__lt=timezone.now() - FORGOTTEN_AFTER).delete()
    WorkerHeartbeat.objects.update_or_create(
        worker_id=worker_id,
        defaults={"host": socket.gethostname()[:255], "pid": os.getpid(), "started_at": started_at,
                  "beat_at": timezone.now(), "capacity": max(0, capacity)},
    )


def forget(worker_id: str) -> None:
    """A worker that stops cleanly is no longer there: it must not look alive until its row ages."""
    WorkerHeartbeat.objects.filter(worker_id=worker_id).delete()


def latest_beat() -> datetime | None:
    return WorkerHeartbeat.objects.order_by("-beat_at").values_list("beat_at", flat=True).first()


def worker_alive(max_age: float | None = None) -> bool:
    """A worker beat within max_age seconds (default READY_WORKER_MAX_AGE_SECONDS)."""
    max_age = settings.READY_WORKER_MAX_AGE_SECONDS if max_age is None else max_age
    return WorkerHeartbeat.objects.filter(beat_at__gte=timezone.now() - timedelta(seconds=max_age)).exists()
