from django.contrib import admin
from django.urls import path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerView

from messaging.views import MessageDetailView, SendPdfView, SendTextView
from sessions_app import linking_views
from sessions_app import simulator_views
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
    path("api/send-text", SendTextView.as_view(), name="send-text"),
    path("api/messages/<str:message_id>", MessageDetailView.as_view(), name="message-detail"),
    path("api/sessions", SessionListView.as_view(), name="session-list"),
    path("api/sessions/<str:session_id>", SessionDetailView.as_view(), name="session-detail"),
    path("api/sessions/<str:session_id>/qr", SessionQrView.as_view(), name="session-qr"),
    path("api/sessions/<str:session_id>/pairing-code", SessionPairingCodeView.as_view(), name="session-pairing-code"),
    path("api/sessions/<str:session_id>/logout", SessionLogoutView.as_view(), name="session-logout"),
    path("api/simulator/sessions/<str:session_id>/scan", simulator_views.SimulatorScanView.as_view(),
         name="simulator-scan"),
    path("api/simulator/sessions/<str:session_id>/drop", simulator_views.SimulatorDropView.as_view(),
         name="simulator-drop"),
    path("api/simulator/sessions/<str:session_id>/logout", simulator_views.SimulatorLogoutView.as_view(),
         name="simulator-logout"),
    path("api/simulator/sessions/<str:session_id>/replace", simulator_views.SimulatorReplaceView.as_view(),
         name="simulator-replace"),
    path("api/simulator/sessions/<str:session_id>/ban", simulator_views.SimulatorBanView.as_view(),
         name="simulator-ban"),
    path("api/simulator/outbox", simulator_views.SimulatorOutboxView.as_view(), name="simulator-outbox"),
    path("link/", linking_views.link_start, name="session-link-start"),
    path("link/<str:session_id>/", linking_views.link_page, name="session-link"),
    path("link/<str:session_id>/qr.svg", linking_views.link_qr, name="session-link-qr"),
    path("link/<str:session_id>/pairing-code", linking_views.link_pairing_code, name="session-link-pairing-code"),
    path("api/schema/", SpectacularJSONAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
]

handler400 = "core.errors.handler400"
handler404 = "core.errors.handler404"
handler500 = "core.errors.handler500"
