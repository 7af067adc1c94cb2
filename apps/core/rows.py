"""List pages built from `.values()` rows instead of model instances: the one way every list
endpoint serializes a page.

A page of 100 customers with their addresses is, through model instances, 200 `Model.__init__`
calls, a related manager per row and DRF's per-field attribute walk: most of the request's time.
A `RowBuilder` is compiled once from a `ResourceSerializer` (with the request's expansions) and
builds the very same representation from plain rows. Each readable field is one step:

- a model column shown as stored (strings, numbers, booleans, datetimes, JSON, choices) is
  copied; a column DRF converts (money as a decimal string, an IP address, a list field, a
  `CharField(source="x_id")`) goes through the serializer field's own `to_representation`;
- a foreign key shown as an id (`ReferenceField(source="customer")`, `PrimaryKeyRelatedField`)
  is the `customer_id` column; a column across foreign keys (`source="event.type"`) is joined;
- an expanded foreign key (`expand=customer`) is the related serializer's own builder, over rows
  of the related model fetched in one query per page;
- a nested `many=True` serializer over a one-to-many relation (line items) is one query per
  page through the parent queryset's `Prefetch` when it has one (its filters and ordering
  apply); the child's builder may nest again (line items with their own children);
- a computed field (`ResourceSerializer.computed_fields`) runs the same function the instance
  path runs, after the other fields.

A serializer that cannot be built from rows says so with `row_builder_opt_out = "reason"`; any other
serializer without a builder is a bug (`report_missing_row_builder`), and apps/core/tests/test_row_builders.py
compares both paths for every registered list resource.
"""

import logging
import os
import weakref

from django.conf import settings
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.db import connections
from django.db.models import Field, ForeignKey, Lookup, Prefetch
from rest_framework import serializers
from rest_framework.fields import Field as SerializerField

from .prepared import PreparedValues
from .references import ReferenceField

logger = logging.getLogger(__name__)

# Per queryset (a selector's Prefetch queryset lives as long as its view class) and column list:
# the rows-of-a-page query, compiled once (PostgreSQL).
_PREPARED = weakref.WeakKeyDictionary()


class _Related:
    """Rows of a related model for a whole page: the children of the page's rows (`key` is
    their foreign key to the parent) or the objects the page's rows point at (`key` is the
    related model's primary key)."""

    __slots__ = ("name", "builder", "key", "row_key", "queryset")

    def __init__(self, name, builder, key, row_key, queryset):
        self.name = name
        self.builder = builder
        self.key = key  # the related rows' column matched against the page's values
        self.row_key = row_key  # the page rows' column holding those values
        self.queryset = queryset

    def rows_of(self, values):
        """The related rows whose `key` is in `values`, holding the builder's columns."""
        key, queryset = self.key, self.queryset
        if connections[queryset.db].vendor != "postgresql":
            return list(self.builder.values(queryset.filter(**{f"{key}__in": values}), (key,)))
        by_columns = _PREPARED.setdefault(queryset, {})
        cache_key = (key, tuple(self.builder.columns))
        prepared = by_columns.get(cache_key)
        if prepared is None:
            # The builder holds the queryset weakly, or the cache entry would keep its key alive.
            template = weakref.ref(queryset)
            columns = list(cache_key[1]) if key in cache_key[1] else [*cache_key[1], key]

            def build(ids):
                return template().filter(**{f"{key}__any_of": ids}).prefetch_related(None).values(*columns)

            prepared = by_columns[cache_key] = PreparedValues(build, array=True)
        return prepared(values, using=queryset.db)


