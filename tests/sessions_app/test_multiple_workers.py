"""Several workers share 30 sessions through Postgres and Redis, as real processes on the simulator backend:
each session runs on exactly one; `kill -9` of a worker moves its sessions to the others and their queued
messages go out; a worker paused past its lease loses its sessions without running any of them twice;
a worker that joins takes a share. Every session process started is recorded with its epoch, and watched
from outside (/proc) to prove that no session ever ran in two processes at once."""

import json
import os
import re
import signal
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import httpx
import pytest

from messaging.models import OutgoingMessage
from sessions_app.config_file import load_and_mirror
from sessions_app.models import SessionLease, WorkerHeartbeat
from simulator.models import SimulatorOutbox
from tests.conftest import make_pdf, need, pdf_body, reachable
from tests.processes import runworker, serve, wait_for
from tests.sessions_app.test_credential_store import postgres_store  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

SESSIONS = [f"tienda_{n:02d}" for n in range(30)]
LEASE = 6.0
ENV = {
    "REDIS_URL": os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15"),
    "SESSION_LEASE_SECONDS": str(LEASE), "SESSION_LEASE_RENEW_SECONDS": "1",
    "SESSION_POLL_SECONDS": "0.2", "SESSION_STOP_TIMEOUT_SECONDS": "2",
    "SIMULATOR_SEND_LATENCY_MS": "100", "SIMULATOR_QR_FIRST_SECONDS": "600",
    "DISPATCH_SWEEP_SECONDS": "1", "SEND_MIN_INTERVAL_SECONDS": "0", "SEND_INTERVAL_JITTER_SECONDS": "0",
    "CREDENTIALS_STORE": "postgres",
}
STARTED = re.compile(r"session (\S+): process (\d+) started \(epoch (\d+)\)")


class Runs:
    """Every session process the workers started, watched from outside: each worker's grandchildren in /proc
    (worker, its forkserver, the session processes), with the time each started (from /proc, in clock ticks)
    and was last seen alive; which session and epoch each ran is read from the workers' logs."""

    def __init__(self):
        self.workers: list = []
        self.started: dict[int, tuple[str, int, str]] = {}  # pid -> (session, epoch, worker log)
        self.seen: dict[int, list[float]] = {}  # pid -> [started, last seen alive], in seconds since boot
        self._alive: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._read_logs()

    def _watch(self) -> None:
        while not self._stop.wait(0.01):
            for worker in list(self.workers):
                for forkserver in _children(worker.proc.pid):
                    for pid in _children(forkserver):
                        self._look(pid)
            for pid in list(self._alive):  # once known, followed wherever it is reparented
                self._look(pid)

    def _look(self, pid: int) -> None:
        stat = _stat(pid)
        run = self.seen.setdefault(pid, [stat[1], stat[1]]) if stat is not None else None
        if run is None or stat[0] in ("Z", "X") or run[0] != stat[1]:  # gone (or its pid reused)
            self._alive.discard(pid)
            return
        self._alive.add(pid)
        run[1] = time.clock_gettime(time.CLOCK_BOOTTIME)

    def _read_logs(self) -> None:
        for worker in list(self.workers):
            for sid, pid, epoch in STARTED.findall(worker.output()):
                self.started.setdefault(int(pid), (sid, int(epoch), worker.log_path.name))

    def _by_session(self) -> dict[str, list]:
        by_session = defaultdict(list)
        for pid, (sid, epoch, worker) in self.started.items():
            if pid in self.seen:
                by_session[sid].append((*self.seen[pid], epoch, worker, pid))
        return {sid: sorted(runs) for sid, runs in by_session.items()}

    def overlaps(self) -> list[str]:
        found = []
        for sid, runs in self._by_session().items():
            for before, after in zip(runs, runs[1:]):
                if after[0] <= before[1]:
                    found.append(f"{sid}: {before} and {after} ran at the same time")
        return found

    def epochs_in_order(self) -> list[str]:
        """An epoch belongs to one worker, and a later epoch never started before an earlier one."""
        wrong = []
        for sid, runs in self._by_session().items():
            workers_of = defaultdict(set)
            for _, _, epoch, worker, _ in runs:
                workers_of[epoch].add(worker)
            wrong += [f"{sid}: epoch {e} on {w}" for e, w in workers_of.items() if len(w) > 1]
            epochs = [epoch for _, _, epoch, _, _ in runs]
            if epochs != sorted(epochs):
                wrong.append(f"{sid}: epochs started out of order {runs}")
        return wrong


def _children(pid: int) -> list[int]:
    found = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        pass  # gone meanwhile
    return found


TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[str, float] | None:
    """(state, start time in seconds since boot) of a process, None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], int(fields[19]) / TICKS


def owners() -> Counter:
    return Counter(SessionLease.objects.filter(session_id__in=SESSIONS).exclude(owner="").values_list("owner", flat=True))


def worker_id(worker) -> str:
    """The id its leases and GET /api/sessions name it by (host:pid:token), from its heartbeat row."""
    return WorkerHeartbeat.objects.filter(pid=worker.proc.pid).values_list("worker_id", flat=True).first() or ""


def notable_lines(workers) -> str:
    """Each worker's warnings and errors, and the leases it took: what a failure of this test needs to be read."""
    return "\n".join(f"--- {w.log_path.name} (pid {w.proc.pid if w.proc else None})\n" + "\n".join(
        line for line in w.output().splitlines() if re.search(r" (WARNING|ERROR|CRITICAL) |lease taken|started \(", line)
    ) for w in workers)


