"""The GraphQL API (apps/graphql) through a real GraphQL client: `gql` with its requests transport
against a live server, credentials as REST takes them. Query counts through the test client."""

import time

import jwt
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from gql import Client, gql
from gql.transport.exceptions import TransportQueryError
from gql.transport.requests import RequestsHTTPTransport

from apps.accounts.services import api_key_create
from apps.core.context import Actor
from apps.crm.services import customer_create
from apps.events.models import Event, WebhookDelivery, WebhookEndpoint

JWT_SECRET = "graphql-tests-jwt-secret-0123456789abcdef"
NAMESPACE = "https://hasura.io/jwt/claims"


def address(city, **extra):
    return {"address_line_1": "1 Main St", "city": city, "country_code": "US", **extra}


def make_customer(organization, email, created_by="", **data):
    customer = customer_create(
        organization=organization, actor=Actor.system(organization), data={"email": email, **data}
    )
    if created_by:
        type(customer).objects.filter(pk=customer.pk).update(created_by=created_by)
    return customer


def make_jwt(organization, user_id="user-1", role="user"):
    claims = {
        "sub": user_id,
        "exp": int(time.time()) + 300,
        NAMESPACE: {
            "x-hasura-user-id": user_id,
            "x-hasura-org-id": organization.id,
            "x-hasura-default-role": role,
            "x-hasura-allowed-roles": [role],
        },
    }
    return jwt.encode(claims, JWT_SECRET, algorithm="HS256")


@pytest.fixture(autouse=True)
def _jwt_secret(settings):
    settings.STATESET_JWT_SECRET = JWT_SECRET


@pytest.fixture
def connect(live_server):
    def connect(credential=None, path="/graphql", headers=None):
        all_headers = dict(headers or {})
        if credential:
            all_headers["Authorization"] = f"Bearer {credential}"
        return Client(transport=RequestsHTTPTransport(url=f"{live_server.url}{path}", headers=all_headers, retries=0))

    return connect


def run(client, document, **variables):
    request = gql(document)
    request.variable_values = variables or None
    return client.execute(request)


def fails(client, document, **variables):
    with pytest.raises(TransportQueryError) as caught:
        run(client, document, **variables)
    return caught.value.errors


@pytest.fixture
def crm(organization, other_organization):
    """Four customers of Acme (one with two addresses), one of Globex."""
    ada = make_customer(
        organization,
        "ada@acme.test",
        first_name="Ada",
        last_name="Lovelace",
        phone="555",
        addresses=[address("London", is_default_shipping=True), address("Paris")],
        created_by="user-1",
    )
    bob = make_customer(organization, "bob@acme.test", first_name="Bob", last_name="Babbage", status="prospect")
    cyd = make_customer(organization, "cyd@other.test", first_name="Cyd", last_name="", addresses=[address("Rome")])
    dee = make_customer(organization, "dee@acme.test", first_name="Dee", last_name="Zed")
    type(dee).objects.filter(pk=dee.pk).update(activation_date=None, status="suspended")
    type(ada).objects.filter(pk__in=[ada.pk, bob.pk]).update(activation_date="2024-01-02T03:04:05Z")
    globex = make_customer(other_organization, "ada@globex.test", first_name="Ada", addresses=[address("Oslo")])
    return {"ada": ada, "bob": bob, "cyd": cyd, "dee": dee, "globex": globex}


pytestmark = pytest.mark.django_db


