"""A query operation compiled to SQL on PostgreSQL: one statement per root field, building the
field's JSON in the database (Hasura's answer to N+1). apps.graphql.compiled decides when to use it,
caches the statements and runs them.

A root field `<t>`, `<t>_by_pk` or `<t>_aggregate` becomes one statement:

    SELECT (SELECT COALESCE(json_agg(json_build_object('id', g0."gql0", 'addresses', (
               SELECT COALESCE(json_agg(json_build_object('city', g1."gql0") ORDER BY g1."gql_o"), '[]')
               FROM (<the addresses' rows: readable, where, order_by, for this g0 row> LIMIT 5 OFFSET 0) g1
           )) ORDER BY g0."gql_o"), '[]') FROM (<the customers' rows> LIMIT 100 OFFSET 0) g0)::text

The row sets are the generic path's own querysets (`Table.readable`, `execution.filtered`, i.e.
`compile.where_q` and `compile.order_expressions`), so tenancy, the policy table's row filters and
every where/order_by rule are the same; limit and offset are checked by the same `check_limit`. A
relationship's rows are correlated to their parent row, so its where, order_by, limit and offset
apply per parent. Values are written as the generic path writes them: datetimes, dates and
decimals as the REST serializer shows them (tables.Column.convert), floats as orjson writes
them, JSON columns as stored, NULLs, keys in selection order under their aliases.

What the compiler does not know raises Unsupported, and the whole operation goes to the generic
executor: introspection, a field whose resolver is not the generic one (anything added later with
a resolver of its own), an argument it does not read, a column type without an exact SQL
spelling, a `limit` or `where` the generic path would refuse.
"""

import re
from dataclasses import dataclass, field

from django.core.exceptions import EmptyResultSet
from django.db import models
from django.db.models import F, Window
from django.db.models.expressions import Expression, RawSQL
from django.db.models.functions import RowNumber
from django.db.models.sql.where import WhereNode
from graphql import FragmentDefinitionNode, GraphQLList, GraphQLNonNull, get_named_type
from graphql.execution.collect_fields import FragmentDetails, collect_fields, collect_subfields
from graphql.execution.values import get_argument_values
from rest_framework import serializers
from rest_framework.settings import api_settings

from . import execution
from .limits import check_limit

LIST_ARGUMENTS = frozenset({"where", "order_by", "limit", "offset"})
ORDER = "gql_o"  # the row number of a list's order, beside the selected columns
MAX_PAIRS = 50  # json_build_object takes at most 100 arguments
NAME = re.compile(r"^[_A-Za-z][_0-9A-Za-z]*$")


class Unsupported(Exception):
    """The operation is left to the generic executor."""


# Values, written as the generic path writes them ------------------------------------------------


def _timestamp(ref):
    # DRF's iso-8601 in UTC: microseconds only when there are some, `Z` for +00:00.
    utc = f"({ref} AT TIME ZONE 'UTC')"
    return (
        f"(to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || "
        f"CASE WHEN date_trunc('second', {utc}) = {utc} THEN '' ELSE to_char({utc}, '.US') END || 'Z')"
    )


def _date(ref):
    return f"to_char({ref}, 'YYYY-MM-DD')"


# to_char's scientific formats with 1 to 17 significant digits (C's correctly rounded %.*e).
_SCIENTIFIC = ", ".join(f"({p}, '9{'.' + '9' * (p - 1) if p > 1 else ''}EEEE')" for p in range(1, 18))
_DOUBLE_MAX = "1.7976931348623157e308"
_DOUBLE_MIN = "4.9e-324"


