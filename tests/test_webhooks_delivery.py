"""Webhook delivery end to end: API writes -> outbox -> in-process scheduler -> a real HTTP
receiver on loopback. These run the embedded backend (the default setup without Redis); the
Celery worker path is tests/test_webhooks_celery.py."""

import hashlib
import hmac
import time

import pytest
from django.db import transaction
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from apps.core.context import Actor
from apps.crm.services import customer_create
from apps.events.embedded import scheduler
from apps.events.models import Event, WebhookDelivery, WebhookEndpoint
from tests.webhooks_receiver import Receiver

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def webhook_settings(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    settings.WEBHOOK_DELIVERY_BACKEND = "embedded"
    settings.WEBHOOK_RETRY_SCHEDULE = [0, 0.2, 0.4, 0.6]
    settings.WEBHOOK_RETRY_JITTER = 0.1
    settings.WEBHOOK_TIMEOUT_SECONDS = 2
    settings.WEBHOOK_SWEEP_INTERVAL_SECONDS = 0.5
    yield settings
    scheduler.wait_idle(10)
    scheduler.stop()


def create_endpoint(api_client, url, events=("*",)):
    response = api_client.post("/v1/webhooks", {"url": url, "events": list(events), "description": "test"})
    assert response.status_code == 201, response.content
    return response.json()


def stripe_style_valid(secret, header, body, tolerance=300):
    """A receiver's `Stateset-Signature: t=...,v1=...` check, written the way Stripe's is."""
    parts = [item.split("=", 1) for item in header.split(",")]
    timestamps = [value for key, value in parts if key == "t"]
    signatures = [value for key, value in parts if key == "v1"]
    if len(timestamps) != 1 or abs(time.time() - int(timestamps[0])) > tolerance:
        return False
    expected = hmac.new(secret.encode(), timestamps[0].encode() + b"." + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, signature) for signature in signatures)


def body_signature_valid(secret, header, body):
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, signature) for signature in header.split(","))


def settle(timeout=15):
    """Wait until the in-process scheduler has nothing queued or running. The SQLite test
    database (in-memory, shared cache) fails a write at once when another thread writes, so
    the test thread only touches the database while deliveries are at rest."""
    assert scheduler.wait_idle(timeout)


def wait_delivered(count=1, timeout=15):
    settle(timeout)
    return list(WebhookDelivery.objects.order_by("created_at"))[:count]


def test_customer_change_arrives_signed_and_verifies(api_client):
    with Receiver() as receiver:
        endpoint = create_endpoint(api_client, receiver.url, ["customer.*"])
        secret = endpoint["secret"]
        assert secret.startswith("whsec_")
        response = api_client.post("/v1/customers", {"email": "ada@example.com", "first_name": "Ada"})
        assert response.status_code == 201
        customer_id = response.json()["id"]
        settle()
        api_client.patch(f"/v1/customers/{customer_id}", {"first_name": "Augusta"})

        assert receiver.wait_for(2)
        wait_delivered()
        first, second = receiver.requests[:2]
        for request in (first, second):
            headers = request.headers
            # Standard Webhooks, with the reference library.
            assert Webhook(secret).verify(request.body, headers)["object"] == "event"
            # Stripe style and the plain body signature.
            assert stripe_style_valid(secret, headers["Stateset-Signature"], request.body)
            assert body_signature_valid(secret, headers["X-StateSet-Signature"], request.body)
            assert headers["Content-Type"] == "application/json"
        # A tampered body or another secret does not verify.
        with pytest.raises(WebhookVerificationError):
            Webhook(secret).verify(first.body.replace(b"Ada", b"Eve"), first.headers)
        assert not stripe_style_valid("whsec_other", first.headers["Stateset-Signature"], first.body)

        created, updated = sorted((first.json, second.json), key=lambda payload: payload["sequence"])
        assert created["type"] == "customer.created"
        assert created["data"]["object"]["email"] == "ada@example.com"
        assert updated["type"] == "customer.updated"
        assert updated["data"]["previous_attributes"]["first_name"] == "Ada"
        assert (created["sequence"], updated["sequence"]) == (1, 2)
        assert created["created"] <= updated["created"]
        assert created["livemode"] is True and created["api_version"] == "2024-01-01"
        assert first.headers["webhook-id"] == first.json["id"]
        # The same event through the Events API.
        assert api_client.get(f"/v1/events/{created['id']}").json() == created

    deliveries = api_client.get(f"/v1/webhooks/{endpoint['id']}/deliveries").json()["data"]
    assert {d["status"] for d in deliveries} == {"succeeded"}
    attempt = deliveries[0]["attempts"][0]
    assert attempt["status_code"] == 200 and attempt["succeeded"] is True
    assert attempt["response_excerpt"] == '{"received": true}'
    assert attempt["latency_ms"] >= 0


