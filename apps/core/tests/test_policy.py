"""The policy table is the one place permissions live: changing a row changes what every
credential may do, through the same checks the real rows use."""

import pytest

from apps.core import policy
from apps.crm.models import Customer


@pytest.fixture
def customer_policy(monkeypatch):
    def set_roles(**roles):
        current = policy.POLICIES["crm.Customer"]
        monkeypatch.setitem(
            policy.POLICIES, "crm.Customer", policy.Policy(scope=current.scope, roles={**current.roles, **roles})
        )

    return set_roles


def test_anonymous_reads_only_what_the_table_allows(
    anonymous_client, api_client, organization, other_organization, customer_policy
):
    api_client.post("/v1/customers", {"email": "public@x.com"})
    assert anonymous_client.get("/v1/customers", headers={"X-Account-Id": organization.slug}).status_code == 401
    customer_policy(anonymous=policy.READ_ONLY)
    response = anonymous_client.get("/v1/customers", headers={"X-Account-Id": organization.slug})
    assert response.status_code == 200
    assert [c["email"] for c in response.json()["data"]] == ["public@x.com"]
    # Still only that organization, still read-only.
    other = anonymous_client.get("/v1/customers", headers={"X-Account-Id": other_organization.slug})
    assert other.json()["data"] == []
    write = anonymous_client.post("/v1/customers", {"email": "x@x.com"}, headers={"X-Account-Id": organization.slug})
    assert write.status_code == 401 and write.json()["code"] == "MISSING_API_KEY"
    assert Customer.objects.count() == 1


def test_writable_fields_per_role(client, organization, customer_policy):
    import time

    import jwt
    from django.conf import settings

    customer_policy(
        user={
            "read": policy.OWN_ROWS,
            "create": policy.Rule(rows="own", fields=frozenset({"email", "first_name", "last_name"})),
            "update": policy.Rule(rows="own", fields=frozenset({"first_name"})),
        }
    )
    settings.STATESET_JWT_SECRET = "s" * 40
    token = jwt.encode(
        {
            "exp": int(time.time()) + 60,
            "https://hasura.io/jwt/claims": {
                "x-hasura-user-id": "u1",
                "x-hasura-org-id": organization.id,
                "x-hasura-default-role": "user",
                "x-hasura-allowed-roles": ["user"],
            },
        },
        "s" * 40,
        algorithm="HS256",
    )
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    created = client.post(
        "/v1/customers", {"email": "a@x.com", "first_name": "A"}, content_type="application/json", **auth
    )
    assert created.status_code == 201
    denied = client.post("/v1/customers", {"email": "b@x.com", "phone": "1"}, content_type="application/json", **auth)
    assert denied.status_code == 403 and denied.json()["param"] == "phone"
    path = f"/v1/customers/{created.json()['id']}"
    assert client.patch(path, {"first_name": "B"}, content_type="application/json", **auth).status_code == 200
    denied = client.patch(path, {"last_name": "B"}, content_type="application/json", **auth)
    assert denied.status_code == 403 and denied.json()["code"] == "INSUFFICIENT_PERMISSIONS"
    # No delete row for the user role: 403, and the row stays.
    assert client.delete(path, **auth).status_code == 403
    assert Customer.objects.get().last_name == ""
