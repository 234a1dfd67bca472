"""WEBHOOK_SECRET: a secret that is not a Standard Webhooks one stops the start with a message naming it
(and never repeating it)."""

import base64
import subprocess
import sys

import pytest

from tests.processes import ROOT, service_env
from tests.webhooks.receiver import NEW_SECRET, SECRET


def b64(n: int) -> str:
    return base64.b64encode(bytes(range(n))).decode()


BAD = [
    ("secreto-de-la-tienda-0123456789", "it does not start with whsec_"),  # the old kind of secret
    ("whsec_" + b64(16), "it decodes to 16 bytes, not 24 to 64"),
    ("whsec_" + b64(65), "it decodes to 65 bytes, not 24 to 64"),
    ("whsec_", "it decodes to 0 bytes, not 24 to 64"),
    ("whsec_esto*no-es_base64!!", "it is not whsec_ followed by base64"),
    ("whsec_" + b64(32).rstrip("="), "it is not whsec_ followed by base64"),  # padding left off
    (f"{SECRET} secreto-viejo-0123456789abcdef", "the second secret does not start with whsec_"),
    (f"whsec_{b64(8)} {NEW_SECRET}", "the first secret decodes to 8 bytes"),
    (f"{SECRET} {NEW_SECRET} {SECRET}", "it holds 3 secrets: use one, or two separated by a space"),
]


@pytest.mark.parametrize("secret, says", BAD)
@pytest.mark.parametrize("with_urls", [True, False], ids=["urls", "no-urls"])
def test_a_secret_that_is_not_a_standard_webhooks_one_stops_the_start(configured, settings, secret, says, with_urls):
    from sessions_app.startup import StartupError, prepare_service

    settings.WEBHOOK_URLS = ["https://ventas.example.pe/hooks/whatsapp"] if with_urls else []
    settings.WEBHOOK_SECRET = secret
    with pytest.raises(StartupError) as refused:
        prepare_service()
    message = str(refused.value)
    assert message.startswith(f"WEBHOOK_SECRET is not a Standard Webhooks secret: {says}"), message
    assert all(part.removeprefix("whsec_") not in message for part in secret.split() if part != "whsec_")


@pytest.mark.parametrize("secret", [SECRET, f"{SECRET} {NEW_SECRET}", "whsec_" + b64(24), "whsec_" + b64(64)])
def test_one_secret_or_two_while_rotating_are_accepted(configured, settings, secret):
    from sessions_app.startup import prepare_service

    settings.WEBHOOK_URLS = ["https://ventas.example.pe/hooks/whatsapp"]
    settings.WEBHOOK_SECRET = secret
    prepare_service()


@pytest.mark.parametrize("command", [["serve", "--port", "1"], ["deliver_webhooks"]])
def test_the_service_process_refuses_a_bad_secret_and_does_not_repeat_it(configured, command):
    secret = "whsec_" + b64(16)
    result = subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, capture_output=True, text=True,
                            timeout=60, env=service_env(WEBHOOK_SECRET=secret, WEBHOOK_URLS="http://127.0.0.1:9/hook"))
    assert result.returncode != 0
    assert "Cannot start: WEBHOOK_SECRET is not a Standard Webhooks secret: it decodes to 16 bytes" in result.stderr
    assert secret.removeprefix("whsec_") not in result.stdout + result.stderr
