"""The GraphQL schema, generated from the tables (apps.graphql.tables) in Hasura's shapes.

Per table `t`: the object type `t`; `t_bool_exp` (`_and _or _not`, a `<scalar>_comparison_exp`
per column, the target's bool_exp per relationship); `t_order_by` (the `order_by` enum per
column); `t_select_column`; `t_aggregate` with `aggregate { count sum avg min max }` and `nodes`.
Root fields `t(where, order_by, limit, offset)`, `t_by_pk(id)` and `t_aggregate(...)`.

Per-role schemas, as Hasura's: a schema is built for a permission shape, the set of
(table, operation) pairs the policy table grants an actor (`grants`). Only readable tables have
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


class SchemaBuilder:
    def __init__(self, tables, grants=None):
        """`grants`: the (table name, operation) pairs the schema exposes; None: every one."""
        self.grants = grants
        self.tables = {name: table for name, table in tables.items() if self.allows(table, "read")}
        self.comparisons = {name: _comparison_type(name) for name in SCALARS}
        self.objects, self.bool_exps, self.order_bys, self.select_columns = {}, {}, {}, {}
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
            {
                column.name: GraphQLInputField(ORDER_BY)
                for column in table.columns.values()
                if column.type_name != "jsonb"
            },
            description=f'Ordering options when selecting data from "{name}".',
        )
        self.select_columns[name] = GraphQLEnumType(
            f"{name}_select_column", {column: GraphQLEnumValue(column) for column in table.columns}
        )

    def allows(self, table, operation):
        return self.grants is None or (table.name, operation) in self.grants

    def list_args(self, table):
        name = table.name
        return {
            "where": GraphQLArgument(self.bool_exps[name], description="filter the rows returned"),
            "order_by": GraphQLArgument(
                GraphQLList(GraphQLNonNull(self.order_bys[name])), description="sort the rows by one or more columns"
            ),
            "limit": GraphQLArgument(GraphQLInt, description="limit the number of rows returned"),
            "offset": GraphQLArgument(GraphQLInt, description="skip the first n rows. Use only with order_by"),
        }

    def _object_fields(self, table):
        fields = {}
        for column in table.columns.values():
            scalar = SCALARS[column.type_name]
            fields[column.name] = GraphQLField(GraphQLNonNull(scalar) if column.name == "id" else scalar)
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
        numeric = [c for c in table.columns.values() if c.type_name in NUMERIC_SCALARS]
        ordered = [c for c in table.columns.values() if c.type_name in ORDERED_SCALARS - {"Boolean"}]
        for function, columns in (("sum", numeric), ("avg", numeric), ("max", ordered), ("min", ordered)):
            if not columns:
                continue
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
                GraphQLNonNull(self._aggregate_type(table)),
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
    """The operations the schema can expose on `table`: read, and the mutations its viewset has."""
    operations = ["read"]
    if table.viewset is not None:
        operations += ["create", "update", "delete", *object_actions(table)]
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
    return frozenset(
        (table.name, operation)
        for table in all_tables().values()
        for operation in table_operations(table)
        if policy.allows(actor, table.label, operation)
    )


def grants(actor):
    """The (table, operation) pairs the policy table grants `actor`: its permission shape, which
    depends only on its role, key kind and scopes (row filters are applied when rows are read)."""
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
