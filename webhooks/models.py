import uuid

from django.db import models
from django.utils.translation import gettext_lazy as _


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("pendiente")
    DELIVERED = "delivered", _("entregado")
    DEAD = "dead", _("descartado")  # retries ran out, or the receiver refused it for good


class WebhookDelivery(models.Model):
    """One event for one receiver URL: the outbox row, written in the transaction of the change it
    reports, and its delivery state. The body is fixed when written; each attempt signs it anew."""

    id = models.BigAutoField(primary_key=True)  # delivery order per URL
    event_id = models.UUIDField(_("id de evento"), default=uuid.uuid4, editable=False)
    event = models.CharField(_("evento"), max_length=32)  # message.status, session.status
    session_id = models.CharField(_("sesión"), max_length=64, db_index=True)
    # Events about one message (or one session) reach a URL in order: a later one waits while an
    # earlier one of the same subject is being retried.
    subject = models.CharField(max_length=100)
    # The same status of the same message is announced once per URL.
    dedupe_key = models.CharField(max_length=160)
    url = models.CharField(_("URL"), max_length=2000)
    body = models.TextField(_("contenido"))
    status = models.CharField(
        _("estado"), max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(_("intentos"), default=0)
    next_attempt_at = models.DateTimeField(_("próximo intento"))
    # Retries stop this long after it; "redeliver" starts it again.
    window_started_at = models.DateTimeField()
    lease_owner = models.CharField(max_length=64, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(_("última respuesta HTTP"), null=True, blank=True)
    last_error = models.TextField(_("último error"), blank=True, default="")
    created_at = models.DateTimeField(_("creado"), auto_now_add=True)
    delivered_at = models.DateTimeField(_("entregado"), null=True, blank=True)

    class Meta:
        verbose_name = _("envío de webhook")
        verbose_name_plural = _("envíos de webhook")
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["url", "dedupe_key"], name="webhook_once_per_url")]
        indexes = [
            models.Index(fields=["status", "url", "id"], name="webhook_pending_per_url"),
            models.Index(fields=["status", "next_attempt_at"], name="webhook_due"),
        ]

    def __str__(self) -> str:
        return f"{self.event} {self.event_id} → {self.url} ({self.status})"
