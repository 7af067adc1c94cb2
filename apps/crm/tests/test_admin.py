"""The staff dashboard: staff see their own organization's customers, and admin edits go
through the same services (audit row, event, uniqueness) as the API."""

import pytest

from apps.accounts.models import AuditLog, Role
from apps.accounts.services import staff_user_create
from apps.crm.models import Customer
from apps.events.models import Event


@pytest.fixture
def staff(client, organization):
    user = staff_user_create(
        email="ops@acme.test", password="long password 1", organization=organization, role=Role.MANAGER
    )
    client.force_login(user)
    return user


def test_changelist_shows_only_own_organization(client, staff, api_client, other_client):
    api_client.post("/v1/customers", {"email": "ours@x.com"})
    other_client.post("/v1/customers", {"email": "theirs@x.com"})
    response = client.get("/admin/crm/customer/")
    assert response.status_code == 200
    assert b"ours@x.com" in response.content and b"theirs@x.com" not in response.content
    response = client.get("/admin/crm/customer/", {"q": "ours"})
    assert b"ours@x.com" in response.content
    theirs = Customer.objects.get(email="theirs@x.com")
    assert client.get(f"/admin/crm/customer/{theirs.pk}/change/").status_code == 302


def test_admin_create_and_edit_go_through_services(client, staff, organization):
    response = client.post(
        "/admin/crm/customer/add/",
        {
            "organization": organization.pk,
            "email": "New@X.com",
            "first_name": "N",
            "last_name": "",
            "phone": "",
            "sso_id": "",
            "stripe_customer_id": "",
            "status": "active",
            "metadata": "{}",
            "tags": "[]",
            "addresses-TOTAL_FORMS": "0",
            "addresses-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    customer = Customer.objects.get(email="new@x.com")
    assert customer.created_by == str(staff.pk)
    assert Event.objects.filter(type="customer.created", object_id=customer.pk).exists()
    log = AuditLog.objects.get(action="customer.created", object_id=customer.pk)
    assert log.actor_type == "user" and log.actor_id == str(staff.pk)


def test_user_role_sees_only_its_own_customers(client, organization, api_client):
    api_client.post("/v1/customers", {"email": "someone-elses@x.com"})
    user = staff_user_create(
        email="clerk@acme.test", password="long password 1", organization=organization, role=Role.USER
    )
    client.force_login(user)
    client.post(
        "/admin/crm/customer/add/",
        {
            "organization": organization.pk,
            "email": "mine@x.com",
            "first_name": "",
            "last_name": "",
            "phone": "",
            "sso_id": "",
            "stripe_customer_id": "",
            "status": "active",
            "metadata": "{}",
            "tags": "[]",
            "addresses-TOTAL_FORMS": "0",
            "addresses-INITIAL_FORMS": "0",
        },
    )
    response = client.get("/admin/crm/customer/")
    assert response.status_code == 200
    assert b"mine@x.com" in response.content and b"someone-elses@x.com" not in response.content
    theirs = Customer.objects.get(email="someone-elses@x.com")
    assert client.get(f"/admin/crm/customer/{theirs.pk}/change/").status_code == 302
    assert Customer.objects.filter(email="mine@x.com", created_by=str(user.pk)).exists()