@pytest.fixture
def thirty_sessions(service_files, postgres_store):
    """Credentials in Postgres (a schema per session), so that any worker can resume any session."""
    need(reachable("127.0.0.1", 6379), "Redis at 127.0.0.1:6379")
    (service_files / "sessions.config.json").write_text(json.dumps([{"sessionId": s} for s in SESSIONS]))
    load_and_mirror()


def test_three_workers_share_thirty_sessions_fail_over_and_rebalance(thirty_sessions, tmp_path, auth):
    web = serve(tmp_path, "--no-worker", **ENV)
    workers = [runworker(tmp_path, **ENV) for _ in range(3)]
    with Runs() as runs, web, httpx.Client(base_url=web.url, headers=auth, timeout=30) as api:
        try:
            for worker in workers:
                runs.workers.append(worker.start())

            def statuses() -> dict[str, dict]:
                return {s["sessionId"]: s for s in api.get("/api/sessions").json()}

            # Shared evenly, then linked: each session shows a QR on one worker, is scanned and connects.
            wait_for(lambda: sorted(owners().values()) == [10, 10, 10], 90, what="10 sessions for each worker")
            wait_for(lambda: all(s["status"] == "qr" for s in statuses().values()), 90, what="30 QR codes")
            for n, session_id in enumerate(SESSIONS):
                scanned = api.post(f"/api/simulator/sessions/{session_id}/scan", json={"phone": f"519110000{n:02d}"})
                assert scanned.status_code == 202, (session_id, scanned.text, statuses()[session_id])
            wait_for(lambda: all(s["status"] == "connected" for s in statuses().values()), 90, what="30 connected")
            ids = {worker_id(w): w for w in workers}
            assert {s["worker"] for s in statuses().values()} == set(ids)

            # Messages queued for every session, then the worker that runs a third of them is killed.
            sent = []
            for n, session_id in enumerate(SESSIONS * 3):
                body = pdf_body(session_id, pdf=make_pdf(3000, seed=n), fileName=f"F{n:03d}.pdf")
                response = api.post("/api/send-pdf", json=body)
                assert response.status_code == 202, response.text
                sent.append(response.json()["messageId"])
            victim = workers[0]
            gone = worker_id(victim)
            theirs = [s for s, row in statuses().items() if row["worker"] == gone]
            assert len(theirs) == 10
            killed_at = time.monotonic()
            os.kill(victim.proc.pid, signal.SIGKILL)  # the worker alone: its session processes die with it
            victim.proc.wait()

            def moved() -> bool:
                now = statuses()
                return all(now[s]["status"] == "connected" and now[s]["worker"] not in (None, gone)
                           for s in theirs)

            wait_for(moved, 60, interval=0.1, what="the killed worker's sessions connected elsewhere")
            failover = time.monotonic() - killed_at
            print(f"\nfailover of {len(theirs)} sessions after kill -9: {failover:.1f} s")
            assert failover < 30

            def delivered() -> bool:
                return not OutgoingMessage.objects.filter(message_id__in=sent).exclude(
                    status__in=["sent", "delivered", "read"]).exists()

            wait_for(delivered, 90, what="every queued message sent")
            names = Counter(SimulatorOutbox.objects.values_list("file_name", flat=True))
            assert set(names) == {f"F{n:03d}.pdf" for n in range(90)}  # none lost
            print(f"duplicates after kill -9: {sum(c - 1 for c in names.values())}")

            # A worker paused past its lease: its sessions stop by themselves and move; resumed, it runs
            # none of them twice, and takes its share back.
            paused = workers[1]
            os.kill(paused.proc.pid, signal.SIGSTOP)
            try:
                others = {worker_id(workers[2])}
                try:
                    wait_for(lambda: set(owners()) == others, LEASE + 15, what="the paused worker's sessions taken over")
                except TimeoutError:
                    leases = list(SessionLease.objects.values_list("session_id", "owner", "epoch", "expires_at"))
                    pytest.fail(f"while paused: {leases}\n{workers[2].output()[-5000:]}")
            finally:
                os.kill(paused.proc.pid, signal.SIGCONT)
            wait_for(lambda: sorted(owners().values()) == [15, 15], 60, what="15 sessions each again")

            # A worker joining takes its share.
            joined = runworker(tmp_path, **ENV)
            workers.append(joined)
            runs.workers.append(joined.start())
            wait_for(lambda: sorted(owners().values()) == [10, 10, 10], 60, what="a third of the sessions for the new worker")
            wait_for(lambda: all(s["status"] == "connected" for s in statuses().values()), 60, what="30 connected")
            now = statuses()
            assert sum(1 for s in now.values() if s["worker"] == worker_id(joined)) == 10
        except BaseException:
            print(notable_lines(workers))  # pytest shows it with the failure
            raise
        finally:
            for worker in workers:
                worker.stop()

    unseen = set(runs.started) - set(runs.seen)
    print(f"session processes started: {len(runs.started)}, seen running: {len(runs.started) - len(unseen)}")
    assert runs.overlaps() == [], notable_lines(workers)
    assert runs.epochs_in_order() == [], notable_lines(workers)
    assert len(runs.seen) >= 30 + len(theirs) + 10  # the first 30, the killed worker's, the paused worker's
