"""The outbox: one Event row per domain change, written in the changing transaction."""

from django.db import models

from apps.core.fields import JSONField
from apps.core.ids import new_id
from apps.core.models import ModeMarkedIdModel, TenantModel, TenantQuerySet


def new_event_id():
    return new_id("evt")


class Event(ModeMarkedIdModel):
    id = models.CharField(primary_key=True, max_length=40, default=new_event_id, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="+")
    type = models.CharField(max_length=100)
    api_version = models.CharField(max_length=20)
    object_type = models.CharField(max_length=60)
    object_id = models.CharField(max_length=64)
    # 1, 2, 3... per object: a receiver orders and deduplicates with (object id, sequence).
    sequence = models.PositiveIntegerField()
    data = JSONField()
    request_id = models.CharField(max_length=64, blank=True, default="")
    idempotency_key = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantQuerySet.as_manager()  # for_org, like every organization's rows

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "object_id", "sequence"], name="events_event_object_seq")
        ]
        indexes = [
            models.Index(fields=["organization", "-created_at"], name="events_event_org_created"),
            models.Index(fields=["organization", "type"], name="events_event_org_type"),
        ]

    def __str__(self):
        return f"{self.type} {self.object_id} #{self.sequence}"

    @property
    def livemode(self):
        return self.organization.livemode


def new_webhook_endpoint_id():
    return new_id("we")


def new_webhook_delivery_id():
    return new_id("whd")


def new_webhook_attempt_id():
    return new_id("wha")


class WebhookEndpointStatus(models.TextChoices):
    ENABLED = "enabled"
    DISABLED = "disabled"


class WebhookEndpoint(TenantModel):
    """Where an organization wants its events POSTed. The sandbox twin is its own organization,
    so test-mode endpoints only ever receive test-mode events."""

    id = models.CharField(primary_key=True, max_length=40, default=new_webhook_endpoint_id, editable=False)
    url = models.URLField(max_length=2048)
    description = models.CharField(max_length=500, blank=True, default="")
    # Subscribed event types: exact names, prefixes ending in ".*" (`order.*`) or "*".
    events = JSONField(default=list)
    metadata = JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=16, choices=WebhookEndpointStatus.choices, default=WebhookEndpointStatus.ENABLED
    )
    disabled_reason = models.CharField(max_length=255, blank=True, default="")
    disabled_at = models.DateTimeField(null=True, blank=True)
    # Kept in clear: signing needs the secret itself (it is shown to the API only once).
    secret = models.CharField(max_length=100)
    # During a rotation the old secret signs too, until `previous_secret_expires_at`.
    previous_secret = models.CharField(max_length=100, blank=True, default="")
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    # The current run of failed attempts (reset by any success); it drives auto-disable.
    consecutive_failures = models.PositiveIntegerField(default=0)
    failing_since = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["organization", "created_at", "id"], name="events_endpoint_org_created")]

    def __str__(self):
        return self.url

    @property
    def is_enabled(self):
        return self.status == WebhookEndpointStatus.ENABLED

    def subscribes_to(self, event_type):
        return subscription_matches(self.events, event_type)

    def signing_secrets(self, now):
        """The secrets that sign a delivery made at `now`: the current one first."""
        secrets = [self.secret]
        if self.previous_secret and self.previous_secret_expires_at and self.previous_secret_expires_at > now:
            secrets.append(self.previous_secret)
        return secrets


def subscription_matches(patterns, event_type):
    """`*` matches everything; `order.*` matches every type under `order.` (also
    `order.line.updated`); anything else matches exactly."""
    for pattern in patterns:
        if pattern == "*" or pattern == event_type:
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False


class WebhookDeliveryStatus(models.TextChoices):
    PENDING = "pending"  # an attempt is due at `next_attempt_at` (or running under a lease)
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # given up: a permanent 4xx, the schedule ran out, or the endpoint is disabled


class WebhookDelivery(TenantModel):
    """One event to one endpoint; its attempts are `WebhookAttempt` rows."""

    id = models.CharField(primary_key=True, max_length=40, default=new_webhook_delivery_id, editable=False)
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(
        max_length=16, choices=WebhookDeliveryStatus.choices, default=WebhookDeliveryStatus.PENDING
    )
    attempt_count = models.PositiveIntegerField(default=0)
    # While an attempt runs this holds the claim's lease expiry: a worker killed mid-request leaves
    # the row "due" again once the lease runs out, and the sweeper re-queues it.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(fields=["organization", "event", "endpoint"], name="events_delivery_event_endpoint")
        ]
        indexes = [
            models.Index(fields=["organization", "endpoint", "created_at", "id"], name="events_delivery_org_endpoint"),
            models.Index(fields=["organization", "created_at", "id"], name="events_delivery_org_created"),
            # The sweeper looks across organizations for due work, so this one index does not start
            # with the organization; it is partial, so it only holds the (few) pending rows.
            models.Index(
                fields=["next_attempt_at"],
                name="events_delivery_due",
                condition=models.Q(status="pending"),
            ),
        ]

    def __str__(self):
        return f"{self.event_id} -> {self.endpoint_id}"


class WebhookAttempt(ModeMarkedIdModel):
    """One HTTP request of a delivery, kept for the delivery log."""

    id = models.CharField(primary_key=True, max_length=40, default=new_webhook_attempt_id, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="+")
    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveIntegerField()
    url = models.URLField(max_length=2048)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    succeeded = models.BooleanField(default=False)
    # What happened, in words: "HTTP 500", "timeout after 30 s", "connection refused"...
    error = models.CharField(max_length=500, blank=True, default="")
    latency_ms = models.PositiveIntegerField(default=0)
    response_excerpt = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "delivery", "number"], name="events_attempt_number")
        ]

    def __str__(self):
        return f"{self.delivery_id} #{self.number}"
