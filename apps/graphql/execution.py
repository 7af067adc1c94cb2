"""Running a GraphQL operation for an actor: rows for the root fields, relationships in batches.

Transport-agnostic: the HTTP view calls `execute_operation`, and the WebSocket consumer
(subscriptions, next) will call it the same way with the actor of its `connection_init`.

A document is parsed, validated and measured once per (schema, text) (apps.graphql.documents).
A query operation is then offered to the registered query compilers: on PostgreSQL,
apps.graphql.sql answers it with one SQL statement per root field when it can compile every root
field, and its response's data holds those fields' JSON as `orjson.Fragment`s (serialize with
apps.core.jsonutil.dumps before comparing). Otherwise (SQLite, mutations, introspection, anything
not compiled, an argument error) graphql-core's executor runs the resolvers below.

Speed of the generic executor: a root field is one query. Its resolver looks ahead at the
selection and fetches each relationship for all the rows of the level at once (`customer_id IN
(...)`, a per-parent `ROW_NUMBER()` window for `limit`/`offset`), then the next level for all
those rows: the number of queries follows the depth of the selection, never the number of rows.
An array relationship's `<rel>_aggregate` is one grouped query for every parent of the level
(`GROUP BY customer_id`), its `nodes` one more; computed fields are the REST representation's,
built for the whole level by the serializer's row builder (apps.core.rows).
"""

import logging
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Avg, Count, F, Max, Min, Sum, Window
from django.db.models.functions import RowNumber
from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLIncludeDirective,
    GraphQLSkipDirective,
    InlineFragmentNode,
    OperationType,
    execute,
    get_named_type,
    get_operation_ast,
)
from graphql.execution.values import get_argument_values, get_directive_values

from apps.core.errors import APIError

from . import documents, limits
from .compile import distinct_order_by, distinct_rows, order_expressions, where_q
from .limits import check_limit

logger = logging.getLogger("stateset.graphql")

PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
INTERNAL = "INTERNAL_ERROR"


@dataclass
class Context:
    actor: object
    tables: dict
    request: object = None
    cache: dict = field(default_factory=dict)


# Errors ------------------------------------------------------------------------------------


def guarded(resolver):
    """The contract's codes on a resolver's errors: an APIError (401/403 from the policy table)
    keeps its code; an unexpected exception is logged and shown without its internals."""

    def resolve(*args, **kwargs):
        try:
            return resolver(*args, **kwargs)
        except GraphQLError as exc:
            if not (exc.extensions or {}).get("code"):
                exc.extensions = {**(exc.extensions or {}), "code": VALIDATION_FAILED}
            raise
        except APIError as exc:
            raise GraphQLError(exc.message, extensions={"code": exc.code}) from exc
        except Exception as exc:
            logger.exception("GraphQL resolver failed")
            raise GraphQLError("An internal error occurred.", extensions={"code": INTERNAL}) from exc

    return resolve


def format_error(error, default_code):
    formatted = error.formatted
    extensions = dict(formatted.get("extensions") or {})
    extensions.setdefault("code", default_code)
    if formatted.get("path"):
        # Hasura's clients read the path from extensions too.
        extensions["path"] = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in formatted["path"])
    formatted["extensions"] = extensions
    return formatted


def failure(message, code):
    return {"errors": [{"message": message, "extensions": {"code": code}}]}


# The selection, looked ahead -----------------------------------------------------------------


def _included(info, node):
    skip = get_directive_values(GraphQLSkipDirective, node, info.variable_values)
    if skip and skip.get("if"):
        return False
    include = get_directive_values(GraphQLIncludeDirective, node, info.variable_values)
    return not (include is not None and not include.get("if"))


