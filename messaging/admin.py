from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _, ngettext

from .models import MessageStatus, OutgoingMessage
from .services import message_cancel, message_retry


@admin.register(OutgoingMessage)
class OutgoingMessageAdmin(admin.ModelAdmin):
    list_display = ("message_id", "session", "to", "file_name", "status", "attempts", "error",
                    "wa_message_id", "created_at", "sent_at")
    list_filter = ("status", "session")
    search_fields = ("message_id", "to", "wa_message_id", "idempotency_key")
    actions = ["retry_failed", "cancel_queued"]
    exclude = ("request_hash", "lease_owner", "lease_expires_at")

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields if f.name not in self.exclude]

    def has_add_permission(self, request):
        return False

    @admin.action(description=_("Reintentar los mensajes fallidos seleccionados"))
    def retry_failed(self, request, queryset):
        count = message_retry(message_ids=list(queryset.filter(status=MessageStatus.FAILED).values_list("id", flat=True)))
        self.message_user(
            request,
            ngettext("%d mensaje vuelve a la cola.", "%d mensajes vuelven a la cola.", count) % count,
            messages.SUCCESS,
        )

    @admin.action(description=_("Cancelar los mensajes en cola seleccionados"))
    def cancel_queued(self, request, queryset):
        selected = queryset.count()
        count = message_cancel(message_ids=list(queryset.values_list("id", flat=True)))
        self.message_user(
            request,
            ngettext("%d mensaje cancelado.", "%d mensajes cancelados.", count) % count,
            messages.SUCCESS,
        )
        if count < selected:
            self.message_user(
                request,
                _("Los que ya se están enviando o terminaron no se pueden cancelar."),
                messages.WARNING,
            )
