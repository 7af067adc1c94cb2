from apps.core.routing import router

from .views import EventViewSet, WebhookDeliveryViewSet, WebhookEndpointViewSet

router.register("events", EventViewSet)
router.register("webhooks", WebhookEndpointViewSet)
router.register("webhook_deliveries", WebhookDeliveryViewSet)
