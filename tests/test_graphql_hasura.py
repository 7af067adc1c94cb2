"""Hasura's remaining read shapes (issue 8) through the real `gql` client against a live server:
`distinct_on`, `order_by` through relationships and by relationship aggregates, `<rel>_aggregate`
fields, the jsonb operators and the serializers' computed fields. Every expectation is written
out, so the same test passing on SQLite and on PostgreSQL says both answer the same. Query counts
through the test client."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.accounts.services import api_key_create
from apps.crm.models import Customer
from tests import test_graphql as base

connect = base.connect
_jwt_secret = base._jwt_secret
address, fails, make_customer, make_jwt, run = base.address, base.fails, base.make_customer, base.make_jwt, base.run

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop(organization, other_organization):
    """Five Acme customers (statuses, last names and addresses chosen so that distinct groups,
    counts and maxima tell rows apart) and one of Globex."""
    rows = {
        "ada": make_customer(
            organization,
            "ada@acme.test",
            last_name="Lovelace",
            metadata={"tier": "gold", "region": "eu", "n": 1},
            tags=["vip", "beta"],
            addresses=[address("London", is_default_billing=True), address("Paris"), address("Berlin")],
            created_by="user-1",
        ),
        "bob": make_customer(
            organization,
            "bob@acme.test",
            last_name="Babbage",
            status="prospect",
            metadata={"tier": "silver", "n": 1.0},
            tags=["beta"],
            addresses=[address("Rome", is_default_shipping=True)],
        ),
        "cyd": make_customer(
            organization,
            "cyd@acme.test",
            last_name="Lovelace",
            metadata={"nested": {"a": [1, 2, {"b": True}]}},
            tags=[],
            addresses=[address("Paris"), address("Paris", postal_code="75002")],
        ),
        "dee": make_customer(organization, "dee@acme.test", last_name="Zed", status="prospect", metadata={"n": True}),
        "eve": make_customer(organization, "eve@acme.test", last_name="Babbage", tags=["vip"]),
        "globex": make_customer(other_organization, "gus@globex.test", last_name="Lovelace", addresses=[address("Oslo")]),
    }
    return rows


def emails(rows):
    return [row["email"] for row in rows]


@pytest.mark.live
def test_distinct_on_keeps_the_first_row_of_each_group(connect, secret_key, shop):
    client = connect(secret_key)
    data = run(
        client,
        """{
          by_name: customers(distinct_on: [last_name], order_by: [{last_name: asc}, {email: desc}]) { email last_name }
          implicit: customers(distinct_on: last_name) { last_name }
          two: customers(distinct_on: [status, last_name], order_by: [{last_name: desc}, {status: asc}, {email: asc}]) { email }
          paged: customers(distinct_on: [last_name], order_by: [{last_name: asc}, {email: asc}], limit: 2, offset: 1) { email }
          customers_aggregate(distinct_on: [last_name]) { aggregate { count } nodes { last_name } }
          cities: customers(order_by: {email: asc}, where: {addresses: {}}) {
            email
            addresses(distinct_on: [city], order_by: [{city: asc}, {postal_code: desc}]) { city postal_code }
          }
        }""",
    )
    assert [(c["email"], c["last_name"]) for c in data["by_name"]] == [
        ("eve@acme.test", "Babbage"),
        ("cyd@acme.test", "Lovelace"),
        ("dee@acme.test", "Zed"),
    ]
    # With no order_by the rows come in the distinct columns' order.
    assert [c["last_name"] for c in data["implicit"]] == ["Babbage", "Lovelace", "Zed"]
    assert emails(data["two"]) == ["dee@acme.test", "ada@acme.test", "eve@acme.test", "bob@acme.test"]
    assert emails(data["paged"]) == ["ada@acme.test", "dee@acme.test"]
    assert data["customers_aggregate"]["aggregate"]["count"] == 3
    assert [n["last_name"] for n in data["customers_aggregate"]["nodes"]] == ["Babbage", "Lovelace", "Zed"]
    # Per parent: each customer's distinct cities (Paris once, its higher postal code first).
    assert {c["email"]: [(a["city"], a["postal_code"]) for a in c["addresses"]] for c in data["cities"]} == {
        "ada@acme.test": [("Berlin", ""), ("London", ""), ("Paris", "")],
        "bob@acme.test": [("Rome", "")],
        "cyd@acme.test": [("Paris", "75002")],
    }


@pytest.mark.live
def test_distinct_on_must_lead_the_order_by(connect, secret_key, shop):
    client = connect(secret_key)
    for document in (
        "{ customers(distinct_on: [last_name], order_by: [{email: asc}]) { id } }",
        "{ customers(distinct_on: [last_name, status], order_by: [{last_name: asc}, {email: asc}]) { id } }",
        "{ customers { addresses(distinct_on: [city], order_by: {postal_code: asc}) { id } } }",
        "{ customers_aggregate(distinct_on: [email], order_by: {addresses_aggregate: {count: asc}}) { aggregate { count } } }",
    ):
        errors = fails(client, document)
        assert errors[0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED", document
        assert errors[0]["message"] == '"distinct_on" columns must match initial "order_by" columns', document
    # A column the role cannot name is refused by validation (the select_column enum).
    errors = fails(client, "{ customers(distinct_on: [nope]) { id } }")
    assert errors[0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


@pytest.mark.live
def test_order_by_through_relationships_and_their_aggregates(connect, secret_key, shop):
    client = connect(secret_key)
    data = run(
        client,
        """{
          by_count: customers(order_by: [{addresses_aggregate: {count: desc}}, {email: asc}]) { email }
          by_max_city: customers(order_by: [{addresses_aggregate: {max: {city: asc}}}, {email: asc}]) { email }
          by_min_city: customers(order_by: [{addresses_aggregate: {min: {city: desc_nulls_last}}}, {email: asc}]) { email }
          addresses: customer_addresses(order_by: [{customer: {email: desc}}, {city: asc}]) { city customer { email } }
          deep: customer_addresses(order_by: [{customer: {addresses_aggregate: {count: asc}}}, {city: desc}], limit: 3) { city }
        }""",
    )
    assert emails(data["by_count"]) == [
        "ada@acme.test",
        "cyd@acme.test",
        "bob@acme.test",
        "dee@acme.test",
        "eve@acme.test",
    ]
    # max(city): ada Paris, bob Rome, cyd Paris; no address is NULL, last ascending.
    assert emails(data["by_max_city"]) == [
        "ada@acme.test",
        "cyd@acme.test",
        "bob@acme.test",
        "dee@acme.test",
        "eve@acme.test",
    ]
    # min(city) descending: bob Rome, cyd Paris, ada Berlin, then the NULLs (nulls_last).
    assert emails(data["by_min_city"]) == [
        "bob@acme.test",
        "cyd@acme.test",
        "ada@acme.test",
        "dee@acme.test",
        "eve@acme.test",
    ]
    assert [(a["customer"]["email"], a["city"]) for a in data["addresses"]] == [
        ("cyd@acme.test", "Paris"),
        ("cyd@acme.test", "Paris"),
        ("bob@acme.test", "Rome"),
        ("ada@acme.test", "Berlin"),
        ("ada@acme.test", "London"),
        ("ada@acme.test", "Paris"),
    ]
    assert [a["city"] for a in data["deep"]] == ["Rome", "Paris", "Paris"]


@pytest.mark.live
def test_order_by_a_relationship_sees_only_rows_the_role_may_read(connect, organization, shop):
    """A `user` reads only the addresses it created (none here): every count it sorts by is 0,
    so the order falls to the next term, as if the other rows did not exist."""
    data = run(
        connect(make_jwt(organization, user_id="user-1")),
        "{ customers(order_by: [{addresses_aggregate: {count: desc}}, {email: desc}]) { email addresses_aggregate { aggregate { count } } } }",
    )
    assert data["customers"] == [{"email": "ada@acme.test", "addresses_aggregate": {"aggregate": {"count": 0}}}]


@pytest.mark.live
def test_relationship_aggregates(connect, secret_key, shop):
    client = connect(secret_key)
    data = run(
        client,
        """{
          customers(order_by: {email: asc}) {
            email
            addresses_aggregate { aggregate { count max { city } min { city } } }
            paris: addresses_aggregate(where: {city: {_eq: "Paris"}}) {
              aggregate { count distinct: count(columns: [city], distinct: true) }
              nodes { postal_code customer { email } }
            }
            first_two: addresses_aggregate(order_by: {city: asc}, limit: 2) { aggregate { count max { city } } nodes { city } }
            distinct: addresses_aggregate(distinct_on: [city]) { aggregate { count } }
          }
        }""",
    )
    by_email = {c["email"]: c for c in data["customers"]}
    assert by_email["ada@acme.test"]["addresses_aggregate"] == {
        "aggregate": {"count": 3, "max": {"city": "Paris"}, "min": {"city": "Berlin"}}
    }
    assert by_email["dee@acme.test"]["addresses_aggregate"] == {
        "aggregate": {"count": 0, "max": {"city": None}, "min": {"city": None}}
    }
    assert by_email["cyd@acme.test"]["paris"]["aggregate"] == {"count": 2, "distinct": 1}
    assert sorted(n["postal_code"] for n in by_email["cyd@acme.test"]["paris"]["nodes"]) == ["", "75002"]
    assert {n["customer"]["email"] for n in by_email["cyd@acme.test"]["paris"]["nodes"]} == {"cyd@acme.test"}
    assert by_email["bob@acme.test"]["paris"] == {"aggregate": {"count": 0, "distinct": 0}, "nodes": []}
    # limit applies per parent before aggregating, as Hasura does.
    assert by_email["ada@acme.test"]["first_two"] == {
        "aggregate": {"count": 2, "max": {"city": "London"}},
        "nodes": [{"city": "Berlin"}, {"city": "London"}],
    }
    assert by_email["cyd@acme.test"]["distinct"]["aggregate"]["count"] == 1
    assert by_email["ada@acme.test"]["distinct"]["aggregate"]["count"] == 3


def _post(client, key, query, **variables):
    response = client.post(
        "/graphql",
        {"query": query, "variables": variables or None},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


@pytest.mark.parametrize("parents", [1, 100])
def test_relationship_aggregates_and_computed_fields_cost_queries_per_level(client, organization, secret_key, parents):
    for index in range(parents):
        make_customer(
            organization,
            f"c{index}@acme.test",
            addresses=[address("A", is_default_shipping=True), address("B"), address("C", is_default_billing=True)],
        )
    query = """{ customers(limit: 100, order_by: [{addresses_aggregate: {count: desc}}, {email: asc}]) {
        id default_shipping_address
        addresses_aggregate(where: {city: {_neq: "Z"}}, limit: 2, order_by: {city: desc}) {
          aggregate { count max { city } } nodes { city customer { email } } }
        all: addresses_aggregate { aggregate { count } }
        addresses(limit: 1) { city customer { default_billing_address } } } }"""
    _post(client, secret_key, "{ __typename }")  # the key's first use writes its last-used mark
    with CaptureQueriesContext(connection) as baseline:
        _post(client, secret_key, "{ __typename }")
    with CaptureQueriesContext(connection) as queries:
        data = _post(client, secret_key, query)
    assert len(data["customers"]) == parents
    customer = data["customers"][0]
    assert customer["addresses_aggregate"]["aggregate"] == {"count": 2, "max": {"city": "C"}}
    assert [n["city"] for n in customer["addresses_aggregate"]["nodes"]] == ["C", "B"]
    assert customer["all"]["aggregate"]["count"] == 3
    saved = Customer.objects.get(pk=customer["id"]).addresses
    assert customer["default_shipping_address"] == saved.get(city="A").pk
    assert customer["addresses"][0]["customer"]["default_billing_address"] == saved.get(city="C").pk
    # Level 1: the customers (1) and their computed fields (2: the rows' representation columns,
    # their addresses). Level 2: each aggregate field's grouped query (2), the nodes (1), the
    # addresses (1). Level 3: the nodes' customers (1), the addresses' customers (1) and their
    # computed fields (2). The same for 1 parent as for 100.
    assert len(queries) - len(baseline) == 11, [q["sql"] for q in queries.captured_queries]


def test_jsonb_operators(client, organization, secret_key, shop):
    def matching(where):
        data = _post(client, secret_key, "query($w: customers_bool_exp!) { customers(where: $w, order_by: {email: asc}) { email } }", w=where)
        return [c["email"].split("@")[0] for c in data["customers"]]

    assert matching({"metadata": {"_contains": {"tier": "gold"}}}) == ["ada"]
    assert matching({"metadata": {"_contains": {}}}) == ["ada", "bob", "cyd", "dee", "eve"]
    # Numbers compare by value (1 = 1.0); a boolean is not a number.
    assert matching({"metadata": {"_contains": {"n": 1}}}) == ["ada", "bob"]
    assert matching({"metadata": {"_contains": {"n": True}}}) == ["dee"]
    # Nested: arrays contain any subset of their elements, objects any subset of their keys.
    assert matching({"metadata": {"_contains": {"nested": {"a": [{"b": True}, 2]}}}}) == ["cyd"]
    assert matching({"metadata": {"_contains": {"nested": {"a": [3]}}}}) == []
    assert matching({"metadata": {"_contains": {"nested": {"a": 1}}}}) == []  # an array holds 1, it is not 1
    # A top-level array contains a scalar it holds.
    assert matching({"tags": {"_contains": "vip"}}) == ["ada", "eve"]
    assert matching({"tags": {"_contains": ["beta", "vip"]}}) == ["ada"]
    assert matching({"tags": {"_contains": []}}) == ["ada", "bob", "cyd", "dee", "eve"]
    assert matching({"tags": {"_contained_in": ["beta", "vip"]}}) == ["ada", "bob", "cyd", "dee", "eve"]
    assert matching({"tags": {"_contained_in": ["beta"]}}) == ["bob", "cyd", "dee"]
    assert matching({"metadata": {"_contained_in": {"tier": "silver", "n": 1, "extra": None}}}) == ["bob", "eve"]
    assert matching({"metadata": {"_has_key": "tier"}}) == ["ada", "bob"]
    assert matching({"tags": {"_has_key": "vip"}}) == ["ada", "eve"]  # an array's string elements
    assert matching({"metadata": {"_has_keys_any": ["region", "nested"]}}) == ["ada", "cyd"]
    assert matching({"metadata": {"_has_keys_any": []}}) == []
    assert matching({"metadata": {"_has_keys_all": ["tier", "n"]}}) == ["ada", "bob"]
    assert matching({"metadata": {"_has_keys_all": []}}) == ["ada", "bob", "cyd", "dee", "eve"]
    # Combined with the rest of a bool_exp, negated, and through a relationship.
    assert matching({"_not": {"metadata": {"_has_key": "n"}}}) == ["cyd", "eve"]
    data = _post(
        client,
        secret_key,
        '{ customer_addresses(where: {customer: {tags: {_contains: "vip"}}}, order_by: {city: asc}) { city } }',
    )
    assert [a["city"] for a in data["customer_addresses"]] == ["Berlin", "London", "Paris"]


def test_computed_fields_show_what_rest_shows(client, organization, secret_key, shop):
    api_key_create(organization=organization, kind="restricted", mode="live", scopes=["customers:read"])
    data = _post(
        client,
        secret_key,
        """{ customers(order_by: {email: asc}) { id default_shipping_address default_billing_address }
             api_keys(order_by: {created_at: asc}) { id redacted livemode }
             events(limit: 3, order_by: {sequence: asc}) { id created request } }""",
    )
    headers = {"HTTP_AUTHORIZATION": f"Bearer {secret_key}"}
    for table, path, fields in (
        ("customers", "/v1/customers", ("default_shipping_address", "default_billing_address")),
        ("api_keys", "/v1/api_keys", ("redacted", "livemode")),
        ("events", "/v1/events", ("created", "request")),
    ):
        rest = {row["id"]: row for row in client.get(path, {"limit": 100}, **headers).json()["data"]}
        assert data[table], table
        for row in data[table]:
            assert {name: row[name] for name in fields} == {name: rest[row["id"]][name] for name in fields}, table
    ada = next(c for c in data["customers"] if c["id"] == shop["ada"].pk)
    assert ada["default_billing_address"] == shop["ada"].addresses.get(city="London").pk
    assert ada["default_shipping_address"] is None
