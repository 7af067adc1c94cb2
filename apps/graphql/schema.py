"""The GraphQL schema, generated from the tables (apps.graphql.tables) in Hasura's shapes.

Per table `t`: the object type `t` (columns, computed fields, relationships and, per array
relationship, `<rel>_aggregate`); `t_bool_exp` (`_and _or _not`, a `<scalar>_comparison_exp` per
column, the target's bool_exp per relationship); `t_order_by` (the `order_by` enum per column, the
target's `order_by` per object relationship, `<rel>_aggregate: <target>_aggregate_order_by` per
array relationship); `t_select_column`; `t_aggregate` with `aggregate { count sum avg min max }`
and `nodes`. Root fields `t(where, order_by, limit, offset, distinct_on)`, `t_by_pk(id)` and
`t_aggregate(...)`.

Per-role schemas, as Hasura's: a schema is built for a permission shape, the set of
(table, operation, writable fields) triples the policy table grants an actor (`grants`): only
readable tables have
root fields, relationships lead only to readable tables, and the mutation root has a field only
for an operation granted on a readable table (a mutation answers rows, as Hasura's `returning`
needs select permission). So introspection shows what the role may use, and a query naming
anything else fails validation; the resolvers' policy checks stay as the second line of defence.
Schemas are cached per shape (bounded: a restricted key's scopes can be any set), so a request
builds nothing once its shape has been seen. `mutation_root` is built in apps.graphql.mutations,
`subscription_root` (the query root's fields as live queries, and `<t>_stream`) in
apps.graphql.subscriptions.
"""

import functools
from types import SimpleNamespace

from graphql import (
    GraphQLArgument,
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLEnumValue,
    GraphQLField,
    GraphQLFloat,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLString,
)

from apps.core import policy
from apps.core.errors import AuthenticationFailed, PermissionDenied

from . import execution
from .mutations import MutationBuilder, object_actions
from .scalars import NUMERIC_SCALARS, ORDERED_SCALARS, SCALARS, TEXT_SCALARS
from .subscriptions import SubscriptionBuilder
from .tables import all_tables

ORDER_BY = GraphQLEnumType(
    "order_by",
    {
        name: GraphQLEnumValue(name)
        for name in ("asc", "asc_nulls_first", "asc_nulls_last", "desc", "desc_nulls_first", "desc_nulls_last")
    },
    description="Column ordering options (asc sorts NULLs last, desc first).",
)


def _comparison_type(scalar_name):
    scalar = SCALARS[scalar_name]
    fields = {"_is_null": GraphQLInputField(GraphQLBoolean)}
    operators = ("_eq", "_neq")
    if scalar_name in ORDERED_SCALARS:
        operators += ("_gt", "_gte", "_lt", "_lte")
    for operator in operators:
        fields[operator] = GraphQLInputField(scalar)
    if scalar_name != "jsonb":
        fields["_in"] = GraphQLInputField(GraphQLList(GraphQLNonNull(scalar)))
        fields["_nin"] = GraphQLInputField(GraphQLList(GraphQLNonNull(scalar)))
    if scalar_name in TEXT_SCALARS:
        for operator in ("_like", "_nlike", "_ilike", "_nilike"):
            fields[operator] = GraphQLInputField(GraphQLString)
    if scalar_name == "jsonb":
        fields["_contains"] = GraphQLInputField(scalar, description="does the column contain the given json value")
        fields["_contained_in"] = GraphQLInputField(scalar, description="is the column contained in the json value")
        fields["_has_key"] = GraphQLInputField(GraphQLString, description="does the string exist as a top-level key")
        keys = GraphQLList(GraphQLNonNull(GraphQLString))
        fields["_has_keys_any"] = GraphQLInputField(keys, description="do any of these strings exist as top-level keys")
        fields["_has_keys_all"] = GraphQLInputField(keys, description="do all of these strings exist as top-level keys")
    return GraphQLInputObjectType(
        f"{scalar_name}_comparison_exp",
        fields,
        description=f"Boolean expression to compare columns of type {scalar_name}.",
    )


