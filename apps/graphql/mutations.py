"""Hasura's mutations over the tables, run through each collection's REST machinery.

A mutation is the REST request it stands for: the collection's own `ResourceViewSet`, acting for
the GraphQL caller, validates the input (`validated_input`: the serializer's rules and the policy
table's writable fields), finds the row (`get_object`: tenancy and the role's row filter) and
calls the declared service; an action runs the viewset's own `@action` method. So validation,
transitions, audit rows and events cannot drift between the two doors.

Per table `t`, when its viewset has the service: `insert_t(objects)`, `insert_t_one(object)`,
`update_t_by_pk(pk_columns, _set, _inc)`, `update_t(where, _set, _inc)`, `delete_t_by_pk(id)`,
`delete_t(where)`, and `<action>_<object>(id, reason)` per detail action the policy table declares.
The operation runs in one transaction (apps.graphql.execution): any error undoes every field.
"""

import datetime
from decimal import Decimal

from django.db import models
from graphql import (
    GraphQLArgument,
    GraphQLError,
    GraphQLField,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLString,
)
from rest_framework import serializers

from apps.core import policy
from apps.core.errors import to_api_error

from .compile import where_q
from .execution import INTERNAL, attach, logger, rows_of, selected_fields
from .scalars import SCALARS

# Serializer fields -> GraphQL input types; the first match wins (subclasses before parents).
_INPUT_TYPES = (
    (serializers.BooleanField, "Boolean"),
    (serializers.IntegerField, "Int"),
    (serializers.FloatField, "Float"),
    (serializers.DecimalField, "numeric"),
    (serializers.DateTimeField, "timestamptz"),
    (serializers.DateField, "date"),
    (serializers.JSONField, "jsonb"),
    (serializers.DictField, "jsonb"),
    (serializers.BaseSerializer, "jsonb"),
)


def _input_type(field):
    if isinstance(field, serializers.ListField) and isinstance(field.child, serializers.CharField):
        return GraphQLList(GraphQLNonNull(GraphQLString))
    if isinstance(field, serializers.ListField):
        return SCALARS["jsonb"]
    for field_class, name in _INPUT_TYPES:
        if isinstance(field, field_class):
            return SCALARS[name]
    return GraphQLString


def writable_fields(table):
    """{name: serializer field} the API takes as input, by their snake_case names."""
    serializer = table.serializer_class()
    fields = {name: field for name, field in serializer.fields.items() if not field.read_only}
    for name in getattr(serializer, "extra_input_fields", ()):
        fields.setdefault(name, serializer.fields.get(name) or serializers.JSONField())
    return fields


def wire(value):
    """A coerced GraphQL value back in its JSON form: the serializer takes exactly what REST
    takes (a date-time as an ISO string, money as a decimal string), and checks it the same way."""
    if isinstance(value, dict):
        return {key: wire(item) for key, item in value.items()}
    if isinstance(value, list):
        return [wire(item) for item in value]
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


# Errors ----------------------------------------------------------------------------------------


def mutation(resolver):
    """The contract's `code` and `param` on a mutation's errors, and no more work once a field of
    the operation has failed (its transaction is rolled back whatever later fields would do)."""

    def resolve(root, info, **args):
        context = info.context
        if context.cache.get("mutation_failed"):
            raise GraphQLError("Not run: an earlier field of this mutation failed.", extensions={"code": "NOT_RUN"})
        try:
            return resolver(root, info, **args)
        except GraphQLError as exc:
            context.cache["mutation_failed"] = True
            if not (exc.extensions or {}).get("code"):
                exc.extensions = {**(exc.extensions or {}), "code": "GRAPHQL_VALIDATION_FAILED"}
            raise
        except Exception as exc:
            context.cache["mutation_failed"] = True
            api_error = to_api_error(exc)
            if api_error is None:
                logger.exception("GraphQL mutation failed")
                raise GraphQLError("An internal error occurred.", extensions={"code": INTERNAL}) from exc
            extensions = {"code": api_error.code, "param": api_error.param}
            if api_error.detail:
                extensions["detail"] = api_error.detail
            raise GraphQLError(api_error.message, extensions=extensions) from exc

    return resolve


# Acting through the collection's viewset -------------------------------------------------------


def service_view(table, context, action, pk=None, data=None):
    """The table's viewset acting for the GraphQL caller as the REST request `action` would
    (the way its batch job does): same serializer, policy checks, row lookups and services."""
    view = table.viewset(request=context.request, kwargs={"pk": pk} if pk is not None else {}, format_kwarg=None)
    view.action = action
    view.actor_override = context.actor
    body = {} if data is None else data
    view.request_data = lambda: body
    # An action answers its object through `serialize`: keep the object, not a REST response.
    view.serialize = lambda instance, status=200: instance
    return view


def _returning(context, info, table, pks, field_nodes):
    """The rows with these keys as the selection under `field_nodes` reads them, in order."""
    if not pks:
        return []
    rows = rows_of(table.readable(context.actor).filter(pk__in=pks), table)
    by_pk = {row["__keys"][table.pk]: row for row in rows}
    rows = [by_pk[pk] for pk in pks if pk in by_pk]
    attach(context, info, table, rows, field_nodes, info.schema.get_type(table.name))
    return rows


