"""The one way in, in the admin: rows scoped through the policy table's scope (for_org), writes
through the services (ServiceAdmin), a service's refusal shown on the form with nothing saved,
status moved only by actions."""

import pytest

from apps.accounts.models import APIKey, AuditLog, Organization, Role
from apps.accounts.services import api_key_create, staff_user_create
from apps.crm.models import Customer
from apps.crm.selectors import customer_list

FORM = {
    "first_name": "",
    "last_name": "",
    "phone": "",
    "sso_id": "",
    "stripe_customer_id": "",
    "metadata": "{}",
    "tags": "[]",
    "addresses-TOTAL_FORMS": "0",
    "addresses-INITIAL_FORMS": "0",
}


@pytest.fixture
def staff(client, organization):
    user = staff_user_create(
        email="ops@acme.test", password="long password 1", organization=organization, role=Role.ADMIN
    )
    client.force_login(user)
    return user


def test_a_service_refusal_comes_back_on_the_form_and_saves_nothing(client, staff, organization, api_client):
    api_client.post("/v1/customers", {"email": "taken@x.com"})
    response = client.post(
        "/admin/crm/customer/add/",
        {**FORM, "organization": organization.pk, "email": "Taken@x.com", "first_name": "Kept"},
    )
    assert response.status_code == 200  # the form again, not a redirect and not a 500
    body = response.content.decode()
    assert "RESOURCE_ALREADY_EXISTS" in body and 'value="Kept"' in body  # the error, and what was typed
    assert Customer.objects.filter(email="taken@x.com").count() == 1
    assert not AuditLog.objects.filter(action="customer.created", actor_id=str(staff.pk)).exists()


def test_a_refused_edit_changes_nothing(client, staff, organization, api_client):
    api_client.post("/v1/customers", {"email": "one@x.com"})
    two = api_client.post("/v1/customers", {"email": "two@x.com"}).json()
    response = client.post(f"/admin/crm/customer/{two['id']}/change/", {**FORM, "email": "one@x.com"})
    assert response.status_code == 200 and b"RESOURCE_ALREADY_EXISTS" in response.content
    assert Customer.objects.get(pk=two["id"]).email == "two@x.com"


def test_status_is_read_only_in_the_customer_form(client, staff, organization, api_client):
    customer = api_client.post("/v1/customers", {"email": "s@x.com"}).json()
    status = Customer.objects.get(pk=customer["id"]).status
    response = client.post(
        f"/admin/crm/customer/{customer['id']}/change/", {**FORM, "email": "s@x.com", "status": "suspended"}
    )
    assert response.status_code == 302
    assert Customer.objects.get(pk=customer["id"]).status == status
    assert b'name="status"' not in client.get(f"/admin/crm/customer/{customer['id']}/change/").content


def test_status_actions_call_the_services(client, staff, organization, api_client):
    customer = api_client.post("/v1/customers", {"email": "act@x.com"}).json()
    Customer.objects.filter(pk=customer["id"]).update(status="active")
    response = client.post(
        "/admin/crm/customer/", {"action": "suspend_customers", "_selected_action": [customer["id"]]}
    )
    assert response.status_code == 302
    assert Customer.objects.get(pk=customer["id"]).status == "suspended"
    assert AuditLog.objects.filter(object_id=customer["id"], actor_id=str(staff.pk)).exists()
    # suspended -> inactive is not in the table: refused, shown as a message, nothing changed
    response = client.post(
        "/admin/crm/customer/",
        {"action": "deactivate_customers", "_selected_action": [customer["id"]]},
        follow=True,
    )
    assert response.status_code == 200 and b"RESOURCE_CONFLICT" in response.content
    assert Customer.objects.get(pk=customer["id"]).status == "suspended"
    client.post("/admin/crm/customer/", {"action": "activate_customers", "_selected_action": [customer["id"]]})
    assert Customer.objects.get(pk=customer["id"]).status == "active"


def test_api_key_admin_revokes_through_the_service(client, staff, organization):
    key, _ = api_key_create(organization=organization, kind="secret", mode="test")
    response = client.post("/admin/accounts/apikey/", {"action": "revoke_keys", "_selected_action": [key.pk]})
    assert response.status_code == 302
    assert APIKey.objects.get(pk=key.pk).revoked_at is not None
    log = AuditLog.objects.get(action="api_key.revoked", object_id=key.pk)
    assert log.actor_id == str(staff.pk) and log.organization_id == organization.sandbox.pk


def test_organization_choices_are_the_members_own(client, staff, organization, other_organization):
    body = client.get("/admin/crm/customer/add/").content.decode()
    assert organization.pk in body and organization.sandbox.pk in body
    assert other_organization.pk not in body and other_organization.sandbox.pk not in body
    assert set(Organization.objects.of_member(staff)) == {organization, organization.sandbox}


def test_selectors_take_the_organization(api_client, other_client, organization, other_organization):
    api_client.post("/v1/customers", {"email": "ours@x.com"})
    other_client.post("/v1/customers", {"email": "theirs@x.com"})
    assert [c.email for c in customer_list(organization=organization)] == ["ours@x.com"]
    assert [c.email for c in customer_list(organization=other_organization)] == ["theirs@x.com"]


def test_admin_actions_follow_the_action_rows_of_the_policy_table(client, organization, api_client):
    """`suspend` is for managers and admins (apps/crm/policies.py): a `user` member may activate
    the customers it created, but its suspend is refused for each row and nothing changes."""
    user = staff_user_create(
        email="clerk@acme.test", password="long password 1", organization=organization, role=Role.USER
    )
    client.force_login(user)
    own = api_client.post("/v1/customers", {"email": "own@x.com", "status": "prospect"}).json()
    Customer.objects.filter(pk=own["id"]).update(created_by=str(user.pk))
    response = client.post(
        "/admin/crm/customer/", {"action": "suspend_customers", "_selected_action": [own["id"]]}, follow=True
    )
    assert b"INSUFFICIENT_PERMISSIONS" in response.content
    assert Customer.objects.get(pk=own["id"]).status == "prospect"
    client.post("/admin/crm/customer/", {"action": "activate_customers", "_selected_action": [own["id"]]})
    assert Customer.objects.get(pk=own["id"]).status == "active"
