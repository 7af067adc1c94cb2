"""Ids say their mode: rows of a sandbox get `<prefix>_test_<ULID>` (seed 002's `cus_test_*`),
live rows keep `<prefix>_<ULID>`, for every tenant-owned model, the outbox, the audit log and keys."""

import pytest

from apps.accounts.models import AuditLog
from apps.core.ids import mark_test_mode, new_id
from apps.core.models import Job
from apps.crm.models import Customer, CustomerAddress
from apps.events.models import Event, WebhookAttempt, WebhookDelivery

HOOK = "https://hooks.example.com/stateset"


@pytest.fixture(autouse=True)
def _webhook_hosts(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False


@pytest.fixture
def sandbox_client(api_client, test_secret_key):
    return api_client.as_key(test_secret_key)


def is_test_id(object_id, prefix):
    return object_id.startswith(f"{prefix}_test_") and len(object_id) == len(prefix) + len("_test_") + 26


def is_live_id(object_id, prefix):
    return object_id.startswith(f"{prefix}_") and "_test_" not in object_id and len(object_id) == len(prefix) + 27


def make_customer(client, email):
    address = {"address_line_1": "1 Main St", "city": "Leeds", "country_code": "GB"}
    response = client.post("/v1/customers", {"email": email, "addresses": [address]})
    assert response.status_code == 201, response.content
    return response.json()


def test_customers_and_addresses_carry_their_mode(api_client, sandbox_client):
    test = make_customer(sandbox_client, "t@example.com")
    live = make_customer(api_client, "l@example.com")
    assert is_test_id(test["id"], "cus") and is_test_id(test["addresses"][0]["id"], "addr")
    assert is_live_id(live["id"], "cus") and is_live_id(live["addresses"][0]["id"], "addr")
    # The marked id is the id: retrieve, update, cursor paging and delete all take it.
    assert sandbox_client.get(f"/v1/customers/{test['id']}").json()["id"] == test["id"]
    assert sandbox_client.patch(f"/v1/customers/{test['id']}", {"first_name": "T"}).status_code == 200
    second = make_customer(sandbox_client, "t2@example.com")
    page = sandbox_client.get("/v1/customers", {"limit": 1, "starting_after": second["id"]}).json()
    assert [c["id"] for c in page["data"]] == [test["id"]]
    assert sandbox_client.delete(f"/v1/customers/{test['id']}").status_code == 204
    assert api_client.get(f"/v1/customers/{second['id']}").status_code == 404


def test_events_and_audit_entries_carry_their_mode(api_client, sandbox_client, organization):
    test = make_customer(sandbox_client, "t@example.com")
    live = make_customer(api_client, "l@example.com")
    test_event = Event.objects.get(object_id=test["id"])
    live_event = Event.objects.get(object_id=live["id"])
    assert is_test_id(test_event.pk, "evt") and is_live_id(live_event.pk, "evt")
    assert sandbox_client.get("/v1/events").json()["data"][0]["id"] == test_event.pk
    assert is_test_id(AuditLog.objects.get(object_id=test["id"]).pk, "aud")
    assert is_live_id(AuditLog.objects.get(object_id=live["id"]).pk, "aud")
    assert is_test_id(sandbox_client.get("/v1/audit_logs").json()["data"][0]["id"], "aud")


def test_webhook_endpoints_deliveries_and_attempts_carry_their_mode(api_client, sandbox_client, organization):
    endpoint = sandbox_client.post("/v1/webhooks", {"url": HOOK, "events": ["*"]}).json()
    live_endpoint = api_client.post("/v1/webhooks", {"url": HOOK, "events": ["*"]}).json()
    assert is_test_id(endpoint["id"], "we") and is_live_id(live_endpoint["id"], "we")
    make_customer(sandbox_client, "t@example.com")
    delivery = WebhookDelivery.objects.get(endpoint_id=endpoint["id"])
    assert is_test_id(delivery.pk, "whd")
    attempt = WebhookAttempt.objects.create(
        organization_id=organization.sandbox.pk, delivery=delivery, number=1, url=HOOK
    )
    assert is_test_id(attempt.pk, "wha")
    make_customer(api_client, "l@example.com")
    assert is_live_id(WebhookDelivery.objects.get(endpoint_id=live_endpoint["id"]).pk, "whd")


def test_jobs_carry_their_mode(api_client, sandbox_client, settings, django_capture_on_commit_callbacks):
    settings.BATCH_SYNC_LIMIT = 1
    items = [{"email": f"b{i}@example.com"} for i in range(2)]
    with django_capture_on_commit_callbacks(execute=True):
        test_job = sandbox_client.post("/v1/customers/batch", {"items": items}).json()
        live_job = api_client.post("/v1/customers/batch", {"items": items}).json()
    assert is_test_id(test_job["id"], "job") and is_live_id(live_job["id"], "job")
    assert sandbox_client.get(f"/v1/jobs/{test_job['id']}").json()["status"] == "succeeded"
    sandbox_ids = sandbox_client.get("/v1/customers").json()["data"]
    assert len(sandbox_ids) == 2 and all(is_test_id(c["id"], "cus") for c in sandbox_ids)


def test_api_keys_carry_their_mode(api_client, sandbox_client):
    assert is_test_id(sandbox_client.post("/v1/api_keys", {"kind": "secret"}).json()["id"], "key")
    assert is_live_id(api_client.post("/v1/api_keys", {"kind": "secret"}).json()["id"], "key")


def test_bulk_create_marks_ids_and_looks_organizations_up_once(organization, django_assert_num_queries):
    sandbox = organization.sandbox
    with django_assert_num_queries(2):  # the organization, then one insert
        rows = Customer.objects.bulk_create(
            [Customer(organization_id=sandbox.pk, email=f"{i}@example.com") for i in range(3)]
        )
    assert all(is_test_id(row.pk, "cus") for row in rows)
    live = Customer.objects.bulk_create([Customer(organization=organization, email="l@example.com")])
    assert is_live_id(live[0].pk, "cus")
    address = CustomerAddress.objects.create(organization=sandbox, customer=rows[0], city="Leeds")
    assert is_test_id(address.pk, "addr")


def test_only_generated_ids_are_rewritten(organization):
    sandbox = organization.sandbox
    chosen = Customer.objects.create(id="cus_imported_1", organization=sandbox, email="a@example.com")
    assert chosen.pk == "cus_imported_1"
    again = Customer.objects.create(organization=sandbox, email="b@example.com")
    assert is_test_id(again.pk, "cus")
    again.first_name = "B"
    again.save()
    assert Customer.objects.get(pk=again.pk).first_name == "B"
    assert Customer.objects.filter(organization=sandbox).count() == 2
    assert Job.objects.create(organization=sandbox, kind="x").pk.startswith("job_test_")


def test_id_helpers():
    assert is_test_id(new_id("cus", livemode=False), "cus")
    assert is_live_id(new_id("cus"), "cus")
    generated = new_id("cus")
    assert is_test_id(mark_test_mode(generated, "cus"), "cus")
    marked = mark_test_mode(generated, "cus")
    assert mark_test_mode(marked, "cus") == marked
    assert mark_test_mode(generated, "addr") == generated
    assert mark_test_mode("cus_123", "cus") == "cus_123"
