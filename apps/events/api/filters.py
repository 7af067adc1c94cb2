import django_filters

from apps.core.filters import CHOICE_OPS, DATE_OPS, RANGE_OPS, TEXT_OPS, ResourceFilterSet

from ..models import Event, WebhookDelivery, WebhookEndpoint


class EventFilterSet(ResourceFilterSet):
    class Meta:
        model = Event
        fields = {
            "type": TEXT_OPS,
            "object_type": CHOICE_OPS,
            "object_id": CHOICE_OPS,
            "sequence": RANGE_OPS,
            "created_at": DATE_OPS,
        }


class WebhookEndpointFilterSet(ResourceFilterSet):
    class Meta:
        model = WebhookEndpoint
        fields = {"status": CHOICE_OPS, "url": TEXT_OPS, "created_at": DATE_OPS}


class _IdInFilter(django_filters.BaseInFilter, django_filters.CharFilter):
    pass


class WebhookDeliveryFilterSet(ResourceFilterSet):
    # By id without loading the related row (the default ModelChoiceFilter checks it exists).
    event = django_filters.CharFilter(field_name="event_id")
    event__eq = django_filters.CharFilter(field_name="event_id")
    event__in = _IdInFilter(field_name="event_id", lookup_expr="in")
    endpoint = django_filters.CharFilter(field_name="endpoint_id")
    endpoint__eq = django_filters.CharFilter(field_name="endpoint_id")
    endpoint__in = _IdInFilter(field_name="endpoint_id", lookup_expr="in")

    class Meta:
        model = WebhookDelivery
        fields = {
            "status": CHOICE_OPS,
            "event": ("eq", "in"),
            "endpoint": ("eq", "in"),
            "last_status_code": RANGE_OPS,
            "created_at": DATE_OPS,
        }
