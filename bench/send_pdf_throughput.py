"""Throughput and latency of POST /api/send-pdf with a 100 KB PDF at 16 connections, with wrk.

Starts the service as `make run` does (`manage.py serve`, worker off so only intake is measured) on SQLite
and, when reachable, on Postgres; optionally the reference Node/Express in-memory server side by side.
Prints one JSON object. The machine's other work moves these figures by a third from one minute to
the next, so `--rounds N` runs the servers one after the other N times and reports every round and the
median, with each server's ratio to Express in the same round. Before each measurement the disk is
let settle (sync), so one server's write-back does not land in the next one's figures. `--web-workers N`
serves with N web processes (they share the channel layer through Redis: BENCH_REDIS_URL).
For each database it also measures the queue writer alone (`queue_writer_alone_per_s`): 16 threads of one
process committing the same PDF through `messaging.queue_writer` with no HTTP in front, the most that
database takes through the service's write path on this machine, so the service's figure can be read
against its database's. Each measurement also says where the CPU went (`cpu_ms_per_request`: the server
under test, Postgres, wrk) and how many of the machine's cores were busy (`machine_busy_cores`) or taken by the host
(`machine_steal_cores`): figures that move less than requests/s from one minute to the next, and that tell a server
short of CPU from one that waits. On Postgres it also gives the checkpoints Postgres counted during the measurement
(`postgres_checkpoints`: a round that meets one has a long p99), the WAL written per request
(`postgres_wal_kb_per_request`) and the server's `max_wal_size` (`postgres_max_wal_size`), which sets how often
checkpoints come. The PDF is receipt-like by default (`--pdf real-like`, bench/sample_pdf.py:
deflated streams between text dictionaries, as real PDFs are); `--pdf noise` sends random bytes, which no database
tries to compress (the input of the figures before 2026-11-29). Usage:
    .venv/bin/python bench/send_pdf_throughput.py [--duration 10] [--connections 16] [--rounds 3] [--no-node]
                                                  [--web-workers 2] [--pdf real-like|noise]
"""

import argparse
import base64
import json
import os
import re
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sample_pdf

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")

LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(token)s"
local f = io.open("%(body)s", "rb")
wrk.body = f:read("*all")
f:close()
"""

EXPRESS = """
const express = require("express");
const app = express();
const queue = [];
app.use(express.json({ limit: "30mb" }));
app.post("/api/send-pdf", (req, res) => {
  if (req.get("authorization") !== "Bearer " + process.env.TOKEN) return res.status(401).json({ success: false });
  const pdf = Buffer.from(req.body.pdfBase64, "base64");
  queue.push({ sessionId: req.body.sessionId, to: req.body.to, pdf });
  res.status(202).json({ success: true, messageId: String(queue.length), status: "queued" });
});
app.listen(Number(process.env.PORT), "127.0.0.1");
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def quiet_disk(timeout: float = 60) -> None:
    """Write back what the previous server left dirty, so its I/O does not slow the next one."""
    os.sync()
    deadline = time.time() + timeout
    while time.time() < deadline:
        meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
        if int(meminfo["Dirty"].split()[0]) + int(meminfo["Writeback"].split()[0]) < 16 * 1024:
            return
        time.sleep(0.5)


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def cpu_seconds(server_group: int) -> dict[str, float]:
    """CPU seconds so far: the server under test (its process group), Postgres (every `postgres` process), this
    script's finished children (wrk), and the whole machine (busy, idle)."""
    tick = os.sysconf("SC_CLK_TCK")
    used = {"server": 0.0, "postgres": 0.0}
    for proc in Path("/proc").iterdir():
        try:
            comm = (proc / "comm").read_text().strip()
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):  # not a process, or one that just ended
            continue
        seconds = (int(fields[11]) + int(fields[12])) / tick
        if int(fields[2]) == server_group:
            used["server"] += seconds
        elif comm == "postgres":
            used["postgres"] += seconds
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    used["wrk"] = children.ru_utime + children.ru_stime
    jiffies = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    used["machine_idle"] = (jiffies[3] + jiffies[4]) / tick
    used["machine_steal"] = jiffies[7] / tick  # wanted to run, the host ran another machine
    used["machine_all"] = sum(jiffies[:8]) / tick
    return used


