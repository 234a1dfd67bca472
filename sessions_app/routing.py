"""WebSocket routes. The id part takes anything, so a bad id gets the consumer's clear refusal; any other
path is refused with 404 instead of an error in the server."""

from django.urls import re_path

from .consumers import SessionConsumer, UnknownPathConsumer

websocket_urlpatterns = [
    re_path(r"^ws/session/(?P<session_id>.*)$", SessionConsumer.as_asgi()),
    re_path(r"", UnknownPathConsumer.as_asgi()),
]