def _float(ref):
    """A double as orjson writes it (Python's shortest round-trip digits; plain notation for
    exponents -5..15 with `.0` when integral, else `1e+16`, `1.5e-7`). PostgreSQL's own float8 text
    is not always the shortest, so the digits are found here: the closest decimal with the fewest
    significant digits that reads back as the same double."""
    reads_back = (
        f"CASE WHEN abs(s.t::numeric) > {_DOUBLE_MAX} OR (s.t::numeric <> 0 AND abs(s.t::numeric) < {_DOUBLE_MIN}) "
        f"THEN false ELSE s.t::float8 = x.v END"
    )
    shortest = (
        f"(SELECT s.t FROM (SELECT fm.p, trim(to_char(x.v, fm.f)) AS t FROM (VALUES {_SCIENTIFIC}) fm(p, f)) s "
        f"WHERE {reads_back} ORDER BY s.p LIMIT 1)"
    )
    mantissa = "split_part(y.t, 'e', 1)"
    exponent = "split_part(y.t, 'e', 2)::int"
    digits = f"replace(ltrim({mantissa}, '-'), '.', '')"
    sign = f"CASE WHEN left({mantissa}, 1) = '-' THEN '-' ELSE '' END"
    plain = (
        f"{sign} || CASE WHEN {exponent} >= 0 THEN "
        f"CASE WHEN length({digits}) <= {exponent} + 1 "
        f"THEN {digits} || repeat('0', {exponent} + 1 - length({digits})) || '.0' "
        f"ELSE left({digits}, {exponent} + 1) || '.' || substr({digits}, {exponent} + 2) END "
        f"ELSE '0.' || repeat('0', -{exponent} - 1) || {digits} END"
    )
    scientific = f"{mantissa} || 'e' || CASE WHEN {exponent} > 0 THEN '+' ELSE '' END || {exponent}::text"
    finite = "x.v < 'Infinity'::float8 AND x.v > '-Infinity'::float8"
    return (
        f"(SELECT (CASE WHEN y.v IS NULL THEN NULL WHEN y.t IS NULL THEN 'null' "
        f"WHEN {exponent} BETWEEN -5 AND 15 THEN {plain} ELSE {scientific} END)::json "
        f"FROM (SELECT x.v, CASE WHEN {finite} THEN {shortest} END AS t FROM (SELECT ({ref})::float8 AS v) x) y)"
    )


def model_field(model, lookup):
    """The model field at the end of an ORM lookup path ("event__type", "customer_id")."""
    parts = lookup.split("__")
    for part in parts[:-1]:
        model = model._meta.get_field(part).related_model
    return model._meta.get_field(parts[-1])


def _serializer_field(column):
    return getattr(column.convert, "__self__", None)


def _plain_datetime(column):
    field = _serializer_field(column)
    return (
        isinstance(field, serializers.DateTimeField)
        and type(field).to_representation is serializers.DateTimeField.to_representation
        and type(field).enforce_timezone is serializers.DateTimeField.enforce_timezone
        and not hasattr(field, "timezone")
        and str(getattr(field, "format", api_settings.DATETIME_FORMAT)).lower() == "iso-8601"
    )


def _plain_date(column):
    field = _serializer_field(column)
    return (
        isinstance(field, serializers.DateField)
        and type(field).to_representation is serializers.DateField.to_representation
        and str(getattr(field, "format", api_settings.DATE_FORMAT)).lower() == "iso-8601"
    )


def _plain_decimal(column, db_field):
    field = _serializer_field(column)
    return (
        isinstance(field, serializers.DecimalField)
        and type(field).to_representation is serializers.DecimalField.to_representation
        and getattr(field, "coerce_to_string", api_settings.COERCE_DECIMAL_TO_STRING)
        and not field.localize
        and not getattr(field, "normalize_output", False)
        and field.decimal_places in (None, db_field.decimal_places)
        and (field.max_digits is None or field.max_digits >= db_field.max_digits)
    )


_TEXT_FIELDS = (models.CharField, models.TextField, models.GenericIPAddressField)
_INTEGER_FIELDS = (models.IntegerField, models.BigIntegerField, models.SmallIntegerField)


def _db_field(table, column):
    field = model_field(table.model, column.lookup)
    while field.is_relation:
        field = field.target_field
    return field


