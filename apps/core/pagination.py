"""List pages: keyset cursors by default (also Stripe's `starting_after` / `ending_before`),
offsets on request (`offset`, deprecated `page`). One query for the page (limit + 1 rows tells
`has_more`), no COUNT(*) unless `include_total=true`.
"""

import base64
import binascii
from dataclasses import dataclass

from django.db.models import Prefetch, Q, QuerySet, prefetch_related_objects
from django.db.models.fields.related_descriptors import ReverseManyToOneDescriptor

from .errors import InvalidFieldFormat, NotFound
from .jsonutil import dumps, loads

PAGINATION_PARAMS = frozenset(
    {"limit", "cursor", "starting_after", "ending_before", "offset", "page", "include_total", "per_page"}
)
DEFAULT_LIMIT = 10
MAX_LIMIT = 100
MAX_OFFSET = 10000


@dataclass
class Page:
    items: list
    has_more: bool
    next_cursor: str | None
    total_count: int | None = None


def _int_param(params, name, minimum, maximum):
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise InvalidFieldFormat(f"{name} must be an integer.", param=name) from None
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise InvalidFieldFormat(f"{name} must be {bound}.", param=name)
    return value


def _bool_param(params, name):
    return str(params.get(name, "")).lower() in ("1", "true", "yes")


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


def _keyset_condition(ordering, values, forward):
    """Rows strictly after (forward) or before the row with `values` in `ordering`."""
    condition = Q()
    equal = Q()
    for (field, descending), value in zip(ordering, values, strict=True):
        smaller = descending == forward  # next rows of a descending order have smaller values
        step = Q(**{f"{field}__{'lt' if smaller else 'gt'}": value})
        condition |= equal & step
        equal &= Q(**{field: value})
    return condition


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


class _PrefetchedRowsMixin:
    """One parent's prefetched rows. Django builds each parent's filtered queryset up front (a
    clone and a filter per parent, more than the rows themselves cost on a page); here the
    filter is built only if someone chains on it (`customer.addresses.filter(...)`), and then it
    is exactly the one Django would have built."""

    _rows_parent = None  # (manager, prototype queryset) until the filter is built

    @property
    def query(self):
        parent = self._rows_parent
        if parent is not None:
            self._rows_parent = None
            row, name, prototype = parent
            self._query = getattr(row, name)._apply_rel_filters(prototype._chain()).query
        return QuerySet.query.fget(self)

    @query.setter
    def query(self, value):
        self._rows_parent = None
        QuerySet.query.fset(self, value)

    def __reduce__(self):
        # Pickles (and copies) as the plain queryset Django would have built.
        self.query  # noqa: B018 - builds the filter
        state = self.__getstate__()
        state.pop("_rows_parent", None)
        return _restore_queryset, (type(self).__mro__[2], state)


def _restore_queryset(cls, state):
    queryset = cls.__new__(cls)
    queryset.__setstate__(state)
    return queryset


_PREFETCHED_CLASSES = {}


def _prefetched_class(queryset_class):
    cls = _PREFETCHED_CLASSES.get(queryset_class)
    if cls is None:
        cls = type(f"Prefetched{queryset_class.__name__}", (_PrefetchedRowsMixin, queryset_class), {})
        _PREFETCHED_CLASSES[queryset_class] = cls
    return cls


def _simple_reverse_fk(model, lookup):
    """The foreign key when `lookup` prefetches a plain one-to-many relation (`customer.addresses`,
    one column, no nesting, no `to_attr`, an unsliced queryset); None for anything else, which
    Django's prefetch handles."""
    name = lookup.prefetch_through
    if "__" in name or lookup.prefetch_to != name or getattr(lookup, "to_attr", None):
        return None
    descriptor = getattr(model, name, None)
    if type(descriptor) is not ReverseManyToOneDescriptor:
        return None
    field = descriptor.field
    if not field.many_to_one or len(field.foreign_related_fields) != 1:
        return None
    queryset = lookup.queryset
    if queryset is not None and (
        queryset._prefetch_related_lookups or queryset._result_cache is not None or queryset.query.is_sliced
    ):
        return None
    return field


