from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _, ngettext

from .models import WebhookDelivery
from .outbox import redeliver


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ("created_at", "event", "session_id", "url", "status", "attempts", "last_status_code",
                    "last_error", "next_attempt_at", "delivered_at")
    list_filter = ("status", "event", "session_id")
    search_fields = ("event_id", "session_id", "subject", "url")
    actions = ["redeliver_selected"]
    exclude = ("lease_owner", "lease_expires_at", "dedupe_key")

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields if f.name not in self.exclude]

    def has_add_permission(self, request):
        return False

    @admin.action(description=_("Reenviar los eventos seleccionados"))
    def redeliver_selected(self, request, queryset):
        count = redeliver(delivery_ids=list(queryset.values_list("id", flat=True)))
        self.message_user(
            request,
            ngettext("%d evento se volverá a enviar.", "%d eventos se volverán a enviar.", count) % count,
            messages.SUCCESS,
        )
