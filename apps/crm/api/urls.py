from apps.core.routing import router

from .views import CustomerViewSet

router.register("customers", CustomerViewSet)
