"""Hasura's `where`, `order_by` and `distinct_on` arguments compiled to Django's Q objects and
order expressions.

A comparison through a relationship (`{customer: {email: {_ilike: "%@acme.com"}}}`) and an order
through one (`{customer: {email: asc}}`, `{addresses_aggregate: {count: desc}}`) become subqueries
over the target table's readable rows, so the policy table's row filter and tenancy apply to what
a filter or a sort can see, not only to what a query returns.
"""

import re

from django.db import connections
from django.db.models import Avg, Count, F, Max, Min, OuterRef, Q, Subquery, Sum, Window
from django.db.models.functions import Coalesce, RowNumber
from graphql import GraphQLError

NOTHING = Q(pk__in=[])


def like_regex(pattern):
    """A SQL LIKE pattern as an anchored regular expression (`%` any run, `_` one character,
    backslash escapes). Regexes behave the same on PostgreSQL and SQLite, where LIKE itself
    ignores case."""
    parts = ["(?s)^"]
    escaped = False
    for char in pattern:
        if escaped:
            parts.append(re.escape(char))
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "%":
            parts.append(".*")
        elif char == "_":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    if escaped:
        parts.append(re.escape("\\"))
    parts.append("$")
    return "".join(parts)


def _not_null(lookup):
    # SQL's `<>` and NOT IN never match NULL; Django's negation would.
    return Q(**{f"{lookup}__isnull": False})


# jsonb operators -> the lookups of apps.graphql.jsonb (PostgreSQL's operators, the same on SQLite).
_JSONB_LOOKUPS = {
    "_contains": "gql_contains",
    "_contained_in": "gql_contained_in",
    "_has_key": "gql_has_keys_any",
    "_has_keys_any": "gql_has_keys_any",
    "_has_keys_all": "gql_has_keys_all",
}


def _comparison(lookup, operator, value):
    if value is None and operator != "_is_null":
        raise GraphQLError(f"{operator}: null is not a value to compare with; use _is_null.")
    if operator == "_eq":
        return Q(**{lookup: value})
    if operator == "_neq":
        return ~Q(**{lookup: value}) & _not_null(lookup)
    if operator in ("_gt", "_gte", "_lt", "_lte"):
        return Q(**{f"{lookup}__{operator[1:]}": value})
    if operator == "_in":
        return Q(**{f"{lookup}__in": value}) if value else NOTHING
    if operator == "_nin":
        return (~Q(**{f"{lookup}__in": value}) if value else Q()) & _not_null(lookup)
    if operator in ("_like", "_ilike"):
        return Q(**{f"{lookup}__{'regex' if operator == '_like' else 'iregex'}": like_regex(value)})
    if operator in ("_nlike", "_nilike"):
        regex = "regex" if operator == "_nlike" else "iregex"
        return ~Q(**{f"{lookup}__{regex}": like_regex(value)}) & _not_null(lookup)
    if operator == "_is_null":
        return Q(**{f"{lookup}__isnull": bool(value)})
    if operator in _JSONB_LOOKUPS:
        return Q(**{f"{lookup}__{_JSONB_LOOKUPS[operator]}": [value] if operator == "_has_key" else value})
    raise GraphQLError(f"Unknown comparison operator {operator}.")


def where_q(context, table, where):
    """The Q object for a `<table>_bool_exp` value (None or {} matches every row)."""
    condition = Q()
    for key, value in (where or {}).items():
        if key == "_and":
            for item in value or ():
                condition &= where_q(context, table, item)
        elif key == "_or":
            either = NOTHING
            for item in value or ():
                either |= where_q(context, table, item)
            condition &= either
        elif key == "_not":
            if value is not None:
                condition &= ~where_q(context, table, value)
        elif key in table.relationships:
            if value is None:
                continue
            relationship = table.relationships[key]
            target = context.tables[relationship.target]
            inner = target.readable(context.actor).filter(where_q(context, target, value))
            condition &= Q(**{f"{relationship.local}__in": inner.values(relationship.remote)})
        else:
            column = table.columns[key]
            for operator, operand in (value or {}).items():
                condition &= _comparison(column.lookup, operator, operand)
    return condition


# order_by ------------------------------------------------------------------------------------

# `<rel>_aggregate: {count, max: {col}, min, sum, avg}` in an order_by: the functions.
AGGREGATE_ORDER_FUNCTIONS = {"max": Max, "min": Min, "sum": Sum, "avg": Avg}


