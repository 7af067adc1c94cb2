from apps.core.views import ResourceViewSet

from .. import selectors, services
from ..serializers import CustomerSerializer
from .filters import CustomerFilterSet


class CustomerViewSet(ResourceViewSet):
    """Customers: CRUD, search, filters, batch (`/v1/customers`, also `/v1/customer`)."""

    queryset = selectors.customer_list()
    serializer_class = CustomerSerializer
    filterset_class = CustomerFilterSet
    ordering_fields = ("created_at", "updated_at", "email", "last_name", "first_name")
    default_ordering = ("created_at", True)
    search_fields = ("email", "first_name", "last_name", "phone", "sso_id", "stripe_customer_id")
    create_service = staticmethod(services.customer_create)
    update_service = staticmethod(services.customer_update)
    delete_service = staticmethod(services.customer_delete)
