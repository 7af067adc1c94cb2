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

Input types hold what the role may write: the serializer's writable fields narrowed to the policy
table's `fields` for the operation (per-role schemas). Hasura's nested inserts are offered where
the service takes them: an array relationship whose rows the serializer accepts as a nested list
(a customer's `addresses: {data: [...]}`, written by customer_create itself), and an object
relationship whose key the serializer accepts (`<rel>: {data: {...}}`: the related row is created
first, through its own collection's service, and its id given as the key). Nothing else is offered.
"""

import datetime
from dataclasses import dataclass, field
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
from apps.core.errors import ValidationFailed, to_api_error

from .compile import where_q
from .execution import INTERNAL, attach, logger, rows_of, selected_fields
from .scalars import SCALARS, SERIALIZER_FIELD_SCALARS

# Serializer fields -> GraphQL input types; the first match wins (subclasses before parents).
_INPUT_TYPES = (
    *SERIALIZER_FIELD_SCALARS,
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


def writable_fields(serializer_class):
    """{name: serializer field} the API takes as input, by their snake_case names."""
    serializer = serializer_class()
    fields = {name: field for name, field in serializer.fields.items() if not field.read_only}
    for name in getattr(serializer, "extra_input_fields", ()):
        fields.setdefault(name, serializer.fields.get(name) or serializers.JSONField())
    return fields


@dataclass
class InputShape:
    """How a GraphQL insert or set input becomes the serializer's body: `renames` (an input
    name -> the serializer's: a foreign key taken as `<rel>_id`), `arrays` (a relationship -> the
    serializer's list field, the rows' own shape and table) and `objects` (an object relationship
    -> its table, the shape of its insert input and the serializer's key field)."""

    renames: dict = field(default_factory=dict)
    arrays: dict = field(default_factory=dict)
    objects: dict = field(default_factory=dict)


def body_of(context, shape, value):
    """The REST body for a GraphQL input value: nested rows unwrapped from `{data: ...}`, an
    object relationship's row created first (its id becomes the key)."""
    body = {}
    for key, item in value.items():
        if item is None and (key in shape.objects or key in shape.arrays):
            # An explicit null: the serializer judges it, as REST's would.
            body[shape.objects[key][2] if key in shape.objects else shape.arrays[key][0]] = None
        elif key in shape.objects:
            target, target_shape, key_field = shape.objects[key]
            if key_field in body or any(shape.renames.get(other) == key_field for other in value if other != key):
                raise ValidationFailed(f"Give {key} or its id, not both.", param=key)
            body[key_field] = insert_row(context, target, target_shape, item["data"]).pk
        elif key in shape.arrays:
            list_field, child_shape, target = shape.arrays[key]
            rows = item["data"] if isinstance(item, dict) else item
            # The nested rows are the target table's rows: the role must be allowed to create them.
            policy.authorize(context.actor, target.label, "create")
            for row in rows:
                policy.check_writable(context.actor, target.label, "create", row)
            body[list_field] = [body_of(context, child_shape, row) for row in rows]
        else:
            body[shape.renames.get(key, key)] = item
    return wire(body)


def insert_row(context, table, shape, value):
    """One row inserted as `POST /v1/<c>` inserts it: the table's serializer and service."""
    policy.authorize(context.actor, table.label, "create")
    view = service_view(table, context, "create")
    data = view.validated_input(body_of(context, shape, value))
    return view.create_service(organization=context.actor.organization, actor=context.actor, data=data)


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


def _changes(context, shape, instance, set_values, inc):
    data = body_of(context, shape, set_values or {})
    for name, amount in (inc or {}).items():
        current = getattr(instance, name)
        data[name] = (current or 0) + amount
    return data


# Resolvers -------------------------------------------------------------------------------------


def resolve_insert(table, shape):
    @mutation
    def resolve(_root, info, objects):
        context = info.context
        policy.authorize(context.actor, table.label, "create")
        if not objects:
            return {"affected_rows": 0, "returning": []}
        # REST's batch: every object validated first, then all created in one transaction (the
        # rows of object relationships are created before, in the same transaction).
        bodies = [body_of(context, shape, item) for item in objects]
        created = service_view(table, context, "batch").batch_create(bodies)
        return _response(context, info, table, [instance.pk for instance in created])

    return resolve


def resolve_insert_one(table, shape):
    @mutation
    def resolve(_root, info, object):  # noqa: A002 - Hasura's argument name
        context = info.context
        instance = insert_row(context, table, shape, object)
        return _returning(context, info, table, [instance.pk], info.field_nodes)[0]

    return resolve


def _update(view, context, shape, instance, set_values, inc):
    data = view.validated_input(_changes(context, shape, instance, set_values, inc), instance=instance)
    return view.update_service(
        organization=context.actor.organization, actor=context.actor, instance=instance, data=data
    )


def resolve_update_by_pk(table, shape):
    @mutation
    def resolve(_root, info, pk_columns, _set=None, _inc=None):
        context = info.context
        policy.authorize(context.actor, table.label, "update")
        view = service_view(table, context, "partial_update", pk=pk_columns["id"])
        instance = _update(view, context, shape, view.get_object("update"), _set, _inc)
        rows = _returning(context, info, table, [instance.pk], info.field_nodes)
        return rows[0] if rows else None

    return resolve


def resolve_update(table, shape):
    @mutation
    def resolve(_root, info, where, _set=None, _inc=None):
        context = info.context
        policy.authorize(context.actor, table.label, "update")
        view = service_view(table, context, "partial_update")
        matched = _matched(view, context, table, "update", where)
        pks = [_update(view, context, shape, instance, _set, _inc).pk for instance in matched]
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
        self.inputs = {}  # input type name -> (GraphQLInputObjectType, InputShape)

    def fields(self):
        fields = {}
        for table in self.builder.tables.values():
            if table.viewset is None:
                continue
            fields.update(self._table_fields(table))
        return fields

    # Input types --------------------------------------------------------------------------------

    def writable(self, table, operation, serializer_class=None):
        """{name: serializer field} the role may write for `operation`: the serializer's writable
        fields, narrowed to the policy table's for the role."""
        fields = writable_fields(serializer_class or table.serializer_class)
        allowed = self.builder.writable(table, operation)
        if allowed is not None:
            fields = {name: field for name, field in fields.items() if name in allowed}
        return fields

    def can_insert(self, table):
        """Rows of `table` may be created by this role (and read back, as every mutation does)."""
        return table.name in self.builder.tables and self.builder.allows(table, "create")

    def _nested_array(self, table, field):
        """(relationship, target table, child serializer class) when a writable field takes the
        rows of an array relationship as a nested list, else None."""
        child = getattr(field, "child", None)
        if not isinstance(field, serializers.ListSerializer) or not isinstance(child, serializers.ModelSerializer):
            return None
        relationship = table.relationships.get(field.source)
        if relationship is None or not relationship.many:
            return None
        target = self.builder.tables.get(relationship.target)
        if target is None or target.model is not child.Meta.model:
            return None
        return relationship, target, type(child)

    def _foreign_keys(self, table, writable):
        """{serializer field name: object relationship} for the writable fields that take an
        object relationship's key."""
        found = {}
        for name, serializer_field in writable.items():
            for relationship in table.relationships.values():
                if relationship.many:
                    continue
                model_field = table.model._meta.get_field(relationship.name)
                if serializer_field.source in (model_field.name, model_field.attname):
                    found[name] = relationship
        return found

    def _input(self, type_name, description, build):
        """One input type per name (types are shared by every field using them); `build(shape)`
        returns its fields and fills the shape, when the schema first asks for them."""
        if type_name not in self.inputs:
            shape = InputShape()
            input_type = GraphQLInputObjectType(type_name, lambda: build(shape), description=description)
            self.inputs[type_name] = (input_type, shape)
        return self.inputs[type_name]

    def insert_input(self, table):
        """`<t>_insert_input` of a table with its own insert mutation."""
        return self._input(
            f"{table.name}_insert_input",
            f'input type for inserting data into table "{table.name}"',
            lambda shape: self._input_fields(table, "create", shape, table.serializer_class, top=True),
        )

    def set_input(self, table):
        return self._input(
            f"{table.name}_set_input",
            f'input type for updating data in table "{table.name}"',
            lambda shape: self._input_fields(table, "update", shape, table.serializer_class),
        )

    def nested_input(self, parent, relationship, target, serializer_class):
        """The input of rows written through the parent's serializer: `<target>_insert_input`
        when the target has no insert mutation of its own, else `<parent>_<rel>_insert_input`."""
        own = target.viewset is not None and getattr(target.viewset, "create_service", None) is not None
        shared = not own and serializer_class is target.serializer_class
        name = target.name if shared else f"{parent.name}_{relationship.name}"
        back = parent.model._meta.get_field(relationship.name).field  # the rows' key to the parent
        return self._input(
            f"{name}_insert_input",
            f'input type for inserting data into table "{target.name}"',
            lambda shape: self._input_fields(target, "create", shape, serializer_class, skip={back.name, back.attname}),
        )

    def _input_fields(self, table, operation, shape, serializer_class, top=False, skip=()):
        writable = {
            name: serializer_field
            for name, serializer_field in self.writable(table, operation, serializer_class).items()
            if serializer_field.source not in skip
        }
        keys = self._foreign_keys(table, writable)
        fields = {}
        for name, serializer_field in writable.items():
            nested = self._nested_array(table, serializer_field)
            if nested is not None:
                relationship, target, child_class = nested
                if not self.can_insert(target):
                    continue  # Hasura: nested rows need the insert permission on their table
                child_type, child_shape = self.nested_input(table, relationship, target, child_class)
                shape.arrays[relationship.name] = (name, child_shape, target)
                if operation == "create":
                    fields[relationship.name] = GraphQLInputField(self._array_input(child_type))
                else:  # `_set`: the whole list, replaced (as a REST PATCH replaces it)
                    fields[relationship.name] = GraphQLInputField(GraphQLList(GraphQLNonNull(child_type)))
            elif name in keys:
                # A key is named as the table's column (`customer_id`), beside the relationship.
                column = table.model._meta.get_field(keys[name].name).attname
                shape.renames[column] = name
                fields[column] = GraphQLInputField(GraphQLString)
            else:
                fields[name] = GraphQLInputField(_input_type(serializer_field))
        if top:
            for name, relationship in keys.items():
                target = self.builder.tables.get(relationship.target)
                if target is None or target.viewset is None or not self.can_insert(target):
                    continue
                if getattr(target.viewset, "create_service", None) is None or relationship.name in fields:
                    continue
                target_type, target_shape = self.insert_input(target)
                shape.objects[relationship.name] = (target, target_shape, name)
                fields[relationship.name] = GraphQLInputField(self._object_input(target, target_type))
        return fields

    def _array_input(self, child_type):
        name = child_type.name.removesuffix("_insert_input")
        return self._wrapper(
            f"{name}_arr_rel_insert_input",
            "input type for inserting array relation for remote table",
            GraphQLNonNull(GraphQLList(GraphQLNonNull(child_type))),
        )

    def _object_input(self, target, target_type):
        return self._wrapper(
            f"{target.name}_obj_rel_insert_input",
            "input type for inserting object relation for remote table",
            GraphQLNonNull(target_type),
        )

    def _wrapper(self, type_name, description, data_type):
        if type_name not in self.inputs:
            wrapper = GraphQLInputObjectType(type_name, {"data": GraphQLInputField(data_type)}, description=description)
            self.inputs[type_name] = (wrapper, None)
        return self.inputs[type_name][0]

    # Fields -------------------------------------------------------------------------------------

    def _table_fields(self, table):
        name = table.name
        viewset = table.viewset
        row_type = self.builder.objects[name]
        bool_exp = self.builder.bool_exps[name]
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
        insert_input, insert_shape = self.insert_input(table)
        # A role that may write no field at all gets no insert (an input type needs a field).
        if getattr(viewset, "create_service", None) is not None and allows(table, "create") and insert_input.fields:
            shape = insert_shape
            fields[f"insert_{name}"] = GraphQLField(
                response,
                args={"objects": GraphQLArgument(GraphQLNonNull(GraphQLList(GraphQLNonNull(insert_input))))},
                resolve=resolve_insert(table, shape),
                description=f'insert data into the table: "{name}" (all or nothing)',
            )
            fields[f"insert_{name}_one"] = GraphQLField(
                row_type,
                args={"object": GraphQLArgument(GraphQLNonNull(insert_input))},
                resolve=resolve_insert_one(table, shape),
                description=f'insert a single row into the table: "{name}"',
            )
        set_input, set_shape = self.set_input(table)
        if getattr(viewset, "update_service", None) is not None and allows(table, "update") and set_input.fields:
            shape = set_shape
            changes = {"_set": GraphQLArgument(set_input, description="sets the columns of the filtered rows")}
            integers = {
                field_name: GraphQLInputField(GraphQLInt)
                for field_name, serializer_field in self.writable(table, "update").items()
                if isinstance(serializer_field, serializers.IntegerField) and _is_integer_column(table, field_name)
            }
            if integers:
                inc_input = GraphQLInputObjectType(f"{name}_inc_input", integers)
                changes["_inc"] = GraphQLArgument(inc_input, description="increments the integer columns")
            pk_input = GraphQLInputObjectType(
                f"{name}_pk_columns_input", {"id": GraphQLInputField(GraphQLNonNull(GraphQLString))}
            )
            fields[f"update_{name}_by_pk"] = GraphQLField(
                row_type,
                args={"pk_columns": GraphQLArgument(GraphQLNonNull(pk_input)), **changes},
                resolve=resolve_update_by_pk(table, shape),
                description=f'update a single row of the table: "{name}"',
            )
            fields[f"update_{name}"] = GraphQLField(
                response,
                args={"where": GraphQLArgument(GraphQLNonNull(bool_exp)), **changes},
                resolve=resolve_update(table, shape),
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
