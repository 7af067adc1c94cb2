"""`Idempotency-Key` on POST/PUT/PATCH/DELETE (API contract, "Writes").

Scoped to the organization (and so the mode), the credential, the method and the path. The
first response, 5xx included, is replayed for 24 h with `Idempotent-Replayed: true`; the same
key with another body is a 400 `idempotency_error`; the same key while the first request still
runs is a 409 `idempotency_key_in_use`. The claim is a unique row inserted before the work, so
concurrent requests on several server processes agree on who runs.
"""

import hashlib
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpResponse, QueryDict
from django.utils import timezone

from .errors import APIError, BadRequest, Conflict
from .models import IdempotencyRecord

METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_KEY_LENGTH = 255


class Replay(Exception):
    """Raised to short-circuit a request with the stored response."""

    def __init__(self, response):
        self.response = response
        super().__init__("idempotent replay")


def _query_without_credential(query):
    """The query string minus an `api_key` credential: a key is no parameter of the request (its
    id already scopes the record), and nothing derived from the secret is stored."""
    if "api_key" not in query:
        return query
    params = QueryDict(query, mutable=True)
    params.pop("api_key", None)
    return params.urlencode()


def request_fingerprint(request):
    digest = hashlib.sha256()
    digest.update(request.method.encode())
    digest.update(b"\0")
    digest.update(_query_without_credential(request.META.get("QUERY_STRING", "")).encode())
    digest.update(b"\0")
    digest.update(request.body or b"")
    return digest.hexdigest()


def _stored_response(record):
    response = HttpResponse(
        bytes(record.response_body or b""),
        status=record.response_status,
        content_type=record.response_content_type or "application/json",
    )
    response["Idempotent-Replayed"] = "true"
    return response


def claim(request, actor):
    """Claim the key for this request. Returns the record to complete, or None when the request
    carries no key. Raises Replay, BadRequest or Conflict."""
    key = request.META.get("HTTP_IDEMPOTENCY_KEY")
    if key is None or request.method not in METHODS:
        return None
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        raise BadRequest(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters.",
            code="idempotency_error",
            param="Idempotency-Key",
        )
    now = timezone.now()
    fingerprint = request_fingerprint(request)
    scope = {
        "organization": actor.organization,
        "credential": actor.credential_id or actor.rate_limit_key,
        "key": key,
        "method": request.method,
        "path": request.path_info.rstrip("/"),
    }
    for _ in range(3):
        try:
            with transaction.atomic():
                return IdempotencyRecord.objects.create(
                    **scope,
                    request_hash=fingerprint,
                    expires_at=now + timedelta(seconds=settings.IDEMPOTENCY_TTL_SECONDS),
                )
        except IntegrityError:
            existing = IdempotencyRecord.objects.filter(**scope).first()
            if existing is None:
                continue  # deleted between our insert and read: try again
        if existing.expires_at <= now or (
            existing.status == IdempotencyRecord.Status.IN_PROGRESS
            and existing.created_at <= now - timedelta(seconds=settings.IDEMPOTENCY_STALE_SECONDS)
        ):
            # Expired, or abandoned by a crashed worker: the key may be used afresh.
            IdempotencyRecord.objects.filter(pk=existing.pk, created_at=existing.created_at).delete()
            continue
        if existing.request_hash != fingerprint:
            raise BadRequest(
                "Keys for idempotent requests can only be used with the same parameters they were first used with.",
                code="idempotency_error",
                param="Idempotency-Key",
            )
        if existing.status == IdempotencyRecord.Status.IN_PROGRESS:
            raise Conflict(
                "A request with this Idempotency-Key is still being processed; retry later.",
                code="idempotency_key_in_use",
            )
        raise Replay(_stored_response(existing))
    raise APIError("Could not claim the idempotency key.", code="idempotency_error", status=409)


def complete(record, response):
    """Store the first response so later requests with the key replay it."""
    if getattr(response, "streaming", False):
        IdempotencyRecord.objects.filter(pk=record.pk).delete()
        return
    IdempotencyRecord.objects.filter(pk=record.pk).update(
        status=IdempotencyRecord.Status.COMPLETED,
        response_status=response.status_code,
        response_body=bytes(response.content),
        response_content_type=response.get("Content-Type", "application/json"),
    )


def purge_expired():
    return IdempotencyRecord.objects.filter(expires_at__lte=timezone.now()).delete()[0]
