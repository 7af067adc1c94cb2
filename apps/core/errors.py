"""The one error shape of the API contract, for every error the server answers.

```
{"type": ..., "code": ..., "message": ..., "param": ..., "detail": ..., "request_id": ...,
 "error": {"type": ..., "code": ..., "message": ..., "param": ..., "request_id": ...}}
```
"""

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpResponse
from rest_framework import exceptions as drf_exceptions

from .jsonutil import dumps

logger = logging.getLogger("stateset.errors")

TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


class APIError(Exception):
    status = 400
    code = "BAD_REQUEST"
    default_message = "The request is invalid."

    def __init__(self, message=None, *, code=None, param=None, detail=None, status=None, headers=None):
        self.message = message or self.default_message
        if code:
            self.code = code
        if status:
            self.status = status
        self.param = param
        self.detail = detail
        self.headers = headers or {}
        super().__init__(self.message)

    @property
    def type(self):
        return TYPE_BY_STATUS.get(self.status, "api_error")


class BadRequest(APIError):
    status = 400
    code = "BAD_REQUEST"


class UnknownParameter(APIError):
    status = 400
    code = "parameter_unknown"
    default_message = "Unknown parameter."


class InvalidFieldFormat(APIError):
    status = 400
    code = "INVALID_FIELD_FORMAT"


class AuthenticationFailed(APIError):
    status = 401
    code = "INVALID_API_KEY"
    default_message = "Invalid credentials."


class PermissionDenied(APIError):
    status = 403
    code = "INSUFFICIENT_PERMISSIONS"
    default_message = "The credential does not allow this operation."


class NotFound(APIError):
    status = 404
    code = "RESOURCE_NOT_FOUND"
    default_message = "No such object."


class Conflict(APIError):
    status = 409
    code = "RESOURCE_CONFLICT"
    default_message = "The request conflicts with the current state of the resource."


class AlreadyExists(APIError):
    status = 409
    code = "RESOURCE_ALREADY_EXISTS"
    default_message = "A resource with the same identifier already exists."


class ValidationFailed(APIError):
    status = 422
    code = "VALIDATION_ERROR"
    default_message = "The request failed validation."


class RateLimited(APIError):
    status = 429
    code = "RATE_LIMIT_EXCEEDED"
    default_message = "Too many requests."


def error_body(status, code, message, *, param=None, detail=None, request_id=None, error_type=None):
    error_type = error_type or TYPE_BY_STATUS.get(status, "api_error")
    return {
        "type": error_type,
        "code": code,
        "message": message,
        "param": param,
        "detail": detail,
        "request_id": request_id,
        "error": {"type": error_type, "code": code, "message": message, "param": param, "request_id": request_id},
    }


def error_response(request, status, code, message, *, param=None, detail=None, headers=None):
    request_id = getattr(request, "request_id", None)
    response = HttpResponse(
        dumps(error_body(status, code, message, param=param, detail=detail, request_id=request_id)),
        status=status,
        content_type="application/json",
    )
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _first_field_error(detail, prefix=""):
    """(param, message) of the first field error in a DRF error detail tree."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = key if key == "non_field_errors" else (f"{prefix}.{key}" if prefix else str(key))
            param, message = _first_field_error(value, name)
            if message:
                return (None if key == "non_field_errors" else param), message
    elif isinstance(detail, list):
        for index, value in enumerate(detail):
            if isinstance(value, (dict, list)):
                param, message = _first_field_error(value, f"{prefix}[{index}]" if prefix else str(index))
            else:
                param, message = prefix or None, str(value)
            if message:
                return param, message
    elif detail:
        return prefix or None, str(detail)
    return None, None


def _plain(detail):
    if isinstance(detail, dict):
        return {str(k): _plain(v) for k, v in detail.items()}
    if isinstance(detail, list):
        return [_plain(v) for v in detail]
    return str(detail)


def _codes(detail):
    if isinstance(detail, dict):
        for value in detail.values():
            yield from _codes(value)
    elif isinstance(detail, list):
        for value in detail:
            yield from _codes(value)
    else:
        yield getattr(detail, "code", None)


def to_api_error(exc):
    """Translate any exception raised while handling an API request into an APIError."""
    if isinstance(exc, APIError):
        return exc
    if isinstance(exc, drf_exceptions.ValidationError):
        param, message = _first_field_error(exc.detail)
        codes = set(_codes(exc.detail))
        code = "MISSING_REQUIRED_FIELD" if codes and codes <= {"required", "null"} else "VALIDATION_ERROR"
        if "unique" in codes:
            return AlreadyExists(message, param=param, detail=_plain(exc.detail))
        return ValidationFailed(
            f"{param}: {message}" if param else message, code=code, param=param, detail=_plain(exc.detail)
        )
    if isinstance(exc, drf_exceptions.NotAuthenticated):
        return AuthenticationFailed("No API key provided.", code="MISSING_API_KEY")
    if isinstance(exc, drf_exceptions.AuthenticationFailed):
        return AuthenticationFailed(str(exc.detail))
    if isinstance(exc, (drf_exceptions.PermissionDenied, DjangoPermissionDenied)):
        return PermissionDenied()
    if isinstance(exc, (drf_exceptions.NotFound, Http404)):
        return NotFound()
    if isinstance(exc, drf_exceptions.MethodNotAllowed):
        return APIError(str(exc.detail), code="METHOD_NOT_ALLOWED", status=405)
    if isinstance(exc, drf_exceptions.UnsupportedMediaType):
        return APIError(str(exc.detail), code="UNSUPPORTED_MEDIA_TYPE", status=415)
    if isinstance(exc, drf_exceptions.ParseError):
        return BadRequest(f"Malformed request body: {exc.detail}")
    if isinstance(exc, RequestDataTooBig):
        return APIError("Request bodies are limited to 10 MB.", code="REQUEST_TOO_LARGE", status=413)
    if isinstance(exc, drf_exceptions.Throttled):
        return RateLimited()
    if isinstance(exc, drf_exceptions.APIException):
        return APIError(str(exc.detail), code=str(exc.default_code).upper(), status=exc.status_code)
    return None


def exception_handler(exc, context):
    """DRF exception handler: every error becomes the contract's JSON body."""
    request = context.get("request")
    api_error = to_api_error(exc)
    if api_error is None:
        logger.exception(
            "Unhandled error on %s (request %s)", getattr(request, "path", "?"), getattr(request, "request_id", "?")
        )
        return error_response(request, 500, "INTERNAL_ERROR", "An internal error occurred.")
    return error_response(
        request,
        api_error.status,
        api_error.code,
        api_error.message,
        param=api_error.param,
        detail=api_error.detail,
        headers=api_error.headers,
    )
