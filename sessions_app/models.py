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
    in_config = models.BooleanField(_("en el archivo de configuración"), default=True)
    created_at = models.DateTimeField(_("creada"), auto_now_add=True)
    updated_at = models.DateTimeField(_("actualizada"), auto_now=True)

    class Meta:
        ordering = ["session_id"]
        verbose_name = _("sesión de WhatsApp")
        verbose_name_plural = _("sesiones de WhatsApp")

    def __str__(self) -> str:
        return self.session_id