def test_500_then_200_is_delivered_twice_and_marked_delivered(api_client):
    with Receiver(responses=[500, 200]) as receiver:
        create_endpoint(api_client, receiver.url)
        api_client.post("/v1/customers", {"email": "retry@example.com"})
        assert receiver.wait_for(2)
        (delivery,) = wait_delivered()
        assert receiver.count == 2
        assert receiver.requests[0].json["id"] == receiver.requests[1].json["id"]
        # The retry waited for the schedule's second step (0.2 s, plus jitter).
        assert receiver.requests[1].at - receiver.requests[0].at >= 0.2

    delivery.refresh_from_db()
    assert delivery.status == "succeeded" and delivery.delivered_at is not None
    attempts = list(delivery.attempts.order_by("number"))
    assert [(a.number, a.status_code, a.succeeded) for a in attempts] == [(1, 500, False), (2, 200, True)]
    assert attempts[0].error == "HTTP 500" and attempts[0].response_excerpt == '{"error": "nope"}'
    body = api_client.get(f"/v1/webhook_deliveries/{delivery.pk}").json()
    assert body["status"] == "succeeded" and body["attempt_count"] == 2


def test_410_disables_the_endpoint_and_tells_the_organization(api_client):
    with Receiver(responses=[410]) as receiver, Receiver() as watcher:
        endpoint = create_endpoint(api_client, receiver.url, ["customer.created"])
        create_endpoint(api_client, watcher.url, ["webhook_endpoint.*"])
        api_client.post("/v1/customers", {"email": "gone@example.com"})
        assert watcher.wait_for(1)
        wait_delivered()
        assert receiver.count == 1

        body = api_client.get(f"/v1/webhooks/{endpoint['id']}").json()
        assert body["status"] == "disabled"
        assert "410" in body["disabled_reason"]
        notice = watcher.requests[0].json
        assert notice["type"] == "webhook_endpoint.disabled"
        assert notice["data"]["object"]["id"] == endpoint["id"]
        assert notice["data"]["previous_attributes"] == {"status": "enabled"}
        listed = api_client.get("/v1/events", {"type": "webhook_endpoint.disabled"}).json()["data"]
        assert [e["data"]["object"]["id"] for e in listed] == [endpoint["id"]]

        # A disabled endpoint gets nothing more.
        api_client.post("/v1/customers", {"email": "later@example.com"})
        assert scheduler.wait_idle(10)
        time.sleep(0.3)
        assert receiver.count == 1


def test_400_is_not_retried(api_client):
    with Receiver(responses=[400, 200]) as receiver:
        endpoint = create_endpoint(api_client, receiver.url)
        api_client.post("/v1/customers", {"email": "bad@example.com"})
        assert receiver.wait_for(1)
        (delivery,) = wait_delivered()
        time.sleep(1.0)  # longer than the whole (test) retry schedule
        assert receiver.count == 1
    delivery.refresh_from_db()
    assert delivery.status == "failed" and delivery.attempt_count == 1 and delivery.last_status_code == 400
    assert api_client.get(f"/v1/webhooks/{endpoint['id']}").json()["status"] == "enabled"


@pytest.mark.parametrize("status", [408, 409, 429, 503])
def test_retryable_statuses_are_retried(api_client, status):
    with Receiver(responses=[status, 200]) as receiver:
        create_endpoint(api_client, receiver.url)
        api_client.post("/v1/customers", {"email": f"s{status}@example.com"})
        assert receiver.wait_for(2)
        (delivery,) = wait_delivered()
    delivery.refresh_from_db()
    assert delivery.status == "succeeded" and delivery.attempt_count == 2


