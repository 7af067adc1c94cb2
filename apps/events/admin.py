from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from apps.core.admin import ServiceAdmin, TenantAdminMixin, TenantReadOnlyAdmin

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
class WebhookEndpointAdmin(ServiceAdmin):
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

    def _input(self, form):
        return {name: form.cleaned_data[name] for name in services.ENDPOINT_FIELDS if name in form.cleaned_data}

    def service_create(self, request, actor, form):
        endpoint, secret = services.webhook_endpoint_create(
            organization=form.cleaned_data["organization"], actor=actor, data=self._input(form)
        )
        self.message_user(request, f"Signing secret (shown once): {secret}", level=messages.WARNING)
        return endpoint

    def service_update(self, request, actor, obj, form):
        return services.webhook_endpoint_update(
            organization=obj.organization, actor=actor, instance=obj, data=self._input(form)
        )

    def service_delete(self, request, actor, obj):
        services.webhook_endpoint_delete(organization=obj.organization, actor=actor, instance=obj)

    def _each(self, request, queryset, action, done):
        service = getattr(services, f"webhook_endpoint_{action}")
        self.run_object_service(request, queryset, service, operation=action, done=done, param="endpoint")

    @admin.action(description="Enable selected endpoints")
    def enable_endpoints(self, request, queryset):
        self._each(request, queryset, "enable", "{count} endpoints enabled.")

    @admin.action(description="Disable selected endpoints")
    def disable_endpoints(self, request, queryset):
        self._each(request, queryset, "disable", "{count} endpoints disabled.")

    @admin.action(description="Send a test event")
    def send_test_event(self, request, queryset):
        self._each(request, queryset, "test", "{count} test events queued.")

    @admin.action(description="Rotate signing secrets (old ones keep signing for 24 h)")
    def rotate_secrets(self, request, queryset):
        def rotate(endpoint, actor):
            _, secret = services.webhook_endpoint_rotate_secret(
                organization=endpoint.organization, actor=actor, endpoint=endpoint
            )
            self.message_user(request, f"New secret for {endpoint.url} (shown once): {secret}", level=messages.WARNING)

        self.run_service_action(request, queryset, rotate, done=None, operation="rotate_secret")


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
        self.run_object_service(
            request,
            queryset,
            services.webhook_delivery_retry,
            operation="retry",
            done="{count} deliveries queued for another attempt.",
            param="delivery",
        )
