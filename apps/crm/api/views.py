from rest_framework.decorators import action

from apps.core.views import ResourceViewSet

from .. import selectors, services
from ..models import Customer
from ..serializers import CustomerSerializer
from .filters import CustomerFilterSet


class CustomerViewSet(ResourceViewSet):
    """Customers: CRUD, search, filters, batch (`/v1/customers`, also `/v1/customer`), and the
    status moves activate, deactivate and suspend (apps/crm/states.py has the table)."""

    model = Customer
    selector = staticmethod(selectors.customer_list)
    serializer_class = CustomerSerializer
    filterset_class = CustomerFilterSet
    ordering_fields = ("created_at", "updated_at", "email", "last_name", "first_name")
    default_ordering = ("created_at", True)
    search_fields = ("email", "first_name", "last_name", "phone", "sso_id", "stripe_customer_id")
    create_service = staticmethod(services.customer_create)
    update_service = staticmethod(services.customer_update)
    delete_service = staticmethod(services.customer_delete)

    @action(detail=True, methods=["post"], url_path="activate")
    def activate(self, request, *args, **kwargs):
        return self.run_transition(services.customer_activate)

    @action(detail=True, methods=["post"], url_path="deactivate")
    def deactivate(self, request, *args, **kwargs):
        return self.run_transition(services.customer_deactivate)

    @action(detail=True, methods=["post"], url_path="suspend")
    def suspend(self, request, *args, **kwargs):
        return self.run_transition(services.customer_suspend)
