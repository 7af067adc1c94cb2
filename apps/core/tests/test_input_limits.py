"""Bad input, through HTTP, on every collection: each case is a 4xx error of the contract that
changes nothing (API contract, "Limits on input")."""

import json

import pytest

import stateset.urls  # noqa: F401 - registers every collection with the router
from apps.core.routing import router
from apps.core.views import ResourceViewSet

from .test_conventions import assert_error

COLLECTIONS = sorted(prefix for prefix, _viewset, _basename in router.canonical.registry)
# Collections a secret key can create through `POST /v1/<c>`, with a valid body.
VALID_BODIES = {
    "customers": {"email": "new@example.com"},
    "webhooks": {"url": "https://hooks.example.com/in", "events": ["customer.created"]},
    "api_keys": {"kind": "secret"},
}


def _model(collection):
    viewset = next(v for prefix, v, _ in router.canonical.registry if prefix == collection)
    return viewset.queryset.model


def _count(collection):
    return _model(collection).objects.count()


def test_every_creatable_collection_has_a_valid_body_here():
    creatable = {
        prefix
        for prefix, viewset, _ in router.canonical.registry
        if issubclass(viewset, ResourceViewSet) or "create" in viewset.__dict__
    }
    assert creatable <= set(VALID_BODIES), f"add a valid body for {creatable - set(VALID_BODIES)}"


# Query parameters -------------------------------------------------------------------------

BAD_QUERIES = [
    ({"limit": ""}, "limit"),
    ({"limit": " 5"}, "limit"),
    ({"limit": "5_0"}, "limit"),
    ({"limit": "1e2"}, "limit"),
    ({"offset": ""}, "offset"),
    ({"include_total": "maybe"}, "include_total"),
    ({"include_total": ""}, "include_total"),
    ({"sort": ",,,"}, "sort"),
    ({"sort": ","}, "sort"),
    ({"sort": ""}, "sort"),
    ({"sort": "created_at desc asc"}, "sort"),
    ({"order_by": "-"}, "order_by"),
    ({"starting_after": "x_1", "ending_before": "x_2"}, "ending_before"),
    ({"cursor": "abc", "offset": "10"}, "offset"),
    ({"cursor": ""}, "cursor"),
    ({"starting_after": "bad\x00id"}, "starting_after"),
    ({"ending_before": "\x00"}, "ending_before"),
    ({"cursor": "eyJ2Ijp\x00"}, "cursor"),
    ({"expand": "a\x00"}, "expand"),
]


@pytest.mark.parametrize("collection", COLLECTIONS)
@pytest.mark.parametrize(("params", "param"), BAD_QUERIES, ids=[repr(p) for p, _ in BAD_QUERIES])
def test_malformed_list_parameters_are_400_naming_the_parameter(api_client, collection, params, param):
    body = assert_error(api_client.get(f"/v1/{collection}", params), 400, "INVALID_FIELD_FORMAT")
    assert body["param"] == param


@pytest.mark.parametrize("collection", COLLECTIONS)
def test_nul_in_search_query_is_400(api_client, collection):
    body = assert_error(api_client.get(f"/v1/{collection}/search", {"query": "a\x00b"}), 400, "INVALID_FIELD_FORMAT")
    assert body["param"] == "query"


def test_filter_values_are_checked_strictly(api_client):
    cases = [
        ({"email_in": ""}, "email_in"),
        ({"email[in]": ","}, "email[in]"),
        ({"email_nin": "a@x.com,"}, "email_nin"),
        ({"email_is_null": "maybe"}, "email_is_null"),
        ({"accepts_marketing": "maybe"}, "accepts_marketing"),
        ({"accepts_marketing_ne": "1"}, "accepts_marketing_ne"),
        ({"created_at_between": "2024-01-01"}, "created_at_between"),
        ({"email": "a\x00b@x.com"}, "email"),
        ({"email\x00": "x"}, "email?"),
    ]
    for params, param in cases:
        body = assert_error(api_client.get("/v1/customers", params), 400, "INVALID_FIELD_FORMAT")
        assert body["param"] == param, params
    assert api_client.get("/v1/customers", {"accepts_marketing": "TRUE", "email_is_null": "false"}).status_code == 200