def test_timeouts_are_retried_and_the_schedule_runs_out(api_client, settings):
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.3
    settings.WEBHOOK_RETRY_SCHEDULE = [0, 0.1, 0.1]
    with Receiver(delay=1.0) as receiver:
        create_endpoint(api_client, receiver.url)
        api_client.post("/v1/customers", {"email": "slow@example.com"})
        assert receiver.wait_for(3)
        (delivery,) = wait_delivered()
    delivery.refresh_from_db()
    assert delivery.status == "failed" and delivery.attempt_count == 3
    assert "Timed out" in delivery.last_error and "exhausted" in delivery.last_error
    assert all(attempt.status_code is None for attempt in delivery.attempts.all())


def test_a_run_of_failures_disables_the_endpoint(api_client, settings):
    settings.WEBHOOK_DISABLE_AFTER_FAILURES = 3
    settings.WEBHOOK_DISABLE_AFTER_SECONDS = 0
    with Receiver(responses=[500]) as receiver:
        endpoint = create_endpoint(api_client, receiver.url, ["customer.created"])
        for index in range(2):
            api_client.post("/v1/customers", {"email": f"f{index}@example.com"})
            settle()
        assert receiver.wait_for(3)
        wait_delivered()
        stored = WebhookEndpoint.objects.get(pk=endpoint["id"])
        assert stored.status == "disabled"
        assert stored.disabled_reason.startswith("3 failed attempts in a row")
        assert Event.objects.filter(type="webhook_endpoint.disabled", object_id=endpoint["id"]).count() == 1
        assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"failed"}
        # Re-enabling starts a new run and lets a manual retry through.
        assert api_client.post(f"/v1/webhooks/{endpoint['id']}/enable").json()["status"] == "enabled"
        receiver.responses = [200]
        delivery = WebhookDelivery.objects.first()
        assert api_client.post(f"/v1/webhook_deliveries/{delivery.pk}/retry").status_code == 200
        wait_delivered()
        delivery.refresh_from_db()
        assert delivery.status == "succeeded"
        assert WebhookEndpoint.objects.get(pk=endpoint["id"]).consecutive_failures == 0


def test_a_short_burst_of_failures_does_not_disable(api_client, settings):
    settings.WEBHOOK_DISABLE_AFTER_FAILURES = 2
    settings.WEBHOOK_DISABLE_AFTER_SECONDS = 3600  # the run must also last an hour
    with Receiver(responses=[500, 500, 500, 200]) as receiver:
        endpoint = create_endpoint(api_client, receiver.url)
        api_client.post("/v1/customers", {"email": "burst@example.com"})
        assert receiver.wait_for(4)
        wait_delivered()
    assert WebhookEndpoint.objects.get(pk=endpoint["id"]).status == "enabled"


def test_rolled_back_transaction_sends_nothing(api_client, organization):
    with Receiver() as receiver:
        create_endpoint(api_client, receiver.url)
        with pytest.raises(RuntimeError), transaction.atomic():
            customer_create(
                organization=organization, actor=Actor.system(organization), data={"email": "x@example.com"}
            )
            raise RuntimeError("abort")
        assert scheduler.wait_idle(5)
        time.sleep(0.3)
        assert receiver.count == 0
    assert not Event.objects.filter(type="customer.created").exists()
    assert not WebhookDelivery.objects.exists()


def test_subscriptions_and_wildcards(api_client):
    with Receiver() as orders, Receiver() as customers, Receiver() as exact, Receiver() as everything:
        create_endpoint(api_client, orders.url, ["order.*"])
        create_endpoint(api_client, customers.url, ["customer.*"])
        create_endpoint(api_client, exact.url, ["customer.updated"])
        create_endpoint(api_client, everything.url, ["*"])
        api_client.post("/v1/customers", {"email": "w@example.com"})
        wait_delivered()
        assert (orders.count, customers.count, exact.count, everything.count) == (0, 1, 0, 1)


