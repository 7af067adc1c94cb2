from django.db.models import Prefetch

from .models import Customer, CustomerAddress


def customer_list():
    """Customers with everything their API representation reads (addresses in one query)."""
    return Customer.objects.prefetch_related(
        Prefetch("addresses", queryset=CustomerAddress.objects.order_by("created_at", "id"))
    )


def customer_get(*, organization, customer_id):
    return customer_list().for_org(organization).filter(pk=customer_id).first()
