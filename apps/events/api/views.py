from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.core.errors import APIError
from apps.core.views import ReadOnlyResourceViewSet, ResourceViewSet, answers

from .. import selectors, services
from ..models import Event, WebhookDelivery, WebhookEndpoint
from ..serializers import (
    EventSerializer,
    WebhookDeliverySerializer,
    WebhookEndpointSerializer,
    WebhookEndpointWithSecretSerializer,
)
from .filters import EventFilterSet, WebhookDeliveryFilterSet, WebhookEndpointFilterSet


class EventViewSet(ReadOnlyResourceViewSet):
    """The organization's events (`/v1/events`), newest first."""

    model = Event
    selector = staticmethod(selectors.event_list)
    serializer_class = EventSerializer
    filterset_class = EventFilterSet
    ordering_fields = ("created_at", "sequence")
    search_fields = ("type", "object_id")


class WebhookDeliveryViewSet(ReadOnlyResourceViewSet):
    """Deliveries of events to endpoints, with every attempt (`/v1/webhook_deliveries`)."""

    model = WebhookDelivery
    selector = staticmethod(selectors.webhook_delivery_list)
    serializer_class = WebhookDeliverySerializer
    filterset_class = WebhookDeliveryFilterSet
    ordering_fields = ("created_at", "last_attempt_at", "next_attempt_at")
    search_fields = ("event__id", "event__type", "last_error")

    @action(detail=True, methods=["post"], url_path="retry")
    def retry(self, request, *args, **kwargs):
        # The action's own operation: a key scoped to `webhooks:retry` may retry and see the result.
        delivery = self.get_object(self.action)
        services.webhook_delivery_retry(organization=self.actor.organization, actor=self.actor, delivery=delivery)
        return self.serialize(self.get_object(self.action))


class WebhookEndpointViewSet(ResourceViewSet):
    """Webhook endpoints (`/v1/webhooks`): CRUD, the signing secret once at creation and at
    rotation, enable/disable, a test event, the endpoint's deliveries."""

    model = WebhookEndpoint
    selector = staticmethod(selectors.webhook_endpoint_list)
    serializer_class = WebhookEndpointSerializer
    filterset_class = WebhookEndpointFilterSet
    search_fields = ("url", "description")
    update_service = staticmethod(services.webhook_endpoint_update)
    delete_service = staticmethod(services.webhook_endpoint_delete)

    def create(self, request, *args, **kwargs):
        data = self.validated_input(self.request_data())
        endpoint, secret = services.webhook_endpoint_create(
            organization=self.actor.organization, actor=self.actor, data=data
        )
        return Response({**self.get_serializer(endpoint).data, "secret": secret}, status=status.HTTP_201_CREATED)

    def batch(self, request, *args, **kwargs):
        # Each endpoint's secret is shown once, in its own creation response.
        raise APIError("Webhook endpoints are created one at a time.", code="METHOD_NOT_ALLOWED", status=405)

    def _transition(self, service, **extra):
        endpoint = self.get_object(self.action)
        endpoint = service(organization=self.actor.organization, actor=self.actor, endpoint=endpoint, **extra)
        return endpoint

    @action(detail=True, methods=["post"], url_path="enable")
    def enable(self, request, *args, **kwargs):
        return self.serialize(self._transition(services.webhook_endpoint_enable))

    @action(detail=True, methods=["post"], url_path="disable")
    def disable(self, request, *args, **kwargs):
        return self.serialize(self._transition(services.webhook_endpoint_disable))

    @action(detail=True, methods=["post"], url_path="rotate_secret")
    @answers(WebhookEndpointWithSecretSerializer)
    def rotate_secret(self, request, *args, **kwargs):
        endpoint, secret = self._transition(services.webhook_endpoint_rotate_secret)
        return Response({**self.get_serializer(endpoint).data, "secret": secret})

    @extend_schema(responses=WebhookDeliverySerializer)
    @action(detail=True, methods=["post"], url_path="test")
    def test(self, request, *args, **kwargs):
        delivery = self._transition(services.webhook_endpoint_test)
        return Response(self._delivery_view().get_serializer(delivery).data)

    @extend_schema(responses=WebhookDeliverySerializer)
    @action(detail=True, methods=["get"], url_path="deliveries")
    def deliveries(self, request, *args, **kwargs):
        endpoint = self.get_object("read")
        view = self._delivery_view()
        return view._list(request, view.base_queryset("read").filter(endpoint=endpoint))

    def _delivery_view(self):
        """The deliveries collection, acting for this request (its serializer, filters, policy)."""
        view = WebhookDeliveryViewSet(request=self.request, kwargs={}, format_kwarg=None, action="list")
        view.actor_override = self.actor
        return view