def column_sql(table, column, ref):
    """SQL giving `column`'s JSON value from `ref` exactly as the generic path writes it."""
    db_field = _db_field(table, column)
    kind = column.type_name
    if kind == "String" and column.convert is None and isinstance(db_field, _TEXT_FIELDS):
        return ref
    if kind in ("Int", "bigint") and column.convert is None and isinstance(db_field, _INTEGER_FIELDS):
        return ref
    if kind == "Boolean" and column.convert is None and isinstance(db_field, models.BooleanField):
        return ref
    if kind == "Float" and column.convert is None and isinstance(db_field, models.FloatField):
        return _float(ref)
    if kind == "jsonb" and column.convert is None and isinstance(db_field, models.JSONField):
        if db_field.decoder is None:
            return ref
    if kind == "timestamptz" and isinstance(db_field, models.DateTimeField) and _plain_datetime(column):
        return _timestamp(ref)
    if kind == "date" and isinstance(db_field, models.DateField) and _plain_date(column):
        return _date(ref)
    if kind == "numeric" and isinstance(db_field, models.DecimalField) and _plain_decimal(column, db_field):
        return f"({ref})::text"
    raise Unsupported(f"{table.name}.{column.name}: no exact SQL spelling")


def aggregate_sql(table, column, function, ref):
    """`function` (sum avg min max) over `column` as resolve_aggregate_fields writes it."""
    if function == "avg":
        return _float(f"avg({ref})")
    value = f"{function}({ref})"
    if function == "sum" and column.type_name == "Float":
        return _float(value)
    return column_sql(table, column, value)


def _resolves(field_def, resolver):
    """Whether the schema resolves this field with the generic resolver the compiler mirrors (a
    field given a resolver of its own is not compiled)."""
    return field_def is not None and field_def.resolve is resolver


def _literal(name):
    if not NAME.match(name):
        raise Unsupported(f"{name!r} is not a plain name")
    return f"'{name}'"


def json_object(pairs):
    """json_build_object over [(key, sql)], in order; long objects are joined as text."""
    chunks = [pairs[i : i + MAX_PAIRS] for i in range(0, len(pairs), MAX_PAIRS)] or [[]]
    built = [
        "json_build_object(" + ", ".join(f"{_literal(key)}, {sql}" for key, sql in chunk) + ")" for chunk in chunks
    ]
    if len(built) == 1:
        return built[0]
    texts = [f"{sql}::text" for sql in built]
    inner = [f"left({texts[0]}, -1)"]
    inner += [f"substr(left({text}, -1), 2)" for text in texts[1:-1]]
    inner.append(f"substr({texts[-1]}, 2)")
    return "(" + " || ', ' || ".join(inner) + ")::json"


# The compiler -------------------------------------------------------------------------------


@dataclass
class Statement:
    """One root field's SQL. Its params may hold slots (ValueSlot, PageSlot) that each run binds
    to the variables' values (apps.graphql.compiled)."""

    sql: str
    params: list = field(default_factory=list)


class Param(Expression):
    """A variable's value in a statement compiled once for all its values: written `%s` with a
    ValueSlot param. Given in place of the variable's value (apps.graphql.compiled decides which
    variables may be), it reaches the SQL through `where_q` and `filter(pk=...)` untouched."""

    def __init__(self, name):
        super().__init__(output_field=models.Field())
        self.name = name

    def resolve_expression(self, *args, **kwargs):
        return self

    def as_sql(self, compiler, connection):
        return "%s", [ValueSlot(self.name)]

    def get_group_by_cols(self):
        return []


@dataclass(frozen=True)
class ValueSlot:
    name: str


@dataclass(frozen=True)
class PageSlot:
    """`LIMIT %s OFFSET %s` of a list field whose limit or offset is a variable (a Param): checked
    (check_limit, as the generic path does) and bound on each run."""

    field_name: str
    limit: object
    offset: object
    capped: bool
    part: str  # "limit" or "offset"

    def value(self, values):
        args = {
            name: values[given.name] if isinstance(given, Param) else given
            for name, given in (("limit", self.limit), ("offset", self.offset))
        }
        limit, offset = page_values(self.field_name, args, self.capped)
        return limit if self.part == "limit" else offset


def page_values(field_name, args, capped=True):
    """(limit, offset) of a list field as execution.page takes them: at most MAX_ROWS rows for a
    list (`capped`), every row for an aggregate with no limit (LIMIT NULL)."""
    limit = check_limit(field_name, args)
    if not capped and args.get("limit") is None:
        limit = None
    return limit, args.get("offset") or 0