def test_malformed_json_body_on_a_get_is_400(client, secret_key):
    auth = {"HTTP_AUTHORIZATION": f"Bearer {secret_key}"}
    for raw in ("{nope", "[1, 2]", '{"limit": {"a": 1}}', "[" * 10_000):
        response = client.generic("GET", "/v1/customers", raw, content_type="application/json", **auth)
        assert response.status_code == 400, raw
        assert response.json()["type"] == "invalid_request_error"
    response = client.generic("GET", "/v1/customers", '{"query": "\\udfff"}', content_type="application/json", **auth)
    assert_error(response, 400, "INVALID_FIELD_FORMAT")
    response = client.generic(
        "GET", "/v1/customers/search", '{"query": "\\u0000"}', content_type="application/json", **auth
    )
    assert_error(response, 400, "INVALID_FIELD_FORMAT")


# Bodies -----------------------------------------------------------------------------------


def _post_raw(client, key, path, raw):
    return client.post(path, raw, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key}")


@pytest.mark.parametrize("collection", sorted(VALID_BODIES))
def test_deeply_nested_bodies_are_400_and_change_nothing(client, secret_key, collection):
    before = _count(collection)
    valid = json.dumps(VALID_BODIES[collection])[:-1]
    for depth in (33, 10_000, 100_000):
        raw = valid + ', "metadata": ' + '{"a": ' * depth + "1" + "}" * depth + "}"
        assert_error(_post_raw(client, secret_key, f"/v1/{collection}", raw), 400, "BAD_REQUEST")
    assert _count(collection) == before


def test_deeply_nested_batch_is_400(client, secret_key):
    raw = '{"items": [' + "[" * 50 + "]" * 50 + "]}"
    assert_error(_post_raw(client, secret_key, "/v1/customers/batch", raw), 400, "BAD_REQUEST")


@pytest.mark.parametrize("collection", sorted(VALID_BODIES))
@pytest.mark.parametrize(
    "char", ["\\u0000", "\\udfff", "\\ud800x"], ids=["nul", "lone-low-surrogate", "lone-high-surrogate"]
)
def test_forbidden_characters_in_a_body_are_422_naming_the_field(client, secret_key, collection, char):
    before = _count(collection)
    base = json.dumps(VALID_BODIES[collection])[:-1]
    cases = [
        (base + f', "metadata": {{"note": "a{char}b"}}}}', "metadata.note"),
        (base + f', "metadata": {{"k{char}": "v"}}}}', "metadata"),
        (base + f', "description{char}": "x"}}', None),
    ]
    for raw, param in cases:
        body = assert_error(_post_raw(client, secret_key, f"/v1/{collection}", raw), 422, "INVALID_FIELD_FORMAT")
        if param:
            assert body["param"] == param
    assert _count(collection) == before


def test_forbidden_characters_in_every_kind_of_customer_field(api_client):
    cases = [
        ({"email": "a@x.com", "first_name": "Ann\x00"}, "first_name"),
        ({"email": "a@x.com", "tags": ["ok", "b\udfff"]}, "tags[1]"),
        (
            {"email": "a@x.com", "addresses": [{"address_line_1": "1 Main\x00", "city": "X", "country_code": "US"}]},
            "addresses[0].address_line_1",
        ),
    ]
    for data, param in cases:
        raw = json.dumps(data)  # escapes NUL and the surrogate as \u0000 / \udfff
        response = api_client.client.post(
            "/v1/customers", raw, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {api_client.key}"
        )
        assert assert_error(response, 422, "INVALID_FIELD_FORMAT")["param"] == param
    customer = api_client.post("/v1/customers", {"email": "a@x.com"}).json()
    raw = json.dumps({"last_name": "\x00"})
    response = api_client.client.patch(
        f"/v1/customers/{customer['id']}",
        raw,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {api_client.key}",
    )
    assert_error(response, 422, "INVALID_FIELD_FORMAT")
    assert api_client.get(f"/v1/customers/{customer['id']}").json()["last_name"] == ""


