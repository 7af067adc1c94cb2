"""Django's PostgreSQL backend, reading `timestamptz` columns with psycopg's C loader.

Django registers its own loader for `timestamptz` (to attach the connection's time zone), a
Python subclass of psycopg's loader, so every timestamp of every row is parsed in Python: on a
list page of 100 customers that is most of the cost of fetching the rows. When Django's time
zone is UTC and the session's is too (Django sets it), psycopg's C loader already returns exactly
what Django's returns (an aware datetime in `datetime.timezone.utc`), so this backend uses it.
Anything else (another time zone, USE_TZ off, the pure-Python psycopg) keeps Django's loader.
"""

import datetime

from django.db.backends.postgresql import base
from django.db.backends.postgresql.psycopg_any import is_psycopg3

if is_psycopg3:
    from psycopg.adapt import AdaptersMap
    from psycopg.types.datetime import TimestamptzLoader

    try:
        from psycopg_binary._psycopg import TimestamptzLoader as CTimestamptzLoader
    except ImportError:  # psycopg without its C extension
        CTimestamptzLoader = None

    class UTCTimestamptzLoader(TimestamptzLoader):
        # Read by Django's create_cursor() to decide whether a cursor needs its own loader.
        timezone = datetime.UTC

        def __init__(self, oid, context=None):
            super().__init__(oid, context)
            if CTimestamptzLoader is not None and self._timezone is datetime.UTC:
                # The session is in UTC: the C loader's datetimes are already Django's.
                self.load = CTimestamptzLoader(oid, context).load

        def load(self, data):
            return super().load(data).replace(tzinfo=datetime.UTC)


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self):
        params = super().get_connection_params()
        if is_psycopg3 and self.timezone is datetime.UTC and "context" in params:
            context = AdaptersMap(params["context"])
            context.register_loader("timestamptz", UTCTimestamptzLoader)
            params["context"] = context
        return params
