"""Per-role GraphQL schemas (apps/graphql/schema.py) and the limits on a document
(apps/graphql/limits.py), through the HTTP endpoint."""

import pytest

from apps.accounts.services import api_key_create
from apps.core.context import Actor
from apps.graphql import limits
from apps.graphql.execution import Context, execute_operation
from apps.graphql.schema import get_schema
from apps.graphql.tables import all_tables
from tests import test_graphql as base

_jwt_secret = base._jwt_secret
make_customer, make_jwt = base.make_customer, base.make_jwt

pytestmark = pytest.mark.django_db

ROOTS = "{ __schema { queryType { fields { name } } mutationType { fields { name } } } }"
ALL_TABLES = {
    "customers",
    "customer_addresses",
    "events",
    "webhook_endpoints",
    "webhook_deliveries",
    "api_keys",
    "audit_logs",
    "jobs",
}


def post(client, query, credential=None, **headers):
    if credential:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {credential}"
    response = client.post("/graphql", {"query": query}, content_type="application/json", **headers)
    assert response.status_code == 200, response.content
    return response.json()


def roots(client, credential=None):
    schema = post(client, ROOTS, credential)["data"]["__schema"]
    queries = {field["name"] for field in schema["queryType"]["fields"]}
    mutations = {field["name"] for field in (schema["mutationType"] or {}).get("fields", ())}
    return queries, mutations


def tables_of(queries):
    return {name for name in queries if f"{name}_by_pk" in queries and f"{name}_aggregate" in queries}


def restricted(organization, *scopes):
    return api_key_create(organization=organization, kind="restricted", mode="live", scopes=list(scopes))[1]


def test_introspection_shows_only_what_the_role_may_use(client, organization, secret_key):
    queries, mutations = roots(client, secret_key)
    assert tables_of(queries) == ALL_TABLES
    assert {"insert_customers_one", "delete_customers", "suspend_customer", "revoke_api_key"} <= mutations

    # customers:read: the customers and their addresses (the same scope), and no mutation root.
    queries, mutations = roots(client, restricted(organization, "customers:read"))
    assert tables_of(queries) == {"customers", "customer_addresses"}
    assert queries == {
        f"{t}{suffix}" for t in ("customers", "customer_addresses") for suffix in ("", "_by_pk", "_aggregate")
    }
    assert mutations == set()

    # customers:write grants every customer mutation and action; webhooks stay out of sight.
    queries, mutations = roots(client, restricted(organization, "customers:write"))
    assert tables_of(queries) == {"customers", "customer_addresses"}
    assert {"insert_customers", "update_customers_by_pk", "delete_customers_by_pk", "suspend_customer"} <= mutations
    assert not any("webhook" in name or "api_key" in name for name in mutations)

    # A user JWT: its own rows of customers and addresses, and jobs; never the audit log or keys.
    queries, mutations = roots(client, make_jwt(organization))
    assert tables_of(queries) == {"customers", "customer_addresses", "jobs"}
    assert "insert_customers_one" in mutations and "activate_customer" in mutations
    assert "suspend_customer" not in mutations  # managers and admins only (apps/crm/policies.py)
    assert not any(name.endswith("jobs") for name in mutations)

    # No credential: no table; the one root field Hasura gives a role with nothing to read.
    queries, mutations = roots(client)
    assert queries == {"no_queries_available"} and mutations == set()
    assert post(client, "{ no_queries_available }")["data"]["no_queries_available"].startswith("There are no queries")