def _returning_nodes(info):
    nodes = []
    for key_nodes in selected_fields(info, info.field_nodes).values():
        if key_nodes[0].name.value == "returning":
            nodes.extend(key_nodes)
    return nodes


def _response(context, info, table, pks, rows=None):
    nodes = _returning_nodes(info)
    if rows is None:
        rows = _returning(context, info, table, pks, nodes) if nodes else []
    return {"affected_rows": len(pks), "returning": rows}


def _matched(view, context, table, operation, where):
    queryset = view.base_queryset(operation)
    if where:
        queryset = queryset.filter(where_q(context, table, where))
    return list(queryset.order_by("pk"))


def _changes(instance, set_values, inc):
    data = dict(wire(set_values or {}))
    for name, amount in (inc or {}).items():
        current = getattr(instance, name)
        data[name] = (current or 0) + amount
    return data


# Resolvers -------------------------------------------------------------------------------------


def resolve_insert(table):
    @mutation
    def resolve(_root, info, objects):
        context = info.context
        policy.authorize(context.actor, table.label, "create")
        if not objects:
            return {"affected_rows": 0, "returning": []}
        # REST's batch: every object validated first, then all created in one transaction.
        created = service_view(table, context, "batch").batch_create(wire(objects))
        return _response(context, info, table, [instance.pk for instance in created])

    return resolve


def resolve_insert_one(table):
    @mutation
    def resolve(_root, info, object):  # noqa: A002 - Hasura's argument name
        context = info.context
        policy.authorize(context.actor, table.label, "create")
        view = service_view(table, context, "create")
        data = view.validated_input(wire(object))
        instance = view.create_service(organization=context.actor.organization, actor=context.actor, data=data)
        return _returning(context, info, table, [instance.pk], info.field_nodes)[0]

    return resolve


def _update(view, context, instance, set_values, inc):
    data = view.validated_input(_changes(instance, set_values, inc), instance=instance)
    return view.update_service(
        organization=context.actor.organization, actor=context.actor, instance=instance, data=data
    )


def resolve_update_by_pk(table):
    @mutation
    def resolve(_root, info, pk_columns, _set=None, _inc=None):
        context = info.context
        policy.authorize(context.actor, table.label, "update")
        view = service_view(table, context, "partial_update", pk=pk_columns["id"])
        instance = _update(view, context, view.get_object("update"), _set, _inc)
        rows = _returning(context, info, table, [instance.pk], info.field_nodes)
        return rows[0] if rows else None

    return resolve


def resolve_update(table):
    @mutation
    def resolve(_root, info, where, _set=None, _inc=None):
        context = info.context
        policy.authorize(context.actor, table.label, "update")
        view = service_view(table, context, "partial_update")
        matched = _matched(view, context, table, "update", where)
        pks = [_update(view, context, instance, _set, _inc).pk for instance in matched]
        return _response(context, info, table, pks)

    return resolve


def resolve_delete_by_pk(table):
    @mutation
    def resolve(_root, info, id):  # noqa: A002 - Hasura's argument name
        context = info.context
        policy.authorize(context.actor, table.label, "delete")
        view = service_view(table, context, "destroy", pk=id)
        instance = view.get_object("delete")
        rows = _returning(context, info, table, [instance.pk], info.field_nodes)  # read before it is gone
        view.delete_service(organization=context.actor.organization, actor=context.actor, instance=instance)
        return rows[0] if rows else None

    return resolve


def resolve_delete(table):
    @mutation
    def resolve(_root, info, where):
        context = info.context
        policy.authorize(context.actor, table.label, "delete")
        view = service_view(table, context, "destroy")
        instances = _matched(view, context, table, "delete", where)
        pks = [instance.pk for instance in instances]
        response = _response(context, info, table, pks)  # read before they are gone
        for instance in instances:
            view.delete_service(organization=context.actor.organization, actor=context.actor, instance=instance)
        return response

    return resolve


def resolve_action(table, action_name):
    @mutation
    def resolve(_root, info, id, reason=None):  # noqa: A002 - Hasura's argument name
        context = info.context
        policy.authorize(context.actor, table.label, action_name)
        view = service_view(table, context, action_name, pk=id, data={} if reason is None else {"reason": reason})
        result = getattr(view, action_name)(context.request, pk=id)
        if not isinstance(result, table.model):
            # The action answers something other than its object (a secret, a delivery): REST only.
            raise GraphQLError(f"{action_name} is only available through REST.", extensions={"code": "NOT_SUPPORTED"})
        rows = _returning(context, info, table, [result.pk], info.field_nodes)
        return rows[0] if rows else None

    return resolve


def object_actions(table):
    """The viewset's detail POST actions that the policy table declares, answering the object
    (an action documented with another answer, like a test delivery, stays REST's)."""
    declared = policy.POLICIES[table.label].actions if table.label in policy.POLICIES else {}
    found = []
    for extra in table.viewset.get_extra_actions():
        if not extra.detail or "post" not in extra.mapping or extra.__name__ not in declared:
            continue
        if getattr(extra, "answers", None) is not None or "schema" in getattr(extra, "kwargs", {}):
            continue
        found.append(extra.__name__)
    return found


