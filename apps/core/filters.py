"""Filters and sorting for every list endpoint.

A resource declares a `ResourceFilterSet` whose `Meta.fields` maps each filterable field to its
operators. Each filter is accepted in three spellings: `status=x` / `status_eq=x` /
`status[eq]=x` (also `status__eq=x`). Operators: eq ne neq gt gte lt lte in nin like ilike
between is_null. Only declared fields filter; any other parameter is a 400 `parameter_unknown`.
"""

import re
from datetime import UTC

import django_filters
from django.db.models import BooleanField, DateTimeField, IntegerField, Q
from django.utils.dateparse import parse_datetime

from .errors import InvalidFieldFormat, UnknownParameter

TEXT_OPS = ("eq", "ne", "neq", "in", "nin", "like", "ilike", "is_null")
CHOICE_OPS = ("eq", "ne", "neq", "in", "nin", "is_null")
RANGE_OPS = ("eq", "ne", "neq", "gt", "gte", "lt", "lte", "in", "nin", "between", "is_null")
DATE_OPS = ("eq", "ne", "neq", "gt", "gte", "lt", "lte", "between", "is_null")
BOOL_OPS = ("eq", "ne", "neq", "is_null")
ALL_OPS = ("eq", "ne", "neq", "gt", "gte", "lt", "lte", "in", "nin", "like", "ilike", "between", "is_null")

_LOOKUP = {
    "eq": ("exact", False),
    "ne": ("exact", True),
    "neq": ("exact", True),
    "gt": ("gt", False),
    "gte": ("gte", False),
    "lt": ("lt", False),
    "lte": ("lte", False),
    "in": ("in", False),
    "nin": ("in", True),
    "between": ("range", False),
    "is_null": ("isnull", False),
}
# Longest first, so `status_is_null` is `is_null` and not `null`.
_SUFFIXES = sorted(_LOOKUP.keys() | {"like", "ilike"}, key=len, reverse=True)
# Stripe's names for the timestamps.
FIELD_ALIASES = {"created": "created_at", "updated": "updated_at"}


def _like_filter(case_insensitive):
    def apply(queryset, name, value):
        field = name.rsplit("__", 1)[0]
        lookup = "iregex" if case_insensitive else "regex"
        pattern = "^" + "".join(".*" if ch == "%" else ("." if ch == "_" else _escape(ch)) for ch in value) + "$"
        return queryset.filter(**{f"{field}__{lookup}": pattern})

    return apply


def _escape(ch):
    return "\\" + ch if ch in r"\.^$*+?{}[]|()" else ch


class ResourceFilterSet(django_filters.FilterSet):
    """Base filter set: `Meta.fields = {"email": TEXT_OPS, "created_at": DATE_OPS, ...}`."""

    @classmethod
    def get_filters(cls):
        if not cls._meta.model:
            return {}
        filters = {}
        for field_name, operators in (cls._meta.fields or {}).items():
            model_field = django_filters.utils.get_model_field(cls._meta.model, field_name)
            for op in operators:
                name = f"{field_name}__{op}"
                if op in ("like", "ilike"):
                    filters[name] = django_filters.CharFilter(field_name=name, method=_like_filter(op == "ilike"))
                    continue
                lookup, exclude = _LOOKUP[op]
                if lookup == "isnull":
                    flt = django_filters.BooleanFilter(field_name=field_name, lookup_expr="isnull")
                else:
                    flt = cls.filter_for_field(model_field, field_name, lookup)
                    flt.exclude = exclude
                filters[name] = flt
            if "eq" in operators:
                filters[field_name] = filters[f"{field_name}__eq"]
        filters.update(cls.declared_filters)
        return filters

    @classmethod
    def operators(cls):
        return dict(cls._meta.fields or {})


def normalize_filter_params(params, filterset_class, reserved):
    """Map every spelling of a filter to `field__op`; raise for anything not declared or for a
    value its operator cannot take."""
    declared = filterset_class.operators() if filterset_class else {}
    model = filterset_class._meta.model if filterset_class else None
    normalized = {}
    for key in params.keys():
        if key in reserved:
            continue
        values = params.getlist(key)
        target = _resolve(key, declared)
        if target is None:
            raise UnknownParameter(f"Received unknown parameter: {key}", param=key)
        normalized[target] = _checked_value(key, target, values[-1], model)
    return normalized