def page_params(field_name, args, capped=True):
    limit, offset = args.get("limit"), args.get("offset")
    if isinstance(limit, Param) or isinstance(offset, Param):
        return [PageSlot(field_name, limit, offset, capped, part) for part in ("limit", "offset")]
    return list(page_values(field_name, args, capped))


def paged(inner, field_name, args, capped=True):
    """`inner` (the ordered rows' sql, params) with LIMIT and OFFSET as parameters."""
    sql, params = inner
    return f"{sql} LIMIT %s OFFSET %s", params + page_params(field_name, args, capped)


class Compiler:
    def __init__(self, schema, context, document, operation, variable_values):
        self.schema = schema
        self.context = context
        self.operation = operation
        self.variable_values = variable_values
        self.fragments = {}
        for definition in document.definitions:
            if isinstance(definition, FragmentDefinitionNode):
                if definition.variable_definitions:
                    raise Unsupported("fragment variables")
                self.fragments[definition.name.value] = FragmentDetails(definition)
        self.aliases = 0

    def alias(self):
        self.aliases += 1
        return f"g{self.aliases - 1}"

    def arguments(self, field_def, details):
        detail = details[0]
        return get_argument_values(field_def, detail.node, self.variable_values, detail.fragment_variable_values)

    def subfields(self, object_type, details):
        collected = collect_subfields(
            self.schema, self.fragments, self.variable_values, self.operation, object_type, details
        )
        return collected.grouped_field_set

    # Root fields

    def roots(self):
        """[(response key, str constant | Statement)] in response order."""
        query_type = self.schema.query_type
        collected = collect_fields(self.schema, self.fragments, self.variable_values, query_type, self.operation)
        roots = []
        for key, details in collected.grouped_field_set.items():
            name = details[0].node.name.value
            if name == "__typename":
                roots.append((key, query_type.name))
                continue
            field_def = query_type.fields.get(name)
            if field_def is None:
                raise Unsupported(name)
            roots.append((key, self.root(name, field_def, details)))
        return roots

    def root(self, name, field_def, details):
        tables = self.context.tables
        args = self.arguments(field_def, details)
        object_type = get_named_type(field_def.type)
        if name in tables and self._is_list_of(field_def.type, tables[name]):
            table = tables[name]
            self._list_arguments(args)
            queryset, ordering = execution.filtered(self.context, table, args)
            rows = self.rows(table, object_type, details)
            inner = paged(rows.queryset(queryset, ordering), name, args)
            return Statement(*_as_text(rows.array(inner)))
        if name.endswith("_by_pk") and name[: -len("_by_pk")] in tables:
            table = tables[name[: -len("_by_pk")]]
            if set(args) != {"id"} or object_type.name != table.name:
                raise Unsupported(name)
            rows = self.rows(table, object_type, details)
            inner = rows.queryset(table.readable(self.context.actor).filter(pk=args["id"]))
            sql, params = rows.single(inner)
            return Statement(f"SELECT ({sql})::text", params)
        if name.endswith("_aggregate") and name[: -len("_aggregate")] in tables:
            table = tables[name[: -len("_aggregate")]]
            self._list_arguments(args)
            return Statement(*_as_text(self.aggregate(table, object_type, details, args, name)))
        raise Unsupported(name)

    @staticmethod
    def _is_list_of(type_, table):
        return (
            isinstance(type_, GraphQLNonNull)
            and isinstance(type_.of_type, GraphQLList)
            and get_named_type(type_).name == table.name
        )

    @staticmethod
    def _list_arguments(args):
        if set(args) - LIST_ARGUMENTS:
            raise Unsupported(f"arguments {sorted(set(args) - LIST_ARGUMENTS)}")

    # <t>_aggregate

    def aggregate(self, table, object_type, details, args, field_name):
        pairs, params = [], []
        queryset, ordering = execution.filtered(self.context, table, args)
        for key, field_details in self.subfields(object_type, details).items():
            name = field_details[0].node.name.value
            field_def = object_type.fields.get(name)
            if name == "__typename":
                pairs.append((key, f"{_literal(object_type.name)}::text"))
            elif name == "nodes" and _resolves(field_def, execution.resolve_aggregate_nodes):
                nodes_type = get_named_type(field_def.type)
                rows = self.rows(table, nodes_type, field_details)
                inner = paged(rows.queryset(queryset, ordering), field_name, args)
                sql, sub_params = rows.array(inner)
                pairs.append((key, f"({sql})"))
                params += sub_params
            elif name == "aggregate" and _resolves(field_def, execution.resolve_aggregate_fields):
                sql, sub_params = self.aggregate_fields(
                    table, get_named_type(field_def.type), field_details, queryset, ordering, args, field_name
                )
                pairs.append((key, f"({sql})"))
                params += sub_params
            else:
                raise Unsupported(f"{object_type.name}.{name}")
        return f"SELECT {json_object(pairs)}", params

    def aggregate_fields(self, table, fields_type, details, queryset, ordering, args, field_name):
        """count, sum, avg, min and max over the rows of `limit`/`offset` (all when no limit)."""
        alias = self.alias()
        lookups = {}

        def ref(column):
            if column.lookup not in lookups:
                lookups[column.lookup] = f"gql{len(lookups)}"
            return f'{alias}."{lookups[column.lookup]}"'

        pairs = []
        for key, field_details in self.subfields(fields_type, details).items():
            name = field_details[0].node.name.value
            field_def = fields_type.fields.get(name)
            if name == "__typename":
                pairs.append((key, f"{_literal(fields_type.name)}::text"))
            elif name == "count" and _resolves(field_def, execution.resolve_by_key):
                count_args = self.arguments(field_def, field_details)
                columns = count_args.get("columns") or []
                if columns:
                    # As the generic path: the rows where the first column is not null.
                    distinct = "DISTINCT " if count_args.get("distinct") else ""
                    pairs.append((key, f"count({distinct}{ref(table.columns[columns[0]])})"))
                else:
                    pairs.append((key, "count(*)"))
            elif name in ("sum", "avg", "min", "max") and _resolves(field_def, execution.resolve_by_key):
                function_type = get_named_type(field_def.type)
                inner = []
                for inner_key, inner_details in self.subfields(function_type, field_details).items():
                    column_name = inner_details[0].node.name.value
                    if column_name == "__typename":
                        inner.append((inner_key, f"{_literal(function_type.name)}::text"))
                        continue
                    if function_type.fields[column_name].resolve is not execution.resolve_by_key:
                        raise Unsupported(f"{function_type.name}.{column_name}")
                    column = table.columns[column_name]
                    inner.append((inner_key, aggregate_sql(table, column, name, ref(column))))
                pairs.append((key, json_object(inner)))
            else:
                raise Unsupported(f"{fields_type.name}.{name}")
        values = {name: F(lookup) for lookup, name in lookups.items()}
        rows = (queryset.values(**values) if values else queryset.values("pk")).order_by(*ordering)
        inner_sql, params = paged(_sql(rows), field_name, args, capped=False)
        return f"SELECT {json_object(pairs)} FROM ({inner_sql}) {alias}", params

    # Rows of a table

    def rows(self, table, object_type, details):
        return Rows(self, table, object_type, details)


