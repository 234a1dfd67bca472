"""Status webhooks through the real service process (`manage.py serve` on the simulator) to a real
HTTP receiver that verifies every request with the official `standardwebhooks` library: what a sales
system's endpoint sees, before, during and after a rotation of the secret."""

import json
import time

import pytest

from tests.messaging.test_dispatcher import FAST, Api
from tests.processes import free_port, serve
from tests.webhooks.receiver import NEW_SECRET, SECRET, WRONG_SECRET, Receiver
from webhooks.models import DeliveryStatus, WebhookDelivery

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

WEBHOOKS = {"WEBHOOK_SECRET": SECRET, "WEBHOOK_RETRY_BASE_SECONDS": "0.2", "WEBHOOK_POLL_SECONDS": "0.5"}


def statuses(events: list[dict]) -> list[tuple[str, str]]:
    return [(e["statuses"][0]["messageId"], e["statuses"][0]["status"]) for e in events if e["event"] == "message.status"]


def test_receiver_gets_session_and_message_events_in_order_with_valid_signatures(configured, auth, tmp_path):
    with Receiver(secret=SECRET, also_try=[WRONG_SECRET]) as receiver, serve(tmp_path, **FAST, **WEBHOOKS, WEBHOOK_URLS=receiver.url) as server:
        api = Api(server, auth)
        api.link("tienda_lima")
        ids = [api.send(caption=f"n{n}") for n in range(3)]
        unregistered = api.send(to="51900000000")
        api.wait(lambda: all(api.message(i)["status"] == "delivered" for i in ids), timeout=60)
        api.wait(lambda: len(receiver.received()) >= 1 + 3 * 2 + 1, timeout=30)
        assert api.client.post("/api/simulator/sessions/tienda_lima/drop").status_code == 202
        api.wait(lambda: len(receiver.received()) >= 1 + 3 * 2 + 1 + 2, timeout=30)
        time.sleep(1.0)
        requests = receiver.received()
        messages = {i: api.message(i) for i in ids}
        written = list(WebhookDelivery.objects.filter(url=receiver.url).order_by("id").values_list("event_id", flat=True))

    events = [r.json for r in requests]
    assert [r.verdicts[SECRET] for r in requests] == [None] * len(requests)  # what the library objected to
    assert not any(r.signed_by(WRONG_SECRET) for r in requests)
    assert all(len(r.signatures) == 1 and r.signatures[0].startswith("v1,") for r in requests)
    for r in requests:
        assert r.event_id == r.json["eventId"] and r.headers["x-webhook-event"] == r.json["event"]
        assert abs(int(r.headers["webhook-timestamp"]) - r.received_at) < 2
    key = SECRET.removeprefix("whsec_")
    assert not any(key in r.body.decode() or key in json.dumps(r.headers) for r in requests)
    # Delivered in the order written, each once.
    assert [r.event_id for r in requests] == [str(e) for e in written[: len(requests)]]
    assert len({r.event_id for r in requests}) == len(requests)

    sessions = [(e["sessionId"], e["session"]["status"], e["session"]["reason"]) for e in events if e["event"] == "session.status"]
    assert sessions == [
        ("tienda_lima", "connected", None),
        ("tienda_lima", "disconnected", "connection_lost"),
        ("tienda_lima", "connected", None),
    ]
    assert events[0]["event"] == "session.status"
    seen = statuses(events)
    for i in ids:
        assert [s for m, s in seen if m == i] == ["sent", "delivered"]
    assert [m for m, s in seen if s == "sent"] == ids  # in the order they were sent
    assert [s for m, s in seen if m == unregistered] == ["failed"]

    by_status = {(e["statuses"][0]["messageId"], e["statuses"][0]["status"]): e for e in events if e["event"] == "message.status"}
    delivered = by_status[(ids[0], "delivered")]
    item = delivered["statuses"][0]
    assert delivered["object"] == "whatsapp_service" and delivered["sessionId"] == "tienda_lima"
    assert item["id"] == messages[ids[0]]["waMessageId"] and item["recipient_id"] == "51987654321"
    assert item["type"] == "document" and item["timestamp"].isdigit() and "errors" not in item
    failed = by_status[(unregistered, "failed")]["statuses"][0]
    assert failed["id"] is None and failed["recipient_id"] == "51900000000"
    assert failed["errors"][0]["code"] == "not_on_whatsapp" and failed["errors"][0]["title"]


