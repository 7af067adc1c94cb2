"""The staff dashboard's tenancy: staff see the organizations they are members of; writes go
through the same services, with the same policy table, as the API."""

from django.contrib import admin, messages

from . import policy
from .context import Actor
from .errors import APIError


def admin_actor(request, organization):
    """The Actor for a staff user acting in the admin on `organization`."""
    from apps.accounts.models import Membership

    user = request.user
    if user.is_superuser:
        role = "admin"
    else:
        membership = Membership.objects.filter(user=user, organization=organization.live).first()
        role = membership.role if membership else "anonymous"
    return Actor(
        organization=organization,
        role=role,
        credential_type="session",
        credential_id=f"session:{user.pk}",
        user_id=str(user.pk),
    ).with_request(request)


class TenantAdminMixin:
    """Scopes the changelist to the user's organizations (live and sandbox) and checks the
    policy table for the user's role."""

    def _organization_ids(self, request):
        from apps.accounts.models import Organization

        if request.user.is_superuser:
            return None
        live_ids = list(request.user.memberships.values_list("organization_id", flat=True))
        return list(Organization.objects.filter(pk__in=live_ids).values_list("pk", flat=True)) + list(
            Organization.objects.filter(live_organization_id__in=live_ids).values_list("pk", flat=True)
        )

    def get_queryset(self, request):
        """The rows the policy table lets the user read: per membership, all rows of the
        organization (and its sandbox) or only the rows the user created."""
        from django.db.models import Q

        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        rules = policy.POLICIES.get(self.model._meta.label)
        visible = Q(pk__in=[])
        for membership in request.user.memberships.select_related("organization__sandbox"):
            rule = rules.roles.get(membership.role, {}).get("read") if rules else None
            if rule is None:
                continue
            organizations = Q(organization_id__in=[membership.organization_id, membership.organization.sandbox.pk])
            if rule.rows == "own":
                organizations &= Q(created_by=str(request.user.pk))
            visible |= organizations
        return queryset.filter(visible)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        ids = self._organization_ids(request)
        if ids is not None and field is not None and db_field.name == "organization":
            field.queryset = field.queryset.filter(pk__in=ids)
        elif ids is not None and field is not None and hasattr(db_field.related_model, "organization_id"):
            field.queryset = field.queryset.filter(organization_id__in=ids)
        return field

    def _allowed(self, request, operation, obj=None):
        if request.user.is_superuser:
            return True
        if obj is None:
            from apps.accounts.models import Membership

            roles = set(Membership.objects.filter(user=request.user).values_list("role", flat=True))
            label = self.model._meta.label
            return any(
                policy.POLICIES.get(label) and operation in policy.POLICIES[label].roles.get(role, {}) for role in roles
            )
        return policy.allows(admin_actor(request, obj.organization), self.model._meta.label, operation)

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff and self._allowed(request, "read", obj)

    def has_module_permission(self, request):
        return self.has_view_permission(request)

    def has_add_permission(self, request):
        return request.user.is_staff and self._allowed(request, "create")

    def has_change_permission(self, request, obj=None):
        return request.user.is_staff and self._allowed(request, "update", obj)

    def has_delete_permission(self, request, obj=None):
        return request.user.is_staff and self._allowed(request, "delete", obj)

    def report_api_error(self, request, exc):
        self.message_user(request, f"{exc.code}: {exc.message}", level=messages.ERROR)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class TenantReadOnlyAdmin(TenantAdminMixin, ReadOnlyAdmin):
    """Browse-only screens (audit log, events): scoped like the rest, never edited by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


__all__ = ["TenantReadOnlyAdmin", "TenantAdminMixin", "ReadOnlyAdmin", "admin_actor", "APIError"]
