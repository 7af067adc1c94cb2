"""Webhook endpoint statuses (apps.core.states): enabled <-> disabled, by a user, or by the
delivery health check (410 Gone, or a long run of failures)."""

from apps.core.states import StateMachine, register

from .models import WebhookEndpointStatus

WEBHOOK_ENDPOINT_STATES = StateMachine(
    start=(WebhookEndpointStatus.ENABLED,),
    moves={
        WebhookEndpointStatus.ENABLED: (WebhookEndpointStatus.DISABLED,),
        WebhookEndpointStatus.DISABLED: (WebhookEndpointStatus.ENABLED,),
    },
)

register("events.WebhookEndpoint", WEBHOOK_ENDPOINT_STATES)
