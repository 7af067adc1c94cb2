from django.db.models import Prefetch

from .models import Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint


def event_list():
    # The payload reads `organization.livemode`: joined, not one query per event.
    return Event.objects.select_related("organization")


def webhook_endpoint_list():
    return WebhookEndpoint.objects.all()


def webhook_delivery_list():
    """Deliveries with their event type and every attempt (one extra query per page)."""
    return WebhookDelivery.objects.select_related("event").prefetch_related(
        Prefetch("attempts", queryset=WebhookAttempt.objects.order_by("number"))
    )