def test_relationships_and_filters_lead_only_to_readable_tables():
    """No role of today's policy table reads deliveries but not events: the shape is given."""
    from graphql import graphql_sync

    from apps.graphql import schema as schema_module

    shape = frozenset({("webhook_deliveries", "read"), ("webhook_endpoints", "read"), ("webhook_endpoints", "update")})
    schema = schema_module._schema(shape)

    def ask(query):
        result = graphql_sync(schema, query)
        assert not result.errors, result.errors
        return result.data

    fields = {f["name"] for f in ask('{ __type(name: "webhook_deliveries") { fields { name } } }')["__type"]["fields"]}
    assert "endpoint" in fields and "event_id" in fields and "event" not in fields
    bool_exp = ask('{ __type(name: "webhook_deliveries_bool_exp") { inputFields { name } } }')["__type"]
    assert "event" not in {f["name"] for f in bool_exp["inputFields"]}
    assert ask('{ __type(name: "events") { name } }')["__type"] is None
    mutations = {
        f["name"]
        for f in ask("{ __schema { mutationType { fields { name } } } }")["__schema"]["mutationType"]["fields"]
    }
    assert "update_webhook_endpoints_by_pk" in mutations
    assert not any(name.startswith(("insert_", "delete_")) for name in mutations)
    assert "enable_webhook_endpoint" not in mutations  # an action is an operation of its own


def test_a_query_outside_the_schema_fails_validation_and_runs_nothing(client, organization, secret_key):
    make_customer(organization, "ada@acme.test")
    key = restricted(organization, "customers:read")
    body = post(client, "{ customers { id } audit_logs { id } }", key)
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "audit_logs" in body["errors"][0]["message"]
    assert "data" not in body
    body = post(client, 'mutation { insert_customers_one(object: {email: "x@acme.test"}) { id } }', key)
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    # Without any credential the answer says what is missing.
    body = post(client, "{ customers { id } }")
    assert body["errors"][0]["extensions"]["code"] == "MISSING_API_KEY"


def test_the_runtime_policy_checks_remain_the_second_line(organization):
    """Run against the full schema (as if a schema were wrong), the resolvers still refuse."""
    actor = Actor(
        organization=organization,
        role="manager",
        credential_type="api_key",
        api_key_kind="restricted",
        scopes=("customers:read",),
    )
    context = Context(actor=actor, tables=all_tables())
    result = execute_operation(get_schema(full=True), context, "{ audit_logs { id } }")
    assert result["errors"][0]["extensions"]["code"] == "INSUFFICIENT_PERMISSIONS"


def test_schemas_are_cached_per_permission_shape(organization, other_organization):
    def actor(org, **kwargs):
        return Actor(organization=org, credential_type="api_key", **kwargs)

    admin = get_schema(actor(organization, role="admin", api_key_kind="secret"))
    assert get_schema(actor(other_organization, role="admin", api_key_kind="secret")) is admin
    read = get_schema(actor(organization, role="manager", api_key_kind="restricted", scopes=("customers:read",)))
    assert read is not admin
    # Other scopes that grant the same operations share the schema (the shape is the grants).
    same = get_schema(
        actor(other_organization, role="manager", api_key_kind="restricted", scopes=("customers:read", "nothing:read"))
    )
    assert same is read
    assert get_schema(None) is get_schema(actor(organization, role="anonymous", api_key_kind=""))


def test_two_requests_of_the_same_shape_build_one_schema(client, organization, secret_key, monkeypatch):
    from apps.graphql import schema as schema_module

    post(client, "{ __typename }", secret_key)
    built = []
    original = schema_module.SchemaBuilder.build
    monkeypatch.setattr(schema_module.SchemaBuilder, "build", lambda self: built.append(1) or original(self))
    other = api_key_create(organization=organization, kind="secret", mode="live")[1]
    post(client, "{ customers { id } }", secret_key)
    post(client, "{ customers { id } }", other)
    assert built == []


# Limits -----------------------------------------------------------------------------------------


def test_a_query_too_deep_is_refused(client, secret_key):
    nested = "customer { addresses { " * 5
    deep = "{ customers { addresses { " + nested + "id" + " } }" * 5 + " } } }"
    body = post(client, deep, secret_key)
    assert body["errors"][0]["extensions"]["code"] == limits.TOO_DEEP
    assert "customers" in body["errors"][0]["message"] and "maximum is 10" in body["errors"][0]["message"]
    # Through fragments too.
    fragment = "fragment A on customers { addresses { customer { addresses { customer { addresses { id } } } } } }"
    body = post(
        client, "{ customers { addresses { customer { addresses { customer { ...A } } } } } } " + fragment, secret_key
    )
    assert body["errors"][0]["extensions"]["code"] == limits.TOO_DEEP
    # Ten levels are fine.
    ok = "{ customers { addresses { customer { addresses { customer { addresses { customer { addresses { customer { id } } } } } } } } } }"
    assert "errors" not in post(client, ok, secret_key)