def test_rotated_secret_old_and_new_both_verify(api_client):
    with Receiver() as receiver:
        endpoint = create_endpoint(api_client, receiver.url)
        old = endpoint["secret"]
        rotated = api_client.post(f"/v1/webhooks/{endpoint['id']}/rotate_secret").json()
        new = rotated["secret"]
        assert new != old and new.startswith("whsec_") and rotated["secret_rotation_ends_at"]
        api_client.post("/v1/customers", {"email": "rot@example.com"})
        assert receiver.wait_for(1)
        wait_delivered()
        request = receiver.requests[0]
        for secret in (old, new):
            assert Webhook(secret).verify(request.body, request.headers)
            assert stripe_style_valid(secret, request.headers["Stateset-Signature"], request.body)
            assert body_signature_valid(secret, request.headers["X-StateSet-Signature"], request.body)
        # Once the overlap is over only the new secret signs.
        WebhookEndpoint.objects.filter(pk=endpoint["id"]).update(previous_secret_expires_at="2000-01-01T00:00:00Z")
        api_client.post("/v1/customers", {"email": "rot2@example.com"})
        assert receiver.wait_for(2)
        wait_delivered()
        later = receiver.requests[1]
        assert Webhook(new).verify(later.body, later.headers)
        with pytest.raises(WebhookVerificationError):
            Webhook(old).verify(later.body, later.headers)


def test_test_event_goes_to_that_endpoint_only(api_client):
    with Receiver() as target, Receiver() as other:
        endpoint = create_endpoint(api_client, target.url, ["order.created"])
        create_endpoint(api_client, other.url, ["*"])
        response = api_client.post(f"/v1/webhooks/{endpoint['id']}/test")
        assert response.status_code == 200
        assert response.json()["object"] == "webhook_delivery" and response.json()["endpoint"] == endpoint["id"]
        assert target.wait_for(1)
        wait_delivered()
        assert target.requests[0].json["type"] == "webhook_endpoint.test"
        assert other.count == 0


def test_manual_retry_of_a_failed_delivery(api_client):
    with Receiver(responses=[400, 200]) as receiver:
        create_endpoint(api_client, receiver.url)
        api_client.post("/v1/customers", {"email": "manual@example.com"})
        (delivery,) = wait_delivered()
        delivery.refresh_from_db()
        assert delivery.status == "failed"
        response = api_client.post(f"/v1/webhook_deliveries/{delivery.pk}/retry")
        assert response.status_code == 200
        wait_delivered()
        assert receiver.count == 2
    body = api_client.get(f"/v1/webhook_deliveries/{delivery.pk}").json()
    assert body["status"] == "succeeded"
    assert [a["status_code"] for a in body["attempts"]] == [400, 200]


def test_retries_survive_a_restart_of_the_embedded_scheduler(api_client, settings):
    """The in-memory timer is lost when the process stops; the delivery row is not, and the
    scheduler's sweeps pick it up once it is due."""
    settings.WEBHOOK_RETRY_SCHEDULE = [0, 1.0]
    with Receiver(responses=[503, 200]) as receiver:
        create_endpoint(api_client, receiver.url)
        api_client.post("/v1/customers", {"email": "restart@example.com"})
        assert receiver.wait_for(1)
        deadline = time.monotonic() + 5
        while scheduler.counts() != (1, 0) and time.monotonic() < deadline:  # the retry is parked
            time.sleep(0.01)
        scheduler.stop()  # the process "dies" with the retry timer in memory
        delivery = WebhookDelivery.objects.get()
        assert delivery.status == "pending" and delivery.attempt_count == 1
        time.sleep(1.5)
        assert receiver.count == 1
        scheduler.start()  # a new process (autostart does this on its first request)
        assert receiver.wait_for(2, timeout=10)
        wait_delivered()
    assert WebhookDelivery.objects.get().status == "succeeded"


def test_private_urls_refused_at_delivery_time_too(api_client, settings):
    with Receiver() as receiver:
        create_endpoint(api_client, receiver.url)
        settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
        api_client.post("/v1/customers", {"email": "ssrf@example.com"})
        (delivery,) = wait_delivered()
        assert receiver.count == 0
    delivery.refresh_from_db()
    assert delivery.status == "failed" and delivery.last_error.startswith("Refused:")


def test_test_mode_events_go_to_test_mode_endpoints_only(api_client, test_secret_key):
    sandbox = api_client.as_key(test_secret_key)
    with Receiver() as live, Receiver() as test:
        create_endpoint(api_client, live.url)
        create_endpoint(sandbox, test.url)
        sandbox.post("/v1/customers", {"email": "sandbox@example.com"})
        wait_delivered()
        assert (live.count, test.count) == (0, 1)
        assert test.requests[0].json["livemode"] is False
