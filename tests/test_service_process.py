"""The service as `make run` starts it (`manage.py serve`), as a real process."""

import asyncio
import json
import re
import socket
import subprocess
import sys
import time

import httpx
import pytest
import websockets
from django.db import connection

from messaging.models import MessagePayload, OutgoingMessage
from tests.conftest import make_pdf, pdf_body
from tests.processes import ROOT, serve, service_env, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_accepted_message_survives_kill_9_and_restart(configured, auth, tmp_path):
    pdf = make_pdf(100_000, seed=3)
    server = serve(tmp_path, "--no-worker").start()
    try:
        response = httpx.post(f"{server.url}/api/send-pdf", json=pdf_body(pdf=pdf), headers=auth, timeout=30)
        assert response.status_code == 202, response.text
    finally:
        server.kill()  # no shutdown hook runs: only what was committed before the 202 remains
    message_id = response.json()["messageId"]

    with serve(tmp_path, "--no-worker") as again:
        status = httpx.get(f"{again.url}/api/messages/{message_id}", headers=auth, timeout=30)
    assert status.status_code == 200
    assert status.json()["status"] == "queued"
    assert bytes(MessagePayload.objects.get(message__message_id=message_id).data) == pdf


def test_healthz_needs_no_token_and_checks_the_database(configured, tmp_path):
    with serve(tmp_path, "--no-worker") as server:
        response = httpx.get(f"{server.url}/healthz", timeout=10)
    assert response.status_code == 200
    assert response.json()["database"] == "ok"


def test_a_clean_start_logs_no_warning(configured, tmp_path):
    """uvicorn's `websockets` protocol warned at every start that it is deprecated, a line an operator cannot
    tell from a real problem; serve uses its successor (websockets-sansio, same library)."""
    with serve(tmp_path, "--no-worker") as server:
        assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200
        log = server.output()
    assert "Serving on" in log
    assert " WARNING " not in log and "Warning" not in log, log


