"""Several workers sharing 30 sessions through Postgres and Redis (simulator backend, 100 ms per send).

Prints JSON:
- messages/s with 1, 2 and 3 workers: messages queued for every session while no worker runs, then
  the workers start and drain them; the rate between the 10th and the 90th percentile of the sends
  (steady state, without the sessions connecting) and over the whole drain, against the ideal 30 / 0.1 s;
- failover with three workers: seconds from `kill -9` of one until each of its sessions is connected on
  another (this host sees the process gone), and from SIGSTOP of one (a worker that vanished without its
  host saying so, as a machine that lost its network: only the lease's expiry tells) likewise.
Times of sends come from SimulatorOutbox.sent_at; failover times from polling GET /api/sessions.

    .venv/bin/python bench/workers.py [--per-session 60] [--lease 15]
"""

import argparse
import asyncio
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
from dispatch import NO_PACING, PG_URL, ROOT, TOKEN, free_port, percentile  # noqa: E402

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
            rows = db.execute("SELECT sent_at FROM sessions_app_simulatoroutbox WHERE caption LIKE %s",
                              (prefix + "%",)).fetchall()
        return sorted(r[0].timestamp() for r in rows)

    async def queue(self, prefix: str, per_session: int, pdf: str) -> None:
        bodies = [{"sessionId": s, "to": "51987654321", "pdfBase64": pdf, "caption": f"{prefix}{n}"}
                  for n in range(per_session) for s in SESSIONS]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}", timeout=60,
                                     headers={"Authorization": f"Bearer {TOKEN}"}) as client:
            async def post():
                while bodies:
                    response = await client.post("/api/send-pdf", json=bodies.pop())
                    assert response.status_code == 202, response.text
            await asyncio.gather(*[post() for _ in range(16)])


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


def throughput(cluster: Cluster, workers: int, per_session: int, pdf: str) -> dict:
    prefix = f"w{workers}-"
    asyncio.run(cluster.queue(prefix, per_session, pdf))  # no worker runs: they wait in the queue
    for _ in range(workers):
        cluster.add_worker()
    total = per_session * len(SESSIONS)
    until(lambda: len(cluster.sent_at(prefix)) >= total, 300, f"{total} messages sent by {workers} worker(s)")
    times = cluster.sent_at(prefix)
    low, high = percentile(times, 10), percentile(times, 90)
    cluster.ready(workers)  # shared by all of them by now (the count is checked, not assumed)
    cluster.stop_workers()
    ideal = len(SESSIONS) / (LATENCY_MS / 1000)
    steady = 0.8 * total / (high - low)
    return {"workers": workers, "messages": total, "steady_per_s": round(steady, 1),
            "whole_drain_per_s": round(total / (times[-1] - times[0]), 1), "ideal_per_s": ideal,
            "steady_of_ideal": round(steady / ideal, 2)}


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
    import base64

    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    pdf = base64.b64encode(b"%PDF-1.4\n" + os.urandom(20_000)).decode()
    with tempfile.TemporaryDirectory() as tmp, Cluster(Path(tmp), args.lease) as cluster:
        cluster.add_worker()
        cluster.ready(1)  # linked once: later workers resume the sessions from Postgres
        cluster.stop_workers()
        rounds = [throughput(cluster, n, args.per_session, pdf) for n in (1, 2, 3)]
        result = {"sessions": len(SESSIONS), "send_latency_ms": LATENCY_MS, "lease_seconds": args.lease,
                  "throughput": rounds, "failover": [failover(cluster, "kill"), failover(cluster, "stop")]}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
