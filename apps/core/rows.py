"""List pages built from `.values()` rows instead of model instances.

A page of 100 customers with their addresses is, through model instances, 200 `Model.__init__`
calls, a related manager per row and DRF's per-field attribute walk: most of the request's time.
A `RowPlan` is compiled from a `ResourceSerializer` (with the request's expansions) and builds
the very same representation from plain rows:

- plain model columns are copied (the same values the instance path copies);
- a nested `many=True` serializer over a one-to-many relation (`addresses`) is one `.values()`
  query for the whole page, through the parent queryset's `Prefetch` when it has one (its
  filters and ordering apply);
- a field derived from other fields is declared on the serializer in `row_derived_fields`
  (`{"default_shipping_address": fn(representation) -> nested representation | None}`); a
  `ReferenceField` shows the derived object's id, an expanded serializer the whole object.

Any field the plan cannot build makes `RowPlan.build()` return None, and the view falls back to
the instance path; tests compare both paths on the same rows.
"""

import weakref

from django.db import connections
from django.db.models import ForeignKey, Lookup, Prefetch
from rest_framework import serializers

from .prepared import PreparedValues
from .references import ReferenceField

# Per nested queryset (a selector's Prefetch queryset lives as long as its view class) and
# column list: the children-of-a-page query, compiled once (PostgreSQL).
_PREPARED_CHILDREN = weakref.WeakKeyDictionary()


class _Nested:
    __slots__ = ("name", "plan", "fk_attname", "queryset")

    def __init__(self, name, plan, fk_attname, queryset):
        self.name = name
        self.plan = plan
        self.fk_attname = fk_attname
        self.queryset = queryset

    def rows_of(self, parent_ids):
        """The children of these parents, as `.values()` rows holding the plan's columns."""
        fk, queryset = self.fk_attname, self.queryset
        if connections[queryset.db].vendor != "postgresql":
            return list(self.plan.values(queryset.filter(**{f"{fk}__in": parent_ids}), (fk,)))
        by_columns = _PREPARED_CHILDREN.setdefault(queryset, {})
        key = (fk, tuple(self.plan.columns))
        prepared = by_columns.get(key)
        if prepared is None:
            # The builder holds the queryset weakly, or the cache entry would keep its key alive.
            template, columns = weakref.ref(queryset), [*key[1], fk] if fk not in key[1] else list(key[1])

            def build(ids):
                return template().filter(**{f"{fk}__any_of": ids}).prefetch_related(None).values(*columns)

            prepared = by_columns[key] = PreparedValues(build, array=True)
        return prepared(parent_ids, using=queryset.db)