def _ordered(expression, direction):
    """Bare asc and desc sort NULLs as PostgreSQL does (last ascending, first descending)."""
    nulls_first = direction.endswith("nulls_first") or direction == "desc"
    if direction.startswith("desc"):
        return expression.desc(nulls_first=True) if nulls_first else expression.desc(nulls_last=True)
    return expression.asc(nulls_first=True) if nulls_first else expression.asc(nulls_last=True)


def _related_rows(context, relationship):
    """The target's readable rows related to the outer row (OuterRef: the query being sorted)."""
    target = context.tables[relationship.target]
    rows = target.readable(context.actor).filter(**{relationship.remote: OuterRef(relationship.local)})
    return target, rows.order_by()


def order_terms(context, table, item):
    """[(key, expression, direction)] for one `<table>_order_by` object, in its keys' order; `key`
    is the column's name, or None for a term through a relationship."""
    terms = []
    for key, value in (item or {}).items():
        if value is None:
            continue
        if key in table.columns:
            terms.append((key, F(table.columns[key].lookup), value))
            continue
        if context is None:
            raise GraphQLError(f"order_by: {key} needs the request's context.")
        if key in table.relationships and not table.relationships[key].many:
            # The related row's value (NULL when there is none the caller may read).
            target, rows = _related_rows(context, table.relationships[key])
            for _key, expression, direction in order_terms(context, target, value):
                terms.append((None, Subquery(rows.annotate(_gql_order=expression).values("_gql_order")[:1]), direction))
            continue
        relationship = table.relationships[key.removesuffix("_aggregate")]
        target, rows = _related_rows(context, relationship)
        grouped = rows.values(relationship.remote)
        for function, spec in value.items():
            if spec is None:
                continue
            if function == "count":
                counted = grouped.annotate(_gql_order=Count("pk")).values("_gql_order")
                terms.append((None, Coalesce(Subquery(counted), 0), spec))
                continue
            for column_name, direction in spec.items():
                if direction is None:
                    continue
                aggregate = AGGREGATE_ORDER_FUNCTIONS[function](target.columns[column_name].lookup)
                terms.append((None, Subquery(grouped.annotate(_gql_order=aggregate).values("_gql_order")), direction))
    return terms


def order_expressions(table, order_by, context=None):
    """Expressions for `order_by: [{col: desc_nulls_last}, {customer: {email: asc}}, ...]`, then
    the primary key so pages are stable. Terms through relationships need `context` (the actor
    whose readable rows they see)."""
    expressions = [
        _ordered(expression, direction)
        for item in order_by or ()
        for _key, expression, direction in order_terms(context, table, item)
    ]
    expressions.append(F(table.pk).asc())
    return expressions


# distinct_on ---------------------------------------------------------------------------------

DISTINCT_ORDER_MISMATCH = '"distinct_on" columns must match initial "order_by" columns'


def distinct_order_by(table, distinct_on, order_by):
    """The `order_by` a `distinct_on` query sorts by, checked as Hasura checks it: the leading
    `order_by` terms must be the `distinct_on` columns (in any order), or, with no `order_by`,
    the rows are sorted by those columns."""
    columns = list(dict.fromkeys(distinct_on))
    for name in columns:
        if table.columns[name].type_name == "jsonb":
            raise GraphQLError(f"distinct_on: {name} is a jsonb column, which has no order to pick a first row by.")
    if not order_by:
        return [{name: "asc"} for name in columns]
    leading = [key for item in order_by for key, value in (item or {}).items() if value is not None]
    if set(leading[: len(columns)]) != set(columns) or len(leading) < len(columns):
        raise GraphQLError(DISTINCT_ORDER_MISMATCH)
    return order_by


def distinct_rows(queryset, table, distinct_on, ordering, partition=()):
    """`queryset` narrowed to the first row (in `ordering`, which starts with the `distinct_on`
    columns) of each group of equal `distinct_on` values, within each `partition` value (an array
    relationship's parent key). PostgreSQL: DISTINCT ON; elsewhere the same rows by a ROW_NUMBER()
    window partitioned by those columns, keeping rank 1."""
    lookups = [*partition, *(table.columns[name].lookup for name in dict.fromkeys(distinct_on))]
    leading = [F(lookup).asc() for lookup in partition]
    if connections[queryset.db].vendor == "postgresql":
        firsts = queryset.order_by(*leading, *ordering).distinct(*lookups).values("pk")
    else:
        firsts = (
            queryset.annotate(
                _gql_distinct=Window(RowNumber(), partition_by=[F(lookup) for lookup in lookups], order_by=ordering)
            )
            .filter(_gql_distinct=1)
            .values("pk")
        )
    return queryset.filter(pk__in=firsts)