@pytest.mark.parametrize("collection", ["customers", "webhooks"])
def test_metadata_limits(api_client, collection):
    base = VALID_BODIES[collection]
    before = _count(collection)
    bad = [
        {f"k{i}": "v" for i in range(51)},
        {"k" * 41: "v"},
        {"": "v"},
        {"k": "v" * 501},
        {"k": "x" * 1_000_000},
        {"k": {"nested": "no"}},
        {"k": ["a"]},
        ["not", "an", "object"],
        "text",
    ]
    for metadata in bad:
        response = api_client.post(f"/v1/{collection}", {**base, "metadata": metadata})
        body = assert_error(response, 422, "VALIDATION_ERROR")
        assert body["param"] == "metadata"
    for depth, status, code in ((3, 422, "VALIDATION_ERROR"), (40, 400, "BAD_REQUEST")):
        nested = node = {}
        for _ in range(depth):
            node["k"] = {}
            node = node["k"]
        assert_error(api_client.post(f"/v1/{collection}", {**base, "metadata": nested}), status, code)
    assert _count(collection) == before
    good = {**{f"k{i}": "v" for i in range(46)}, "k" * 40: "v" * 500, "n": 1.5}
    response = api_client.post(f"/v1/{collection}", {**base, "metadata": {**good, "b": True, "z": None}})
    assert response.status_code == 201, response.content
    assert response.json()["metadata"]["k" * 40] == "v" * 500


