"""API representations of events, webhook endpoints and deliveries. Beside the domain (not in
api/) because services put the endpoint's representation into its own events."""

import re

from rest_framework import serializers

from apps.core.serializers import ResourceSerializer

from .models import Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint

# Subscriptions per endpoint: enough for every event type one by one, bounded all the same.
MAX_EVENT_TYPES = 500
EVENT_PATTERN = re.compile(r"^(\*|[a-z0-9_]+(\.[a-z0-9_]+)*(\.\*)?)$")


class EventSerializer(ResourceSerializer):
    object_name = "event"
    # The representation is the webhook payload, declared once in `event_payload` (what receivers
    # get is what the API shows); a row plan would be a second declaration of the same shape.
    row_plan_opt_out = "an event is shown as its webhook payload (apps.events.services.event_payload)"

    class Meta:
        model = Event
        fields = ["id"]

    def to_representation(self, instance):
        from .services import event_payload

        return event_payload(instance)


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
