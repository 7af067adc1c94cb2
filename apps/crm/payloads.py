"""Customer event payloads (apps.core.payloads): what `customer.*` webhooks carry, per API
version. Written out field by field on purpose: the API serializer may change without changing
what receivers parse; a new shape is a new function with a new `api_version`."""

from apps.core.payloads import payload

ADDRESS_FIELDS = (
    "id",
    "first_name",
    "last_name",
    "company",
    "address_line_1",
    "address_line_2",
    "city",
    "province",
    "postal_code",
    "country_code",
    "phone",
    "is_default_shipping",
    "is_default_billing",
)

CUSTOMER_FIELDS_2024_01_01 = (
    "id",
    "email",
    "first_name",
    "last_name",
    "phone",
    "sso_id",
    "stripe_customer_id",
    "activation_date",
    "timestamp",
    "status",
    "accepts_marketing",
    "metadata",
    "tags",
)


def _address(address, livemode):
    return {"object": "address", **{name: getattr(address, name) for name in ADDRESS_FIELDS}, "livemode": livemode}


@payload("crm.Customer", "customer", api_version="2024-01-01")
def customer_payload(customer):
    livemode = customer.organization.livemode
    # Oldest first, as the customer's addresses were created (the selector's order too).
    addresses = sorted(customer.addresses.all(), key=lambda address: (address.created_at, address.id))
    default_shipping = next((a.id for a in addresses if a.is_default_shipping), None)
    default_billing = next((a.id for a in addresses if a.is_default_billing), None)
    return {
        "object": "customer",
        **{name: getattr(customer, name) for name in CUSTOMER_FIELDS_2024_01_01},
        "addresses": [_address(address, livemode) for address in addresses],
        "default_shipping_address": default_shipping,
        "default_billing_address": default_billing,
        "created_at": customer.created_at,
        "updated_at": customer.updated_at,
        "livemode": livemode,
    }
