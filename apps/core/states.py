"""State machines: a transition table per stateful model and the one `transition()` helper.

A domain app declares its tables in its own `states.py`, imported by its AppConfig.ready():

    states.register("crm.Customer", StateMachine(
        start=("prospect", "active"),
        moves={"prospect": ("active",), "active": ("inactive", "suspended"), ...},
    ))

`transition(obj, to, *, actor)` is the only way a status changes (STYLE.md, "State machines"):
it locks the row, returns quietly when the row is already in `to` (retries and double clicks
are safe), raises 409 RESOURCE_CONFLICT naming the current status and the allowed targets on an
illegal move (never a silent no-op), and otherwise saves the status and writes, in the same
transaction, a StatusChange row (`GET /v1/<c>/<id>/history`), the audit entry and the event
`<object>.<status>` (through apps.core.changes, which also reloads the row).

A model with a table gets `history` and `can_transition` on its API with no code of its own
(apps.core.views), and its status is never written by PUT/PATCH except through `transition()`.
"""

from dataclasses import dataclass

from django.db import transaction

from .changes import record_change
from .errors import Conflict, ValidationFailed
from .models import StatusChange


@dataclass(frozen=True)
class StateMachine:
    moves: dict  # status -> the statuses it may move to
    start: tuple = ()  # statuses a new object may be created in (the model default is always fine)
    field: str = "status"

    def __post_init__(self):
        # Plain strings (TextChoices members compare equal, but the 409's detail is JSON).
        object.__setattr__(self, "start", tuple(str(status) for status in self.start))
        moves = {str(source): tuple(str(t) for t in targets) for source, targets in self.moves.items()}
        object.__setattr__(self, "moves", moves)

    @property
    def statuses(self):
        names = dict.fromkeys(self.start)
        for source, targets in self.moves.items():
            names.setdefault(source)
            names.update(dict.fromkeys(targets))
        return tuple(names)

    def targets(self, current):
        return list(self.moves.get(current, ()))

    def allows(self, current, to):
        return to in self.moves.get(current, ())


_MACHINES = {}  # model label -> StateMachine


def register(label, machine):
    """Attach a transition table to a model ("app.Model"); one per model."""
    if label in _MACHINES and _MACHINES[label] != machine:
        raise ValueError(f"{label} already has a state machine")
    _MACHINES[label] = machine


def machine_for(obj_or_model):
    """The model's StateMachine, or None for a model without one."""
    return _MACHINES.get(obj_or_model._meta.label)


def check_start(model, status):
    """422 naming the field unless `status` is one a new object may start in."""
    machine = machine_for(model)
    if machine is not None and status not in machine.start:
        raise ValidationFailed(
            f"{machine.field}: a new {model._meta.verbose_name} starts as one of {', '.join(machine.start)}, "
            f"not {status!r}.",
            param=machine.field,
            detail={machine.field: [f"Must be one of {', '.join(machine.start)} on creation."]},
        )


def _illegal(machine, current, to, label):
    allowed = machine.targets(current)
    options = f"it can move to {', '.join(allowed)}" if allowed else "it cannot move from there"
    return Conflict(
        f"Cannot move this {label} from {current!r} to {to!r}: {options}.",
        param=machine.field,
        detail={"current_status": current, "allowed": allowed, "requested": to},
    )


def transition(obj, to, *, actor, reason=None, changes=None, snapshot=None, load=None, emit_event=True):
    """Move `obj` to status `to`. Returns the row as it is now (reloaded).

    changes: other fields saved together with the move (an endpoint's `disabled_at`), set only
    when the move happens. snapshot/load/emit_event: as apps.core.changes.record_change.
    """
    machine = machine_for(obj)
    to = str(to)  # a TextChoices member names the same status; the event type needs the value
    if machine is None:
        raise LookupError(f"{obj._meta.label} has no state machine (apps.core.states.register)")
    if to not in machine.statuses:
        raise ValidationFailed(
            f"{machine.field}: {to!r} is not a status; one of {', '.join(machine.statuses)}.", param=machine.field
        )
    with transaction.atomic():
        with record_change(obj, actor=actor, verb=to, snapshot=snapshot, load=load, emit_event=emit_event) as change:
            row = change.obj
            current = getattr(row, machine.field)
            if current == to:
                return change.obj  # already there: nothing to record (the recorder finds no difference)
            if not machine.allows(current, to):
                raise _illegal(machine, current, to, obj._meta.verbose_name)
            setattr(row, machine.field, to)
            for name, value in (changes or {}).items():
                setattr(row, name, value)
            row.save(update_fields=[machine.field, *(changes or {}), "updated_at"])
            StatusChange.objects.create(
                organization=row.organization,
                object_type=row._meta.label,
                object_id=str(row.pk),
                field=machine.field,
                from_status=current,
                to_status=to,
                reason=(reason or "")[:500],
                actor_type=getattr(actor, "actor_type", "") or "",
                actor_id=getattr(actor, "actor_id", "") or "",
                request_id=getattr(actor, "request_id", "") or "",
            )
            change.previous_attributes = {machine.field: current}
        return change.obj


def status_history(obj):
    """The object's status changes (newest first is the API's default sort)."""
    return StatusChange.objects.filter(
        organization_id=obj.organization_id, object_type=obj._meta.label, object_id=str(obj.pk)
    )
