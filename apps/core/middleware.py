import re
import secrets

from django.conf import settings
from django.http import QueryDict

from .errors import APIError, BadRequest, InvalidFieldFormat, error_response
from .parsers import InvalidBodyField, has_forbidden_characters, load_json

_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def is_api_path(path):
    return path.startswith("/v1/") or path.startswith("/api/v1/") or path in ("/v1", "/api/v1")


class RequestIdMiddleware:
    """Every request gets an id (`req_...`, or the client's `X-Request-ID` when well formed),
    echoed in the `X-Request-ID` header and in every error body."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.META.get("HTTP_X_REQUEST_ID", "")
        request.request_id = incoming if _CLIENT_REQUEST_ID.match(incoming) else f"req_{secrets.token_hex(12)}"
        response = self.get_response(request)
        response["X-Request-ID"] = request.request_id
        return response


class BodySizeLimitMiddleware:
    """413 REQUEST_TOO_LARGE for bodies over 10 MB, before anything reads them."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.limit = settings.MAX_REQUEST_BODY_BYTES

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > self.limit:
            return error_response(
                request, 413, "REQUEST_TOO_LARGE", f"Request bodies are limited to {self.limit // (1024 * 1024)} MB."
            )
        return self.get_response(request)


class HeaderCheckMiddleware:
    """400 INVALID_FIELD_FORMAT for an API request whose headers carry a NUL character (or a lone
    surrogate): header values reach the database (X-Account-Id, Idempotency-Key, User-Agent in
    the audit log), and PostgreSQL refuses NUL in text."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if is_api_path(request.path_info):
            for name, value in request.META.items():
                if name.startswith("HTTP_") and isinstance(value, str) and has_forbidden_characters(value):
                    header = name[5:].replace("_", "-").title()
                    return error_response(
                        request,
                        400,
                        "INVALID_FIELD_FORMAT",
                        f"The {header} header contains a NUL character.",
                        param=header,
                    )
        return self.get_response(request)


class JsonBodyQueryMiddleware:
    """A GET with an empty query string and a JSON object body (seed 003's curl) takes the
    body's keys as query parameters. A body that is not such an object is a 400."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if (
            request.method == "GET"
            and not request.META.get("QUERY_STRING")
            and is_api_path(request.path_info)
            and _content_length(request) > 0
        ):
            try:
                request.GET = _query_from_body(request.body)
            except APIError as exc:
                return error_response(request, exc.status, exc.code, exc.message, param=exc.param)
        return self.get_response(request)


def _content_length(request):
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def _query_from_body(raw):
    try:
        body = load_json(raw)
    except InvalidBodyField as exc:  # these are query parameters: a 400, not a 422
        raise InvalidFieldFormat(exc.message, param=exc.param) from None
    if not isinstance(body, dict):
        raise BadRequest("A GET body must be a JSON object of query parameters.")
    query = QueryDict(mutable=True)
    for key, value in body.items():
        values = value if isinstance(value, list) else [value]
        if any(isinstance(item, dict | list) for item in values):
            raise InvalidFieldFormat(f"The query parameter {key} must be a value or a list of values.", param=key)
        query.setlist(key, [_as_text(item) for item in values])
    query._mutable = False
    return query


def _as_text(value):
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return ""
    return str(value)
