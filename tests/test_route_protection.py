"""Every route needs the token or a staff login; this fails when a new unprotected route appears."""

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from tests.conftest import AsgiClient

pytestmark = pytest.mark.django_db(transaction=True)

# Load balancers and orchestrators call them: they reveal only "ok", the names of failing checks and
# the age of the worker heartbeat.
PUBLIC = {"healthz", "readyz"}
SAMPLE = {"session_id": "tienda_lima", "message_id": "00000000-0000-0000-0000-000000000000"}


def routes(patterns=None, prefix=""):
    for p in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(p, URLResolver):
            if str(p.pattern) == "admin/":
                continue  # Django's admin: checked below as a whole
            yield from routes(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern), p.name


def concrete(route: str) -> str:
    path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: SAMPLE.get(m.group(1), "x"), route)
    return "/" + path.lstrip("^").rstrip("$")


def all_routes():
    from whatsapp_service import asgi  # noqa: F401  (the URLconf as the server loads it)

    return [(concrete(r), name) for r, name in routes()]


def test_every_api_route_refuses_a_request_without_token(configured):
    from whatsapp_service.asgi import application

    client = AsgiClient(application)
    checked = 0
    for path, name in all_routes():
        if name in PUBLIC or not path.startswith("/api/"):
            continue
        for method in ("GET", "POST", "DELETE"):
            response = client.request(method, path)
            assert response.status_code == 401, f"{method} {path} answered {response.status_code} without token"
            if "json" in response.headers["content-type"]:  # /api/docs/ is a page: its 401 is HTML
                assert response.json()["error"] == "missing_token"
            response = client.request(method, path, headers={"Authorization": "Bearer wrong-token"})
            assert response.status_code == 403, f"{method} {path} answered {response.status_code} to a wrong token"
        checked += 1
    assert checked >= 5


def test_every_other_route_needs_a_staff_login(configured):
    from whatsapp_service.asgi import application

    client = AsgiClient(application)
    for path, name in all_routes():
        if name in PUBLIC or path.startswith("/api/") or path.startswith("/static/"):
            continue
        response = client.get(path)
        assert response.status_code in (302, 401, 403), f"GET {path} answered {response.status_code} anonymously"
        if response.status_code == 302:
            assert "/login" in response.headers["location"]
    assert client.get("/admin/").status_code == 302
