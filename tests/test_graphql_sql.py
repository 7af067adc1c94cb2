"""Queries compiled to SQL (apps/graphql/sql.py) against the generic executor: the same JSON for
a broad set of queries, roles and values; one statement per root field; the cases that fall back.

Every query runs twice through the HTTP endpoint: once with STATESET_GRAPHQL_SQL off (graphql-core's
executor and the resolvers) and once on. The answers are compared value by value, with key order,
and with the kind of every number (an integer is not a float)."""

import datetime
import json
import math
import random
import struct
from decimal import Decimal

import orjson
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.accounts.models import AuditLog
from apps.accounts.services import api_key_create
from apps.core.models import Job
from apps.events.models import Event, WebhookDelivery, WebhookEndpoint
from apps.graphql import compiled, sql
from apps.graphql.tables import all_tables
from tests import test_graphql as base

_jwt_secret = base._jwt_secret
make_customer, make_jwt, address = base.make_customer, base.make_jwt, base.address

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

UTC = datetime.UTC


def at(*parts):
    return datetime.datetime(*parts, tzinfo=UTC)


@pytest.fixture
def rows(organization, other_organization):
    """Customers with awkward values (quotes, control characters, emoji, NULLs, microseconds and
    whole seconds, nested JSON with floats), their addresses, webhooks, events, jobs, audit rows."""
    ada = make_customer(
        organization,
        "ada@acme.test",
        first_name='Ada "the first"',
        last_name="Love\\lace\n\ttab",
        phone="555",
        addresses=[address("London", is_default_shipping=True), address("Paris", province="Île"), address("Zürich")],
        created_by="user-1",
    )
    bob = make_customer(organization, "bob@acme.test", first_name="Bob", last_name="Zoë 東京 🚀", status="prospect")
    cyd = make_customer(organization, "cyd@other.test", first_name="Cyd\u2028\x01", addresses=[address("Rome")])
    dee = make_customer(organization, "dee@acme.test", first_name="Dee", last_name="Zed")
    Customer = type(ada)
    Customer.objects.filter(pk=ada.pk).update(
        activation_date=at(2024, 1, 2, 3, 4, 5, 123400),
        timestamp=at(999, 12, 31, 23, 59, 59),
        metadata={
            "score": 1.5,
            "tiny": 1e-7,
            "big": 1e16,
            "sum": 0.1 + 0.2,
            "n": 2**53 + 1,
            "ok": True,
            "none": None,
            "nested": {"b": [1, 2.0, "x"], "a": "é"},
        },
        tags=["vip", "b2b"],
        accepts_marketing=True,
    )
    Customer.objects.filter(pk=bob.pk).update(activation_date=at(2024, 1, 2, 3, 4, 5), metadata={})
    Customer.objects.filter(pk=dee.pk).update(activation_date=None, status="suspended", metadata={"k": [None]})
    make_customer(other_organization, "ada@globex.test", first_name="Ada", addresses=[address("Oslo")])

    endpoint = WebhookEndpoint.objects.create(
        organization=organization,
        url="https://example.com/hook",
        events=["*"],
        secret="whsec_x",
        metadata={"team": "ops"},
        disabled_at=at(2024, 5, 6, 7, 8, 9, 1),
    )
    WebhookEndpoint.objects.create(organization=organization, url="https://example.com/other", events=[], secret="s")
    events = [
        Event.objects.create(
            organization=organization,
            type=kind,
            api_version="2024-01-01",
            object_type="customer",
            object_id="cus_webhook_test",
            sequence=number,
            data={"object": {"id": ada.pk, "amount": "12.50"}, "n": number},
        )
        for number, kind in enumerate(["customer.created", "customer.updated", "customer.deleted"], start=1)
    ]
    for event, attempts, status_code in zip(events, [1, 2, 4], [None, 500, 200], strict=True):
        WebhookDelivery.objects.create(
            organization=organization,
            event=event,
            endpoint=endpoint,
            attempt_count=attempts,
            last_status_code=status_code,
            last_error="" if status_code != 500 else 'HTTP 500: "oops"',
            next_attempt_at=at(2024, 6, 1, 0, 0, attempts) if status_code == 500 else None,
        )
    Job.objects.create(
        organization=organization,
        kind="customers.batch_create",
        status="succeeded",
        result={"created": 2, "ids": ["a", "b"]},
        error=None,
        started_at=at(2024, 1, 1),
    )
    Job.objects.create(
        organization=organization,
        kind="customers.batch_create",
        status="failed",
        error={"code": "VALIDATION_ERROR", "detail": [{"index": 0}]},
    )
    for ip in ("192.168.0.1", "2001:db8::1", None):
        AuditLog.objects.create(
            organization=organization,
            action="customer.updated",
            object_type="customer",
            object_id=ada.pk,
            actor_type="api_key",
            ip_address=ip,
            before={"email": "old"},
            after=None,
        )
    return {"ada": ada, "bob": bob, "cyd": cyd, "dee": dee}


