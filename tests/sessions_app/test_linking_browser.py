"""The linking page in headless Chromium against the real service process: a staff user logs in, presses
the admin's "Vincular" button, sees the QR image, the phone scans it (simulator), and the page says the
number is connected. Screenshots go to artifacts/."""

import re
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
