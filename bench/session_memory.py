"""Memory and start-up cost of real neonize session processes, and the supervisor's CPU when idle.

Prints one JSON object. Usage (from anywhere):
    .venv/bin/python bench/session_memory.py [--sessions 10,50] [--idle-seconds 20]

How the steady state is held. WhatsApp is unreachable on this machine: a real connect fails within a
second and the session process exits. So the processes measured here are forked the way
sessions_app.session_process.spawn forks them (multiprocessing's forkserver, with the same preload
list), and each one runs NeonizeBackend.run() once for real: the Go library is loaded, the client
created, its SQLite store opened, one connect attempted (and failed); then it stays alive to be
measured. A session that is really connected adds its websocket, keys and caches on top of this.
PSS (proportional set size, /proc/<pid>/smaps_rollup) divides every shared page among the processes
that map it, so the sum over the processes is their real joint footprint.

Also timed: spawning sessions through the real spawn() until each has sent its first event (the
connect failure). And the supervisor's (`manage.py runworker`) own CPU: idle, with that many simulator
sessions up and waiting for a QR scan (a neonize session cannot stay up here), and with that many
neonize sessions failing and being restarted on the backoff schedule.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from multiprocessing.connection import Connection, wait
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MiB = 1024 * 1024


def smaps_rollup(pid: int) -> dict[str, int]:
    """Bytes by field (Rss, Pss, Private_Dirty, ...) for one process."""
    fields = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                fields[parts[0].rstrip(":")] = int(parts[1]) * 1024
    return fields


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def hold_session(session_id: str, store_dir: str, conn: Connection) -> None:
    """Child side: one real NeonizeBackend run, then stay alive until the parent says so."""
    preloaded = "neonize.client" in sys.modules  # the forkserver's copy, inherited by fork
    from sessions_app.backends.base import BackendError
    from sessions_app.backends.neonize_backend import NeonizeBackend

    backend = NeonizeBackend(session_id, Path(store_dir), lambda event: None)
    try:
        backend.run()
        outcome = "returned"
    except BackendError as exc:
        outcome = exc.code
    conn.send({"preloaded": preloaded, "outcome": outcome})
    conn.recv()
    os._exit(0)


def setup_django(sessions_dir: Path) -> None:
    os.environ.update(
        ENV_FILE=os.devnull,
        DJANGO_SETTINGS_MODULE="whatsapp_service.settings",
        API_STATIC_TOKEN=os.environ.get("API_STATIC_TOKEN", "bench-token-0123456789abcdef"),
        WHATSAPP_BACKEND="neonize",
        SESSIONS_DIR=str(sessions_dir),
    )
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def forkserver_context():
    """The context and preload list spawn() uses, so the measured children share what real ones do."""
    import multiprocessing

    from sessions_app import session_process
    from sessions_app.backends.neonize_backend import NeonizeBackend

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(session_process.preload_modules(NeonizeBackend))
    return ctx


def forkserver_pid() -> int | None:
    from multiprocessing import forkserver

    return forkserver._forkserver._forkserver_pid


def spawn_until_first_event(count: int) -> dict:
    """The real spawn(): time until every session process has sent its first event."""
    from sessions_app.session_process import spawn

    started = time.monotonic()
    children = [spawn(f"bench_spawn_{i}", backend="neonize") for i in range(count)]
    spawned = time.monotonic() - started
    pending = {conn: proc for proc, conn in children}
    first_events: dict[str, int] = {}
    deadline = time.monotonic() + 120
    while pending and time.monotonic() < deadline:
        for conn in wait(list(pending), timeout=1):
            try:
                event = conn.recv().name
            except EOFError:
                event = "exited"
            if event != "heartbeat":
                first_events[event] = first_events.get(event, 0) + 1
                pending.pop(conn)
    elapsed = time.monotonic() - started
    for proc, conn in children:
        proc.join(10)
        conn.close()
    return {
        "sessions": count,
        "seconds_to_fork_all": round(spawned, 2),
        "seconds_until_all_reported": round(elapsed, 2),
        "first_events": first_events,
        "unanswered": len(pending),
    }


def proxied_context(index: int):
    """A context like spawn()'s for a session with a proxy of its own (a closed port: the connect fails)."""
    from sessions_app import proxies, session_process
    from sessions_app.backends.neonize_backend import NeonizeBackend

    ctx = proxies.process_context(f"http://127.0.0.1:{20000 + index}")
    ctx.set_forkserver_preload(session_process.preload_modules(NeonizeBackend))
    return ctx


