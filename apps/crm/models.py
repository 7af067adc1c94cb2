"""Customers and their addresses."""

from django.db import models

from apps.core.fields import JSONField
from apps.core.ids import new_id
from apps.core.models import TenantModel


def new_customer_id():
    return new_id("cus")


def new_address_id():
    return new_id("addr")


class CustomerStatus(models.TextChoices):
    ACTIVE = "active"
    INACTIVE = "inactive"
    PROSPECT = "prospect"
    SUSPENDED = "suspended"


# The customer's own writable fields (addresses are written as a list beside them).
CUSTOMER_FIELDS = (
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


class Customer(TenantModel):
    id = models.CharField(primary_key=True, max_length=40, default=new_customer_id, editable=False)
    email = models.EmailField(max_length=254)
    first_name = models.CharField(max_length=150, blank=True, default="")
    last_name = models.CharField(max_length=150, blank=True, default="")
    phone = models.CharField(max_length=40, blank=True, default="")
    sso_id = models.CharField(max_length=255, blank=True, default="")
    stripe_customer_id = models.CharField(max_length=255, blank=True, default="")
    activation_date = models.DateTimeField(null=True, blank=True)
    # The seeds' free `timestamp` field (a client-side time of record), kept as given.
    timestamp = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=CustomerStatus.choices, default=CustomerStatus.ACTIVE)
    accepts_marketing = models.BooleanField(default=False)
    metadata = JSONField(default=dict, blank=True)
    tags = JSONField(default=list, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "email"], name="crm_customer_org_email"),
        ]
        indexes = [
            models.Index(fields=["organization", "created_at", "id"], name="crm_customer_org_created"),
            models.Index(fields=["organization", "sso_id"], name="crm_customer_org_sso"),
            models.Index(fields=["organization", "last_name", "id"], name="crm_customer_org_last_name"),
        ]

    def __str__(self):
        name = f"{self.first_name} {self.last_name}".strip()
        return f"{name} <{self.email}>" if name else self.email

    # The default shipping and billing addresses are computed from the representation's
    # addresses (CustomerSerializer.computed_fields), one declaration for every path.


class CustomerAddress(TenantModel):
    id = models.CharField(primary_key=True, max_length=40, default=new_address_id, editable=False)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="addresses")
    first_name = models.CharField(max_length=150, blank=True, default="")
    last_name = models.CharField(max_length=150, blank=True, default="")
    company = models.CharField(max_length=200, blank=True, default="")
    address_line_1 = models.CharField(max_length=255)
    address_line_2 = models.CharField(max_length=255, blank=True, default="")
    city = models.CharField(max_length=120)
    province = models.CharField(max_length=120, blank=True, default="")
    postal_code = models.CharField(max_length=32, blank=True, default="")
    country_code = models.CharField(max_length=2)
    phone = models.CharField(max_length=40, blank=True, default="")
    is_default_shipping = models.BooleanField(default=False)
    is_default_billing = models.BooleanField(default=False)

    class Meta:
        verbose_name_plural = "customer addresses"
        indexes = [models.Index(fields=["organization", "customer", "created_at"], name="crm_address_org_customer")]

    def __str__(self):
        return f"{self.address_line_1}, {self.city} {self.country_code}"
