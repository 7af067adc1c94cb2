"""List pages: keyset cursors by default (also Stripe's `starting_after` / `ending_before`),
offsets on request (`offset`, deprecated `page`). One query for the page (limit + 1 rows tells
`has_more`), no COUNT(*) unless `include_total=true`.
"""

import base64
import binascii
import re
from dataclasses import dataclass

from django.db.models import F, Q

from .errors import InvalidFieldFormat, NotFound
from .jsonutil import dumps, loads

PAGINATION_PARAMS = frozenset(
    {"limit", "cursor", "starting_after", "ending_before", "offset", "page", "include_total", "per_page"}
)
DEFAULT_LIMIT = 10
MAX_LIMIT = 100
MAX_OFFSET = 10000
# Digits only: Python's int() would also take " 5", "5_000" and "+5".
_INTEGER = re.compile(r"-?[0-9]{1,18}")


@dataclass
class Page:
    items: list
    has_more: bool
    next_cursor: str | None
    total_count: int | None = None


def _int_param(params, name, minimum, maximum):
    raw = params.get(name)
    if raw is None:
        return None
    if not _INTEGER.fullmatch(raw):
        raise InvalidFieldFormat(f"{name} must be an integer, got {raw[:40]!r}.", param=name)
    value = int(raw)
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise InvalidFieldFormat(f"{name} must be {bound}.", param=name)
    return value


def _bool_param(params, name):
    raw = params.get(name)
    if raw is None:
        return False
    if raw.lower() not in ("true", "false"):
        raise InvalidFieldFormat(f"{name} must be true or false.", param=name)
    return raw.lower() == "true"


def _check_exclusive(params):
    """Parameters that choose the page in different ways cannot be combined."""
    for name in ("cursor", "starting_after", "ending_before"):
        if name in params and not params[name]:
            raise InvalidFieldFormat(f"{name} is empty.", param=name)
    given = [name for name in ("cursor", "starting_after", "ending_before", "offset", "page") if name in params]
    if len(given) > 1:
        raise InvalidFieldFormat(f"{given[0]} and {given[1]} cannot be used together.", param=given[1])


def _encode_cursor(values, sort_key):
    raw = dumps({"v": values, "s": sort_key})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor, sort_key):
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = loads(base64.urlsafe_b64decode(padded.encode()))
        values = data["v"]
        if data.get("s") != sort_key:
            raise InvalidFieldFormat("This cursor belongs to another sort order.", param="cursor")
        return values
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise InvalidFieldFormat("Invalid cursor.", param="cursor") from None


def _keyset_condition(ordering, values, forward, model):
    """Rows strictly after (forward) or before the row with `values` in `ordering`. NULL sorts
    below every value (see `_order_by`), so a nullable column's NULLs have a place of their own."""
    condition = Q()
    equal = Q()
    for (field, descending), value in zip(ordering, values, strict=True):
        nullable = _nullable(model, field)
        smaller = descending == forward  # next rows of a descending order have smaller values
        if value is None:
            step = Q(pk__in=[]) if smaller else Q(**{f"{field}__isnull": False})
            same = Q(**{f"{field}__isnull": True})
        else:
            step = Q(**{f"{field}__{'lt' if smaller else 'gt'}": value})
            if smaller and nullable:
                step |= Q(**{f"{field}__isnull": True})
            same = Q(**{field: value})
        condition |= equal & step
        equal &= same
    return condition


def _nullable(model, field):
    if field == "pk":
        return False
    return model._meta.get_field(field).null


def _order_by(model, ordering, reverse=False):
    """ORDER BY terms with NULL below every value on both databases (SQLite and PostgreSQL
    disagree by default), so cursors over a nullable column walk every row once."""
    terms = []
    for field, descending in ordering:
        descending = descending != reverse
        if _nullable(model, field):
            expression = F(field)
            terms.append(expression.desc(nulls_last=True) if descending else expression.asc(nulls_first=True))
        else:
            terms.append(("-" if descending else "") + field)
    return terms


