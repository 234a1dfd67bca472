from django.db import models
from django.utils.translation import gettext_lazy as _


class SessionStatus(models.TextChoices):
    STOPPED = "stopped", _("detenida")
    INITIALIZING = "initializing", _("iniciando")
    QR = "qr", _("esperando QR")
    CONNECTED = "connected", _("conectada")
    DISCONNECTED = "disconnected", _("desconectada")
    LOGGED_OUT = "logged_out", _("sesión cerrada")
    BANNED = "banned", _("bloqueada")


class WhatsAppSession(models.Model):
    """The database mirror of one entry of sessions.config.json and its live state."""

    session_id = models.CharField(_("id de sesión"), max_length=64, primary_key=True)
    description = models.CharField(_("descripción"), max_length=255, blank=True, default="")
    status = models.CharField(
        _("estado"), max_length=16, choices=SessionStatus.choices, default=SessionStatus.STOPPED
    )
    phone = models.CharField(_("teléfono"), max_length=32, blank=True, default="")
    qr = models.TextField(_("QR pendiente"), blank=True, default="")
    qr_updated_at = models.DateTimeField(_("QR actualizado"), null=True, blank=True)
    last_error = models.TextField(_("último error"), blank=True, default="")
    # Why the status is what it is (a status event's reason: connect_failure, qr_timeout, ...), "" when
    # it needs none.
    status_reason = models.CharField(_("motivo"), max_length=32, blank=True, default="")
    # When the worker will try to start the session again by itself (restart backoff, stream replaced,
    # end of a ban); None while a process runs or while it waits for a start request.
    next_attempt_at = models.DateTimeField(_("próximo intento"), null=True, blank=True)
    # From sessions.config.json ("webhookUrls"): receivers of this session's status webhooks,
    # besides WEBHOOK_URLS.
    webhook_urls = models.JSONField(_("webhooks"), default=list, blank=True)
    in_config = models.BooleanField(_("en el archivo de configuración"), default=True)
    # Set by whoever wants the session (re)started (a WebSocket opening, an admin); the supervisor
    # starts a stopped, logged-out or timed-out session when this is newer than its last start.
    start_requested_at = models.DateTimeField(null=True, blank=True)
    # Counted by the worker, kept here so /metrics (possibly another process) reads them across restarts.
    reconnects = models.PositiveBigIntegerField(_("reconexiones"), default=0)
    process_restarts = models.PositiveBigIntegerField(_("reinicios del proceso"), default=0)
    created_at = models.DateTimeField(_("creada"), auto_now_add=True)
    updated_at = models.DateTimeField(_("actualizada"), auto_now=True)

    class Meta:
        ordering = ["session_id"]
        verbose_name = _("sesión de WhatsApp")
        verbose_name_plural = _("sesiones de WhatsApp")

    def __str__(self) -> str:
        return self.session_id


class WorkerHeartbeat(models.Model):
    """A running session supervisor (`runworker`, or `serve` in embedded mode), written every
    WORKER_HEARTBEAT_SECONDS and deleted when it stops cleanly. /readyz wants a recent one."""

    worker_id = models.CharField(max_length=128, primary_key=True)
    host = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    beat_at = models.DateTimeField(db_index=True)
    capacity = models.PositiveIntegerField(default=0)  # sessions it runs at most; 0: no limit

    def __str__(self) -> str:
        return self.worker_id


class SessionLease(models.Model):
    """Which worker runs a session (sessions_app.session_leases). `epoch` grows by one each time the
    session changes hands: it fences a worker that lost the lease without knowing it. Times are the
    database's clock, so workers on hosts whose clocks differ agree on who holds what."""

    session_id = models.CharField(max_length=64, primary_key=True)
    owner = models.CharField(max_length=128, blank=True, default="", db_index=True)
    epoch = models.PositiveBigIntegerField(default=0)
    expires_at = models.DateTimeField(null=True, blank=True)
    acquired_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.session_id}@{self.owner or '-'}#{self.epoch}"


class CommandState(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"  # claimed by a worker: a web process that gave up waiting no longer cancels it
    DONE = "done"
    FAILED = "failed"


class SessionCommand(models.Model):
    """A request from a web process to the worker that owns a session (they may be separate processes
    or hosts): pairing code, logout, delete. The web process waits for `state` to leave pending."""

    class Kind(models.TextChoices):
        PAIRING_CODE = "pairing_code"
        LOGOUT = "logout"
        DELETE = "delete"

    session_id = models.CharField(max_length=64, db_index=True)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    payload = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=16, choices=CommandState.choices, default=CommandState.PENDING)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["state", "id"], name="sessioncommand_pending")]

