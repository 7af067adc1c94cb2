"""The subscription root: Hasura's live queries and streaming subscriptions, per role.

Every query root field (`<t>`, `<t>_by_pk`, `<t>_aggregate`) is also a subscription root field, the
very same field object (same arguments, same resolver): a live query is the query, run again by
apps.graphql.live whenever a change may have altered its answer. So the subscription root of a role
mirrors its query root, and a role that may not read a table cannot subscribe to it.

Beside them, per readable table, Hasura's streaming subscription:

    <t>_stream(batch_size: Int!, cursor: [<t>_stream_cursor_input]!, where: <t>_bool_exp): [<t>!]!
    input <t>_stream_cursor_input { initial_value: <t>_stream_cursor_value_input!, ordering: cursor_ordering }
    input <t>_stream_cursor_value_input { <column>: <scalar> ... }
    enum cursor_ordering { ASC DESC }

The rows after the cursor, in cursor order, `batch_size` at a time. The first batch starts strictly
after `initial_value`; the live engine then moves the cursor to the last row sent. Unlike Hasura,
which compares the cursor column alone (and may skip rows sharing a value at a batch's edge), the
cursor is the column and the primary key, so rows with equal values are neither lost nor repeated.
"""

from django.db.models import Q
from graphql import (
    GraphQLArgument,
    GraphQLEnumType,
    GraphQLEnumValue,
    GraphQLError,
    GraphQLField,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    get_named_type,
)

from . import execution
from .compile import where_q
from .limits import MAX_ROWS
from .scalars import ORDERED_SCALARS, SCALARS

CURSOR_ORDERING = GraphQLEnumType(
    "cursor_ordering",
    {
        "ASC": GraphQLEnumValue("ASC", description="ascending ordering of the cursor"),
        "DESC": GraphQLEnumValue("DESC", description="descending ordering of the cursor"),
    },
    description="ordering argument of a cursor",
)

# What the live engine hands a streaming field between runs (apps.graphql.live): the cursor it
# reached, and what the field reached this run.
STREAM_CURSOR = "stream_cursor"
STREAM_NEXT = "stream_next"

STREAM_SUFFIX = "_stream"


def cursor_columns(table):
    """The columns a stream may use as its cursor: those with an order (not JSON)."""
    return {name: column for name, column in table.columns.items() if column.type_name in ORDERED_SCALARS}


class SubscriptionBuilder:
    """The subscription root's fields for a SchemaBuilder, given its query root's fields."""

    def __init__(self, builder, query_fields):
        self.builder = builder
        self.query_fields = query_fields

    def fields(self):
        if not self.builder.tables:
            return {}  # a role that reads nothing (`no_queries_available`) has nothing to subscribe to
        fields = dict(self.query_fields)
        for table in self.builder.tables.values():
            fields[f"{table.name}{STREAM_SUFFIX}"] = self._stream_field(table)
        return fields

    def _stream_field(self, table):
        name = table.name
        value_input = GraphQLInputObjectType(
            f"{name}_stream_cursor_value_input",
            {
                column_name: GraphQLInputField(SCALARS[column.type_name])
                for column_name, column in cursor_columns(table).items()
            },
            description="Initial value of the column from where the streaming should start",
        )
        cursor_input = GraphQLInputObjectType(
            f"{name}_stream_cursor_input",
            {
                "initial_value": GraphQLInputField(
                    GraphQLNonNull(value_input), description="Stream column input with initial value"
                ),
                "ordering": GraphQLInputField(CURSOR_ORDERING, description="cursor ordering"),
            },
            description=f'Streaming cursor of the table "{name}"',
        )
        return GraphQLField(
            GraphQLNonNull(GraphQLList(GraphQLNonNull(self.builder.objects[name]))),
            args={
                "batch_size": GraphQLArgument(
                    GraphQLNonNull(GraphQLInt), description="maximum number of rows returned in a single batch"
                ),
                "cursor": GraphQLArgument(
                    GraphQLNonNull(GraphQLList(cursor_input)),
                    description="cursor to stream the results returned by the query",
                ),
                "where": GraphQLArgument(self.builder.bool_exps[name], description="filter the rows returned"),
            },
            resolve=resolve_stream(table),
            description=f'fetch data from the table in a streaming manner: "{name}"',
        )


def stream_cursor(table, cursor):
    """(column, descending, initial value) of a `cursor` argument; a GraphQLError when it does not
    name exactly one column with a value."""
    items = [item for item in cursor or () if item is not None]
    if len(items) != 1:
        raise GraphQLError(f"{table.name}{STREAM_SUFFIX}: give exactly one cursor.")
    initial = {key: value for key, value in (items[0].get("initial_value") or {}).items()}
    if len(initial) != 1:
        raise GraphQLError(f"{table.name}{STREAM_SUFFIX}: the cursor's initial_value names exactly one column.")
    (column_name, value), = initial.items()
    if value is None:
        raise GraphQLError(f"{table.name}{STREAM_SUFFIX}: the cursor's initial value of {column_name} is null.")
    descending = items[0].get("ordering") == "DESC"
    return cursor_columns(table)[column_name], descending, value


def resolve_stream(table):
    @execution.guarded
    def resolve(_root, info, batch_size, cursor, where=None):
        if batch_size < 1 or batch_size > MAX_ROWS:
            raise GraphQLError(f"{info.field_name}: batch_size must be between 1 and {MAX_ROWS}.")
        column, descending, initial = stream_cursor(table, cursor)
        context = info.context
        queryset = table.readable(context.actor)
        if where:
            queryset = queryset.filter(where_q(context, table, where))
        lookup, pk = column.lookup, table.pk
        reached = context.cache.get(STREAM_CURSOR)
        after = "lt" if descending else "gt"
        if reached is None:
            condition = Q(**{f"{lookup}__{after}": initial})
        else:
            value, key = reached
            condition = Q(**{f"{lookup}__{after}": value}) | Q(**{lookup: value, f"{pk}__{after}": key})
        order = [f"-{lookup}", f"-{pk}"] if descending else [lookup, pk]
        queryset = queryset.filter(condition).order_by(*order)[:batch_size]
        rows = execution.rows_of(queryset, table, extra=(pk,))
        if rows:
            last = rows[-1]["__keys"]
            context.cache[STREAM_NEXT] = (last[lookup], last[pk])
        execution.attach(context, info, table, rows, info.field_nodes, get_named_type(info.return_type))
        return rows

    return resolve
