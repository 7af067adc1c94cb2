"""Plain Django endpoints of the platform itself, outside any collection: health, the API index,
the favicon, the API's 404, and the error pages Django renders outside any view (JSON for API
clients, HTML for browsers). The API base classes are in apps.core.views; the jobs collection is
in apps.core.api."""

from functools import wraps

from celery import current_app
from django.conf import settings
from django.contrib.staticfiles import finders
from django.core.cache import cache
from django.db import connection
from django.http import FileResponse, HttpResponse
from django.views import defaults
from django.views.decorators.cache import cache_control
from django.views.decorators.csrf import csrf_exempt

from .errors import error_response
from .jsonutil import dumps
from .routing import router

API_PREFIXES = ("/v1", "/api/")


def wants_html(request):
    """Browsers announce `text/html`; API clients and curl do not. Under the API prefixes the
    answer is always JSON, whatever the client accepts."""
    if request.path.startswith(API_PREFIXES):
        return False
    return "text/html" in request.headers.get("Accept", "")


def json_read_only(view):
    """GET and HEAD only; any other method is the contract's JSON 405, not Django's empty one."""

    @csrf_exempt
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.method not in ("GET", "HEAD"):
            return error_response(
                request,
                405,
                "METHOD_NOT_ALLOWED",
                f'Method "{request.method}" not allowed.',
                headers={"Allow": "GET, HEAD"},
            )
        return view(request, *args, **kwargs)

    return wrapper


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
            # The project's Celery app is the current one (stateset/__init__.py creates it first);
            # core asks Celery for it rather than importing the project package above every app.
            with current_app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, timeout=2)
            checks["broker"] = {"status": "ok", "mode": "redis"}
        except Exception as exc:  # noqa: BLE001
            checks["broker"] = {"status": "error", "error": str(exc)}
    healthy = all(check["status"] == "ok" for check in checks.values())
    body = {"status": "ok" if healthy else "degraded", "checks": checks, "version": settings.STATESET_API_VERSION}
    return HttpResponse(dumps(body), status=200 if healthy else 503, content_type="application/json")


@json_read_only
def api_index(request):
    """`GET /v1`: where things are. Public, since it lists only what the OpenAPI schema shows."""
    body = {
        "object": "api",
        "version": settings.STATESET_API_VERSION,
        "links": {
            "docs": "/v1/docs",
            "openapi": "/v1/openapi.json",
            "redoc": "/v1/redoc",
            "auth_token": "/v1/auth/token",
            "health": "/health",
        },
        "resources": {prefix: f"/v1/{prefix}" for prefix, _viewset, _basename in sorted(router.canonical.registry)},
    }
    return HttpResponse(dumps(body), content_type="application/json")


@json_read_only
@cache_control(public=True, max_age=24 * 3600)
def favicon(request):
    """Browsers ask for `/favicon.ico` on every page whatever the HTML says; serve it there."""
    return FileResponse(open(finders.find("favicon.ico"), "rb"), content_type="image/x-icon")


@csrf_exempt
def api_not_found(request, *args, **kwargs):
    return error_response(
        request, 404, "RESOURCE_NOT_FOUND", f"Unrecognized request URL ({request.method}: {request.path})."
    )


# Django's handler400/403/404/500, set in stateset/urls.py.


def bad_request(request, exception=None):
    if wants_html(request):
        return defaults.bad_request(request, exception)
    return error_response(request, 400, "BAD_REQUEST", "The request is invalid.")


def permission_denied(request, exception=None):
    if wants_html(request):
        return defaults.permission_denied(request, exception)
    return error_response(request, 403, "INSUFFICIENT_PERMISSIONS", "The credential does not allow this operation.")


def page_not_found(request, exception=None):
    if wants_html(request):
        return defaults.page_not_found(request, exception)
    return api_not_found(request)


def server_error(request):
    if wants_html(request):
        return defaults.server_error(request)
    return error_response(request, 500, "INTERNAL_ERROR", "An internal error occurred.")

