"""The webhooks and events API: endpoints (secret once, rotation, enable/disable, SSRF guard),
events, deliveries, tenancy, permissions, list query counts and the admin screens. No delivery
happens here (these tests run inside a transaction that never commits)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.accounts.models import User
from apps.accounts.services import api_key_create
from apps.core.context import Actor
from apps.crm.services import customer_create
from apps.events.models import Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db

HOOK = "https://hooks.example.com/stateset"


@pytest.fixture(autouse=True)
def _allow_example_hosts(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False


def create_endpoint(client, url=HOOK, events=("*",)):
    response = client.post("/v1/webhooks", {"url": url, "events": list(events), "description": "ERP sync"})
    assert response.status_code == 201, response.content
    return response.json()


def test_create_returns_the_secret_once(api_client):
    body = create_endpoint(api_client, events=["order.*", "customer.created"])
    assert body["object"] == "webhook_endpoint" and body["id"].startswith("we_")
    assert body["secret"].startswith("whsec_")
    assert body["events"] == ["customer.created", "order.*"]
    assert body["status"] == "enabled" and body["livemode"] is True
    fetched = api_client.get(f"/v1/webhooks/{body['id']}").json()
    assert "secret" not in fetched
    listed = api_client.get("/v1/webhooks").json()
    assert listed["object"] == "list" and [e["id"] for e in listed["data"]] == [body["id"]]
    assert "secret" not in listed["data"][0]
    # Aliases of the collection.
    assert api_client.get(f"/v1/webhook_endpoints/{body['id']}").status_code == 200
    assert api_client.get(f"/api/v1/webhooks/{body['id']}/").status_code == 200


def test_stripe_enabled_events_is_accepted(api_client):
    response = api_client.post("/v1/webhooks", {"url": HOOK, "enabled_events": ["*"]})
    assert response.status_code == 201 and response.json()["events"] == ["*"]


@pytest.mark.parametrize(
    "payload, param",
    [
        ({"events": ["*"]}, "url"),
        ({"url": HOOK}, "events"),
        ({"url": HOOK, "events": []}, "events"),
        ({"url": HOOK, "events": ["Order Created"]}, "events"),
        ({"url": "not a url", "events": ["*"]}, "url"),
    ],
)
def test_invalid_input(api_client, payload, param):
    response = api_client.post("/v1/webhooks", payload)
    assert response.status_code == 422
    assert response.json()["param"] == param


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://172.16.5.4/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[fe80::1]/hook",
        "http://0.0.0.0/hook",
        "ftp://hooks.example.com/x",
        "http://user:pass@hooks.example.com/x",
    ],
)
def test_private_urls_are_refused(api_client, url):
    response = api_client.post("/v1/webhooks", {"url": url, "events": ["*"]})
    assert response.status_code in (400, 422), response.content
    assert response.json()["param"] == "url"
    assert not WebhookEndpoint.objects.exists()


def test_private_urls_allowed_when_configured(api_client, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    assert create_endpoint(api_client, url="http://127.0.0.1:9000/hook")["url"] == "http://127.0.0.1:9000/hook"


def test_public_address_accepted_and_private_refused_on_update(api_client):
    endpoint = create_endpoint(api_client, url="https://93.184.215.14/hook")
    response = api_client.patch(f"/v1/webhooks/{endpoint['id']}", {"url": "http://10.0.0.1/"})
    assert response.status_code == 422 and response.json()["param"] == "url"


def test_update_delete_and_server_owned_fields(api_client):
    endpoint = create_endpoint(api_client)
    response = api_client.patch(
        f"/v1/webhooks/{endpoint['id']}", {"events": ["order.created"], "description": "orders only"}
    )
    assert response.status_code == 200
    assert response.json()["events"] == ["order.created"] and response.json()["description"] == "orders only"
    assert api_client.patch(f"/v1/webhooks/{endpoint['id']}", {"status": "disabled"}).status_code == 400
    assert api_client.patch(f"/v1/webhooks/{endpoint['id']}", {"secret": "whsec_x"}).status_code == 400
    assert api_client.delete(f"/v1/webhooks/{endpoint['id']}").status_code == 204
    assert api_client.get(f"/v1/webhooks/{endpoint['id']}").status_code == 404


def test_disable_and_enable(api_client):
    endpoint = create_endpoint(api_client)
    disabled = api_client.post(f"/v1/webhooks/{endpoint['id']}/disable")
    assert disabled.status_code == 200 and disabled.json()["status"] == "disabled"
    assert disabled.json()["disabled_reason"]
    # Twice is fine (no second event).
    assert api_client.post(f"/v1/webhooks/{endpoint['id']}/disable").status_code == 200
    assert api_client.post(f"/v1/webhooks/{endpoint['id']}/test").status_code == 409
    enabled = api_client.post(f"/v1/webhooks/{endpoint['id']}/enable")
    assert enabled.json()["status"] == "enabled" and enabled.json()["disabled_reason"] == ""
    types = [e["type"] for e in api_client.get("/v1/events", {"sort": "created_at"}).json()["data"]]
    assert types == ["webhook_endpoint.disabled", "webhook_endpoint.enabled"]


def test_rotation_returns_a_new_secret(api_client):
    endpoint = create_endpoint(api_client)
    rotated = api_client.post(f"/v1/webhooks/{endpoint['id']}/rotate_secret").json()
    assert rotated["secret"] != endpoint["secret"] and rotated["secret_rotation_ends_at"]
    stored = WebhookEndpoint.objects.get(pk=endpoint["id"])
    assert stored.previous_secret == endpoint["secret"] and stored.secret == rotated["secret"]


def test_emit_creates_one_delivery_per_subscribed_endpoint(api_client, organization):
    everything = create_endpoint(api_client)
    customers = create_endpoint(api_client, events=["customer.*"])
    orders = create_endpoint(api_client, events=["order.*"])
    disabled = create_endpoint(api_client)
    api_client.post(f"/v1/webhooks/{disabled['id']}/disable")
    api_client.post("/v1/customers", {"email": "fan@example.com"})
    event = Event.objects.get(type="customer.created")
    assert set(WebhookDelivery.objects.filter(event=event).values_list("endpoint_id", flat=True)) == {
        everything["id"],
        customers["id"],
    }
    assert orders  # subscribed to nothing that happened
    deliveries = api_client.get(f"/v1/webhooks/{customers['id']}/deliveries").json()
    assert deliveries["url"] == f"/v1/webhooks/{customers['id']}/deliveries"
    (delivery,) = deliveries["data"]
    assert delivery["event"] == event.pk and delivery["event_type"] == "customer.created"
    assert delivery["status"] == "pending" and delivery["attempts"] == []
    assert api_client.get("/v1/webhook_deliveries", {"status": "pending"}).json()["data"]


def test_events_api(api_client, organization):
    created = api_client.post("/v1/customers", {"email": "ev@example.com"}).json()
    api_client.patch(f"/v1/customers/{created['id']}", {"first_name": "Eve"})
    listed = api_client.get("/v1/events").json()
    assert [e["type"] for e in listed["data"]] == ["customer.updated", "customer.created"]  # newest first
    updated = listed["data"][0]
    assert updated["object"] == "event" and updated["sequence"] == 2
    assert updated["data"]["previous_attributes"] == {"first_name": ""}
    assert updated["request"]["id"].startswith("req_")
    assert api_client.get(f"/v1/events/{updated['id']}").json() == updated
    assert [e["type"] for e in api_client.get("/v1/events", {"type": "customer.created"}).json()["data"]] == [
        "customer.created"
    ]
    by_object = api_client.get("/v1/events", {"object_id": created["id"], "sort": "sequence"}).json()["data"]
    assert [e["sequence"] for e in by_object] == [1, 2]
    assert api_client.get("/v1/events", {"colour": "red"}).json()["code"] == "parameter_unknown"
    assert api_client.get("/v1/events/evt_nope").status_code == 404


def test_other_organizations_see_nothing(api_client, other_client):
    endpoint = create_endpoint(api_client)
    api_client.post("/v1/customers", {"email": "mine@example.com"})
    event = Event.objects.get(type="customer.created")
    delivery = WebhookDelivery.objects.get()
    for path in (
        f"/v1/webhooks/{endpoint['id']}",
        f"/v1/webhooks/{endpoint['id']}/deliveries",
        f"/v1/events/{event.pk}",
        f"/v1/webhook_deliveries/{delivery.pk}",
    ):
        assert other_client.get(path).status_code == 404, path
    for path in (
        f"/v1/webhooks/{endpoint['id']}/test",
        f"/v1/webhooks/{endpoint['id']}/disable",
        f"/v1/webhooks/{endpoint['id']}/rotate_secret",
        f"/v1/webhook_deliveries/{delivery.pk}/retry",
    ):
        assert other_client.post(path).status_code == 404, path
    assert other_client.get("/v1/events").json()["data"] == []
    assert other_client.get("/v1/webhooks").json()["data"] == []
    assert other_client.get("/v1/webhook_deliveries").json()["data"] == []


def test_only_admins_manage_webhooks(api_client, organization):
    restricted = api_key_create(organization=organization, kind="restricted", mode="live", scopes=["customers:*"])[1]
    client = api_client.as_key(restricted)
    assert client.get("/v1/webhooks").status_code == 403
    assert client.post("/v1/webhooks", {"url": HOOK, "events": ["*"]}).status_code == 403
    assert client.get("/v1/webhook_deliveries").status_code == 403


def test_retry_through_the_api(api_client):
    endpoint = create_endpoint(api_client)
    api_client.post("/v1/customers", {"email": "r@example.com"})
    delivery = WebhookDelivery.objects.get()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status="failed", next_attempt_at=None)
    body = api_client.post(f"/v1/webhook_deliveries/{delivery.pk}/retry").json()
    assert body["status"] == "pending" and body["next_attempt_at"]
    api_client.post(f"/v1/webhooks/{endpoint['id']}/disable")
    conflict = api_client.post(f"/v1/webhook_deliveries/{delivery.pk}/retry")
    assert conflict.status_code == 409 and conflict.json()["code"] == "RESOURCE_CONFLICT"


def _count_queries(client, path, params):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path, params)
    assert response.status_code == 200, response.content
    return len(queries)


def test_list_query_counts_do_not_grow_with_page_size(api_client, organization):
    endpoint = create_endpoint(api_client)
    create_endpoint(api_client, url="https://other.example.com/hook")
    actor = Actor.system(organization)
    for index in range(24):
        customer_create(organization=organization, actor=actor, data={"email": f"q{index}@example.com"})
    for delivery in WebhookDelivery.objects.all():
        for number in (1, 2):
            WebhookAttempt.objects.create(
                organization=organization, delivery=delivery, number=number, url=HOOK, status_code=500
            )
    for path in ("/v1/events", "/v1/webhooks", "/v1/webhook_deliveries", f"/v1/webhooks/{endpoint['id']}/deliveries"):
        small = _count_queries(api_client, path, {"limit": 2})
        large = _count_queries(api_client, path, {"limit": 20})
        assert small == large, f"{path}: {small} queries for 2 rows, {large} for 20"


def test_admin_screens_and_retry_action(client, organization, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    user = User.objects.create_superuser(email="staff@example.com", password="a-long-password")
    client.force_login(user)
    response = client.post(
        "/admin/events/webhookendpoint/add/",
        {"organization": organization.pk, "url": "http://169.254.169.254/", "events": '["*"]', "metadata": "{}"},
    )
    assert response.status_code == 200 and b"link-local" in response.content
    response = client.post(
        "/admin/events/webhookendpoint/add/",
        {"organization": organization.pk, "url": HOOK, "events": '["*"]', "metadata": "{}", "description": ""},
        follow=True,
    )
    assert b"Signing secret (shown once): whsec_" in response.content
    endpoint = WebhookEndpoint.objects.get()
    customer_create(organization=organization, actor=Actor.system(organization), data={"email": "adm@example.com"})
    delivery = WebhookDelivery.objects.get()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status="failed", next_attempt_at=None)
    for path in (
        "/admin/events/webhookendpoint/",
        f"/admin/events/webhookendpoint/{endpoint.pk}/change/",
        "/admin/events/webhookdelivery/",
        f"/admin/events/webhookdelivery/{delivery.pk}/change/",
        "/admin/events/event/",
    ):
        assert client.get(path).status_code == 200, path
    response = client.post(
        "/admin/events/webhookdelivery/",
        {"action": "retry_deliveries", "_selected_action": [delivery.pk]},
        follow=True,
    )
    assert b"1 deliveries queued" in response.content
    delivery.refresh_from_db()
    assert delivery.status == "pending"


def test_a_retry_is_audited_with_the_delivery_before_and_after(api_client):
    from apps.accounts.models import AuditLog

    create_endpoint(api_client)
    api_client.post("/v1/customers", {"email": "r@example.com"})
    delivery = WebhookDelivery.objects.get()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status="failed", next_attempt_at=None)
    api_client.post(f"/v1/webhook_deliveries/{delivery.pk}/retry")
    entry = AuditLog.objects.get(action="webhook_delivery.retried", object_id=delivery.pk)
    assert entry.before["status"] == "failed" and entry.after["status"] == "pending"
    assert entry.after["next_attempt_at"] is not None