class RowPlan:
    def __init__(self, model, object_name, has_organization):
        self.model = model
        self.object_name = object_name
        self.has_organization = has_organization  # tenant rows show `livemode`
        self.pk_attname = model._meta.pk.attname
        self.columns = [self.pk_attname]
        self.steps = []  # (output name, kind, payload)
        self.nested = []
        self.derived = []
        self._build = None

    # Compilation ---------------------------------------------------------------------------

    @classmethod
    def build(cls, serializer, parent_queryset=None):
        """The plan for `serializer` (a ResourceSerializer instance), or None."""
        from .serializers import ResourceSerializer

        if type(serializer).to_representation is not ResourceSerializer.to_representation:
            return None  # a representation of its own: only the serializer knows it
        model = serializer.Meta.model
        has_organization = any(f.attname == "organization_id" for f in model._meta.concrete_fields)
        plan = cls(model, serializer.object_name, has_organization)
        derivations = getattr(serializer, "row_derived_fields", {})
        prefetches = _prefetches(parent_queryset)
        for field in serializer._readable_fields:
            name, source = field.field_name, field.source
            if name in derivations:
                if isinstance(field, ReferenceField):
                    plan.steps.append((name, "derived_id", None))
                elif isinstance(field, serializers.Serializer) and not getattr(field, "expanded", None):
                    plan.steps.append((name, "derived_object", None))
                else:
                    return None
                plan.derived.append((name, derivations[name], isinstance(field, ReferenceField)))
                continue
            if isinstance(field, serializers.ListSerializer):
                nested = cls._nested(field, source, model, prefetches)
                if nested is None:
                    return None
                plan.nested.append(nested)
                plan.steps.append((name, "nested", nested))
                continue
            attname = serializer.column_for(field)
            if attname is None:
                return None
            if attname not in plan.columns:
                plan.columns.append(attname)
            plan.steps.append((name, "column", attname))
        return plan

    @classmethod
    def _nested(cls, field, source, model, prefetches):
        try:
            relation = model._meta.get_field(source)
        except Exception:
            return None
        if not (relation.one_to_many and relation.auto_created) or not hasattr(field.child, "column_for"):
            return None
        prefetch = prefetches.get(source)
        queryset = prefetch.queryset if prefetch is not None and prefetch.queryset is not None else None
        if queryset is None:
            queryset = relation.related_model._default_manager.all()
        if queryset._prefetch_related_lookups:
            return None
        child_plan = cls.build(field.child, queryset)
        if child_plan is None:
            return None
        return _Nested(source, child_plan, relation.field.attname, queryset)

    # Execution -----------------------------------------------------------------------------

    def values(self, queryset, extra_columns=()):
        """The queryset as rows holding this plan's columns (and `extra_columns`)."""
        columns = list(self.columns)
        for column in extra_columns:
            if column not in columns:
                columns.append(column)
        return queryset.prefetch_related(None).values(*columns)

    def represent(self, rows, livemode=None):
        """The API representation of each row (in order), nested relations in one query each;
        tenant rows show `livemode` (the actor's mode)."""
        children = {}
        if rows and self.nested:
            ids = [row[self.pk_attname] for row in rows]
            for nested in self.nested:
                fk = nested.fk_attname
                grouped = {}
                child_rows = nested.rows_of(ids)
                for child, data in zip(child_rows, nested.plan.represent(child_rows, livemode), strict=True):
                    grouped.setdefault(child[fk], []).append(data)
                children[nested.name] = grouped
        build = self._builder()
        livemode = livemode if self.has_organization else None
        return [build(row, children, livemode) for row in rows]

    def _builder(self):
        """`build(row, children, livemode) -> representation`, generated once per plan: one dict
        display in the fields' order instead of a loop over the steps for every row."""
        if self._build is not None:
            return self._build
        namespace = {}
        lines = ["def build(row, children, livemode):", "    data = {"]
        if self.object_name:
            lines.append(f"        'object': {self.object_name!r},")
        for name, kind, payload in self.steps:
            if kind == "column":
                value = f"row[{payload!r}]"
            elif kind == "nested":
                value = f"children[{payload.name!r}].get(row[{self.pk_attname!r}]) or []"
            else:
                value = "None"  # derived below, in the field's place
            lines.append(f"        {name!r}: {value},")
        lines.append("    }")
        for index, (name, derive, as_id) in enumerate(self.derived):
            namespace[f"derive_{index}"] = derive
            lines.append(f"    value = derive_{index}(data)")
            shown = "value['id']" if as_id else "value"
            lines.append(f"    data[{name!r}] = None if value is None else {shown}")
        if self.has_organization and all(name != "livemode" for name, _, _ in self.steps):
            lines.append("    if livemode is not None:")
            lines.append("        data['livemode'] = livemode")
        lines.append("    return data")
        exec("\n".join(lines), namespace)  # noqa: S102 - names come from serializer declarations, quoted with repr
        self._build = namespace["build"]
        return self._build


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


@ForeignKey.register_lookup
class AnyOf(Lookup):
    """`fk__any_of=[...]`: `fk = ANY(%s)` with one array parameter (PostgreSQL). A page's
    children by their parents' ids: one parameter instead of a hundred to compile and send."""

    lookup_name = "any_of"
    prepare_rhs = False

    def get_db_prep_lookup(self, value, connection):
        return "%s", [list(value)]

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} = ANY({rhs})", [*lhs_params, *rhs_params]


# Plans by serializer class, expansions and the parent queryset's prefetch lookups (kept alive
# in the entry, so an id stays theirs): building a plan costs as much as a small page.
_PLANS = {}
_PLANS_MAX = 512


def cached_plan(serializer_class, expand, queryset, make_serializer):
    """The RowPlan (or None) for `serializer_class` with `expand` over `queryset`;
    `make_serializer()` builds the serializer the first time."""
    lookups = tuple(queryset._prefetch_related_lookups)
    key = (serializer_class, _frozen(expand), tuple(map(id, lookups)))
    entry = _PLANS.get(key)
    if entry is None:
        if len(_PLANS) >= _PLANS_MAX:
            _PLANS.clear()
        entry = _PLANS[key] = (make_serializer().row_plan(queryset), lookups)
    return entry[0]


def _frozen(tree):
    return tuple(sorted((name, _frozen(sub)) for name, sub in tree.items()))
