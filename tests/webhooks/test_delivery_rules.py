"""What the deliverer (`manage.py deliver_webhooks`, as the worker runs it) does with each kind of
answer, and how a signature is checked; events written through the real session-state path."""

import time

import pytest

from sessions_app.models import SessionStatus
from sessions_app.session_state import Change, apply_change
from tests.processes import ServiceProcess, service_env, wait_for
from tests.webhooks.receiver import Receiver
from webhooks.models import DeliveryStatus, WebhookDelivery
from webhooks.signing import signature, verify

SECRET = "whsec-test-0123456789abcdef"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_4xx_is_final_but_408_429_and_5xx_are_retried(configured, settings, tmp_path):
    answers = {"400": lambda n: 400, "410": lambda n: 410, "408": lambda n: 408 if n == 0 else 200,
               "429": lambda n: 429 if n == 0 else 204, "500": lambda n: 500 if n < 2 else 200}
    receivers = {code: Receiver(answer=answer).__enter__() for code, answer in answers.items()}
    try:
        settings.WEBHOOK_SECRET = SECRET
        settings.WEBHOOK_URLS = [r.url for r in receivers.values()]
        apply_change("tienda_lima", Change(status=SessionStatus.CONNECTED, phone="51900000001"))
        env = service_env(WEBHOOK_SECRET=SECRET, WEBHOOK_URLS=",".join(settings.WEBHOOK_URLS),
                          WEBHOOK_RETRY_BASE_SECONDS="0.2", WEBHOOK_POLL_SECONDS="0.3")
        with ServiceProcess("deliver_webhooks", env=env, log_path=tmp_path / "deliver.log").start():
            wait_for(lambda: not WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING).exists(), 30)
            time.sleep(1.0)
        rows = {r.url: r for r in WebhookDelivery.objects.all()}
        got = {code: len(r.received()) for code, r in receivers.items()}
    finally:
        for r in receivers.values():
            r.__exit__()
    outcome = {code: (rows[r.url].status, rows[r.url].attempts, rows[r.url].last_status_code) for code, r in receivers.items()}
    assert outcome == {
        "400": (DeliveryStatus.DEAD, 1, 400),
        "410": (DeliveryStatus.DEAD, 1, 410),
        "408": (DeliveryStatus.DELIVERED, 2, 200),
        "429": (DeliveryStatus.DELIVERED, 2, 204),
        "500": (DeliveryStatus.DELIVERED, 3, 200),
    }
    assert got == {"400": 1, "410": 1, "408": 2, "429": 2, "500": 3}


@pytest.mark.django_db
def test_without_a_secret_nothing_is_written_and_the_service_refuses_to_start(configured, settings):
    from sessions_app.startup import StartupError, prepare_service

    settings.WEBHOOK_URLS = ["http://127.0.0.1:9/hook"]
    settings.WEBHOOK_SECRET = ""
    apply_change("tienda_lima", Change(status=SessionStatus.CONNECTED))
    assert not WebhookDelivery.objects.exists()
    with pytest.raises(StartupError, match="WEBHOOK_SECRET"):
        prepare_service()
    settings.WEBHOOK_SECRET = SECRET
    prepare_service()


def test_a_signature_checks_body_timestamp_and_secret():
    body = b'{"event":"message.status"}'
    now = 1_700_000_000
    good = signature(SECRET, now, body)
    assert good.startswith("sha256=") and len(good) == 7 + 64
    assert verify(SECRET, body, str(now), good, now=now + 10)
    assert not verify(SECRET, body + b" ", str(now), good, now=now)  # body changed
    assert not verify(SECRET, body, str(now + 1), good, now=now)  # timestamp changed
    assert not verify("another-secret-0123456789", body, str(now), good, now=now)
    assert not verify(SECRET, body, str(now), good, now=now + 301)  # a replay, too late
