from django import forms
from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from .ids import InvalidSessionId, validate_session_id
from .models import WhatsAppSession


class WhatsAppSessionForm(forms.ModelForm):
    class Meta:
        model = WhatsAppSession
        fields = "__all__"

    def clean_session_id(self) -> str:
        """The same rule as the API, the socket and the config file: the id names a folder on disk."""
        value = self.cleaned_data["session_id"]
        try:
            return validate_session_id(value)
        except InvalidSessionId:
            raise forms.ValidationError(
                _("El id de sesión debe tener de 1 a 64 letras, dígitos, '_' o '-'."), code="invalid_session_id"
            ) from None


@admin.register(WhatsAppSession)
class WhatsAppSessionAdmin(admin.ModelAdmin):
    form = WhatsAppSessionForm
    list_display = ("session_id", "description", "status", "phone", "last_error", "updated_at", "link_button")
    list_filter = ("status", "in_config")
    search_fields = ("session_id", "description", "phone")
    readonly_fields = ("status", "status_reason", "phone", "qr", "qr_updated_at", "last_error", "next_attempt_at",
                       "reconnects", "process_restarts", "created_at", "updated_at")

    @admin.display(description=_("Vincular"))
    def link_button(self, obj: WhatsAppSession) -> str:
        return format_html(
            '<a class="button" href="{}">{}</a>', reverse("session-link", args=[obj.session_id]), _("Vincular")
        )
