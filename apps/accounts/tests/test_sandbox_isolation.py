"""A test-mode credential sees nothing of live mode and changes nothing of it, whatever the
credential (API key, admin secret, JWT, staff token, staff session), on every admin surface:
API keys, audit logs, events, webhooks and their deliveries, jobs. And the other way round."""

import time

import jwt
import pytest

from apps.accounts.models import APIKey, AuditLog, Role
from apps.accounts.services import api_key_create, staff_user_create
from apps.core.models import Job
from apps.events.models import Event, WebhookDelivery, WebhookEndpoint

JWT_SECRET = "sandbox-isolation-jwt-secret-0123456789abcdef"
ADMIN_SECRET = "sandbox-isolation-admin-secret"
NAMESPACE = "https://hasura.io/jwt/claims"
HOOK = "https://hooks.example.com/stateset"


@pytest.fixture(autouse=True)
def _auth_settings(settings):
    settings.STATESET_JWT_SECRET = JWT_SECRET
    settings.STATESET_ADMIN_SECRET = ADMIN_SECRET
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False


@pytest.fixture
def sandbox_client(api_client, test_secret_key):
    return api_client.as_key(test_secret_key)


@pytest.fixture
def live_objects(api_client, organization):
    """One live object of every admin surface, made through the API with the live key."""
    customer = api_client.post("/v1/customers", {"email": "live@example.com"}).json()
    endpoint = api_client.post("/v1/webhooks", {"url": HOOK, "events": ["*"]}).json()
    api_client.patch(f"/v1/customers/{customer['id']}", {"first_name": "Live"})
    key = api_client.post("/v1/api_keys", {"kind": "restricted", "scopes": ["customers:read"]}).json()
    delivery = WebhookDelivery.objects.filter(endpoint_id=endpoint["id"]).first()
    job = Job.objects.create(organization=organization, kind="batch_create")
    return {
        "customer": customer["id"],
        "endpoint": endpoint["id"],
        "delivery": delivery.pk,
        "event": Event.objects.filter(organization=organization).first().pk,
        "key": key["id"],
        "job": job.pk,
    }


def live_key_ids(organization):
    return set(APIKey.objects.filter(organization=organization, mode="live").values_list("pk", flat=True))


def assert_sees_nothing_of_live(client, live_objects):
    """Every admin list is free of live rows and every live object is a 404."""
    for path in ("/v1/customers", "/v1/audit_logs", "/v1/events", "/v1/webhooks", "/v1/webhook_deliveries", "/v1/jobs"):
        response = client.get(path)
        assert response.status_code == 200, (path, response.content)
        assert response.json()["data"] == [], path
    listed = client.get("/v1/api_keys").json()["data"]
    assert listed and all(row["mode"] == "test" for row in listed)
    for path in (
        f"/v1/customers/{live_objects['customer']}",
        f"/v1/events/{live_objects['event']}",
        f"/v1/webhooks/{live_objects['endpoint']}",
        f"/v1/webhooks/{live_objects['endpoint']}/deliveries",
        f"/v1/webhook_deliveries/{live_objects['delivery']}",
        f"/v1/api_keys/{live_objects['key']}",
        f"/v1/jobs/{live_objects['job']}",
    ):
        assert client.get(path).status_code == 404, path


def assert_changes_nothing_of_live(client, organization, live_objects):
    endpoint = live_objects["endpoint"]
    before = WebhookEndpoint.objects.get(pk=endpoint)
    delivery_before = WebhookDelivery.objects.get(pk=live_objects["delivery"])
    audit_before = AuditLog.objects.filter(organization=organization).count()
    keys_before = live_key_ids(organization)
    for method, path in (
        ("post", f"/v1/api_keys/{live_objects['key']}/revoke"),
        ("delete", f"/v1/api_keys/{live_objects['key']}"),
        ("patch", f"/v1/webhooks/{endpoint}"),
        ("post", f"/v1/webhooks/{endpoint}/disable"),
        ("post", f"/v1/webhooks/{endpoint}/rotate_secret"),
        ("post", f"/v1/webhooks/{endpoint}/test"),
        ("delete", f"/v1/webhooks/{endpoint}"),
        ("post", f"/v1/webhook_deliveries/{live_objects['delivery']}/retry"),
    ):
        response = getattr(client, method)(path, **({"data": {"description": "x"}} if method == "patch" else {}))
        assert response.status_code == 404, (method, path, response.content)
    response = client.post("/v1/api_keys", {"kind": "secret", "mode": "live"})
    assert response.status_code == 422 and response.json()["param"] == "mode", response.content
    assert APIKey.objects.get(pk=live_objects["key"]).revoked_at is None
    after = WebhookEndpoint.objects.get(pk=endpoint)
    assert (after.status, after.secret, after.description) == (before.status, before.secret, before.description)
    delivery_after = WebhookDelivery.objects.get(pk=live_objects["delivery"])
    assert delivery_after.attempt_count == delivery_before.attempt_count
    assert AuditLog.objects.filter(organization=organization).count() == audit_before
    assert live_key_ids(organization) == keys_before


# API keys ----------------------------------------------------------------------------------


