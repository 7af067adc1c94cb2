"""Parsed and checked GraphQL documents, cached per (schema, document text).

Front ends send the same few documents over and over: parsing, validating against the caller's
schema and measuring the limits (apps.graphql.limits) happen once per (schema object, text), and
a repeated request reuses the outcome. A parsed document is never modified by validation or
execution, so requests share it. The cache is bounded in entries and in the characters it holds
(a document is at most limits.MAX_QUERY_CHARS long), so documents from anyone cannot grow it.
"""

import threading
from collections import OrderedDict
from dataclasses import dataclass

from graphql import GraphQLError, parse, validate

from . import limits

MAX_ENTRIES = 512
MAX_CHARS = 1_000_000


class BoundedCache:
    """A thread-safe LRU mapping bounded by entries and by the summed `size` of its values."""

    def __init__(self, max_entries, max_size=None):
        self.max_entries = max_entries
        self.max_size = max_size
        self._entries = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key, default=None):
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return default
            self._entries.move_to_end(key)
            return entry[0]

    def put(self, key, value, size=0):
        if self.max_size is not None and size > self.max_size:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._size -= old[1]
            self._entries[key] = (value, size)
            self._size += size
            while len(self._entries) > self.max_entries or (self.max_size is not None and self._size > self.max_size):
                _key, (_value, evicted_size) = self._entries.popitem(last=False)
                self._size -= evicted_size

    def clear(self):
        with self._lock:
            self._entries.clear()
            self._size = 0

    def __len__(self):
        return len(self._entries)


@dataclass(frozen=True)
class Checked:
    """What a document is worth against one schema: its AST, or why it cannot run."""

    document: object = None  # the DocumentNode, when it parsed
    parse_error: GraphQLError = None
    validation_errors: tuple = ()  # graphql-core's rules against the schema
    limit_errors: tuple = ()  # apps.graphql.limits, measured only on a valid document

    @property
    def errors(self):
        return self.validation_errors or self.limit_errors


_checked = BoundedCache(MAX_ENTRIES, MAX_CHARS)


def _check(schema, query):
    try:
        document = parse(query, max_tokens=limits.MAX_TOKENS)
    except GraphQLError as exc:
        if "tokens. Parsing aborted" in exc.message:
            exc.extensions = {"code": limits.TOO_LARGE}
        return Checked(parse_error=exc)
    validation_errors = tuple(validate(schema, document))
    limit_errors = () if validation_errors else tuple(limits.check_document(document))
    return Checked(document, None, validation_errors, limit_errors)


def check(schema, query):
    """The Checked outcome of `query` (a string within limits.MAX_QUERY_CHARS) against `schema`,
    computed once per (schema, text). The key holds the schema itself, so a schema rebuilt after
    its cache dropped it never meets another schema's outcome."""
    key = (schema, query)
    checked = _checked.get(key)
    if checked is None:
        checked = _check(schema, query)
        _checked.put(key, checked, len(query))
    return checked


def clear():
    _checked.clear()
