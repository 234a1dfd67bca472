import uuid

from django.db import models
from django.utils.translation import gettext_lazy as _

from sessions_app.models import WhatsAppSession


class MessageStatus(models.TextChoices):
    QUEUED = "queued", _("en cola")
    SENDING = "sending", _("enviando")
    SENT = "sent", _("enviado")
    DELIVERED = "delivered", _("entregado")
    READ = "read", _("leído")
    FAILED = "failed", _("fallido")


# Status only moves forward, except to failed.
STATUS_RANK = {
    MessageStatus.QUEUED: 0,
    MessageStatus.SENDING: 1,
    MessageStatus.SENT: 2,
    MessageStatus.DELIVERED: 3,
    MessageStatus.READ: 4,
}


class MessageKind(models.TextChoices):
    DOCUMENT = "document", _("documento")
    IMAGE = "image", _("imagen")
    TEXT = "text", _("texto")


class OutgoingMessage(models.Model):
    """One document, image or text to send. The bytes live in MessagePayload so listing and claiming never load them."""

    id = models.BigAutoField(primary_key=True)  # FIFO order per session
    message_id = models.UUIDField(_("id de mensaje"), default=uuid.uuid4, unique=True, editable=False)
    session = models.ForeignKey(
        WhatsAppSession, on_delete=models.PROTECT, related_name="messages", verbose_name=_("sesión")
    )
    to = models.CharField(_("destinatario"), max_length=20)
    kind = models.CharField(_("tipo"), max_length=16, choices=MessageKind.choices, default=MessageKind.DOCUMENT)
    file_name = models.CharField(_("nombre de archivo"), max_length=255)
    caption = models.TextField(_("texto"), blank=True, default="")
    mimetype = models.CharField(max_length=100, default="application/pdf")
    size = models.PositiveIntegerField(_("tamaño"), default=0)
    sha256 = models.CharField(max_length=64)
    status = models.CharField(
        _("estado"), max_length=16, choices=MessageStatus.choices, default=MessageStatus.QUEUED
    )
    attempts = models.PositiveIntegerField(_("intentos"), default=0)
    next_attempt_at = models.DateTimeField(_("próximo intento"), null=True, blank=True)
    lease_owner = models.CharField(max_length=64, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    wa_message_id = models.CharField(_("id de WhatsApp"), max_length=128, blank=True, default="")
    wa_timestamp = models.DateTimeField(null=True, blank=True)
    error = models.TextField(_("último error"), blank=True, default="")
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)
    request_hash = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(_("creado"), auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    sent_at = models.DateTimeField(_("enviado"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("entregado"), null=True, blank=True)
    read_at = models.DateTimeField(_("leído"), null=True, blank=True)

    class Meta:
        verbose_name = _("mensaje saliente")
        verbose_name_plural = _("mensajes salientes")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["session", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="uniq_idempotency_key_per_session",
            )
        ]
        indexes = [
            models.Index(fields=["session", "status", "id"], name="msg_session_status_id"),
            models.Index(fields=["status", "next_attempt_at"], name="msg_status_due"),
            models.Index(fields=["wa_message_id"], name="msg_wa_message_id"),
            # /metrics reads the latency of recent sends; pacing reads a session's last hour.
            models.Index(fields=["sent_at"], name="msg_sent_at"),
        ]

    def __str__(self) -> str:
        return f"{self.message_id} → {self.to} ({self.status})"


class MessagePayload(models.Model):
    """The document bytes (or the UTF-8 text) of one message, kept apart from the queue rows."""

    message = models.OneToOneField(
        OutgoingMessage, on_delete=models.CASCADE, primary_key=True, related_name="payload"
    )
    data = models.BinaryField()

    class Meta:
        verbose_name = _("contenido")
        verbose_name_plural = _("contenidos")