def _checked_value(key, target, value, model):
    """What django-filter would silently drop is a 400 naming the parameter: a boolean that is
    not true/false, an empty list, a range that is not two values."""
    field, _, op = target.rpartition("__")
    model_field = _model_field(model, field)
    if not value.strip():
        raise InvalidFieldFormat(f"{key} is empty.", param=key)
    if op == "is_null" or (op in ("eq", "ne", "neq") and isinstance(model_field, BooleanField)):
        lowered = value.strip().lower()
        if lowered not in ("true", "false"):
            raise InvalidFieldFormat(f"{key} must be true or false.", param=key)
        return lowered
    items = [value]
    if op in ("in", "nin"):
        items = [item.strip() for item in value.split(",")]
        if not all(items):
            raise InvalidFieldFormat(f"{key} needs a comma-separated list of values.", param=key)
    if op == "between":
        items = [item.strip() for item in value.split(",")]
        if len(items) != 2 or not all(items):
            raise InvalidFieldFormat(f"{key} needs two comma-separated values: low,high.", param=key)
    if isinstance(model_field, DateTimeField) and op not in ("like", "ilike", "is_null"):
        # In UTC: PostgreSQL refuses offsets beyond ±15:59 that Python parses (`+20:40`).
        return ",".join(_utc_text(key, item.strip()) for item in items)
    if isinstance(model_field, IntegerField) and op not in ("like", "ilike"):
        # django-filter reads integers as decimals: `0.5` would pass and match nothing.
        if not all(_INTEGER.fullmatch(item.strip()) for item in items):
            raise InvalidFieldFormat(f"{key} takes whole numbers.", param=key)
    return value


_INTEGER = re.compile(r"[-+]?[0-9]{1,18}")


def _utc_text(key, text):
    try:
        value = parse_datetime(text)
    except ValueError:
        raise InvalidFieldFormat(f"{key} is not a valid date-time: {text[:40]!r}.", param=key) from None
    if value is None or value.tzinfo is None:
        return text  # a date, or a naive date-time: the filter reads it in UTC
    try:
        return value.astimezone(UTC).isoformat()
    except OverflowError:
        raise InvalidFieldFormat(f"{key} is out of range: {text[:40]!r}.", param=key) from None


def _model_field(model, field):
    if model is None:
        return None
    try:
        return django_filters.utils.get_model_field(model, field)
    except Exception:  # noqa: BLE001 - a declared filter without a model field
        return None


def _resolve(key, declared):
    def known(field, op):
        field = FIELD_ALIASES.get(field, field)
        if field in declared and op in declared[field]:
            return f"{field}__{op}"
        return None

    if "[" in key and key.endswith("]"):
        field, _, op = key[:-1].partition("[")
        return known(field, op)
    if "__" in key:
        field, _, op = key.rpartition("__")
        return known(field, op)
    plain = FIELD_ALIASES.get(key, key)
    if plain in declared and "eq" in declared[plain]:
        return f"{plain}__eq"
    for op in _SUFFIXES:
        if key.endswith("_" + op):
            found = known(key[: -len(op) - 1], op)
            if found:
                return found
    return None


def apply_filters(queryset, params, filterset_class):
    if not params:
        return queryset
    filterset = filterset_class(data=params, queryset=queryset)
    if not filterset.is_valid():
        field, errors = next(iter(filterset.errors.items()))
        raise InvalidFieldFormat(f"Invalid value for {field}: {errors[0]}", param=field, detail=filterset.errors)
    return filterset.qs


def parse_sort(params, allowed, default):
    """The ordering as [(field, descending)], from `sort`, `order_by`, `sort_by`+`sort_order`,
    or `order_direction` (which flips the default field)."""
    param = "sort" if params.get("sort") is not None else "order_by"
    spec = params.get(param)
    fields = []
    if spec is not None:
        for part in spec.split(","):
            part = part.strip()
            if not part:
                continue
            descending = part.startswith("-")
            name = part[1:] if part[:1] in "-+" else part
            words = name.split()
            if len(words) == 2 and words[1].lower() in ("asc", "desc"):
                name, descending = words[0], words[1].lower() == "desc"
            elif len(words) != 1:
                raise InvalidFieldFormat(
                    f"Cannot read the sort {part!r}: use field, -field or 'field asc|desc'.", param=param
                )
            fields.append((FIELD_ALIASES.get(name, name), descending))
        if not fields:
            raise InvalidFieldFormat(f"{param} names no field.", param=param)
    elif params.get("sort_by"):
        direction = (params.get("sort_order") or "asc").lower()
        if direction not in ("asc", "desc"):
            raise InvalidFieldFormat("sort_order must be asc or desc.", param="sort_order")
        fields.append((FIELD_ALIASES.get(params["sort_by"], params["sort_by"]), direction == "desc"))
    else:
        name, descending = default
        direction = (params.get("order_direction") or params.get("sort_order") or "").lower()
        if direction:
            if direction not in ("asc", "desc"):
                raise InvalidFieldFormat("order_direction must be asc or desc.", param="order_direction")
            descending = direction == "desc"
        fields.append((name, descending))
    for name, _ in fields:
        if name not in allowed:
            raise InvalidFieldFormat(
                f"Cannot sort by {name!r}; sortable fields: {', '.join(sorted(allowed))}.",
                param="sort" if spec is not None else "sort_by",
            )
    return fields


def search_condition(query, fields):
    condition = Q()
    for field in fields:
        condition |= Q(**{f"{field}__icontains": query})
    return condition
