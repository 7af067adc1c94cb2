"""The benchmark's URLconf: the product's URLs plus `GET /bench/baseline/customers` and
`GET /bench/baseline/events`.

The baseline answers the same page as `GET /v1/customers?limit=100` (same rows, same order, same
fields, nested addresses, `has_more`, `next_cursor`) with one SQL query that builds the whole
JSON body in PostgreSQL (`json_agg`), and no DRF, authentication or rate limiting. It runs
behind the same Django middleware as the real endpoint, so the ratio measures what the API
layer costs on top of "just the data".

`/bench/baseline/events` does the same for `GET /v1/events?limit=100` (bench/events_list.py):
the event payload with its stored `data` JSON and the organization's `livemode`.

The organization comes from BENCH_ORGANIZATION_ID (set by bench/customers_list.py).
"""

import os

from django.db import connection
from django.http import HttpResponse
from django.urls import path

from apps.accounts.models import Organization
from apps.crm.models import Customer, CustomerAddress
from apps.events.models import Event
from stateset import urls as product_urls

CUSTOMER_FIELDS = (
    "id",
    "email",
    "first_name",
    "last_name",
    "phone",
    "sso_id",
    "stripe_customer_id",
)
ADDRESS_FIELDS = (
    "id",
    "first_name",
    "last_name",
    "company",
    "address_line_1",
    "address_line_2",
    "city",
    "province",
    "postal_code",
    "country_code",
    "phone",
    "is_default_shipping",
    "is_default_billing",
)


def _timestamp(column):
    """A timestamptz as orjson writes a UTC datetime (OPT_UTC_Z): no fraction when it is zero."""
    return (
        f"CASE WHEN {column} IS NULL THEN NULL ELSE to_char({column} AT TIME ZONE 'UTC', "
        f"'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN date_trunc('second', {column}) = {column} THEN '' "
        f"ELSE to_char({column} AT TIME ZONE 'UTC', '.US') END || 'Z' END"
    )


def _pairs(alias, fields):
    return ", ".join(f"'{name}', {alias}.{name}" for name in fields)


def _next_cursor(alias):
    """The API's cursor after row `alias` of the default order (newest first)."""
    cursor_json = (
        f"'{{\"v\":[' || to_json({_timestamp(f'{alias}.created_at')}) || ',' || to_json({alias}.id) "
        f'|| \'],"s":"-created_at,-pk"}}\''
    )
    return f"rtrim(translate(encode(convert_to({cursor_json}, 'UTF8'), 'base64'), '+/' || chr(10), '-_'), '=')"


def _list_sql(table, row_object):
    """One page (newest first) of `table`'s rows of the organization as the API's list body."""
    return f"""
        WITH candidates AS (
            SELECT c.*, row_number() OVER (ORDER BY c.created_at DESC, c.id DESC) AS position
            FROM {table} c
            WHERE c.organization_id = %(organization)s
            ORDER BY c.created_at DESC, c.id DESC
            LIMIT %(limit)s + 1
        )
        SELECT json_build_object(
            'object', 'list',
            'url', %(url)s,
            'data', COALESCE(
                (SELECT json_agg({row_object} ORDER BY c.position)
                 FROM candidates c WHERE c.position <= %(limit)s),
                '[]'::json),
            'has_more', (SELECT count(*) FROM candidates) > %(limit)s,
            'next_cursor', (SELECT CASE WHEN (SELECT count(*) FROM candidates) > %(limit)s
                                        THEN {_next_cursor("last")} END
                            FROM candidates last WHERE last.position = %(limit)s)
        )::text
        FROM {Organization._meta.db_table} o WHERE o.id = %(organization)s
    """


def _events_sql():
    # apps.events.services.event_payload, column by column; `created` is whole seconds.
    event_object = """json_build_object(
        'id', c.id, 'object', 'event', 'type', c.type, 'api_version', c.api_version,
        'created', floor(extract(epoch FROM c.created_at))::bigint,
        'livemode', o.livemode, 'sequence', c.sequence, 'data', c.data,
        'request', json_build_object('id', NULLIF(c.request_id, ''),
                                     'idempotency_key', NULLIF(c.idempotency_key, '')))"""
    return _list_sql(Event._meta.db_table, event_object)


