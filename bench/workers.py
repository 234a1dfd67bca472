"""Several workers sharing 30 sessions through Postgres and Redis (simulator backend, 100 ms per send).

Prints JSON:
- messages/s with 1, 2 and 3 workers sharing the 30 connected sessions: messages for every session
  committed at once (one transaction), then drained; first send to last, against the ideal 30 / 0.1 s;
- failover with three workers: seconds from `kill -9` of one until each of its sessions is connected on
  another (this host sees the process gone), and from SIGSTOP of one (a worker that vanished without its
  host saying so, as a machine that lost its network: only the lease's expiry tells) likewise.
Times of sends come from SimulatorOutbox.sent_at; failover times from polling GET /api/sessions.

    .venv/bin/python bench/workers.py [--per-session 60] [--lease 15]
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dispatch import NO_PACING, PG_URL, ROOT, TOKEN, free_port  # noqa: E402

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
SESSIONS = [f"s{n:02d}" for n in range(30)]
LATENCY_MS = 100


class Cluster:
    """A web process and any number of runworkers on one Postgres database and one Redis."""

    def __init__(self, tmp: Path, lease: float):
        config = tmp / "sessions.config.json"
        config.write_text(json.dumps([{"sessionId": s} for s in SESSIONS]))
        self.db = f"bench_workers_{os.getpid()}"
        subprocess.run(["psql", PG_URL, "-qc", f"DROP DATABASE IF EXISTS {self.db}"], capture_output=True)
        subprocess.run(["psql", PG_URL, "-qc", f"CREATE DATABASE {self.db}"], capture_output=True, check=True)
        self.url = PG_URL.rsplit("/", 1)[0] + "/" + self.db
        self.tmp = tmp
        self.env = {**os.environ, "ENV_FILE": os.devnull, "API_STATIC_TOKEN": TOKEN, "DATABASE_URL": self.url,
                    "REDIS_URL": REDIS_URL, "SESSIONS_CONFIG": str(config), "SESSIONS_DIR": str(tmp / "sessions"),
                    "WHATSAPP_BACKEND": "simulator", "CREDENTIALS_STORE": "postgres", "SESSION_POLL_SECONDS": "0.2",
                    "SESSION_LEASE_SECONDS": str(lease), "SIMULATOR_SEND_LATENCY_MS": str(LATENCY_MS),
                    "SIMULATOR_QR_FIRST_SECONDS": "600", "PYTHONUNBUFFERED": "1", **NO_PACING}
        self.workers: list[subprocess.Popen] = []
        self.port = free_port()

    def __enter__(self):
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=self.env, check=True)
        self.web = self._start("serve", "--no-worker", "--host", "127.0.0.1", "--port", str(self.port))
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=60,
                                 headers={"Authorization": f"Bearer {TOKEN}"})
        until(lambda: self._up(), 60, "the web process")
        return self

    def __exit__(self, *exc):
        for proc in [*self.workers, self.web]:
            stop(proc)
        subprocess.run(["psql", PG_URL, "-qc", f"DROP DATABASE IF EXISTS {self.db} WITH (FORCE)"], capture_output=True)

    def _start(self, *args: str) -> subprocess.Popen:
        log = open(self.tmp / f"{args[0]}-{time.monotonic_ns()}.log", "w")
        return subprocess.Popen([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)

    def _up(self) -> bool:
        try:
            return self.http.get("/healthz").status_code == 200
        except httpx.HTTPError:
            return False

    def add_worker(self) -> subprocess.Popen:
        self.workers.append(self._start("runworker"))
        return self.workers[-1]

    def stop_workers(self) -> None:
        for proc in self.workers:
            stop(proc)
        self.workers = []

    def sessions(self) -> dict[str, dict]:
        return {s["sessionId"]: s for s in self.http.get("/api/sessions").json()}

    def ready(self, workers: int) -> None:
        """Every session connected, shared by `workers` workers; links (scans) what shows a QR."""
        def check() -> bool:
            now = self.sessions()
            for session_id, row in now.items():
                if row["status"] == "qr":
                    self.http.post(f"/api/simulator/sessions/{session_id}/scan", json={"phone": "51900000001"})
            return (all(r["status"] == "connected" for r in now.values())
                    and len({r["worker"] for r in now.values()}) == workers)
        until(check, 120, f"30 sessions connected on {workers} worker(s)")

    def sent_at(self, prefix: str) -> list[float]:
        import psycopg

        with psycopg.connect(self.url.replace("postgres://", "postgresql://", 1)) as db:
            rows = db.execute("SELECT sent_at FROM simulator_simulatoroutbox WHERE caption LIKE %s",
                              (prefix + "%",)).fetchall()
        return sorted(r[0].timestamp() for r in rows)

    def queue_at_once(self, prefix: str, per_session: int, pdf_size: int) -> None:
        """Commit every message in one transaction through the queue's own write path (the API's rate is
        not what is measured here), then wake the dispatchers."""
        code = (
            "import hashlib, os\n"
            "from messaging.queue_storage import SendRequest, write_batch\n"
            "from messaging.wakeups import announce_sync\n"
            f"pdf = b'%PDF-1.4\\n' + os.urandom({pdf_size})\n"
            "digest = hashlib.sha256(pdf).hexdigest()\n"
            f"sessions = {SESSIONS!r}\n"
            f"requests = [SendRequest(s, '51987654321', 'receipt.pdf', f'{prefix}{{n}}', pdf, digest, None, '')"
            f" for n in range({per_session}) for s in sessions]\n"
            "assert all(not isinstance(r, Exception) for r in write_batch(requests))\n"
            "for s in sessions:\n    announce_sync(s)\n"
        )
        subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=self.env, check=True,
                       capture_output=True)


def until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not reached in {timeout} s")
        time.sleep(0.1)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def throughput(cluster: Cluster, workers: int, per_session: int) -> dict:
    """`workers` workers share the 30 connected sessions; then every message is queued at once."""
    while len(cluster.workers) < workers:
        cluster.add_worker()
    cluster.ready(workers)
    prefix = f"w{workers}-"
    cluster.queue_at_once(prefix, per_session, 20_000)
    total = per_session * len(SESSIONS)
    until(lambda: len(cluster.sent_at(prefix)) >= total, 300, f"{total} messages sent by {workers} worker(s)")
    times = cluster.sent_at(prefix)
    cluster.ready(workers)  # still shared by all of them: nothing moved while they sent
    ideal = len(SESSIONS) / (LATENCY_MS / 1000)
    rate = total / (times[-1] - times[0])
    return {"workers": workers, "messages": total, "per_s": round(rate, 1), "ideal_per_s": ideal,
            "of_ideal": round(rate / ideal, 2)}


def failover(cluster: Cluster, how: str) -> dict:
    """Three workers, all sessions connected; one is killed (kill -9) or frozen (SIGSTOP)."""
    while len(cluster.workers) < 3:
        cluster.add_worker()
    cluster.ready(3)
    victim = cluster.workers[0]
    before = cluster.sessions()
    owner = {r["worker"] for r in before.values() if r["worker"].split(":")[1] == str(victim.pid)}.pop()
    theirs = [s for s, r in before.items() if r["worker"] == owner]
    started = time.monotonic()
    os.kill(victim.pid, signal.SIGKILL if how == "kill" else signal.SIGSTOP)
    until(lambda: all(cluster.sessions()[s]["status"] == "connected" and cluster.sessions()[s]["worker"] not in (None, owner)
                      for s in theirs), 120, f"failover after {how}")
    took = time.monotonic() - started
    if how == "stop":
        os.kill(victim.pid, signal.SIGCONT)
    stop(victim)
    cluster.workers.remove(victim)
    return {"how": "kill -9" if how == "kill" else "SIGSTOP (lease expiry)", "sessions_moved": len(theirs),
            "seconds": round(took, 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-session", type=int, default=60)
    parser.add_argument("--lease", type=float, default=15.0)
    args = parser.parse_args()
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    with tempfile.TemporaryDirectory() as tmp, Cluster(Path(tmp), args.lease) as cluster:
        rounds = [throughput(cluster, n, args.per_session) for n in (1, 2, 3)]
        result = {"sessions": len(SESSIONS), "send_latency_ms": LATENCY_MS, "lease_seconds": args.lease,
                  "throughput": rounds, "failover": [failover(cluster, "kill"), failover(cluster, "stop")]}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
