"""The dispatcher's speed through the real service (`manage.py serve`, embedded worker, simulator backend).

Prints JSON:
- latency from the commit of a message (its 202) to the simulator's send, idle session, p50/p99;
- throughput with pacing off and zero send latency over 50 sessions (queued first, then drained);
- throughput with 300 ms send latency over 10 sessions, against the ideal 10 / 0.3 s;
- the same with one session's process frozen (SIGSTOP: its sends hang), for the other nine.
Times come from the server's own clocks: OutgoingMessage.created_at (just before the commit that
precedes the 202) and SimulatorOutbox.sent_at.

    .venv/bin/python bench/dispatch.py [--database sqlite|postgres] [--quick] [--only fast ...]
"""

import argparse
import asyncio
import base64
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-token-0123456789abcdef"
PG_URL = os.environ.get("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")
NO_PACING = {"SEND_MIN_INTERVAL_SECONDS": "0", "SEND_INTERVAL_JITTER_SECONDS": "0", "SEND_HOURLY_CAP": "0"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


class Service:
    def __init__(self, tmp: Path, database: str, sessions: list[str], link: bool = True, **env: str):
        self.tmp, self.sessions, self.link_at_start = tmp, sessions, link
        tmp.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        config = tmp / "sessions.config.json"
        config.write_text(json.dumps([{"sessionId": s} for s in sessions]))
        if database == "postgres":
            name = f"bench_dispatch_{os.getpid()}"
            subprocess.run(["psql", PG_URL, "-qc", f"DROP DATABASE IF EXISTS {name}"], capture_output=True)
            subprocess.run(["psql", PG_URL, "-qc", f"CREATE DATABASE {name}"], capture_output=True, check=True)
            url = PG_URL.rsplit("/", 1)[0] + "/" + name
        else:
            url = f"sqlite:///{tmp / 'bench.sqlite3'}"
        self.env = {**os.environ, "ENV_FILE": os.devnull, "API_STATIC_TOKEN": TOKEN, "DATABASE_URL": url,
                    "SESSIONS_CONFIG": str(config), "SESSIONS_DIR": str(tmp / "sessions"),
                    "WHATSAPP_BACKEND": "simulator", "SESSION_POLL_SECONDS": "0.2", "PYTHONUNBUFFERED": "1", **env}
        self.env.pop("REDIS_URL", None)
        self.log = tmp / f"serve-{self.port}.log"

    def __enter__(self):
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=self.env, check=True)
        self.proc = subprocess.Popen([sys.executable, "manage.py", "serve", "--host", "127.0.0.1", "--port",
                                      str(self.port)], cwd=ROOT, env=self.env, stdout=open(self.log, "w"),
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=60,
                                 headers={"Authorization": f"Bearer {TOKEN}"})
        self._until(lambda: self._up(), 60)
        for s in self.sessions:
            self._until(lambda: self.http.get(f"/api/sessions/{s}").json()["status"] == "qr", 60)
        if self.link_at_start:
            self.link()
        return self

    def link(self) -> None:
        for s in self.sessions:
            self.http.post(f"/api/simulator/sessions/{s}/scan", json={"phone": "51900000001"})
        for s in self.sessions:
            self._until(lambda: self.http.get(f"/api/sessions/{s}").json()["status"] == "connected", 60)

    def __exit__(self, *exc):
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)

    def _up(self) -> bool:
        try:
            return self.http.get("/healthz").status_code == 200
        except httpx.HTTPError:
            return False

    @staticmethod
    def _until(condition, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError("service did not get there")
            time.sleep(0.05)

    def session_pid(self, session_id: str) -> int:
        found = re.findall(rf"session {session_id}: process (\d+) started", self.log.read_text())
        return int(found[-1])

    async def post_many(self, bodies: list[dict], concurrency: int = 16) -> None:
        await post_many(self.port, bodies, concurrency)

    def timings(self, prefix: str) -> list[tuple[str, float, float]]:
        """(session, committed_at, sent_at) of each message whose caption starts with prefix."""
        code = (
            "import json\n"
            "from messaging.models import OutgoingMessage as M\n"
            "from simulator.models import SimulatorOutbox as O\n"
            f"made = dict(M.objects.filter(caption__startswith={prefix!r}).values_list('caption', 'created_at'))\n"
            f"rows = O.objects.filter(caption__startswith={prefix!r}).values_list('caption', 'session_id', 'sent_at')\n"
            "print(json.dumps([[s, made[c].timestamp(), t.timestamp()] for c, s, t in rows if c in made]))\n"
        )
        out = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=self.env,
                             capture_output=True, text=True, check=True).stdout
        return [tuple(x) for x in json.loads(out.strip().splitlines()[-1])]

    def wait_sent(self, prefix: str, count: int, timeout: float) -> list[tuple[str, float, float]]:
        """Waits with a cheap count straight from the database (a `manage.py shell` a second would
        take a core's worth of CPU from the server it measures), then reads the timings once."""
        deadline = time.monotonic() + timeout
        while self._count_sent(prefix) < count and time.monotonic() < deadline:
            time.sleep(0.5)
        return self.timings(prefix)

    def _count_sent(self, prefix: str) -> int:
        sql = "SELECT COUNT(*) FROM simulator_simulatoroutbox WHERE caption LIKE %s"
        url = self.env["DATABASE_URL"]
        if url.startswith("sqlite:///"):
            import sqlite3
            from contextlib import closing

            with closing(sqlite3.connect(url[len("sqlite:///"):], timeout=30)) as db:
                return db.execute(sql.replace("%s", "?"), (prefix + "%",)).fetchone()[0]
        import psycopg

        with psycopg.connect(url.replace("postgres://", "postgresql://", 1)) as db:
            return db.execute(sql, (prefix + "%",)).fetchone()[0]