def test_an_idle_connection_outlives_the_clients_keep_alive(configured, tmp_path):
    # httpx, requests and Node keep an idle connection 5 s; were the server to close it at 5 s too, a
    # client would now and then send on a connection being closed, and see an error for nothing.
    with serve(tmp_path, "--no-worker") as server, socket.create_connection(("127.0.0.1", server.port)) as conn:
        request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        reader = conn.makefile("rb")
        for pause in (0, 6.5):
            time.sleep(pause)
            conn.sendall(request)
            assert reader.readline().startswith(b"HTTP/1.1 200"), f"no answer after {pause} s idle"
            length = 0
            while (line := reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            reader.read(length)


def test_each_answer_reaches_the_client_in_one_piece(configured, tmp_path):
    """Status line, headers and body leave in one write: uvicorn wrote them in two, which woke the client
    twice and cost a second system call per request (bench/send_pdf_throughput.py)."""
    with serve(tmp_path, "--no-worker") as server, socket.create_connection(("127.0.0.1", server.port)) as conn:
        split = 0
        for _ in range(50):
            conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            head, _, body = conn.recv(65536).partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200"), head
            length = int(re.search(rb"(?im)^content-length: *(\d+)", head).group(1))
            split += len(body) < length
            while len(body) < length:
                body += conn.recv(65536)
    assert split == 0, f"{split} of 50 answers came in pieces"


def test_sockets_are_not_compressed(configured, auth, tmp_path):
    # Status and QR events are small; a compressor per socket would cost each one tens of KB of memory.
    async def handshake(port: int) -> dict:
        url = f"ws://127.0.0.1:{port}/ws/session/tienda_lima?token={auth['Authorization'].split()[1]}"
        async with websockets.connect(url, open_timeout=30) as ws:  # offers permessage-deflate
            await asyncio.wait_for(ws.recv(), 30)
            return {name.lower(): value for name, value in ws.response.headers.raw_items()}

    with serve(tmp_path, "--no-worker") as server:
        headers = asyncio.run(handshake(server.port))
    assert "sec-websocket-extensions" not in headers, headers


def run_serve(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", "serve", "--port", "1", "--no-worker"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60)


def test_sigusr1_writes_the_stacks_and_the_service_goes_on(configured, auth, tmp_path):
    with serve(tmp_path, SIMULATOR_SEND_LATENCY_MS="0") as server:
        wait_for(lambda: "dispatcher started" in server.output(), 30, what="the dispatcher")
        dump = server.stack_dump()
        assert "=== end of stack dump ===" in dump
        assert "Current thread" in dump and "stack_dump.py" in dump  # the threads
        for task in ("session-supervisor", "dispatcher-recorder"):  # the loop's tasks, by name
            assert f"--- {task}:" in dump, dump
        # What start-up left lives as long as the process: frozen (gc_tuning), out of every full collection.
        frozen = re.search(r"=== gc: (\d+) start-up objects frozen, (\d+) tracked", dump)
        assert frozen and int(frozen[1]) > 50_000 and int(frozen[2]) < int(frozen[1]) / 2, dump[-500:]
        # And what SQLite holds: on the SQLite database, the page caches of the connections in use.
        sqlite = re.search(r"=== sqlite: ([\d.]+) MB in use \(([\d.]+) MB of it page cache\), at most ([\d.]+) MB", dump)
        assert sqlite, dump[-500:]
        if connection.vendor == "sqlite":
            assert 0 < float(sqlite[1]) <= float(sqlite[3]), sqlite[0]
        # And the C heap (in use, free but kept, mapped apart) and Python's small blocks.
        heap = re.search(r"=== malloc: ([\d.]+) MB in use, ([\d.]+) MB free in the heap, ([\d.]+) MB mapped apart; "
                         r"python: (\d+) small blocks ===", dump)
        assert heap and float(heap[1]) > 1 and int(heap[4]) > 100_000, dump[-500:]
        assert httpx.get(f"{server.url}/api/sessions", headers=auth, timeout=10).status_code == 200


def test_traced_the_dump_names_the_lines_whose_allocations_grew(configured, auth, tmp_path):
    with serve(tmp_path, "--no-worker", PYTHONTRACEMALLOC="1") as server:
        first = server.stack_dump(timeout=60)
        assert "=== allocations grown most since start (tracemalloc) ===" in first, first[-500:]
        for _ in range(20):
            assert httpx.get(f"{server.url}/api/sessions", headers=auth, timeout=30).status_code == 200
        second = server.stack_dump(timeout=60)
    grown = second.partition("=== allocations grown most since the first dump (tracemalloc) ===\n")[2]
    lines = grown.split("=== end of stack dump ===")[0].splitlines()
    # file:line: size=... (+growth), count=...; among them what the requests in between left (Django)
    assert lines and all(re.match(r".+:\d+: size=.+ \([+-].+\), count=", line) for line in lines), grown[:1000]
    assert any("site-packages/django/" in line for line in lines), grown[:1000]


def test_service_refuses_a_keep_alive_under_a_second(configured):
    result = run_serve(service_env(HTTP_KEEP_ALIVE_SECONDS="0"))
    assert result.returncode == 2
    assert "HTTP_KEEP_ALIVE_SECONDS must be 1 or more" in result.stderr


def test_service_refuses_a_journal_that_keeps_nothing(configured):
    result = run_serve(service_env(SENT_JOURNAL_KEEP="0"))
    assert result.returncode == 2
    assert "SENT_JOURNAL_KEEP=0: use 1 or more" in result.stderr


@pytest.mark.parametrize(
    "name, value, says",
    [
        ("SENT_JOURNAL_KEEP", "5k", "SENT_JOURNAL_KEEP='5k': use a whole number"),
        ("SEND_MIN_INTERVAL_SECONDS", "2s", "SEND_MIN_INTERVAL_SECONDS='2s': use a number"),
        # a misspelt yes was taken as no: the worker would silently not run in the web process
        ("EMBEDDED_WORKER", "ture", "EMBEDDED_WORKER='ture': use true or false"),
    ],
)
def test_service_refuses_a_setting_that_does_not_parse_and_names_it(configured, name, value, says):
    result = run_serve(service_env(**{name: value}))
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].endswith(says), result.stderr[-500:]


def test_service_refuses_to_start_without_a_token(configured):
    result = run_serve(service_env(API_STATIC_TOKEN=""))
    assert result.returncode != 0
    assert "API_STATIC_TOKEN" in result.stderr


@pytest.mark.parametrize(
    "content, says",
    [
        ("[{\"sessionId\": \"ok\"},", "invalid JSON"),
        (json.dumps([{"sessionId": "tienda_lima"}, {"sessionId": "../../etc"}]), "entry 1"),
        (json.dumps([{"sessionId": "a"}, {"sessionId": "a"}]), "appears twice"),
        (json.dumps({"sessionId": "a"}), "expected a JSON list"),
    ],
)
def test_service_refuses_a_broken_config_and_names_the_entry(configured, tmp_path, content, says):
    config = tmp_path / "broken.config.json"
    config.write_text(content)
    result = run_serve(service_env(SESSIONS_CONFIG=str(config)))
    assert result.returncode == 2
    assert says in result.stderr
