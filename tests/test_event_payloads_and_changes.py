"""Event payloads are declared per object type and API version (apps.core.payloads); today's
version carries exactly what the API shows. Webhook endpoints move through the same transition()."""

import pytest

from apps.core import payloads
from apps.core.jsonutil import to_jsonable
from apps.core.models import StatusChange
from apps.crm.models import Customer
from apps.events.models import Event, WebhookEndpoint


@pytest.fixture
def endpoint(api_client, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    response = api_client.post("/v1/webhooks", {"url": "https://hooks.example.com/x", "events": ["*"]})
    assert response.status_code == 201, response.content
    return response.json()


def test_the_2024_01_01_payloads_are_what_the_api_shows(api_client, endpoint):
    created = api_client.post(
        "/v1/customers",
        {
            "email": "ada@example.com",
            "metadata": {"tier": "gold"},
            "addresses": [
                {"address_line_1": "1 A St", "city": "Leeds", "country_code": "GB", "is_default_billing": True}
            ],
        },
    ).json()
    customer = Customer.objects.get(pk=created["id"])
    shown = api_client.get(f"/v1/customers/{customer.pk}").json()
    assert to_jsonable(payloads.build(customer, api_version="2024-01-01")) == shown
    event = Event.objects.get(object_id=customer.pk, type="customer.created")
    assert event.data["object"] == created
    webhook = WebhookEndpoint.objects.get(pk=endpoint["id"])
    shown = {key: value for key, value in endpoint.items() if key != "secret"}
    assert to_jsonable(payloads.build(webhook)) == shown


def test_a_payload_version_is_picked_by_date(monkeypatch):
    monkeypatch.setattr(payloads, "_TYPES", {})
    payloads.payload("crm.Customer", "customer", api_version="2024-01-01")(lambda c: {"v": 1})
    payloads.payload("crm.Customer", "customer", api_version="2025-06-01")(lambda c: {"v": 2})
    customer = Customer()
    assert payloads.build(customer, api_version="2024-01-01") == {"v": 1}
    assert payloads.build(customer, api_version="2025-01-01") == {"v": 1}
    assert payloads.build(customer, api_version="2026-01-01") == {"v": 2}
    with pytest.raises(LookupError):
        payloads.build(customer, api_version="2023-01-01")


def test_endpoint_enable_disable_go_through_the_transition_table(api_client, endpoint):
    path = f"/v1/webhooks/{endpoint['id']}"
    disabled = api_client.post(f"{path}/disable").json()
    assert disabled["status"] == "disabled" and disabled["disabled_reason"] == "Disabled by a user."
    assert api_client.post(f"{path}/disable").status_code == 200  # quiet the second time
    enabled = api_client.post(f"{path}/enable").json()
    assert enabled["status"] == "enabled" and enabled["disabled_reason"] == "" and enabled["disabled_at"] is None
    history = api_client.get(f"{path}/history").json()["data"]
    assert [(c["from_status"], c["to_status"]) for c in history] == [("disabled", "enabled"), ("enabled", "disabled")]
    assert history[1]["reason"] == "Disabled by a user."
    assert StatusChange.objects.filter(object_type="events.WebhookEndpoint").count() == 2
    check = api_client.get(f"{path}/can_transition", {"target": "enabled"}).json()
    assert check["allowed"] is False and check["allowed_targets"] == ["disabled"]
    # The status is not writable through an update.
    response = api_client.patch(path, {"status": "disabled"})
    assert response.status_code == 400 and response.json()["param"] == "status"
    event_types = list(Event.objects.filter(object_id=endpoint["id"]).values_list("type", flat=True))
    assert sorted(event_types) == ["webhook_endpoint.disabled", "webhook_endpoint.enabled"]
