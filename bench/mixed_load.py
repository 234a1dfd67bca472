"""Mixed traffic against the real service for a long while: is anything lost, does anything grow?

`manage.py serve` (embedded worker, simulator backend, pacing off) with 20 linked sessions takes, for
`--minutes` (default 10): send-pdf posts, status reads (sessions, one session, a message) and sockets
opening and closing. Every few seconds it samples the server's memory (RSS of the web process; PSS of the
web process and of the session processes, so shared pages count once) and its open files; every
`HEAP_SAMPLE_SECONDS` it asks the web process who holds its memory (SIGUSR1, core.stack_dump:
objects the garbage collector tracks, Python's small blocks, glibc's heap in use and kept free, SQLite), to
tell a leak (in use, growing) from fragmentation (kept free, growing) from caches (growing to a ceiling).
At the end it waits for the queue to drain and counts what the simulated WhatsApp received.

Prints JSON: requests and errors by kind, messages accepted / delivered / failed / duplicated, latency of
send-pdf, and the slope of memory (MB per minute) and open files (per minute) after a warm-up minute
(a least-squares line through the samples; also over the second half alone, where a warm-up has ended),
and `failures`: errors, messages not delivered exactly once, processes lost. It exits 1 when there are any.

    .venv/bin/python bench/mixed_load.py [--minutes 10] [--sessions 20] [--database sqlite|postgres]
                                         [--small-caches] [--trace-allocations]

`--small-caches` bounds what the service remembers per recipient (DISPATCH_NUMBER_CACHE_SIZE) and per
send (SENT_JOURNAL_KEEP) low enough that both are full within the warm-up: what still grows after that
is not a cache on its way to its bound. With the defaults the two fill for hours at these rates.

`--trace-allocations` starts the service with PYTHONTRACEMALLOC=1 and prints, from the last dump, the lines
of code whose allocations grew most between the first dump and the last. Tracing slows the service several times over:
lower the rates with it.
"""

import argparse
import asyncio
import base64
import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent))
import dispatch  # noqa: E402
from dispatch import ROOT, TOKEN  # noqa: E402

SAMPLE_SECONDS = 5.0
HEAP_SAMPLE_SECONDS = 30.0
HEAP_FIGURES = {  # name: what the stack dump says of it
    "gc_tracked_objects": r"frozen, (\d+) tracked",
    "python_small_blocks": r"python: (\d+) small blocks",
    "malloc_in_use_mb": r"=== malloc: ([\d.]+) MB in use",
    "malloc_free_kept_mb": r"MB in use, ([\d.]+) MB free in the heap",
    "malloc_mapped_mb": r"([\d.]+) MB mapped apart",
    "sqlite_mb": r"=== sqlite: ([\d.]+) MB in use",
}


