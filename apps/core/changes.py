"""The change recorder: every write service records its change the same way.

    with record_change(customer, actor=actor, verb="updated") as change:
        change.obj.first_name = "Ada"          # the service keeps only its rule
        change.obj.save(update_fields=["first_name", "updated_at"])
    return change.obj                           # reloaded, as the API shows it

The recorder opens the transaction, locks the row (scoped to its organization) and snapshots it
before the block; after the block it reloads the row, snapshots it again, and hands one `Change`
to every registered writer, in the same transaction: the audit log (apps.accounts) and the event
outbox (apps.events) register theirs when their app is ready. Core stays below them (it imports
neither), and a service cannot forget one of them.

Snapshots are the object's event payload (apps.core.payloads) unless the service passes its own
`snapshot`. Creations and deletions are always recorded; any other verb only when the snapshot
changed, so a PATCH that changes nothing writes no audit row and emits no event.
"""

from contextlib import contextmanager
from dataclasses import dataclass

from django.db import transaction

from . import payloads

ALWAYS_RECORDED = ("created", "deleted")


@dataclass
class Change:
    """One recorded change, as writers receive it."""

    actor: object
    action: str  # "<object_name>.<verb>": the audit action and the event type
    obj: object
    before: dict | None
    after: dict | None
    emit_event: bool
    event_data: dict | None
    previous_attributes: dict | None


_WRITERS = []


def register_writer(writer):
    """`writer(change)` runs inside the changing transaction for every recorded change. Apps call
    this from their AppConfig.ready(); registering the same writer twice is a no-op."""
    if writer not in _WRITERS:
        _WRITERS.append(writer)


class Recorder:
    """What the service's block sees: `obj` (the locked row; for a creation the block sets it),
    `before` (the snapshot taken before the block), and `previous_attributes`, which a service may
    set itself (a transition names only the status) instead of the computed difference."""

    def __init__(self, obj, before):
        self.obj = obj
        self.before = before
        self.previous_attributes = None
        self.recorded = None  # the Change, once written


def _lock(obj):
    # Scoped to the row's own organization: the caller resolved it from the credential.
    manager = type(obj)._default_manager
    return manager.select_for_update().filter(organization_id=obj.organization_id).get(pk=obj.pk)


def _default_load(model, pk):
    return model._default_manager.get(pk=pk)


def _difference(before, after):
    return {key: value for key, value in before.items() if key != "updated_at" and after.get(key) != value}


@contextmanager
def record_change(target, *, actor, verb, emit_event=True, snapshot=None, load=None, object_name=None):
    """Record one change of `target`, a model instance (locked and snapshotted here), or a model
    class for a creation (the block sets `change.obj`).

    verb: "created", "updated", "deleted", or the verb of an action ("revoked", "suspended").
    snapshot: obj -> dict for the audit entry of an object that emits no events (keys); else
    the event payload, which is then also what the event carries.
    load: (model, pk) -> instance with what the snapshot reads (a selector with its prefetches).
    emit_event: False for objects whose changes are audited but not published (keys, endpoints).
    actor None (fixtures, commands that predate actors) records nothing.
    """
    if snapshot is not None and emit_event:
        # Published objects are audited as their payload: one shape, declared once.
        raise ValueError("record_change: a custom snapshot is for objects that emit no events")
    model = target if isinstance(target, type) else type(target)
    load = load or _default_load
    name = object_name or payloads.object_name(model)
    describe = snapshot or payloads.build
    with transaction.atomic():
        if isinstance(target, type):
            recorder = Recorder(None, None)
        else:
            locked = _lock(target)
            recorder = Recorder(locked, describe(locked if load is _default_load else load(model, locked.pk)))
        yield recorder
        if recorder.obj is None or actor is None:
            return
        pk = recorder.obj.pk if recorder.obj.pk is not None else target.pk
        deleted = verb == "deleted"
        if deleted:
            recorder.obj.pk = pk  # Django clears it on delete(); the records still name the row
            after = None
        else:
            recorder.obj = load(model, pk)
            after = describe(recorder.obj)
        previous = recorder.previous_attributes
        if previous is None and recorder.before is not None and after is not None:
            previous = _difference(recorder.before, after)
        if verb not in ALWAYS_RECORDED and not previous:
            return
        event_data = None
        if emit_event:
            event_data = {**recorder.before, "deleted": True} if deleted else after
        change = Change(
            actor=actor,
            action=f"{name}.{verb}",
            obj=recorder.obj,
            before=recorder.before,
            after=after,
            emit_event=emit_event,
            event_data=event_data,
            previous_attributes=previous if verb not in ALWAYS_RECORDED else None,
        )
        for writer in _WRITERS:
            writer(change)
        recorder.recorded = change
