"""`manage.py retry_failed_deliveries` and `manage.py replay_events`, against a real receiver."""

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from apps.core.context import Actor
from apps.crm.services import customer_create
from apps.events.embedded import scheduler
from apps.events.models import Event, WebhookDelivery
from apps.events.services import webhook_endpoint_create
from tests.webhooks_receiver import Receiver

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def webhook_settings(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    settings.WEBHOOK_DELIVERY_BACKEND = "embedded"
    settings.WEBHOOK_RETRY_SCHEDULE = [0]
    settings.WEBHOOK_SWEEP_INTERVAL_SECONDS = 0.5
    yield
    scheduler.wait_idle(10)
    scheduler.stop()


def settle():
    assert scheduler.wait_idle(15)


def make_customers(organization, count):
    actor = Actor.system(organization)
    for index in range(count):
        customer_create(organization=organization, actor=actor, data={"email": f"c{index}@example.com"})
        settle()


def test_retry_failed_deliveries(organization, capsys):
    with Receiver(responses=[500, 500, 200]) as receiver:
        endpoint, _ = webhook_endpoint_create(
            organization=organization, actor=Actor.system(organization), data={"url": receiver.url, "events": ["*"]}
        )
        make_customers(organization, 2)
        assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"failed"}
        call_command("retry_failed_deliveries", "--endpoint", endpoint.pk)
        settle()
        assert "2 failed deliveries queued again." in capsys.readouterr().out
        assert receiver.count == 4
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"succeeded"}


def test_replay_events_of_a_period(organization, capsys):
    actor = Actor.system(organization)
    make_customers(organization, 3)  # before the endpoint existed
    Event.objects.filter(data__object__email="c0@example.com").update(created_at=timezone.now() - timedelta(days=2))
    with Receiver() as receiver:
        endpoint, _ = webhook_endpoint_create(
            organization=organization, actor=actor, data={"url": receiver.url, "events": ["customer.*"]}
        )
        since = (timezone.now() - timedelta(days=1)).isoformat()
        call_command("replay_events", "--endpoint", endpoint.pk, "--since", since)
        settle()
        assert "2 events queued" in capsys.readouterr().out
        assert sorted(r.json["data"]["object"]["email"] for r in receiver.requests) == [
            "c1@example.com",
            "c2@example.com",
        ]
        # Replaying again re-sends the same events (same ids: receivers deduplicate).
        call_command(
            "replay_events", "--endpoint", endpoint.pk, "--since", since, "--until", timezone.now().isoformat()
        )
        settle()
        assert receiver.count == 4
        assert {r.headers["webhook-id"] for r in receiver.requests[2:]} == {
            r.headers["webhook-id"] for r in receiver.requests[:2]
        }
    assert WebhookDelivery.objects.filter(endpoint=endpoint, status="succeeded").count() == 2


def test_replay_refuses_bad_input(organization):
    with pytest.raises(CommandError):
        call_command("replay_events", "--endpoint", "we_missing", "--since", "2024-01-01")
    endpoint, _ = webhook_endpoint_create(
        organization=organization,
        actor=Actor.system(organization),
        data={"url": "http://127.0.0.1:9/x", "events": ["*"]},
    )
    with pytest.raises(CommandError):
        call_command("replay_events", "--endpoint", endpoint.pk, "--since", "yesterday")
    with pytest.raises(CommandError):
        call_command("replay_events", "--endpoint", endpoint.pk, "--since", "2024-02-01", "--until", "2024-01-01")