def test_test_key_cannot_create_a_live_key(sandbox_client, organization):
    live_before = live_key_ids(organization)
    response = sandbox_client.post("/v1/api_keys", {"kind": "secret", "mode": "live"})
    assert response.status_code == 422, response.content
    assert response.json()["code"] == "VALIDATION_ERROR" and response.json()["param"] == "mode"
    assert live_key_ids(organization) == live_before


def test_a_key_made_without_mode_is_of_the_credentials_mode(api_client, sandbox_client):
    made_in_test = sandbox_client.post("/v1/api_keys", {"kind": "secret"})
    assert made_in_test.status_code == 201, made_in_test.content
    body = made_in_test.json()
    assert body["secret"].startswith("sk_test_") and body["mode"] == "test" and body["livemode"] is False
    assert body["id"].startswith("key_test_")
    made_in_live = api_client.post("/v1/api_keys", {"kind": "secret"}).json()
    assert made_in_live["secret"].startswith("sk_live_") and not made_in_live["id"].startswith("key_test_")
    # The new test key reaches the sandbox only.
    assert sandbox_client.as_key(body["secret"]).get("/v1/customers").status_code == 200
    audit = AuditLog.objects.get(object_id=body["id"])
    assert audit.action == "api_key.created" and audit.organization.livemode is False


def test_live_key_administers_test_keys_too(api_client, sandbox_client, organization):
    response = api_client.post("/v1/api_keys", {"kind": "secret", "mode": "test"})
    assert response.status_code == 201, response.content
    made = response.json()
    assert made["secret"].startswith("sk_test_") and made["id"].startswith("key_test_")
    assert api_client.as_key(made["secret"]).get("/v1/customers").json()["data"] == []
    assert {row["mode"] for row in api_client.get("/v1/api_keys").json()["data"]} == {"live", "test"}
    assert [row["mode"] for row in api_client.get("/v1/api_keys", {"mode": "test"}).json()["data"]] == ["test"] * 2
    assert api_client.post(f"/v1/api_keys/{made['id']}/revoke").json()["revoked_at"] is not None
    assert api_client.as_key(made["secret"]).get("/v1/customers").status_code == 401


def test_key_lists_of_a_test_credential_show_test_keys_only(api_client, sandbox_client, organization):
    live_ids = {row["id"] for row in api_client.get("/v1/api_keys").json()["data"]}
    test_ids = {row["id"] for row in sandbox_client.get("/v1/api_keys").json()["data"]}
    assert live_ids == set(APIKey.objects.filter(organization=organization).values_list("pk", flat=True))
    assert test_ids == set(APIKey.objects.filter(mode="test").values_list("pk", flat=True))
    assert test_ids and live_ids - test_ids == live_key_ids(organization)
    assert sandbox_client.get("/v1/api_keys", {"mode": "live"}).json()["data"] == []


def test_test_key_cannot_revoke_or_delete_a_live_key(sandbox_client, api_client, organization, secret_key):
    live_key = APIKey.objects.get(organization=organization, mode="live")
    assert sandbox_client.get(f"/v1/api_keys/{live_key.pk}").status_code == 404
    assert sandbox_client.post(f"/v1/api_keys/{live_key.pk}/revoke").status_code == 404
    assert sandbox_client.delete(f"/v1/api_keys/{live_key.pk}").status_code == 404
    live_key.refresh_from_db()
    assert live_key.revoked_at is None
    assert api_client.get("/v1/customers").status_code == 200


def test_test_key_manages_test_keys(sandbox_client):
    made = sandbox_client.post("/v1/api_keys", {"kind": "restricted", "mode": "test", "scopes": ["*"]}).json()
    assert sandbox_client.post(f"/v1/api_keys/{made['id']}/revoke").json()["revoked_at"] is not None
    other = sandbox_client.post("/v1/api_keys", {"kind": "secret"}).json()
    assert sandbox_client.delete(f"/v1/api_keys/{other['id']}").status_code == 204
    assert sandbox_client.as_key(other["secret"]).get("/v1/customers").status_code == 401


def test_service_refuses_a_key_of_the_other_mode(organization):
    from apps.accounts.services import api_key_revoke
    from apps.core.context import Actor
    from apps.core.errors import NotFound, ValidationFailed

    sandbox_actor = Actor.system(organization.sandbox)
    with pytest.raises(ValidationFailed):
        api_key_create(organization=organization.sandbox, kind="secret", mode="live", actor=sandbox_actor)
    live_key, _ = api_key_create(organization=organization, kind="secret", mode="live")
    with pytest.raises(NotFound):
        api_key_revoke(key=live_key, actor=sandbox_actor)
    live_key.refresh_from_db()
    assert live_key.revoked_at is None


# Every other admin surface, per credential -----------------------------------------------


def test_test_key_sees_and_changes_nothing_of_live(sandbox_client, organization, live_objects):
    assert_sees_nothing_of_live(sandbox_client, live_objects)
    assert_changes_nothing_of_live(sandbox_client, organization, live_objects)


