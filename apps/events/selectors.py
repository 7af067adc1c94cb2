"""Reads of events, webhook endpoints and deliveries. A selector takes the organization and
returns its rows only: scoping is never left to the caller."""

from django.db.models import Prefetch

from .models import Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint


def event_list(*, organization):
    # The payload reads `organization.livemode`: joined, not one query per event.
    return Event.objects.for_org(organization).select_related("organization")


def webhook_endpoint_list(*, organization):
    return WebhookEndpoint.objects.for_org(organization)


def webhook_delivery_list(*, organization):
    """Deliveries with their event type and every attempt (one extra query per page)."""
    return (
        WebhookDelivery.objects.for_org(organization)
        .select_related("event")
        .prefetch_related(Prefetch("attempts", queryset=WebhookAttempt.objects.order_by("number")))
    )
