from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from .models import SessionStatus
from .selectors import configured_sessions, get_configured_session, session_as_json


class SessionOutputSerializer(serializers.Serializer):
    sessionId = serializers.CharField()
    description = serializers.CharField()
    status = serializers.ChoiceField(SessionStatus.values)
    phone = serializers.CharField(allow_null=True)
    lastError = serializers.CharField(allow_null=True)


class SessionListView(APIView):
    @extend_schema(operation_id="list_sessions", responses={200: SessionOutputSerializer(many=True)})
    def get(self, request):
        return Response([session_as_json(s) for s in configured_sessions()])


class SessionDetailView(APIView):
    @extend_schema(operation_id="get_session", responses={200: SessionOutputSerializer})
    def get(self, request, session_id: str):
        return Response(session_as_json(get_configured_session(session_id)))
