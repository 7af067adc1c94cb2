"""Customers end to end: CRUD, the seeds' forms, uniqueness, events, isolation."""

import pytest

from apps.crm.models import Customer, CustomerAddress
from apps.events.models import Event


@pytest.fixture
def customer(api_client):
    response = api_client.post(
        "/v1/customers",
        {
            "email": "Ada@Example.com",
            "first_name": "Ada",
            "last_name": "Lovelace",
            "phone": "+44 20 7946 0001",
            "sso_id": "sso-1",
            "stripe_customer_id": "cus_123",
            "metadata": {"tier": "gold"},
            "tags": ["vip", "vip", " wholesale "],
            "addresses": [
                {
                    "address_line_1": "12 St James's Sq",
                    "city": "London",
                    "country_code": "GB",
                    "is_default_billing": True,
                    "is_default_shipping": True,
                },
                {"address_line_1": "1 Other Rd", "city": "Leeds", "country_code": "GB"},
            ],
        },
    )
    assert response.status_code == 201, response.content
    return response.json()


def test_create_returns_the_whole_object(customer):
    assert customer["email"] == "ada@example.com"  # normalised
    assert customer["tags"] == ["vip", "wholesale"]
    assert customer["status"] == "active" and customer["livemode"] is True
    assert [a["city"] for a in customer["addresses"]] == ["London", "Leeds"]
    assert customer["default_billing_address"] == customer["addresses"][0]["id"]
    row = Customer.objects.get(pk=customer["id"])
    assert row.metadata == {"tier": "gold"} and row.addresses.count() == 2


def test_retrieve_update_delete(api_client, customer):
    path = f"/v1/customers/{customer['id']}"
    assert api_client.get(path).json() == customer
    for method in (api_client.put, api_client.patch):  # both are partial updates
        response = method(path, {"lastName": "King", "status": "INACTIVE"})
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["last_name"] == "King" and body["first_name"] == "Ada" and body["status"] == "inactive"
    response = api_client.patch(path, {"addresses": []})
    assert response.json()["addresses"] == [] and response.json()["default_billing_address"] is None
    assert CustomerAddress.objects.count() == 0
    assert api_client.delete(path).status_code == 204
    assert api_client.get(path).status_code == 404
    assert api_client.delete(path).status_code == 404
    assert not Customer.objects.exists()


def test_trailing_slash_and_singular_forms_for_one_object(api_client, customer):
    for path in (
        f"/v1/customers/{customer['id']}/",
        f"/v1/customer/{customer['id']}",
        f"/api/v1/customers/{customer['id']}",
    ):
        assert api_client.get(path).json()["id"] == customer["id"]


def test_email_unique_per_organization(api_client, other_client, customer):
    response = api_client.post("/v1/customers", {"email": "ADA@example.com"})
    assert response.status_code == 409
    assert response.json()["code"] == "RESOURCE_ALREADY_EXISTS" and response.json()["param"] == "email"
    other = api_client.post("/v1/customers", {"email": "grace@example.com"}).json()
    response = api_client.patch(f"/v1/customers/{other['id']}", {"email": "ada@example.com"})
    assert response.status_code == 409
    assert Customer.objects.get(pk=other["id"]).email == "grace@example.com"
    assert other_client.post("/v1/customers", {"email": "ada@example.com"}).status_code == 201


def test_invalid_update_changes_nothing(api_client, customer):
    path = f"/v1/customers/{customer['id']}"
    for body in (
        {"email": "nope"},
        {"tags": "vip"},
        {"metadata": [1]},
        {"status": "gone"},
        {"addresses": [{"city": "X"}]},
        {"addresses": [{"address_line_1": "a", "city": "b", "country_code": "GBR"}]},
        {
            "addresses": [
                {"address_line_1": "a", "city": "b", "country_code": "GB", "is_default_shipping": True},
                {"address_line_1": "c", "city": "d", "country_code": "GB", "is_default_shipping": True},
            ]
        },
    ):
        response = api_client.patch(path, body)
        assert response.status_code == 422, (body, response.content)
    assert api_client.get(path).json() == customer
    assert Event.objects.filter(type="customer.updated").count() == 0


def test_events_are_recorded_with_sequence_and_previous_attributes(api_client, customer):
    path = f"/v1/customers/{customer['id']}"
    api_client.patch(path, {"first_name": "Augusta"})
    api_client.patch(path, {"first_name": "Augusta"})  # no change, no event
    api_client.delete(path)
    events = list(Event.objects.filter(object_id=customer["id"]).order_by("sequence"))
    assert [(e.type, e.sequence) for e in events] == [
        ("customer.created", 1),
        ("customer.updated", 2),
        ("customer.deleted", 3),
    ]
    assert events[0].data["object"]["email"] == "ada@example.com"
    assert events[1].data["previous_attributes"] == {"first_name": "Ada"}
    assert events[1].data["object"]["first_name"] == "Augusta"
    assert events[2].data["object"]["deleted"] is True


def test_a_failed_write_emits_nothing(api_client, customer):
    api_client.post("/v1/customers", {"email": "ada@example.com"})
    assert Event.objects.filter(type="customer.created").count() == 1


# Cross-organization: every endpoint answers 404 and changes nothing ---------------------------


def test_cross_organization_access_is_404_everywhere(other_client, customer):
    path = f"/v1/customers/{customer['id']}"
    before = Customer.objects.get(pk=customer["id"])
    for response in (
        other_client.get(path),
        other_client.put(path, {"first_name": "Hacked"}),
        other_client.patch(path, {"first_name": "Hacked"}),
        other_client.delete(path),
        other_client.get("/v1/customers", {"starting_after": customer["id"]}),
    ):
        assert response.status_code == 404, response.content
        assert response.json()["code"] == "RESOURCE_NOT_FOUND"
    for listing in (
        other_client.get("/v1/customers"),
        other_client.get("/v1/customers/search", {"query": "ada"}),
        other_client.get("/v1/customers/list"),
        other_client.get("/v1/customers", {"email": "ada@example.com"}),
    ):
        assert listing.status_code == 200 and listing.json()["data"] == []
    after = Customer.objects.get(pk=customer["id"])
    assert (after.first_name, after.updated_at) == (before.first_name, before.updated_at)
    assert Event.objects.filter(object_id=customer["id"]).count() == 1


def test_cannot_write_into_another_organization_through_the_payload(api_client, other_organization):
    response = api_client.post("/v1/customers", {"email": "a@x.com", "organization": other_organization.id})
    assert response.status_code == 400
    assert not Customer.objects.filter(organization=other_organization).exists()
