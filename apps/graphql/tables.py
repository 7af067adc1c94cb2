"""The tables GraphQL serves, read from the resource registry (apps.core.routing).

A table is a resource seen the way Hasura sees it: named by its model's plural
(`webhook_endpoints` for the `webhooks` collection), its columns are the serializer's readable fields
that are model columns (a foreign key shown as an id becomes `<name>_id`, as in the database), and
its relationships are the model's foreign keys between tables, both ways (a customer's
`addresses`, a delivery's `event`), and its computed fields the serializer's `computed_fields`
(shown as REST shows them, built by the serializer's row builder). A nested serializer's model (a
customer's addresses) is a table of its own when the policy table has a row for it. Nothing here is
written per resource: a collection added later appears with no GraphQL code of its own.
"""

import threading
from dataclasses import dataclass, field

from django.core.exceptions import FieldDoesNotExist
from django.db import models
from rest_framework import serializers

from apps.core import policy
from apps.core.references import ReferenceField
from apps.core.routing import load_collections
from apps.core.rows import cached_row_builder

from .scalars import SERIALIZER_FIELD_SCALARS


@dataclass(frozen=True)
class Column:
    name: str  # the GraphQL field
    lookup: str  # the ORM path: "email", "event__type", "customer_id"
    type_name: str  # a scalar of apps.graphql.scalars
    convert: object = None  # value -> wire value, for values the database does not give as shown


@dataclass(frozen=True)
class Relationship:
    name: str
    target: str  # the target table's name
    many: bool  # an array relationship (the target's rows pointing here) or an object one
    local: str  # this table's column holding the key
    remote: str  # the target's column matched against it


@dataclass(frozen=True)
class ComputedField:
    name: str
    type_name: str  # a scalar of apps.graphql.scalars


@dataclass
class Table:
    name: str
    model: type
    serializer_class: type
    selector: object = None  # the app's `<entity>_list(*, organization)`, when it has one
    # The collection's ResourceViewSet (its services, serializer and actions: the mutations);
    # None for a nested model shown only through its parent.
    viewset: object = None
    columns: dict = field(default_factory=dict)
    relationships: dict = field(default_factory=dict)
    computed: dict = field(default_factory=dict)

    @property
    def label(self):
        return self.model._meta.label

    @property
    def pk(self):
        return self.model._meta.pk.attname

    def readable(self, actor):
        """The rows `actor` may read: the policy table's row filter and tenancy (raises the
        contract's 401/403 errors when the role has no read rule)."""
        policy.authorize(actor, self.label, "read")
        organization = actor.organization
        if self.selector is not None:
            queryset = self.selector(organization=organization)
        else:
            queryset = self.model._default_manager.for_org(organization)
        # Rows are read with .values(): the selector's prefetches would be dropped anyway.
        return policy.scope_queryset(actor, self.label, "read", queryset).prefetch_related(None)

    def _template(self, organization):
        """The rows as the collection's list reads them (the selector's prefetches, whose order
        decides what a computed field such as a default address picks)."""
        if self.selector is not None:
            return self.selector(organization=organization)
        return self.model._default_manager.for_org(organization)

    def representations(self, actor, pks):
        """{pk: the REST representation} of rows `actor` has already read: built from rows by the
        serializer's row builder (one query, and one per nested list), as the REST list builds it."""
        template = self._template(actor.organization)
        builder = cached_row_builder(
            self.serializer_class, {}, template, lambda: self.serializer_class(context={"expand": {}, "actor": actor})
        )
        if builder is not None:
            rows = list(builder.values(template.filter(pk__in=pks)))
            shown = builder.represent(rows, livemode=actor.organization.livemode)
            return {row[builder.pk_attname]: data for row, data in zip(rows, shown, strict=True)}
        instances = list(template.filter(pk__in=pks))  # a serializer that opted out of row builders
        data = self.serializer_class(instances, many=True, context={"expand": {}, "actor": actor}).data
        return {instance.pk: item for instance, item in zip(instances, data, strict=True)}


def table_name(model):
    """The model's plural in snake case: the name its table has in the database's vocabulary
    (Hasura names tables so; `webhook endpoints` -> `webhook_endpoints`)."""
    return str(model._meta.verbose_name_plural).strip().lower().replace(" ", "_").replace("-", "_")


_SCALARS = (
    (models.BooleanField, "Boolean"),
    (models.DecimalField, "numeric"),
    (models.FloatField, "Float"),
    (models.BigIntegerField, "bigint"),
    (models.IntegerField, "Int"),  # also Positive*/Small* fields, which subclass it
    (models.DateTimeField, "timestamptz"),
    (models.DateField, "date"),
    (models.JSONField, "jsonb"),
)


def _scalar(model_field):
    for field_class, name in _SCALARS:
        if isinstance(model_field, field_class):
            return name
    return "String"


