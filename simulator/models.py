from django.db import models


class SimulatorControl(models.Model):
    """What the control endpoints ask of a simulated phone, for the session's process to act on (the
    supervisor hands each row over once: SimulatorBackend.take_controls). Kept in the database so the
    web and the worker can be separate processes."""

    class Action(models.TextChoices):
        SCAN = "scan"
        DROP = "drop"
        LOGOUT = "logout"
        REPLACE = "replace"  # another connection takes the number (stream replaced)
        BAN = "ban"  # a temporary ban; payload {"expire_seconds": int}
        READ = "read"  # the recipient opens the chat; payload {"to": "51987654321"}

    session_id = models.CharField(max_length=64, db_index=True)
    action = models.CharField(max_length=16, choices=Action.choices)
    payload = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    consumed_at = models.DateTimeField(null=True, blank=True)


class SimulatorOutbox(models.Model):
    """What the simulated WhatsApp delivered."""

    session_id = models.CharField(max_length=64, db_index=True)
    to = models.CharField(max_length=20, db_index=True)
    kind = models.CharField(max_length=16, default="document")  # or "image", "text"
    text = models.TextField(blank=True, default="")
    file_name = models.CharField(max_length=255)
    caption = models.TextField(blank=True, default="")
    mimetype = models.CharField(max_length=100, default="application/pdf")
    sha256 = models.CharField(max_length=64)
    size = models.PositiveIntegerField()
    wa_message_id = models.CharField(max_length=128, unique=True)
    sent_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
