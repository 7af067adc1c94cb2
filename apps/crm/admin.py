from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from apps.core.admin import TenantAdminMixin, admin_actor
from apps.core.errors import APIError

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
class CustomerAdmin(TenantAdminMixin, admin.ModelAdmin):
    list_display = ["email", "first_name", "last_name", "status", "organization", "created_at"]
    list_filter = ["status", "accepts_marketing", "organization", "created_at"]
    search_fields = ["email", "first_name", "last_name", "phone", "sso_id", "stripe_customer_id", "id"]
    readonly_fields = ["id", "created_at", "updated_at", "created_by"]
    fields = ["id", "organization", *CUSTOMER_FIELDS, "created_by", "created_at", "updated_at"]
    inlines = [CustomerAddressInline]
    list_select_related = ["organization"]
    ordering = ["-created_at"]

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "organization"] if obj else self.readonly_fields

    def save_model(self, request, obj, form, change):
        """Through the same services as the API (audit row, event, uniqueness)."""
        actor = admin_actor(request, obj.organization)
        data = {name: form.cleaned_data[name] for name in form.changed_data if name in CUSTOMER_FIELDS}
        if "email" in data:
            data["email"] = data["email"].strip().lower()
        try:
            if change:
                saved = services.customer_update(organization=obj.organization, actor=actor, instance=obj, data=data)
            else:
                data = {name: form.cleaned_data[name] for name in CUSTOMER_FIELDS if name in form.cleaned_data}
                data["email"] = data["email"].strip().lower()
                saved = services.customer_create(organization=obj.organization, actor=actor, data=data)
        except APIError as exc:
            form.add_error(None, ValidationError(f"{exc.code}: {exc.message}"))
            self.message_user(request, f"{exc.code}: {exc.message}", level=messages.ERROR)
            raise _AbortSave() from exc
        obj.pk = saved.pk

    def delete_model(self, request, obj):
        services.customer_delete(
            organization=obj.organization, actor=admin_actor(request, obj.organization), instance=obj
        )

    def delete_queryset(self, request, queryset):
        for customer in queryset:
            self.delete_model(request, customer)

    def changeform_view(self, request, *args, **kwargs):
        try:
            return super().changeform_view(request, *args, **kwargs)
        except _AbortSave:
            from django.http import HttpResponseRedirect

            return HttpResponseRedirect(request.get_full_path())


class _AbortSave(Exception):
    pass