def _post(client, credential, query, variables=None, operation_name=None):
    body = {"query": query}
    if variables is not None:
        body["variables"] = variables
    if operation_name is not None:
        body["operationName"] = operation_name
    return client.post("/graphql", body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {credential}")


def _strict(value):
    """A value whose == also compares key order and the kind of every number."""
    if isinstance(value, dict):
        return ("object", [(key, _strict(item)) for key, item in value.items()])
    if isinstance(value, list):
        return ("array", [_strict(item) for item in value])
    return (type(value).__name__, value)


def _parse(content):
    return _strict(json.loads(content, parse_float=Decimal))


def _compiled_statements(queries):
    return [q["sql"] for q in queries.captured_queries if "json_build_object" in q["sql"] or "json_agg" in q["sql"]]


class Answers:
    """One document through both paths: the responses and the compiled run's statements."""

    def __init__(self, client, settings, credential, query, variables=None, operation_name=None):
        settings.STATESET_GRAPHQL_SQL = False
        self.generic = _post(client, credential, query, variables, operation_name)
        settings.STATESET_GRAPHQL_SQL = True
        with CaptureQueriesContext(connection) as queries:
            self.compiled = _post(client, credential, query, variables, operation_name)
        assert self.generic.status_code == self.compiled.status_code == 200
        self.statements = _compiled_statements(queries)
        self.generic_body = json.loads(self.generic.content)
        self.compiled_body = json.loads(self.compiled.content)

    def assert_fell_back(self):
        """Nothing compiled, and the generic executor's answer, byte for byte."""
        assert self.statements == []
        assert self.compiled.content == self.generic.content


def assert_same(client, settings, credential, query, variables=None, statements=None, operation_name=None):
    answers = Answers(client, settings, credential, query, variables, operation_name)
    assert "errors" not in answers.generic_body, answers.generic_body
    assert _parse(answers.compiled.content) == _parse(answers.generic.content), (
        answers.compiled_body,
        answers.generic_body,
    )
    if statements is not None:
        assert len(answers.statements) == statements, answers.statements
    return answers.compiled_body["data"]


CUSTOMER_COLUMNS = (
    "id email first_name last_name phone sso_id stripe_customer_id activation_date timestamp status "
    "accepts_marketing metadata tags created_at updated_at"
)
ADDRESS_COLUMNS = (
    "id first_name last_name company address_line_1 address_line_2 city province postal_code "
    "country_code phone is_default_shipping is_default_billing"
)

QUERIES = [
    # The benchmark's query: every column, newest first, with the addresses.
    (
        f"query {{ customers(limit: 100, order_by: [{{created_at: desc}}, {{id: desc}}]) "
        f"{{ {CUSTOMER_COLUMNS} addresses {{ {ADDRESS_COLUMNS} }} }} }}",
        None,
        1,
    ),
    # Aliases, the same field twice, __typename at every level, several root fields.
    (
        """{ __typename
             people: customers(order_by: {email: asc}) { __typename who: email email again: email
               home: addresses(order_by: {city: asc}) { __typename city } }
             addresses: customer_addresses(order_by: {city: desc}) { city owner: customer { __typename email } } }""",
        None,
        2,
    ),
    # where: _and/_or/_not, _ilike/_like/_nlike, _in/_nin, _is_null, _neq, through a relationship.
    (
        """query($domain: String!, $since: timestamptz) {
             a: customers(where: {_and: [{email: {_ilike: $domain}}, {_or: [{status: {_in: ["active", "prospect"]}},
                                 {phone: {_eq: "555"}}]}], _not: {first_name: {_like: "B%"}}}) { email }
             b: customers(where: {activation_date: {_gte: $since}}, order_by: {email: desc}) { email activation_date }
             c: customers(where: {addresses: {city: {_in: ["London", "Rome"]}}}, order_by: {email: asc}) { email }
             d: customers(where: {status: {_nin: ["active"]}, last_name: {_neq: "Zed"}}) { email status }
             e: customers(where: {activation_date: {_is_null: true}, email: {_nlike: "%globex%"}}) { email }
             f: customers(where: {_or: []}) { email }
             g: customers(where: {email: {_in: []}}) { email }
           }""",
        {"domain": "%@ACME.test", "since": "2024-01-01T00:00:00Z"},
        7,
    ),
    # order_by with NULLs placed, limit and offset, a limit of 0.
    (
        """{ a: customers(order_by: [{activation_date: asc_nulls_first}, {email: desc}], limit: 2, offset: 1) { email activation_date }
             b: customers(order_by: {activation_date: desc_nulls_last, email: asc}) { email }
             c: customers(order_by: {activation_date: desc}) { email }
             d: customers(order_by: {activation_date: asc}, offset: 2) { email }
             e: customers(limit: 0) { email } }""",
        None,
        5,
    ),
    # Relationships four levels deep, each with its own where, order_by, limit and offset.
    (
        """{ customers(order_by: {email: asc}) { email
               addresses(where: {city: {_neq: "Nowhere"}}, order_by: {city: desc}, limit: 2, offset: 1) { city
                 customer { email addresses(order_by: {city: asc}, limit: 1) { city customer { id } } } }
               none: addresses(where: {city: {_eq: "Nowhere"}}) { city } } }""",
        None,
        1,
    ),
    # Fragments, inline fragments, @skip and @include from variables.
    (
        """query Named($yes: Boolean!, $no: Boolean = false) {
             customers(order_by: {email: asc}) { ...Names ... on customers { status @include(if: $yes) phone @skip(if: $yes) }
               addresses @include(if: $no) { city } tags @skip(if: $no) }
             ... on query_root { customer_addresses(limit: 2, order_by: {city: asc}) { ...Place } }
           }
           fragment Names on customers { id first_name last_name }
           fragment Place on customer_addresses { city province }""",
        {"yes": True},
        2,
    ),
    # _by_pk: found, missing, with relationships; an empty object when everything is skipped.
    (
        """query($id: String!) {
             customers_by_pk(id: $id) { email metadata tags addresses(order_by: {city: asc}) { city customer { email } } }
             missing: customers_by_pk(id: "cus_nope") { id }
             skipped: customers_by_pk(id: $id) { id @skip(if: true) }
           }""",
        "ada",
        3,
    ),
    # Aggregates: count, count of a column (distinct), sum/avg/min/max, nodes, aliases, __typename.
    (
        """{ customers_aggregate(where: {addresses: {city: {_in: ["London", "Rome"]}}}) {
               __typename
               aggregate { __typename count distinct: count(columns: [status], distinct: true)
                           phones: count(columns: [phone]) max { __typename email activation_date } min { email } }
               nodes { email addresses(limit: 1, order_by: {city: asc}) { city } } }
             webhook_deliveries_aggregate { aggregate { count sum { attempt_count last_status_code }
               avg { attempt_count last_status_code } min { attempt_count next_attempt_at } max { created_at } } }
             paged: webhook_deliveries_aggregate(order_by: {attempt_count: desc}, limit: 2, offset: 1) {
               aggregate { count sum { attempt_count } avg { attempt_count } } nodes { attempt_count } }
             whole: webhook_deliveries_aggregate(where: {attempt_count: {_in: [2, 4]}}) { aggregate { avg { attempt_count } } }
             empty: webhook_deliveries_aggregate(where: {attempt_count: {_gt: 99}}) {
               aggregate { count sum { attempt_count } avg { attempt_count } max { created_at } } nodes { id } }
             customer_addresses_aggregate { aggregate { count } } }""",
        None,
        6,
    ),
    # Object and array relationships between events, endpoints and deliveries.
    (
        """{ webhook_deliveries(order_by: {created_at: asc}) { id event_id event_type status attempt_count
               next_attempt_at last_status_code last_error delivered_at
               event { type sequence data livemode deliveries { attempt_count } } endpoint { url metadata events } }
             events(order_by: {sequence: desc}) { id type livemode data
               deliveries(order_by: {attempt_count: desc}, where: {last_status_code: {_is_null: false}}) { last_status_code } }
             webhook_endpoints(order_by: {url: asc}) { url status disabled_at secret_rotation_ends_at
               deliveries_aggregate: deliveries(limit: 2) { id } } }""",
        None,
        3,
    ),
]


@pytest.mark.parametrize("index", range(len(QUERIES)))
def test_compiled_queries_answer_what_the_executor_answers(client, settings, secret_key, rows, index):
    query, variables, statements = QUERIES[index]
    if variables == "ada":
        variables = {"id": rows["ada"].pk}
    assert_same(client, settings, secret_key, query, variables, statements)


def test_every_column_of_every_table(client, settings, secret_key, rows):
    """Each table with all its columns and relationships one level down, sorted by each column."""
    for name, table in all_tables().items():
        columns = " ".join(table.columns)
        nested = " ".join(f"{rel.name} {{ id }}" for rel in table.relationships.values())
        query = (
            f"{{ {name}(order_by: {{id: asc}}) {{ {columns} {nested} }} {name}_aggregate {{ aggregate {{ count }} }} }}"
        )
        data = assert_same(client, settings, secret_key, query, statements=2)
        assert data[f"{name}_aggregate"]["aggregate"]["count"] == len(data[name]), name
        for column in table.columns.values():
            if column.type_name == "jsonb":
                continue
            for direction in ("asc", "desc_nulls_last"):
                query = f"{{ {name}(order_by: [{{{column.name}: {direction}}}]) {{ id {column.name} }} }}"
                assert_same(client, settings, secret_key, query, statements=1)


def test_roles_and_tenants_see_the_same_rows_on_both_paths(
    client, settings, organization, other_secret_key, test_secret_key, rows
):
    query = (
        "{ customers(order_by: {email: asc}) { email addresses { city customer { email } } } "
        "customer_addresses(order_by: {city: asc}) { city } customers_aggregate { aggregate { count } } "
        "jobs(order_by: {id: asc}) { id kind } }"
    )
    user = make_jwt(organization, user_id="user-1")
    restricted = api_key_create(organization=organization, kind="restricted", mode="live", scopes=["customers:read"])[1]
    seen = {}
    for name, credential in (("user", user), ("other", other_secret_key), ("sandbox", test_secret_key)):
        seen[name] = assert_same(client, settings, credential, query, statements=4)
    assert [c["email"] for c in seen["user"]["customers"]] == ["ada@acme.test"]
    assert seen["user"]["customers"][0]["addresses"] == []  # written by the system actor, not user-1
    assert [c["email"] for c in seen["other"]["customers"]] == ["ada@globex.test"]
    assert seen["sandbox"]["customers"] == []
    # A restricted key without the webhooks scope: the document is refused before anything runs.
    data = assert_same(client, settings, restricted, "{ customers(order_by: {email: asc}) { email } }", statements=1)
    assert len(data["customers"]) == 4


FALLBACKS = [
    # Argument errors: the generic executor's error, data null.
    "{ customers(limit: -1) { id } }",
    "{ customers(limit: 5000) { id } }",
    "{ customers { id addresses(offset: -2) { id } } }",
    "{ customers(where: {email: {_eq: null}}) { id } }",
    "{ customers_aggregate(limit: 1001) { aggregate { count } } }",
    # Introspection is graphql-core's.
    "{ __schema { queryType { name } } customers { id } }",
    '{ __type(name: "customers") { name } }',
]


@pytest.mark.parametrize("query", FALLBACKS)
def test_what_is_not_compiled_runs_through_the_executor_unchanged(client, settings, secret_key, rows, query):
    Answers(client, settings, secret_key, query).assert_fell_back()


def test_variables_are_coerced_as_graphql_core_coerces_them(client, settings, secret_key, rows):
    query = (
        "query($n: Int!, $w: customers_bool_exp) { customers(limit: $n, where: $w, order_by: {email: asc}) { email } }"
    )
    # Errors in the variables: the executor's words, and nothing compiled.
    for variables in ({"n": "two"}, {}, {"n": 1, "w": {"nope": {}}}):
        answers = Answers(client, settings, secret_key, query, variables)
        answers.assert_fell_back()
        assert answers.compiled_body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    data = assert_same(client, settings, secret_key, query, {"n": 2, "w": {"email": {"_like": "%acme%"}}}, statements=1)
    assert [c["email"] for c in data["customers"]] == ["ada@acme.test", "bob@acme.test"]
    # The compiled statement is cached per variables: other values give other rows.
    data = assert_same(client, settings, secret_key, query, {"n": 1, "w": None}, statements=1)
    assert [c["email"] for c in data["customers"]] == ["ada@acme.test"]


@pytest.mark.parametrize("rows_count", [1, 100])
def test_one_statement_per_root_field_whatever_the_rows(client, settings, organization, secret_key, rows_count):
    Customer = type(make_customer(organization, "c0@acme.test", addresses=[address("A"), address("B")]))
    for index in range(1, rows_count):
        make_customer(organization, f"c{index}@acme.test", addresses=[address("A"), address("B")])
    query = (
        '{ customers(limit: 100) { id email addresses(where: {city: {_neq: "Z"}}, limit: 5) { city customer { id } } } '
        "customers_aggregate { aggregate { count } nodes { id addresses { id } } } }"
    )
    _post(client, secret_key, "{ __typename }")  # the key's first use writes its last-used mark
    with CaptureQueriesContext(connection) as baseline:
        assert _post(client, secret_key, "{ __typename }").status_code == 200
    with CaptureQueriesContext(connection) as queries:
        response = _post(client, secret_key, query)
    body = response.json()
    assert "errors" not in body, body
    assert len(body["data"]["customers"]) == rows_count == Customer.objects.count()
    assert all(len(c["addresses"]) == 2 for c in body["data"]["customers"])
    assert body["data"]["customers_aggregate"]["aggregate"]["count"] == rows_count
    # One statement per root field, two levels deep, for 1 row as for 100.
    assert len(queries) - len(baseline) == 2, [q["sql"] for q in queries.captured_queries]


def test_a_repeated_query_is_neither_parsed_nor_compiled_again(client, settings, secret_key, rows, monkeypatch):
    from apps.graphql import documents

    query = "{ customers(order_by: {email: asc}) { email } }"
    first = _post(client, secret_key, query).json()
    calls = []
    monkeypatch.setattr(documents, "parse", lambda *a, **k: calls.append("parse"))
    monkeypatch.setattr(sql, "compile_operation", lambda *a, **k: calls.append("compile"))
    again = _post(client, secret_key, query).json()
    assert again == first and calls == []


@pytest.fixture
def compilations(monkeypatch):
    """The operations compiled (not found in the cache of statements)."""
    compiled.PLANS.clear()
    seen = []
    compile_operation = sql.compile_operation

    def counting(*args):
        seen.append(args[3].name.value if args[3].name else None)
        return compile_operation(*args)

    monkeypatch.setattr(sql, "compile_operation", counting)
    return seen


PAGE = """query Page($id: String!, $email: String, $since: timestamptz, $n: Int, $skip: Int) {
  one: customers_by_pk(id: $id) { email }
  page: customers(where: {email: {_neq: $email}, _or: [{activation_date: {_gte: $since}}, {status: {_eq: "prospect"}}]},
                  order_by: {email: asc}, limit: $n, offset: $skip) { email addresses(limit: $n, order_by: {city: asc}) { city } }
  counted: customers_aggregate(where: {email: {_neq: $email}}, limit: $n) { aggregate { count } nodes { email } }
}"""


@pytest.mark.filterwarnings("ignore:DateTimeField .* received a naive datetime")  # the generic path's, on purpose
def test_variables_are_parameters_of_one_compiled_statement(client, settings, secret_key, rows, compilations):
    cases = [
        {"id": rows["ada"].pk, "email": "bob@acme.test", "since": "2024-01-01T00:00:00Z", "n": 2, "skip": 0},
        {"id": rows["bob"].pk, "email": "ada@acme.test", "since": "2024-01-02T05:04:05+02:00", "n": 1, "skip": 1},
        {"id": "cus_nope", "email": "x", "since": "2024-01-02T03:04:05", "n": 3},
        {"id": rows["cyd"].pk, "email": "dee@acme.test", "since": "2030-01-01T00:00:00Z", "n": 10, "skip": 2},
    ]
    answers = [assert_same(client, settings, secret_key, PAGE, variables, statements=3) for variables in cases]
    assert compilations == ["Page"]  # compiled once, bound four times
    assert answers[0]["one"] == {"email": "ada@acme.test"} and answers[2]["one"] is None
    assert [c["email"] for c in answers[0]["page"]] == ["ada@acme.test"]
    assert [c["email"] for c in answers[1]["page"]] == []  # bob (since 03:04:05Z), then offset 1
    assert [a["city"] for a in answers[0]["page"][0]["addresses"]] == ["London", "Paris"]

    # A null is not a parameter: `limit: null` is the default, `_neq: null` the executor's error.
    assert_same(client, settings, secret_key, PAGE, {"id": "x", "email": "x", "n": None})
    answers = Answers(client, settings, secret_key, PAGE, {"id": "x", "email": None, "n": 1})
    answers.assert_fell_back()
    assert answers.compiled_body["errors"][0]["message"].startswith("_neq: null")
    # A limit the executor refuses, bound into the cached statement: the executor's error.
    for n in (-1, 1001):
        answers = Answers(client, settings, secret_key, PAGE, {"id": "x", "email": "x", "n": n})
        answers.assert_fell_back()
        assert answers.compiled_body["data"] is None
    assert compilations.count("Page") == 3  # the template, the null default, the null comparison


def test_variables_that_shape_the_sql_are_part_of_the_key(client, settings, secret_key, rows, compilations):
    query = """query Shape($pattern: String!, $cities: [String!], $more: Boolean!, $w: customers_bool_exp! = {}) {
      customers(where: {_and: [{email: {_ilike: $pattern}}, {addresses: {city: {_in: $cities}}}, $w]}, order_by: {email: asc}) {
        email addresses @include(if: $more) { city } } }"""
    cases = [
        {"pattern": "%acme%", "cities": ["London"], "more": True},
        {"pattern": "%ACME%", "cities": ["London"], "more": True},
        {"pattern": "%acme%", "cities": ["London", "Rome"], "more": False},
        {"pattern": "%", "cities": [], "more": True, "w": {"status": {"_eq": "active"}}},
        {"pattern": "%", "cities": ["Rome"], "more": True, "w": {"status": {"_eq": "active"}}},
    ]
    for variables in cases:
        assert_same(client, settings, secret_key, query, variables, statements=1)
    assert_same(client, settings, secret_key, query, cases[0], statements=1)
    assert compilations == ["Shape"] * len(cases)


def test_a_parameter_is_per_caller_scope(
    client, settings, organization, secret_key, other_secret_key, rows, compilations
):
    """The organization and the row filter are in the cached statement: another caller compiles its own."""
    query = "query Mine($n: Int) { customers(limit: $n, order_by: {email: asc}) { email } }"
    user = make_jwt(organization, user_id="user-1")
    seen = {}
    for name, credential in (
        ("secret", secret_key),
        ("other", other_secret_key),
        ("user", user),
        ("again", secret_key),
    ):
        seen[name] = [c["email"] for c in assert_same(client, settings, credential, query, {"n": 10})["customers"]]
    assert seen["secret"] == seen["again"] == ["ada@acme.test", "bob@acme.test", "cyd@other.test", "dee@acme.test"]
    assert seen["other"] == ["ada@globex.test"] and seen["user"] == ["ada@acme.test"]
    assert compilations == ["Mine"] * 3


def test_floats_are_written_as_orjson_writes_them():
    """avg (and Float columns) are written in SQL exactly as orjson writes a Python float: the
    shortest digits that read back, in its notation, at every exponent and for random doubles."""
    values = [
        0.0,
        -0.0,
        1.5,
        2.0,
        -2.0,
        1 / 3,
        2 / 3,
        0.1 + 0.2,
        1e15,
        1.5e15,
        1234567890123456.8,
        1e16,
        1.2345678901234567e16,
        1e17,
        1e21,
        1e22,
        1e100,
        1e-4,
        1e-5,
        1.5e-5,
        1.2345e-5,
        1e-6,
        9.5e-6,
        1e-7,
        1.234e-7,
        1e-10,
        5e-324,
        1.7976931348623157e308,
        123456.789,
        -0.0001234,
        -1.5e-5,
        3.14159e20,
    ]
    values += [
        float(f"{mantissa}e{exponent}")
        for mantissa in ("1", "3.14159", "9.999999999999999")
        for exponent in range(-20, 21)
    ]
    generator = random.Random(8)
    values += [generator.uniform(-1, 1) * 10 ** generator.randint(-30, 30) for _ in range(3000)]
    values += [struct.unpack("<d", generator.getrandbits(64).to_bytes(8, "little"))[0] for _ in range(1000)]
    values = [value for value in values if math.isfinite(value)]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT array_agg(({sql._float('u.v')})::text ORDER BY u.n) FROM unnest(%s::float8[]) WITH ORDINALITY u(v, n)",
            [values],
        )
        written = cursor.fetchone()[0]
    expected = [orjson.dumps(value).decode() for value in values]
    assert [pair for pair in zip(values, written, expected, strict=True) if pair[1] != pair[2]] == []