def test_receiver_failing_twice_then_succeeding_gets_the_event_once_more_and_no_more(configured, auth, tmp_path):
    with Receiver(answer=lambda n: 503 if n < 2 else 200, secret=SECRET) as receiver, \
            serve(tmp_path, **FAST, **WEBHOOKS, WEBHOOK_URLS=receiver.url) as server:
        api = Api(server, auth)
        api.link("tienda_lima")
        api.wait(lambda: len(receiver.received()) >= 3, timeout=30)
        time.sleep(3.0)  # the retry base is 0.2 s: a fourth attempt would have come by now
        requests = receiver.received()
        row = WebhookDelivery.objects.filter(url=receiver.url).order_by("id").first()

    assert len(requests) == 3
    assert {r.event_id for r in requests} == {str(row.event_id)}
    assert all(r.body == requests[0].body and r.signed_by(SECRET) for r in requests)
    # Each attempt is signed anew, with its own time: the same id, a timestamp of when it was sent.
    assert all(abs(int(r.headers["webhook-timestamp"]) - r.received_at) < 2 for r in requests)
    assert requests[0].json["session"]["status"] == "connected"
    assert (row.status, row.attempts, row.last_status_code) == (DeliveryStatus.DELIVERED, 3, 200)
    gaps = [b.received_at - a.received_at for a, b in zip(requests, requests[1:])]
    assert gaps[0] >= 0.09 and gaps[1] >= 0.19  # backed off: at least half of 0.2 s, then of 0.4 s


def test_rotating_the_secret_a_receiver_with_either_one_verifies_every_attempt(configured, auth, tmp_path):
    """While WEBHOOK_SECRET holds the old and the new secret, a receiver still on the old one and a receiver
    already on the new one both verify every attempt (a retry too); once the old one is dropped, only the
    receiver on the new one does, and the other answers 401."""
    pending = WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING)
    with Receiver(secret=SECRET, answer=lambda n: 503 if n == 0 else 200, also_try=[WRONG_SECRET]) as old, \
            Receiver(secret=NEW_SECRET, also_try=[WRONG_SECRET]) as new:
        urls = f"{old.url},{new.url}"
        with serve(tmp_path, **FAST, **{**WEBHOOKS, "WEBHOOK_SECRET": f"{SECRET} {NEW_SECRET}", "WEBHOOK_URLS": urls}) as server:
            api = Api(server, auth)
            api.link("tienda_lima")
            ids = [api.send(caption=f"n{n}") for n in range(2)]
            api.wait(lambda: len(new.received()) >= 1 + 2 * 2 and len(old.received()) >= 1 + 1 + 2 * 2, timeout=60)
            api.wait(lambda: not pending.exists(), timeout=30)
            rows = list(WebhookDelivery.objects.values_list("url", "status"))
        rotated_at = time.time()
        with serve(tmp_path, **FAST, **{**WEBHOOKS, "WEBHOOK_SECRET": NEW_SECRET, "WEBHOOK_URLS": urls}) as server:
            api = Api(server, auth)
            api.link("tienda_lima")
            after_id = api.send(caption="after")
            api.wait(lambda: api.message(after_id)["status"] == "delivered", timeout=60)
            api.wait(lambda: not pending.exists(), timeout=30)
        during = {name: [r for r in receiver.received() if r.received_at < rotated_at]
                  for name, receiver in (("old", old), ("new", new))}
        after = {name: [r for r in receiver.received() if r.received_at >= rotated_at]
                 for name, receiver in (("old", old), ("new", new))}

    for name, secret in (("old", SECRET), ("new", NEW_SECRET)):
        requests = during[name]
        assert all(len(r.signatures) == 2 for r in requests)
        assert [r.verdicts[secret] for r in requests] == [None] * len(requests), name
        assert not any(r.signed_by(WRONG_SECRET) for r in requests)
        seen = statuses([r.json for r in requests])
        assert all([s for m, s in seen if m == i] == ["sent", "delivered"] for i in ids), (name, seen)
    # The old receiver refused its first attempt (503): the retry came with the same id and verified too.
    assert during["old"][0].event_id == during["old"][1].event_id
    assert {r.event_id for r in during["old"]} == {r.event_id for r in during["new"]}
    assert {status for _, status in rows} == {DeliveryStatus.DELIVERED}
    # After the rotation: one signature, by the new secret; the receiver still on the old one refuses them.
    assert ("sent", "delivered") == tuple(s for m, s in statuses([r.json for r in after["new"]]) if m == after_id)
    assert all(len(r.signatures) == 1 and r.verdicts[NEW_SECRET] is None for r in after["new"])
    assert after["old"] and not any(r.signed_by(SECRET) for r in after["old"])
    dead = WebhookDelivery.objects.filter(url=old.url, status=DeliveryStatus.DEAD)
    assert {r.last_status_code for r in dead} == {401} and dead.count() == len(after["old"])