async def post_many(port: int, bodies: list[dict], concurrency: int = 16) -> None:
    """POST every body to send-pdf, in order, `concurrency` at a time; each must get its 202."""
    queue = list(reversed(bodies))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60,
                                 headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        async def worker():
            while queue:
                response = await client.post("/api/send-pdf", json=queue.pop())
                assert response.status_code == 202, response.text
        await asyncio.gather(*[worker() for _ in range(concurrency)])


def body(session_id: str, caption: str, pdf: str) -> dict:
    return {"sessionId": session_id, "to": "51987654321", "pdfBase64": pdf, "caption": caption}


def latency_idle(tmp: Path, database: str, n: int, pdf: str) -> dict:
    with Service(tmp / "latency", database, ["tienda_lima"], **NO_PACING) as svc:
        for i in range(n):
            r = svc.http.post("/api/send-pdf", json=body("tienda_lima", f"lat-{i}", pdf))
            assert r.status_code == 202
            time.sleep(0.15)  # idle again before the next one
        rows = svc.wait_sent("lat-", n, 60)
    ms = [(sent - made) * 1000 for _, made, sent in rows]
    return {"messages": len(ms), "p50_ms": round(percentile(ms, 50), 1), "p99_ms": round(percentile(ms, 99), 1)}


def throughput(tmp: Path, database: str, name: str, sessions: int, per_session: int, pdf: str,
               freeze_one: bool = False, **env: str) -> dict:
    """The messages are queued while the sessions wait to be linked, then drained: the rate is the
    dispatcher's, from the first send to the last, not the API's."""
    ids = [f"s{i:02d}" for i in range(sessions)]
    with Service(tmp / name, database, ids, link=False, **NO_PACING, **env) as svc:
        bodies = [body(s, f"{name}-{s}-{i}", pdf) for i in range(per_session) for s in ids]
        asyncio.run(svc.post_many(bodies))
        svc.link()
        frozen = None
        if freeze_one:
            frozen = ids[0]
            os.kill(svc.session_pid(frozen), signal.SIGSTOP)
        expected = per_session * (sessions - (1 if frozen else 0))
        rows = [r for r in svc.wait_sent(f"{name}-", expected, 300) if r[0] != frozen]
    sends = sorted(sent for _, _, sent in rows)
    rate = (len(sends) - 1) / (sends[-1] - sends[0])
    return {"sessions": sessions, "sent": len(rows), "expected": expected, "seconds": round(sends[-1] - sends[0], 2),
            "messages_per_s": round(rate, 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--quick", action="store_true", help="fewer messages")
    parser.add_argument("--only", choices=["latency", "fast", "slow", "hung"], action="append",
                        help="run only these parts (repeatable)")
    args = parser.parse_args()
    pdf = base64.b64encode(b"%PDF-1.4\n" + os.urandom(20_000)).decode()
    k = 4 if args.quick else 1
    result = {"database": args.database}
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        parts = set(args.only or ["latency", "fast", "slow", "hung"])
        if "latency" in parts:
            result["latency_202_to_send_idle"] = latency_idle(tmp, args.database, 100 // k, pdf)
        if "fast" in parts:
            result["throughput_50_sessions_no_latency"] = throughput(tmp, args.database, "fast", 50, 40 // k, pdf)
        if "slow" in parts:
            slow = throughput(tmp, args.database, "slow", 10, 30 // k, pdf, SIMULATOR_SEND_LATENCY_MS="300")
            slow["ideal_per_s"] = round(10 / 0.3, 1)
            slow["of_ideal"] = round(slow["messages_per_s"] / slow["ideal_per_s"], 2)
            result["throughput_10_sessions_300ms"] = slow
        if "hung" in parts:
            hung = throughput(tmp, args.database, "hung", 10, 30 // k, pdf, freeze_one=True,
                              SIMULATOR_SEND_LATENCY_MS="300")
            hung["ideal_per_s"] = round(9 / 0.3, 1)
            hung["of_ideal"] = round(hung["messages_per_s"] / hung["ideal_per_s"], 2)
            result["throughput_9_of_10_sessions_300ms_one_hung"] = hung
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
