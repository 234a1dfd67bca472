"""The Django admin: sessions and messages are listed and filtered; failed messages can be retried and
queued ones cancelled."""

import pytest
from django.contrib.auth.models import User

from messaging.models import MessageStatus, OutgoingMessage

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def staff_client(client):
    User.objects.create_superuser("admin", "admin@example.com", "clave-segura-123")
    client.login(username="admin", password="clave-segura-123")
    return client


def make_message(status, **fields) -> OutgoingMessage:
    return OutgoingMessage.objects.create(
        session_id="tienda_lima", to="51987654321", file_name="F.pdf", sha256="0" * 64, status=status, **fields
    )


def test_retry_action_queues_failed_messages_again(configured, staff_client):
    failed = make_message(MessageStatus.FAILED, attempts=5, error="timeout")
    sent = make_message(MessageStatus.SENT, attempts=1)
    response = staff_client.post(
        "/admin/messaging/outgoingmessage/",
        {"action": "retry_failed", "_selected_action": [failed.pk, sent.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert "1 mensaje vuelve a la cola." in response.content.decode()
    failed.refresh_from_db()
    sent.refresh_from_db()
    assert (failed.status, failed.attempts, failed.error) == (MessageStatus.QUEUED, 0, "")
    assert sent.status == MessageStatus.SENT


def test_cancel_action_takes_queued_messages_out_and_leaves_the_others(configured, staff_client, client, auth):
    queued = make_message(MessageStatus.QUEUED)
    sending = make_message(MessageStatus.SENDING, attempts=1)
    sent = make_message(MessageStatus.SENT, attempts=1)
    response = staff_client.post(
        "/admin/messaging/outgoingmessage/",
        {"action": "cancel_queued", "_selected_action": [queued.pk, sending.pk, sent.pk]},
        follow=True,
    )
    page = response.content.decode()
    assert "1 mensaje cancelado." in page and "no se pueden cancelar" in page
    for row in (queued, sending, sent):
        row.refresh_from_db()
    assert (queued.status, queued.error) == (MessageStatus.FAILED, "cancelled")
    assert (sending.status, sent.status) == (MessageStatus.SENDING, MessageStatus.SENT)
    # What a sales system reads back.
    answer = client.get(f"/api/messages/{queued.message_id}", headers=auth).json()
    assert (answer["status"], answer["error"]) == ("failed", "cancelled")


def test_message_list_filters_by_status_and_session(configured, staff_client):
    make_message(MessageStatus.FAILED, error="no_such_thing")
    make_message(MessageStatus.SENT, wa_message_id="3EB0AAAA")
    page = staff_client.get("/admin/messaging/outgoingmessage/?status__exact=failed").content.decode()
    assert "no_such_thing" in page and "3EB0AAAA" not in page
    page = staff_client.get("/admin/messaging/outgoingmessage/?session__session_id__exact=tienda_lima").content.decode()
    assert "3EB0AAAA" in page


def test_session_list_in_admin(configured, staff_client):
    page = staff_client.get("/admin/sessions_app/whatsappsession/").content.decode()
    assert "tienda_lima" in page and "tienda_cusco" in page
