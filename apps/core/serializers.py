"""Base serializer for every resource.

- Input: snake_case and the seeds' camelCase (`firstName`, `activationDate`); unknown fields and
  server-owned fields are a 400 `parameter_unknown`.
- Output: snake_case, `object` type name, `livemode`; plain model fields are copied without
  DRF's per-field machinery (orjson encodes datetimes, Decimals and JSON natively), so a page of
  100 rows costs little more than the query.
- `expandable_fields`: `{"name": (SerializerClass or "dotted.path", {"many": bool, "source": ...})}`
  turned on by `expand=name` / `expand[]=name.sub` (depth at most 4).
"""

import copy
import re

from django.db import models
from django.utils.module_loading import import_string
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .errors import InvalidFieldFormat, UnknownParameter
from .references import ReferenceField
from .rows import RowBuilder

# Input limits every resource shares (API contract, "Limits on input"; docs/api.md).
METADATA_MAX_KEYS = 50
METADATA_KEY_MAX_LENGTH = 40
METADATA_VALUE_MAX_LENGTH = 500
TAGS_MAX_COUNT = 50
TAG_MAX_LENGTH = 64
# Free text stored in a TextField (notes, descriptions) without a length of its own.
TEXT_MAX_LENGTH = 10_000

_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")
MAX_EXPAND_DEPTH = 4
# Model fields whose Python value orjson encodes exactly as the API shows it.
_PASSTHROUGH_FIELDS = (
    models.CharField,
    models.TextField,
    models.BooleanField,
    models.IntegerField,
    models.BigIntegerField,
    models.PositiveIntegerField,
    models.DateTimeField,
    models.JSONField,
)


_PLAIN_REPRESENTATIONS = (
    serializers.CharField.to_representation,
    serializers.EmailField.to_representation,
    serializers.BooleanField.to_representation,
    serializers.IntegerField.to_representation,
    serializers.DateTimeField.to_representation,
    serializers.JSONField.to_representation,
    serializers.ModelField.to_representation,
)
# Money is not copied: DRF's DecimalField quantizes to the field's places and never writes an
# exponent ("0E-8"), which `str(Decimal)` would; both list paths go through it.

# Per serializer class: the fields ModelSerializer builds (declared fields deep-copied, model fields
# introspected). That costs about as much as serializing a page, so it is done once per class and
# each serializer gets copies.
_FIELD_PROTOTYPES = {}


def _field_copy(field):
    """A fresh, unbound copy of a prototype field. Plain fields are copied shallowly; fields that
    hold other fields (nested serializers, `child`, `child_relation`) are deep-copied as DRF does,
    so that binding or re-scoping a copy never reaches the prototype or another request."""
    if isinstance(field, serializers.BaseSerializer) or hasattr(field, "child") or hasattr(field, "child_relation"):
        return copy.deepcopy(field)
    return copy.copy(field)


def snake_case(name):
    return _CAMEL.sub(lambda m: "_" + m.group(1).lower(), name)


def parse_expand(params):
    """`expand=a,b.c` and/or `expand[]=a` -> {"a": {}, "b": {"c": {}}}."""
    paths = []
    for key in ("expand", "expand[]"):
        for value in params.getlist(key) if hasattr(params, "getlist") else [params.get(key) or ""]:
            paths.extend(p.strip() for p in (value or "").split(",") if p.strip())
    tree = {}
    for path in paths:
        parts = path.split(".")
        if len(parts) > MAX_EXPAND_DEPTH:
            raise InvalidFieldFormat(f"expand paths are limited to depth {MAX_EXPAND_DEPTH}.", param="expand")
        node = tree
        for part in parts:
            node = node.setdefault(part, {})
    return tree


@extend_schema_field(
    {
        "type": "object",
        "maxProperties": METADATA_MAX_KEYS,
        "additionalProperties": {
            "oneOf": [
                {"type": "string", "maxLength": METADATA_VALUE_MAX_LENGTH, "nullable": True},
                {"type": "number"},
                {"type": "boolean"},
            ],
        },
        "description": "Up to 50 keys of at most 40 characters; values are strings of at most 500 "
        "characters, numbers, booleans or null.",
    }
)
class MetadataField(serializers.JSONField):
    """Stripe's metadata: an object of at most 50 keys of at most 40 characters, each value a
    string of at most 500 characters, a number, a boolean or null."""

    def __init__(self, **kwargs):
        kwargs.pop("encoder", None)
        kwargs.pop("decoder", None)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            self.fail_with("metadata must be an object of keys and values.")
        if len(data) > METADATA_MAX_KEYS:
            self.fail_with(f"metadata holds at most {METADATA_MAX_KEYS} keys.")
        for key, value in data.items():
            if not key or len(key) > METADATA_KEY_MAX_LENGTH:
                self.fail_with(f"metadata keys are 1 to {METADATA_KEY_MAX_LENGTH} characters: {key[:60]!r}.")
            if isinstance(value, str):
                if len(value) > METADATA_VALUE_MAX_LENGTH:
                    self.fail_with(f"metadata[{key}] is longer than {METADATA_VALUE_MAX_LENGTH} characters.")
            elif not (value is None or isinstance(value, bool | int | float)):
                self.fail_with(f"metadata[{key}] must be a string, a number, a boolean or null.")
        return data

    def fail_with(self, message):
        raise serializers.ValidationError(message, code="invalid")


