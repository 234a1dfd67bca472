"""WEBHOOK_SECRET: a secret that is not a Standard Webhooks one stops the start with a message naming it
(and never repeating it); `make run`'s scripts/ensure_env.py writes one into .env once webhook URLs are set."""

import base64
import json
import os
import shutil
import subprocess
import sys

import pytest
from standardwebhooks import Webhook

from tests.processes import ROOT, service_env
from tests.webhooks.receiver import NEW_SECRET, SECRET
from webhooks.signing import keys, signed_headers


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


# -- scripts/ensure_env.py, as `make run` runs it (with the system's Python: no site-packages) ---------------


def ensure_env(folder, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("WEBHOOK_", "SESSIONS_CONFIG"))}
    return subprocess.run([sys.executable, "-S", str(ROOT / "scripts" / "ensure_env.py"), str(folder / ".env")],
                          cwd=folder, env={**clean, **env}, capture_output=True, text=True, timeout=30, check=True)


def env_values(path) -> dict:
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def written_secret_works(secret: str) -> None:
    assert len(keys(secret)) == 1 and len(keys(secret)[0]) == 32
    body = b'{"event":"session.status"}'
    assert Webhook(secret).verify(body, signed_headers(secret, body, "session.status", "e1"))


def test_make_run_writes_a_secret_when_a_session_has_webhook_urls(tmp_path):
    shutil.copy(ROOT / ".env.example", tmp_path / ".env.example")
    (tmp_path / "sessions.config.json").write_text(json.dumps([
        {"sessionId": "tienda_lima", "description": "Ventas"},
        {"sessionId": "soporte", "description": "Soporte", "webhookUrls": ["https://ventas.example.pe/hooks"]},
    ]))
    first = ensure_env(tmp_path)
    path = tmp_path / ".env"
    values = env_values(path)
    assert f"Created {path} with a new random API_STATIC_TOKEN" in first.stdout
    assert f"WEBHOOK_SECRET was not: wrote a new one to {path}" in first.stdout
    assert values["WEBHOOK_SECRET"].startswith("whsec_") and values["API_STATIC_TOKEN"]
    assert values["WEBHOOK_SECRET"].removeprefix("whsec_") not in first.stdout and values["API_STATIC_TOKEN"] not in first.stdout
    assert path.stat().st_mode & 0o777 == 0o600
    written_secret_works(values["WEBHOOK_SECRET"])
    text = path.read_text()
    again = ensure_env(tmp_path)  # every `make run`: nothing more to add
    assert again.stdout == "" and path.read_text() == text


def test_make_run_fills_an_empty_secret_line_next_to_webhook_urls_in_env(tmp_path):
    path = tmp_path / ".env"
    path.write_text("API_STATIC_TOKEN=ya-habia-un-token-0123456789\n"
                    "WEBHOOK_URLS=https://ventas.example.pe/hooks\nWEBHOOK_SECRET=\nPORT=3000\n")
    result = ensure_env(tmp_path)
    lines = path.read_text().splitlines()
    assert "API_STATIC_TOKEN" not in result.stdout and "wrote a new one" in result.stdout
    assert lines[0] == "API_STATIC_TOKEN=ya-habia-un-token-0123456789" and lines[3] == "PORT=3000"
    assert lines[2].startswith("WEBHOOK_SECRET=whsec_") and sum(line.startswith("WEBHOOK_SECRET") for line in lines) == 1
    written_secret_works(lines[2].split("=", 1)[1])


def test_make_run_writes_no_secret_when_the_environment_has_one_or_there_are_no_urls(tmp_path):
    path = tmp_path / ".env"
    path.write_text("API_STATIC_TOKEN=ya-habia-un-token-0123456789\n")
    assert ensure_env(tmp_path, WEBHOOK_URLS="https://ventas.example.pe/hooks", WEBHOOK_SECRET=SECRET).stdout == ""
    assert ensure_env(tmp_path).stdout == ""  # no URLs: nothing to sign
    assert path.read_text() == "API_STATIC_TOKEN=ya-habia-un-token-0123456789\n"
    # URLs from the environment, no secret anywhere: one is written.
    assert "wrote a new one" in ensure_env(tmp_path, WEBHOOK_URLS="https://ventas.example.pe/hooks").stdout
    written_secret_works(env_values(path)["WEBHOOK_SECRET"])
