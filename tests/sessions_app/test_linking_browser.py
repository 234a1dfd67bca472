"""The linking page in headless Chromium against the real service process: a staff user logs in, presses
the admin's "Vincular" button, sees the QR image, the phone scans it (simulator), and the page says the
number is connected. Screenshots go to artifacts/."""

import re
import time
from pathlib import Path

import httpx
import pytest
from django.contrib.auth import get_user_model

from tests.conftest import need
from tests.processes import ROOT, serve

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.browser]

ARTIFACTS = ROOT / "artifacts"
WAIT_MS = 30_000
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run",
]


@pytest.fixture
def browser_page(chromium_path, tmp_path):
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        need(False, "Python playwright")
    expect.set_options(timeout=WAIT_MS)  # its own default is 5 s, whatever the page's is
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),  # a fresh profile
            executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS, locale="es-PE",
        )
        try:
            yield context.new_page()
        finally:
            context.close()


@pytest.fixture
def server(configured, tmp_path):
    with serve(tmp_path, SESSION_POLL_SECONDS="0.1") as process:
        yield process


@pytest.fixture
def admin_user(configured):
    get_user_model().objects.create_superuser("admin", "admin@tienda.pe", "clave-segura-123")
    return "admin", "clave-segura-123"


def shot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path


QR_SHOWN = """() => { const img = document.getElementById('link-qr');
                      return !!img && !img.closest('[hidden]') && img.complete && img.naturalWidth > 100; }"""


def log_in(page, server, user) -> None:
    page.goto(f"{server.url}/admin/sessions_app/whatsappsession/")
    page.fill("#id_username", user[0])
    page.fill("#id_password", user[1])
    page.click("input[type=submit]")


# browser_page comes last: once playwright runs, this thread has an event loop and the ORM refuses it.
def test_staff_links_a_number_from_the_admin_in_a_browser(server, admin_user, token, browser_page):
    from playwright.sync_api import expect

    page = browser_page
    page.set_default_timeout(WAIT_MS)
    log_in(page, server, admin_user)
    row = page.locator("#result_list tr", has_text="tienda_lima")
    row.get_by_role("link", name="Vincular").click()
    page.wait_for_url(f"{server.url}/link/tienda_lima/")

    page.wait_for_function(QR_SHOWN)
    expect(page.locator("#link-status")).to_contain_text("Escanee el código QR")
    assert page.get_attribute("#link-qr", "src").startswith("/link/tienda_lima/qr.svg")

    # The alternative to the QR: a pairing code for the phone number, from the session's own process.
    page.fill("#link-phone", "+51 987 654 321")
    page.click("#link-pairing-form button[type=submit]")
    expect(page.locator("#link-pairing-code")).to_have_text(re.compile(r"^[A-Z0-9]{4}-[A-Z0-9]{4}$"))
    shot(page, "linking_page_qr.png")

    response = httpx.post(
        f"{server.url}/api/simulator/sessions/tienda_lima/scan",
        json={"phone": "51900000001"}, headers={"Authorization": f"Bearer {token}"}, timeout=30,
    )
    assert response.status_code in (200, 202), response.text

    expect(page.locator("#link-status")).to_contain_text("conectado")
    assert not page.evaluate(QR_SHOWN)  # the QR is gone once linked
    expect(page.locator("#link-retry")).to_be_hidden()
    assert shot(page, "linking_page_connected.png").stat().st_size > 0


@pytest.fixture
def quick_qr_server(configured, tmp_path):
    timings = {"SIMULATOR_QR_FIRST_SECONDS": "1.5", "SIMULATOR_QR_NEXT_SECONDS": "0.5", "SIMULATOR_QR_COUNT": "2"}
    with serve(tmp_path, SESSION_POLL_SECONDS="0.1", **timings) as process:
        yield process


def test_the_page_says_when_the_qr_timed_out_and_retries(quick_qr_server, admin_user, browser_page):
    from playwright.sync_api import expect

    page = browser_page
    page.set_default_timeout(WAIT_MS)
    log_in(page, quick_qr_server, admin_user)
    page.goto(f"{quick_qr_server.url}/link/tienda_nueva/")  # a new number, by its own URL

    expect(page.locator("#link-status")).to_contain_text("El código QR expiró sin ser escaneado.")
    expect(page.locator("#link-retry")).to_be_visible()
    assert not page.evaluate(QR_SHOWN)
    shot(page, "linking_page_qr_timeout.png")

    page.click("#link-retry")
    page.wait_for_function(QR_SHOWN)
    expect(page.locator("#link-retry")).to_be_hidden()


