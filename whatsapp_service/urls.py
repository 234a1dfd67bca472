from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.utils.translation import gettext as _
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerView
from rest_framework.views import APIView

from core.errors import ApiError
from messaging.views import MessageDetailView, SendDocumentView, SendImageView, SendPdfView, SendTextView
from sessions_app import linking_views
from sessions_app.views import (
    SessionDetailView,
    SessionListView,
    SessionLogoutView,
    SessionPairingCodeView,
    SessionQrView,
)

from .health import healthz, readyz
from .metrics import metrics_view

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    path("api/send-pdf", SendPdfView.as_view(), name="send-pdf"),
    path("api/send-document", SendDocumentView.as_view(), name="send-document"),
    path("api/send-image", SendImageView.as_view(), name="send-image"),
    path("api/send-text", SendTextView.as_view(), name="send-text"),
    path("api/messages/<str:message_id>", MessageDetailView.as_view(), name="message-detail"),
    path("api/sessions", SessionListView.as_view(), name="session-list"),
    path("api/sessions/<str:session_id>", SessionDetailView.as_view(), name="session-detail"),
    path("api/sessions/<str:session_id>/qr", SessionQrView.as_view(), name="session-qr"),
    path("api/sessions/<str:session_id>/pairing-code", SessionPairingCodeView.as_view(), name="session-pairing-code"),
    path("api/sessions/<str:session_id>/logout", SessionLogoutView.as_view(), name="session-logout"),
    path("link/", linking_views.link_start, name="session-link-start"),
    path("link/<str:session_id>/", linking_views.link_page, name="session-link"),
    path("link/<str:session_id>/qr.svg", linking_views.link_qr, name="session-link-qr"),
    path("link/<str:session_id>/pairing-code", linking_views.link_pairing_code, name="session-link-pairing-code"),
    path("api/schema/", SpectacularJSONAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
]


class SimulatorAbsentView(APIView):
    """The simulator's paths where it is not installed: the token is checked first, as on its endpoints,
    then 404, so that nobody learns the mode without the token."""

    schema = None  # not part of the API

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        raise ApiError(404, "not_found", _("El simulador solo existe con WHATSAPP_BACKEND=simulator."))


if settings.SIMULATOR_INSTALLED:
    urlpatterns.append(path("api/simulator/", include("simulator.urls")))
else:
    urlpatterns.append(re_path(r"^api/simulator/", SimulatorAbsentView.as_view(), name="simulator-absent"))

handler400 = "core.errors.handler400"
handler404 = "core.errors.handler404"
handler500 = "core.errors.handler500"
