"""The convention checks of apps.core.testing.ResourceKit, for every registered collection.

A new collection adds a class here (or in its app's tests); `test_every_collection_has_a_kit`
fails until it does.
"""

import itertools

import pytest
from django.apps import apps as django_apps
from django.utils import timezone

from apps.core.testing import ResourceKit, kit_classes, registered_collections

_serial = itertools.count(1)
HOOK = "https://hooks.example.com/kit"


def customers(api, n, **extra):
    """n customers told apart by their data: names and marketing alternate, every other one has
    an activation date, each a default shipping and billing address (so both expand)."""
    ids = []
    for i in range(n):
        s = next(_serial)
        body = {
            "email": f"kit{s}@example.com",
            "first_name": ("Ann", "Bob")[i % 2],
            "last_name": f"L{s:05d}",
            "accepts_marketing": i % 2 == 0,
            "addresses": [
                {
                    "address_line_1": f"{s} Main St",
                    "city": "Leeds",
                    "country_code": "GB",
                    "is_default_shipping": True,
                    "is_default_billing": True,
                }
            ],
            **extra,
        }
        if i % 2:
            body["activation_date"] = f"2024-0{1 + i % 9}-05T00:00:00Z"
        response = api.post("/v1/customers", body)
        assert response.status_code == 201, response.content
        ids.append(response.json()["id"])
    # Status moves only by actions whose rules are not the kit's subject: set it on the rows, so
    # that the status filter has two values to tell apart.
    django_apps.get_model("crm.Customer").objects.filter(pk__in=ids[1::3]).update(status="inactive")
    return ids


def customer_changes(api, n):
    """About n customer events (created, and updated for half of them): different types and
    sequences, for collections made by side effects. Returns the customers' ids."""
    created = customers(api, (n + 1) // 2)
    for customer_id in created[: n - len(created)]:
        response = api.patch(f"/v1/customers/{customer_id}", {"last_name": "Changed"})
        assert response.status_code == 200, response.content
    return created


def rows_about(model_label, customer_ids, **lookups):
    model = django_apps.get_model(model_label)
    return list(model.objects.filter(object_id__in=customer_ids, **lookups).values_list("pk", flat=True))


class TestCustomers(ResourceKit):
    collection = "customers"
    valid_create = {"email": "kit{n}@example.com", "first_name": "Kit", "phone": "+44 {n}"}
    update = {"first_name": "New", "last_name": "Name"}
    filters = {"sso_id": "sso-1", "stripe_customer_id": "cus_x", "phone": "+44 1"}

    def make(self, api, n):
        return customers(api, n)


@pytest.fixture
def _public_webhook_hosts(settings):
    # The URL guard refuses private addresses; the kit's hosts are public names it need not resolve.
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False


class TestWebhooks(ResourceKit):
    collection = "webhooks"
    valid_create = {"url": HOOK + "/{n}", "events": ["customer.created"], "description": "kit {n}"}
    update = {"description": "changed"}

    def make(self, api, n):
        ids = []
        for i in range(n):
            s = next(_serial)
            body = {"url": f"{HOOK}/{s}", "events": ["customer.*"] if i % 2 else ["*"], "description": f"d{s}"}
            ids.append(self.create(api, body)["id"])
        # Disabled endpoints too, so that the status filter has two values to tell apart.
        django_apps.get_model("events.WebhookEndpoint").objects.filter(pk__in=ids[1::3]).update(status="disabled")
        return ids


class TestApiKeys(ResourceKit):
    collection = "api_keys"
    valid_create = {"kind": "secret", "name": "kit {n}"}
    # A live secret key administers the account's keys of both modes (how an operator gets test
    # keys); a test key sees test keys only.
    live_sees_sandbox = True

    def make(self, api, n):
        ids = []
        for i in range(n):
            body = {"kind": "secret", "name": f"kit {next(_serial)}"}
            if i % 2:
                body = {**body, "kind": "restricted", "scopes": ["customers:read"]}
            ids.append(self.create(api, body)["id"])
        return ids

    def visible(self, organization):
        keys = django_apps.get_model("accounts.APIKey").objects.filter(organization=organization.live)
        return keys if organization.livemode else keys.filter(mode="test")


class TestEvents(ResourceKit):
    collection = "events"

    def make(self, api, n):
        return rows_about("events.Event", customer_changes(api, n))


class TestAuditLogs(ResourceKit):
    collection = "audit_logs"

    def make(self, api, n):
        return rows_about("accounts.AuditLog", customer_changes(api, n))


class TestWebhookDeliveries(ResourceKit):
    collection = "webhook_deliveries"

    def make(self, api, n):
        response = api.post("/v1/webhooks", {"url": f"{HOOK}/{next(_serial)}", "events": ["customer.*"]})
        assert response.status_code == 201, response.content
        endpoint_id = response.json()["id"]
        customer_changes(api, n)
        deliveries = django_apps.get_model("events.WebhookDelivery").objects.filter(endpoint_id=endpoint_id)
        ids = list(deliveries.order_by("pk").values_list("pk", flat=True))
        # Dispatch runs after commit, which a test transaction never reaches: record a failed
        # attempt on every other delivery by hand, so attempt fields hold values and NULLs.
        deliveries.filter(pk__in=ids[::2]).update(
            attempt_count=1, last_status_code=500, last_attempt_at=timezone.now(), last_error="HTTP 500"
        )
        return ids


class TestJobs(ResourceKit):
    collection = "jobs"

    def make(self, api, n):
        # A batch over the synchronous limit becomes a job; left queued (the kit reads jobs, it
        # does not run them).
        self.fixture("settings").BATCH_SYNC_LIMIT = 1
        ids = []
        for _ in range(n):
            items = [{"email": f"kitjob{next(_serial)}@example.com"} for _ in range(2)]
            response = api.post("/v1/customers/batch", {"items": items})
            assert response.status_code == 202, response.content
            ids.append(response.json()["id"])
        return ids


def test_every_collection_has_a_kit():
    """A collection cannot be registered without the convention checks."""
    covered = {cls.collection for cls in kit_classes()}
    missing = set(registered_collections()) - covered
    assert not missing, f"add a ResourceKit class (tests/test_resource_kit.py) for: {sorted(missing)}"
