from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from apps.core.admin import ReadOnlyAdmin, TenantAdminMixin, TenantReadOnlyAdmin, admin_actor

from . import services
from .models import APIKey, AuditLog, AuthToken, Membership, Organization, User


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "plan", "livemode", "is_active", "created_at"]
    list_filter = ["plan", "livemode", "is_active"]
    search_fields = ["name", "slug", "id"]
    readonly_fields = ["id", "livemode", "live_organization", "created_at"]
    inlines = [MembershipInline]

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        live_ids = request.user.memberships.values_list("organization_id", flat=True)
        return queryset.filter(pk__in=live_ids) | queryset.filter(live_organization_id__in=live_ids)

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            if "plan" in form.changed_data:
                services.organization_set_plan(organization=obj, plan=obj.plan)
        else:
            created = services.organization_create(name=obj.name, slug=obj.slug, plan=obj.plan)
            obj.pk = created.pk
            obj._state.adding = False


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["email"]
    list_display = ["email", "first_name", "last_name", "is_staff", "is_active"]
    search_fields = ["email", "first_name", "last_name"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)


@admin.action(description="Revoke the selected keys")
def revoke_keys(modeladmin, request, queryset):
    for key in queryset.filter(revoked_at__isnull=True):
        services.api_key_revoke(key=key, actor=admin_actor(request, key.organization))
    messages.success(request, "Keys revoked.")


@admin.register(APIKey)
class APIKeyAdmin(TenantAdminMixin, ReadOnlyAdmin):
    list_display = [
        "redacted",
        "name",
        "kind",
        "mode",
        "organization",
        "scopes",
        "expires_at",
        "revoked_at",
        "last_used_at",
    ]
    list_filter = ["kind", "mode", "organization"]
    search_fields = ["name", "id", "last4"]
    exclude = ["secret_hash"]
    actions = [revoke_keys]

    def has_change_permission(self, request, obj=None):
        # Needed for the revoke action; the form itself is read-only.
        return TenantAdminMixin.has_change_permission(self, request, obj)

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields if f.name != "secret_hash"]


@admin.register(AuthToken)
class AuthTokenAdmin(ReadOnlyAdmin):
    list_display = ["id", "user", "organization", "expires_at", "revoked_at", "last_used_at"]
    exclude = ["token_hash"]

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        return queryset if request.user.is_superuser else queryset.filter(user=request.user)


@admin.register(AuditLog)
class AuditLogAdmin(TenantReadOnlyAdmin):
    list_display = ["created_at", "action", "object_id", "actor_type", "actor_id", "ip_address", "organization"]
    list_filter = ["action", "actor_type", "organization"]
    search_fields = ["object_id", "actor_id", "request_id", "action"]
    date_hierarchy = "created_at"
