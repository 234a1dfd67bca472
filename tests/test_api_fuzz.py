"""Property-based fuzzing of the HTTP API from its own OpenAPI schema (/api/schema/), with schemathesis,
against a real `manage.py serve` (embedded worker, simulator backend): requests that fit the schema and
requests that do not, with the token, without one and with a wrong one.

For every answer: no 5xx; every error in the contract's shape with a machine-readable code; a request
that got an error queued nothing (the queue's row count, read from the database the server writes).
"""

import base64
import os
import re

import pytest
import requests
import schemathesis
from hypothesis import strategies as st
from hypothesis import HealthCheck, given, settings as hyp_settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from messaging.models import OutgoingMessage
from sessions_app.config_file import load_and_mirror
from sessions_app.models import SessionCommand, WhatsAppSession
from tests.conftest import EXAMPLE_SESSIONS, make_pdf
from tests.files import b64, make_docx, make_image, make_xlsx
from tests.processes import serve

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

# Examples per operation, per generation mode, per credential: 13 operations x 2 x (this + 2 x a fifth).
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "80"))
# Refusals that the worker running the session gives to a valid command: the command row is its answer.
WORKER_REFUSALS = {"not_waiting_for_link", "session_not_running", "not_connected", "pairing_failed", "logout_failed"}
ERROR_CODE = re.compile(r"^[a-z][a-z0-9_]*$")


@pytest.fixture
def server(configured, tmp_path, settings):
    # Commands to the worker (pairing code, logout, delete) answer within a second or two here.
    with serve(tmp_path, SESSION_COMMAND_WAIT_SECONDS="5", SESSION_POLL_SECONDS="0.1") as server:
        wait_for_sessions_to_settle(server, settings.API_STATIC_TOKEN)
        yield server


def wait_for_sessions_to_settle(server, token, timeout: float = 30) -> None:
    """The sessions start with the server (stopped, initializing, qr): a request that changes nothing must
    not be blamed for that."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sessions = requests.get(f"{server.url}/api/sessions", headers={"Authorization": f"Bearer {token}"},
                                timeout=10).json()
        if sessions and all(s["status"] == "qr" for s in sessions):
            return
        time.sleep(0.2)
    raise AssertionError(f"the sessions did not reach qr: {sessions}")


def load_schema(server, token):
    response = requests.get(f"{server.url}/api/schema/", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert response.status_code == 200, response.text
    return schemathesis.openapi.from_dict(response.json())


def header(response, name: str) -> str:
    """schemathesis' Response keeps each header as a list of values."""
    for key, values in response.headers.items():
        if key.lower() == name:
            return values[0] if isinstance(values, list) else values
    return ""


def assert_error_shape(case, response) -> None:
    where = f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]!r}"
    assert header(response, "content-type").startswith("application/json"), where
    body = response.json()
    assert isinstance(body, dict), where
    assert body.get("success") is False, where
    assert isinstance(body.get("error"), str) and ERROR_CODE.match(body["error"]), where
    assert isinstance(body.get("message"), str) and body["message"].strip(), where


VALID_PDF = base64.b64encode(make_pdf(3000)).decode()
VALID_PDF_URLSAFE_WRAPPED = "\n".join(
    base64.urlsafe_b64encode(make_pdf(3001)).decode()[i : i + 76] for i in range(0, 4004, 76)
)


VALID_FILES = {  # body field of each file endpoint -> valid contents to graft
    "/api/send-pdf": ("pdfBase64", [VALID_PDF, VALID_PDF_URLSAFE_WRAPPED]),
    "/api/send-document": ("fileBase64", [VALID_PDF, b64(make_xlsx()), b64(make_docx()), b64(make_image())]),
    "/api/send-image": ("imageBase64", [b64(make_image("PNG")), b64(make_image("JPEG"))]),
}


def with_valid_parts(operation, mode):
    """For the file endpoints, a random body alone almost never holds a file of a configured session: graft valid
    values onto some generated bodies so the rest of the body is fuzzed past those checks, to the queue."""
    generated = operation.as_strategy(generation_mode=mode)
    if operation.path not in VALID_FILES:
        return generated
    file_field, files = VALID_FILES[operation.path]

    def graft(parts):
        case, *values = parts
        if isinstance(case.body, dict):
            for field, value in zip(("sessionId", file_field, "to", "caption", "fileName"), values):
                if value is not None and (field != "fileName" or operation.path != "/api/send-image"):
                    case.body[field] = value
        return case

    return st.tuples(
        generated,
        st.sampled_from([None, "tienda_lima", "tienda_cusco"]),
        st.sampled_from([None, *files]),
        st.sampled_from([None, "51987654321", "+51 987-654-321"]),
        st.sampled_from([None, "Gracias por su compra", ""]),
        st.sampled_from([None, "F001-123.pdf", "Cotizacion"]),
    ).map(graft)


