from django.db import connection
from django.http import JsonResponse


def healthz(request):
    """Alive and the database answers. No auth: load balancers call it."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:
        return JsonResponse({"status": "error", "database": "unreachable"}, status=503)
    return JsonResponse({"status": "ok", "database": "ok"})
