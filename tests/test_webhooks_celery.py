"""Webhook delivery through a real Celery worker subprocess, a private Redis and the PostgreSQL
test database (data committed by transactional tests, so the worker sees it)."""

import time

import pytest
from django.db import connection, transaction

from apps.core.context import Actor
from apps.crm.services import customer_create
from apps.events.models import Event, WebhookDelivery
from tests.webhooks_receiver import Receiver
from tests.webhooks_services import PrivateRedis, Worker, point_celery_at

pytestmark = [
    pytest.mark.redis,
    pytest.mark.postgres,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
]

WORKER_ENV = {
    "WEBHOOK_RETRY_SCHEDULE": "0,0.5,1,2,4",
    "WEBHOOK_TIMEOUT_SECONDS": "3",
    "WEBHOOK_SWEEP_INTERVAL_SECONDS": "1",
}


@pytest.fixture
def private_redis():
    redis = PrivateRedis().start()
    yield redis
    redis.stop()


@pytest.fixture
def webhook_worker(transactional_db, private_redis, settings, tmp_path):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    settings.WEBHOOK_DELIVERY_BACKEND = "celery"
    settings.WEBHOOK_TIMEOUT_SECONDS = 3
    point_celery_at(private_redis.url)
    database = connection.settings_dict
    database_url = (
        f"postgres://{database['USER']}@{database['HOST'] or '127.0.0.1'}:{database['PORT'] or 5432}/{database['NAME']}"
    )
    process = Worker(
        broker_url=private_redis.url,
        database_url=database_url,
        log_path=tmp_path / "worker.log",
        extra_env=WORKER_ENV,
    )
    process.start()
    yield process
    process.stop()
    from django.conf import settings as django_settings

    point_celery_at(django_settings.CELERY_BROKER_URL)


def create_endpoint(api_client, url):
    response = api_client.post("/v1/webhooks", {"url": url, "events": ["customer.*"]})
    assert response.status_code == 201, response.content
    return response.json()


def wait_until(condition, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_worker_delivers_a_customer_change(api_client, webhook_worker):
    with Receiver() as receiver:
        create_endpoint(api_client, receiver.url)
        api_client.post("/v1/customers", {"email": "celery@example.com"})
        assert receiver.wait_for(1, timeout=30), webhook_worker.log()
        assert receiver.requests[0].json["type"] == "customer.created"
        assert wait_until(lambda: WebhookDelivery.objects.filter(status="succeeded").count() == 1), webhook_worker.log()


def test_kill_9_during_a_delivery_and_the_event_still_arrives(api_client, webhook_worker, record_property):
    with Receiver(hold=True) as receiver:
        create_endpoint(api_client, receiver.url)
        api_client.post("/v1/customers", {"email": "killed@example.com"})
        assert receiver.wait_for(1, timeout=30), webhook_worker.log()  # the worker is mid-request
        killed_at = time.monotonic()
        webhook_worker.kill()
        receiver.release()
        webhook_worker.start()
        assert receiver.wait_for(2, timeout=90), webhook_worker.log()
        recovered_at = receiver.requests[1].at
        assert wait_until(lambda: WebhookDelivery.objects.filter(status="succeeded").count() == 1), webhook_worker.log()
        seconds = recovered_at - killed_at
        record_property("kill_9_recovery_seconds", round(seconds, 2))
        print(f"\nkill -9 during a delivery: the event arrived {seconds:.1f} s after the kill")
        first, second = receiver.requests[:2]
        # At least once: the receiver saw it twice, with the same id to deduplicate on.
        assert first.json["id"] == second.json["id"] == first.headers["webhook-id"]
        delivery = WebhookDelivery.objects.get()
        assert [a.status_code for a in delivery.attempts.order_by("number")] == [200]


def test_events_emitted_while_redis_is_down_are_delivered_after_it_returns(api_client, webhook_worker, private_redis):
    with Receiver() as receiver:
        create_endpoint(api_client, receiver.url)
        private_redis.stop()
        started = time.monotonic()
        for index in range(3):
            response = api_client.post("/v1/customers", {"email": f"outage{index}@example.com"})
            assert response.status_code == 201  # the write does not fail because the broker is down
        assert time.monotonic() - started < 20
        assert WebhookDelivery.objects.filter(status="pending").count() == 3
        time.sleep(1)
        assert receiver.count == 0
        restarted_at = time.monotonic()
        private_redis.start()
        assert receiver.wait_for(3, timeout=90), webhook_worker.log()
        print(f"\nredis back: 3 events delivered {receiver.requests[2].at - restarted_at:.1f} s after its restart")
        assert {r.json["data"]["object"]["email"] for r in receiver.requests} == {
            f"outage{index}@example.com" for index in range(3)
        }
        assert wait_until(lambda: WebhookDelivery.objects.filter(status="succeeded").count() == 3), webhook_worker.log()


def test_a_rolled_back_transaction_emits_nothing(api_client, webhook_worker, organization):
    with Receiver() as receiver:
        create_endpoint(api_client, receiver.url)
        with pytest.raises(RuntimeError), transaction.atomic():
            customer_create(
                organization=organization, actor=Actor.system(organization), data={"email": "rolled@example.com"}
            )
            raise RuntimeError("roll back")
        api_client.post("/v1/customers", {"email": "kept@example.com"})
        assert receiver.wait_for(1, timeout=30), webhook_worker.log()
        time.sleep(2)  # several sweeps later, still only the committed one
        assert [r.json["data"]["object"]["email"] for r in receiver.requests] == ["kept@example.com"]
    assert not Event.objects.filter(data__object__email="rolled@example.com").exists()
