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
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"):
            response = client.request(method, path)
            assert response.status_code == 401, f"{method} {path} answered {response.status_code} without token"
            if method != "HEAD" and "json" in response.headers["content-type"]:  # /api/docs/ is a page: its 401 is HTML
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


def admin_routes():
    from django.contrib import admin

    from whatsapp_service import asgi  # noqa: F401

    for route, name in routes(admin.site.urls[0], "admin/"):
        yield concrete(route.replace("<path:object_id>", "1").replace("<path:content_type_id>", "1")), name


def test_every_admin_route_needs_a_staff_login(configured):
    from whatsapp_service.asgi import application

    client = AsgiClient(application)
    checked = 0
    for path, name in admin_routes():
        if name in ("login", "logout", "javascript-catalog", "password_reset", "view_on_site"):
            continue  # the login form itself (rate-limited), and pages that show nothing
        for method in ("GET", "POST"):
            response = client.request(method, path)
            assert response.status_code in (302, 403, 404), f"{method} {path} answered {response.status_code}"
            if response.status_code == 302:
                assert response.headers["location"].startswith("/admin/login/"), (path, response.headers["location"])
        checked += 1
    assert checked >= 15


async def test_every_socket_route_refuses_an_anonymous_client(configured):
    from sessions_app.routing import websocket_urlpatterns
    from tests.sessions_app.test_consumer import socket

    paths = {str(p.pattern): p for p in websocket_urlpatterns}
    # A new socket route fails here until it is added, with its check, to this list.
    assert set(paths) == {"^ws/session/(?P<session_id>.*)$", ""}
    for path in ("/ws/session/tienda_lima", "/ws/anything/else", "/"):
        connected, code = await socket(path).connect(timeout=5)
        assert not connected and code in (4401, 4404), (path, code)
