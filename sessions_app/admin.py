from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from .models import WhatsAppSession


@admin.register(WhatsAppSession)
class WhatsAppSessionAdmin(admin.ModelAdmin):
    list_display = ("session_id", "description", "status", "phone", "last_error", "updated_at", "link_button")
    list_filter = ("status", "in_config")
    search_fields = ("session_id", "description", "phone")
    readonly_fields = ("status", "phone", "qr", "qr_updated_at", "last_error", "created_at", "updated_at")

    @admin.display(description=_("Vincular"))
    def link_button(self, obj: WhatsAppSession) -> str:
        return format_html(
            '<a class="button" href="{}">{}</a>', reverse("session-link", args=[obj.session_id]), _("Vincular")
        )
