"""What the deliverer (`manage.py deliver_webhooks`, as the worker runs it) does with each kind of
answer, and how its requests are signed (checked with the official `standardwebhooks` library); events
written through the real session-state path."""

import time

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from sessions_app.models import SessionStatus
from sessions_app.session_state import Change, apply_change
from tests.processes import ServiceProcess, service_env, wait_for
from tests.webhooks.receiver import NEW_SECRET, SECRET, WRONG_SECRET, Receiver
from webhooks.models import DeliveryStatus, WebhookDelivery
from webhooks.signing import keys, signature, signed_headers


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_4xx_is_final_but_408_429_and_5xx_are_retried(configured, settings, tmp_path):
    answers = {"400": lambda n: 400, "410": lambda n: 410, "408": lambda n: 408 if n == 0 else 200,
               "429": lambda n: 429 if n == 0 else 204, "500": lambda n: 500 if n < 2 else 200}
    receivers = {code: Receiver(answer=answer, secret=SECRET).__enter__() for code, answer in answers.items()}
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


def test_the_specifications_example_signature():
    # The example of the Standard Webhooks specification (and of its libraries' tests).
    key, = keys("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    assert signature(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}') == \
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_official_library_verifies_a_signature_over_id_timestamp_and_body():
    body = '{"event":"message.status","errors":[{"title":"El número no tiene WhatsApp."}]}'.encode()
    headers = signed_headers(SECRET, body, "message.status", "0b6f2c4e-1d2a-4c3b-9e8f-7a6b5c4d3e2f")
    assert set(headers) >= {"webhook-id", "webhook-timestamp", "webhook-signature", "X-Webhook-Event"}
    assert not any(h.lower().startswith("x-webhook-") and h != "X-Webhook-Event" for h in headers)
    assert Webhook(SECRET).verify(body, headers)["event"] == "message.status"
    tampered = [
        (body + b" ", headers),  # body changed
        (body, {**headers, "webhook-id": "another-event"}),  # id changed
        (body, {**headers, "webhook-timestamp": str(int(headers["webhook-timestamp"]) + 1)}),  # timestamp changed
    ]
    for data, sent in tampered:
        with pytest.raises(WebhookVerificationError, match="No matching signature"):
            Webhook(SECRET).verify(data, sent)
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(WRONG_SECRET).verify(body, headers)
    late = signed_headers(SECRET, body, "message.status", "e1", now=time.time() - 301)
    with pytest.raises(WebhookVerificationError, match="too old"):  # a replay
        Webhook(SECRET).verify(body, late)


def test_during_a_rotation_each_request_verifies_with_either_secret():
    body = b'{"event":"session.status"}'
    headers = signed_headers(f"{SECRET} {NEW_SECRET}", body, "session.status", "e2")
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert headers["webhook-signature"].split(" ")[0] == signed_headers(SECRET, body, "session.status", "e2",
                                                                      now=int(headers["webhook-timestamp"]))["webhook-signature"]
    for secret in (SECRET, NEW_SECRET):
        Webhook(secret).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(WRONG_SECRET).verify(body, headers)
