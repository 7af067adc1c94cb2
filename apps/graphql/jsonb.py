"""Hasura's jsonb operators (`_contains`, `_contained_in`, `_has_key`, `_has_keys_any`,
`_has_keys_all`) as lookups with the same answers on PostgreSQL and SQLite.

PostgreSQL has them natively (`@>`, `<@`, `?`, `?|`, `?&`). Django's own contains lookups are not
supported on SQLite, and SQLite's JSON functions have no containment, so on SQLite each lookup
calls a function registered on every new connection that follows PostgreSQL's rules
(src/backend/utils/adt/jsonb_util.c, `JsonbDeepContains`), written here:

- objects contain objects whose every key is present with a contained value;
- arrays contain arrays whose every element is contained in some element (scalars by equality,
  containers of the same kind recursively), whatever the order and duplicates;
- a top-level array contains a scalar it holds (PostgreSQL's one exception to "structures must
  match"); a scalar contains only an equal scalar; numbers compare by value (`1` = `1.0`) and
  booleans are not numbers;
- `?` finds a string as a top-level key of an object, an element of an array, or the string
  itself.

A SQL NULL column matches none of them, on both databases.
"""

import json

from django.db import connections, models
from django.db.backends.signals import connection_created
from django.db.models import Lookup

# Kinds of JSON values; a boolean is not a number, although Python says True == 1.
_NULL, _BOOLEAN, _NUMBER, _STRING, _ARRAY, _OBJECT = range(6)


def _kind(value):
    if value is None:
        return _NULL
    if isinstance(value, bool):
        return _BOOLEAN
    if isinstance(value, (int, float)):
        return _NUMBER
    if isinstance(value, str):
        return _STRING
    if isinstance(value, list):
        return _ARRAY
    return _OBJECT


def _scalar_equal(left, right):
    return _kind(left) == _kind(right) and left == right


def _container_contains(container, contained):
    """Both are arrays or both objects (PostgreSQL's JsonbDeepContains)."""
    if isinstance(container, dict):
        for key, value in contained.items():
            if key not in container:
                return False
            present = container[key]
            if _kind(value) in (_ARRAY, _OBJECT):
                if _kind(present) != _kind(value) or not _container_contains(present, value):
                    return False
            elif not _scalar_equal(present, value):
                return False
        return True
    for element in contained:
        if _kind(element) in (_ARRAY, _OBJECT):
            found = any(
                _kind(candidate) == _kind(element) and _container_contains(candidate, element)
                for candidate in container
            )
        else:
            found = any(_scalar_equal(candidate, element) for candidate in container)
        if not found:
            return False
    return True


def contains(document, contained):
    """`document @> contained` for two parsed JSON values."""
    kinds = _kind(document), _kind(contained)
    if kinds[0] == _OBJECT or kinds[1] == _OBJECT:
        return kinds[0] == kinds[1] and _container_contains(document, contained)
    # A scalar at the top level is a one-element array that only contains raw scalars.
    if kinds[0] != _ARRAY:
        return kinds[1] != _ARRAY and _scalar_equal(document, contained)
    return _container_contains(document, contained if kinds[1] == _ARRAY else [contained])


def has_key(document, key):
    """`document ? key`."""
    if isinstance(document, dict):
        return key in document
    if isinstance(document, list):
        return any(isinstance(element, str) and element == key for element in document)
    return isinstance(document, str) and document == key


# SQLite functions (arguments are the stored JSON text and the operand as JSON text) -------------


def _parsed(text):
    return json.loads(text) if isinstance(text, (str, bytes)) else text


def _sqlite_contains(document, operand):
    if document is None or operand is None:
        return None
    return contains(_parsed(document), _parsed(operand))


def _sqlite_contained_in(document, operand):
    if document is None or operand is None:
        return None
    return contains(_parsed(operand), _parsed(document))


def _sqlite_has_keys(quantifier):
    def check(document, keys):
        if document is None or keys is None:
            return None
        parsed = _parsed(document)
        return quantifier(has_key(parsed, key) for key in _parsed(keys))

    return check


SQLITE_FUNCTIONS = {
    "gql_jsonb_contains": _sqlite_contains,
    "gql_jsonb_contained_in": _sqlite_contained_in,
    "gql_jsonb_has_keys_any": _sqlite_has_keys(any),
    "gql_jsonb_has_keys_all": _sqlite_has_keys(all),
}


def register_sqlite_functions(sender, connection, **kwargs):
    if connection.vendor == "sqlite":
        for name, function in SQLITE_FUNCTIONS.items():
            connection.connection.create_function(name, 2, function, deterministic=True)


# Lookups ----------------------------------------------------------------------------------------


class _JsonbLookup(Lookup):
    """`column__gql_<name>=value`: the operand is given as Python JSON data (a key, a list of
    keys, any JSON value) and sent as one parameter."""

    prepare_rhs = False
    can_use_none_as_rhs = True  # JSON null is a value to contain
    postgresql = None  # the SQL, with the column and the parameter as {lhs} and %s
    sqlite_function = None

    def get_prep_lookup(self):
        return self.rhs

    def operand(self):
        return json.dumps(self.rhs)

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        if connection.vendor == "postgresql":
            return self.postgresql.format(lhs=lhs), [*lhs_params, self.operand()]
        return f"{self.sqlite_function}({lhs}, %s)", [*lhs_params, self.operand()]


class JsonbContains(_JsonbLookup):
    lookup_name = "gql_contains"
    postgresql = "({lhs} @> %s::jsonb)"
    sqlite_function = "gql_jsonb_contains"


class JsonbContainedIn(_JsonbLookup):
    lookup_name = "gql_contained_in"
    postgresql = "({lhs} <@ %s::jsonb)"
    sqlite_function = "gql_jsonb_contained_in"


class JsonbHasKeysAny(_JsonbLookup):
    lookup_name = "gql_has_keys_any"
    postgresql = "({lhs} ?| %s)"
    sqlite_function = "gql_jsonb_has_keys_any"

    def operand(self):
        return list(self.rhs)

    def as_sql(self, compiler, connection):
        if connection.vendor != "postgresql":
            lhs, lhs_params = self.process_lhs(compiler, connection)
            return f"{self.sqlite_function}({lhs}, %s)", [*lhs_params, json.dumps(list(self.rhs))]
        return super().as_sql(compiler, connection)


class JsonbHasKeysAll(JsonbHasKeysAny):
    lookup_name = "gql_has_keys_all"
    postgresql = "({lhs} ?& %s)"
    sqlite_function = "gql_jsonb_has_keys_all"


def install():
    """Registers the lookups on JSON fields and the SQLite functions (AppConfig.ready())."""
    for lookup in (JsonbContains, JsonbContainedIn, JsonbHasKeysAny, JsonbHasKeysAll):
        models.JSONField.register_lookup(lookup)
    connection_created.connect(register_sqlite_functions, dispatch_uid="apps.graphql.jsonb")
    for connection in connections.all(initialized_only=True):
        if connection.connection is not None:
            register_sqlite_functions(None, connection)
