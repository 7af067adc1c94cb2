"""Query operations answered through SQL on PostgreSQL (apps.graphql.sql), with their statements
cached, or handed back to the generic executor.

`run_query` is registered with apps.graphql.execution (GraphQLConfig.ready()): for a query
operation it answers `{"data": {...}}` where each root field's value is the JSON text PostgreSQL
built, spliced in as an `orjson.Fragment` (never parsed again), or None when the generic executor
must run: not PostgreSQL, STATESET_GRAPHQL_SQL off, a time zone other than UTC, variables that
do not coerce, a root field the compiler does not know, a limit the generic path refuses, a
database error.

Statements are compiled once per (schema, document, operation name, the actor's scope, the values
of the variables that shape the SQL) and bound on each run. A variable is a parameter, its value
left out of the key, when each of its uses is a plain value the SQL only compares or pages with:
a `limit`, `offset` or `id` argument, or a `_eq _neq _gt _gte _lt _lte` operand inside a
`where`, of a scalar type other than jsonb. Any other use (an `_in` list, a LIKE pattern that
becomes a regex, `@include(if:)`, a whole `where` object) makes its value part of the key. A null
value is never a parameter (`_eq: null` is an error, `limit: null` is the default).
"""

import logging

import orjson
from django.conf import settings
from django.db import DatabaseError, connections
from django.utils import timezone
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    ListTypeNode,
    ListValueNode,
    NonNullTypeNode,
    ObjectValueNode,
    OperationType,
    VariableNode,
)
from graphql.execution.values import VariableValues, get_variable_values

from apps.core import policy
from apps.core.errors import APIError

from . import sql
from .documents import BoundedCache

logger = logging.getLogger("stateset.graphql")

PAGE_ARGUMENTS = frozenset({"limit", "offset"})
COMPARISONS = frozenset({"_eq", "_neq", "_gt", "_gte", "_lt", "_lte"})
UNPARAMETERIZED_TYPES = frozenset({"jsonb"})

# Bounded: a plan holds its document's text and SQL; 512 plans of a few kB each.
PLANS = BoundedCache(512, 8_000_000)
PARAMETERS = BoundedCache(512, 1_000_000)
UNSUPPORTED = False  # a plan: the generic executor answers
BAKED = "baked"  # a plan key whose variables may not be parameters: use every value in the key


def enabled(connection):
    return connection.vendor == "postgresql" and getattr(settings, "STATESET_GRAPHQL_SQL", True)


# Which variables are parameters ------------------------------------------------------------


def _fragments(document):
    return {
        definition.name.value: definition
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }


class _Uses:
    """Every use of each variable in an operation (and the fragments it spreads): as a `limit` or
    `offset`, as a compared value (an `id`, a where comparison's operand), or anything else."""

    def __init__(self, document, operation):
        self.fragments = _fragments(document)
        self.paging, self.compared, self.other = set(), set(), set()
        self.visited = set()
        self.directives(operation)
        self.selection_set(operation.selection_set)

    def directives(self, node):
        for directive in node.directives or ():
            for argument in directive.arguments or ():
                self.value(argument.value)

    def selection_set(self, selection_set):
        for selection in selection_set.selections if selection_set else ():
            self.directives(selection)
            if isinstance(selection, FieldNode):
                for argument in selection.arguments or ():
                    name, value = argument.name.value, argument.value
                    if name in PAGE_ARGUMENTS and isinstance(value, VariableNode):
                        self.paging.add(value.name.value)
                    elif name == "id" and isinstance(value, VariableNode):
                        self.compared.add(value.name.value)
                    else:
                        self.value(value, where=name == "where")
                self.selection_set(selection.selection_set)
            elif isinstance(selection, InlineFragmentNode):
                self.selection_set(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name not in self.visited and name in self.fragments:
                    self.visited.add(name)
                    self.directives(self.fragments[name])
                    self.selection_set(self.fragments[name].selection_set)

    def value(self, node, where=False, compared=False):
        if isinstance(node, VariableNode):
            (self.compared if compared else self.other).add(node.name.value)
        elif isinstance(node, ObjectValueNode):
            for field in node.fields:
                operand = where and field.name.value in COMPARISONS and isinstance(field.value, VariableNode)
                self.value(field.value, where=where, compared=operand)
        elif isinstance(node, ListValueNode):
            for item in node.values:
                self.value(item, where=where)


def _scalar_variables(operation):
    names = set()
    for definition in operation.variable_definitions or ():
        type_node = definition.type
        if isinstance(type_node, NonNullTypeNode):
            type_node = type_node.type
        if not isinstance(type_node, ListTypeNode) and type_node.name.value not in UNPARAMETERIZED_TYPES:
            names.add(definition.variable.name.value)
    return names


def parameters(query, document, operation, operation_name):
    """(paging, compared): the variables of `operation` that may be parameters, computed once per
    document. A paging variable (only ever a limit or offset) is one even when null or missing
    (the default page); a compared one only with a value."""
    key = (query, operation_name)
    names = PARAMETERS.get(key)
    if names is None:
        uses = _Uses(document, operation)
        scalars = _scalar_variables(operation)
        paging = (uses.paging - uses.compared - uses.other) & scalars
        compared = ((uses.paging | uses.compared) - uses.other - paging) & scalars
        names = (frozenset(paging), frozenset(compared))
        PARAMETERS.put(key, names, len(query))
    return names


# Plans -------------------------------------------------------------------------------------


def _actor_key(actor):
    """What the readable row sets depend on besides the document: tenancy, role, key, scopes,
    the row filter's owner, and the policy table itself (a test may swap a row)."""
    return (
        getattr(actor.organization, "pk", actor.organization),
        actor.role,
        actor.api_key_kind,
        frozenset(actor.scopes or ()),
        actor.actor_id,
        tuple(map(id, policy.POLICIES.values())),
    )


def _compile(schema, context, document, operation, coerced, bound):
    """The plan ([(key, constant | Statement)]) with the `bound` variables as parameters;
    UNSUPPORTED when the generic executor must answer; BAKED when a parameter could not be one."""
    values = dict(coerced.coerced)
    values.update({name: sql.Param(name) for name in bound})
    variable_values = VariableValues(coerced.sources, values)
    try:
        return sql.compile_operation(schema, context, document, operation, variable_values)
    except (sql.Unsupported, GraphQLError, APIError, KeyError) as exc:
        # What the compiler does not take, or what the generic path refuses: not the parameters.
        logger.debug("GraphQL query left to the generic executor: %r", exc)
        return UNSUPPORTED
    except Exception:
        if bound:
            return BAKED  # something read a parameter's value: compile with the values
        logger.warning("GraphQL query not compiled to SQL; the generic executor runs it", exc_info=True)
        return UNSUPPORTED


def _size(query, plan):
    statements = plan if isinstance(plan, list) else ()
    return len(query) + sum(len(root.sql) for _key, root in statements if isinstance(root, sql.Statement))


def _json_key(variables):
    try:
        return orjson.dumps(variables, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return None


def plan_for(schema, context, query, document, operation, variables, coerced):
    """(plan, the values of the variables it takes as parameters), compiled once per key."""
    operation_name = operation.name.value if operation.name else None
    paging, compared = parameters(query, document, operation, operation_name)
    values = coerced.coerced
    bound = {name: values.get(name) for name in paging}
    bound.update({name: values[name] for name in compared if values.get(name) is not None})
    shape = (schema, query, operation_name, _actor_key(context.actor))
    baked = _json_key({name: value for name, value in (variables or {}).items() if name not in bound})
    if baked is None:
        return _compile(schema, context, document, operation, coerced, {}), {}
    key = (*shape, baked, frozenset(bound))
    plan = PLANS.get(key)
    if plan is None:
        plan = _compile(schema, context, document, operation, coerced, bound)
        PLANS.put(key, plan, _size(query, plan))
    if plan is BAKED:
        bound = {}
        key = (*shape, _json_key(variables or {}), frozenset())
        plan = PLANS.get(key)
        if plan is None:
            plan = _compile(schema, context, document, operation, coerced, bound)
            PLANS.put(key, plan, _size(query, plan))
    return plan, bound


def _bind(params, values):
    bound = []
    for param in params:
        if isinstance(param, sql.ValueSlot):
            bound.append(values[param.name])
        elif isinstance(param, sql.PageSlot):
            bound.append(param.value(values))
        else:
            bound.append(param)
    return bound


# Running -----------------------------------------------------------------------------------


def run_query(schema, context, query, document, operation, variables):
    """The response of a query operation through SQL, or None to run the generic executor."""
    if operation.operation != OperationType.QUERY or context.actor is None:
        return None
    connection = connections["default"]
    if not enabled(connection) or timezone.get_current_timezone_name() != "UTC":
        return None
    coerced = get_variable_values(schema, operation.variable_definitions or (), variables or {}, max_errors=50)
    if isinstance(coerced, list):
        return None  # the generic executor reports the variables' errors
    plan, values = plan_for(schema, context, query, document, operation, variables, coerced)
    if plan is UNSUPPORTED:
        return None
    try:
        # Every statement is bound before any runs: a limit refused here is the generic path's.
        statements = [
            (key, root if isinstance(root, str) else (root.sql, _bind(root.params, values))) for key, root in plan
        ]
    except GraphQLError:
        return None
    data = {}
    try:
        with connection.cursor() as cursor:
            for key, statement in statements:
                if isinstance(statement, str):
                    data[key] = statement
                    continue
                cursor.execute(*statement)
                text = cursor.fetchone()[0]
                data[key] = None if text is None else orjson.Fragment(text)
    except DatabaseError:
        logger.warning("compiled GraphQL query failed; the generic executor runs it", exc_info=True)
        return None
    return {"data": data}