def run_wrk(port: int, lua: Path, duration: int, connections: int, server_group: int) -> dict:
    before = cpu_seconds(server_group)
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(lua),
         f"http://127.0.0.1:{port}/api/send-pdf"],
        capture_output=True, text=True, check=True,
    ).stdout
    after = cpu_seconds(server_group)
    spent = {key: after[key] - before[key] for key in after}
    cores = os.cpu_count() / spent["machine_all"]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    pct = {p: _ms(v, u) for p, v, u in re.findall(r"\s(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s)", out)}
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "requests_per_s": rps,
        "p50_ms": pct.get("50"),
        "p99_ms": pct.get("99"),
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": errors.group(1) if errors else None,
        # Where each request's CPU went, and how busy the machine was: on a machine shared by the server, its
        # database and wrk, requests/s is capped by the sum of these over the machine's cores.
        "cpu_ms_per_request": {key: round(1000 * spent[key] / (rps * duration), 3) for key in ("server", "postgres", "wrk")},
        "machine_busy_cores": round((spent["machine_all"] - spent["machine_idle"] - spent["machine_steal"]) * cores, 2),
        "machine_steal_cores": round(spent["machine_steal"] * cores, 2),
    }


def bench_service(name: str, database_url: str, body: Path, token: str, tmp: Path, args) -> dict:
    port = free_port()
    config = tmp / "sessions.config.json"
    config.write_text(json.dumps([{"sessionId": "tienda_lima", "description": "bench"}]))
    env = {
        **os.environ,
        "ENV_FILE": os.devnull,
        "API_STATIC_TOKEN": token,
        "DATABASE_URL": database_url,
        "SESSIONS_CONFIG": str(config),
        "SESSIONS_DIR": str(tmp / "sessions"),
        "WHATSAPP_BACKEND": "simulator",
        "EMBEDDED_WORKER": "false",
    }
    env.pop("REDIS_URL", None)
    if args.web_workers > 1:
        env["REDIS_URL"] = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
    py = sys.executable
    subprocess.run([py, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    server = subprocess.Popen(
        [py, "manage.py", "serve", "--host", "127.0.0.1", "--port", str(port), "--no-worker",
         "--workers", str(args.web_workers)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )
    try:
        wait_port(port)
        lua = tmp / f"{name}.lua"
        lua.write_text(LUA % {"token": token, "body": body})
        subprocess.run(["wrk", "-t1", "-c4", "-d2s", "-s", str(lua), f"http://127.0.0.1:{port}/api/send-pdf"],
                       capture_output=True, check=True)  # warm-up
        quiet_disk()
        before = postgres_counters() if database_url.startswith("postgres") else None
        result = run_wrk(port, lua, args.duration, args.connections, server.pid)
        if before is not None:
            after = postgres_counters()
            requests = result["requests_per_s"] * args.duration
            result["postgres_checkpoints"] = after[0] - before[0]
            result["postgres_wal_kb_per_request"] = round((after[1] - before[1]) / 1024 / requests, 1)
        result["rows_committed"] = count_rows(py, env)
        quiet_disk()
        result["queue_writer_alone_per_s"] = queue_writer_alone(py, env, body, args)
        return result
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def postgres_counters() -> tuple[int, int]:
    """Postgres's checkpoints so far (started on a timer or forced by max_wal_size) and the bytes of WAL written so
    far: a round that meets a checkpoint waits for it (its p99 says so), and the WAL per request is the durable
    write's own size, which no server tuning takes away."""
    wal = "pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint"
    for count, view in (("num_timed + num_requested", "pg_stat_checkpointer"),  # Postgres 17 and later
                        ("checkpoints_timed + checkpoints_req", "pg_stat_bgwriter")):
        out = subprocess.run(["psql", PG_URL, "-Atc", f"SELECT {count}, {wal} FROM {view}"], capture_output=True,
                             text=True)
        if out.returncode == 0:
            checkpoints, written = out.stdout.strip().split("|")
            return int(checkpoints), int(written)
    raise RuntimeError(out.stderr)


def count_rows(py: str, env: dict) -> int:
    code = "from messaging.models import OutgoingMessage as M; print(M.objects.count())"
    out = subprocess.run([py, "manage.py", "shell", "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    return int(out.stdout.split()[-1])


WRITER_ALONE = """
import base64, hashlib, json, threading, time
from messaging.queue_storage import SendRequest
from messaging.queue_writer import QueueWriter
pdf = base64.b64decode(json.load(open(%(body)r))["pdfBase64"])
sha = hashlib.sha256(pdf).hexdigest()
request = SendRequest(session_id="tienda_lima", to="51987654321", file_name="bench.pdf", caption="", data=pdf,
                      sha256=sha, idempotency_key=None, request_hash=sha)
writer, done, end = QueueWriter(), [0] * %(connections)d, time.monotonic() + %(duration)d
def client(i):
    while time.monotonic() < end:
        writer.submit(request).result()
        done[i] += 1
threads = [threading.Thread(target=client, args=(i,)) for i in range(%(connections)d)]
started = time.monotonic()
[t.start() for t in threads]; [t.join() for t in threads]
print(round(sum(done) / (time.monotonic() - started), 1))
"""


def queue_writer_alone(py: str, env: dict, body: Path, args) -> float:
    """Rows a second the queue writer commits with `--connections` callers and no HTTP (WRITER_ALONE)."""
    code = WRITER_ALONE % {"body": str(body), "connections": args.connections, "duration": args.duration}
    out = subprocess.run([py, "manage.py", "shell", "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=True)
    return float(out.stdout.split()[-1])


def bench_express(body: Path, token: str, tmp: Path, args) -> dict | None:
    if shutil.which("node") is None or shutil.which("npm") is None:
        return None
    app = tmp / "express"
    app.mkdir()
    (app / "server.js").write_text(EXPRESS)
    if subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund", "express@4"], cwd=app,
                      capture_output=True).returncode != 0:
        return None
    port = free_port()
    server = subprocess.Popen(["node", "server.js"], cwd=app, env={**os.environ, "PORT": str(port), "TOKEN": token},
                              start_new_session=True)
    try:
        wait_port(port)
        quiet_disk()
        lua = tmp / "express.lua"
        lua.write_text(LUA % {"token": token, "body": body})
        return run_wrk(port, lua, args.duration, args.connections, server.pid)
    finally:
        server.terminate()
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--no-node", action="store_true")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--pdf", choices=("real-like", "noise"), default="real-like")
    parser.add_argument("--web-workers", type=int, default=1,
                        help="serve --workers N (N > 1 needs Redis: BENCH_REDIS_URL, default redis://127.0.0.1:6379/12)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    token = secrets.token_urlsafe(24)
    results: dict = {"pdf_bytes": 100_000, "pdf": args.pdf, "connections": args.connections, "duration_s": args.duration}
    rounds: list[dict] = []
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        pdf = sample_pdf.real_like(100_000) if args.pdf == "real-like" else sample_pdf.noise(100_000)
        body = tmp / "body.json"
        body.write_text(json.dumps({"sessionId": "tienda_lima", "to": "51987654321", "fileName": "bench.pdf",
                                    "pdfBase64": base64.b64encode(pdf).decode()}))
        results["body_bytes"] = body.stat().st_size
        postgres = subprocess.run([sys.executable, str(ROOT / "scripts/service_up.py"), PG_URL]).returncode == 0
        if postgres:  # what sets how often a round meets a checkpoint (README, "Running in production")
            results["postgres_max_wal_size"] = subprocess.run(["psql", PG_URL, "-Atc", "SHOW max_wal_size"],
                                                              capture_output=True, text=True).stdout.strip()
        for index in range(args.rounds):
            one: dict = {}
            run_dir = tmp / f"round{index}"
            run_dir.mkdir()
            if not args.no_node:
                one["node_express_in_memory"] = bench_express(body, token, run_dir, args)
            one["sqlite"] = bench_service("sqlite", f"sqlite:///{run_dir / 'bench.sqlite3'}", body, token, run_dir, args)
            if postgres:
                pg = PG_URL.rsplit("/", 1)[0] + "/bench_send_pdf"
                subprocess.run(["psql", PG_URL, "-qc", "DROP DATABASE IF EXISTS bench_send_pdf"], capture_output=True)
                subprocess.run(["psql", PG_URL, "-qc", "CREATE DATABASE bench_send_pdf"], capture_output=True, check=True)
                one["postgres"] = bench_service("postgres", pg, body, token, run_dir, args)
            express = (one.get("node_express_in_memory") or {}).get("requests_per_s")
            for name in ("sqlite", "postgres"):
                if express and name in one:
                    one[name]["of_express"] = round(one[name]["requests_per_s"] / express, 2)
            rounds.append(one)
    if args.rounds == 1:
        results.update(rounds[0])
    else:
        results["rounds"] = rounds
        results["median"] = {
            name: {
                **{key: statistics.median(r[name][key] for r in rounds)
                   for key in ("requests_per_s", "p50_ms", "p99_ms", "of_express", "queue_writer_alone_per_s",
                               "machine_busy_cores", "machine_steal_cores", "postgres_checkpoints",
                               "postgres_wal_kb_per_request")
                   if key in rounds[0][name]},
                "cpu_ms_per_request": {key: statistics.median(r[name]["cpu_ms_per_request"][key] for r in rounds)
                                       for key in rounds[0][name]["cpu_ms_per_request"]},
            }
            for name in rounds[0] if rounds[0][name]
        }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
