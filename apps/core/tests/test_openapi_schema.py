"""`/v1/openapi.json` describes what the resources really answer (apps.core.schema)."""

import pytest

from apps.accounts.api.views import AuditLogFilterSet
from apps.crm.api.filters import CustomerFilterSet
from apps.events.api.filters import EventFilterSet

ERROR_REF = {"$ref": "#/components/schemas/Error"}
ALWAYS = {"400", "401", "403", "429", "500"}


@pytest.fixture(scope="module")
def schema(django_db_setup, django_db_blocker):
    from django.test import Client

    with django_db_blocker.unblock():
        response = Client().get("/v1/openapi.json")
    assert response.status_code == 200
    return response.json()


def ref(name):
    return {"$ref": f"#/components/schemas/{name}"}


def component(schema, name):
    return schema["components"]["schemas"][name]


def body_schema(part):
    return part["content"]["application/json"]["schema"]


def params(operation):
    return {p["name"]: p for p in operation.get("parameters", ()) if p["in"] == "query"}


def assert_list_envelope(schema, operation, item):
    envelope_ref = body_schema(operation["responses"]["200"])
    envelope = component(schema, envelope_ref["$ref"].rsplit("/", 1)[-1])
    assert envelope["type"] == "object"
    assert set(envelope["required"]) == {"object", "url", "data", "has_more", "next_cursor"}
    properties = envelope["properties"]
    assert properties["object"]["pattern"] == "^list$"
    assert properties["data"] == {"type": "array", "items": ref(item)}
    assert properties["has_more"]["type"] == "boolean"
    assert properties["next_cursor"] == {"type": "string", "nullable": True}
    assert properties["total_count"]["type"] == "integer"


def assert_paging_parameters(operation):
    query = params(operation)
    assert query["limit"]["schema"]["minimum"] == 1
    assert query["limit"]["schema"]["maximum"] == 100
    assert query["offset"]["schema"]["minimum"] == 0
    assert query["offset"]["schema"]["maximum"] == 10000
    assert query["include_total"]["schema"]["type"] == "boolean"
    for name in ("cursor", "starting_after", "ending_before", "page"):
        assert name in query


def assert_filter_parameters(operation, filterset_class):
    query = params(operation)
    for field, operators in filterset_class.operators().items():
        if "eq" in operators:
            assert field in query
        for op in operators:
            assert f"{field}_{op}" in query, f"{field}_{op}"
            if op == "is_null":
                assert query[f"{field}_{op}"]["schema"]["type"] == "boolean"


def assert_errors(operation, *extra, absent=()):
    responses = operation["responses"]
    for code in ALWAYS | set(extra):
        assert body_schema(responses[code]) == ERROR_REF, code
    for code in absent:
        assert code not in responses, code


def test_error_component_and_headers(schema):
    error = component(schema, "Error")
    assert {"type", "code", "message", "error"} <= set(error["required"])
    assert error["properties"]["param"]["nullable"] is True
    headers = schema["components"]["headers"]
    assert headers["X-Request-ID"]["required"] is True
    assert {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "Retry-After"} <= set(headers)
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert_errors(operation)
            for response in operation["responses"].values():
                assert response["headers"]["X-Request-ID"] == {"$ref": "#/components/headers/X-Request-ID"}
            if "{id}" in path:
                assert "404" in operation["responses"], (method, path)
            if method in ("post", "put", "patch"):
                assert "422" in operation["responses"], (method, path)
            if "requestBody" in operation:
                assert "413" in operation["responses"], (method, path)
            assert "429" in operation["responses"] and "Retry-After" in operation["responses"]["429"]["headers"]


def test_only_canonical_paths(schema):
    for path in schema["paths"]:
        assert path.startswith("/v1/") and not path.endswith(("/", "/list", "/create")), path


def test_customers(schema):
    collection, item = schema["paths"]["/v1/customers"], schema["paths"]["/v1/customers/{id}"]
    listing = collection["get"]
    assert_list_envelope(schema, listing, "Customer")
    assert_paging_parameters(listing)
    assert_filter_parameters(listing, CustomerFilterSet)
    query = params(listing)
    assert "-?" in query["sort"]["schema"]["pattern"] and "order_by" in query
    assert "expand" in query and "expand[]" in query
    assert_errors(listing, "404")

    search = schema["paths"]["/v1/customers/search"]["get"]
    assert_list_envelope(schema, search, "Customer")
    assert "query" in params(search)
    assert_filter_parameters(search, CustomerFilterSet)

    create = collection["post"]
    assert body_schema(create["requestBody"]) == ref("CustomerRequest")
    assert component(schema, "CustomerRequest")["required"] == ["email"]
    assert body_schema(create["responses"]["201"]) == ref("Customer")
    assert "200" not in create["responses"]
    assert_errors(create, "409", "413", "422")

    assert body_schema(item["get"]["responses"]["200"]) == ref("Customer")
    assert_errors(item["get"], "404")
    for method in ("put", "patch"):
        assert body_schema(item[method]["requestBody"]) == ref("PatchedCustomerRequest")
        assert body_schema(item[method]["responses"]["200"]) == ref("Customer")
        assert_errors(item[method], "404", "409", "413", "422")
    assert "required" not in component(schema, "PatchedCustomerRequest")
    assert "content" not in item["delete"]["responses"]["204"]
    assert_errors(item["delete"], "404", "409", absent=("200", "413"))


