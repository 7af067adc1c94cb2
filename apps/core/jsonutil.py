"""One JSON encoder for responses, events and stored bodies (orjson: fast, exact)."""

import datetime
import decimal
import uuid

import orjson

_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC | orjson.OPT_NON_STR_KEYS


def _default(value):
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if hasattr(value, "__str__"):
        # Lazy translation strings, ErrorDetail, Promise objects.
        return str(value)
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


def dumps(value):
    return orjson.dumps(value, default=_default, option=_OPTIONS)


def loads(data):
    return orjson.loads(data)


def to_jsonable(value):
    """A plain-JSON copy of `value` (for JSONField storage of before/after snapshots)."""
    return orjson.loads(dumps(value))
