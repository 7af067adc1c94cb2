from django.contrib import admin

from apps.core.admin import ServiceAdmin

from . import services
from .models import CUSTOMER_FIELDS, Customer, CustomerAddress


class CustomerAddressInline(admin.TabularInline):
    model = CustomerAddress
    extra = 0
    fields = [
        "address_line_1",
        "address_line_2",
        "city",
        "province",
        "postal_code",
        "country_code",
        "is_default_shipping",
        "is_default_billing",
    ]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Customer)
class CustomerAdmin(ServiceAdmin):
    """Customers through the same services as the API (audit row, event, uniqueness). The status
    moves only by the actions (the transition table), never by editing the field."""

    list_display = ["email", "first_name", "last_name", "status", "organization", "created_at"]
    list_filter = ["status", "accepts_marketing", "organization", "created_at"]
    search_fields = ["email", "first_name", "last_name", "phone", "sso_id", "stripe_customer_id", "id"]
    readonly_fields = ["id", "status", "created_at", "updated_at", "created_by"]
    fields = ["id", "organization", *CUSTOMER_FIELDS, "created_by", "created_at", "updated_at"]
    inlines = [CustomerAddressInline]
    list_select_related = ["organization"]
    ordering = ["-created_at"]
    actions = ["activate_customers", "deactivate_customers", "suspend_customers"]

    def _input(self, form, names):
        data = {name: form.cleaned_data[name] for name in names if name in CUSTOMER_FIELDS and name != "status"}
        if "email" in data:
            data["email"] = data["email"].strip().lower()
        return data

    def service_create(self, request, actor, form):
        return services.customer_create(
            organization=form.cleaned_data["organization"], actor=actor, data=self._input(form, form.cleaned_data)
        )

    def service_update(self, request, actor, obj, form):
        return services.customer_update(
            organization=obj.organization, actor=actor, instance=obj, data=self._input(form, form.changed_data)
        )

    def service_delete(self, request, actor, obj):
        services.customer_delete(organization=obj.organization, actor=actor, instance=obj)

    def _move(self, request, queryset, action, done):
        service = getattr(services, f"customer_{action}")
        self.run_object_service(request, queryset, service, operation=action, done=done)

    @admin.action(description="Activate selected customers", permissions=["change"])
    def activate_customers(self, request, queryset):
        self._move(request, queryset, "activate", "{count} customers activated.")

    @admin.action(description="Deactivate selected customers", permissions=["change"])
    def deactivate_customers(self, request, queryset):
        self._move(request, queryset, "deactivate", "{count} customers deactivated.")

    @admin.action(description="Suspend selected customers", permissions=["change"])
    def suspend_customers(self, request, queryset):
        self._move(request, queryset, "suspend", "{count} customers suspended.")