def _send_and_time(api: Api, n: int) -> float:
    """Seconds from the first request to the last of n messages sent."""
    started = time.monotonic()
    ids = [api.send(caption=f"n{k}") for k in range(n)]
    api.wait(lambda: api.message(ids[-1])["status"] in ("sent", "delivered"), timeout=120, every=0.05)
    elapsed = time.monotonic() - started
    assert set(api.statuses(ids)) <= {"sent", "delivered"}
    return elapsed


def test_receiver_down_for_the_whole_window_ends_dead_without_slowing_sending(
    configured, auth, tmp_path, admin_client, capsys
):
    n = 150
    with serve(tmp_path, **FAST) as server:
        api = Api(server, auth)
        api.link("tienda_lima")
        baseline = _send_and_time(api, n)

    port = free_port()  # nothing listens there
    down = f"http://127.0.0.1:{port}/hooks"
    with serve(tmp_path, **FAST, **WEBHOOKS, WEBHOOK_URLS=down, WEBHOOK_RETRY_WINDOW_SECONDS="3") as server:
        api = Api(server, auth)
        api.link("tienda_lima")
        with_dead_receiver = _send_and_time(api, n)
        api.wait(lambda: not WebhookDelivery.objects.filter(url=down, status=DeliveryStatus.PENDING).exists(), timeout=60)
        rows = list(WebhookDelivery.objects.filter(url=down))
        # It comes back; the admin redelivers the dead letters.
        with Receiver(port=port, secret=SECRET) as receiver:
            response = admin_client.post(
                "/admin/webhooks/webhookdelivery/",
                {"action": "redeliver_selected", "_selected_action": [r.pk for r in rows]},
            )
            assert response.status_code == 302
            api.wait(lambda: len(receiver.received()) >= len(rows), timeout=120)  # the deliverer runs niced
            time.sleep(1.0)
            redelivered = receiver.received()

    with capsys.disabled():
        print(f"\n{n} PDFs: {n / baseline:.1f}/s without webhooks, {n / with_dead_receiver:.1f}/s with the receiver down")
    assert len(rows) >= 1 + 2 * n - 5  # connected, and sent + delivered of each (receipts may still come)
    assert {r.status for r in rows} == {DeliveryStatus.DEAD}
    # The receiver was tried again with backoff, its oldest event each time; every event's window closed.
    # (How many tries fit in the 3 s window depends on the machine's load: the deliverer runs niced.)
    assert all(r.last_status_code is None and r.last_error for r in rows)
    assert max(r.attempts for r in rows) >= 2
    assert with_dead_receiver < baseline * 1.5 + 2.0
    assert sorted(r.event_id for r in redelivered) == sorted(str(r.event_id) for r in rows)
    assert all(r.signed_by(SECRET) for r in redelivered)