def selected_fields(info, nodes):
    """{response key: [field nodes]} under `nodes`, through fragments (every fragment here is on
    the one object type of its field: the schema has no interfaces or unions)."""
    found = {}

    def walk(selection_set):
        for selection in selection_set.selections if selection_set else ():
            if not _included(info, selection):
                continue
            if isinstance(selection, FieldNode):
                key = selection.alias.value if selection.alias else selection.name.value
                found.setdefault(key, []).append(selection)
            elif isinstance(selection, InlineFragmentNode):
                walk(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = info.fragments[selection.name.value]
                walk(getattr(fragment, "definition", fragment).selection_set)

    for node in nodes:
        walk(node.selection_set)
    return found


# Rows ----------------------------------------------------------------------------------------


def filtered(context, table, args, partition=()):
    """The table's readable rows matching `where`, in `order_by` order (with the pk last), and
    with `distinct_on` the first row of each group of equal values (within each value of the
    `partition` columns: an array relationship's parent key)."""
    queryset = table.readable(context.actor)
    if args.get("where"):
        queryset = queryset.filter(where_q(context, table, args["where"]))
    order_by, distinct_on = args.get("order_by"), args.get("distinct_on")
    if distinct_on:
        order_by = distinct_order_by(table, distinct_on, order_by)
    ordering = order_expressions(table, order_by, context)
    if distinct_on:
        queryset = distinct_rows(queryset, table, distinct_on, ordering, partition)
    return queryset, ordering


def page(queryset, ordering, args, field_name, capped=True):
    """The rows of `limit`/`offset`; a list field (`capped`) gets at most MAX_ROWS rows, while an
    aggregate over the rows with no `limit` counts them all."""
    limit = check_limit(field_name, args)
    if not capped and args.get("limit") is None:
        limit = None
    queryset = queryset.order_by(*ordering)
    offset = args.get("offset") or 0
    if limit is not None:
        return queryset[offset : offset + limit]
    return queryset[offset:] if offset else queryset


def _lookups(table, extra=()):
    lookups = {column.lookup for column in table.columns.values()}
    lookups.update(relationship.local for relationship in table.relationships.values())
    lookups.update(extra)
    return sorted(lookups)


def to_row(table, values):
    row = {}
    for column in table.columns.values():
        value = values[column.lookup]
        row[column.name] = column.convert(value) if column.convert is not None and value is not None else value
    row["__keys"] = values  # the relationships' keys, whatever columns the type shows
    row["__rel"] = {}
    return row


def rows_of(queryset, table, extra=()):
    return [to_row(table, values) for values in queryset.values(*_lookups(table, extra))]


def attach(context, info, table, rows, nodes, object_type):
    """Fetch every relationship, relationship aggregate and computed field selected under `nodes`
    for all `rows` at once, level by level."""
    selected = selected_fields(info, nodes)
    computed = {key_nodes[0].name.value for key_nodes in selected.values()} & set(table.computed)
    if computed and rows:
        _attach_computed(context, table, rows, computed)
    for key, field_nodes in selected.items():
        name = field_nodes[0].name.value
        relationship = table.relationships.get(name)
        if relationship is None:
            aggregated = table.relationships.get(name.removesuffix("_aggregate"))
            if name.endswith("_aggregate") and aggregated is not None and aggregated.many:
                _attach_aggregate(context, info, rows, key, field_nodes, object_type.fields[name], aggregated)
            continue
        field_def = object_type.fields[relationship.name]
        args = get_argument_values(field_def, field_nodes[0], info.variable_values)
        target = context.tables[relationship.target]
        keys = {row["__keys"][relationship.local] for row in rows} - {None}
        if relationship.many:
            children = _children(context, target, relationship, args, keys)
            grouped = _grouped(children, relationship.remote)
            for row in rows:
                row["__rel"][key] = grouped.get(row["__keys"][relationship.local], [])
        else:
            children = (
                rows_of(target.readable(context.actor).filter(**{f"{relationship.remote}__in": keys}), target)
                if keys
                else []
            )
            by_key = {child["__keys"][relationship.remote]: child for child in children}
            for row in rows:
                row["__rel"][key] = by_key.get(row["__keys"][relationship.local])
        if children:
            attach(context, info, target, children, field_nodes, get_named_type(field_def.type))


def _grouped(children, remote):
    grouped = {}
    for child in children:
        grouped.setdefault(child["__keys"][remote], []).append(child)
    return grouped


def _attach_computed(context, table, rows, names):
    """The serializer's computed fields, as REST shows them, for every row of the level: one
    query for the rows' representation columns (and one per nested list it reads)."""
    shown = table.representations(context.actor, [row["__keys"][table.pk] for row in rows])
    for row in rows:
        representation = shown.get(row["__keys"][table.pk]) or {}
        for name in names:
            row[name] = representation.get(name)


def _ranked(queryset, ordering, remote, offset, limit):
    """Each parent's rows `offset` to `offset + limit` in `ordering`: one window over them all."""
    queryset = queryset.annotate(_gql_rank=Window(RowNumber(), partition_by=[F(remote)], order_by=ordering))
    if limit is None:
        return queryset.filter(_gql_rank__gt=offset)
    return queryset.filter(_gql_rank__gt=offset, _gql_rank__lte=offset + limit)


def _children(context, target, relationship, args, keys):
    """An array relationship's rows for all the parents, `limit`/`offset` applied per parent."""
    limit = check_limit(relationship.name, args)  # before the keys: a bad limit fails with no rows too
    if not keys:
        return []
    queryset, ordering = filtered(context, target, args, partition=(relationship.remote,))
    queryset = queryset.filter(**{f"{relationship.remote}__in": keys})
    # One query for every parent's page (at most MAX_ROWS each, as every list field): number each
    # parent's children in order, keep a range.
    queryset = _ranked(queryset, ordering, relationship.remote, args.get("offset") or 0, limit)
    return rows_of(queryset.order_by(*ordering), target, extra=(relationship.remote,))


def _attach_aggregate(context, info, rows, key, field_nodes, field_def, relationship):
    """`<rel>_aggregate { aggregate {...} nodes {...} }` for every parent row of the level: one
    grouped query for all its `aggregate` selections, one for its `nodes`."""
    args = get_argument_values(field_def, field_nodes[0], info.variable_values)
    target = context.tables[relationship.target]
    aggregate_type = get_named_type(field_def.type)
    check_limit(f"{relationship.name}_aggregate", args)
    keys = {row["__keys"][relationship.local] for row in rows} - {None}
    nodes, plans = {}, {}  # by response key under the field
    for sub_key, sub_nodes in selected_fields(info, field_nodes).items():
        sub_name = sub_nodes[0].name.value
        if sub_name == "aggregate":
            fields_type = get_named_type(aggregate_type.fields["aggregate"].type)
            plans[sub_key] = aggregate_plan(info, target, sub_nodes, fields_type)
        elif sub_name == "nodes":
            children = _children(context, target, relationship, args, keys)
            nodes[sub_key] = _grouped(children, relationship.remote)
            if children:
                attach(context, info, target, children, sub_nodes, get_named_type(aggregate_type.fields["nodes"].type))
    grouped = {}
    expressions = {alias: expression for plan in plans.values() for alias, expression in plan.expressions.items()}
    if keys and expressions:
        queryset, ordering = filtered(context, target, args, partition=(relationship.remote,))
        queryset = queryset.filter(**{f"{relationship.remote}__in": keys})
        if args.get("limit") is not None or args.get("offset"):
            # Hasura aggregates the rows of the page: each parent's `limit` rows from `offset`.
            ranked = _ranked(queryset, ordering, relationship.remote, args.get("offset") or 0, args.get("limit"))
            queryset = queryset.filter(pk__in=ranked.values("pk"))
        for values in queryset.order_by().values(relationship.remote).annotate(**expressions):
            grouped[values[relationship.remote]] = values
    for row in rows:
        parent = row["__keys"][relationship.local]
        by_key = {sub_key: plan.result(grouped.get(parent, {})) for sub_key, plan in plans.items()}
        by_key.update((sub_key, children.get(parent, [])) for sub_key, children in nodes.items())
        row["__rel"][key] = {"__by_key": by_key}


# Resolvers -----------------------------------------------------------------------------------


def resolve_list(table):
    @guarded
    def resolve(_root, info, **args):
        context = info.context
        queryset, ordering = filtered(context, table, args)
        rows = rows_of(page(queryset, ordering, args, info.field_name), table)
        attach(context, info, table, rows, info.field_nodes, get_named_type(info.return_type))
        return rows

    return resolve


def resolve_by_pk(table):
    @guarded
    def resolve(_root, info, id):  # noqa: A002 - Hasura's argument name
        context = info.context
        rows = rows_of(table.readable(context.actor).filter(pk=id), table)
        attach(context, info, table, rows, info.field_nodes, get_named_type(info.return_type))
        return rows[0] if rows else None

    return resolve


def resolve_relationship(row, info, **_args):
    # Filled in by the parent's resolver, for every row of the level in one query.
    return row["__rel"].get(info.path.key)


def resolve_aggregate_root(table):
    @guarded
    def resolve(_root, info, **args):
        queryset, ordering = filtered(info.context, table, args)
        return {"table": table, "queryset": queryset, "ordering": ordering, "args": args}

    return resolve


@guarded
def resolve_aggregate_nodes(source, info):
    if "__by_key" in source:  # a relationship's aggregate, fetched with its level
        return source["__by_key"].get(info.path.key, [])
    table = source["table"]
    rows = rows_of(page(source["queryset"], source["ordering"], source["args"], f"{table.name}_aggregate"), table)
    attach(info.context, info, table, rows, info.field_nodes, get_named_type(info.return_type))
    return rows


@guarded
def resolve_aggregate_fields(source, info):
    """count, sum, avg, min and max as selected, in one query."""
    if "__by_key" in source:
        return source["__by_key"].get(info.path.key)
    table = source["table"]
    queryset = page(source["queryset"], source["ordering"], source["args"], f"{table.name}_aggregate", capped=False)
    plan = aggregate_plan(info, table, info.field_nodes, get_named_type(info.return_type))
    return plan.result(queryset.aggregate(**plan.expressions) if plan.expressions else {})


_FUNCTIONS = {"sum": Sum, "avg": Avg, "min": Min, "max": Max}


@dataclass
class AggregatePlan:
    """The SQL aggregates of an `aggregate { ... }` selection (`expressions`, by generated alias)
    and how their values are shaped as the selection asks (`shape`, by response key)."""

    expressions: dict
    shape: dict

    def result(self, values):
        """The selection's answer from the aggregates' `values` ({} for a parent with no rows:
        counts are 0, the rest null)."""
        result = {}
        for key, inner in self.shape.items():
            if not isinstance(inner, dict):
                result[key] = values.get(inner) or 0
                continue
            result[key] = {
                inner_key: _aggregate_value(values.get(alias), column, name)
                for inner_key, (alias, column, name) in inner.items()
            }
        return result


def aggregate_plan(info, table, nodes, aggregate_fields_type):
    """The AggregatePlan of the `aggregate` fields `nodes` (of type `aggregate_fields_type`)."""
    expressions, shape = {}, {}

    def alias():
        return f"_gql_aggregate_{len(expressions)}"

    for key, key_nodes in selected_fields(info, nodes).items():
        name = key_nodes[0].name.value
        if name == "count":
            args = get_argument_values(aggregate_fields_type.fields["count"], key_nodes[0], info.variable_values)
            columns = args.get("columns") or []
            shape[key] = alias()
            if columns:
                # Hasura counts the rows where the columns are not null (distinct: their distinct values).
                expressions[shape[key]] = Count(table.columns[columns[0]].lookup, distinct=bool(args.get("distinct")))
            else:
                expressions[shape[key]] = Count("pk")
        elif name in _FUNCTIONS:
            shape[key] = {}
            for inner_key, inner_nodes in selected_fields(info, key_nodes).items():
                column_name = inner_nodes[0].name.value
                if column_name == "__typename":
                    continue
                column = table.columns[column_name]
                shape[key][inner_key] = (alias(), column, name)
                expressions[shape[key][inner_key][0]] = _FUNCTIONS[name](column.lookup)
    return AggregatePlan(expressions, shape)


def _aggregate_value(value, column, function):
    if value is None:
        return None
    if function == "avg":
        return float(value)
    if column.convert is not None:
        return column.convert(value)
    return value


def resolve_by_key(source, info, **_args):
    """Aggregate results are keyed by response key (aliases may ask the same function twice)."""
    return source.get(info.path.key) if source is not None else None


# Operations ----------------------------------------------------------------------------------

# `compiled(schema, context, query, document, operation, variables)` -> a response, or None to
# let the next one (and finally graphql-core's executor) run the query. apps.graphql.sql
# registers itself in GraphQLConfig.ready(): it imports this module, so this one cannot import it.
_query_compilers = []


def register_query_compiler(compiled):
    if compiled not in _query_compilers:
        _query_compilers.append(compiled)


def _is_anonymous(actor):
    return actor is None or (actor.role == "anonymous" and not actor.api_key_kind)


def execute_operation(
    schema,
    context,
    query,
    variables=None,
    operation_name=None,
    allowed=(OperationType.QUERY,),
    full_schema=None,
):
    """A GraphQL response (`{"data": ..., "errors": [...]}`) for one operation.

    `schema` is the actor's own (apps.graphql.schema.get_schema). `full_schema`, when given, only
    words a refusal: a caller with no credential whose document is valid for a role allowed
    everything is told MISSING_API_KEY rather than that the fields do not exist."""
    if not isinstance(query, str) or not query.strip():
        return failure("Give the GraphQL document as a string in `query`.", PARSE_FAILED)
    if variables is not None and not isinstance(variables, dict):
        return failure("`variables` must be a JSON object.", VALIDATION_FAILED)
    if operation_name is not None and not isinstance(operation_name, str):
        return failure("`operationName` must be a string.", VALIDATION_FAILED)
    too_large = limits.check_size(query)
    if too_large is not None:
        return {"errors": [format_error(too_large, PARSE_FAILED)]}
    checked = documents.check(schema, query)  # parsed, validated and measured once per text
    if checked.parse_error is not None:
        return {"errors": [format_error(checked.parse_error, PARSE_FAILED)]}
    document, errors = checked.document, checked.errors
    if (
        checked.validation_errors
        and full_schema is not None
        and _is_anonymous(context.actor)
        and not documents.check(full_schema, query).validation_errors
    ):
        return failure("No API key provided.", "MISSING_API_KEY")
    if errors:
        return {"errors": [format_error(error, VALIDATION_FAILED) for error in errors]}
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return failure(
            "Name the operation to run in `operationName` (the document has several, or not that one).",
            VALIDATION_FAILED,
        )
    if operation.operation not in allowed:
        return failure(f"A {operation.operation.value} cannot be run here.", VALIDATION_FAILED)
    if operation.operation == OperationType.MUTATION:
        # One transaction for the whole operation: a failed field undoes every field before it
        # (inside the idempotency claim's transaction when the request has a key).
        with transaction.atomic():
            result = execute(
                schema, document, variable_values=variables, operation_name=operation_name, context_value=context
            )
            if result.errors:
                transaction.set_rollback(True)
        # Nothing was changed: no field's answer may suggest otherwise.
        response = {"data": None if result.errors else result.data}
    else:
        for compiled in _query_compilers:
            response = compiled(schema, context, query, document, operation, variables)
            if response is not None:
                return response
        result = execute(
            schema, document, variable_values=variables, operation_name=operation_name, context_value=context
        )
        response = {"data": result.data}
    if result.errors:
        # An error with no path is the variables' (coerced before anything runs).
        response["errors"] = [
            format_error(error, INTERNAL if error.path else VALIDATION_FAILED) for error in result.errors
        ]
    return response