def test_tag_limits(api_client):
    for tags in (["t"] * 0 + [f"t{i}" for i in range(51)], ["x" * 65], ["x" * 1_000_000], "tag", [1], [["a"]]):
        body = assert_error(
            api_client.post("/v1/customers", {"email": "a@x.com", "tags": tags}), 422, "VALIDATION_ERROR"
        )
        assert body["param"] == "tags"
    response = api_client.client.post(
        "/v1/customers",
        json.dumps({"email": "a@x.com", "tags": [f"t{i}" for i in range(100_000)]}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {api_client.key}",
    )
    assert_error(response, 422, "VALIDATION_ERROR")
    assert _count("customers") == 0
    response = api_client.post("/v1/customers", {"email": "a@x.com", "tags": ["x" * 64, " b ", "b", "a"]})
    assert response.status_code == 201
    assert response.json()["tags"] == ["a", "b", "x" * 64]


def test_webhook_events_are_bounded(api_client):
    response = api_client.post("/v1/webhooks", {"url": "https://h.example.com", "events": ["a.b"] * 501})
    assert_error(response, 422, "VALIDATION_ERROR")
    body = assert_error(
        api_client.post("/v1/webhooks", {"url": "https://h.example.com"}), 422, "MISSING_REQUIRED_FIELD"
    )
    assert body["param"] == "events"
    response = api_client.post("/v1/webhooks", {"url": "https://h.example.com", "enabled_events": ["customer.*"]})
    assert response.status_code == 201, response.content
    assert response.json()["events"] == ["customer.*"]


def test_form_encoded_bodies_are_415(client, secret_key):
    response = client.post("/v1/customers", {"email": "a@x.com"}, HTTP_AUTHORIZATION=f"Bearer {secret_key}")
    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert _count("customers") == 0


# Jobs -------------------------------------------------------------------------------------


def test_jobs_list_search_and_missing(api_client):
    for path in ("/v1/jobs", "/v1/jobs/search", "/v1/jobs/search?query=x", "/v1/jobs?limit=100&sort=-created_at"):
        response = api_client.get(path)
        assert response.status_code == 200, response.content
        assert response.json()["object"] == "list"
    body = assert_error(api_client.get("/v1/jobs/job_missing"), 404, "RESOURCE_NOT_FOUND")
    assert "job_missing" in body["message"]


# Headers ----------------------------------------------------------------------------------


@pytest.mark.parametrize("header", ["X_ACCOUNT_ID", "IDEMPOTENCY_KEY", "USER_AGENT", "X_DEVICE_ID", "X_API_KEY"])
def test_nul_in_a_header_is_400_and_changes_nothing(client, secret_key, header):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {secret_key}", f"HTTP_{header}": "a\x00b"}
    if header == "X_API_KEY":
        del headers["HTTP_AUTHORIZATION"]
    response = client.post("/v1/customers", '{"email": "a@x.com"}', content_type="application/json", **headers)
    body = assert_error(response, 400, "INVALID_FIELD_FORMAT")
    assert body["param"] == header.replace("_", "-").title()
    assert _count("customers") == 0


@pytest.mark.parametrize(
    ("path", "params", "param"),
    [
        ("/v1/customers", {"updated_at_neq": ""}, "updated_at_neq"),
        ("/v1/customers", {"email": ""}, "email"),
        ("/v1/customers", {"email_like": " "}, "email_like"),
        ("/v1/audit_logs", {"created_at_neq": ""}, "created_at_neq"),
        ("/v1/events", {"sequence_neq": "0.5"}, "sequence_neq"),
        ("/v1/events", {"sequence_in": "1,2.5"}, "sequence_in"),
        ("/v1/webhook_deliveries/search", {"last_status_code_gt": "-2.3e-132"}, "last_status_code_gt"),
        ("/v1/webhook_deliveries", {"last_status_code_lt": ["1", ""]}, "last_status_code_lt"),
    ],
)
def test_empty_and_non_integer_filter_values_are_400(api_client, path, params, param):
    body = assert_error(api_client.get(path, params), 400, "INVALID_FIELD_FORMAT")
    assert body["param"] == param


@pytest.mark.parametrize("method", ["put", "patch"])
def test_a_null_body_on_an_update_is_400_and_changes_nothing(api_client, method):
    customer = api_client.post("/v1/customers", {"email": "a@x.com", "first_name": "Ann"}).json()
    send = getattr(api_client.client, method)
    response = send(
        f"/v1/customers/{customer['id']}",
        "null",
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {api_client.key}",
    )
    assert_error(response, 400, "BAD_REQUEST")
    assert api_client.get(f"/v1/customers/{customer['id']}").json()["first_name"] == "Ann"


def test_batch_bodies_take_items_or_data_only(api_client):
    body = assert_error(
        api_client.post("/v1/customers/batch", {"items": [{"email": "a@x.com"}], "x-unknown": 42}),
        400,
        "parameter_unknown",
    )
    assert body["param"] == "x-unknown"
    assert_error(
        api_client.post("/v1/customers/batch", {"items": [{"email": "a@x.com"}], "data": [{"email": "b@x.com"}]}),
        400,
        "BAD_REQUEST",
    )
    assert _count("customers") == 0
    assert api_client.post("/v1/customers/batch", {"data": [{"email": "a@x.com"}]}).status_code == 201


@pytest.mark.parametrize(
    ("data", "param"),
    [
        ({"email": "a@x.com", "accepts_marketing": 0}, "accepts_marketing"),
        ({"email": "a@x.com", "accepts_marketing": "true"}, "accepts_marketing"),
        ({"email": "a@x.com", "first_name": 5}, "first_name"),
        ({"email": ["a@x.com"]}, "email"),
        ({"email": "a@x.com", "status": 1}, "status"),
        ({"email": "a@x.com", "activation_date": 1700000000}, "activation_date"),
        ({"email": "a@x.com", "addresses": [{"address_line_1": 1, "city": "X", "country_code": "US"}]}, "addresses"),
    ],
)
def test_json_types_are_taken_as_the_schema_says(api_client, data, param):
    body = assert_error(api_client.post("/v1/customers", data), 422, "VALIDATION_ERROR")
    assert body["param"].startswith(param)
    assert _count("customers") == 0


def test_list_items_have_their_type(api_client):
    body = assert_error(
        api_client.post("/v1/webhooks", {"url": "https://h.example.com", "events": [0]}), 422, "VALIDATION_ERROR"
    )
    assert body["param"] == "events"
    assert_error(
        api_client.post("/v1/webhooks", {"url": "https://h.example.com", "events": []}), 422, "VALIDATION_ERROR"
    )
    assert _count("webhooks") == 0


@pytest.mark.parametrize(
    "value", ["0696-04-08T11:56:49.688+20:40", "2024-01-01T00:00:00+15:30", "0001-01-01T00:00:00+05:00"]
)
def test_date_time_filters_with_any_offset_never_fail(api_client, value):
    api_client.post("/v1/customers", {"email": "a@x.com"})
    for params in ({"created_at_neq": value}, {"created_at_between": f"{value},2999-01-01T00:00:00Z"}):
        response = api_client.get("/v1/customers", params)
        assert response.status_code in (200, 400), response.content
        if response.status_code == 200:
            assert len(response.json()["data"]) == 1
    assert api_client.get("/v1/customers", {"created_at_gt": "2024-02-30T00:00:00Z"}).status_code == 400

