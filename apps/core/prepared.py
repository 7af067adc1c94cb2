"""`.values()` queries compiled once and run many times with one parameter swapped.

The hottest queries of the API differ between requests only in one value (the API key's hash;
the page's parent ids as one `= ANY(%s)` array). Django compiles a queryset to SQL on every
evaluation, which costs about as much as running the query on PostgreSQL; these keep the SQL,
the column names and the result converters, and only execute.
"""

import threading

from django.db import connections

_SENTINEL = "\x00stateset-prepared-parameter\x00"


class PreparedValues:
    """`PreparedValues(lambda placeholder: Model.objects.filter(x=placeholder).values(...))`;
    `prepared(value)` returns the rows as dicts, exactly as the same `.values()` queryset would."""

    def __init__(self, build, *, array=False):
        self._build = build
        self._array = array
        # Per thread, database alias -> (sql, params, index, names, converters, compiler): the
        # compiler carries its thread's connection, which the converters receive.
        self._local = threading.local()

    def _compile(self, using):
        placeholder = [_SENTINEL] if self._array else _SENTINEL
        queryset = self._build(placeholder)
        alias = using or queryset.db
        compiler = queryset.query.get_compiler(using=alias)
        sql, params = compiler.as_sql()
        index = next(i for i, param in enumerate(params) if param == placeholder)
        query = queryset.query
        names = [*query.extra_select, *query.values_select, *query.annotation_select]
        fields = [select[0] for select in compiler.select[0 : compiler.col_count]]
        converters = compiler.get_converters(fields)
        compiled = (sql, list(params), index, names, converters, compiler)
        self._compiled()[alias] = compiled
        return compiled

    def _compiled(self):
        try:
            return self._local.compiled
        except AttributeError:
            self._local.compiled = {}
            return self._local.compiled

    def __call__(self, value, using="default"):
        compiled = self._compiled().get(using) or self._compile(using)
        sql, params, index, names, converters, compiler = compiled
        params = list(params)
        params[index] = list(value) if self._array else value
        with connections[using].cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        if converters:
            rows = compiler.apply_converters(rows, converters)
        return [dict(zip(names, row, strict=True)) for row in rows]