def test_live_key_sees_nothing_of_test_mode(api_client, sandbox_client, organization):
    customer = sandbox_client.post("/v1/customers", {"email": "sandbox@example.com"}).json()
    endpoint = sandbox_client.post("/v1/webhooks", {"url": HOOK, "events": ["*"]}).json()
    sandbox_client.patch(f"/v1/customers/{customer['id']}", {"first_name": "Test"})
    delivery = WebhookDelivery.objects.get(endpoint_id=endpoint["id"])
    event = Event.objects.filter(organization=organization.sandbox).first()
    for path in ("/v1/customers", "/v1/audit_logs", "/v1/events", "/v1/webhooks", "/v1/webhook_deliveries"):
        assert api_client.get(path).json()["data"] == [], path
    assert all(row["mode"] == "live" for row in api_client.get("/v1/api_keys", {"mode": "live"}).json()["data"])
    for path in (f"/v1/events/{event.pk}", f"/v1/webhooks/{endpoint['id']}", f"/v1/webhook_deliveries/{delivery.pk}"):
        assert api_client.get(path).status_code == 404, path
    assert api_client.post(f"/v1/webhook_deliveries/{delivery.pk}/retry").status_code == 404
    assert api_client.delete(f"/v1/webhooks/{endpoint['id']}").status_code == 404
    assert WebhookEndpoint.objects.filter(pk=endpoint["id"]).exists()


def test_admin_secret_on_the_sandbox_sees_and_changes_nothing_of_live(anonymous_client, organization, live_objects):
    sandbox = anonymous_client
    sandbox.headers = {"HTTP_X_STATESET_ADMIN_SECRET": ADMIN_SECRET, "HTTP_X_ACCOUNT_ID": organization.sandbox.slug}
    api_key_create(organization=organization, kind="secret", mode="test")
    assert_sees_nothing_of_live(sandbox, live_objects)
    assert_changes_nothing_of_live(sandbox, organization, live_objects)
    made = sandbox.post("/v1/api_keys", {"kind": "secret"}).json()
    assert made["mode"] == "test" and made["id"].startswith("key_test_")
    # The same secret naming the live organization is live mode (and sees the live key).
    sandbox.headers["HTTP_X_ACCOUNT_ID"] = organization.id
    assert live_objects["key"] in {row["id"] for row in sandbox.get("/v1/api_keys").json()["data"]}


def make_jwt(organization_reference, role="admin"):
    claims = {
        "exp": int(time.time()) + 300,
        NAMESPACE: {
            "x-hasura-user-id": "u-1",
            "x-hasura-org-id": organization_reference,
            "x-hasura-default-role": role,
            "x-hasura-allowed-roles": [role],
        },
    }
    return jwt.encode(claims, JWT_SECRET, algorithm="HS256")


def test_jwt_naming_the_sandbox_sees_and_changes_nothing_of_live(api_client, organization, live_objects):
    api_key_create(organization=organization, kind="secret", mode="test")
    for reference in (organization.sandbox.id, organization.sandbox.slug):
        sandbox = api_client.as_key(make_jwt(reference))
        assert_sees_nothing_of_live(sandbox, live_objects)
        assert_changes_nothing_of_live(sandbox, organization, live_objects)
    live = api_client.as_key(make_jwt(organization.id))
    assert live.get(f"/v1/api_keys/{live_objects['key']}").status_code == 200
    assert {row["mode"] for row in live.get("/v1/api_keys").json()["data"]} == {"live", "test"}


def test_staff_token_for_the_sandbox_never_reaches_live(client, api_client, organization, live_objects):
    staff_user_create(email="admin@acme.test", password="correct horse 1", organization=organization, role=Role.ADMIN)
    api_key_create(organization=organization, kind="secret", mode="test")
    response = client.post(
        "/v1/auth/token",
        {"email": "admin@acme.test", "password": "correct horse 1", "organization": organization.sandbox.slug},
        content_type="application/json",
    )
    if response.status_code == 201:
        body = response.json()
        assert body["organization"] == organization.sandbox.id
        sandbox = api_client.as_key(body["token"])
        assert_sees_nothing_of_live(sandbox, live_objects)
        assert_changes_nothing_of_live(sandbox, organization, live_objects)
    else:
        # No sandbox token at all is as safe: nothing is issued that could reach live.
        assert response.status_code == 401, response.content


def test_session_on_the_sandbox_sees_and_changes_nothing_of_live(client, anonymous_client, organization, live_objects):
    user = staff_user_create(
        email="admin@acme.test", password="correct horse 1", organization=organization, role=Role.ADMIN
    )
    api_key_create(organization=organization, kind="secret", mode="test")
    client.force_login(user)
    session = anonymous_client
    session.headers = {"HTTP_X_ACCOUNT_ID": organization.sandbox.slug}
    assert_sees_nothing_of_live(session, live_objects)
    assert_changes_nothing_of_live(session, organization, live_objects)
    made = session.post("/v1/api_keys", {"kind": "secret"}).json()
    assert made["mode"] == "test" and made["id"].startswith("key_test_")
    # Without the header (or naming the live organization) the session is live mode.
    session.headers = {}
    assert live_objects["key"] in {row["id"] for row in session.get("/v1/api_keys").json()["data"]}
