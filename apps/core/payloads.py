"""Event payloads: one declared function per object type and API version.

An event's `data.object` is what webhook receivers parse, long after the API serializer that once
produced the same shape has moved on. So payloads are not the serializer's output: each object
type declares the function that builds its payload, per `api_version`:

    @payload("crm.Customer", "customer", api_version="2024-01-01")
    def customer_payload(customer): ...

A change to a payload's shape is a new API version: add a new function with the new
`api_version` beside the old one and keep the old one unchanged (receivers pinned to it still
get what they parse). `build()` picks the newest function not newer than the version asked for
(the configured STATESET_API_VERSION by default).
"""

from dataclasses import dataclass, field

from django.conf import settings


@dataclass
class PayloadType:
    object_name: str  # the event's object type: "customer" -> `customer.created`
    versions: dict = field(default_factory=dict)  # api_version -> function(obj) -> dict


_TYPES = {}  # model label ("crm.Customer") -> PayloadType


def payload(label, object_name, *, api_version):
    """Declare `function(obj) -> dict` as the payload of `label`'s objects from `api_version` on."""

    def declare(function):
        kind = _TYPES.setdefault(label, PayloadType(object_name))
        if kind.object_name != object_name:
            raise ValueError(f"{label} is already the {kind.object_name!r} object type")
        if api_version in kind.versions:
            raise ValueError(f"{label} already has a payload for API version {api_version}")
        kind.versions[api_version] = function
        return function

    return declare


def _label(obj_or_model):
    return obj_or_model._meta.label


def object_name(obj_or_model):
    """The object type events and audit entries name (`customer`, `webhook_endpoint`)."""
    kind = _TYPES.get(_label(obj_or_model))
    return kind.object_name if kind else obj_or_model._meta.model_name


def has_payload(obj_or_model):
    return _label(obj_or_model) in _TYPES


def build(obj, *, api_version=None):
    """The payload of `obj` in `api_version` (ISO dates compare as strings)."""
    label = _label(obj)
    kind = _TYPES.get(label)
    if kind is None:
        raise LookupError(f"No event payload is declared for {label} (apps.core.payloads.payload)")
    wanted = api_version or settings.STATESET_API_VERSION
    versions = [version for version in kind.versions if version <= wanted]
    if not versions:
        raise LookupError(f"{label} has no payload for API version {wanted}")
    return kind.versions[max(versions)](obj)
