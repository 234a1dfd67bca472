"""/api/docs/ in headless Chromium against the real service process: a staff user logs in and sees Swagger
UI list the API's operations, with every request of the page answered by the service itself (nothing from
a CDN, so the page works on a machine without internet). Screenshot in artifacts/."""

from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model

from tests.conftest import need
from tests.processes import ROOT, serve
from tests.sessions_app.test_linking_browser import CHROMIUM_ARGS, WAIT_MS

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.browser]

ARTIFACTS = ROOT / "artifacts"


@pytest.fixture
def server(configured, tmp_path):
    with serve(tmp_path, "--no-worker") as process:
        yield process


@pytest.fixture
def staff_user(configured):
    get_user_model().objects.create_superuser("admin", "admin@tienda.pe", "clave-segura-123")
    return "admin", "clave-segura-123"


def test_swagger_ui_renders_the_operations_from_the_service_alone(server, staff_user, chromium_path, tmp_path):
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        need(False, "Python playwright")
    expect.set_options(timeout=WAIT_MS)
    service = urlsplit(server.url)
    requested: list[str] = []
    failed: list[str] = []
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS, locale="es-PE",
        )
        try:
            page = context.new_page()
            page.set_default_timeout(WAIT_MS)
            page.on("request", lambda request: requested.append(request.url))
            page.on("requestfailed", lambda request: failed.append(f"{request.url}: {request.failure}"))

            page.goto(f"{server.url}/admin/login/?next=/api/docs/")
            page.fill("#id_username", staff_user[0])
            page.fill("#id_password", staff_user[1])
            page.click("input[type=submit]")
            page.wait_for_url(f"{server.url}/api/docs/")

            send_pdf = page.locator(".opblock-summary-path", has_text="/api/send-pdf")
            expect(send_pdf).to_be_visible()
            expect(page.locator(".opblock-summary-path", has_text="/api/sessions/{session_id}/qr")).to_be_visible()
            expect(page.locator(".info .title")).to_contain_text("WhatsApp PDF service")
            send_pdf.click()  # the operation opens with its request body, read from the schema
            expect(page.locator(".opblock.is-open")).to_contain_text("pdfBase64")
            page.wait_for_load_state("networkidle")
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "api_docs_swagger_ui.png"), full_page=True)
        finally:
            context.close()

    assert any("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in url for url in requested)
    assert any(urlsplit(url).path == "/api/schema/" for url in requested)
    elsewhere = [url for url in requested
                 if not url.startswith("data:") and urlsplit(url)[:2] != (service.scheme, service.netloc)]
    assert elsewhere == [], f"the page fetched from other hosts: {elsewhere}"
    assert failed == [], f"requests of the page failed: {failed}"
