"""Customer status moves: the transition table, actions, history, can_transition, the status in
an update, action operations in the policy table and in restricted-key scopes."""

import time

import jwt
import pytest

from apps.accounts.models import AuditLog
from apps.accounts.services import api_key_create
from apps.core.models import StatusChange
from apps.crm.models import Customer
from apps.events.models import Event

JWT_SECRET = "jwt-secret-for-state-tests-0123456789abcdef"


@pytest.fixture
def customer(api_client):
    response = api_client.post("/v1/customers", {"email": "ada@example.com"})
    assert response.status_code == 201, response.content
    return response.json()


@pytest.fixture
def prospect(api_client):
    response = api_client.post("/v1/customers", {"email": "pro@example.com", "status": "PROSPECT"})
    assert response.status_code == 201, response.content
    return response.json()


def test_suspend_answers_the_whole_customer_and_records_history_audit_and_event(api_client, customer):
    response = api_client.post(f"/v1/customers/{customer['id']}/suspend", {"reason": "chargebacks"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "suspended" and body["email"] == customer["email"] and body["object"] == "customer"
    change = StatusChange.objects.get(object_id=customer["id"])
    assert (change.from_status, change.to_status, change.reason, change.object_type) == (
        "active",
        "suspended",
        "chargebacks",
        "crm.Customer",
    )
    event = Event.objects.get(object_id=customer["id"], type="customer.suspended")
    assert event.data["previous_attributes"] == {"status": "active"}
    assert event.data["object"]["status"] == "suspended"
    audit = AuditLog.objects.get(object_id=customer["id"], action="customer.suspended")
    assert audit.before["status"] == "active" and audit.after["status"] == "suspended"


def test_a_move_to_the_current_status_is_quiet(api_client, customer):
    path = f"/v1/customers/{customer['id']}"
    assert api_client.post(f"{path}/suspend").status_code == 200
    again = api_client.post(f"{path}/suspend")
    assert again.status_code == 200 and again.json()["status"] == "suspended"
    assert StatusChange.objects.filter(object_id=customer["id"]).count() == 1
    assert Event.objects.filter(object_id=customer["id"], type="customer.suspended").count() == 1


def test_an_illegal_move_is_409_with_the_current_status_and_the_allowed_targets(api_client, prospect):
    response = api_client.post(f"/v1/customers/{prospect['id']}/suspend")
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "RESOURCE_CONFLICT"
    assert body["detail"] == {"current_status": "prospect", "allowed": ["active"], "requested": "suspended"}
    assert "prospect" in body["message"] and "active" in body["message"]
    assert Customer.objects.get(pk=prospect["id"]).status == "prospect"
    assert not StatusChange.objects.exists()
    assert not Event.objects.filter(type="customer.suspended").exists()


def test_every_move_of_the_table(api_client, prospect):
    path = f"/v1/customers/{prospect['id']}"
    for verb, status in (
        ("activate", "active"),
        ("deactivate", "inactive"),
        ("activate", "active"),
        ("suspend", "suspended"),
        ("activate", "active"),
    ):
        response = api_client.post(f"{path}/{verb}")
        assert response.status_code == 200, (verb, response.content)
        assert response.json()["status"] == status
    assert api_client.post(f"{path}/suspend").status_code == 200
    assert api_client.post(f"{path}/deactivate").status_code == 409  # suspended -> active only


def test_status_in_an_update_goes_through_the_table(api_client, prospect):
    path = f"/v1/customers/{prospect['id']}"
    response = api_client.patch(path, {"status": "inactive", "first_name": "Pro"})
    assert response.status_code == 409 and response.json()["detail"]["current_status"] == "prospect"
    # Nothing of the refused update is kept, not even the other fields.
    assert Customer.objects.get(pk=prospect["id"]).first_name == ""
    response = api_client.patch(path, {"status": "ACTIVE", "first_name": "Pro"})
    assert response.status_code == 200 and response.json()["status"] == "active"
    types = list(Event.objects.filter(object_id=prospect["id"]).order_by("sequence").values_list("type", flat=True))
    assert types == ["customer.created", "customer.active", "customer.updated"]
    updated = Event.objects.get(object_id=prospect["id"], type="customer.updated")
    assert updated.data["previous_attributes"] == {"first_name": ""}  # the status has its own event
    assert StatusChange.objects.get(object_id=prospect["id"]).to_status == "active"


def test_a_new_customer_starts_as_prospect_or_active(api_client):
    response = api_client.post("/v1/customers", {"email": "s@example.com", "status": "suspended"})
    assert response.status_code == 422 and response.json()["param"] == "status"
    assert not Customer.objects.exists()


def test_history_lists_the_changes_newest_first_and_pages(api_client, customer):
    path = f"/v1/customers/{customer['id']}"
    for verb in ("suspend", "activate", "deactivate"):
        assert api_client.post(f"{path}/{verb}").status_code == 200
    body = api_client.get(f"{path}/history").json()
    assert body["object"] == "list" and body["has_more"] is False
    assert [(c["from_status"], c["to_status"]) for c in body["data"]] == [
        ("active", "inactive"),
        ("suspended", "active"),
        ("active", "suspended"),
    ]
    assert body["data"][0]["object"] == "status_change" and body["data"][0]["object_id"] == customer["id"]
    first = api_client.get(f"{path}/history", {"limit": 2}).json()
    assert len(first["data"]) == 2 and first["has_more"] is True
    rest = api_client.get(f"{path}/history", {"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [c["to_status"] for c in rest["data"]] == ["suspended"]
    assert api_client.get(f"{path}/history", {"nope": 1}).status_code == 400


def test_can_transition(api_client, customer, prospect):
    def check(obj, **params):
        return api_client.get(f"/v1/customers/{obj['id']}/can_transition", params)

    body = check(customer, target="suspended").json()
    assert body == {
        "object": "transition_check",
        "current_status": "active",
        "target": "suspended",
        "allowed": True,
        "allowed_targets": ["inactive", "suspended"],
    }
    assert check(prospect, target="SUSPENDED").json()["allowed"] is False
    for params in ({"target": "gone"}, {}):
        response = check(customer, **params)
        assert response.status_code == 400 and response.json()["param"] == "target"


def test_other_organizations_and_stateless_resources(api_client, other_client, customer):
    path = f"/v1/customers/{customer['id']}"
    for response in (
        other_client.get(f"{path}/history"),
        other_client.get(f"{path}/can_transition", {"target": "active"}),
        other_client.post(f"{path}/suspend"),
    ):
        assert response.status_code == 404, response.content
    assert Customer.objects.get(pk=customer["id"]).status == "active"
    # Events have no state machine: no history route.
    event = Event.objects.get(object_id=customer["id"])
    assert api_client.get(f"/v1/events/{event.id}/history").status_code == 404


# Actions in the policy table ----------------------------------------------------------------


def test_a_key_scoped_to_one_action_can_do_only_that(client, api_client, organization, customer):
    _, secret = api_key_create(organization=organization, kind="restricted", mode="live", scopes=["customers:suspend"])
    auth = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    path = f"/v1/customers/{customer['id']}"
    response = client.post(f"{path}/suspend", content_type="application/json", **auth)
    assert response.status_code == 200 and response.json()["status"] == "suspended"
    denied = client.patch(path, {"first_name": "X"}, content_type="application/json", **auth)
    assert denied.status_code == 403 and denied.json()["code"] == "INSUFFICIENT_PERMISSIONS"
    assert client.post(f"{path}/activate", content_type="application/json", **auth).status_code == 403
    assert client.get(path, **auth).status_code == 403
    # customers:write still grants every action.
    _, writer = api_key_create(organization=organization, kind="restricted", mode="live", scopes=["customers:write"])
    response = client.post(f"{path}/activate", content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {writer}")
    assert response.status_code == 200


def test_scopes_may_name_known_actions_only(api_client):
    made = api_client.post("/v1/api_keys", {"kind": "restricted", "scopes": ["customers:suspend", "webhooks:retry"]})
    assert made.status_code == 201, made.content
    for scope in ("customers:explode", "customers:", ":suspend"):
        response = api_client.post("/v1/api_keys", {"kind": "restricted", "scopes": [scope]})
        assert response.status_code == 422 and response.json()["param"] == "scopes", scope


def _jwt_client(client, settings, organization, role):
    settings.STATESET_JWT_SECRET = JWT_SECRET
    token = jwt.encode(
        {
            "exp": int(time.time()) + 60,
            "https://hasura.io/jwt/claims": {
                "x-hasura-user-id": f"{role}-1",
                "x-hasura-org-id": organization.id,
                "x-hasura-default-role": role,
                "x-hasura-allowed-roles": [role],
            },
        },
        JWT_SECRET,
        algorithm="HS256",
    )
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def test_suspend_is_for_managers_and_admins_not_the_user_role(client, settings, organization):
    user = _jwt_client(client, settings, organization, "user")
    created = client.post("/v1/customers", {"email": "own@example.com"}, content_type="application/json", **user)
    assert created.status_code == 201
    path = f"/v1/customers/{created.json()['id']}"
    # The user role may update its own customers, so it may deactivate them ...
    assert client.post(f"{path}/deactivate", content_type="application/json", **user).status_code == 200
    assert client.post(f"{path}/activate", content_type="application/json", **user).status_code == 200
    # ... but suspending is reserved to managers and admins by the table.
    denied = client.post(f"{path}/suspend", content_type="application/json", **user)
    assert denied.status_code == 403 and denied.json()["code"] == "INSUFFICIENT_PERMISSIONS"
    manager = _jwt_client(client, settings, organization, "manager")
    response = client.post(f"{path}/suspend", content_type="application/json", **manager)
    assert response.status_code == 200 and response.json()["status"] == "suspended"


def test_a_status_move_body_is_checked(api_client):
    customer = api_client.post("/v1/customers", {"email": "body@x.com"}).json()
    path = f"/v1/customers/{customer['id']}/suspend"
    for body, status, code in (
        ({"reason": "x" * 501}, 422, "VALIDATION_ERROR"),
        ({"reason": 5}, 422, "VALIDATION_ERROR"),
        ({"why": "x"}, 400, "parameter_unknown"),
    ):
        response = api_client.post(path, body)
        assert (response.status_code, response.json()["code"]) == (status, code), body
    assert api_client.get(f"/v1/customers/{customer['id']}").json()["status"] == "active"
    response = api_client.client.post(
        path, "[1]", content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {api_client.key}"
    )
    assert response.status_code == 400
    assert api_client.post(path).json()["status"] == "suspended"
