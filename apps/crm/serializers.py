"""The customer's API representation: request input, response output and event payloads.

It lives beside the domain (not under api/) because services put the same representation into
events; the API layer imports it.
"""

from rest_framework import serializers

from apps.core.references import ReferenceField
from apps.core.serializers import ResourceSerializer

from .models import CUSTOMER_FIELDS, Customer, CustomerAddress, CustomerStatus


class AddressSerializer(ResourceSerializer):
    object_name = "address"

    class Meta:
        model = CustomerAddress
        fields = [
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
        ]
        read_only_fields = ["id"]

    def validate_country_code(self, value):
        if len(value) != 2 or not value.isalpha():
            raise serializers.ValidationError("Use a two-letter ISO 3166 country code.")
        return value.upper()


def _flagged_address(flag):
    """The customer's first address carrying `flag`, from the representation's own addresses
    (already fetched, so no query of its own); shown as its id, or whole when expanded."""

    def pick(representation, columns):
        return next((address for address in representation["addresses"] if address[flag]), None)

    return pick


class CustomerSerializer(ResourceSerializer):
    object_name = "customer"
    expandable_fields = {
        "default_shipping_address": (AddressSerializer, {}),
        "default_billing_address": (AddressSerializer, {}),
    }

    status = serializers.ChoiceField(choices=CustomerStatus.choices, required=False)
    # Written as a whole list (it replaces the customer's addresses); validated on its own so that
    # a PATCH of the customer still requires every field of every address.
    addresses = AddressSerializer(many=True, read_only=True)
    extra_input_fields = ("addresses",)
    default_shipping_address = ReferenceField()
    default_billing_address = ReferenceField()
    computed_fields = {
        "default_shipping_address": _flagged_address("is_default_shipping"),
        "default_billing_address": _flagged_address("is_default_billing"),
    }

    class Meta:
        model = Customer
        fields = [
            "id",
            *CUSTOMER_FIELDS,
            "addresses",
            "default_shipping_address",
            "default_billing_address",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]
        # Uniqueness per organization is the service's rule (409 RESOURCE_ALREADY_EXISTS).
        validators = []

    def validate_email(self, value):
        return value.strip().lower()

    def validate_status(self, value):
        return value.lower()

    def to_internal_value(self, data):
        if isinstance(data, dict) and isinstance(data.get("status"), str):
            data = {**data, "status": data["status"].lower()}
        addresses = None
        if isinstance(data, dict) and "addresses" in data:
            data = dict(data)
            addresses = self._validated_addresses(data.pop("addresses"))
        values = super().to_internal_value(data)
        if addresses is not None:
            values["addresses"] = addresses
        return values

    def _validated_addresses(self, raw):
        if not isinstance(raw, list):
            raise serializers.ValidationError({"addresses": ["addresses must be a list of address objects."]})
        nested = AddressSerializer(data=raw, many=True, context=self.context)
        if not nested.is_valid():
            raise serializers.ValidationError({"addresses": nested.errors})
        value = nested.validated_data
        for flag in ("is_default_shipping", "is_default_billing"):
            if sum(1 for address in value if address.get(flag)) > 1:
                raise serializers.ValidationError({"addresses": [f"At most one address may be {flag}."]})
        return value
