"""Customer use cases. Each owns its transaction, locks what it changes, writes the audit row
and emits the domain event."""

from django.db import IntegrityError, transaction

from apps.accounts.services import audit_record
from apps.core.errors import AlreadyExists
from apps.events.services import emit

from .models import CUSTOMER_FIELDS, Customer, CustomerAddress
from .selectors import customer_list
from .serializers import CustomerSerializer


def customer_representation(customer, actor):
    return CustomerSerializer(customer, context={"actor": actor}).data


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


def _reload(organization, customer_id):
    return customer_list().for_org(organization).get(pk=customer_id)


def customer_create(*, organization, actor, data):
    data = dict(data)
    addresses = data.pop("addresses", [])
    try:
        with transaction.atomic():
            _ensure_email_free(organization, data["email"])
            customer = Customer.objects.create(organization=organization, created_by=actor.actor_id, **data)
            if addresses:
                _replace_addresses(customer, addresses, actor)
            customer = _reload(organization, customer.pk)
            after = customer_representation(customer, actor)
            audit_record(actor=actor, action="customer.created", obj=customer, after=after)
            emit(organization=organization, type="customer.created", obj=customer, data=after, actor=actor)
    except IntegrityError:
        # A concurrent request took the email between our check and our insert.
        raise AlreadyExists(f"A customer with email {data['email']!r} already exists.", param="email") from None
    return customer


def customer_update(*, organization, actor, instance, data):
    data = dict(data)
    addresses = data.pop("addresses", None)
    try:
        with transaction.atomic():
            customer = Customer.objects.for_org(organization).select_for_update().get(pk=instance.pk)
            before = customer_representation(_reload(organization, customer.pk), actor)
            if "email" in data and data["email"] != customer.email:
                _ensure_email_free(organization, data["email"], exclude_id=customer.pk)
            changed = [name for name in CUSTOMER_FIELDS if name in data and getattr(customer, name) != data[name]]
            for name in changed:
                setattr(customer, name, data[name])
            if changed or addresses is not None:
                customer.save(update_fields=[*changed, "updated_at"])
            if addresses is not None:
                _replace_addresses(customer, addresses, actor)
            customer = _reload(organization, customer.pk)
            after = customer_representation(customer, actor)
            previous = {k: v for k, v in before.items() if after.get(k) != v and k != "updated_at"}
            if previous:
                audit_record(actor=actor, action="customer.updated", obj=customer, before=before, after=after)
                emit(
                    organization=organization,
                    type="customer.updated",
                    obj=customer,
                    data=after,
                    previous_attributes=previous,
                    actor=actor,
                )
    except IntegrityError:
        raise AlreadyExists(f"A customer with email {data.get('email')!r} already exists.", param="email") from None
    return customer


def customer_delete(*, organization, actor, instance):
    with transaction.atomic():
        customer = Customer.objects.for_org(organization).select_for_update().get(pk=instance.pk)
        before = customer_representation(_reload(organization, customer.pk), actor)
        customer_id = customer.pk
        audit_record(actor=actor, action="customer.deleted", obj=customer, before=before)
        emit(
            organization=organization,
            type="customer.deleted",
            obj=customer,
            data={**before, "deleted": True},
            actor=actor,
        )
        customer.delete()
        customer.pk = customer_id
    return customer
