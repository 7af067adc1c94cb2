"""Customer use cases. Each keeps only its rule; apps.core.changes locks the row, snapshots it,
writes the audit row and emits the domain event in the service's transaction, and
apps.core.states moves the status (apps/crm/states.py holds the table)."""

from django.db import IntegrityError, transaction

from apps.core.changes import record_change
from apps.core.errors import AlreadyExists
from apps.core.states import check_start, transition

from .models import CUSTOMER_FIELDS, Customer, CustomerAddress, CustomerStatus
from .selectors import with_customer_relations


def _ensure_email_free(organization, email, exclude_id=None):
    taken = Customer.objects.for_org(organization).filter(email=email)
    if exclude_id:
        taken = taken.exclude(pk=exclude_id)
    if taken.exists():
        raise AlreadyExists(f"A customer with email {email!r} already exists.", param="email")


def _replace_addresses(customer, addresses, actor):
    CustomerAddress.objects.filter(customer=customer).delete()
    CustomerAddress.objects.bulk_create(
        [
            CustomerAddress(organization=customer.organization, customer=customer, created_by=actor.actor_id, **address)
            for address in addresses
        ]
    )


def _load(model, customer_id):
    """The customer with what its payload and API representation read (addresses, one query)."""
    return with_customer_relations(Customer.objects).get(pk=customer_id)


# Customers are recorded (snapshots, events) as their payload, read through the selector.
RECORDING = {"load": _load}


def customer_create(*, organization, actor, data):
    data = dict(data)
    addresses = data.pop("addresses", [])
    if "status" in data:
        check_start(Customer, data["status"])  # a new customer is a prospect or active, nothing else
    try:
        with record_change(Customer, actor=actor, verb="created", **RECORDING) as change:
            _ensure_email_free(organization, data["email"])
            change.obj = Customer.objects.create(organization=organization, created_by=actor.actor_id, **data)
            if addresses:
                _replace_addresses(change.obj, addresses, actor)
    except IntegrityError:
        # A concurrent request took the email between our check and our insert.
        raise AlreadyExists(f"A customer with email {data['email']!r} already exists.", param="email") from None
    return change.obj


def customer_update(*, organization, actor, instance, data):
    """Changes the given fields. Status is never written directly: a `status` in the update (the
    official client sends one) is carried out through transition() first, with the same table,
    409 on an illegal move, a history row and its own `customer.<status>` event; the other fields
    then make the `customer.updated` event."""
    data = dict(data)
    addresses = data.pop("addresses", None)
    status = data.pop("status", None)
    try:
        with transaction.atomic():
            if status is not None:
                transition(instance, status, actor=actor, **RECORDING)
            with record_change(instance, actor=actor, verb="updated", **RECORDING) as change:
                customer = change.obj
                if "email" in data and data["email"] != customer.email:
                    _ensure_email_free(organization, data["email"], exclude_id=customer.pk)
                changed = [name for name in CUSTOMER_FIELDS if name in data and getattr(customer, name) != data[name]]
                for name in changed:
                    setattr(customer, name, data[name])
                if changed or addresses is not None:
                    customer.save(update_fields=[*changed, "updated_at"])
                if addresses is not None:
                    _replace_addresses(customer, addresses, actor)
    except IntegrityError:
        raise AlreadyExists(f"A customer with email {data.get('email')!r} already exists.", param="email") from None
    return change.obj


def customer_delete(*, organization, actor, instance):
    with record_change(instance, actor=actor, verb="deleted", **RECORDING) as change:
        change.obj.delete()
    return change.obj


# Status moves (`POST /v1/customers/<id>/activate|deactivate|suspend`) ------------------------


def customer_activate(*, organization, actor, instance, reason=None):
    return transition(instance, CustomerStatus.ACTIVE, actor=actor, reason=reason, **RECORDING)


def customer_deactivate(*, organization, actor, instance, reason=None):
    return transition(instance, CustomerStatus.INACTIVE, actor=actor, reason=reason, **RECORDING)


def customer_suspend(*, organization, actor, instance, reason=None):
    return transition(instance, CustomerStatus.SUSPENDED, actor=actor, reason=reason, **RECORDING)
