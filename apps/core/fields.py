"""Model fields of our own."""

import orjson
from django.db import models
from django.db.models.fields.json import KeyTransform


class JSONField(models.JSONField):
    """Django's JSONField, read with orjson: a list page decodes two documents per row, and
    `json.loads` costs several times as much on small ones. Values orjson refuses (NaN,
    integers beyond 64 bits) and custom decoders go through Django's own path."""

    def from_db_value(self, value, expression, connection):
        if self.decoder is None and isinstance(value, str) and not isinstance(expression, KeyTransform):
            try:
                return orjson.loads(value)
            except orjson.JSONDecodeError:
                pass
        return super().from_db_value(value, expression, connection)
