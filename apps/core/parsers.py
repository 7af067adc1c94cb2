"""The edge of the API: request bodies and query strings are checked once, here, for every
resource (API contract, "Limits on input").

- A JSON body nests at most `MAX_JSON_DEPTH` levels: deeper is a 400 `BAD_REQUEST`.
- No NUL character and no lone surrogate in any string or key: PostgreSQL refuses NUL in text
  and jsonb, and a lone surrogate cannot be encoded as UTF-8. In a body that is a 422
  `INVALID_FIELD_FORMAT` naming the field; in a query string a 400 naming the parameter.
"""

import json
import re

from rest_framework.parsers import BaseParser

from .errors import BadRequest, InvalidFieldFormat
from .jsonutil import loads

MAX_JSON_DEPTH = 32
# NUL, and UTF-16 surrogate code points (only ever present unpaired in a Python str).
_FORBIDDEN_CHARACTERS = re.compile("[\x00\ud800-\udfff]")


class InvalidBodyField(InvalidFieldFormat):
    status = 422


def has_forbidden_characters(text):
    return _FORBIDDEN_CHARACTERS.search(text) is not None


def _describe(text):
    found = _FORBIDDEN_CHARACTERS.search(text).group()
    return "a NUL character" if found == "\x00" else "an unpaired surrogate"


def load_json(raw):
    """Parse a JSON document; raise BadRequest for malformed or too deeply nested JSON and
    InvalidBodyField for a forbidden character. Returns the parsed value."""
    if isinstance(raw, bytes | bytearray | memoryview) and not raw.strip():
        raise BadRequest("The request body is empty; send a JSON object.")
    try:
        value = loads(raw)
    except ValueError as exc:
        message = str(exc)
        if "depth limit" in message:
            raise BadRequest(f"JSON bodies may nest at most {MAX_JSON_DEPTH} levels.") from None
        # orjson refuses a lone surrogate escape (`"\udfff"`), which is valid JSON: parse it
        # again to name the field that carries it.
        try:
            value = json.loads(raw)
        except RecursionError:
            raise BadRequest(f"JSON bodies may nest at most {MAX_JSON_DEPTH} levels.") from None
        except ValueError:
            raise BadRequest(f"Malformed JSON body: {message}") from None
    check_json(value)
    return value


def check_json(value):
    """Depth and characters of an already parsed JSON value (iterative: no recursion limit)."""
    stack = [(value, "", 1)]
    while stack:
        node, path, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise BadRequest(f"JSON bodies may nest at most {MAX_JSON_DEPTH} levels.", param=path or None)
            if isinstance(node, dict):
                for key, child in node.items():
                    key = str(key)
                    child_path = f"{path}.{key}" if path else key
                    if has_forbidden_characters(key):
                        raise InvalidBodyField(
                            f"The key {key!r} contains {_describe(key)}.", param=path or _printable(key)
                        )
                    stack.append((child, child_path, depth + 1))
            else:
                for index, child in enumerate(node):
                    stack.append((child, f"{path}[{index}]", depth + 1))
        elif isinstance(node, str) and has_forbidden_characters(node):
            raise InvalidBodyField(f"{path or 'The body'} contains {_describe(node)}.", param=path or None)


def _printable(text):
    return _FORBIDDEN_CHARACTERS.sub("?", text)


def check_query_params(params):
    """400 INVALID_FIELD_FORMAT for a query parameter (name or value) with a forbidden character."""
    for key, values in params.lists():
        if has_forbidden_characters(key):
            raise InvalidFieldFormat(f"A query parameter name contains {_describe(key)}.", param=_printable(key))
        for value in values:
            if has_forbidden_characters(value):
                raise InvalidFieldFormat(f"The query parameter {key} contains {_describe(value)}.", param=key)


class JSONParser(BaseParser):
    """JSON bodies, parsed with orjson and checked against the input limits."""

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        return load_json(stream.read() if stream is not None else b"")