class Rows:
    """One level of the selection: a table's rows, the selected fields and their relationships."""

    def __init__(self, compiler, table, object_type, details):
        self.compiler = compiler
        self.table = table
        self.object_type = object_type
        self.alias = compiler.alias()
        self.lookups = {}  # ORM lookup -> column alias in the row set
        self.selection = []  # (key, kind, payload)
        for key, field_details in compiler.subfields(object_type, details).items():
            name = field_details[0].node.name.value
            if name == "__typename":
                self.selection.append((key, "typename", None))
                continue
            field_def = object_type.fields.get(name)
            if field_def is None:
                raise Unsupported(f"{object_type.name}.{name}")
            if name in table.columns and field_def.resolve is None:
                column = table.columns[name]
                self.selection.append((key, "column", (column, self.ref(column.lookup))))
            elif name in table.relationships and field_def.resolve is execution.resolve_relationship:
                relationship = table.relationships[name]
                self.selection.append((key, "relationship", (relationship, field_def, field_details)))
                self.ref(relationship.local)
            else:
                raise Unsupported(f"{object_type.name}.{name}")

    def ref(self, lookup):
        if lookup not in self.lookups:
            self.lookups[lookup] = f"gql{len(self.lookups)}"
        return f'{self.alias}."{self.lookups[lookup]}"'

    def queryset(self, queryset, ordering=None):
        """(sql, params) of the rows: `queryset` with the selected columns and, for a list, in
        `ordering` with each row's number in it (ready for LIMIT and OFFSET)."""
        values = {name: F(lookup) for lookup, name in self.lookups.items()}
        if ordering is not None:
            values[ORDER] = Window(RowNumber(), order_by=ordering)
        queryset = queryset.values(**values) if values else queryset.values("pk")
        if ordering is not None:
            queryset = queryset.order_by(*ordering)
        return _sql(queryset)

    def object(self):
        """(json_build_object over this level's row `alias`, params), relationships nested."""
        pairs, params = [], []
        for key, kind, payload in self.selection:
            if kind == "typename":
                pairs.append((key, f"{_literal(self.object_type.name)}::text"))
            elif kind == "column":
                column, ref = payload
                pairs.append((key, column_sql(self.table, column, ref)))
            else:
                relationship, field_def, field_details = payload
                sql, sub_params = self.relationship(relationship, field_def, field_details)
                pairs.append((key, f"({sql})"))
                params += sub_params
        return json_object(pairs), params

    def relationship(self, relationship, field_def, details):
        compiler = self.compiler
        context = compiler.context
        target = context.tables[relationship.target]
        target_type = get_named_type(field_def.type)
        if target_type.name != target.name:
            raise Unsupported(relationship.name)
        args = compiler.arguments(field_def, details)
        parent = RawSQL(self.ref(relationship.local), (), output_field=model_field(target.model, relationship.remote))
        child = Rows(compiler, target, target_type, details)
        if not relationship.many:
            if args:
                raise Unsupported(f"arguments on {relationship.name}")
            queryset = target.readable(context.actor).filter(**{relationship.remote: parent})
            return child.single(child.queryset(queryset))
        Compiler._list_arguments(args)
        # The page of each parent: limit and offset apply per parent row, as the generic path's
        # per-parent ROW_NUMBER() window does.
        page = page_params(relationship.name, args)  # checked before anything else, as there
        queryset, ordering = execution.filtered(context, target, args)
        queryset = queryset.filter(**{relationship.remote: parent})
        sql, params = child.queryset(queryset, ordering)
        return child.array((f"{sql} LIMIT %s OFFSET %s", params + page))

    def array(self, inner):
        """A JSON array of the rows of `inner` (sql, params), in their order; [] when none."""
        inner_sql, inner_params = inner
        obj, params = self.object()
        sql = (
            f"SELECT COALESCE(json_agg({obj} ORDER BY {self.alias}.\"{ORDER}\"), '[]'::json) "
            f"FROM ({inner_sql}) {self.alias}"
        )
        return sql, params + list(inner_params)

    def single(self, inner):
        """The JSON object of the one row of `inner`; NULL when there is none."""
        inner_sql, inner_params = inner
        obj, params = self.object()
        return f"SELECT {obj} FROM ({inner_sql}) {self.alias}", params + list(inner_params)


def _sql(queryset):
    try:
        sql, params = queryset.query.get_compiler(queryset.db).as_sql()
    except EmptyResultSet:
        # A `where` that matches nothing by its shape (`_in: []`): Django will not write it, and
        # reads no rows. The same columns, order and page with the condition FALSE.
        query = queryset.query.clone()
        query.where = WhereNode()
        query.add_extra(None, None, ["FALSE"], None, None, None)
        sql, params = query.get_compiler(queryset.db).as_sql()
    return sql, list(params)


def _as_text(statement):
    sql, params = statement
    return f"SELECT ({sql})::text", params


def compile_operation(schema, context, document, operation, variable_values):
    """[(response key, str constant | Statement)] for every root field, or raise Unsupported."""
    return Compiler(schema, context, document, operation, variable_values).roots()
