"""Events and webhooks use cases.

`emit()` is the one way domain code records an event. It writes the Event row and, in the same
transaction, one WebhookDelivery row per enabled endpoint that subscribes to the event's type:
the delivery rows are the outbox. Only after commit are the deliveries queued (a Celery task, or
the in-process scheduler in the embedded setup); a delivery whose queueing was lost (broker down,
process killed) is still a due row, and the sweeper queues it again. Nothing is queued for a
transaction that rolls back, because nothing of it exists.
"""

import logging
import random
import time
from datetime import timedelta

from django.conf import settings
from django.db import OperationalError, transaction
from django.db.models import F, Max
from django.db.models.functions import Coalesce
from django.utils import timezone

from apps.core import payloads
from apps.core.changes import record_change
from apps.core.context import Actor
from apps.core.errors import Conflict, ValidationFailed
from apps.core.jsonutil import dumps, to_jsonable
from apps.core.states import transition

from . import queue, sender
from .models import (
    Event,
    WebhookAttempt,
    WebhookDelivery,
    WebhookDeliveryStatus,
    WebhookEndpoint,
    WebhookEndpointStatus,
    subscription_matches,
)
from .serializers import EventSerializer
from .signing import new_secret
from .ssrf import UnsafeURL, check_url

logger = logging.getLogger("stateset.webhooks")

# Deliveries a sweep queues at most (the next sweep takes the rest).
SWEEP_BATCH = 1000


# Events ------------------------------------------------------------------------------------


def _event_create(*, organization, type, object_type, object_id, data, previous_attributes, actor):
    last = (
        Event.objects.filter(organization=organization, object_id=object_id).aggregate(last=Max("sequence"))["last"]
        or 0
    )
    return Event.objects.create(
        organization=organization,
        type=type,
        api_version=settings.STATESET_API_VERSION,
        object_type=object_type,
        object_id=object_id,
        sequence=last + 1,
        data={"object": to_jsonable(data), "previous_attributes": to_jsonable(previous_attributes or {})},
        request_id=getattr(actor, "request_id", "") or "",
        idempotency_key=getattr(actor, "idempotency_key", "") or "",
    )


def emit(*, organization, type, obj, data, previous_attributes=None, actor=None):
    """Write an event row and its webhook deliveries in the caller's transaction; the deliveries
    are queued on commit.

    `obj` is the model instance the event is about, `data` its API representation.
    The caller holds the object's row lock (services lock what they change), so the per-object
    sequence number cannot race.
    """
    # savepoint=False: inside the caller's transaction this adds nothing; outside one, the event
    # and its deliveries still commit together.
    with transaction.atomic(savepoint=False):
        event = _event_create(
            organization=organization,
            type=type,
            object_type=obj._meta.model_name,
            object_id=str(obj.pk),
            data=data,
            previous_attributes=previous_attributes,
            actor=actor,
        )
        endpoints = [
            endpoint
            for endpoint in WebhookEndpoint.objects.for_org(organization).filter(status=WebhookEndpointStatus.ENABLED)
            if subscription_matches(endpoint.events, type)
        ]
        _deliveries_create(event, endpoints)
    return event


def emit_change(change):
    """The outbox's writer for apps.core.changes: the change's event, if it has one."""
    if change.emit_event:
        emit(
            organization=change.actor.organization,
            type=change.action,
            obj=change.obj,
            data=change.event_data,
            previous_attributes=change.previous_attributes,
            actor=change.actor,
        )


def _deliveries_create(event, endpoints, *, now=None):
    if not endpoints:
        return []
    now = now or timezone.now()
    deliveries = WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(organization_id=event.organization_id, event=event, endpoint=endpoint, next_attempt_at=now)
            for endpoint in endpoints
        ]
    )
    ids = [delivery.pk for delivery in deliveries]
    transaction.on_commit(lambda: queue.enqueue_deliveries(ids))
    return deliveries


def event_payload(event):
    """The event as receivers and `GET /v1/events/<id>` see it (API contract, "Webhooks")."""
    return EventSerializer(event).data


# Endpoints ---------------------------------------------------------------------------------


def _validated_url(url):
    try:
        check_url(url, unresolvable_ok=True)
    except UnsafeURL as exc:
        raise ValidationFailed(f"url: {exc}", param="url") from None
    return url


def _validated_events(events):
    if not isinstance(events, list) or not events:
        raise ValidationFailed('events: list at least one event type (or "*").', param="events")
    return sorted({str(name).strip() for name in events})


def _locked_endpoint(organization, endpoint):
    return WebhookEndpoint.objects.for_org(organization).select_for_update().get(pk=endpoint.pk)


def _own_endpoint(organization, endpoint):
    """The organization's endpoint (another one's is not found); the recorder then locks it."""
    return WebhookEndpoint.objects.for_org(organization).get(pk=endpoint.pk)


# Endpoint edits are audited; only their status changes are published (`webhook_endpoint.disabled`).
_AUDIT_ONLY = {"emit_event": False}


def webhook_endpoint_create(*, organization, actor, data):
    """A new endpoint and its signing secret (the only time the secret is returned)."""
    data = dict(data)
    secret = new_secret()
    with record_change(WebhookEndpoint, actor=actor, verb="created", **_AUDIT_ONLY) as change:
        change.obj = WebhookEndpoint.objects.create(
            organization=organization,
            created_by=actor.actor_id,
            url=_validated_url(data["url"]),
            description=data.get("description", ""),
            events=_validated_events(data.get("events")),
            metadata=data.get("metadata") or {},
            secret=secret,
        )
    return change.obj, secret


# Status moves only through transition() (enable/disable), never through an update.
ENDPOINT_FIELDS = ("url", "description", "events", "metadata")


def webhook_endpoint_update(*, organization, actor, instance, data):
    if "url" in data:
        data = {**data, "url": _validated_url(data["url"])}
    if "events" in data:
        data = {**data, "events": _validated_events(data["events"])}
    with record_change(_own_endpoint(organization, instance), actor=actor, verb="updated", **_AUDIT_ONLY) as change:
        endpoint = change.obj
        changed = [name for name in ENDPOINT_FIELDS if name in data and getattr(endpoint, name) != data[name]]
        if changed:
            for name in changed:
                setattr(endpoint, name, data[name])
            endpoint.save(update_fields=[*changed, "updated_at"])
    return change.obj


def webhook_endpoint_delete(*, organization, actor, instance):
    with record_change(_own_endpoint(organization, instance), actor=actor, verb="deleted", **_AUDIT_ONLY) as change:
        change.obj.delete()
    return change.obj


def _set_endpoint_status(endpoint, actor, status, reason=""):
    """Move the endpoint to `status` through transition() (history, audit row, event); already
    there: nothing happens. Enabling starts its failure count afresh."""
    if status == WebhookEndpointStatus.DISABLED:
        changes = {"disabled_reason": reason[:255], "disabled_at": timezone.now()}
    else:
        changes = {"disabled_reason": "", "disabled_at": None, "consecutive_failures": 0, "failing_since": None}
    return transition(endpoint, status, actor=actor, reason=reason or None, changes=changes)


def webhook_endpoint_enable(*, organization, actor, endpoint):
    return _set_endpoint_status(_own_endpoint(organization, endpoint), actor, WebhookEndpointStatus.ENABLED)


def webhook_endpoint_disable(*, organization, actor, endpoint, reason="Disabled by a user."):
    return _set_endpoint_status(_own_endpoint(organization, endpoint), actor, WebhookEndpointStatus.DISABLED, reason)


def webhook_endpoint_rotate_secret(*, organization, actor, endpoint):
    """A new secret (returned once); the old one keeps signing for WEBHOOK_SECRET_ROTATION_SECONDS
    so receivers can switch without losing a delivery."""
    secret = new_secret()
    with record_change(
        _own_endpoint(organization, endpoint), actor=actor, verb="secret_rotated", **_AUDIT_ONLY
    ) as change:
        endpoint = change.obj
        endpoint.previous_secret = endpoint.secret
        endpoint.previous_secret_expires_at = timezone.now() + timedelta(
            seconds=settings.WEBHOOK_SECRET_ROTATION_SECONDS
        )
        endpoint.secret = secret
        endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at", "updated_at"])
    return change.obj, secret


def webhook_endpoint_test(*, organization, actor, endpoint):
    """Send a `webhook_endpoint.test` event to this endpoint only (whatever it subscribes to)."""
    with transaction.atomic():
        endpoint = _locked_endpoint(organization, endpoint)
        if not endpoint.is_enabled:
            raise Conflict(
                "The endpoint is disabled; enable it before sending a test event.", detail={"status": endpoint.status}
            )
        event = _event_create(
            organization=organization,
            type="webhook_endpoint.test",
            object_type=endpoint._meta.model_name,
            object_id=endpoint.pk,
            data=payloads.build(endpoint),
            previous_attributes=None,
            actor=actor,
        )
        (delivery,) = _deliveries_create(event, [endpoint])
    return delivery


# Deliveries --------------------------------------------------------------------------------


def _delivery_snapshot(delivery):
    return {
        "status": delivery.status,
        "attempt_count": delivery.attempt_count,
        "next_attempt_at": delivery.next_attempt_at,
    }


def webhook_delivery_retry(*, organization, actor, delivery):
    """Attempt the delivery again now (whatever its status). If that attempt fails, automatic
    retries continue only while the retry schedule has steps left."""
    delivery = WebhookDelivery.objects.for_org(organization).get(pk=delivery.pk)
    with record_change(
        delivery,
        actor=actor,
        verb="retried",
        emit_event=False,
        snapshot=_delivery_snapshot,
        object_name="webhook_delivery",
    ) as change:
        delivery = change.obj
        if not delivery.endpoint.is_enabled:
            raise Conflict(
                "The endpoint is disabled; enable it before retrying its deliveries.",
                detail={"endpoint_status": delivery.endpoint.status},
            )
        delivery.status = WebhookDeliveryStatus.PENDING
        delivery.next_attempt_at = timezone.now()
        delivery.save(update_fields=["status", "next_attempt_at", "updated_at"])
        delivery_id = delivery.pk
        transaction.on_commit(lambda: queue.enqueue_deliveries([delivery_id]))
    return change.obj


def webhook_deliveries_retry_failed(*, organization=None, endpoint=None, since=None):
    """Put failed deliveries of enabled endpoints back in line (management command)."""
    failed = WebhookDelivery.objects.filter(
        status=WebhookDeliveryStatus.FAILED, endpoint__status=WebhookEndpointStatus.ENABLED
    )
    if organization is not None:
        failed = failed.filter(organization=organization)
    if endpoint is not None:
        failed = failed.filter(endpoint=endpoint)
    if since is not None:
        failed = failed.filter(created_at__gte=since)
    with transaction.atomic():
        ids = list(failed.values_list("pk", flat=True))
        WebhookDelivery.objects.filter(pk__in=ids).update(
            status=WebhookDeliveryStatus.PENDING, next_attempt_at=timezone.now(), updated_at=timezone.now()
        )
        transaction.on_commit(lambda: queue.enqueue_deliveries(ids))
    return ids


def webhook_events_replay(*, organization, endpoint, since, until, types=None):
    """Deliver again, to one endpoint, the events of [since, until) it subscribes to (or those
    matching `types`): new deliveries for events it never got, a fresh attempt for the others."""
    patterns = types or endpoint.events
    with transaction.atomic():
        events = [
            event
            for event in Event.objects.filter(organization=organization, created_at__gte=since, created_at__lt=until)
            .exclude(type="webhook_endpoint.test")
            .order_by("created_at", "id")
            if subscription_matches(patterns, event.type)
        ]
        existing = dict(
            WebhookDelivery.objects.filter(endpoint=endpoint, event__in=events).values_list("event_id", "pk")
        )
        now = timezone.now()
        WebhookDelivery.objects.filter(pk__in=existing.values()).update(
            status=WebhookDeliveryStatus.PENDING, next_attempt_at=now, updated_at=now
        )
        for event in events:
            if event.pk not in existing:
                _deliveries_create(event, [endpoint], now=now)
        ids = list(existing.values())
        transaction.on_commit(lambda: queue.enqueue_deliveries(ids))
    return len(events)


def webhook_deliveries_sweep(*, now=None, limit=SWEEP_BATCH):
    """Queue every pending delivery that is due but has no attempt running: its queueing was
    lost (broker down at commit, worker killed mid-request: the claim's lease ran out) or its
    retry was too far ahead to be queued with an ETA. Returns the ids it queued."""
    now = now or timezone.now()
    # The grace keeps the sweeper from also queueing a retry whose own ETA message fires now.
    cutoff = now - timedelta(seconds=min(10.0, settings.WEBHOOK_SWEEP_INTERVAL_SECONDS))
    ids = list(
        WebhookDelivery.objects.filter(status=WebhookDeliveryStatus.PENDING, next_attempt_at__lte=cutoff)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    if ids:
        logger.info("Sweeper queues %d due webhook deliveries", len(ids))
        queue.enqueue_deliveries(ids)
    return ids


def lease_seconds():
    """How long a claimed attempt may run before another worker may take it over."""
    return settings.WEBHOOK_TIMEOUT_SECONDS + 15


def _claim(delivery_id, now):
    """Take the delivery for one attempt: a conditional UPDATE, so of two workers (a redelivered
    message and the sweeper's) only one sends."""
    return WebhookDelivery.objects.filter(
        pk=delivery_id,
        status=WebhookDeliveryStatus.PENDING,
        # An ETA message may fire a moment early by our clock.
        next_attempt_at__lte=now + timedelta(seconds=1),
    ).update(next_attempt_at=now + timedelta(seconds=lease_seconds()))


def _retry_when_locked(function, *args):
    """SQLite (the embedded setup) answers "database is locked" at once in some modes instead of
    waiting for the other writer. Wait and retry: losing the record of an attempt that was sent
    would make the sweeper send it again."""
    for pause in (0.01, 0.05, 0.1, 0.2, 0.5, 1, 2, 4, None):
        try:
            return function(*args)
        except OperationalError as exc:
            if pause is None or "locked" not in str(exc):
                raise
            time.sleep(pause)


def _claim_and_load(delivery_id):
    if not _claim(delivery_id, timezone.now()):
        return None
    return WebhookDelivery.objects.select_related("event__organization", "endpoint").get(pk=delivery_id)


def webhook_delivery_attempt(delivery_id):
    """Make one attempt of a due delivery and record it. Returns the attempt, or None when there
    was nothing to do (already delivered, given up, not due, or another worker has it)."""
    delivery = _retry_when_locked(_claim_and_load, delivery_id)
    if delivery is None:
        return None
    endpoint = delivery.endpoint
    if not endpoint.is_enabled:
        outcome = sender.Outcome.skipped("The endpoint is disabled.")
    else:
        outcome = sender.send(
            url=endpoint.url,
            body=dumps(event_payload(delivery.event)),
            message_id=delivery.event_id,
            secrets_in_use=endpoint.signing_secrets(timezone.now()),
        )
    return _retry_when_locked(_record_attempt, delivery_id, outcome)


def _next_retry_at(attempts_made, now):
    schedule = settings.WEBHOOK_RETRY_SCHEDULE
    if attempts_made >= len(schedule):
        return None
    step = schedule[attempts_made]
    return now + timedelta(seconds=step + random.uniform(0, step * settings.WEBHOOK_RETRY_JITTER))


def _record_attempt(delivery_id, outcome):
    now = timezone.now()
    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update().select_related("endpoint").get(pk=delivery_id)
        number = delivery.attempt_count + 1
        attempt = WebhookAttempt.objects.create(
            organization_id=delivery.organization_id,
            delivery=delivery,
            number=number,
            url=delivery.endpoint.url,
            status_code=outcome.status_code,
            succeeded=outcome.verdict == sender.SUCCESS,
            error=outcome.error[:500],
            latency_ms=outcome.latency_ms,
            response_excerpt=outcome.response_excerpt,
        )
        delivery.attempt_count = number
        delivery.last_attempt_at = now
        delivery.last_status_code = outcome.status_code
        delivery.last_error = outcome.error[:500]
        delivery.next_attempt_at = None
        if outcome.verdict == sender.SUCCESS:
            delivery.status, delivery.delivered_at = WebhookDeliveryStatus.SUCCEEDED, now
        elif outcome.verdict == sender.RETRY:
            delivery.next_attempt_at = _next_retry_at(number, now)
            if delivery.next_attempt_at is None:
                delivery.status = WebhookDeliveryStatus.FAILED
                delivery.last_error = (f"{outcome.error}; retry schedule exhausted")[:500]
        else:
            delivery.status = WebhookDeliveryStatus.FAILED
        delivery.save(
            update_fields=[
                "status",
                "attempt_count",
                "next_attempt_at",
                "last_attempt_at",
                "last_status_code",
                "last_error",
                "delivered_at",
                "updated_at",
            ]
        )
        if outcome.verdict != sender.SKIPPED:
            _track_endpoint_health(delivery.endpoint, outcome, now)
        if delivery.status == WebhookDeliveryStatus.PENDING:
            due = delivery.next_attempt_at
            transaction.on_commit(lambda: queue.enqueue_delivery(delivery_id, at=due))
    return attempt


def _track_endpoint_health(endpoint, outcome, now):
    """Reset the endpoint's run of failures on success; extend it otherwise, and disable the
    endpoint on a 410 or when the run is long enough (WEBHOOK_DISABLE_AFTER_*)."""
    endpoints = WebhookEndpoint.objects.filter(pk=endpoint.pk)
    if outcome.verdict == sender.SUCCESS:
        if endpoint.consecutive_failures:
            endpoints.update(consecutive_failures=0, failing_since=None)
        return
    # F() updates: many deliveries to one endpoint record their attempts concurrently.
    endpoints.update(consecutive_failures=F("consecutive_failures") + 1, failing_since=Coalesce("failing_since", now))
    if outcome.verdict == sender.GONE:
        reason = "The endpoint answered 410 Gone."
    else:
        failures, since = endpoints.values_list("consecutive_failures", "failing_since").get()
        long_enough = (now - since).total_seconds() >= settings.WEBHOOK_DISABLE_AFTER_SECONDS
        if failures < settings.WEBHOOK_DISABLE_AFTER_FAILURES or not long_enough:
            return
        reason = f"{failures} failed attempts in a row since {since.isoformat()}."
    locked = WebhookEndpoint.objects.select_for_update().select_related("organization").get(pk=endpoint.pk)
    if locked.is_enabled:
        logger.warning("Disabling webhook endpoint %s: %s", locked.pk, reason)
        _set_endpoint_status(
            locked, Actor.system(locked.organization, "webhooks"), WebhookEndpointStatus.DISABLED, reason
        )