# The root field of a role that may read no table: GraphQL requires a query type with a field,
# and Hasura answers such a role with this one.
NO_QUERIES = (
    "There are no queries available to the current role. Either there are no sources configured, "
    "or the current role doesn't have the required permissions."
)


def _indexed(grants):
    index = {}
    for name, operation, *fields in grants:
        index[(name, operation)] = fields[0] if fields else None
    return index


class SchemaBuilder:
    def __init__(self, tables, grants=None):
        """`grants`: the (table name, operation, writable fields) triples the schema exposes
        (fields None: every field the serializer takes; a pair means None); None: everything."""
        self.grants = None if grants is None else _indexed(grants)
        self.tables = {name: table for name, table in tables.items() if self.allows(table, "read")}
        self.comparisons = {name: _comparison_type(name) for name in SCALARS}
        self.objects, self.bool_exps, self.order_bys, self.select_columns = {}, {}, {}, {}
        self.aggregates, self.aggregate_order_bys = {}, {}
        for table in tables.values():
            self._declare(table)

    def _declare(self, table):
        name = table.name
        self.objects[name] = GraphQLObjectType(
            name, lambda: self._object_fields(table), description=f'Rows of the table "{name}" ({table.label}).'
        )
        self.bool_exps[name] = GraphQLInputObjectType(
            f"{name}_bool_exp",
            lambda: self._bool_exp_fields(table),
            description=f'Boolean expression to filter rows of the table "{name}". All fields are combined with AND.',
        )
        self.order_bys[name] = GraphQLInputObjectType(
            f"{name}_order_by",
            lambda: self._order_by_fields(table),
            description=f'Ordering options when selecting data from "{name}".',
        )
        self.select_columns[name] = GraphQLEnumType(
            f"{name}_select_column", {column: GraphQLEnumValue(column) for column in table.columns}
        )

    def allows(self, table, operation):
        return self.grants is None or (table.name, operation) in self.grants

    def writable(self, table, operation):
        """The fields the policy table lets the role write for `operation` (None: all of them;
        none when the operation is not granted)."""
        return None if self.grants is None else self.grants.get((table.name, operation), frozenset())

    def list_args(self, table):
        name = table.name
        return {
            "where": GraphQLArgument(self.bool_exps[name], description="filter the rows returned"),
            "order_by": GraphQLArgument(
                GraphQLList(GraphQLNonNull(self.order_bys[name])), description="sort the rows by one or more columns"
            ),
            "limit": GraphQLArgument(GraphQLInt, description="limit the number of rows returned"),
            "offset": GraphQLArgument(GraphQLInt, description="skip the first n rows. Use only with order_by"),
            "distinct_on": GraphQLArgument(
                GraphQLList(GraphQLNonNull(self.select_columns[name])), description="distinct select on columns"
            ),
        }

    def _order_by_fields(self, table):
        fields = {
            column.name: GraphQLInputField(ORDER_BY) for column in table.columns.values() if column.type_name != "jsonb"
        }
        for relationship in table.relationships.values():
            if relationship.target not in self.tables:
                continue  # the role may not read the target: no sorting by it either
            if relationship.many:
                fields[f"{relationship.name}_aggregate"] = GraphQLInputField(
                    self._aggregate_order_by(self.tables[relationship.target])
                )
            else:
                fields[relationship.name] = GraphQLInputField(self.order_bys[relationship.target])
        return fields

    def _aggregate_order_by(self, table):
        """`<t>_aggregate_order_by`: an array relationship sorted by its rows' count, or by the
        max/min (ordered columns) or sum/avg (numeric columns) of one of their columns."""
        name = table.name
        if name not in self.aggregate_order_bys:
            fields = {"count": GraphQLInputField(ORDER_BY)}
            for function, columns in self._aggregated_columns(table):
                fields[function] = GraphQLInputField(
                    GraphQLInputObjectType(
                        f"{name}_{function}_order_by",
                        {column.name: GraphQLInputField(ORDER_BY) for column in columns},
                        description=f'order by {function}() on columns of table "{name}"',
                    )
                )
            self.aggregate_order_bys[name] = GraphQLInputObjectType(
                f"{name}_aggregate_order_by", fields, description=f'order by aggregate values of table "{name}"'
            )
        return self.aggregate_order_bys[name]

    @staticmethod
    def _aggregated_columns(table):
        """(function, columns) for sum/avg over numeric columns and max/min over ordered ones."""
        numeric = [c for c in table.columns.values() if c.type_name in NUMERIC_SCALARS]
        ordered = [c for c in table.columns.values() if c.type_name in ORDERED_SCALARS - {"Boolean"}]
        for function, columns in (("sum", numeric), ("avg", numeric), ("max", ordered), ("min", ordered)):
            if columns:
                yield function, columns

    def _object_fields(self, table):
        fields = {}
        for column in table.columns.values():
            scalar = SCALARS[column.type_name]
            fields[column.name] = GraphQLField(GraphQLNonNull(scalar) if column.name == "id" else scalar)
        for computed in table.computed.values():
            fields[computed.name] = GraphQLField(
                SCALARS[computed.type_name], description="A computed field, as the REST representation shows it"
            )
        for relationship in table.relationships.values():
            if relationship.target not in self.tables:
                continue  # the role may not read the target: no way to it
            target = self.tables[relationship.target]
            target_type = self.objects[target.name]
            if relationship.many:
                fields[relationship.name] = GraphQLField(
                    GraphQLNonNull(GraphQLList(GraphQLNonNull(target_type))),
                    args=self.list_args(target),
                    resolve=execution.resolve_relationship,
                    description="An array relationship",
                )
                fields[f"{relationship.name}_aggregate"] = GraphQLField(
                    GraphQLNonNull(self.aggregate_type(target)),
                    args=self.list_args(target),
                    resolve=execution.resolve_relationship,
                    description="An aggregate relationship",
                )
            else:
                fields[relationship.name] = GraphQLField(
                    target_type, resolve=execution.resolve_relationship, description="An object relationship"
                )
        return fields

    def _bool_exp_fields(self, table):
        own = self.bool_exps[table.name]
        fields = {
            "_and": GraphQLInputField(GraphQLList(GraphQLNonNull(own))),
            "_or": GraphQLInputField(GraphQLList(GraphQLNonNull(own))),
            "_not": GraphQLInputField(own),
        }
        for column in table.columns.values():
            fields[column.name] = GraphQLInputField(self.comparisons[column.type_name])
        for relationship in table.relationships.values():
            if relationship.target in self.tables:
                fields[relationship.name] = GraphQLInputField(self.bool_exps[relationship.target])
        return fields

    def aggregate_type(self, table):
        """`<t>_aggregate`, one type for the root field and every array relationship to `t`."""
        if table.name not in self.aggregates:
            self.aggregates[table.name] = self._aggregate_type(table)
        return self.aggregates[table.name]

    def _aggregate_type(self, table):
        name = table.name
        by_key = execution.resolve_by_key
        fields = {
            "count": GraphQLField(
                GraphQLNonNull(GraphQLInt),
                args={
                    "columns": GraphQLArgument(GraphQLList(GraphQLNonNull(self.select_columns[name]))),
                    "distinct": GraphQLArgument(GraphQLBoolean),
                },
                resolve=by_key,
            )
        }
        for function, columns in self._aggregated_columns(table):
            column_fields = {
                column.name: GraphQLField(self._aggregate_scalar(function, column), resolve=by_key)
                for column in columns
            }
            function_type = GraphQLObjectType(f"{name}_{function}_fields", column_fields)
            fields[function] = GraphQLField(function_type, resolve=by_key)
        aggregate_fields = GraphQLObjectType(f"{name}_aggregate_fields", fields)
        return GraphQLObjectType(
            f"{name}_aggregate",
            {
                "aggregate": GraphQLField(aggregate_fields, resolve=execution.resolve_aggregate_fields),
                "nodes": GraphQLField(
                    GraphQLNonNull(GraphQLList(GraphQLNonNull(self.objects[name]))),
                    resolve=execution.resolve_aggregate_nodes,
                ),
            },
            description=f'Aggregated selection of "{name}".',
        )

    @staticmethod
    def _aggregate_scalar(function, column):
        if function == "avg":
            return GraphQLFloat
        return SCALARS[column.type_name]

    def query_fields(self):
        fields = {}
        for table in self.tables.values():
            name = table.name
            rows = GraphQLNonNull(GraphQLList(GraphQLNonNull(self.objects[name])))
            fields[name] = GraphQLField(
                rows,
                args=self.list_args(table),
                resolve=execution.resolve_list(table),
                description=f'fetch data from the table: "{name}"',
            )
            fields[f"{name}_aggregate"] = GraphQLField(
                GraphQLNonNull(self.aggregate_type(table)),
                args=self.list_args(table),
                resolve=execution.resolve_aggregate_root(table),
                description=f'fetch aggregated fields from the table: "{name}"',
            )
            fields[f"{name}_by_pk"] = GraphQLField(
                self.objects[name],
                args={"id": GraphQLArgument(GraphQLNonNull(GraphQLString))},
                resolve=execution.resolve_by_pk(table),
                description=f'fetch data from the table: "{name}" using primary key columns',
            )
        if not fields:
            fields["no_queries_available"] = GraphQLField(
                GraphQLNonNull(GraphQLString), resolve=lambda _root, _info: NO_QUERIES, description=NO_QUERIES
            )
        return fields

    def build(self):
        mutation_fields = MutationBuilder(self).fields()
        query_fields = self.query_fields()
        # Every query root field is also a live query (the same field objects), plus `<t>_stream`.
        subscription_fields = SubscriptionBuilder(self, query_fields).fields()
        return GraphQLSchema(
            query=GraphQLObjectType("query_root", query_fields),
            mutation=GraphQLObjectType("mutation_root", mutation_fields) if mutation_fields else None,
            subscription=GraphQLObjectType("subscription_root", subscription_fields) if subscription_fields else None,
        )


