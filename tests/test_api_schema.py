"""The served schema (/api/schema/) says exactly what is served, checked with tools nobody here wrote:
schemathesis with every check over every operation (its stateful phase too) finds nothing, a client that
openapi-python-client generates from it sends and reads back through its own code, and no /api/ route is
left out of it."""

import base64
import functools
import importlib
import json
import os
import subprocess
import sys

import pytest
import requests
from hypothesis import given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from core.openapi import PDF_BASE64

from messaging.asgi_send import ENDPOINTS
from tests.conftest import AsgiClient, make_pdf
from tests.processes import ROOT, serve
from tests.test_route_protection import all_routes


BIN = os.path.dirname(sys.executable)
# Test cases per operation and phase: about 900 requests in all, 15-30 s on this machine.
EXAMPLES = os.environ.get("SCHEMA_FUZZ_EXAMPLES", "20")
SEED = os.environ.get("SCHEMA_FUZZ_SEED", "1")


@pytest.fixture
def server(configured, tmp_path):
    # Commands to the worker (pairing code, logout, delete) answer within a second or two here.
    with serve(tmp_path, SESSION_COMMAND_WAIT_SECONDS="5", SESSION_POLL_SECONDS="0.1") as server:
        yield server


def served_schema(server, token) -> dict:
    response = requests.get(f"{server.url}/api/schema/", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_schemathesis_with_every_check_finds_nothing(server, token, tmp_path):
    report = tmp_path / "schemathesis.json"
    run = subprocess.run(
        [f"{BIN}/schemathesis", "run", f"{server.url}/api/schema/", "--checks", "all",
         "-H", f"Authorization: Bearer {token}", "--max-examples", EXAMPLES, "--seed", SEED, "--workers", "1",
         "--phases", "examples,coverage,fuzzing,stateful", "--request-timeout", "20",
         "--report", "json", "--report-json-path", str(report), "--output-sanitize", "true"],
        cwd=tmp_path, env={**os.environ, "SCHEMATHESIS_HOOKS": "tests.schemathesis_hooks", "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=300,
    )
    summary = run.stdout[run.stdout.rfind("SUMMARY"):]
    print(summary)
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-3000:]
    assert "Stateful" in summary and "❌" not in summary, summary
    operations = {f"{method.upper()} {path}" for path, item in served_schema(server, token)["paths"].items()
                  for method in item}
    assert f"Tested: {len(operations)}" in summary, summary


def generate_client(schema: dict, tmp_path):
    (tmp_path / "schema.json").write_text(json.dumps(schema))
    (tmp_path / "config.yaml").write_text("post_hooks: []\npackage_name_override: wa_client\n"
                                          "project_name_override: wa-client\n")
    subprocess.run([f"{BIN}/openapi-python-client", "generate", "--path", "schema.json", "--output-path",
                    "client", "--config", "config.yaml"], cwd=tmp_path, check=True, capture_output=True, timeout=120)
    sys.path.insert(0, str(tmp_path / "client"))
    try:
        return {name: importlib.import_module(f"wa_client.{name}") for name in (
            "client", "models", "api.messages.send_pdf", "api.messages.send_text", "api.messages.get_message",
            "api.sessions.list_sessions")}
    finally:
        sys.path.remove(str(tmp_path / "client"))


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_a_generated_client_sends_and_reads_back_through_its_own_code(server, token, tmp_path):
    wa = generate_client(served_schema(server, token), tmp_path)
    models = wa["models"]
    client = wa["client"].AuthenticatedClient(base_url=server.url, token=token)
    pdf = base64.b64encode(make_pdf(4000)).decode()

    sent_pdf = wa["api.messages.send_pdf"].sync(client=client, idempotency_key="schema-test-1", body=models.SendPdfRequest(
        session_id="tienda_lima", to="+51 987-654-321", pdf_base_64=pdf, file_name="F001-9.pdf", caption="Gracias"))
    sent_text = wa["api.messages.send_text"].sync(client=client, body=models.SendTextRequest(
        session_id="tienda_cusco", to="51987654322", text="Su boleta está lista"))
    assert isinstance(sent_pdf, models.MessageAccepted), sent_pdf
    assert isinstance(sent_text, models.MessageAccepted), sent_text

    pdf_message = wa["api.messages.get_message"].sync(client=client, message_id=sent_pdf.message_id)
    text_message = wa["api.messages.get_message"].sync(client=client, message_id=sent_text.message_id)
    assert isinstance(pdf_message, models.Message) and isinstance(text_message, models.Message)
    assert (pdf_message.session_id, pdf_message.to, pdf_message.file_name, pdf_message.type_.value) == (
        "tienda_lima", "51987654321", "F001-9.pdf", "document")
    assert (text_message.session_id, text_message.to, text_message.type_.value) == (
        "tienda_cusco", "51987654322", "text")
    assert pdf_message.status.value in {"queued", "sending", "sent", "delivered", "read"}

    sessions = wa["api.sessions.list_sessions"].sync(client=client)
    assert [s.session_id for s in sessions] == ["tienda_cusco", "tienda_lima"]
    assert all(isinstance(s.status, models.SessionStatusEnum) for s in sessions)

    # An error answer is parsed into its own model, with the code as a member of its enum.
    unknown = wa["api.messages.send_text"].sync(client=client, body=models.SendTextRequest(
        session_id="tienda_trujillo", to="51987654321", text="hola"))
    assert isinstance(unknown, models.SendTextResponse404) and unknown.error.value == "unknown_session"
    print(f"generated client: send_pdf -> {sent_pdf.message_id}, send_text -> {sent_text.message_id}, "
          f"get_message x2 -> {pdf_message.status.value}/{text_message.status.value}, "
          f"list_sessions -> {[s.session_id for s in sessions]}")


@pytest.mark.django_db(transaction=True)
def test_every_api_route_is_in_the_schema(configured, auth):
    """A route added without its schema fails here: Django's /api/ routes and the send adapter's paths,
    against the schema's paths and methods."""
    from whatsapp_service.asgi import application

    client = AsgiClient(application)
    paths = client.get("/api/schema/", headers=auth).json()["paths"]
    served = {path for path, name in all_routes() if path.startswith("/api/")} | set(ENDPOINTS)
    undocumented = {"/api/schema/", "/api/docs/"}  # the schema itself and its page
    documented = {path.replace("{session_id}", "tienda_lima")
                      .replace("{message_id}", "00000000-0000-0000-0000-000000000000") for path in paths}
    assert served - undocumented == documented
    for path, operations in paths.items():
        for method, operation in operations.items():
            assert operation.get("operationId"), (method, path)
            assert {"401", "403"} <= set(operation["responses"]), (method, path)
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    error = response["content"]["application/json"]["schema"]["properties"]["error"]
                    assert error["enum"], (method, path, status)
    ids = [op["operationId"] for item in paths.values() for op in item.values()]
    assert len(ids) == len(set(ids))


@functools.lru_cache
def pattern_validator(pattern: str):
    import jsonschema_rs

    return jsonschema_rs.validator_for({"type": "string", "pattern": pattern})


def matches(pattern: str, value: str) -> bool:
    """As JSON Schema reads a pattern (ECMA-262: `$` is the end, not also before a last line break), with
    the validator schemathesis uses."""
    return pattern_validator(pattern).is_valid(value)


def takes(clean, value) -> bool:
    from messaging.errors import InvalidMessage

    try:
        clean(value)
    except InvalidMessage:
        return False
    return True


@hyp_settings(max_examples=600, deadline=None, derandomize=True)
@given(st.one_of(
    st.from_regex(PDF_BASE64["pattern"]),
    st.text(alphabet="JVBERi0123AQgw+/-_= \t\n\r\x0b\x0c", max_size=24).map(lambda s: "JVBERi" + s),
    st.builds("{}{}".format, st.sampled_from(["", "data:application/pdf;base64,", "DATA:;BASE64,", " data:;base64,"]),
              st.text(alphabet="JVBERi0+/= \n", max_size=16)),
))
def test_the_pdf_pattern_is_what_the_service_decodes(value):
    from messaging.intake import decode_pdf

    assert matches(PDF_BASE64["pattern"], value) == takes(decode_pdf, value), repr(value)


@hyp_settings(max_examples=600, deadline=None, derandomize=True)
@given(st.one_of(st.text(max_size=12), st.text(alphabet="a./\\ \t\u200b\U000f0000ñ😀\n", max_size=8)))
def test_the_file_name_pattern_is_what_the_service_takes(value):
    from messaging.intake import clean_file_name
    from messaging.views import FILE_NAME_PATTERN

    assert matches(FILE_NAME_PATTERN, value) == takes(clean_file_name, value), repr(value)