def test_customers_batch(schema):
    batch = schema["paths"]["/v1/customers/batch"]["post"]
    request = component(schema, body_schema(batch["requestBody"])["$ref"].rsplit("/", 1)[-1])
    shapes = {tuple(branch["required"]): branch["properties"] for branch in request["oneOf"]}
    assert set(shapes) == {("data",), ("items",)}
    for (key,), properties in shapes.items():
        assert properties[key]["type"] == "array"
        assert properties[key]["items"] == ref("CustomerRequest")
    assert body_schema(batch["responses"]["201"]) == ref("CustomerList")
    assert body_schema(batch["responses"]["202"]) == ref("Job")
    assert_errors(batch, "409", "413", "422")


def test_webhooks(schema):
    collection, item = schema["paths"]["/v1/webhooks"], schema["paths"]["/v1/webhooks/{id}"]
    assert_list_envelope(schema, collection["get"], "WebhookEndpoint")
    assert {"url", "events"} <= set(component(schema, "WebhookEndpointRequest")["required"])
    assert "required" not in component(schema, "PatchedWebhookEndpointRequest")
    assert body_schema(item["put"]["requestBody"]) == ref("PatchedWebhookEndpointRequest")
    assert body_schema(collection["post"]["responses"]["201"]) == ref("WebhookEndpoint")
    # A column that can be empty is shown as null.
    assert component(schema, "WebhookEndpoint")["properties"]["secret_rotation_ends_at"]["nullable"] is True

    for name, answer in (
        ("enable", "WebhookEndpoint"),
        ("disable", "WebhookEndpoint"),
        ("rotate_secret", "WebhookEndpointWithSecret"),
    ):
        action = schema["paths"][f"/v1/webhooks/{{id}}/{name}"]["post"]
        assert body_schema(action["responses"]["200"]) == ref(answer)
        assert "requestBody" not in action and "201" not in action["responses"]
        assert_errors(action, "404", "409")
    test_action = schema["paths"]["/v1/webhooks/{id}/test"]["post"]
    assert body_schema(test_action["responses"]["200"]) == ref("WebhookDelivery")
    deliveries = schema["paths"]["/v1/webhooks/{id}/deliveries"]["get"]
    assert_list_envelope(schema, deliveries, "WebhookDelivery")
    assert_paging_parameters(deliveries)
    assert "/v1/webhooks/batch" not in schema["paths"]  # endpoints are created one at a time


def test_events(schema):
    listing = schema["paths"]["/v1/events"]["get"]
    assert_list_envelope(schema, listing, "Event")
    assert_paging_parameters(listing)
    assert_filter_parameters(listing, EventFilterSet)
    assert params(listing)["sequence_gt"]["schema"]["type"] == "integer"
    assert params(listing)["created_at_gte"]["schema"]["format"] == "date-time"
    assert set(schema["paths"]["/v1/events"]) == {"get"}
    assert set(schema["paths"]["/v1/events/{id}"]) == {"get"}


def test_api_keys(schema):
    collection, item = schema["paths"]["/v1/api_keys"], schema["paths"]["/v1/api_keys/{id}"]
    assert_list_envelope(schema, collection["get"], "APIKey")
    assert_paging_parameters(collection["get"])
    assert "kind" in component(schema, "APIKeyRequest")["required"]
    assert body_schema(collection["post"]["responses"]["201"]) == ref("APIKey")
    assert "204" in item["delete"]["responses"]
    revoke = schema["paths"]["/v1/api_keys/{id}/revoke"]["post"]
    assert body_schema(revoke["responses"]["200"]) == ref("APIKey")
    assert "requestBody" not in revoke


def test_jobs(schema):
    listing = schema["paths"]["/v1/jobs"]["get"]
    assert_list_envelope(schema, listing, "Job")
    assert_paging_parameters(listing)
    assert set(schema["paths"]["/v1/jobs/{id}"]) == {"get"}
    assert body_schema(schema["paths"]["/v1/jobs/{id}"]["get"]["responses"]["200"]) == ref("Job")


def test_audit_logs(schema):
    listing = schema["paths"]["/v1/audit_logs"]["get"]
    assert_list_envelope(schema, listing, "AuditLog")
    assert_filter_parameters(listing, AuditLogFilterSet)
    search = schema["paths"]["/v1/audit_logs/search"]["get"]
    assert_list_envelope(schema, search, "AuditLog")
    assert "query" in params(search)


def test_status_history_and_transition_checks_are_described_truly(schema):
    history = schema["paths"]["/v1/customers/{id}/history"]["get"]
    assert_list_envelope(schema, history, "StatusChange")
    assert_paging_parameters(history)
    check = schema["paths"]["/v1/customers/{id}/can_transition"]["get"]
    assert body_schema(check["responses"]["200"]) == ref("TransitionCheck")
    assert params(check)["target"]["required"] is True
    assert set(component(schema, "TransitionCheck")["properties"]) >= {"current_status", "allowed", "allowed_targets"}


def test_a_rotated_secret_is_in_the_described_answer(schema):
    assert "secret" in component(schema, "WebhookEndpointWithSecret")["properties"]