def _resolve(model, source):
    """(model field, ORM lookup) for a serializer field's dotted source, or None."""
    parts = source.split(".")
    lookup = []
    for index, part in enumerate(parts):
        try:
            model_field = model._meta.get_field(part)
        except FieldDoesNotExist:
            return None
        last = index == len(parts) - 1
        if model_field.is_relation and not last:
            if not (model_field.many_to_one or model_field.one_to_one) or not model_field.concrete:
                return None  # a to-many path has no single value
            lookup.append(model_field.name)
            model = model_field.related_model
            continue
        if model_field.is_relation and not (
            model_field.concrete and (model_field.many_to_one or model_field.one_to_one)
        ):
            return None
        lookup.append(model_field.attname if model_field.is_relation else model_field.name)
        return model_field, "__".join(lookup)
    return None


def _converter(serializer_field, type_name):
    """Datetimes, decimals and dates are shown as the REST representation shows them."""
    if type_name in ("timestamptz", "numeric", "date"):
        return serializer_field.to_representation
    return None


def _columns(model, serializer):
    columns = {}
    computed = getattr(serializer, "computed_fields", {}) or {}
    for serializer_field in serializer._readable_fields:
        name = serializer_field.field_name
        if name in computed or isinstance(serializer_field, serializers.BaseSerializer):
            continue  # computed values and nested lists are not columns (nested models are tables)
        if serializer_field.source == "*":
            continue
        resolved = _resolve(model, serializer_field.source)
        if resolved is None:
            continue
        model_field, lookup = resolved
        if model_field.is_relation:
            # Shown as the key, named as the database names it; the name is the relationship's.
            name = model_field.attname if "__" not in lookup else name
            columns[name] = Column(name, lookup, "String")
            continue
        type_name = _scalar(model_field)
        columns[name] = Column(name, lookup, type_name, _converter(serializer_field, type_name))
    return columns


# Serializer fields -> the scalar of a computed value (the first match wins: subclasses first).
_COMPUTED_SCALARS = (
    (ReferenceField, "String"),  # the related object's id, as REST shows it unexpanded
    *SERIALIZER_FIELD_SCALARS,
    (serializers.CharField, "String"),
    (serializers.ChoiceField, "String"),
)


def _computed(serializer, taken):
    """{name: ComputedField} for the serializer's readable computed fields; any value a scalar
    does not describe (an object, a list) is jsonb."""
    declared = getattr(serializer, "computed_fields", {}) or {}
    found = {}
    for serializer_field in serializer._readable_fields:
        name = serializer_field.field_name
        if name not in declared or name in taken:
            continue
        type_name = next(
            (scalar for field_class, scalar in _COMPUTED_SCALARS if isinstance(serializer_field, field_class)), "jsonb"
        )
        found[name] = ComputedField(name, type_name)
    return found


def _nested_tables(serializer, known):
    """Tables for nested serializers' models the policy table governs (a customer's addresses)."""
    for serializer_field in serializer._readable_fields:
        child = getattr(serializer_field, "child", None)
        if isinstance(serializer_field, serializers.ListSerializer) and isinstance(child, serializers.ModelSerializer):
            model = child.Meta.model
            if model not in known and model._meta.label in policy.POLICIES:
                yield model, type(child)


def _relationships(table, by_model):
    relationships = {}
    for model_field in table.model._meta.get_fields():
        target = by_model.get(getattr(model_field, "related_model", None))
        if target is None or not model_field.is_relation:
            continue
        if model_field.concrete and model_field.many_to_one:
            relationships[model_field.name] = Relationship(
                model_field.name, target.name, False, model_field.attname, target.pk
            )
        elif model_field.one_to_many and model_field.auto_created:
            relationships[model_field.get_accessor_name()] = Relationship(
                model_field.get_accessor_name(), target.name, True, table.pk, model_field.field.attname
            )
    return relationships


def discover(viewsets=None):
    """{table name: Table} for every registered collection (or the given viewsets) and the nested
    models they show."""
    if viewsets is None:
        viewsets = [viewset for _prefix, viewset, _basename in load_collections().canonical.registry]
    tables = {}
    by_model = {}
    pending = []
    for viewset in viewsets:
        model = getattr(viewset, "model", None)
        if model is None or getattr(viewset, "serializer_class", None) is None:
            continue
        pending.append((model, viewset.serializer_class, viewset.selector, viewset))
    while pending:
        model, serializer_class, selector, viewset = pending.pop(0)
        if model in by_model:
            continue
        serializer = serializer_class()
        table = Table(table_name(model), model, serializer_class, selector, viewset, _columns(model, serializer))
        tables[table.name] = by_model[model] = table
        pending.extend(
            (nested, nested_class, None, None) for nested, nested_class in _nested_tables(serializer, by_model)
        )
    for table in tables.values():
        table.relationships = _relationships(table, by_model)
        for name in table.relationships:
            table.columns.pop(name, None)  # a relationship takes its name over a same-named column
        taken = set(table.columns) | set(table.relationships)
        taken.update(f"{name}_aggregate" for name in table.relationships)
        table.computed = _computed(table.serializer_class(), taken)
    return tables


_lock = threading.Lock()
_tables = None


def all_tables():
    global _tables
    with _lock:
        if _tables is None:
            _tables = discover()
    return _tables