class RowBuilder:
    def __init__(self, model, object_name, has_organization):
        self.model = model
        self.object_name = object_name
        self.has_organization = has_organization  # tenant rows show `livemode`
        self.pk_attname = model._meta.pk.attname
        self.columns = [self.pk_attname]
        self.steps = []  # (output name, kind, payload)
        self.nested = []  # _Related children, grouped by parent
        self.expanded = []  # _Related objects the rows point at
        self.computed = []  # (name, Computed, shown)
        self.converters = {}
        self._build = None

    def _column(self, attname):
        if attname not in self.columns:
            self.columns.append(attname)
        return attname

    # Compilation ---------------------------------------------------------------------------

    @classmethod
    def build(cls, serializer, parent_queryset=None):
        """The builder for `serializer` (a ResourceSerializer instance), or None."""
        if not getattr(type(serializer).to_representation, "builds_from_fields", False):
            return None  # a representation of its own: only the serializer knows it
        model = serializer.Meta.model
        has_organization = any(f.attname == "organization_id" for f in model._meta.concrete_fields)
        builder = cls(model, serializer.object_name, has_organization)
        computed = {name: (computed, shown) for name, computed, shown in serializer.computed_steps()}
        prefetches = _prefetches(parent_queryset)
        for field in serializer._readable_fields:
            name = field.field_name
            if name in computed:
                step, shown = computed[name]
                for column in step.columns:
                    builder._column(column)
                builder.computed.append((name, step, shown))
                builder.steps.append((name, "computed", None))
            elif not builder._add(serializer, field, model, prefetches):
                return None
        return builder

    def _add(self, serializer, field, model, prefetches):
        """Adds the step showing `field`; False when rows cannot show it."""
        name, source = field.field_name, field.source
        if isinstance(field, serializers.ListSerializer):
            nested = self._nested(field, source, model, prefetches)
            if nested is not None:
                self.nested.append(nested)
                self.steps.append((name, "nested", nested))
            return nested is not None
        if isinstance(field, serializers.BaseSerializer):
            expansion = self._expansion(field, source, model)
            if expansion is not None:
                self.expanded.append(expansion)
                self.steps.append((name, "expanded", expansion))
            return expansion is not None
        if serializer.column_for(field):
            self.steps.append((name, "column", self._column(serializer.column_for(field))))
            return True
        # A reference or primary-key field shows the related object's pk: the foreign key column.
        shows_pk = isinstance(field, ReferenceField) or (
            isinstance(field, serializers.PrimaryKeyRelatedField) and field.pk_field is None
        )
        if source == "*" or not shows_pk and type(field).get_attribute is not SerializerField.get_attribute:
            return False  # a method field or one reading the whole object
        target = _column_path(model, field.source_attrs)
        if target is None:
            return False
        column, model_field = target
        if shows_pk and not model_field.is_relation:
            return False
        if model_field.is_relation:
            # Other fields show a foreign key only when named by its column (`x_id`).
            if not (shows_pk or source.rsplit(".", 1)[-1] == model_field.attname):
                return False
            if shows_pk:
                self.steps.append((name, "column", self._column(column)))
                return True
        self.converters[name] = field.to_representation
        self.steps.append((name, "convert", self._column(column)))
        return True

    @classmethod
    def _nested(cls, field, source, model, prefetches):
        try:
            relation = model._meta.get_field(source)
        except FieldDoesNotExist:
            return None
        if not (relation.one_to_many and relation.auto_created) or not hasattr(field.child, "column_for"):
            return None
        prefetch = prefetches.get(source)
        queryset = prefetch.queryset if prefetch is not None and prefetch.queryset is not None else None
        if queryset is None:
            queryset = relation.related_model._default_manager.all()
        # The children's own children come through the child queryset's prefetches, if any.
        child_builder = cls.build(field.child, queryset)
        if child_builder is None:
            return None
        fk = relation.field.attname
        return _Related(source, child_builder, fk, None, queryset)

    @classmethod
    def _expansion(cls, field, source, model):
        """An expanded forward foreign key: the related serializer's builder over its model's rows."""
        try:
            relation = model._meta.get_field(source)
        except FieldDoesNotExist:
            return None
        if not (relation.many_to_one or relation.one_to_one) or relation.auto_created:
            return None
        if not hasattr(field, "column_for") or field.Meta.model is not relation.related_model:
            return None
        if relation.target_field is not relation.related_model._meta.pk:
            return None  # a foreign key to another column than the primary key
        # The instance path reads the related object through the base manager, unfiltered.
        queryset = relation.related_model._base_manager.all()
        builder = cls.build(field, queryset)
        if builder is None:
            return None
        return _Related(source, builder, builder.pk_attname, relation.attname, queryset)

    # Execution -----------------------------------------------------------------------------

    def values(self, queryset, extra_columns=()):
        """The queryset as rows holding this builder's columns (and `extra_columns`)."""
        columns = list(self.columns)
        for column in extra_columns:
            if column not in columns:
                columns.append(column)
        return queryset.prefetch_related(None).values(*columns)

    def represent(self, rows, livemode=None):
        """The API representation of each row (in order), each nested relation and expansion in
        one query for the page; tenant rows show `livemode` (the actor's mode)."""
        related = {}
        if rows and self.nested:
            ids = [row[self.pk_attname] for row in rows]
            for nested in self.nested:
                fk = nested.key
                grouped = {}
                child_rows = nested.rows_of(ids)
                for child, data in zip(child_rows, nested.builder.represent(child_rows, livemode), strict=True):
                    grouped.setdefault(child[fk], []).append(data)
                related[nested.name] = grouped
        if rows and self.expanded:
            for expansion in self.expanded:
                ids = list({row[expansion.row_key] for row in rows} - {None})
                targets = expansion.rows_of(ids) if ids else []
                pk = expansion.key
                shown = expansion.builder.represent(targets, livemode)
                related[expansion.name] = {target[pk]: data for target, data in zip(targets, shown, strict=True)}
        build = self._builder()
        livemode = livemode if self.has_organization else None
        return [build(row, related, livemode) for row in rows]

    def _builder(self):
        """`build(row, related, livemode) -> representation`, generated once per builder: one dict
        display in the fields' order instead of a loop over the steps for every row."""
        if self._build is not None:
            return self._build
        namespace = {}
        lines = ["def build(row, related, livemode):", "    data = {"]
        if self.object_name:
            lines.append(f"        'object': {self.object_name!r},")
        for index, (name, kind, payload) in enumerate(self.steps):
            if kind == "column":
                value = f"row[{payload!r}]"
            elif kind == "convert":
                namespace[f"convert_{index}"] = self.converters[name]
                value = f"None if (value := row[{payload!r}]) is None else convert_{index}(value)"
            elif kind == "nested":
                value = f"related[{payload.name!r}].get(row[{self.pk_attname!r}]) or []"
            elif kind == "expanded":
                value = f"related[{payload.name!r}].get(row[{payload.row_key!r}])"
            else:
                value = "None"  # computed below, in the field's place
            lines.append(f"        {name!r}: {value},")
        lines.append("    }")
        for index, (name, computed, shown) in enumerate(self.computed):
            namespace[f"compute_{index}"] = computed.function
            lines.append(f"    value = compute_{index}(data, row)")
            if shown is None:
                lines.append(f"    data[{name!r}] = value")
            else:
                lines.append(f"    data[{name!r}] = None if value is None else value[{shown!r}]")
        if self.has_organization and all(name != "livemode" for name, _, _ in self.steps):
            lines.append("    if livemode is not None:")
            lines.append("        data['livemode'] = livemode")
        lines.append("    return data")
        exec("\n".join(lines), namespace)  # noqa: S102 - names come from serializer declarations, quoted with repr
        self._build = namespace["build"]
        return self._build