@pytest.fixture
def offline_server(service_files, transactional_db, tmp_path):
    """The real backend on a machine that cannot reach WhatsApp: every connect of tienda_lima fails at once
    through a refusing proxy that counts them; the worker alone would try again only after 50-100 s."""
    import json

    from sessions_app.config_file import load_and_mirror
    from tests.whatsapp_proxy import WhatsAppProxy

    service_files.joinpath("sessions.config.json").write_text(
        json.dumps([{"sessionId": "tienda_lima", "description": "Sistema de Ventas de la Sede Lima"}])
    )
    load_and_mirror()
    with WhatsAppProxy() as proxy:
        offline = {
            "WHATSAPP_BACKEND": "neonize", "CREDENTIALS_STORE": "files", "HTTPS_PROXY": proxy.url,
            "SESSION_RESTART_BACKOFF_SECONDS": "120", "SESSION_RESTART_BACKOFF_MAX_SECONDS": "100",
            "LINK_RETRY_MIN_SECONDS": str(RETRY_WINDOW), "SESSION_POLL_SECONDS": "0.1",
        }
        with serve(tmp_path, **offline) as process:
            process.proxy = proxy
            proxy.wait_for("web.whatsapp.com:443", 1, WAIT_MS / 1000)  # the worker's own first attempt
            yield process


RETRY_WINDOW = 1
COUNTDOWN = re.compile(r"^Nuevo intento automático en (\d+) s\. Pulse Reintentar para intentarlo ahora\.$")


def test_offline_the_page_says_why_with_a_countdown_and_reintentar_tries_now(offline_server, admin_user,
                                                                             browser_page):
    from playwright.sync_api import expect

    page, proxy = browser_page, offline_server.proxy
    page.set_default_timeout(WAIT_MS)
    log_in(page, offline_server, admin_user)
    page.goto(f"{offline_server.url}/link/tienda_lima/")

    # Opening the page tried again at once (the worker's backoff had 50 s or more to go) and failed again.
    proxy.wait_for("web.whatsapp.com:443", 2, WAIT_MS / 1000)
    status, cause, retry_in = page.locator("#link-status"), page.locator("#link-error"), page.locator("#link-retry-in")
    expect(status).to_have_text("La sesión está desconectada. No se pudo conectar con WhatsApp.")
    expect(cause).to_have_text(
        "Causa: La conexión con WhatsApp se cortó antes de establecerse (¿un proxy o un cortafuegos la bloquea?). "
        'Detalle técnico: failed to dial whatsapp web websocket: failed to WebSocket dial: failed to send handshake '
        'request: Get "https://web.whatsapp.com/ws/chat": unexpected EOF'
    )
    expect(retry_in).to_have_text(COUNTDOWN)
    first = int(COUNTDOWN.match(retry_in.inner_text()).group(1))
    assert 40 <= first <= 100, first
    expect(page.locator("#link-retry")).to_be_visible()
    assert not page.evaluate(QR_SHOWN)
    page.wait_for_function(  # it counts down
        "(n) => { const m = document.getElementById('link-retry-in').textContent.match(/en (\\d+) s/);"
        " return m && Number(m[1]) < n; }", arg=first)
    shot(page, "linking_page_offline.png")
    print("\nlinking page offline:\n" + page.locator("#link").inner_text())

    time.sleep(RETRY_WINDOW + 0.5)  # a person reads the page longer than the socket storm limit
    page.click("#link-retry")
    proxy.wait_for("web.whatsapp.com:443", 3, WAIT_MS / 1000)  # "Reintentar": a new attempt now
    expect(cause).to_contain_text("unexpected EOF")
    expect(retry_in).to_have_text(COUNTDOWN)
    expect(page.locator("#link-retry")).to_be_visible()
    shot(page, "linking_page_offline_retried.png")
    assert proxy.targets.count("web.whatsapp.com:443") == 3, proxy.targets
