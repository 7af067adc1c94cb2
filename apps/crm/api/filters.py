from apps.core.filters import BOOL_OPS, CHOICE_OPS, DATE_OPS, TEXT_OPS, ResourceFilterSet

from ..models import Customer


class CustomerFilterSet(ResourceFilterSet):
    class Meta:
        model = Customer
        fields = {
            # `id_in` fetches a known set of customers in one call.
            "id": ("eq", "ne", "in", "nin"),
            "email": TEXT_OPS,
            "first_name": TEXT_OPS,
            "last_name": TEXT_OPS,
            "phone": TEXT_OPS,
            "sso_id": TEXT_OPS,
            "stripe_customer_id": TEXT_OPS,
            "status": CHOICE_OPS,
            "accepts_marketing": BOOL_OPS,
            "activation_date": DATE_OPS,
            "created_at": DATE_OPS,
            "updated_at": DATE_OPS,
        }
