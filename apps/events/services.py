"""`emit()`: the one way domain code records an event."""

from django.conf import settings
from django.db import transaction
from django.db.models import Max

from apps.core.jsonutil import to_jsonable

from .models import Event

_dispatchers = []


def on_event_committed(callback):
    """Register `callback(event_id)` to run after the emitting transaction commits
    (webhook dispatch registers here)."""
    _dispatchers.append(callback)
    return callback


def emit(*, organization, type, obj, data, previous_attributes=None, actor=None):
    """Write an event row in the caller's transaction; dispatch is queued on commit.

    `obj` is the model instance the event is about, `data` its API representation.
    The caller holds the object's row lock (services lock what they change), so the per-object
    sequence number cannot race.
    """
    object_id = str(obj.pk)
    last = (
        Event.objects.filter(organization=organization, object_id=object_id).aggregate(last=Max("sequence"))["last"]
        or 0
    )
    event = Event.objects.create(
        organization=organization,
        type=type,
        api_version=settings.STATESET_API_VERSION,
        object_type=obj._meta.model_name,
        object_id=object_id,
        sequence=last + 1,
        data={"object": to_jsonable(data), "previous_attributes": to_jsonable(previous_attributes or {})},
        request_id=getattr(actor, "request_id", "") or "",
        idempotency_key=getattr(actor, "idempotency_key", "") or "",
    )
    for callback in _dispatchers:
        transaction.on_commit(lambda callback=callback: callback(event.pk))
    return event


def event_payload(event):
    """The event as receivers and `GET /v1/events/<id>` see it (API contract, "Webhooks")."""
    return {
        "id": event.id,
        "object": "event",
        "type": event.type,
        "api_version": event.api_version,
        "created": int(event.created_at.timestamp()),
        "livemode": event.organization.livemode,
        "sequence": event.sequence,
        "data": event.data,
        "request": {"id": event.request_id or None, "idempotency_key": event.idempotency_key or None},
    }
