"""/readyz through real processes: ready only while a worker beats, the database answers and the
channel layer carries a message."""


import httpx
import pytest

from sessions_app.models import WorkerHeartbeat
from tests.processes import free_port, runworker, serve, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

BEAT = {"WORKER_HEARTBEAT_SECONDS": "0.5", "READY_WORKER_MAX_AGE_SECONDS": "5", "SESSION_POLL_SECONDS": "0.2"}


def readyz(server) -> httpx.Response:
    return httpx.get(f"{server.url}/readyz", timeout=30)


def test_ready_only_while_a_worker_beats(configured, tmp_path):
    with serve(tmp_path, "--no-worker", **BEAT) as web:
        alone = readyz(web)
        assert alone.status_code == 503
        body = alone.json()
        assert (body["success"], body["error"]) == (False, "not_ready")
        assert body["checks"]["worker"] == {"ok": False, "error": "no_worker"}
        assert body["checks"]["database"]["ok"] and body["checks"]["channelLayer"]["ok"]

        with runworker(tmp_path, **BEAT) as worker:
            ready = wait_for(lambda: (r := readyz(web)).status_code == 200 and r)
            assert ready.json()["status"] == "ok"
            beat = WorkerHeartbeat.objects.get()
            assert beat.pid == worker.proc.pid
        # Stopped cleanly: its heartbeat is gone at once, not after it ages.
        assert WorkerHeartbeat.objects.count() == 0
        assert readyz(web).json()["checks"]["worker"]["error"] == "no_worker"

        with runworker(tmp_path, **BEAT) as worker:
            wait_for(lambda: readyz(web).status_code == 200)
            worker.kill()  # no clean stop: the heartbeat row stays and ages
            stale = wait_for(lambda: (r := readyz(web)).status_code == 503 and r, timeout=30)
        assert stale.json()["checks"]["worker"]["error"] == "worker_heartbeat_stale"


def test_embedded_serve_is_ready_by_itself_and_healthz_needs_no_worker(configured, tmp_path):
    with serve(tmp_path, **BEAT) as server:
        wait_for(lambda: readyz(server).status_code == 200)
        assert httpx.get(f"{server.url}/healthz", timeout=30).status_code == 200


def test_unreachable_redis_makes_it_not_ready(configured, tmp_path):
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    with serve(tmp_path, **BEAT, REDIS_URL=dead_redis) as server:
        response = wait_for(lambda: (r := readyz(server)).json()["checks"]["worker"]["ok"] and r)
    assert response.status_code == 503
    assert response.json()["checks"]["channelLayer"]["error"] == "channel_layer_unreachable"
    assert response.json()["checks"]["database"]["ok"]


@pytest.mark.redis
def test_ready_through_real_redis_with_web_and_worker_apart(configured, tmp_path):
    import os

    from tests.conftest import need, reachable

    need(reachable("127.0.0.1", 6379), "Redis at 127.0.0.1:6379")
    redis = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    with serve(tmp_path, "--no-worker", **BEAT, REDIS_URL=redis) as web, runworker(tmp_path, **BEAT, REDIS_URL=redis):
        response = wait_for(lambda: (r := readyz(web)).status_code == 200 and r)
    assert response.json()["checks"]["channelLayer"]["ok"]
