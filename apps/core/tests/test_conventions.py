"""The API conventions every resource inherits, exercised through HTTP on customers."""

import json

import pytest

from apps.accounts.models import Organization
from apps.crm.models import Customer
from apps.events.models import Event


def make_customers(api_client, n, **extra):
    ids = []
    for i in range(n):
        response = api_client.post(
            "/v1/customers",
            {"email": f"c{i:03d}@x.com", "first_name": f"F{i:03d}", "last_name": f"L{n - i:03d}", **extra},
        )
        assert response.status_code == 201, response.content
        ids.append(response.json()["id"])
    return ids


def assert_error(response, status, code):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code
    assert body["error"]["code"] == code and body["error"]["type"] == body["type"]
    assert body["request_id"] == response["X-Request-ID"]
    return body


# Routing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/v1/customers", "/v1/customers/", "/api/v1/customers", "/v1/customer", "/v1/customer/", "/api/v1/customer/"],
)
def test_every_spelling_lists_without_redirect(api_client, path):
    response = api_client.get(path)
    assert response.status_code == 200
    assert response.json()["object"] == "list"


def test_seed_list_form_with_json_body_get(api_client, client, secret_key):
    make_customers(api_client, 2)
    Customer.objects.filter(email="c000@x.com").update(sso_id="1234-5678-9012-3456")
    for path in ("/v1/customers/list", "/v1/customer/list", "/api/v1/customers/list/"):
        response = client.generic(
            "GET",
            path,
            json.dumps({"sso_id": "1234-5678-9012-3456"}),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Token {secret_key}",
        )
        assert response.status_code == 200, response.content
        body = response.json()
        assert [c["email"] for c in body["data"]] == ["c000@x.com"]
        assert body["customers"] == body["data"]


