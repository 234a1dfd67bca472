"""The service's log lines through real processes: JSON with LOG_FORMAT=json, the session and message
ids as fields, nothing secret or personal in them, and neonize's own output routed into them."""

import base64
import json
import time

import pytest

from tests.conftest import make_pdf
from tests.messaging.test_dispatcher import FAST, Api
from tests.processes import ServiceProcess, runworker, serve, service_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def json_lines(output: str) -> list[dict]:
    lines = [line for line in output.splitlines() if line.strip()]
    assert lines
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"not a JSON line: {line!r}") from None
    return parsed


def test_json_lines_carry_session_and_message_ids_and_no_secrets(configured, auth, token, tmp_path):
    pdf = make_pdf(30_000, seed=9)
    env = {**FAST, "LOG_FORMAT": "json"}
    with serve(tmp_path, "--no-worker", **env) as web, runworker(tmp_path, **env) as worker:
        api = Api(web, auth)
        api.link("tienda_lima")
        message_id = api.send(pdf=pdf, to="+51 987 654 321")
        api.wait(lambda: api.message(message_id)["status"] == "delivered")
        refused = api.client.get("/api/sessions", headers={"Authorization": "Bearer wrong-token-123456789"})
        assert refused.status_code == 403
        in_query = api.client.get("/api/sessions?token=secret-in-query-123456", headers={"Authorization": ""})
        assert in_query.status_code in (401, 403)
    everything = web.output() + worker.output()
    records = json_lines(web.output()) + json_lines(worker.output())

    sent = [r for r in records if r.get("message_id") == message_id]
    assert sent, records
    assert all(r["session_id"] == "tienda_lima" for r in sent)
    assert {"ts", "level", "logger", "msg", "pid"} <= set(sent[0])
    assert "***321" in sent[0]["msg"]
    assert any(r["logger"] == "django.request" and r["level"] == "WARNING" for r in records)  # the 403
    for secret in ("987654321", "987 654 321", token, "wrong-token-123456789", "secret-in-query-123456",base64.b64encode(pdf)[:60].decode()):
        assert secret not in everything


def test_text_lines_stay_readable(configured, auth, tmp_path):
    with serve(tmp_path, **FAST) as server:
        api = Api(server, auth)
        api.link("tienda_lima")
        message_id = api.send()
        api.wait(lambda: api.message(message_id)["status"] == "delivered")
        server.wait_output(message_id)
    lines = [line for line in server.output().splitlines() if message_id in line]
    assert lines, server.output()[-6000:]
    line = lines[0]
    assert " INFO messaging.dispatcher session tienda_lima: message " in line and "***321" in line


def test_neonize_and_whatsmeow_output_becomes_json_records_of_the_session(configured, tmp_path):
    """WhatsApp is unreachable here: the real client fails to connect and whatsmeow says so."""
    env = service_env(WHATSAPP_BACKEND="neonize", LOG_FORMAT="json", WHATSMEOW_LOG_LEVEL="DEBUG",
                      SESSION_RESTART_BACKOFF_SECONDS="30", SESSION_POLL_SECONDS="0.1")
    with ServiceProcess("runworker", env=env, log_path=tmp_path / "runworker.log") as worker:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and worker.output().count("next start in") < 2:
            time.sleep(0.2)
    records = json_lines(worker.output())
    from_go = [r for r in records if r["logger"].lower().startswith("whatsmeow")]
    assert from_go, [r["logger"] for r in records]
    assert {r.get("session_id") for r in from_go} <= {"tienda_lima", "tienda_cusco"}
    assert all(r.get("session_id") for r in from_go)


def test_a_line_the_stream_cannot_take_costs_only_that_line():
    """stdout in an ASCII locale cannot encode a lone surrogate (a file name decoded with
    surrogateescape): the lines queued with it are still written."""
    import io
    import logging

    from core.log_format import BackgroundStreamHandler

    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="ascii", errors="strict")
    handler = BackgroundStreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("tests.refused_line")
    logger.propagate, logger.level = False, logging.INFO
    logger.addHandler(handler)
    try:
        for text in ("before", "bad \udcff name", "after"):
            logger.info(text)
        handler.flush()
    finally:
        logger.removeHandler(handler)
    assert raw.getvalue().decode().split() == ["before", "after"]
