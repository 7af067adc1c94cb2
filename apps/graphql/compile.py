"""Hasura's `where` and `order_by` arguments compiled to Django's Q objects and order expressions.

A comparison through a relationship (`{customer: {email: {_ilike: "%@acme.com"}}}`) becomes a
subquery over the target table's readable rows, so the policy table's row filter and tenancy apply
to what a filter can see, not only to what a query returns.
"""

import re

from django.db.models import F, Q
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


def order_expressions(table, order_by):
    """Expressions for `order_by: [{col: desc_nulls_last}, ...]`, then the primary key so pages
    are stable. Bare asc and desc sort NULLs as PostgreSQL does (last ascending, first descending)."""
    expressions = []
    for item in order_by or ():
        for key, direction in (item or {}).items():
            if direction is None:
                continue
            lookup = F(table.columns[key].lookup)
            descending = direction.startswith("desc")
            nulls_first = direction.endswith("nulls_first") or direction == "desc"
            if descending:
                expressions.append(lookup.desc(nulls_first=True) if nulls_first else lookup.desc(nulls_last=True))
            else:
                expressions.append(lookup.asc(nulls_first=True) if nulls_first else lookup.asc(nulls_last=True))
    expressions.append(F(table.pk).asc())
    return expressions