@pytest.mark.live
def test_hasura_shaped_queries_through_the_gql_client(connect, secret_key, crm):
    client = connect(secret_key)
    data = run(
        client,
        """
        query Acme($domain: String!) {
          customers(
            where: {_and: [{email: {_ilike: $domain}}, {_or: [{status: {_in: ["active", "prospect"]}}, {phone: {_eq: "555"}}]}],
                    _not: {first_name: {_like: "B%"}}}
            order_by: [{last_name: asc}]
          ) { id email status addresses(order_by: {city: desc}, limit: 1, where: {city: {_neq: "Nowhere"}}) { city } }
        }""",
        domain="%@ACME.test",
    )
    assert [c["email"] for c in data["customers"]] == ["ada@acme.test"]
    assert data["customers"][0]["addresses"] == [{"city": "Paris"}]

    # _is_null, order_by with nulls, limit/offset, and the /v1/graphql spelling.
    client = connect(secret_key, path="/v1/graphql")
    data = run(
        client,
        """{ nulls: customers(where: {activation_date: {_is_null: true}}, order_by: {email: asc}) { email }
             first: customers(order_by: [{activation_date: asc_nulls_first}, {email: desc}], limit: 2, offset: 1) { email activation_date }
             last: customers(order_by: {activation_date: desc_nulls_last, email: asc}, limit: 1) { email } }""",
    )
    assert [c["email"] for c in data["nulls"]] == ["cyd@other.test", "dee@acme.test"]
    assert [c["email"] for c in data["first"]] == ["cyd@other.test", "bob@acme.test"]
    assert data["first"][1]["activation_date"].startswith("2024-01-02T03:04:05")
    assert [c["email"] for c in data["last"]] == ["ada@acme.test"]

    # _by_pk, _aggregate, an object relationship and a filter through a relationship.
    data = run(
        client,
        """query($id: String!) {
             customers_by_pk(id: $id) { email addresses_count: addresses { id customer { email } } }
             missing: customers_by_pk(id: "cus_nope") { id }
             customers_aggregate(where: {addresses: {city: {_in: ["London", "Rome"]}}}) {
               aggregate { count distinct: count(columns: [status], distinct: true) max { email } }
               nodes { email } }
             customer_addresses_aggregate { aggregate { count } }
           }""",
        id=crm["ada"].pk,
    )
    assert data["customers_by_pk"]["email"] == "ada@acme.test"
    assert {a["customer"]["email"] for a in data["customers_by_pk"]["addresses_count"]} == {"ada@acme.test"}
    assert data["missing"] is None
    aggregate = data["customers_aggregate"]
    assert aggregate["aggregate"] == {"count": 2, "distinct": 1, "max": {"email": "cyd@other.test"}}
    assert sorted(n["email"] for n in aggregate["nodes"]) == ["ada@acme.test", "cyd@other.test"]
    assert data["customer_addresses_aggregate"]["aggregate"]["count"] == 3

    # A relationship's own where and limit apply per parent (two parents, one query).
    data = run(
        client, "{ customers(order_by: {email: asc}) { email addresses(limit: 1, order_by: {city: asc}) { city } } }"
    )
    assert {c["email"]: [a["city"] for a in c["addresses"]] for c in data["customers"]} == {
        "ada@acme.test": ["London"],
        "bob@acme.test": [],
        "cyd@other.test": ["Rome"],
        "dee@acme.test": [],
    }