def _column_path(model, attrs):
    """(values() column, model field) for a source path: a concrete column of `model`, or one
    reached through non-null foreign keys (`event.type` -> `event__type`); else None."""
    names = []
    for position, attr in enumerate(attrs):
        try:
            model_field = model._meta.get_field(attr)
        except FieldDoesNotExist:
            return None
        if not getattr(model_field, "concrete", False) or model_field.many_to_many:
            return None
        last = position == len(attrs) - 1
        if last:
            # `x_id` and `x` name the same column; `values()` knows the attname.
            names.append(model_field.attname if attr == model_field.attname or model_field.is_relation else attr)
            return "__".join(names), model_field
        if not model_field.many_to_one or model_field.null:
            return None  # a null foreign key: the instance path would fail differently
        names.append(model_field.name)
        model = model_field.related_model
    return None


def _prefetches(queryset):
    if queryset is None:
        return {}
    found = {}
    for lookup in queryset._prefetch_related_lookups:
        if isinstance(lookup, Prefetch):
            found[lookup.prefetch_to] = lookup
        else:
            found[lookup] = Prefetch(lookup)
    return found


class AnyOf(Lookup):
    """`column__any_of=[...]`: `column = ANY(%s)` with one array parameter (PostgreSQL). A page's
    children by their parents' ids, or the objects its rows point at: one parameter instead of a
    hundred to compile and send."""

    lookup_name = "any_of"
    prepare_rhs = False

    def get_db_prep_lookup(self, value, connection):
        return "%s", [list(value)]

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} = ANY({rhs})", [*lhs_params, *rhs_params]


