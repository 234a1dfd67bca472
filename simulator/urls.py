"""The simulator's endpoints, under /api/simulator/ (whatsapp_service.urls includes them only where the
simulator is installed)."""

from django.urls import path

from . import views

urlpatterns = [
    path("sessions/<str:session_id>/scan", views.SimulatorScanView.as_view(), name="simulator-scan"),
    path("sessions/<str:session_id>/drop", views.SimulatorDropView.as_view(), name="simulator-drop"),
    path("sessions/<str:session_id>/logout", views.SimulatorLogoutView.as_view(), name="simulator-logout"),
    path("sessions/<str:session_id>/replace", views.SimulatorReplaceView.as_view(), name="simulator-replace"),
    path("sessions/<str:session_id>/ban", views.SimulatorBanView.as_view(), name="simulator-ban"),
    path("sessions/<str:session_id>/read", views.SimulatorReadView.as_view(), name="simulator-read"),
    path("outbox", views.SimulatorOutboxView.as_view(), name="simulator-outbox"),
]