@extend_schema_field(
    {
        "type": "array",
        "maxItems": TAGS_MAX_COUNT,
        "items": {"type": "string", "maxLength": TAG_MAX_LENGTH},
        "description": "Up to 50 tags of at most 64 characters; stored trimmed, unique and sorted.",
    }
)
class TagsField(serializers.JSONField):
    """A list of at most 50 tags of at most 64 characters; stored trimmed, unique and sorted."""

    def __init__(self, **kwargs):
        kwargs.pop("encoder", None)
        kwargs.pop("decoder", None)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, list) or not all(isinstance(tag, str) for tag in data):
            raise serializers.ValidationError("tags must be a list of strings.", code="invalid")
        if len(data) > TAGS_MAX_COUNT:
            raise serializers.ValidationError(f"At most {TAGS_MAX_COUNT} tags.", code="invalid")
        tags = {tag.strip() for tag in data if tag.strip()}
        for tag in tags:
            if len(tag) > TAG_MAX_LENGTH:
                raise serializers.ValidationError(
                    f"Tags are at most {TAG_MAX_LENGTH} characters: {tag[:70]!r}.", code="invalid"
                )
        return sorted(tags)


COMPUTED = object()


class Computed:
    """A field's value computed from the representation: `function(data, columns)`, where `data`
    holds every field that is not computed and `columns[name]` reads one of `columns` (model
    attribute names the representation may not show). A plain function declares no columns."""

    __slots__ = ("function", "columns")

    def __init__(self, function, columns=()):
        self.function = function
        self.columns = tuple(columns)

    @classmethod
    def of(cls, declared):
        return declared if isinstance(declared, cls) else cls(declared)


class _InstanceColumns:
    """`columns[name]` on the instance path: the model attribute (a row holds the same value)."""

    __slots__ = ("instance",)

    def __init__(self, instance):
        self.instance = instance

    def __getitem__(self, name):
        return getattr(self.instance, name)


