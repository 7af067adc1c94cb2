from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path

from apps.core.admin import APIError, ReadOnlyAdmin, ReadOnlyMixin, ServiceAdmin, TenantReadOnlyAdmin, admin_actor

from . import services
from .models import APIKey, AuditLog, AuthToken, Membership, Organization, Role, User


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
        return queryset.of_member(request.user)

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


def administered_organizations(user):
    """The live organizations `user` may invite staff into: all of them for a superuser."""
    organizations = Organization.objects.filter(livemode=True)
    if user.is_superuser:
        return organizations
    return organizations.filter(memberships__user=user, memberships__role=Role.ADMIN)


class StaffInvitationForm(forms.Form):
    email = forms.EmailField()
    organization = forms.ModelChoiceField(queryset=Organization.objects.none())
    role = forms.ChoiceField(choices=Role.choices, initial=Role.USER)

    def __init__(self, *args, organizations, **kwargs):
        super().__init__(*args, **kwargs)
        # An organization outside this queryset is refused as an invalid choice.
        self.fields["organization"].queryset = organizations
        if len(organizations) == 1:
            self.fields["organization"].initial = organizations[0]


@admin.register(Membership)
class MembershipAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Members of the organizations the user administers. People join through the invitation form
    (which also changes the role of someone already in), so rows are not edited here."""

    list_display = ["user", "organization", "role", "created_at"]
    list_filter = ["role", "organization"]
    search_fields = ["user__email", "organization__name", "organization__slug"]
    list_select_related = ["user", "organization"]

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(organization__in=administered_organizations(request.user))

    def _administers_any(self, request):
        user = request.user
        return user.is_active and user.is_staff and administered_organizations(user).exists()

    def has_module_permission(self, request):
        return self._administers_any(request)

    def has_view_permission(self, request, obj=None):
        return self._administers_any(request)

    def get_urls(self):
        invite = path("invite/", self.admin_site.admin_view(self.invite_view), name="accounts_membership_invite")
        return [invite, *super().get_urls()]

    def invite_view(self, request):
        organizations = administered_organizations(request.user)
        if not request.user.is_active or not organizations.exists():
            raise PermissionDenied
        form = StaffInvitationForm(request.POST or None, organizations=organizations)
        if request.method == "POST" and form.is_valid():
            organization = form.cleaned_data["organization"]
            try:
                membership = services.staff_user_invite(
                    organization=organization,
                    email=form.cleaned_data["email"],
                    role=form.cleaned_data["role"],
                    actor=admin_actor(request, organization),
                )
            except APIError as exc:
                form.add_error(None, exc.message)
            else:
                self.message_user(request, f"Invitation sent to {membership.user.email} ({membership.role}).")
                return redirect("admin:accounts_membership_changelist")
        context = {
            **self.admin_site.each_context(request),
            "title": "Invite staff member",
            "opts": self.model._meta,
            "form": form,
        }
        return TemplateResponse(request, "admin/accounts/membership/invite.html", context)


@admin.register(APIKey)
class APIKeyAdmin(ServiceAdmin):
    """Keys are created through the API (the secret is shown once there); here they are listed
    and revoked. The form is read-only."""

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
    actions = ["revoke_keys"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # revoked, never deleted: the audit log keeps naming the key

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields if f.name != "secret_hash"]

    def organization_of(self, key):
        return services.api_key_organization(key)  # a test key acts on the sandbox twin

    @admin.action(description="Revoke the selected keys", permissions=["change"])
    def revoke_keys(self, request, queryset):
        self.run_service_action(
            request,
            queryset.filter(revoked_at__isnull=True),
            lambda key, actor: services.api_key_revoke(key=key, actor=actor),
            done="{count} keys revoked.",
            operation="revoke",
        )


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
