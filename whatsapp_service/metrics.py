"""GET /metrics for Prometheus, read from the database at scrape time.

Web and worker may be separate processes (`serve --no-worker` + `runworker`, several web processes),
so nothing here is a counter of this process: queue, statuses and latency come from the queue's rows,
and reconnects and process restarts are counted by the worker on the session rows. Any web process
answers the same. Protected by METRICS_TOKEN when set, otherwise by API_STATIC_TOKEN.
"""

from datetime import timedelta

from django.conf import settings
from django.db.models import Count, DurationField, ExpressionWrapper, F, Min, Q, Sum
from django.http import HttpResponse
from django.utils import timezone
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeHistogramMetricFamily, GaugeMetricFamily
from prometheus_client.utils import floatToGoString

from messaging.models import MessageStatus, OutgoingMessage
from sessions_app.models import SessionStatus, WhatsAppSession, WorkerHeartbeat

from core.auth import check_authorization
from core.errors import error_json

LATENCY_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


class QueueCollector:
    """Every metric of the service, from one read of the database."""

    def collect(self):
        now = timezone.now()
        sessions = list(
            WhatsAppSession.objects.filter(in_config=True).values_list(
                "session_id", "status", "reconnects", "process_restarts"
            )
        )
        names = [s[0] for s in sessions]
        yield from self._messages(now, names)
        yield from self._latency(now)
        yield from self._sessions(sessions)
        yield from self._workers(now)

    def _messages(self, now, configured: list[str]):
        by_status = GaugeMetricFamily(
            "whatsapp_messages", "Messages in the queue's table by session and status.", labels=["session", "status"]
        )
        for row in OutgoingMessage.objects.values("session_id", "status").annotate(n=Count("id")).order_by():
            by_status.add_metric([row["session_id"], row["status"]], row["n"])
        yield by_status

        depth = GaugeMetricFamily(
            "whatsapp_queue_depth", "Messages waiting to be sent (queued or sending).", labels=["session"]
        )
        oldest = GaugeMetricFamily(
            "whatsapp_queue_oldest_age_seconds", "Age of the oldest message waiting to be sent (0: none).",
            labels=["session"],
        )
        waiting = {
            row["session_id"]: row
            for row in OutgoingMessage.objects.filter(status__in=[MessageStatus.QUEUED, MessageStatus.SENDING])
            .values("session_id")
            .annotate(n=Count("id"), oldest=Min("created_at"))
            .order_by()
        }
        for session_id in sorted(set(configured) | set(waiting)):
            row = waiting.get(session_id)
            depth.add_metric([session_id], row["n"] if row else 0)
            oldest.add_metric([session_id], max(0.0, (now - row["oldest"]).total_seconds()) if row else 0.0)
        yield depth
        yield oldest

    def _latency(self, now):
        window = settings.METRICS_LATENCY_WINDOW_SECONDS
        metric = GaugeHistogramMetricFamily(
            "whatsapp_send_latency_seconds",
            f"From accepted (202) to acknowledged by WhatsApp, for messages sent in the last {window:g} s.",
            labels=["session"],
        )
        recent = OutgoingMessage.objects.filter(sent_at__gte=now - timedelta(seconds=window))
        buckets = {
            f"le_{i}": Count("id", filter=Q(sent_at__lte=F("created_at") + timedelta(seconds=b)))
            for i, b in enumerate(LATENCY_BUCKETS)
        }
        took = ExpressionWrapper(F("sent_at") - F("created_at"), output_field=DurationField())
        for row in recent.values("session_id").annotate(n=Count("id"), total=Sum(took), **buckets).order_by():
            counts = [(floatToGoString(b), row[f"le_{i}"]) for i, b in enumerate(LATENCY_BUCKETS)]
            total = row["total"].total_seconds() if row["total"] is not None else 0.0
            metric.add_metric([row["session_id"]], counts + [("+Inf", row["n"])], total)
        yield metric

    def _sessions(self, sessions):
        status = GaugeMetricFamily(
            "whatsapp_session_status", "1 for the session's current status, 0 for the others.",
            labels=["session", "status"],
        )
        reconnects = CounterMetricFamily(
            "whatsapp_session_reconnects", "Connections re-established after a loss.", labels=["session"]
        )
        restarts = CounterMetricFamily(
            "whatsapp_session_process_restarts",
            "Session processes started again after one crashed, hung or failed to connect.", labels=["session"],
        )
        for session_id, current, reconnect_count, restart_count in sessions:
            for value in SessionStatus.values:
                status.add_metric([session_id, value], 1 if value == current else 0)
            reconnects.add_metric([session_id], reconnect_count)
            restarts.add_metric([session_id], restart_count)
        yield status
        yield reconnects
        yield restarts

    def _workers(self, now):
        beats = list(WorkerHeartbeat.objects.values_list("beat_at", flat=True))
        fresh = [b for b in beats if (now - b).total_seconds() <= settings.READY_WORKER_MAX_AGE_SECONDS]
        alive = GaugeMetricFamily("whatsapp_workers_alive", "Workers with a recent heartbeat.")
        alive.add_metric([], len(fresh))
        yield alive
        if beats:
            age = GaugeMetricFamily(
                "whatsapp_worker_heartbeat_age_seconds", "Seconds since the most recent worker heartbeat."
            )
            age.add_metric([], max(0.0, (now - max(beats)).total_seconds()))
            yield age


def metrics_view(request):
    refused = check_authorization(request.META.get("HTTP_AUTHORIZATION"),
                                  settings.METRICS_TOKEN or settings.API_STATIC_TOKEN)
    if refused is not None:
        response = error_json(refused.status_code, refused.code, refused.message)
        if refused.status_code == 401:
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    registry = CollectorRegistry(auto_describe=False)
    registry.register(QueueCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
