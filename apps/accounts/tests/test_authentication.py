"""Every credential form of the contract, key kinds and scopes, modes, JWT, tokens, admin secret."""

import time
from datetime import timedelta

import jwt
import pytest
from django.utils import timezone

from apps.accounts.models import APIKey, AuditLog, Membership, Role
from apps.accounts.services import api_key_create, api_key_revoke, staff_user_create
from apps.crm.models import Customer

JWT_SECRET = "test-jwt-secret-with-enough-length-0123456789"
NAMESPACE = "https://hasura.io/jwt/claims"


@pytest.fixture(autouse=True)
def _auth_settings(settings):
    settings.STATESET_JWT_SECRET = JWT_SECRET
    settings.STATESET_ADMIN_SECRET = "admin-secret-for-tests"


def make_jwt(
    organization, *, user_id="user-1", default_role="user", allowed=("user", "manager"), exp_in=300, key=JWT_SECRET
):
    claims = {
        "sub": user_id,
        "exp": int(time.time()) + exp_in,
        NAMESPACE: {
            "x-hasura-user-id": user_id,
            "x-hasura-org-id": organization.id,
            "x-hasura-default-role": default_role,
            "x-hasura-allowed-roles": list(allowed),
        },
    }
    return jwt.encode(claims, key, algorithm="HS256")


def error(response):
    body = response.json()
    return response.status_code, body["code"], body["type"]


@pytest.mark.parametrize(
    "header_name,template",
    [
        ("HTTP_AUTHORIZATION", "Bearer {key}"),
        ("HTTP_AUTHORIZATION", "Token {key}"),
        ("HTTP_AUTHORIZATION", "{key}"),
        ("HTTP_X_API_KEY", "{key}"),
        ("HTTP_API_KEY", "{key}"),
    ],
)
def test_every_header_form_authenticates(client, secret_key, header_name, template):
    response = client.get("/v1/customers", **{header_name: template.format(key=secret_key)})
    assert response.status_code == 200, response.content
    assert response.json()["object"] == "list"


def test_missing_credentials_is_401_missing_api_key(anonymous_client):
    response = anonymous_client.get("/v1/customers")
    assert error(response) == (401, "MISSING_API_KEY", "authentication_error")
    assert response.json()["request_id"] == response["X-Request-ID"]


def test_unknown_key_is_401_invalid_api_key(client, organization):
    response = client.get("/v1/customers", HTTP_AUTHORIZATION="Bearer sk_live_doesnotexist")
    assert error(response) == (401, "INVALID_API_KEY", "authentication_error")
    response = client.get("/v1/customers", HTTP_AUTHORIZATION="Bearer garbage")
    assert error(response) == (401, "INVALID_API_KEY", "authentication_error")


def test_key_is_stored_hashed_with_prefix_and_last_four(organization):
    key, secret = api_key_create(organization=organization, kind="secret", mode="live")
    assert secret.startswith("sk_live_")
    stored = APIKey.objects.get(pk=key.pk)
    assert secret not in (stored.secret_hash, stored.prefix, stored.last4)
    assert stored.redacted == f"sk_live_...{secret[-4:]}"


def test_revoked_key_is_rejected_at_once(api_client, organization):
    key = APIKey.objects.get(organization=organization)
    assert api_client.get("/v1/customers").status_code == 200
    api_key_revoke(key=key)
    assert error(api_client.get("/v1/customers"))[:2] == (401, "INVALID_API_KEY")


