from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from apps.core.admin import TenantAdminMixin, TenantReadOnlyAdmin, admin_actor
from apps.core.errors import APIError

from . import services
from .models import Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from .ssrf import UnsafeURL, check_url


@admin.register(Event)
class EventAdmin(TenantReadOnlyAdmin):
    list_display = ["id", "type", "object_id", "sequence", "organization", "created_at"]
    list_filter = ["type", "organization"]
    search_fields = ["id", "object_id", "type", "request_id"]
    date_hierarchy = "created_at"


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(max_length=2048, assume_scheme="https")

    class Meta:
        model = WebhookEndpoint
        fields = ["organization", "url", "description", "events", "metadata"]

    def clean_url(self):
        url = self.cleaned_data["url"]
        try:
            check_url(url, unresolvable_ok=True)
        except UnsafeURL as exc:
            raise ValidationError(str(exc)) from None
        return url

    def clean_events(self):
        events = self.cleaned_data["events"]
        if not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events):
            raise ValidationError('A JSON list of event types, e.g. ["order.*", "customer.created"] or ["*"].')
        return events


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(TenantAdminMixin, admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ["url", "status", "organization", "consecutive_failures", "created_at"]
    list_filter = ["status", "organization"]
    search_fields = ["id", "url", "description"]
    readonly_fields = [
        "id",
        "status",
        "disabled_reason",
        "disabled_at",
        "consecutive_failures",
        "failing_since",
        "previous_secret_expires_at",
        "created_by",
        "created_at",
        "updated_at",
    ]
    list_select_related = ["organization"]
    ordering = ["-created_at"]
    actions = ["enable_endpoints", "disable_endpoints", "send_test_event", "rotate_secrets"]

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "organization"] if obj else self.readonly_fields

    def save_model(self, request, obj, form, change):
        """Through the services (secret, audit row), like the API."""
        actor = admin_actor(request, obj.organization)
        data = {name: form.cleaned_data[name] for name in services.ENDPOINT_FIELDS if name in form.cleaned_data}
        try:
            if change:
                services.webhook_endpoint_update(organization=obj.organization, actor=actor, instance=obj, data=data)
            else:
                endpoint, secret = services.webhook_endpoint_create(
                    organization=obj.organization, actor=actor, data=data
                )
                obj.pk = endpoint.pk
                self.message_user(request, f"Signing secret (shown once): {secret}", level=messages.WARNING)
        except APIError as exc:
            self.report_api_error(request, exc)

    def delete_model(self, request, obj):
        services.webhook_endpoint_delete(
            organization=obj.organization, actor=admin_actor(request, obj.organization), instance=obj
        )

    def _each(self, request, queryset, function):
        done = 0
        for endpoint in queryset.select_related("organization"):
            try:
                function(endpoint, admin_actor(request, endpoint.organization))
                done += 1
            except APIError as exc:
                self.report_api_error(request, exc)
        return done

    @admin.action(description="Enable selected endpoints")
    def enable_endpoints(self, request, queryset):
        done = self._each(
            request,
            queryset,
            lambda e, actor: services.webhook_endpoint_enable(organization=e.organization, actor=actor, endpoint=e),
        )
        self.message_user(request, f"{done} endpoints enabled.")

    @admin.action(description="Disable selected endpoints")
    def disable_endpoints(self, request, queryset):
        done = self._each(
            request,
            queryset,
            lambda e, actor: services.webhook_endpoint_disable(organization=e.organization, actor=actor, endpoint=e),
        )
        self.message_user(request, f"{done} endpoints disabled.")

    @admin.action(description="Send a test event")
    def send_test_event(self, request, queryset):
        done = self._each(
            request,
            queryset,
            lambda e, actor: services.webhook_endpoint_test(organization=e.organization, actor=actor, endpoint=e),
        )
        self.message_user(request, f"{done} test events queued.")

    @admin.action(description="Rotate signing secrets (old ones keep signing for 24 h)")
    def rotate_secrets(self, request, queryset):
        def rotate(endpoint, actor):
            _, secret = services.webhook_endpoint_rotate_secret(
                organization=endpoint.organization, actor=actor, endpoint=endpoint
            )
            self.message_user(request, f"New secret for {endpoint.url} (shown once): {secret}", level=messages.WARNING)

        self._each(request, queryset, rotate)


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    fields = ["number", "created_at", "status_code", "succeeded", "latency_ms", "error", "response_excerpt"]
    readonly_fields = fields
    can_delete = False
    ordering = ["number"]

    def has_view_permission(self, request, obj=None):
        # Attempts belong to their delivery: whoever the policy table lets see the delivery
        # (WebhookDeliveryAdmin) sees its attempts, without a Django model permission of their own.
        return request.user.is_active and request.user.is_staff

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(TenantAdminMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "event_type",
        "endpoint",
        "status",
        "attempt_count",
        "last_status_code",
        "next_attempt_at",
        "created_at",
    ]
    list_filter = ["status", "organization"]
    search_fields = ["id", "event__id", "event__type", "endpoint__url"]
    list_select_related = ["event", "endpoint", "organization"]
    readonly_fields = [
        "id",
        "organization",
        "event",
        "endpoint",
        "status",
        "attempt_count",
        "next_attempt_at",
        "last_attempt_at",
        "last_status_code",
        "last_error",
        "delivered_at",
        "created_at",
        "updated_at",
    ]
    fields = readonly_fields
    inlines = [WebhookAttemptInline]
    ordering = ["-created_at"]
    actions = ["retry_deliveries"]

    @admin.display(description="Event type", ordering="event__type")
    def event_type(self, delivery):
        return delivery.event.type

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Retry selected deliveries now")
    def retry_deliveries(self, request, queryset):
        done = 0
        for delivery in queryset.select_related("organization"):
            try:
                services.webhook_delivery_retry(
                    organization=delivery.organization,
                    actor=admin_actor(request, delivery.organization),
                    delivery=delivery,
                )
                done += 1
            except APIError as exc:
                self.report_api_error(request, exc)
        self.message_user(request, f"{done} deliveries queued for another attempt.")
