"""Webhook endpoint event payloads (apps.core.payloads): what `webhook_endpoint.*` events carry,
per API version, written out field by field so the API serializer can change without them."""

from apps.core.payloads import payload

ENDPOINT_FIELDS_2024_01_01 = ("id", "url", "description", "events", "metadata", "status", "disabled_reason")


@payload("events.WebhookEndpoint", "webhook_endpoint", api_version="2024-01-01")
def webhook_endpoint_payload(endpoint):
    # Never the secret: events are stored and delivered to every subscriber of the type.
    return {
        "object": "webhook_endpoint",
        **{name: getattr(endpoint, name) for name in ENDPOINT_FIELDS_2024_01_01},
        "disabled_at": endpoint.disabled_at,
        "secret_rotation_ends_at": endpoint.previous_secret_expires_at,
        "created_at": endpoint.created_at,
        "updated_at": endpoint.updated_at,
        "livemode": endpoint.organization.livemode,
    }
