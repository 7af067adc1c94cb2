from .views import EventViewSet, WebhookDeliveryViewSet, WebhookEndpointViewSet

# collection -> viewset, registered by apps.core.routing.load_collections
collections = {
    "events": EventViewSet,
    "webhooks": WebhookEndpointViewSet,
    "webhook_deliveries": WebhookDeliveryViewSet,
}
