from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers


@extend_schema_field({"type": "string", "nullable": True, "description": "an object id; expandable"})
class ReferenceField(serializers.Field):
    """A related object shown as its id; `expand=<name>` swaps in the whole object."""

    def __init__(self, **kwargs):
        kwargs["read_only"] = True
        super().__init__(**kwargs)

    def to_representation(self, value):
        return value.pk