def table_operations(table):
    """The operations the schema can expose on `table`: read, create, update and delete (a table
    with no collection of its own is written only through its parent's nested inserts) and the
    actions of its collection."""
    operations = ["read", "create", "update", "delete"]
    if table.viewset is not None:
        operations += object_actions(table)
    return operations


@functools.lru_cache(maxsize=512)
def _grants(role_key, policies_key):
    # `policies_key` only invalidates: the policy table is read from apps.core.policy itself.
    if role_key is None:
        actor = None
    else:
        role, api_key_kind, scopes = role_key
        # authorize() reads only these three attributes of an actor.
        actor = SimpleNamespace(role=role, api_key_kind=api_key_kind, scopes=tuple(sorted(scopes)))
    granted = set()
    for table in all_tables().values():
        for operation in table_operations(table):
            try:
                rule = policy.authorize(actor, table.label, operation)
            except (PermissionDenied, AuthenticationFailed):
                continue
            granted.add((table.name, operation, rule.fields))
    return frozenset(granted)


def grants(actor):
    """The (table, operation, writable fields) triples the policy table grants `actor`: its
    permission shape, which depends only on its role, key kind and scopes (row filters are
    applied when rows are read and written)."""
    role_key = None if actor is None else (actor.role, actor.api_key_kind, frozenset(actor.scopes or ()))
    # The policy table does not change while a server runs, but a test may swap a row.
    return _grants(role_key, tuple(map(id, policy.POLICIES.values())))


@functools.lru_cache(maxsize=64)
def _schema(shape):
    return SchemaBuilder(all_tables(), shape).build()


def get_schema(actor=None, *, full=False):
    """The schema `actor` may use (cached per permission shape); `full=True`: every table and
    operation (what a role allowed everything would see)."""
    return _schema(None if full else grants(actor))