def test_the_standard_introspection_query_passes(client, secret_key):
    from graphql import get_introspection_query

    body = post(client, get_introspection_query(descriptions=True), secret_key)
    assert "errors" not in body
    assert body["data"]["__schema"]["queryType"]["name"] == "query_root"


def test_too_many_root_fields_or_fields_are_refused(client, secret_key):
    many = "{ " + " ".join(f"a{i}: customers {{ id }}" for i in range(limits.MAX_ROOT_FIELDS + 1)) + " }"
    body = post(client, many, secret_key)
    assert body["errors"][0]["extensions"]["code"] == limits.TOO_COMPLEX
    assert "root fields" in body["errors"][0]["message"]
    # A fragment used many times counts every time it is spread.
    fragment = "fragment F on customers { " + " ".join(f"e{i}: email" for i in range(60)) + " }"
    wide = (
        "{ customers { "
        + " ".join(f"a{i}: addresses {{ customer {{ ...F }} }}" for i in range(20))
        + " } } "
        + fragment
    )
    body = post(client, wide, secret_key)
    assert body["errors"][0]["extensions"]["code"] == limits.TOO_COMPLEX
    assert "fields" in body["errors"][0]["message"]


def test_list_fields_are_capped(client, organization, secret_key, monkeypatch):
    monkeypatch.setattr(limits, "MAX_ROWS", 2)
    for index in range(3):
        make_customer(organization, f"c{index}@acme.test", addresses=[base.address(c) for c in "ABC"])
    data = post(
        client,
        "{ customers { addresses { city } } customers_aggregate { aggregate { count } nodes { id } } }",
        secret_key,
    )["data"]
    # No limit: MAX_ROWS rows per list field (the root, each customer's addresses, the nodes)...
    assert len(data["customers"]) == 2 and all(len(c["addresses"]) == 2 for c in data["customers"])
    assert len(data["customers_aggregate"]["nodes"]) == 2
    # ... while the aggregate still counts every row.
    assert data["customers_aggregate"]["aggregate"]["count"] == 3
    for query, field in (
        ("{ customers(limit: 3) { id } }", "customers"),
        ("{ customers { addresses(limit: 3) { id } } }", "addresses"),
        ("{ customers_aggregate(limit: 3) { nodes { id } } }", "customers_aggregate"),
    ):
        error = post(client, query, secret_key)["errors"][0]
        assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED", query
        assert error["message"].startswith(f"{field}: limit 3 is above the maximum of 2"), error
    assert len(post(client, "{ customers(limit: 2, offset: 2) { id } }", secret_key)["data"]["customers"]) == 1


def test_a_document_too_large_is_refused(client, secret_key, monkeypatch):
    tokens = "{ customers { " + "id " * (limits.MAX_TOKENS + 1) + "} }"
    body = post(client, tokens, secret_key)
    assert body["errors"][0]["extensions"]["code"] == limits.TOO_LARGE
    assert "tokens" in body["errors"][0]["message"]
    monkeypatch.setattr(limits, "MAX_QUERY_CHARS", 50)
    body = post(client, "{ customers { id " + " " * 60 + "} }", secret_key)
    assert body["errors"][0]["extensions"]["code"] == limits.TOO_LARGE
    assert "maximum is 50" in body["errors"][0]["message"]


def test_the_documented_examples_are_valid_documents():
    """Every ```graphql example of docs/graphql.md validates against the schema (docs stay true)."""
    import pathlib
    import re

    from graphql import parse, validate

    text = (pathlib.Path(__file__).resolve().parent.parent / "docs" / "graphql.md").read_text()
    examples = re.findall(r"```graphql\n(.*?)```", text, flags=re.S)
    assert len(examples) >= 10
    schema = get_schema(full=True)
    for example in examples:
        assert validate(schema, parse(example)) == [], example