def held_sessions(ctx, count: int, store_root: Path, proxy_each: bool = False) -> dict:
    """With proxy_each, every session has a proxy of its own, so a forkserver of its own: the figures
    then count those forkservers too."""
    started = time.monotonic()
    children = []
    for i in range(count):
        if proxy_each:
            ctx = proxied_context(i)
        ours, theirs = ctx.Pipe()
        store = store_root / f"bench_{count}_{i}"
        store.mkdir(mode=0o700, parents=True)
        proc = ctx.Process(target=hold_session, args=(store.name, str(store), theirs), daemon=True)
        proc.start()
        theirs.close()
        children.append((proc, ours))
    reports = [conn.recv() for _, conn in children]
    start_seconds = time.monotonic() - started
    time.sleep(2)  # let allocations settle (Go's scavenger, the log thread)
    per_process = [smaps_rollup(proc.pid) for proc, _ in children]
    server = forkserver_pid()
    if proxy_each:
        from sessions_app import proxies

        per_process += [smaps_rollup(pid) for pid in proxies.forkserver_pids().values()]
        server = None
    result = {
        "sessions": count,
        "proxy_each": proxy_each,
        "seconds_to_start": round(start_seconds, 2),
        "preloaded": all(r["preloaded"] for r in reports),
        "connect_outcomes": sorted({r["outcome"] for r in reports}),
        "pss_total_mib": round(sum(p["Pss"] for p in per_process) / MiB, 1),
        "pss_per_session_mib": round(sum(p["Pss"] for p in per_process) / count / MiB, 1),
        "private_per_session_mib": round(
            sum(p["Private_Dirty"] + p["Private_Clean"] for p in per_process) / count / MiB, 1
        ),
        "rss_per_session_mib": round(sum(p["Rss"] for p in per_process) / count / MiB, 1),
        "forkserver_pss_mib": round(smaps_rollup(server)["Pss"] / MiB, 1) if server else None,
    }
    for proc, conn in children:
        conn.send("exit")
        proc.join(10)
        conn.close()
    return result


def supervisor_cpu(count: int, seconds: float, work: Path, backend: str) -> dict | None:
    """`manage.py runworker` with `count` sessions of `backend` configured: its own CPU over a window
    after a warm-up (session processes are not counted)."""
    if not (ROOT / "sessions_app" / "management" / "commands" / "runworker.py").exists():
        return None
    run = work / f"worker-{backend}"
    run.mkdir()
    config = run / "sessions.config.json"
    config.write_text(json.dumps([{"sessionId": f"idle_{i}", "description": "bench"} for i in range(count)]))
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{run / 'db.sqlite3'}",
        "SESSIONS_CONFIG": str(config),
        "SESSIONS_DIR": str(run / "sessions"),
        "WHATSAPP_BACKEND": backend,
        "PRINT_QR": "false",
    }
    env.pop("REDIS_URL", None)
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput"], cwd=ROOT, env=env, check=True, capture_output=True)
    with open(run / "runworker.log", "wb") as log:
        worker = subprocess.Popen([*manage, "runworker"], cwd=ROOT, env=env, stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True)
        try:
            time.sleep(10)  # every session process started (and, for neonize, failed a few times)
            before, t0 = cpu_seconds(worker.pid), time.monotonic()
            time.sleep(seconds)
            used, elapsed = cpu_seconds(worker.pid) - before, time.monotonic() - t0
        finally:
            worker.terminate()
            try:
                worker.wait(60)
            except subprocess.TimeoutExpired:
                worker.kill()
    return {
        "backend": backend,
        "sessions": count,
        "window_seconds": round(elapsed, 1),
        "cpu_seconds": round(used, 3),
        "cpu_percent_of_one_core": round(100 * used / elapsed, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", default="10,50", help="comma-separated session counts")
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    args = parser.parse_args()
    counts = [int(n) for n in args.sessions.split(",")]
    os.chdir(ROOT)  # the forkserver imports its preload list relative to the working directory
    with tempfile.TemporaryDirectory(prefix="session-memory-") as tmp:
        work = Path(tmp)
        setup_django(work / "sessions")
        ctx = forkserver_context()
        result = {
            "python": sys.version.split()[0],
            "cpu_count": os.cpu_count(),
            "steady_state": "Go library loaded, client created, store opened, one connect tried (no network)",
            "held_sessions": [held_sessions(ctx, n, work / "held") for n in counts],
            # A proxy per number: each session forked from its proxy's own forkserver (sessions_app.proxies).
            "held_sessions_proxy_each": held_sessions(ctx, min(counts), work / "held_proxied", proxy_each=True),
            "spawn": spawn_until_first_event(max(counts)),
            # Idle: every session process up and quiet (simulator sessions waiting for a QR scan:
            # heartbeats and the supervisor's polling, nothing else).
            "supervisor_idle": supervisor_cpu(max(counts), args.idle_seconds, work, "simulator"),
            # Not idle: neonize sessions here fail at once and are restarted on the backoff schedule.
            "supervisor_neonize_retrying": supervisor_cpu(max(counts), args.idle_seconds, work, "neonize"),
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