def _row_values(obj, ordering, model):
    if isinstance(obj, dict):  # a `.values()` row (apps.core.rows)
        return [obj[model._meta.pk.attname if field == "pk" else field] for field, _ in ordering]
    return [getattr(obj, field) for field, _ in ordering]


def sort_columns(model, ordering):
    """The columns a `.values()` row needs for its cursor."""
    return [model._meta.pk.attname if field == "pk" else field for field, _ in ordering]


def _as_jsonable(values):
    return loads(dumps(values))


def _from_jsonable(values, model, ordering):
    if len(values) != len(ordering):
        raise InvalidFieldFormat("Invalid cursor.", param="cursor")
    out = []
    for (field, _), value in zip(ordering, values, strict=True):
        try:
            model_field = model._meta.pk if field == "pk" else model._meta.get_field(field)
            out.append(model_field.to_python(value))
        except Exception:
            raise InvalidFieldFormat("Invalid cursor.", param="cursor") from None
    return out


def _fetch(queryset, limit):
    """limit + 1 rows (the extra one only tells `has_more`); prefetches run on the page alone."""
    rows = list(queryset)
    return rows[:limit], len(rows) > limit


def paginate(queryset, params, ordering, *, anchor_queryset=None):
    """One page of `queryset`, ordered by `ordering` ([(field, descending)], pk last).
    `anchor_queryset` (or a callable returning it) finds `starting_after` / `ending_before`."""
    _check_exclusive(params)
    limit = _int_param(params, "limit", 1, MAX_LIMIT)
    if limit is None:
        limit = _int_param(params, "per_page", 1, MAX_LIMIT) or DEFAULT_LIMIT
    model = queryset.model
    sort_key = ",".join(("-" if d else "") + f for f, d in ordering)
    total = queryset.count() if _bool_param(params, "include_total") else None
    order_by = _order_by(model, ordering)

    offset = _int_param(params, "offset", 0, MAX_OFFSET)
    page_number = _int_param(params, "page", 1, None)
    if offset is None and page_number is not None:
        offset = (page_number - 1) * limit
        if offset > MAX_OFFSET:
            raise InvalidFieldFormat(f"page reaches past offset {MAX_OFFSET}; use cursor paging.", param="page")
    if offset is not None:
        rows, has_more = _fetch(queryset.order_by(*order_by)[offset : offset + limit + 1], limit)
        last = _row_values(rows[-1], ordering, model) if (has_more and rows) else None
        next_cursor = _encode_cursor(_as_jsonable(last), sort_key) if last else None
        return Page(rows, has_more, next_cursor, total)

    forward = True
    values = None
    if params.get("cursor"):
        values = _from_jsonable(_decode_cursor(params["cursor"], sort_key), model, ordering)
    elif params.get("starting_after") or params.get("ending_before"):
        anchor_id = params.get("starting_after") or params.get("ending_before")
        forward = bool(params.get("starting_after"))
        if callable(anchor_queryset):
            anchor_queryset = anchor_queryset()
        anchor = (anchor_queryset if anchor_queryset is not None else queryset).filter(pk=anchor_id).first()
        if anchor is None:
            param = "starting_after" if forward else "ending_before"
            raise NotFound(f"No such object: {anchor_id}", param=param)
        values = _row_values(anchor, ordering, model)

    if values is not None:
        queryset = queryset.filter(_keyset_condition(ordering, values, forward, model))
    if not forward:
        order_by = _order_by(model, ordering, reverse=True)
    rows, has_more = _fetch(queryset.order_by(*order_by)[: limit + 1], limit)
    if not forward:
        rows.reverse()
    last = _row_values(rows[-1], ordering, model) if rows else None
    # A backward page always has rows after it (the anchor), so it can always continue forward.
    continues = last is not None and (has_more or not forward)
    next_cursor = _encode_cursor(_as_jsonable(last), sort_key) if continues else None
    return Page(rows, has_more, next_cursor, total)