class ResourceSerializer(serializers.ModelSerializer):
    object_name = None  # the `object` value, e.g. "customer"
    expandable_fields = {}
    # Fields computed, on every path (instances and rows, apps.core.rows), from the rest of the
    # representation and, if declared, model columns not shown: {"name": fn | Computed}.
    computed_fields = {}
    # A serializer whose list pages cannot be built from rows says why here; without a reason,
    # a list without a row builder is an error (apps.core.rows.report_missing_row_builder).
    row_builder_opt_out = None
    # Fields a client may send that are not model fields written directly (nested writes).
    extra_input_fields = ()

    def __init__(self, *args, expand=None, **kwargs):
        super().__init__(*args, **kwargs)
        expand = expand if expand is not None else (self.context.get("expand") or {})
        self.expanded = frozenset(expand)
        for name, sub in expand.items():
            if name not in self.expandable_fields:
                raise InvalidFieldFormat(f"{name!r} cannot be expanded.", param="expand")
            serializer_class, options = self.expandable_fields[name]
            if isinstance(serializer_class, str):
                serializer_class = import_string(serializer_class)
            self.fields[name] = serializer_class(read_only=True, expand=sub, context=self.context, **options)
        self._output_steps = None

    def build_standard_field(self, field_name, model_field):
        """The shared input limits, by declaration: a model field named `metadata` or `tags`
        gets the contract's rules, and free text a maximum length."""
        field_class, field_kwargs = super().build_standard_field(field_name, model_field)
        if isinstance(model_field, models.JSONField) and field_name in ("metadata", "tags"):
            field_class = MetadataField if field_name == "metadata" else TagsField
        elif isinstance(model_field, models.TextField) and "max_length" not in field_kwargs:
            field_kwargs["max_length"] = TEXT_MAX_LENGTH
        return field_class, field_kwargs

    def get_fields(self):
        cls = type(self)
        prototypes = _FIELD_PROTOTYPES.get(cls)
        if prototypes is None:
            prototypes = _FIELD_PROTOTYPES[cls] = super().get_fields()
        return {name: _field_copy(field) for name, field in prototypes.items()}

    # Output -------------------------------------------------------------------------------

    def column_for(self, field):
        """The model column `field` shows as it is (no conversion), or None."""
        source = field.source
        if "." in source or source == "*" or isinstance(field, serializers.BaseSerializer):
            return None
        try:
            model_field = self.Meta.model._meta.get_field(source)
        except Exception:
            return None
        if not isinstance(model_field, _PASSTHROUGH_FIELDS) or model_field.is_relation:
            return None
        if isinstance(field, serializers.ChoiceField) or type(field).to_representation in _PLAIN_REPRESENTATIONS:
            # A stored choice is shown as stored; the others are the value orjson writes.
            return model_field.attname
        return None

    def _steps(self):
        """[(name, attribute, field or None or COMPUTED)]: None means copy the attribute as it is;
        COMPUTED fields are filled in after the others, in their place."""
        if self._output_steps is None:
            computed = self.computed_fields
            self._output_steps = [
                (
                    field.field_name,
                    field.source,
                    COMPUTED if field.field_name in computed else None if self.column_for(field) else field,
                )
                for field in self._readable_fields
            ]
            self._computed_steps = self.computed_steps()
        return self._output_steps

    def computed_steps(self):
        """[(name, Computed, shown)] for the readable computed fields: `shown` is "id" for a
        reference (the computed object's id), else None (the value as computed)."""
        steps = []
        for field in self._readable_fields:
            declared = self.computed_fields.get(field.field_name)
            if declared is not None:
                shown = "id" if isinstance(field, ReferenceField) else None
                steps.append((field.field_name, Computed.of(declared), shown))
        return steps

    def row_builder(self, queryset):
        """A RowBuilder building this serializer's representation from `.values()` rows of
        `queryset`, or None when some field needs model instances."""
        return RowBuilder.build(self, queryset)

    def to_representation(self, instance):
        data = {}
        if self.object_name:
            data["object"] = self.object_name
        for name, attribute, field in self._output_steps or self._steps():
            if field is None:
                data[name] = getattr(instance, attribute)
            elif field is COMPUTED:
                data[name] = None  # keeps the field's place; computed below
            else:
                value = field.get_attribute(instance)
                data[name] = None if value is None else field.to_representation(value)
        if self._computed_steps:
            columns = _InstanceColumns(instance)
            for name, computed, shown in self._computed_steps:
                value = computed.function(data, columns)
                data[name] = value[shown] if shown is not None and value is not None else value
        if "livemode" not in data and hasattr(instance, "organization_id"):
            livemode = self._livemode()
            if livemode is not None:
                data["livemode"] = livemode
        return data

    # A subclass overriding to_representation loses the mark: rows cannot know its output.
    to_representation.builds_from_fields = True

    def _livemode(self):
        """The actor's mode, looked up once per serializer (a page asks for it on every row)."""
        try:
            return self._cached_livemode
        except AttributeError:
            actor = self.context.get("actor")
            self._cached_livemode = None if actor is None else actor.organization.livemode
            return self._cached_livemode

    # Input --------------------------------------------------------------------------------

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise InvalidFieldFormat("The request body must be a JSON object.")
        writable = {name for name, field in self.fields.items() if not field.read_only}
        writable.update(self.extra_input_fields)
        normalized = {}
        for key, value in data.items():
            name = key if key in writable else snake_case(key)
            if name not in writable:
                if name in self.fields:
                    raise UnknownParameter(f"{key} is set by the server and cannot be written.", param=key)
                raise UnknownParameter(f"Received unknown parameter: {key}", param=key)
            normalized[name] = value
        _check_json_types(self.fields, normalized)
        return super().to_internal_value(normalized)


# The JSON types each kind of field takes. DRF coerces (`0` into "0" or False, "5" into 5); the
# API takes what its schema says and no more, so a client's type mistake is an error, not a guess.
_JSON_TYPES = (
    (serializers.BooleanField, (bool,), "a boolean"),
    (serializers.IntegerField, (int,), "an integer"),
    (serializers.FloatField, (int, float), "a number"),
    # Money is a decimal string; a JSON integer is exact too.
    (serializers.DecimalField, (str, int), "a decimal string"),
    (serializers.CharField, (str,), "a string"),
    (serializers.ChoiceField, (str,), "a string"),
    (serializers.DateTimeField, (str,), "an ISO 8601 date-time string"),
    (serializers.DateField, (str,), "an ISO 8601 date string"),
    (serializers.ListField, (list,), "a list"),
)


def _check_json_types(fields, data):
    errors = {}
    for name, value in data.items():
        field = fields.get(name)
        message = None if field is None else _type_error(field, value)
        if message:
            errors[name] = [serializers.ErrorDetail(message, code="invalid")]
    if errors:
        raise serializers.ValidationError(errors)


def _type_error(field, value):
    """What is wrong with the JSON type of `value` for `field`, or None. Null is left to the
    field's own rule (allow_null); nested serializers check their own fields."""
    if value is None:
        return None
    for field_class, types, described in _JSON_TYPES:
        if isinstance(field, field_class):
            if not isinstance(value, types) or (bool not in types and isinstance(value, bool)):
                return f"Expected {described}."
            if isinstance(field, serializers.ListField):
                for index, item in enumerate(value):
                    message = _type_error(field.child, item)
                    if message:
                        return f"Item {index}: {message}"
            return None
    return None


def scoped_related_querysets(serializer, organization):
    """Related-field querysets limited to the organization (the classic cross-tenant leak)."""
    for field in serializer.fields.values():
        target = getattr(field, "child_relation", field)
        queryset = getattr(target, "queryset", None)
        if queryset is not None and hasattr(queryset.model, "organization_id"):
            target.queryset = queryset.filter(organization=organization)
