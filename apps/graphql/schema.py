"""The GraphQL schema, generated from the tables (apps.graphql.tables) in Hasura's shapes.

Per table `t`: the object type `t`; `t_bool_exp` (`_and _or _not`, a `<scalar>_comparison_exp`
per column, the target's bool_exp per relationship); `t_order_by` (the `order_by` enum per
column); `t_select_column`; `t_aggregate` with `aggregate { count sum avg min max }` and `nodes`.
Root fields `t(where, order_by, limit, offset)`, `t_by_pk(id)` and `t_aggregate(...)`.

Built once per process (the registry does not change while it runs). `mutation_root`
(apps.graphql.mutations) is built from the same tables and types; subscriptions come next.
"""

import threading

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

from . import execution
from .mutations import MutationBuilder
from .scalars import NUMERIC_SCALARS, ORDERED_SCALARS, SCALARS, TEXT_SCALARS
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


class SchemaBuilder:
    def __init__(self, tables):
        self.tables = tables
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
        return fields

    def build(self):
        mutation_fields = MutationBuilder(self).fields()
        return GraphQLSchema(
            query=GraphQLObjectType("query_root", self.query_fields()),
            mutation=GraphQLObjectType("mutation_root", mutation_fields) if mutation_fields else None,
        )


_lock = threading.Lock()
_schema = None


def get_schema():
    global _schema
    with _lock:
        if _schema is None:
            _schema = SchemaBuilder(all_tables()).build()
    return _schema