# Foreign keys (children by parent) and primary keys of any type (expanded objects).
ForeignKey.register_lookup(AnyOf)
Field.register_lookup(AnyOf)


# Builders by serializer class, expansions and the shape of the parent queryset's prefetch lookups:
# building a builder costs as much as a small page, so a request must find the one built before.
_BUILDERS = {}
_BUILDERS_MAX = 512


def cached_row_builder(serializer_class, expand, queryset, make_serializer):
    """The RowBuilder (or None) for `serializer_class` with `expand` over `queryset`;
    `make_serializer()` builds the serializer the first time."""
    key = (serializer_class, _frozen(expand), tuple(map(_lookup_shape, queryset._prefetch_related_lookups)))
    builder = _BUILDERS.get(key, _MISSING)
    if builder is _MISSING:
        if len(_BUILDERS) >= _BUILDERS_MAX:
            _BUILDERS.clear()
        builder = _BUILDERS[key] = make_serializer().row_builder(queryset)
    return builder


_MISSING = object()


def _lookup_shape(lookup):
    """What a prefetch lookup fetches, independent of the request: selectors build their
    `Prefetch` objects anew on every call, and a builder (with its compiled children query) must
    outlive them. Two lookups of one shape fetch the same rows of the same parents."""
    if not isinstance(lookup, Prefetch):
        return lookup
    queryset = lookup.queryset
    if queryset is None:
        return (lookup.prefetch_to,)
    query = queryset.query
    return (lookup.prefetch_to, queryset.model, str(query.where), tuple(map(str, query.order_by)))


def _frozen(tree):
    return tuple(sorted((name, _frozen(sub)) for name, sub in tree.items()))


_REPORTED = set()


def report_missing_row_builder(serializer_class, expand=None):
    """A list about to be built from model instances although its serializer did not opt out:
    an error in development and tests (DEBUG, or under pytest), logged once per serializer
    and expansion otherwise (the page is still served, slower)."""
    if getattr(serializer_class, "row_builder_opt_out", None):
        return
    message = (
        f"{serializer_class.__module__}.{serializer_class.__qualname__} (expand={expand or {}}) has no row builder: "
        "make its fields buildable (apps.core.rows) or set `row_builder_opt_out` to the reason."
    )
    if settings.DEBUG or os.environ.get("PYTEST_CURRENT_TEST"):
        raise ImproperlyConfigured(message)
    key = (serializer_class, _frozen(expand or {}))
    if key not in _REPORTED:
        _REPORTED.add(key)
        logger.error(message)
