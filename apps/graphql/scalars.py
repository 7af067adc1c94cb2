"""Hasura's scalars beside GraphQL's own: values go out as the REST representation writes them
(datetimes as ISO 8601 strings, decimals as strings) and come in as the database compares them."""

import datetime
from decimal import Decimal, InvalidOperation

from django.utils.dateparse import parse_date, parse_datetime
from graphql import (
    FloatValueNode,
    GraphQLBoolean,
    GraphQLError,
    GraphQLFloat,
    GraphQLInt,
    GraphQLScalarType,
    GraphQLString,
    IntValueNode,
    StringValueNode,
    value_from_ast_untyped,
)
from rest_framework import serializers


def _identity(value):
    return value


def _parse_timestamp(value):
    if isinstance(value, str):
        parsed = parse_datetime(value) or (parse_date(value) and datetime.datetime.fromisoformat(value))
        if parsed:
            return parsed
    raise GraphQLError(f"timestamptz: expected an ISO 8601 date-time string, got {value!r}.")


def _parse_date(value):
    if isinstance(value, str) and parse_date(value):
        return parse_date(value)
    raise GraphQLError(f"date: expected an ISO 8601 date string, got {value!r}.")


def _parse_numeric(value):
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            pass
        else:
            if number.is_finite():
                return number
    raise GraphQLError(f"numeric: expected a decimal number or string, got {value!r}.")


def _literal(parse, kinds):
    def parse_literal(node, _variables=None):
        if not isinstance(node, kinds):
            raise GraphQLError("Unexpected literal for this scalar.")
        return parse(node.value)

    return parse_literal


timestamptz = GraphQLScalarType(
    "timestamptz",
    description="A date and time with its zone, as an ISO 8601 string.",
    serialize=_identity,
    parse_value=_parse_timestamp,
    parse_literal=_literal(_parse_timestamp, (StringValueNode,)),
)
date = GraphQLScalarType(
    "date",
    description="A date, as an ISO 8601 string.",
    serialize=_identity,
    parse_value=_parse_date,
    parse_literal=_literal(_parse_date, (StringValueNode,)),
)
numeric = GraphQLScalarType(
    "numeric",
    description="An exact decimal number, written as a string (money keeps its digits).",
    serialize=_identity,
    parse_value=_parse_numeric,
    parse_literal=_literal(_parse_numeric, (StringValueNode, IntValueNode, FloatValueNode)),
)
bigint = GraphQLScalarType(
    "bigint",
    description="A 64-bit integer.",
    serialize=int,
    parse_value=int,
    parse_literal=_literal(int, (IntValueNode, StringValueNode)),
)
jsonb = GraphQLScalarType(
    "jsonb",
    description="Any JSON value.",
    serialize=_identity,
    parse_value=_identity,
    parse_literal=lambda node, variables=None: value_from_ast_untyped(node, variables),
)

SCALARS = {
    "String": GraphQLString,
    "Int": GraphQLInt,
    "Float": GraphQLFloat,
    "Boolean": GraphQLBoolean,
    "timestamptz": timestamptz,
    "date": date,
    "numeric": numeric,
    "bigint": bigint,
    "jsonb": jsonb,
}
# Hasura's _like/_ilike exist on text only; every scalar but jsonb compares and orders.
TEXT_SCALARS = frozenset({"String"})
ORDERED_SCALARS = frozenset(SCALARS) - {"jsonb"}
NUMERIC_SCALARS = frozenset({"Int", "Float", "numeric", "bigint"})


# Serializer fields -> scalar names, for what both a computed value and an input field can be (the
# first match wins: subclasses before their parents). Each use adds its own kinds around these.
SERIALIZER_FIELD_SCALARS = (
    (serializers.BooleanField, "Boolean"),
    (serializers.IntegerField, "Int"),
    (serializers.FloatField, "Float"),
    (serializers.DecimalField, "numeric"),
    (serializers.DateTimeField, "timestamptz"),
    (serializers.DateField, "date"),
)

