"""The simulator as the real service runs it (`manage.py serve`, `manage.py shell`, `makemigrations`): an
app installed and routed only with its backend, and its phone reading a chat end to end."""

import json
import subprocess
import sys

import httpx
import pytest

from sessions_app.models import SessionStatus, WhatsAppSession
from simulator.models import SimulatorControl
from tests.messaging.test_dispatcher import FAST, Api
from tests.processes import ROOT, serve, service_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

CONTROL_PATHS = [f"/api/simulator/sessions/tienda_lima/{a}" for a in ("scan", "drop", "logout", "replace", "ban", "read")]

LAYOUT = """
import json
from django.apps import apps
from django.urls import URLPattern, URLResolver, get_resolver

def names(patterns, prefix=""):
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from names(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern), p.name

print(json.dumps({"installed": apps.is_installed("simulator"),
                  "models": sorted(m._meta.label for m in apps.get_models()),
                  "routes": sorted(r for r, _ in names(get_resolver().url_patterns) if "simulator" in r)}))
"""


def layout(backend: str) -> dict:
    """What a process of this backend has installed and routed, as Django sees it there."""
    done = subprocess.run([sys.executable, "manage.py", "shell", "-c", LAYOUT], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env=service_env(WHATSAPP_BACKEND=backend))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_simulator_is_installed_and_routed_with_its_backend_only(configured):
    production = layout("neonize")
    assert production["installed"] is False
    assert not [m for m in production["models"] if "Simulator" in m], production["models"]
    assert production["routes"] == ["^api/simulator/"]  # the 404 for its paths, below
    simulated = layout("simulator")
    assert simulated["installed"] is True
    assert {"simulator.SimulatorControl", "simulator.SimulatorOutbox"} <= set(simulated["models"])
    assert simulated["routes"] == sorted(
        ["api/simulator/outbox"] + [f"api/simulator/sessions/<str:session_id>/{a}"
                                    for a in ("scan", "drop", "logout", "replace", "ban", "read")])


@pytest.mark.parametrize("backend", ["neonize", "simulator"])
def test_the_migrations_match_the_models_with_either_backend(configured, tmp_path, backend):
    env = service_env(WHATSAPP_BACKEND=backend, DATABASE_URL=f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    done = subprocess.run([sys.executable, "manage.py", "makemigrations", "--check", "--dry-run"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No changes detected" in done.stdout


def test_without_the_simulator_its_paths_answer_404_after_the_token_check(configured, auth, tmp_path):
    WhatsAppSession.objects.filter(session_id="tienda_lima").update(status=SessionStatus.QR, qr="2@ref,a,b,c")
    with serve(tmp_path, WHATSAPP_BACKEND="neonize", EMBEDDED_WORKER="false") as server:
        client = httpx.Client(base_url=server.url, timeout=30)
        for method, path in [("POST", p) for p in CONTROL_PATHS] + [("GET", "/api/simulator/outbox")]:
            for headers, status, code in [({}, 401, "missing_token"),
                                          ({"Authorization": "Bearer wrong-token-0123456789"}, 403, "invalid_token"),
                                          (auth, 404, "not_found")]:
                response = client.request(method, path, headers=headers, json={"phone": "51911111111"})
                assert response.status_code == status, (method, path, response.text)
                body = response.json()
                assert (body["success"], body["error"]) == (False, code) and body["message"], (method, path)
        schema = client.get("/api/schema/", headers=auth)
        assert schema.status_code == 200
        assert "/api/send-pdf" in schema.json()["paths"]
        assert "simulator" not in schema.text.lower()
    assert not SimulatorControl.objects.exists()


def test_a_chat_read_on_the_simulated_phone_marks_the_delivered_pdf_read(configured, auth, tmp_path):
    with serve(tmp_path, **FAST) as server:
        api = Api(server, auth)
        schema = api.client.get("/api/schema/").json()
        assert "/api/simulator/sessions/{session_id}/read" in schema["paths"]
        api.link("tienda_lima")
        message_id = api.send(to="51987654321")
        api.wait(lambda: api.message(message_id)["status"] == "delivered")
        assert api.message(message_id)["readAt"] is None  # delivered, and nobody reads by themselves
        read = api.client.post("/api/simulator/sessions/tienda_lima/read", json={"to": "+51 987 654 321"})
        assert read.status_code == 202, read.text
        message = api.wait(lambda: api.message(message_id)["status"] == "read" and api.message(message_id))
    assert message["readAt"] and message["deliveredAt"] and message["readAt"] >= message["sentAt"]
