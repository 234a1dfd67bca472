"""Session-event latency from the worker's publish to the WebSocket client, with Redis as the channel layer.

Starts the web side as production runs it (`manage.py serve --no-worker` with REDIS_URL; temporary SQLite
database, sessions.config.json and sessions folder; a free port) and plays the worker in this process,
so one clock times both ends. For each event it opens nothing new: the sockets stay open, and each event
is timed from the moment the worker publishes until the JSON frame is read on every watching socket.

Two paths are measured:
  group_send   the channel-layer publish alone ({"type": "session.event", ...} to group session.<id>)
  apply_event  the worker's whole step for a QR event, arranged as the supervisor does it: the row update
               and commit on a database thread (sessions_app.session_state.apply_event), the publish
               scheduled on the event loop after the commit

Prints one JSON object. Usage:
    .venv/bin/python bench/ws_latency.py [--events 500] [--watchers 1,10] [--redis redis://127.0.0.1:6379/15]
"""

import argparse
import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"serve exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def summary(samples_ms: list[float]) -> dict:
    ordered = sorted(samples_ms)

    def pct(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))], 3)

    return {"n": len(ordered), "p50_ms": pct(50), "p90_ms": pct(90), "p99_ms": pct(99), "max_ms": round(ordered[-1], 3)}


async def stamped_recv(ws) -> tuple[float, dict]:
    frame = await ws.recv()
    return time.perf_counter(), json.loads(frame)


async def measure(port: int, token: str, session_id: str, watchers: int, events: int, path: str) -> list[float]:
    from channels.layers import get_channel_layer
    from websockets.asyncio.client import connect

    from sessions_app.protocol import group_name
    from sessions_app.session_state import apply_event

    layer = get_channel_layer()
    loop = asyncio.get_running_loop()
    db_thread = ThreadPoolExecutor(1)

    def publish_on_loop(sid: str, message: dict) -> None:
        loop.call_soon_threadsafe(lambda: loop.create_task(layer.group_send(group_name(sid), message)))

    url = f"ws://127.0.0.1:{port}/ws/session/{session_id}"
    sockets = [
        await connect(url, additional_headers={"Authorization": f"Bearer {token}"}, max_queue=None)
        for _ in range(watchers)
    ]
    samples: list[float] = []
    try:
        for ws in sockets:
            first = json.loads(await asyncio.wait_for(ws.recv(), 30))
            assert first == {"event": "status", "data": "initializing"}, first
        warmup = 20
        for i in range(warmup + events):
            data = f"2@bench-{path}-{i}"
            receivers = [asyncio.ensure_future(stamped_recv(ws)) for ws in sockets]
            await asyncio.sleep(0)  # the readers wait before the publish starts
            t0 = time.perf_counter()
            if path == "group_send":
                await layer.group_send(group_name(session_id), {"type": "session.event", "event": "qr", "data": data})
            else:
                await loop.run_in_executor(db_thread, apply_event, session_id, {"event": "qr", "data": data}, publish_on_loop)
            arrivals = await asyncio.wait_for(asyncio.gather(*receivers), 30)
            for t1, message in arrivals:
                assert message == {"event": "qr", "data": data}, message
                if i >= warmup:
                    samples.append((t1 - t0) * 1000)
            await asyncio.sleep(0.002)
    finally:
        for ws in sockets:
            await ws.close()
        db_thread.shutdown()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--watchers", default="1,10", help="sockets watching the session, comma-separated runs")
    parser.add_argument("--redis", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15"))
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="ws-latency-"))
    token = secrets.token_hex(24)
    env = {
        **os.environ,
        "ENV_FILE": os.devnull,
        "API_STATIC_TOKEN": token,
        "DATABASE_URL": f"sqlite:///{work / 'db.sqlite3'}",
        "REDIS_URL": args.redis,
        "SESSIONS_CONFIG": str(work / "sessions.config.json"),
        "SESSIONS_DIR": str(work / "sessions"),
        "WHATSAPP_BACKEND": "simulator",
        "LOG_LEVEL": "WARNING",
    }
    (work / "sessions.config.json").write_text("[]\n")
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--no-worker", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=open(work / "serve.log", "wb"),
    )
    try:
        wait_port(port, server)
        os.environ.update(env)
        os.environ["DJANGO_SETTINGS_MODULE"] = "whatsapp_service.settings"
        import django

        django.setup()
        results = []
        for watchers in [int(w) for w in args.watchers.split(",")]:
            for path in ("group_send", "apply_event"):
                session_id = f"bench_{path}_{watchers}"
                samples = asyncio.run(measure(port, token, session_id, watchers, args.events, path))
                results.append({"path": path, "watchers": watchers, **summary(samples)})
    finally:
        server.terminate()
        server.wait(20)
    print(json.dumps({
        "what": "session event: worker publish -> JSON frame read by a WebSocket client",
        "channel_layer": "channels_redis",
        "server": "manage.py serve --no-worker (uvicorn), SQLite",
        "events_per_run": args.events,
        "target_p99_ms": 50,
        "results": results,
    }, indent=2))


if __name__ == "__main__":
    main()