def pdf(size: int, seed: int) -> bytes:
    return b"%PDF-1.4\n" + random.Random(seed).randbytes(size - 9)


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def slope_per_minute(samples: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, value), per minute."""
    if len(samples) < 3:
        return None
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_v = sum(v for _, v in samples) / n
    var = sum((t - mean_t) ** 2 for t, _ in samples)
    cov = sum((t - mean_t) * (v - mean_v) for t, v in samples)
    return round(cov / var * 60, 3) if var else None


def tree(pid: int) -> list[int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
    found, frontier = [pid], {pid}
    while frontier:
        frontier = {c for c, p in parents.items() if p in frontier}
        found.extend(frontier)
    return found


def kib(path: str, key: str) -> int:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_by_mapping(pid: int) -> dict[str, float]:
    """RSS (MB) of a process by what is mapped: a file, [heap] (glibc's main heap), [anon] (other glibc
    arenas, Python's arenas, thread stacks), [stack]..."""
    found: Counter = Counter()
    name = "?"
    with contextlib.suppress(OSError), open(f"/proc/{pid}/smaps") as smaps:  # gone: what was counted so far
        for line in smaps:
            if line.startswith("Rss:"):
                found[name] += int(line.split()[1]) / 1024
            elif "-" in line.split(" ", 1)[0] and not line[0].isupper():  # "start-end perms ... [path]"
                fields = line.split(None, 5)
                name = fields[5].strip() if len(fields) > 5 else "[anon]"
    return dict(found)


def open_files(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


class Service(dispatch.Service):
    """The dispatch bench's service (serve, simulator, the sessions linked), pacing off, and what this
    bench reads off it."""

    def __init__(self, tmp: Path, database: str, sessions: list[str], trace_allocations: bool = False,
                 small_caches: bool = False):
        extra = {"PYTHONTRACEMALLOC": "1"} if trace_allocations else {}
        if small_caches:
            extra.update(DISPATCH_NUMBER_CACHE_SIZE="200", SENT_JOURNAL_KEEP="10")
        super().__init__(tmp, database, sessions, SESSION_POLL_SECONDS="0.5", SIMULATOR_DELIVERY_MS="100",
                         LOG_LEVEL="WARNING", **dispatch.NO_PACING, **extra)
        self.url = f"http://127.0.0.1:{self.port}"
        self.heap_dumps = 0  # stack dumps read so far
        self.allocations_grown: list[str] = []  # tracemalloc's lines in the last one

    def sample(self) -> dict:
        pids = tree(self.proc.pid)
        pss = {p: kib(f"/proc/{p}/smaps_rollup", "Pss:") / 1024 for p in pids}
        return {
            "rss_mb": kib(f"/proc/{self.proc.pid}/status", "VmRSS:") / 1024,
            "pss_mb": sum(pss.values()),
            "server_pss_mb": pss[self.proc.pid],
            "server_rss_by_mapping": rss_by_mapping(self.proc.pid),
            "open_files": sum(open_files(p) for p in pids),
            "server_open_files": open_files(self.proc.pid),
            "processes": len(pids),
        }

    async def heap(self) -> dict | None:
        """Who holds the web process's memory (HEAP_FIGURES), from the stack dump SIGUSR1 writes to its log."""
        self.proc.send_signal(signal.SIGUSR1)
        for _ in range(300):  # a traced process takes seconds to dump
            await asyncio.sleep(0.2)
            dumps = self.log.read_text(errors="replace").split("=== stack dump (SIGUSR1)")
            if len(dumps) - 1 > self.heap_dumps and "=== end of stack dump ===" in dumps[-1]:
                self.heap_dumps = len(dumps) - 1
                found = {name: re.search(pattern, dumps[-1]) for name, pattern in HEAP_FIGURES.items()}
                grown = dumps[-1].partition("(tracemalloc) ===\n")[2].splitlines()
                self.allocations_grown = [line for line in grown if not line.startswith("===")]
                return {name: float(m[1]) for name, m in found.items() if m}
        return None

    def tally(self, prefix: str) -> dict:
        code = (
            "import json\nfrom collections import Counter\n"
            "from messaging.models import OutgoingMessage as M\nfrom simulator.models import SimulatorOutbox as O\n"
            f"st = Counter(M.objects.filter(caption__startswith={prefix!r}).values_list('status', flat=True))\n"
            f"out = Counter(O.objects.filter(caption__startswith={prefix!r}).values_list('caption', flat=True))\n"
            "print(json.dumps({'statuses': st, 'received': sum(out.values()), 'distinct': len(out),"
            " 'duplicates': sum(n - 1 for n in out.values() if n > 1)}))\n"
        )
        out = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=self.env,
                             capture_output=True, text=True, check=True).stdout
        return json.loads(out.strip().splitlines()[-1])


class Load:
    def __init__(self, service: Service, seconds: float, send_rate: float, read_rate: float, socket_rate: float):
        self.service, self.seconds = service, seconds
        self.send_rate, self.read_rate, self.socket_rate = send_rate, read_rate, socket_rate
        self.counts: Counter = Counter()
        self.errors: Counter = Counter()
        self.error_examples: dict[str, str] = {}
        self.send_latency: list[float] = []
        self.message_ids: list[str] = []
        self.samples: list[tuple[float, dict]] = []
        self.heap_samples: list[tuple[float, dict]] = []
        self.prefix = f"load-{os.getpid()}-"
        self.pdfs = [base64.b64encode(pdf(20_000 + i * 1000, i)).decode() for i in range(8)]

    def error(self, kind: str, detail: str) -> None:
        self.errors[kind] += 1
        self.error_examples.setdefault(kind, detail[:300])

    async def paced(self, rate: float, action) -> None:
        """Start `action` `rate` times a second (each its own task), until the end."""
        interval, tasks = 1.0 / rate, set()
        next_at = time.monotonic()
        while time.monotonic() < self.end:
            task = asyncio.create_task(action())
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        await asyncio.gather(*tasks, return_exceptions=True)

    async def send_pdf(self) -> None:
        n = self.counts["send_pdf"]
        self.counts["send_pdf"] += 1
        body = {"sessionId": random.choice(self.service.sessions), "to": f"519{random.randrange(10**8):08d}",
                "pdfBase64": random.choice(self.pdfs), "fileName": f"F{n:06d}.pdf", "caption": f"{self.prefix}{n}"}
        started = time.monotonic()
        try:
            response = await self.http.post("/api/send-pdf", json=body, headers={"Idempotency-Key": f"k{n}"})
        except httpx.HTTPError as exc:
            return self.error("send_pdf_transport", repr(exc))
        self.send_latency.append(time.monotonic() - started)
        if response.status_code != 202:
            return self.error(f"send_pdf_{response.status_code}", response.text)
        self.message_ids.append(response.json()["messageId"])

    async def read_status(self) -> None:
        choice = random.random()
        if choice < 0.4 and self.message_ids:
            path = f"/api/messages/{random.choice(self.message_ids)}"
        elif choice < 0.7:
            path = f"/api/sessions/{random.choice(self.service.sessions)}"
        else:
            path = "/api/sessions"
        self.counts["status_read"] += 1
        try:
            response = await self.http.get(path)
        except httpx.HTTPError as exc:
            return self.error("status_transport", repr(exc))
        if response.status_code != 200:
            self.error(f"status_{response.status_code}", f"{path}: {response.text}")

    async def open_socket(self) -> None:
        self.counts["socket"] += 1
        session_id = random.choice(self.service.sessions)
        url = f"ws://127.0.0.1:{self.service.port}/ws/session/{session_id}?token={TOKEN}"
        try:
            async with websockets.connect(url, open_timeout=30) as ws:
                event = json.loads(await asyncio.wait_for(ws.recv(), 30))
                if event != {"event": "status", "data": "already_connected"}:
                    self.error("socket_event", json.dumps(event))
        except (OSError, TimeoutError, websockets.WebSocketException) as exc:
            self.error("socket", repr(exc))

    async def sampler(self) -> None:
        while time.monotonic() < self.end:
            self.samples.append((time.monotonic() - self.start, self.service.sample()))
            await asyncio.sleep(SAMPLE_SECONDS)
        self.samples.append((time.monotonic() - self.start, self.service.sample()))

    async def heap_sampler(self) -> None:
        while time.monotonic() < self.end:
            await asyncio.sleep(min(HEAP_SAMPLE_SECONDS, max(0.0, self.end - time.monotonic())))
            found = await self.service.heap()
            if found:
                self.heap_samples.append((time.monotonic() - self.start, found))

    async def run(self) -> None:
        limits = httpx.Limits(max_connections=32, max_keepalive_connections=16)
        async with httpx.AsyncClient(base_url=self.service.url, timeout=60, limits=limits,
                                     headers={"Authorization": f"Bearer {TOKEN}"}) as self.http:
            self.start = time.monotonic()
            self.end = self.start + self.seconds
            await asyncio.gather(self.sampler(), self.heap_sampler(), self.paced(self.send_rate, self.send_pdf),
                                 self.paced(self.read_rate, self.read_status),
                                 self.paced(self.socket_rate, self.open_socket))

    def drain(self, timeout: float) -> tuple[dict, float]:
        started = time.monotonic()
        while True:
            tally = self.service.tally(self.prefix)
            pending = sum(n for s, n in tally["statuses"].items() if s in ("queued", "sending"))
            if pending == 0 and tally["statuses"].get("sent", 0) == 0 or time.monotonic() - started > timeout:
                return tally, time.monotonic() - started
            time.sleep(2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--send-rate", type=float, default=10.0, help="send-pdf posts per second")
    parser.add_argument("--read-rate", type=float, default=10.0, help="status reads per second")
    parser.add_argument("--socket-rate", type=float, default=2.0, help="sockets opened (and closed) per second")
    parser.add_argument("--small-caches", action="store_true", help="caches full within the warm-up")
    parser.add_argument("--trace-allocations", action="store_true", help="tracemalloc in the service (slow)")
    args = parser.parse_args()

    sessions = [f"carga_{i:02d}" for i in range(1, args.sessions + 1)]
    with tempfile.TemporaryDirectory(prefix="bench-mixed-") as tmp, Service(Path(tmp), args.database, sessions,
                                                                                  args.trace_allocations,
                                                                                  args.small_caches) as svc:
        load = Load(svc, args.minutes * 60, args.send_rate, args.read_rate, args.socket_rate)
        asyncio.run(load.run())
        tally, drained_in = load.drain(timeout=180)
        log_errors = sum(1 for line in svc.log.read_text(errors="replace").splitlines()
                         if " ERROR " in line or "Traceback" in line)

    warm = [(t, s) for t, s in load.samples if t >= min(60.0, args.minutes * 60 / 5)]
    late = [(t, s) for t, s in load.samples if t >= args.minutes * 60 / 2]
    for t, s in load.samples:
        s["sessions_pss_mb"] = s["pss_mb"] - s["server_pss_mb"]

    def slopes(key: str, name: str, samples: tuple[list, list] = (warm, late)) -> dict:
        return {name: slope_per_minute([(t, s[key]) for t, s in samples[0] if key in s]),
                f"{name}_second_half": slope_per_minute([(t, s[key]) for t, s in samples[1] if key in s])}

    heap = load.heap_samples
    heap_warm = [(t, s) for t, s in heap if t >= warm[0][0]] if warm else []
    heap_late = [(t, s) for t, s in heap if t >= args.minutes * 60 / 2]

    first, last = load.samples[0][1], load.samples[-1][1]
    after_warm_up = (warm or load.samples)[0][1]["server_rss_by_mapping"]
    grown = {name: (after_warm_up.get(name, 0.0), mb) for name, mb in last["server_rss_by_mapping"].items()}
    delivered = sum(n for s, n in tally["statuses"].items() if s in ("delivered", "read"))
    result = {
        "minutes": args.minutes,
        "sessions": args.sessions,
        "database": args.database,
        "small_caches": args.small_caches,
        "requests": dict(load.counts),
        "errors": dict(load.errors),
        "error_examples": load.error_examples,
        "server_log_errors": log_errors,
        "messages": {
            "accepted": len(load.message_ids),
            "statuses": tally["statuses"],
            "delivered": delivered,
            "received_by_whatsapp": tally["received"],
            "duplicates": tally["duplicates"],
            "drained_in_s": round(drained_in, 1),
        },
        "send_pdf_latency_ms": {"p50": round((percentile(load.send_latency, 50) or 0) * 1000, 1),
                                "p99": round((percentile(load.send_latency, 99) or 0) * 1000, 1)},
        "memory": {
            "server_rss_mb": {"start": round(first["rss_mb"], 1), "end": round(last["rss_mb"], 1),
                              **slopes("rss_mb", "slope_mb_per_min")},
            "all_processes_pss_mb": {"start": round(first["pss_mb"], 1), "end": round(last["pss_mb"], 1),
                                     **slopes("pss_mb", "slope_mb_per_min")},
            "server_pss_mb": {"start": round(first["server_pss_mb"], 1), "end": round(last["server_pss_mb"], 1),
                              **slopes("server_pss_mb", "slope_mb_per_min")},
            "session_processes_pss_mb": {"start": round(first["sessions_pss_mb"], 1),
                                         "end": round(last["sessions_pss_mb"], 1),
                                         **slopes("sessions_pss_mb", "slope_mb_per_min")},
            "server_rss_grown_most_by_mapping": {  # after the warm-up; MB
                name: {"then": round(then, 2), "end": round(end, 2)}
                for name, (then, end) in sorted(grown.items(), key=lambda i: i[1][0] - i[1][1])[:6]},
            "server_heap": {name: {"first": heap[0][1].get(name), "last": heap[-1][1].get(name),
                                   **slopes(name, "slope_per_min", (heap_warm, heap_late))}
                            for name in HEAP_FIGURES} if heap else None,
        },
        "open_files": {"start": first["open_files"], "end": last["open_files"],
                       **slopes("open_files", "slope_per_min"),
                       "server_start": first["server_open_files"], "server_end": last["server_open_files"],
                       **slopes("server_open_files", "server_slope_per_min")},
        "processes": {"start": first["processes"], "end": last["processes"]},
        "samples": len(load.samples),
    }
    if args.trace_allocations:
        result["allocations_grown_since_first_dump"] = svc.allocations_grown
    result["failures"] = failures(result)
    print(json.dumps(result, indent=2))
    sys.exit(1 if result["failures"] else 0)


def failures(result: dict) -> list[str]:
    """What a user would call broken: an error, a message not delivered exactly once, a process lost.
    Memory and open files are figures to read (slopes), not judged here."""
    found = [f"{n} {kind} errors" for kind, n in result["errors"].items()]
    if result["server_log_errors"]:
        found.append(f"{result['server_log_errors']} errors in the server's log")
    messages = result["messages"]
    for key in ("delivered", "received_by_whatsapp"):
        if messages[key] != messages["accepted"]:
            found.append(f"{messages[key]} {key} of {messages['accepted']} accepted")
    if messages["duplicates"]:
        found.append(f"{messages['duplicates']} duplicates")
    if result["processes"]["end"] != result["processes"]["start"]:
        found.append(f"processes {result['processes']['start']} -> {result['processes']['end']}")
    return found


if __name__ == "__main__":
    main()