@pytest.mark.live
def test_errors_carry_the_contracts_codes(connect, secret_key, organization, crm):
    client = connect(secret_key)
    errors = fails(client, "{ customers { id no_such_field } }")
    assert errors[0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    errors = fails(client, "{ customers(where: {email: {_eq: null}}) { id } }")
    assert errors[0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert errors[0]["path"] == ["customers"]

    # A restricted key without the webhooks scope: its schema has no such field (per-role schemas).
    restricted = api_key_create(organization=organization, kind="restricted", mode="live", scopes=["customers:read"])[1]
    with pytest.raises(TransportQueryError) as caught:
        run(connect(restricted), "{ customers { email } webhook_endpoints { id } }")
    assert caught.value.errors[0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "webhook_endpoints" in caught.value.errors[0]["message"]
    assert caught.value.data is None

    # The user role (a JWT) has no read rule for the audit log.
    errors = fails(connect(make_jwt(organization)), "{ audit_logs { id } }")
    assert errors[0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"

    # No credential: the anonymous role reads nothing; a bad key is refused as REST refuses it.
    errors = fails(connect(), "{ customers { id } }")
    assert errors[0]["extensions"]["code"] == "MISSING_API_KEY"
    with pytest.raises(Exception) as refused:
        run(connect("sk_live_not_a_key"), "{ customers { id } }")
    assert "401" in str(refused.value) or "INVALID_API_KEY" in str(refused.value)


def _webhook_rows(organization):
    endpoint = WebhookEndpoint.objects.create(
        organization=organization, url="https://example.com/hook", events=["*"], secret="whsec_x"
    )
    event = Event.objects.create(
        organization=organization,
        type="customer.created",
        api_version="2024-01-01",
        object_type="customer",
        object_id="cus_1",
        sequence=1,
        data={},
    )
    delivery = WebhookDelivery.objects.create(organization=organization, event=event, endpoint=endpoint)
    return endpoint, event, delivery


@pytest.mark.live
def test_every_root_field_is_scoped_to_the_credentials_organization(
    connect, secret_key, other_secret_key, test_secret_key, organization, other_organization, crm
):
    _webhook_rows(organization)
    _webhook_rows(other_organization)
    own = run(
        connect(secret_key),
        """{ webhook_deliveries { id event { type } endpoint { url } } events { id } webhook_endpoints { id }
             api_keys { id } audit_logs { id } jobs { id } customers { id } customer_addresses { id } }""",
    )
    assert own["webhook_deliveries"][0]["event"]["type"] == "customer.created"
    assert own["webhook_deliveries"][0]["endpoint"]["url"] == "https://example.com/hook"
    from apps.graphql.tables import all_tables

    for name, table in all_tables().items():
        document = f'{{ rows: {name} {{ id }} one: {name}_by_pk(id: "{"%s"}") {{ id }} n: {name}_aggregate {{ aggregate {{ count }} }} }}'
        ids = [row["id"] for row in own.get(name, [])] or ["none"]
        other = run(connect(other_secret_key), document % ids[0])
        # Globex sees its own rows only: never Acme's, not even by id.
        assert other["one"] is None, name
        assert ids[0] not in {row["id"] for row in other["rows"]}, name
        assert other["n"]["aggregate"]["count"] == len(other["rows"]), name
        assert table.model._default_manager.filter(organization=other_organization).count() == len(other["rows"]), name

    # The sandbox key sees only sandbox rows.
    sandbox_customer = make_customer(organization.sandbox, "sandbox@acme.test")
    sandbox = run(connect(test_secret_key), "{ customers { id email } }")
    assert sandbox["customers"] == [{"id": sandbox_customer.pk, "email": "sandbox@acme.test"}]
    assert "_test_" in sandbox_customer.pk


@pytest.mark.live
def test_a_user_jwt_sees_only_its_own_rows(connect, organization, crm):
    data = run(
        connect(make_jwt(organization, user_id="user-1")),
        "{ customers { email addresses { city } } customer_addresses { id } }",
    )
    assert [c["email"] for c in data["customers"]] == ["ada@acme.test"]
    # The addresses carry the created_by of the system actor that wrote them: not this user's.
    assert data["customers"][0]["addresses"] == [] and data["customer_addresses"] == []
    assert run(connect(make_jwt(organization, user_id="user-2")), "{ customers { id } }") == {"customers": []}


def _post(client, key, query):
    return client.post(
        "/graphql", {"query": query}, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key}"
    )


@pytest.mark.parametrize("rows", [1, 50])
def test_queries_follow_the_depth_of_the_selection_not_the_rows(client, settings, organization, secret_key, rows):
    # The generic executor (SQLite's path, and every operation PostgreSQL does not compile); the
    # compiled path's one statement per root field is pinned in tests/test_graphql_sql.py.
    settings.STATESET_GRAPHQL_SQL = False
    for index in range(rows):
        make_customer(organization, f"c{index}@acme.test", addresses=[address("A"), address("B")])
    query = (
        '{ customers(limit: 50) { id email addresses(where: {city: {_neq: "Z"}}, limit: 5) { city customer { id } } } }'
    )
    _post(client, secret_key, "{ __typename }")  # the key's first use writes its last-used mark
    with CaptureQueriesContext(connection) as baseline:
        assert _post(client, secret_key, "{ __typename }").status_code == 200
    with CaptureQueriesContext(connection) as queries:
        response = _post(client, secret_key, query)
    body = response.json()
    assert "errors" not in body, body
    assert len(body["data"]["customers"]) == rows
    assert all(len(c["addresses"]) == 2 for c in body["data"]["customers"])
    # One query for the customers, one for all their addresses, one for the addresses' customers.
    assert len(queries) - len(baseline) == 3, [q["sql"] for q in queries.captured_queries]


def test_get_runs_queries_and_the_admin_secret_names_its_organization(client, settings, organization, crm):
    settings.STATESET_ADMIN_SECRET = "graphql-admin-secret"
    headers = {"HTTP_X_HASURA_ADMIN_SECRET": "graphql-admin-secret", "HTTP_X_HASURA_ORG_ID": organization.id}
    response = client.get(
        "/graphql",
        {
            "query": "query($n: Int!) { customers(order_by: {email: asc}, limit: $n) { email addresses(limit: $n) { city } } }",
            "variables": '{"n": 1}',
        },
        **headers,
    )
    assert response.status_code == 200
    assert response.json() == {"data": {"customers": [{"email": "ada@acme.test", "addresses": [{"city": "London"}]}]}}
    assert response["X-Request-ID"]

    # Without the organization header the admin secret is refused as REST refuses it.
    secret_only = {"HTTP_X_HASURA_ADMIN_SECRET": "graphql-admin-secret"}
    refused = client.get("/v1/graphql", {"query": "{ customers { id } }"}, **secret_only)
    rest = client.get("/v1/customers", **secret_only)
    assert refused.status_code == rest.status_code >= 400
    assert refused.json()["errors"][0]["extensions"]["code"] == rest.json()["code"]


def test_numeric_aggregates_and_a_bad_document(client, organization, secret_key):
    endpoint, event, delivery = _webhook_rows(organization)
    second = Event.objects.create(
        organization=organization,
        type="customer.updated",
        api_version="2024-01-01",
        object_type="customer",
        object_id="cus_1",
        sequence=2,
        data={},
    )
    WebhookDelivery.objects.create(organization=organization, event=second, endpoint=endpoint, attempt_count=3)
    body = _post(
        client,
        secret_key,
        "{ webhook_deliveries_aggregate { aggregate { count sum { attempt_count } avg { attempt_count } "
        "min { attempt_count } } } webhook_endpoints { deliveries(where: {attempt_count: {_gt: 0}}) { attempt_count } } }",
    ).json()
    assert body["data"]["webhook_deliveries_aggregate"]["aggregate"] == {
        "count": 2,
        "sum": {"attempt_count": 3},
        "avg": {"attempt_count": 1.5},
        "min": {"attempt_count": 0},
    }
    assert body["data"]["webhook_endpoints"] == [{"deliveries": [{"attempt_count": 3}]}]
    broken = _post(client, secret_key, "{ customers { id ")
    assert broken.status_code == 200
    assert broken.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
