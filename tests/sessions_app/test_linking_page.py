"""The linking page and what it fetches, through the service's ASGI application: staff only, Spanish,
the QR as a server-rendered image, static files served by the service itself, the admin's Link button."""

import json

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from sessions_app.models import SessionCommand, SessionStatus, WhatsAppSession
from tests.conftest import AsgiClient

pytestmark = pytest.mark.django_db(transaction=True)


def login(is_staff: bool, is_superuser: bool = False) -> dict:
    user = get_user_model().objects.create_user(
        username=f"u{is_staff}{is_superuser}", password="x", is_staff=is_staff, is_superuser=is_superuser
    )
    client = Client()
    client.force_login(user)
    return {"Cookie": f"sessionid={client.cookies['sessionid'].value}"}


@pytest.fixture
def web():
    from whatsapp_service import asgi

    return AsgiClient(asgi.application)


@pytest.fixture
def staff(configured) -> dict:
    return login(is_staff=True)


def test_the_page_needs_a_staff_login(web, configured):
    response = web.get("/link/tienda_lima/")
    assert response.status_code == 302
    assert response.headers["location"] == "/admin/login/?next=/link/tienda_lima/"
    response = web.get("/link/tienda_lima/", headers=login(is_staff=False))
    assert response.status_code == 302 and response.headers["location"].startswith("/admin/login/")


def test_the_page_opens_the_socket_of_its_session_in_spanish(web, staff):
    response = web.get("/link/tienda_lima/", headers=staff)
    assert response.status_code == 200
    html = response.text
    assert 'data-ws-path="/ws/session/tienda_lima"' in html
    assert 'data-qr-url="/link/tienda_lima/qr.svg"' in html
    assert "Sistema de Ventas de la Sede Lima" in html
    assert "Reintentar" in html and "Vincule con un código" in html
    texts = json.loads(html.split('<script id="link-texts" type="application/json">')[1].split("</script>")[0])
    assert texts["reasons"]["qr_timeout"] == "El código QR expiró sin ser escaneado."  # the script's own texts
    assert "/static/sessions_app/link.js" in html
    assert "http://" not in html.replace("http://www.w3.org", "")  # nothing fetched from the internet


def test_a_new_session_gets_its_page_without_being_created_yet(web, staff):
    response = web.get("/link/tienda_trujillo/", headers=staff)
    assert response.status_code == 200 and "Sesión nueva" in response.text
    assert not WhatsAppSession.objects.filter(pk="tienda_trujillo").exists()


def test_an_invalid_session_id_gets_a_clear_error(web, staff):
    response = web.get("/link/tienda.lima/", headers=staff)
    assert response.status_code == 400 and "1 a 64 letras" in response.text


def test_the_script_and_the_admin_styles_are_served_by_the_service(web):
    script = web.get("/static/sessions_app/link.js")
    assert script.status_code == 200 and "new WebSocket" in script.text
    assert web.get("/static/admin/css/base.css").status_code == 200


def test_the_pending_qr_is_an_svg_image(web, staff):
    WhatsAppSession.objects.filter(pk="tienda_lima").update(status=SessionStatus.QR, qr="2@abc,def,ghi")
    response = web.get("/link/tienda_lima/qr.svg", headers=staff)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/svg+xml"
    assert "no-store" in response.headers["cache-control"]
    assert response.text.startswith("<svg") and "<path" in response.text


def test_no_qr_image_when_none_is_pending(web, staff):
    WhatsAppSession.objects.filter(pk="tienda_lima").update(status=SessionStatus.CONNECTED, qr="2@viejo")
    response = web.get("/link/tienda_lima/qr.svg", headers=staff)
    assert response.status_code == 404 and response.json()["error"] == "no_pending_qr"


def test_the_qr_image_is_for_staff_only(web, configured):
    WhatsAppSession.objects.filter(pk="tienda_lima").update(status=SessionStatus.QR, qr="2@secreto")
    for cookies in ({}, login(is_staff=False)):
        response = web.get("/link/tienda_lima/qr.svg", headers=cookies)
        assert response.status_code == 403 and response.json()["error"] == "forbidden"


def test_the_admin_session_list_has_a_link_button_per_row(web, configured):
    admin = login(is_staff=True, is_superuser=True)
    response = web.get("/admin/sessions_app/whatsappsession/", headers=admin)
    assert response.status_code == 200
    for session_id in ("tienda_lima", "tienda_cusco"):
        assert f'<a class="button" href="/link/{session_id}/">Vincular</a>' in response.text
    assert 'href="/link/"' in response.text  # "Vincular un número nuevo"


def test_a_new_number_starts_from_its_session_id(web, staff):
    response = web.get("/link/?session_id=tienda_ica", headers=staff)
    assert response.status_code == 302 and response.headers["location"] == "/link/tienda_ica/"
    response = web.get("/link/?session_id=tienda+ica", headers=staff)
    assert response.status_code == 200 and "1 a 64 letras" in response.text


CSRF = "k" * 32


def staff_post(web, staff: dict, path: str, data: dict, csrf: bool = True):
    headers = {**staff, "Accept": "application/json"}
    if csrf:
        headers["Cookie"] += f"; csrftoken={CSRF}"
        headers["X-CSRFToken"] = CSRF
    return web.post(path, data=data, headers=headers)


def test_pairing_code_needs_the_csrf_token_of_the_staff_session(web, staff):
    response = staff_post(web, staff, "/link/tienda_lima/pairing-code", {"phone": "51987654321"}, csrf=False)
    assert response.status_code == 403
    assert not SessionCommand.objects.exists()


def test_pairing_code_is_for_staff_only(web, configured):
    for who in ({"Cookie": "x=y"}, login(is_staff=False)):
        response = staff_post(web, who, "/link/tienda_lima/pairing-code", {"phone": "51987654321"})
        assert response.status_code == 403 and response.json()["error"] == "forbidden"
    assert not SessionCommand.objects.exists()


@pytest.mark.parametrize(
    "path, phone, status, code",
    [
        ("/link/tienda_lima/pairing-code", "123", 400, "invalid_phone"),
        ("/link/tienda_lima/pairing-code", "", 400, "invalid_phone"),
        ("/link/tienda_piura/pairing-code", "51987654321", 404, "unknown_session"),
    ],
)
def test_pairing_code_refuses_bad_input_like_the_api(web, staff, path, phone, status, code):
    response = staff_post(web, staff, path, {"phone": phone})
    assert response.status_code == status
    body = response.json()
    assert body["success"] is False and body["error"] == code and body["message"]
    assert not SessionCommand.objects.exists()  # nothing was asked of the worker


def test_pairing_code_asks_the_worker_and_says_when_none_answers(web, staff, settings):
    settings.SESSION_COMMAND_WAIT_SECONDS = 0.3
    response = staff_post(web, staff, "/link/tienda_lima/pairing-code", {"phone": "+51 987-654-321"})
    assert response.status_code == 504 and response.json()["error"] == "worker_unavailable"
    command = SessionCommand.objects.get()
    assert (command.session_id, command.kind, command.payload) == ("tienda_lima", "pairing_code", {"phone": "51987654321"})