# Schema ------------------------------------------------------------------------------------------


class MutationBuilder:
    """The mutation root's fields for the tables, beside the query root's types (SchemaBuilder):
    only the builder's tables (those the role may read) and the operations it grants."""

    def __init__(self, builder):
        self.builder = builder

    def fields(self):
        fields = {}
        for table in self.builder.tables.values():
            if table.viewset is None:
                continue
            fields.update(self._table_fields(table))
        return fields

    def _table_fields(self, table):
        name = table.name
        viewset = table.viewset
        row_type = self.builder.objects[name]
        bool_exp = self.builder.bool_exps[name]
        writable = writable_fields(table)
        inputs = {field_name: GraphQLInputField(_input_type(field)) for field_name, field in writable.items()}
        integers = {
            field_name: GraphQLInputField(GraphQLInt)
            for field_name, field in writable.items()
            if isinstance(field, serializers.IntegerField) and _is_integer_column(table, field_name)
        }
        response = GraphQLObjectType(
            f"{name}_mutation_response",
            {
                "affected_rows": GraphQLField(GraphQLNonNull(GraphQLInt), description="number of rows affected"),
                "returning": GraphQLField(
                    GraphQLNonNull(GraphQLList(GraphQLNonNull(row_type))), description="data from the rows affected"
                ),
            },
            description=f'response of any mutation on the table "{name}"',
        )
        fields = {}
        allows = self.builder.allows
        if getattr(viewset, "create_service", None) is not None and allows(table, "create"):
            insert_input = GraphQLInputObjectType(
                f"{name}_insert_input", inputs, description=f'input type for inserting data into table "{name}"'
            )
            fields[f"insert_{name}"] = GraphQLField(
                response,
                args={"objects": GraphQLArgument(GraphQLNonNull(GraphQLList(GraphQLNonNull(insert_input))))},
                resolve=resolve_insert(table),
                description=f'insert data into the table: "{name}" (all or nothing)',
            )
            fields[f"insert_{name}_one"] = GraphQLField(
                row_type,
                args={"object": GraphQLArgument(GraphQLNonNull(insert_input))},
                resolve=resolve_insert_one(table),
                description=f'insert a single row into the table: "{name}"',
            )
        if getattr(viewset, "update_service", None) is not None and allows(table, "update"):
            set_input = GraphQLInputObjectType(
                f"{name}_set_input", inputs, description=f'input type for updating data in table "{name}"'
            )
            changes = {"_set": GraphQLArgument(set_input, description="sets the columns of the filtered rows")}
            if integers:
                inc_input = GraphQLInputObjectType(f"{name}_inc_input", integers)
                changes["_inc"] = GraphQLArgument(inc_input, description="increments the integer columns")
            pk_input = GraphQLInputObjectType(
                f"{name}_pk_columns_input", {"id": GraphQLInputField(GraphQLNonNull(GraphQLString))}
            )
            fields[f"update_{name}_by_pk"] = GraphQLField(
                row_type,
                args={"pk_columns": GraphQLArgument(GraphQLNonNull(pk_input)), **changes},
                resolve=resolve_update_by_pk(table),
                description=f'update a single row of the table: "{name}"',
            )
            fields[f"update_{name}"] = GraphQLField(
                response,
                args={"where": GraphQLArgument(GraphQLNonNull(bool_exp)), **changes},
                resolve=resolve_update(table),
                description=f'update data of the table: "{name}" (every matched row, all or nothing)',
            )
        if getattr(viewset, "delete_service", None) is not None and allows(table, "delete"):
            fields[f"delete_{name}_by_pk"] = GraphQLField(
                row_type,
                args={"id": GraphQLArgument(GraphQLNonNull(GraphQLString))},
                resolve=resolve_delete_by_pk(table),
                description=f'delete a single row from the table: "{name}"',
            )
            fields[f"delete_{name}"] = GraphQLField(
                response,
                args={"where": GraphQLArgument(GraphQLNonNull(bool_exp))},
                resolve=resolve_delete(table),
                description=f'delete data from the table: "{name}"',
            )
        object_name = getattr(table.serializer_class, "object_name", None) or table.model._meta.model_name
        for action_name in object_actions(table):
            if not allows(table, action_name):
                continue
            fields[f"{action_name}_{object_name}"] = GraphQLField(
                row_type,
                args={
                    "id": GraphQLArgument(GraphQLNonNull(GraphQLString)),
                    "reason": GraphQLArgument(GraphQLString, description="kept in the status history"),
                },
                resolve=resolve_action(table, action_name),
                description=f"the {action_name} action on a {object_name}, as POST /{{id}}/{action_name}",
            )
        return fields


def _is_integer_column(table, name):
    try:
        return isinstance(table.model._meta.get_field(name), models.IntegerField)
    except Exception:  # noqa: BLE001 - not a model column: nothing to increment
        return False