def test_seed_create_form_with_camel_case(client, secret_key):
    response = client.post(
        "/v1/customer",
        {
            "email": "customer@customer.com",
            "firstName": "Customer",
            "lastName": "Customer",
            "phone": "123-456-7890",
            "stripe_customer_id": "cus_1234567890",
            "timestamp": "2020-01-01T00:00:00.000Z",
            "activationDate": "2020-01-01T00:00:00.000Z",
            "sso_id": "1234",
        },
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {secret_key}",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["first_name"] == "Customer" and body["activation_date"] == "2020-01-01T00:00:00Z"
    assert body["object"] == "customer" and body["id"].startswith("cus_")
    response = client.post(
        "/v1/customers/create",
        {"email": "two@x.com"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {secret_key}",
    )
    assert response.status_code == 201


def test_unknown_route_and_method_are_json(api_client):
    assert_error(api_client.get("/v1/no_such_collection"), 404, "RESOURCE_NOT_FOUND")
    assert_error(api_client.post("/api/v1/no/such/thing"), 404, "RESOURCE_NOT_FOUND")
    body = assert_error(api_client.put("/v1/customers"), 405, "METHOD_NOT_ALLOWED")
    assert body["type"] == "invalid_request_error"


# Errors --------------------------------------------------------------------------------------


def test_validation_errors_name_the_field(api_client):
    body = assert_error(api_client.post("/v1/customers", {"email": "not-an-email"}), 422, "VALIDATION_ERROR")
    assert body["param"] == "email" and "email" in body["detail"]
    body = assert_error(api_client.post("/v1/customers", {"first_name": "x"}), 422, "MISSING_REQUIRED_FIELD")
    assert body["param"] == "email"
    assert Customer.objects.count() == 0


def test_unknown_and_server_owned_input_fields_are_rejected(api_client):
    body = assert_error(
        api_client.post("/v1/customers", {"email": "a@x.com", "colour": "red"}), 400, "parameter_unknown"
    )
    assert body["param"] == "colour"
    for field in ("id", "created_at", "livemode", "organization"):
        response = api_client.post("/v1/customers", {"email": "a@x.com", field: "x"})
        assert_error(response, 400, "parameter_unknown")
    assert Customer.objects.count() == 0


def test_malformed_json_is_400(client, secret_key):
    response = client.post(
        "/v1/customers", "{nope", content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {secret_key}"
    )
    assert_error(response, 400, "BAD_REQUEST")


def test_body_over_10_mb_is_413(client, secret_key):
    body = json.dumps({"email": "a@x.com", "metadata": {"blob": "x" * (10 * 1024 * 1024)}})
    response = client.post(
        "/v1/customers", body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {secret_key}"
    )
    assert_error(response, 413, "REQUEST_TOO_LARGE")
    assert Customer.objects.count() == 0


def test_internal_errors_are_json_without_stack_trace(api_client, monkeypatch):
    from apps.crm import services

    def explode(**kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr("apps.crm.api.views.CustomerViewSet.create_service", staticmethod(explode))
    response = api_client.post("/v1/customers", {"email": "a@x.com"})
    body = assert_error(response, 500, "INTERNAL_ERROR")
    assert body["type"] == "api_error" and "secret internals" not in response.content.decode()
    assert services  # the real service is untouched


def test_request_id_is_echoed_or_generated(api_client):
    response = api_client.get("/v1/customers", headers={"X-Request-ID": "client-abc-123"})
    assert response["X-Request-ID"] == "client-abc-123"
    generated = api_client.get("/v1/customers")["X-Request-ID"]
    assert generated.startswith("req_")
    assert api_client.get("/v1/customers", headers={"X-Request-ID": "bad id\n"})["X-Request-ID"].startswith("req_")


# Lists -----------------------------------------------------------------------------------------


def test_limit_bounds_and_envelope(api_client):
    make_customers(api_client, 3)
    body = api_client.get("/v1/customers", {"limit": 2}).json()
    assert set(body) == {"object", "url", "data", "has_more", "next_cursor"}
    assert body["url"] == "/v1/customers" and body["has_more"] is True and len(body["data"]) == 2
    for bad in ("0", "101", "abc", "-1"):
        assert_error(api_client.get("/v1/customers", {"limit": bad}), 400, "INVALID_FIELD_FORMAT")
    assert len(api_client.get("/v1/customers").json()["data"]) == 3  # default limit 10


def test_cursor_pages_walk_everything_once(api_client):
    ids = make_customers(api_client, 7)
    seen, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        body = api_client.get("/v1/customers", params).json()
        seen.extend(c["id"] for c in body["data"])
        cursor = body["next_cursor"]
        if not body["has_more"]:
            assert cursor is None
            break
    assert seen == list(reversed(ids))  # default order: newest first


def test_cursor_survives_inserts_between_pages(api_client):
    make_customers(api_client, 4)
    first = api_client.get("/v1/customers", {"limit": 2, "sort": "created_at"}).json()
    api_client.post("/v1/customers", {"email": "late@x.com"})
    second = api_client.get("/v1/customers", {"limit": 2, "sort": "created_at", "cursor": first["next_cursor"]}).json()
    assert [c["email"] for c in second["data"]] == ["c002@x.com", "c003@x.com"]
    assert_error(api_client.get("/v1/customers", {"cursor": first["next_cursor"]}), 400, "INVALID_FIELD_FORMAT")
    assert_error(api_client.get("/v1/customers", {"cursor": "garbage!!"}), 400, "INVALID_FIELD_FORMAT")


def test_stripe_starting_after_and_ending_before(api_client, other_client):
    ids = make_customers(api_client, 5)  # newest first: ids[4], ids[3], ...
    after = api_client.get("/v1/customers", {"limit": 2, "starting_after": ids[4]}).json()
    assert [c["id"] for c in after["data"]] == [ids[3], ids[2]] and after["has_more"] is True
    before = api_client.get("/v1/customers", {"limit": 2, "ending_before": ids[1]}).json()
    assert [c["id"] for c in before["data"]] == [ids[3], ids[2]] and before["has_more"] is True
    assert_error(api_client.get("/v1/customers", {"starting_after": "cus_nope"}), 404, "RESOURCE_NOT_FOUND")
    # Another organization's id is no anchor for us.
    other_id = other_client.post("/v1/customers", {"email": "o@x.com"}).json()["id"]
    assert_error(api_client.get("/v1/customers", {"starting_after": other_id}), 404, "RESOURCE_NOT_FOUND")


def test_offset_and_page(api_client):
    ids = list(reversed(make_customers(api_client, 5)))
    body = api_client.get("/v1/customers", {"limit": 2, "offset": 2}).json()
    assert [c["id"] for c in body["data"]] == ids[2:4] and body["has_more"] is True
    body = api_client.get("/v1/customers", {"limit": 2, "page": 3}).json()
    assert [c["id"] for c in body["data"]] == ids[4:] and body["has_more"] is False
    assert_error(api_client.get("/v1/customers", {"offset": 10001}), 400, "INVALID_FIELD_FORMAT")


def test_total_count_only_on_request(api_client):
    make_customers(api_client, 3)
    assert "total_count" not in api_client.get("/v1/customers", {"limit": 1}).json()
    assert api_client.get("/v1/customers", {"limit": 1, "include_total": "true"}).json()["total_count"] == 3


def test_filters_in_all_three_spellings(api_client):
    make_customers(api_client, 5)
    Customer.objects.filter(email__in=["c001@x.com", "c002@x.com"]).update(status="inactive")

    def emails(params):
        response = api_client.get("/v1/customers", {**params, "sort": "email"})
        assert response.status_code == 200, response.content
        return [c["email"] for c in response.json()["data"]]

    assert emails({"status": "inactive"}) == ["c001@x.com", "c002@x.com"]
    assert emails({"status_eq": "inactive"}) == ["c001@x.com", "c002@x.com"]
    assert emails({"status[eq]": "inactive"}) == ["c001@x.com", "c002@x.com"]
    assert emails({"status_ne": "inactive"}) == ["c000@x.com", "c003@x.com", "c004@x.com"]
    assert emails({"status[neq]": "inactive"}) == ["c000@x.com", "c003@x.com", "c004@x.com"]
    assert emails({"email_in": "c000@x.com,c004@x.com"}) == ["c000@x.com", "c004@x.com"]
    assert emails({"email[nin]": "c000@x.com,c004@x.com"}) == ["c001@x.com", "c002@x.com", "c003@x.com"]
    assert emails({"email_like": "c00%"}) == ["c000@x.com", "c001@x.com", "c002@x.com", "c003@x.com", "c004@x.com"]
    assert emails({"first_name_like": "F00_"}) == emails({})
    assert emails({"first_name_ilike": "f003"}) == ["c003@x.com"]
    assert emails({"activation_date_is_null": "true"})[:1] == ["c000@x.com"]
    assert emails({"activation_date[is_null]": "false"}) == []


def test_date_range_filters(api_client):
    make_customers(api_client, 3)
    Customer.objects.filter(email="c000@x.com").update(activation_date="2024-01-05T00:00:00Z")
    Customer.objects.filter(email="c001@x.com").update(activation_date="2024-02-05T00:00:00Z")
    body = api_client.get("/v1/customers", {"activation_date_between": "2024-01-01,2024-01-31"}).json()
    assert [c["email"] for c in body["data"]] == ["c000@x.com"]
    body = api_client.get("/v1/customers", {"activation_date[gte]": "2024-02-01"}).json()
    assert [c["email"] for c in body["data"]] == ["c001@x.com"]
    created = api_client.get("/v1/customers", {"created[gte]": "2000-01-01"}).json()
    assert len(created["data"]) == 3
    assert_error(api_client.get("/v1/customers", {"activation_date_gte": "not-a-date"}), 400, "INVALID_FIELD_FORMAT")


def test_only_declared_filters(api_client):
    body = assert_error(api_client.get("/v1/customers", {"metadata": "x"}), 400, "parameter_unknown")
    assert body["param"] == "metadata"
    assert_error(api_client.get("/v1/customers", {"email_gt": "a"}), 400, "parameter_unknown")
    assert_error(api_client.get("/v1/customers", {"status[bogus]": "a"}), 400, "parameter_unknown")


def test_sorting_spellings(api_client):
    make_customers(api_client, 3)  # last names L003, L002, L001

    def emails(params):
        response = api_client.get("/v1/customers", params)
        assert response.status_code == 200, response.content
        return [c["email"] for c in response.json()["data"]]

    assert emails({"sort": "last_name"}) == ["c002@x.com", "c001@x.com", "c000@x.com"]
    assert emails({"sort": "-email"}) == ["c002@x.com", "c001@x.com", "c000@x.com"]
    assert emails({"order_by": "email"}) == ["c000@x.com", "c001@x.com", "c002@x.com"]
    assert emails({"sort_by": "email", "sort_order": "desc"}) == ["c002@x.com", "c001@x.com", "c000@x.com"]
    assert emails({"order_direction": "asc"}) == ["c000@x.com", "c001@x.com", "c002@x.com"]
    assert emails({"sort": "last_name,-email"}) == ["c002@x.com", "c001@x.com", "c000@x.com"]
    assert_error(api_client.get("/v1/customers", {"sort": "metadata"}), 400, "INVALID_FIELD_FORMAT")


def test_expand(api_client):
    created = api_client.post(
        "/v1/customers",
        {
            "email": "a@x.com",
            "addresses": [
                {
                    "address_line_1": "1 Main St",
                    "city": "Springfield",
                    "country_code": "us",
                    "is_default_shipping": True,
                },
            ],
        },
    ).json()
    address_id = created["addresses"][0]["id"]
    assert created["default_shipping_address"] == address_id and created["addresses"][0]["country_code"] == "US"
    for params in ({"expand": "default_shipping_address"}, {"expand[]": "default_shipping_address"}):
        one = api_client.get(f"/v1/customers/{created['id']}", params).json()
        assert one["default_shipping_address"]["id"] == address_id
        assert one["default_shipping_address"]["city"] == "Springfield"
        listed = api_client.get("/v1/customers", params).json()["data"][0]
        assert listed["default_shipping_address"]["object"] == "address"
    assert_error(api_client.get("/v1/customers", {"expand": "secrets"}), 400, "INVALID_FIELD_FORMAT")
    assert_error(api_client.get("/v1/customers", {"expand": "a.b.c.d.e"}), 400, "INVALID_FIELD_FORMAT")


def test_search(api_client, other_client):
    make_customers(api_client, 3)
    other_client.post("/v1/customers", {"email": "c001@x.com.other"})
    body = api_client.get("/v1/customers/search", {"query": "c001"}).json()
    assert [c["email"] for c in body["data"]] == ["c001@x.com"]
    body = api_client.get("/v1/customers/search", {"query": "F00", "limit": 2}).json()
    assert len(body["data"]) == 2 and body["has_more"] is True


# Idempotency -----------------------------------------------------------------------------------


def test_idempotent_replay_mismatch_and_scope(api_client, other_client):
    headers = {"Idempotency-Key": "customer-550e8400"}
    first = api_client.post("/v1/customers", {"email": "a@x.com"}, headers=headers)
    second = api_client.post("/v1/customers", {"email": "a@x.com"}, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first
    assert second.json() == first.json()
    assert Customer.objects.count() == 1
    assert Event.objects.filter(type="customer.created").count() == 1
    body = assert_error(
        api_client.post("/v1/customers", {"email": "b@x.com"}, headers=headers), 400, "idempotency_error"
    )
    assert body["type"] == "invalid_request_error"
    # Another organization's key space is separate.
    other = other_client.post("/v1/customers", {"email": "a@x.com"}, headers=headers)
    assert other.status_code == 201 and "Idempotent-Replayed" not in other
    # Errors are replayed too (the first response, whatever it was).
    bad = api_client.post("/v1/customers", {"email": "bad"}, headers={"Idempotency-Key": "k2"})
    again = api_client.post("/v1/customers", {"email": "bad"}, headers={"Idempotency-Key": "k2"})
    assert bad.status_code == again.status_code == 422 and again["Idempotent-Replayed"] == "true"


def test_idempotency_key_in_flight_is_409(api_client, organization):
    from datetime import timedelta

    from django.utils import timezone

    from apps.accounts.models import APIKey
    from apps.core.idempotency import request_fingerprint
    from apps.core.models import IdempotencyRecord

    key = APIKey.objects.get(organization=organization)

    class FakeRequest:
        method = "POST"
        META = {"QUERY_STRING": ""}
        body = b'{"email": "a@x.com"}'

    IdempotencyRecord.objects.create(
        organization=organization,
        credential=key.pk,
        key="busy",
        method="POST",
        path="/v1/customers",
        request_hash=request_fingerprint(FakeRequest),
        expires_at=timezone.now() + timedelta(hours=1),
    )
    response = api_client.client.post(
        "/v1/customers",
        b'{"email": "a@x.com"}',
        content_type="application/json",
        HTTP_AUTHORIZATION=api_client._headers({})["HTTP_AUTHORIZATION"],
        HTTP_IDEMPOTENCY_KEY="busy",
    )
    assert_error(response, 409, "idempotency_key_in_use")
    assert Customer.objects.count() == 0


def test_idempotency_key_too_long(api_client):
    response = api_client.post("/v1/customers", {"email": "a@x.com"}, headers={"Idempotency-Key": "k" * 256})
    assert_error(response, 400, "idempotency_error")


# Rate limits -----------------------------------------------------------------------------------


def test_rate_limit_headers_and_429(api_client, organization, frozen_rate_clock):
    Organization.objects.filter(pk=organization.pk).update(plan="free")
    response = api_client.get("/v1/customers")
    assert response["X-RateLimit-Limit"] == "60"
    assert response["X-RateLimit-Remaining"] == "59"
    assert int(response["X-RateLimit-Reset"]) > 1_700_000_000
    for _ in range(59):
        assert api_client.get("/v1/customers").status_code == 200
    limited = api_client.get("/v1/customers")
    assert_error(limited, 429, "RATE_LIMIT_EXCEEDED")
    assert limited.json()["type"] == "rate_limit_error"
    assert int(limited["Retry-After"]) >= 1 and limited["X-RateLimit-Retry-After"] == limited["Retry-After"]
    assert limited["X-RateLimit-Remaining"] == "0"


def test_rate_limits_are_per_credential_and_plan(api_client, client, organization, test_secret_key):
    Organization.objects.filter(pk__in=[organization.pk, organization.sandbox.pk]).update(rate_limit_per_minute=3)
    for _ in range(3):
        assert api_client.get("/v1/customers").status_code == 200
    assert api_client.get("/v1/customers").status_code == 429
    # Another credential has its own counter.
    assert client.get("/v1/customers", HTTP_AUTHORIZATION=f"Bearer {test_secret_key}").status_code == 200


def test_anonymous_requests_are_limited_per_ip(anonymous_client, settings, frozen_rate_clock):
    for _ in range(60):
        assert anonymous_client.get("/v1/customers").status_code == 401
    assert anonymous_client.get("/v1/customers").status_code == 429


# Batch -------------------------------------------------------------------------------------------


def test_batch_is_all_or_nothing(api_client):
    response = api_client.post("/v1/customers/batch", {"items": [{"email": "a@x.com"}, {"email": "b@x.com"}]})
    assert response.status_code == 201, response.content
    assert [c["email"] for c in response.json()["data"]] == ["a@x.com", "b@x.com"]
    response = api_client.post("/v1/customers/batch", {"items": [{"email": "c@x.com"}, {"email": "nope"}]})
    body = assert_error(response, 422, "VALIDATION_ERROR")
    assert body["param"] == "items[1]" and "1" in body["detail"]
    response = api_client.post("/v1/customers/batch", {"items": [{"email": "d@x.com"}, {"email": "a@x.com"}]})
    assert_error(response, 409, "RESOURCE_ALREADY_EXISTS")
    assert sorted(Customer.objects.values_list("email", flat=True)) == ["a@x.com", "b@x.com"]
    assert_error(api_client.post("/v1/customers/batch", {"items": []}), 400, "BAD_REQUEST")


def test_large_batch_becomes_a_job(api_client, settings, django_capture_on_commit_callbacks):
    settings.BATCH_SYNC_LIMIT = 3
    items = [{"email": f"b{i}@x.com"} for i in range(5)]
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post("/v1/customers/batch", {"items": items})
    assert response.status_code == 202, response.content
    job = response.json()
    assert job["object"] == "job"
    body = api_client.get(f"/v1/jobs/{job['id']}").json()
    assert body["status"] == "succeeded" and body["result"]["created"] == 5
    assert Customer.objects.count() == 5


# Docs, health, browsable API ----------------------------------------------------------------------


def test_openapi_schema_lists_canonical_paths(client):
    response = client.get("/v1/openapi.json")
    assert response.status_code == 200
    schema = json.loads(response.content)
    assert "/v1/customers" in schema["paths"] and "/v1/customers/{id}" in schema["paths"]
    assert not any("(" in path or path.endswith("/") for path in schema["paths"])
    assert client.get("/v1/docs").status_code == 200


def test_health(client, db):
    body = client.get("/health").json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "cache", "broker"}


def test_browsable_api_for_logged_in_staff(client, organization):
    from apps.accounts.services import staff_user_create

    user = staff_user_create(email="ops@acme.test", password="correct horse 1", organization=organization)
    client.force_login(user)
    response = client.get("/v1/customers", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert b"<html" in response.content.lower() and b"Customer" in response.content


def test_sandbox_keys_share_the_live_organizations_limits(client, organization, test_secret_key):
    Organization.objects.filter(pk=organization.pk).update(rate_limit_per_minute=2)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {test_secret_key}"}
    assert client.get("/v1/customers", **auth)["X-RateLimit-Limit"] == "2"
    assert client.get("/v1/customers", **auth).status_code == 200
    assert client.get("/v1/customers", **auth).status_code == 429


def test_expired_idempotency_records_are_purged_and_the_key_is_free_again(api_client):
    from datetime import timedelta

    from django.utils import timezone

    from apps.core.models import IdempotencyRecord
    from apps.core.tasks import purge_idempotency_records_task

    api_client.post("/v1/customers", {"email": "a@x.com"}, headers={"Idempotency-Key": "old"})
    assert purge_idempotency_records_task() == 0
    IdempotencyRecord.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert purge_idempotency_records_task() == 1
    again = api_client.post("/v1/customers", {"email": "b@x.com"}, headers={"Idempotency-Key": "old"})
    assert again.status_code == 201 and "Idempotent-Replayed" not in again
