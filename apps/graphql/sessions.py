"""Who a WebSocket connection acts for: its credential, read exactly as REST reads one.

A browser cannot set headers on a WebSocket handshake, so GraphQL clients send them in the
`connection_init` payload, in any of the spellings clients use: `{"headers": {"Authorization":
"Bearer ..."}}`, `{"Authorization": ...}`, `{"authorization": ...}`, `{"x-hasura-admin-secret":
..., "x-hasura-org-id": ...}`, `{"headers": {"X-API-Key": ...}}`. They are laid over the
handshake's own headers (and its `?api_key=` query parameter) as request META, and handed to
apps.accounts' `StatesetAuthentication`: API keys, JWTs (with `X-Hasura-Role`), user tokens, the
authentication webhook and the admin secret with `X-Hasura-Org-Id`/`X-Account-Id` give the very
actor REST would get. With no credential, `X-Account-Id` names the organization of an anonymous
caller, as for REST. The same function re-checks the credential while the connection lives
(apps.graphql.live), so a revoked key or an expired token ends its subscriptions.
"""

import re
import secrets
from types import SimpleNamespace

from django.conf import settings
from django.http import HttpRequest
from rest_framework.request import Request

from apps.accounts.authentication import StatesetAuthentication
from apps.core.context import resolve_anonymous_actor
from apps.core.errors import BadRequest, InvalidFieldFormat
from apps.core.parsers import has_forbidden_characters

# Header lines a connection_init payload may carry, and their size (gunicorn's limits for REST).
MAX_HEADERS = 100
MAX_HEADER_VALUE = 16384
_HEADER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")

# The request META entries a credential is read from (the authentication webhook may read any
# header, so with one configured every header counts).
CREDENTIAL_META = frozenset(
    {
        "HTTP_AUTHORIZATION",
        "HTTP_X_API_KEY",
        "HTTP_API_KEY",
        "HTTP_X_STATESET_ADMIN_SECRET",
        "HTTP_X_HASURA_ADMIN_SECRET",
        "HTTP_X_ACCOUNT_ID",
        "HTTP_X_HASURA_ORG_ID",
        "HTTP_X_HASURA_ROLE",
        "QUERY_STRING",
    }
)


class SocketRequest:
    """What the authentication code, the actor and the rate limiter read of a request."""

    method = "GET"

    def __init__(self, meta, path, request_id):
        self.META = meta
        self.path = self.path_info = path
        self.request_id = request_id
        self._request = SimpleNamespace(user=None)  # no session login over a WebSocket


def new_request_id():
    return f"req_{secrets.token_hex(12)}"


def handshake_meta(scope):
    """Request META of the WebSocket handshake, as Django's ASGI handler builds it for HTTP."""
    client = scope.get("client") or ("", 0)
    meta = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": scope.get("path", ""),
        "QUERY_STRING": (scope.get("query_string") or b"").decode("latin-1"),
        "REMOTE_ADDR": client[0] or "",
    }
    for raw_name, raw_value in scope.get("headers") or ():
        name = "HTTP_" + raw_name.decode("latin-1").upper().replace("-", "_")
        value = raw_value.decode("latin-1")
        meta[name] = f"{meta[name]},{value}" if name in meta else value
    return meta


def payload_headers(payload):
    """{header name: value} of a connection_init payload; BadRequest for a malformed one."""
    if payload is None:
        return {}
    if not isinstance(payload, dict):
        raise BadRequest("The connection_init payload must be a JSON object.")
    headers = {}
    nested = payload.get("headers")
    if nested is not None and not isinstance(nested, dict):
        raise BadRequest("connection_init: `headers` must be an object of header names and values.")
    for source in (payload, nested or {}):
        for name, value in source.items():
            if source is payload and name == "headers":
                continue
            if not isinstance(value, str):
                if source is nested:
                    raise BadRequest(f"connection_init: the header {name} must be a string.")
                continue  # other settings a client sends along (`lazy`, `reconnect`): not headers
            if not _HEADER_NAME.match(name):
                if source is payload:
                    continue  # a client's own setting, not a header
                raise BadRequest(f"connection_init: {name!r} is not a header name.")
            if len(value) > MAX_HEADER_VALUE:
                raise BadRequest(f"connection_init: the header {name} is longer than {MAX_HEADER_VALUE} characters.")
            if has_forbidden_characters(value) or "\r" in value or "\n" in value:
                raise InvalidFieldFormat(f"connection_init: the header {name} contains a forbidden character.")
            headers[name] = value.strip()
    if len(headers) > MAX_HEADERS:
        raise BadRequest(f"connection_init: at most {MAX_HEADERS} headers.")
    return headers


def connection_meta(scope, payload):
    """The handshake's META with the connection_init payload's headers over it."""
    meta = handshake_meta(scope)
    for name, value in payload_headers(payload).items():
        meta["HTTP_" + name.upper().replace("-", "_")] = value
    for name, value in meta.items():
        if name.startswith("HTTP_") and has_forbidden_characters(value):
            header = name[5:].replace("_", "-").title()
            raise InvalidFieldFormat(f"The {header} header contains a NUL character.", param=header)
    return meta


def authenticate(meta, path, request_id):
    """The Actor of these credentials (None: no credential and no organization named), or the
    authentication error REST would answer (AuthenticationFailed, PermissionDenied, ...)."""
    request = SocketRequest(meta, path, request_id)
    result = StatesetAuthentication().authenticate(request)
    if result is not None:
        return result[1]
    return resolve_anonymous_actor(request)


def identity(actor):
    """What must not change while a connection lives: its tenant, role and credential."""
    if actor is None:
        return None
    return (
        actor.organization.pk,
        actor.role,
        actor.credential_type,
        actor.credential_id,
        actor.user_id,
        actor.api_key_kind,
        tuple(sorted(actor.scopes or ())),
    )


def signature(meta):
    """The part of META the credential depends on: connections with the same one are re-checked
    with one authentication."""
    if settings.STATESET_AUTH_WEBHOOK_URL:
        names = [name for name in meta if name.startswith("HTTP_") and not name.startswith("HTTP_SEC_WEBSOCKET")]
        names += ["QUERY_STRING"]
    else:
        names = CREDENTIAL_META
    return tuple(sorted((name, meta[name]) for name in names if meta.get(name)))


def drf_request(meta, path, request_id):
    """A DRF request carrying these headers, for the viewsets a mutation runs through (the actor
    is given to them; nothing authenticates again)."""
    http = HttpRequest()
    http.method = "POST"
    http.path = http.path_info = path
    http.META = dict(meta, REQUEST_METHOD="POST")
    http.request_id = request_id
    request = Request(http, authenticators=())
    request.request_id = request_id
    return request
