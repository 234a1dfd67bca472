from django.contrib import admin

from .models import WhatsAppSession


@admin.register(WhatsAppSession)
class WhatsAppSessionAdmin(admin.ModelAdmin):
    list_display = ("session_id", "description", "status", "phone", "last_error", "updated_at")
    list_filter = ("status", "in_config")
    search_fields = ("session_id", "description", "phone")
    readonly_fields = ("status", "phone", "qr", "qr_updated_at", "last_error", "created_at", "updated_at")
