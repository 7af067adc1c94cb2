"""The `api_key` query parameter: the last credential form (runserver and gunicorn drop the
`api_key` header). It authenticates lists and retrieves, loses to any header, and is never
stored anywhere."""

import pytest

from apps.accounts.models import AuditLog
from apps.core.models import IdempotencyRecord
from apps.events.models import Event


@pytest.fixture(autouse=True)
def _admin_secret(settings):
    settings.STATESET_ADMIN_SECRET = "query-credential-admin-secret"


def test_list_and_retrieve_with_the_query_parameter(client, api_client, secret_key):
    created = api_client.post("/v1/customers", {"email": "q@example.com"}).json()
    response = client.get("/v1/customers", {"api_key": secret_key})
    assert response.status_code == 200, response.content
    assert [c["id"] for c in response.json()["data"]] == [created["id"]]
    response = client.get(f"/v1/customers/{created['id']}", {"api_key": secret_key})
    assert response.status_code == 200, response.content
    assert response.json()["email"] == "q@example.com"
    # Beside filters, paging and expansion, and on the seeds' `/list` form and search.
    response = client.get("/v1/customers", {"api_key": secret_key, "email": "q@example.com", "limit": 5})
    assert [c["id"] for c in response.json()["data"]] == [created["id"]]
    response = client.get(
        f"/v1/customers/{created['id']}", {"api_key": secret_key, "expand": "default_billing_address"}
    )
    assert response.status_code == 200, response.content
    assert client.get("/v1/customers/list", {"api_key": secret_key}).status_code == 200
    assert client.get("/v1/customers/search", {"api_key": secret_key, "query": "q@"}).status_code == 200


def test_a_bad_query_key_is_401(client, organization):
    response = client.get("/v1/customers", {"api_key": "sk_live_doesnotexist"})
    assert response.status_code == 401 and response.json()["code"] == "INVALID_API_KEY"
    response = client.get("/v1/customers/cus_nope", {"api_key": "garbage"})
    assert response.status_code == 401 and response.json()["code"] == "INVALID_API_KEY"
    response = client.get("/v1/customers", {"api_key": ""})
    assert response.status_code == 401 and response.json()["code"] == "MISSING_API_KEY"


def test_a_header_credential_wins_over_the_query_parameter(client, api_client, secret_key, test_secret_key):
    api_client.post("/v1/customers", {"email": "live@example.com"})
    api_client.as_key(test_secret_key).post("/v1/customers", {"email": "test@example.com"})
    response = client.get("/v1/customers?api_key=" + test_secret_key, HTTP_AUTHORIZATION=f"Bearer {secret_key}")
    assert [c["email"] for c in response.json()["data"]] == ["live@example.com"]
    response = client.get("/v1/customers?api_key=sk_live_doesnotexist", HTTP_X_API_KEY=secret_key)
    assert response.status_code == 200
    response = client.get(
        "/v1/customers?api_key=" + test_secret_key,
        HTTP_X_STATESET_ADMIN_SECRET="query-credential-admin-secret",
        HTTP_X_ACCOUNT_ID="acme",
    )
    assert [c["email"] for c in response.json()["data"]] == ["live@example.com"]


def test_a_json_body_never_carries_the_credential(client, secret_key):
    """A GET's JSON body stands in for its query parameters (seed 003), but not for a credential."""
    response = client.generic("GET", "/v1/customers", f'{{"api_key": "{secret_key}"}}', content_type="application/json")
    assert response.status_code == 401 and response.json()["code"] == "MISSING_API_KEY"


def test_writes_with_the_query_parameter_store_no_secret(client, secret_key):
    path = f"/v1/customers?api_key={secret_key}"
    first = client.post(path, {"email": "w@example.com"}, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == 201, first.content
    record = IdempotencyRecord.objects.get(key="k-1")
    assert record.path == "/v1/customers"
    stored = [record.path, record.credential, record.key, record.request_hash, bytes(record.response_body).decode()]
    assert not any(secret_key in value for value in stored)
    # The credential form is not part of the request: a retry through the header replays.
    again = client.post(
        "/v1/customers",
        {"email": "w@example.com"},
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="k-1",
        HTTP_AUTHORIZATION=f"Bearer {secret_key}",
    )
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    for log in AuditLog.objects.all():
        assert secret_key not in str(log.__dict__)
    for event in Event.objects.all():
        assert secret_key not in str(event.__dict__)
