"""/healthz (the process is alive and its database answers) and /readyz (it can do its job: database,
a worker with a recent heartbeat, the channel layer). No auth: load balancers and orchestrators call them."""

import asyncio
import time

from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.utils import timezone
from django.utils.translation import gettext as _

from core.db_threads import in_db_thread
from core.errors import error_json

CHANNEL_LAYER_TIMEOUT_SECONDS = 3.0


def _database_answers() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return True
    except Exception:
        return False


def healthz(request):
    """Alive and the database answers."""
    if not _database_answers():
        return JsonResponse({"status": "error", "database": "unreachable"}, status=503)
    return JsonResponse({"status": "ok", "database": "ok"})


def _database_and_worker() -> tuple[dict, dict]:
    from sessions_app.worker_heartbeat import latest_beat

    if not _database_answers():
        return {"ok": False, "error": "database_unreachable"}, {"ok": False, "error": "unknown"}
    try:
        beat = latest_beat()
    except Exception:  # e.g. not migrated
        return {"ok": True}, {"ok": False, "error": "heartbeat_unreadable"}
    if beat is None:
        return {"ok": True}, {"ok": False, "error": "no_worker"}
    age = max(0.0, (timezone.now() - beat).total_seconds())
    if age > settings.READY_WORKER_MAX_AGE_SECONDS:
        return {"ok": True}, {"ok": False, "error": "worker_heartbeat_stale", "ageSeconds": round(age, 1)}
    return {"ok": True}, {"ok": True, "ageSeconds": round(age, 1)}


async def _channel_layer_round_trip() -> dict:
    """A message to a fresh channel of our own and back: Redis (or the in-memory layer) works."""
    layer = get_channel_layer()
    if layer is None:
        return {"ok": False, "error": "channel_layer_missing"}
    started = time.monotonic()
    try:
        async with asyncio.timeout(CHANNEL_LAYER_TIMEOUT_SECONDS):
            channel = await layer.new_channel("readyz.")
            await layer.send(channel, {"type": "readyz.ping"})
            await layer.receive(channel)
    except Exception as exc:
        return {"ok": False, "error": "channel_layer_unreachable", "detail": type(exc).__name__}
    return {"ok": True, "seconds": round(time.monotonic() - started, 3)}


async def readyz(request):
    (database, worker), layer = await asyncio.gather(
        in_db_thread(None, _database_and_worker), _channel_layer_round_trip()
    )
    checks = {"database": database, "worker": worker, "channelLayer": layer}
    failing = [name for name, check in checks.items() if not check["ok"]]
    if not failing:
        return JsonResponse({"status": "ok", "checks": checks})
    return error_json(503, "not_ready", _("El servicio no está listo: %(checks)s.") % {"checks": ", ".join(failing)},
                      checks=checks)