def restore_example_sessions(settings) -> None:
    """DELETE /api/sessions/<id> with the token is a valid request; the next operation starts over."""
    import json

    settings.SESSIONS_CONFIG.write_text(json.dumps(EXAMPLE_SESSIONS))
    load_and_mirror()


def session_rows() -> list[tuple]:
    return list(WhatsAppSession.objects.order_by("session_id").values_list("session_id", "in_config", "status"))


def settled_session_rows(timeout: float = 15) -> list[tuple]:
    """The sessions once the worker is done with what an earlier request started (a session put back in the
    config starts again: stopped, initializing, qr), so that a later request is not blamed for it."""
    import time

    deadline = time.monotonic() + timeout
    rows = session_rows()
    while any(status in ("stopped", "initializing") for _, in_config, status in rows if in_config):
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
        rows = session_rows()
    return rows


def test_fuzzed_requests_get_no_5xx_and_errors_in_the_contract_shape(server, token, settings):
    schema = load_schema(server, token)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10, [op.label for op in operations]
    credentials = {
        "token": ({"Authorization": f"Bearer {token}"}, EXAMPLES),
        "none": ({}, max(5, EXAMPLES // 5)),
        "wrong": ({"Authorization": "Bearer wrong-token-0123456789abcdef"}, max(5, EXAMPLES // 5)),
    }
    statuses: dict[int, int] = {}
    http = requests.Session()
    no_negative: set[str] = set()

    for operation in operations:
        restore_example_sessions(settings)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            for name, (headers, examples) in credentials.items():

                @hyp_settings(
                    max_examples=examples,
                    deadline=None,
                    database=None,
                    derandomize=True,
                    suppress_health_check=list(HealthCheck),
                )
                @given(case=with_valid_parts(operation, mode))
                def check(case):
                    queued = OutgoingMessage.objects.count()
                    config, sessions, commands = (settings.SESSIONS_CONFIG.read_bytes(), settled_session_rows(),
                                                  SessionCommand.objects.count())
                    # The schema's bearer scheme makes schemathesis draw an Authorization of its own: the
                    # credential under test is the only one sent.
                    case.headers = {**{k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"},
                                    **headers}
                    response = case.call(base_url=server.url, session=http, timeout=30)
                    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                    where = f"{name}/{mode.value}: {case.method} {case.formatted_path} -> {response.status_code}"
                    assert response.status_code < 500, f"{where}: {response.text[:500]!r}"
                    if response.status_code >= 400:
                        assert_error_shape(case, response)
                        assert OutgoingMessage.objects.count() == queued, f"{where} queued a message"
                        assert settings.SESSIONS_CONFIG.read_bytes() == config, f"{where} changed the config file"
                        assert session_rows() == sessions, f"{where} changed the sessions"
                        if response.json()["error"] not in WORKER_REFUSALS:
                            assert SessionCommand.objects.count() == commands, f"{where} left a session command"
                    else:
                        assert OutgoingMessage.objects.count() - queued in (0, 1), f"{where} queued more than one"
                    if name != "token":
                        assert response.status_code in (401, 403), where
                        assert response.json()["error"] == ("missing_token" if name == "none" else "invalid_token")

                try:
                    check()
                except Unsatisfiable:
                    # Nothing of this operation can be made invalid (no parameters, no body).
                    assert mode is GenerationMode.NEGATIVE, operation.label
                    no_negative.add(operation.label)

    total = sum(statuses.values())
    print(f"fuzz: {total} requests over {len(operations)} operations, statuses {dict(sorted(statuses.items()))}; "
          f"without invalid variants: {sorted(no_negative)}")
    assert total >= 2000  # thousands, with and without the token
    # The generated requests reach past validation too, not only the error paths.
    assert statuses.get(202, 0) >= 5 and statuses.get(200, 0) >= 10
