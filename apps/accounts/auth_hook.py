"""Session variables from an authentication webhook, as Hasura's auth hook gets them.

The operator configures `STATESET_AUTH_WEBHOOK_URL`; for a bearer credential this server cannot
verify itself, we ask that URL and it answers with the session variables (`X-Hasura-User-Id`,
`X-Hasura-Role`, `X-Hasura-Org-Id`, ...). GET sends the client's credential headers as headers,
POST sends them as `{"headers": {...}, "request": {...}}`, both as Hasura does, so an existing
Hasura hook works unchanged.

Only the headers that carry identity are forwarded (Authorization, X-Hasura-*, X-Account-Id):
never Cookie (a session cookie of ours is not the hook's business) and never an admin secret.
The URL is operator configuration, not tenant input, so it is not put through the SSRF guard;
it still gets a short timeout and no redirects, and any answer but a 200 with a JSON object
refuses the request: an unreachable hook must never let anyone in.
"""

import hashlib
import json
import re
import time

import requests
from django.conf import settings
from django.core.cache import cache
from django.utils.http import parse_http_date_safe

from apps.core.errors import AuthenticationFailed

_ADMIN_SECRET_HEADERS = ("HTTP_X_HASURA_ADMIN_SECRET", "HTTP_X_STATESET_ADMIN_SECRET")
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)", re.IGNORECASE)


def _header_name(meta_name):
    """`HTTP_X_HASURA_ROLE` -> `X-Hasura-Role`."""
    return "-".join(part.capitalize() for part in meta_name[len("HTTP_") :].split("_"))


def forwarded_headers(meta):
    headers = {}
    for name, value in meta.items():
        if name in _ADMIN_SECRET_HEADERS:
            continue
        if name in ("HTTP_AUTHORIZATION", "HTTP_X_ACCOUNT_ID") or name.startswith("HTTP_X_HASURA_"):
            headers[_header_name(name)] = value
    return headers


def _cache_key(headers):
    # A digest of the forwarded headers, never the token itself: a cache dump must not hand out
    # credentials. The URL and mode are part of it so that reconfiguring the hook starts afresh.
    material = json.dumps([settings.STATESET_AUTH_WEBHOOK_URL, _mode(), sorted(headers.items())], separators=(",", ":"))
    return f"auth-hook:{hashlib.sha256(material.encode()).hexdigest()}"


def _mode():
    return (settings.STATESET_AUTH_WEBHOOK_MODE or "GET").strip().upper()


def _cache_seconds(response):
    """How long the hook says its answer holds: max-age, else Expires; 0 when it says nothing."""
    cache_control = response.headers.get("Cache-Control", "").lower()
    if "no-store" in cache_control or "no-cache" in cache_control:
        return 0
    match = _MAX_AGE.search(cache_control)
    if match:
        return int(match.group(1))
    expires = parse_http_date_safe(response.headers.get("Expires", ""))
    if expires is None:
        return 0
    # Measured against the hook's own clock when it sends one: clocks of two hosts disagree.
    now = parse_http_date_safe(response.headers.get("Date", "")) or time.time()
    return max(0, int(expires - now))


def _refused(message):
    return AuthenticationFailed(message, code="INVALID_TOKEN")


def _call(headers, request_info):
    timeout = settings.STATESET_AUTH_WEBHOOK_TIMEOUT
    url = settings.STATESET_AUTH_WEBHOOK_URL
    if _mode() == "POST":
        return requests.post(
            url, json={"headers": headers, "request": request_info}, timeout=timeout, allow_redirects=False
        )
    return requests.get(url, headers=headers, timeout=timeout, allow_redirects=False)


def session_variables(meta, request_info):
    """The hook's session variables for this request, keys lower-cased; raises AuthenticationFailed.

    `request_info` is what POST mode sends as `request` (method and path for REST).
    """
    headers = forwarded_headers(meta)
    key = _cache_key(headers)
    cached = cache.get(key)
    if cached is not None:
        return cached
    try:
        response = _call(headers, request_info)
    except requests.RequestException:
        raise _refused("The authentication hook did not answer.") from None
    if response.status_code == 401:
        raise _refused("The authentication hook refused the credential.")
    if response.status_code != 200:
        raise _refused(f"The authentication hook answered {response.status_code}.")
    try:
        document = response.json()
    except ValueError:
        raise _refused("The authentication hook answered malformed JSON.") from None
    if not isinstance(document, dict):
        raise _refused("The authentication hook answered no session variables.")
    variables = {str(name).lower(): value for name, value in document.items()}
    seconds = _cache_seconds(response)
    if seconds > 0:
        cache.set(key, variables, seconds)
    return variables
