"""API representations of events, webhook endpoints and deliveries. Beside the domain (not in
api/) because services put the endpoint's representation into its own events."""

import re

from rest_framework import serializers

from apps.core.serializers import Computed, ResourceSerializer

from .models import Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint

# Subscriptions per endpoint: enough for every event type one by one, bounded all the same.
MAX_EVENT_TYPES = 500
EVENT_PATTERN = re.compile(r"^(\*|[a-z0-9_]+(\.[a-z0-9_]+)*(\.\*)?)$")


def _event_request(data, columns):
    return {"id": columns["request_id"] or None, "idempotency_key": columns["idempotency_key"] or None}


def _unix_created(data, columns):
    return int(columns["created_at"].timestamp())


class EventSerializer(ResourceSerializer):
    """The event as `GET /v1/events/<id>` shows it and as webhook receivers get it (API contract,
    "Webhooks"): one declaration for both, built from rows on list pages."""

    object_name = "event"
    created = serializers.IntegerField(read_only=True)
    livemode = serializers.BooleanField(source="organization.livemode", read_only=True)
    request = serializers.DictField(read_only=True)
    computed_fields = {
        "created": Computed(_unix_created, columns=("created_at",)),
        "request": Computed(_event_request, columns=("request_id", "idempotency_key")),
    }

    class Meta:
        model = Event
        fields = ["id", "type", "api_version", "created", "livemode", "sequence", "data", "request"]
        read_only_fields = fields


class WebhookEndpointSerializer(ResourceSerializer):
    object_name = "webhook_endpoint"
    events = serializers.ListField(
        child=serializers.CharField(max_length=100), min_length=1, max_length=MAX_EVENT_TYPES
    )
    secret_rotation_ends_at = serializers.DateTimeField(source="previous_secret_expires_at", read_only=True)

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "url",
            "description",
            "events",
            "metadata",
            "status",
            "disabled_reason",
            "disabled_at",
            "secret_rotation_ends_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "status", "disabled_reason", "disabled_at", "created_at", "updated_at"]

    def to_internal_value(self, data):
        # Stripe's name for `events`.
        if isinstance(data, dict) and "enabled_events" in data and "events" not in data:
            data = {("events" if key == "enabled_events" else key): value for key, value in data.items()}
        return super().to_internal_value(data)

    def validate_events(self, value):
        if not value:
            raise serializers.ValidationError('List at least one event type, or "*" for all.')
        for name in value:
            if not EVENT_PATTERN.match(name):
                raise serializers.ValidationError(
                    f'{name!r} is not an event type: use names like "order.created", "order.*" or "*".'
                )
        return value


class WebhookEndpointWithSecretSerializer(WebhookEndpointSerializer):
    """The endpoint with its signing secret, shown once: at creation and at rotation."""

    secret = serializers.CharField(read_only=True, help_text="The signing secret (whsec_...), shown this once.")

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "secret"]


class WebhookAttemptSerializer(ResourceSerializer):
    object_name = "webhook_attempt"

    class Meta:
        model = WebhookAttempt
        fields = [
            "id",
            "number",
            "url",
            "status_code",
            "succeeded",
            "error",
            "latency_ms",
            "response_excerpt",
            "created_at",
        ]
        read_only_fields = fields


class WebhookDeliverySerializer(ResourceSerializer):
    object_name = "webhook_delivery"
    event = serializers.CharField(source="event_id", read_only=True)
    endpoint = serializers.CharField(source="endpoint_id", read_only=True)
    event_type = serializers.CharField(source="event.type", read_only=True)
    attempts = WebhookAttemptSerializer(many=True, read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "event",
            "event_type",
            "endpoint",
            "status",
            "attempt_count",
            "next_attempt_at",
            "last_attempt_at",
            "last_status_code",
            "last_error",
            "delivered_at",
            "attempts",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields
