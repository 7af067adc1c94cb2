"""What every stateful resource answers with no code of its own (apps.core.views switches it on
when the viewset's model has a state machine, apps.core.states):

- `GET /v1/<c>/<id>/history`: the object's status changes, newest first, paged like any list;
- `GET /v1/<c>/<id>/can_transition?target=<status>`: whether that move is in the table now.

The history's view is built in apps.core.views (it is a viewset): views imports this module,
never the other way round.
"""

from rest_framework import serializers

from .errors import BadRequest
from .filters import DATE_OPS, ResourceFilterSet
from .models import StatusChange
from .serializers import ResourceSerializer
from .states import machine_for

# The names of the viewset actions this module serves (hidden on resources without a table).
STATE_ACTIONS = ("history", "can_transition")


class StatusChangeSerializer(ResourceSerializer):
    object_name = "status_change"

    class Meta:
        model = StatusChange
        fields = [
            "id",
            "object_type",
            "object_id",
            "field",
            "from_status",
            "to_status",
            "reason",
            "actor_type",
            "actor_id",
            "request_id",
            "created_at",
        ]
        read_only_fields = fields


class StatusChangeFilterSet(ResourceFilterSet):
    class Meta:
        model = StatusChange
        fields = {"created_at": DATE_OPS}


class TransitionCheckSerializer(serializers.Serializer):
    """The answer of `GET /v1/<c>/<id>/can_transition?target=<status>` (for the schema)."""

    object = serializers.CharField(default="transition_check")
    current_status = serializers.CharField()
    target = serializers.CharField()
    allowed = serializers.BooleanField()
    allowed_targets = serializers.ListField(child=serializers.CharField())


def transition_check(obj, target):
    """The `can_transition` answer for `obj` and the requested status."""
    machine = machine_for(obj)
    if not target:
        raise BadRequest("Name the status to check with `target`.", param="target")
    target = target.lower()
    if target not in machine.statuses:
        raise BadRequest(f"Unknown target status {target!r}; one of {', '.join(machine.statuses)}.", param="target")
    current = getattr(obj, machine.field)
    return {
        "object": "transition_check",
        "current_status": current,
        "target": target,
        # A move to the current status is not a move (the action itself would return quietly).
        "allowed": machine.allows(current, target),
        "allowed_targets": machine.targets(current),
    }
