"""Endpoints of the platform itself: health, jobs, and the JSON 404 for unknown API routes."""

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt

from .errors import error_response
from .jobs import JobSerializer
from .jsonutil import dumps
from .models import Job
from .views import ReadOnlyResourceViewSet


def health(request):
    """`GET /health`: database, cache and broker, each `ok` or the error; 503 if any fails."""
    checks = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = {"status": "ok", "vendor": connection.vendor}
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        checks["database"] = {"status": "error", "error": str(exc)}
    try:
        cache.set("health:ping", "1", 5)
        ok = cache.get("health:ping") == "1"
        checks["cache"] = {"status": "ok" if ok else "error", "backend": settings.CACHES["default"]["BACKEND"]}
    except Exception as exc:  # noqa: BLE001
        checks["cache"] = {"status": "error", "error": str(exc)}
    if settings.CELERY_TASK_ALWAYS_EAGER:
        checks["broker"] = {"status": "ok", "mode": "in-process"}
    else:
        try:
            from stateset.celery import app

            with app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, timeout=2)
            checks["broker"] = {"status": "ok", "mode": "redis"}
        except Exception as exc:  # noqa: BLE001
            checks["broker"] = {"status": "error", "error": str(exc)}
    healthy = all(check["status"] == "ok" for check in checks.values())
    body = {"status": "ok" if healthy else "degraded", "checks": checks, "version": settings.STATESET_API_VERSION}
    return HttpResponse(dumps(body), status=200 if healthy else 503, content_type="application/json")


@csrf_exempt
def api_not_found(request, *args, **kwargs):
    return error_response(
        request, 404, "RESOURCE_NOT_FOUND", f"Unrecognized request URL ({request.method}: {request.path})."
    )


class JobViewSet(ReadOnlyResourceViewSet):
    """Asynchronous jobs (large batches)."""

    queryset = Job.objects.all()
    serializer_class = JobSerializer