def test_expired_key_is_401_expired_api_key(client, organization):
    key, secret = api_key_create(organization=organization, kind="secret", mode="live", expires_in_days=1)
    APIKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = client.get("/v1/customers", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert error(response)[:2] == (401, "EXPIRED_API_KEY")


def test_last_used_at_is_recorded(api_client, organization):
    key = APIKey.objects.get(organization=organization)
    assert key.last_used_at is None
    api_client.get("/v1/customers")
    key.refresh_from_db()
    assert key.last_used_at is not None


def test_test_mode_data_is_invisible_to_live_keys_and_back(client, organization, secret_key, test_secret_key):
    live = client.post(
        "/v1/customers",
        {"email": "live@x.com"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {secret_key}",
    )
    test = client.post(
        "/v1/customers",
        {"email": "test@x.com"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {test_secret_key}",
    )
    assert live.json()["livemode"] is True
    assert test.json()["livemode"] is False
    live_list = client.get("/v1/customers", HTTP_AUTHORIZATION=f"Bearer {secret_key}").json()["data"]
    test_list = client.get("/v1/customers", HTTP_AUTHORIZATION=f"Bearer {test_secret_key}").json()["data"]
    assert [c["email"] for c in live_list] == ["live@x.com"]
    assert [c["email"] for c in test_list] == ["test@x.com"]
    response = client.get(f"/v1/customers/{live.json()['id']}", HTTP_AUTHORIZATION=f"Bearer {test_secret_key}")
    assert response.status_code == 404
    # The same email may exist once per mode.
    again = client.post(
        "/v1/customers",
        {"email": "live@x.com"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {test_secret_key}",
    )
    assert again.status_code == 201


def test_restricted_key_scopes(client, organization):
    _, read_only = api_key_create(organization=organization, kind="restricted", mode="live", scopes=["customers:read"])
    _, writer = api_key_create(organization=organization, kind="restricted", mode="live", scopes=["customers:write"])
    _, orders_only = api_key_create(organization=organization, kind="restricted", mode="live", scopes=["orders:*"])
    assert read_only.startswith("rk_live_")
    auth = lambda key: {"HTTP_AUTHORIZATION": f"Bearer {key}"}  # noqa: E731
    assert client.get("/v1/customers", **auth(read_only)).status_code == 200
    response = client.post("/v1/customers", {"email": "a@x.com"}, content_type="application/json", **auth(read_only))
    assert error(response) == (403, "INSUFFICIENT_PERMISSIONS", "permission_error")
    assert Customer.objects.count() == 0
    response = client.post("/v1/customers", {"email": "a@x.com"}, content_type="application/json", **auth(writer))
    assert response.status_code == 201
    assert client.get("/v1/customers", **auth(writer)).status_code == 200  # write implies read
    assert error(client.get("/v1/customers", **auth(orders_only)))[:2] == (403, "INSUFFICIENT_PERMISSIONS")


def test_restricted_key_needs_scopes(organization):
    from apps.core.errors import ValidationFailed

    with pytest.raises(ValidationFailed):
        api_key_create(organization=organization, kind="restricted", mode="live", scopes=[])
    with pytest.raises(ValidationFailed):
        api_key_create(organization=organization, kind="restricted", mode="live", scopes=["customers"])


def test_publishable_key_cannot_read_private_customers(client, organization):
    _, publishable = api_key_create(organization=organization, kind="publishable", mode="live")
    assert publishable.startswith("pk_live_")
    response = client.get("/v1/customers", HTTP_AUTHORIZATION=f"Bearer {publishable}")
    assert error(response)[:2] == (403, "INSUFFICIENT_PERMISSIONS")
    response = client.post(
        "/v1/customers",
        {"email": "p@x.com"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {publishable}",
    )
    assert response.status_code == 403
    assert Customer.objects.count() == 0


def test_anonymous_with_account_header_still_cannot_read_customers(client, organization):
    response = client.get("/v1/customers", HTTP_X_ACCOUNT_ID=organization.slug)
    assert error(response)[:2] == (401, "MISSING_API_KEY")


# JWT -------------------------------------------------------------------------------------


def test_jwt_user_role_sees_only_own_rows(client, organization, api_client):
    api_client.post("/v1/customers", {"email": "someone-else@x.com"})
    token = make_jwt(organization, user_id="u-42")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    created = client.post("/v1/customers", {"email": "mine@x.com"}, content_type="application/json", **auth)
    assert created.status_code == 201, created.content
    listed = client.get("/v1/customers", **auth).json()["data"]
    assert [c["email"] for c in listed] == ["mine@x.com"]
    other_id = Customer.objects.get(email="someone-else@x.com").pk
    assert client.get(f"/v1/customers/{other_id}", **auth).status_code == 404
    assert client.delete(f"/v1/customers/{other_id}", **auth).status_code == 404
    assert Customer.objects.filter(pk=other_id).exists()


def test_jwt_hasura_role_header_picks_an_allowed_role(client, organization, api_client):
    api_client.post("/v1/customers", {"email": "someone-else@x.com"})
    token = make_jwt(organization, user_id="u-42", allowed=("user", "manager"))
    response = client.get("/v1/customers", HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_X_HASURA_ROLE="manager")
    assert [c["email"] for c in response.json()["data"]] == ["someone-else@x.com"]
    response = client.get("/v1/customers", HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_X_HASURA_ROLE="admin")
    assert error(response)[:2] == (403, "INSUFFICIENT_PERMISSIONS")


def test_jwt_expired_or_badly_signed_is_401(client, organization):
    expired = make_jwt(organization, exp_in=-10)
    assert error(client.get("/v1/customers", HTTP_AUTHORIZATION=f"Bearer {expired}"))[:2] == (401, "INVALID_TOKEN")
    forged = make_jwt(organization, key="another-secret-another-secret-0123456789")
    assert error(client.get("/v1/customers", HTTP_AUTHORIZATION=f"Bearer {forged}"))[:2] == (401, "INVALID_TOKEN")


def test_jwt_for_another_organization_sees_nothing_of_ours(client, organization, other_organization, api_client):
    api_client.post("/v1/customers", {"email": "ours@x.com"})
    token = make_jwt(other_organization, default_role="manager", allowed=("manager",))
    response = client.get("/v1/customers", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200
    assert response.json()["data"] == []


# Admin secret and user tokens ------------------------------------------------------------


def test_admin_secret_acts_as_admin_of_the_named_account(client, organization, api_client):
    api_client.post("/v1/customers", {"email": "ours@x.com"})
    for header in ("HTTP_X_STATESET_ADMIN_SECRET", "HTTP_X_HASURA_ADMIN_SECRET"):
        response = client.get("/v1/customers", **{header: "admin-secret-for-tests"}, HTTP_X_ACCOUNT_ID=organization.id)
        assert [c["email"] for c in response.json()["data"]] == ["ours@x.com"]
    response = client.get(
        "/v1/customers", HTTP_X_STATESET_ADMIN_SECRET="admin-secret-for-tests", HTTP_X_HASURA_ORG_ID=organization.slug
    )
    assert response.status_code == 200
    response = client.get("/v1/customers", HTTP_X_STATESET_ADMIN_SECRET="wrong", HTTP_X_ACCOUNT_ID=organization.id)
    assert error(response)[:2] == (401, "INVALID_API_KEY")


def test_user_token_login_use_and_revocation(client, organization):
    user = staff_user_create(
        email="ops@acme.test", password="correct horse 1", organization=organization, role=Role.MANAGER
    )
    response = client.post(
        "/v1/auth/token", {"email": "ops@acme.test", "password": "wrong"}, content_type="application/json"
    )
    assert error(response)[:2] == (401, "INVALID_API_KEY")
    response = client.post(
        "/v1/auth/token",
        {"email": "OPS@acme.test", "password": "correct horse 1", "expires_in": 600},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["token"].startswith("sst_") and body["expires_in"] == 600
    auth = {"HTTP_AUTHORIZATION": f"Bearer {body['token']}"}
    created = client.post("/v1/customers", {"email": "c@x.com"}, content_type="application/json", **auth)
    assert created.status_code == 201
    log = AuditLog.objects.get(action="customer.created")
    assert log.actor_type == "user" and log.actor_id == str(user.pk) and log.credential == body["id"]
    # Revoked membership -> the token stops working.
    Membership.objects.filter(user=user).delete()
    assert client.get("/v1/customers", **auth).status_code == 401


def test_user_token_expiry_bounds(client, organization):
    staff_user_create(email="ops@acme.test", password="correct horse 1", organization=organization)
    response = client.post(
        "/v1/auth/token",
        {"email": "ops@acme.test", "password": "correct horse 1", "expires_in": 10**9},
        content_type="application/json",
    )
    assert error(response)[:2] == (422, "VALIDATION_ERROR")


# Audit log ---------------------------------------------------------------------------------


def test_every_write_is_audited_with_request_context(api_client, organization):
    response = api_client.post(
        "/v1/customers", {"email": "a@x.com"}, headers={"X-Device-Id": "till-7", "User-Agent": "pos/1.0"}
    )
    customer_id = response.json()["id"]
    api_client.patch(f"/v1/customers/{customer_id}", {"first_name": "Ada"})
    api_client.delete(f"/v1/customers/{customer_id}")
    logs = list(AuditLog.objects.filter(object_id=customer_id).order_by("created_at"))
    assert [log.action for log in logs] == ["customer.created", "customer.updated", "customer.deleted"]
    first = logs[0]
    key = APIKey.objects.get(organization=organization)
    assert first.device_id == "till-7" and first.user_agent == "pos/1.0" and first.ip_address == "127.0.0.1"
    assert first.actor_type == "api_key" and first.credential == key.pk
    assert first.request_id == response["X-Request-ID"]
    assert logs[1].before["first_name"] == "" and logs[1].after["first_name"] == "Ada"
    body = api_client.get("/v1/audit_logs", {"object_id": customer_id}).json()
    assert [row["action"] for row in body["data"]] == ["customer.deleted", "customer.updated", "customer.created"]


def test_audit_log_is_admin_only(client, organization, other_client):
    _, manager_key = api_key_create(organization=organization, kind="restricted", mode="live", scopes=["*"])
    response = client.get("/v1/audit_logs", HTTP_AUTHORIZATION=f"Bearer {manager_key}")
    assert error(response)[:2] == (403, "INSUFFICIENT_PERMISSIONS")


def test_audit_logs_are_private_to_the_organization(api_client, other_client):
    api_client.post("/v1/customers", {"email": "a@x.com"})
    assert other_client.get("/v1/audit_logs").json()["data"] == []


# API keys over the API ---------------------------------------------------------------------


def test_admin_manages_keys_over_the_api(api_client, client, organization, other_client):
    response = api_client.post("/v1/api_keys", {"kind": "restricted", "mode": "test", "scopes": ["customers:read"]})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["secret"].startswith("rk_test_") and body["redacted"].endswith(body["secret"][-4:])
    listed = api_client.get("/v1/api_keys").json()["data"]
    assert all("secret" not in row for row in listed) and len(listed) == 2
    assert other_client.post(f"/v1/api_keys/{body['id']}/revoke").status_code == 404
    assert api_client.post(f"/v1/api_keys/{body['id']}/revoke").json()["revoked_at"] is not None
    assert client.get("/v1/customers", HTTP_AUTHORIZATION=f"Bearer {body['secret']}").status_code == 401


def test_rs256_jwt_with_a_configured_public_key(client, organization, settings, api_client):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    settings.STATESET_JWT_PUBLIC_KEY = (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    api_client.post("/v1/customers", {"email": "ours@x.com"})
    claims = {
        "exp": int(time.time()) + 60,
        NAMESPACE: {
            "x-hasura-user-id": "u1",
            "x-hasura-org-id": organization.slug,
            "x-hasura-default-role": "manager",
            "x-hasura-allowed-roles": ["manager"],
        },
    }
    token = jwt.encode(claims, private_key, algorithm="RS256")
    response = client.get("/v1/customers", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert [c["email"] for c in response.json()["data"]] == ["ours@x.com"]
    # An HS256 token signed with anything is refused once RS256 is configured.
    forged = jwt.encode(claims, "x" * 40, algorithm="HS256")
    assert error(client.get("/v1/customers", HTTP_AUTHORIZATION=f"Bearer {forged}"))[:2] == (401, "INVALID_TOKEN")