def prefetch_page(rows, lookups):
    """`prefetch_related_objects(rows, *lookups)`: the same queries and the same results on the
    rows; plain one-to-many lookups attach their rows to each parent without a clone apiece."""
    if not rows:
        return
    model = type(rows[0])
    for lookup in lookups:
        lookup = Prefetch(lookup) if isinstance(lookup, str) else lookup
        field = _simple_reverse_fk(model, lookup)
        if field is None or any(lookup.prefetch_to in getattr(row, "_prefetched_objects_cache", ()) for row in rows):
            prefetch_related_objects(rows, lookup)
            continue
        name = lookup.prefetch_through
        prototype = lookup.queryset if lookup.queryset is not None else field.model._default_manager.all()
        cache_name = field.remote_field.cache_name
        parent_attname = field.target_field.attname
        parents = {getattr(row, parent_attname): row for row in rows}
        related = prototype._chain()
        related._add_hints(instance=rows[0])
        related = related.filter(**{f"{field.attname}__in": list(parents)})
        by_parent = {}
        for obj in related:
            parent = parents[getattr(obj, field.attname)]
            if not field.is_cached(obj):
                field.set_cached_value(obj, parent)
            by_parent.setdefault(getattr(obj, field.attname), []).append(obj)
        cls = _prefetched_class(type(prototype))
        state = prototype.__dict__
        for key, row in parents.items():
            qs = cls.__new__(cls)
            qs.__dict__.update(state)
            qs._result_cache = by_parent.get(key, [])
            qs._prefetch_done = True
            qs._hints = {**prototype._hints, "instance": row}
            qs._known_related_objects = {field: {key: row}}
            qs._rows_parent = (row, name, prototype)
            if not hasattr(row, "_prefetched_objects_cache"):
                row._prefetched_objects_cache = {}
            row._prefetched_objects_cache[cache_name] = qs


def _fetch(queryset, limit):
    """limit + 1 rows (the extra one only tells `has_more`), with the queryset's
    prefetch_related lookups run on the page's rows alone."""
    lookups = queryset._prefetch_related_lookups
    if lookups:
        queryset = queryset.prefetch_related(None)
    rows = list(queryset)
    has_more = len(rows) > limit
    rows = rows[:limit]
    if lookups:
        prefetch_page(rows, lookups)
    return rows, has_more


def paginate(queryset, params, ordering, *, anchor_queryset=None):
    """One page of `queryset`, ordered by `ordering` ([(field, descending)], pk last).
    `anchor_queryset` (or a callable returning it) finds `starting_after` / `ending_before`."""
    limit = _int_param(params, "limit", 1, MAX_LIMIT)
    if limit is None:
        limit = _int_param(params, "per_page", 1, MAX_LIMIT) or DEFAULT_LIMIT
    model = queryset.model
    sort_key = ",".join(("-" if d else "") + f for f, d in ordering)
    total = queryset.count() if _bool_param(params, "include_total") else None
    order_by = [("-" if d else "") + f for f, d in ordering]

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
        queryset = queryset.filter(_keyset_condition(ordering, values, forward))
    if not forward:
        order_by = [("" if d else "-") + f for f, d in ordering]
    rows, has_more = _fetch(queryset.order_by(*order_by)[: limit + 1], limit)
    if not forward:
        rows.reverse()
    last = _row_values(rows[-1], ordering, model) if rows else None
    # A backward page always has rows after it (the anchor), so it can always continue forward.
    continues = last is not None and (has_more or not forward)
    next_cursor = _encode_cursor(_as_jsonable(last), sort_key) if continues else None
    return Page(rows, has_more, next_cursor, total)
