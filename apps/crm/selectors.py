"""Reads of customers. A selector takes the organization and returns its rows only: scoping is
never left to the caller."""

from django.db.models import Prefetch

from .models import Customer, CustomerAddress


def with_customer_relations(queryset):
    """What a customer's API representation and event payload read (addresses in one query)."""
    return queryset.prefetch_related(
        Prefetch("addresses", queryset=CustomerAddress.objects.order_by("created_at", "id"))
    )


def customer_list(*, organization):
    """The organization's customers, with everything their API representation reads."""
    return with_customer_relations(Customer.objects.for_org(organization))


def customer_get(*, organization, customer_id):
    return customer_list(organization=organization).filter(pk=customer_id).first()