def _page_sql():
    customers = Customer._meta.db_table
    addresses = CustomerAddress._meta.db_table
    organizations = Organization._meta.db_table
    address_object = f"json_build_object('object', 'address', {_pairs('a', ADDRESS_FIELDS)}, 'livemode', o.livemode)"

    def default_address(flag):
        return (
            f"(SELECT a.id FROM {addresses} a WHERE a.customer_id = c.id AND a.{flag} "
            f"ORDER BY a.created_at, a.id LIMIT 1)"
        )

    customer_object = f"""json_build_object(
        'object', 'customer', {_pairs("c", CUSTOMER_FIELDS)},
        'activation_date', {_timestamp("c.activation_date")},
        'timestamp', {_timestamp("c.timestamp")},
        'status', c.status, 'accepts_marketing', c.accepts_marketing,
        'metadata', c.metadata, 'tags', c.tags,
        'addresses', COALESCE((SELECT json_agg({address_object} ORDER BY a.created_at, a.id)
                               FROM {addresses} a WHERE a.customer_id = c.id), '[]'::json),
        'default_shipping_address', {default_address("is_default_shipping")},
        'default_billing_address', {default_address("is_default_billing")},
        'created_at', {_timestamp("c.created_at")},
        'updated_at', {_timestamp("c.updated_at")},
        'livemode', o.livemode)"""
    cursor_json = (
        f"'{{\"v\":[' || to_json({_timestamp('last.created_at')}) || ',' || to_json(last.id) "
        f'|| \'],"s":"-created_at,-pk"}}\''
    )
    next_cursor = f"rtrim(translate(encode(convert_to({cursor_json}, 'UTF8'), 'base64'), '+/' || chr(10), '-_'), '=')"
    return f"""
        WITH candidates AS (
            SELECT c.*, row_number() OVER (ORDER BY c.created_at DESC, c.id DESC) AS position
            FROM {customers} c
            WHERE c.organization_id = %(organization)s
            ORDER BY c.created_at DESC, c.id DESC
            LIMIT %(limit)s + 1
        )
        SELECT json_build_object(
            'object', 'list',
            'url', %(url)s,
            'data', COALESCE(
                (SELECT json_agg({customer_object} ORDER BY c.position)
                 FROM candidates c WHERE c.position <= %(limit)s),
                '[]'::json),
            'has_more', (SELECT count(*) FROM candidates) > %(limit)s,
            'next_cursor', (SELECT CASE WHEN (SELECT count(*) FROM candidates) > %(limit)s
                                        THEN {next_cursor} END
                            FROM candidates last WHERE last.position = %(limit)s)
        )::text
        FROM {organizations} o WHERE o.id = %(organization)s
    """


PAGE_SQL = _page_sql()
PAGE_LIMIT = 100


EVENTS_SQL = _events_sql()


def baseline_events(request):
    with connection.cursor() as cursor:
        cursor.execute(
            EVENTS_SQL, {"organization": os.environ["BENCH_ORGANIZATION_ID"], "limit": PAGE_LIMIT, "url": "/v1/events"}
        )
        body = cursor.fetchone()[0]
    return HttpResponse(body, content_type="application/json")


def baseline_customers(request):
    with connection.cursor() as cursor:
        cursor.execute(
            PAGE_SQL,
            {"organization": os.environ["BENCH_ORGANIZATION_ID"], "limit": PAGE_LIMIT, "url": "/v1/customers"},
        )
        body = cursor.fetchone()[0]
    return HttpResponse(body, content_type="application/json")


urlpatterns = [
    path("bench/baseline/customers", baseline_customers),
    path("bench/baseline/events", baseline_events),
    *product_urls.urlpatterns,
]
handler404 = product_urls.handler404
handler500 = product_urls.handler500
