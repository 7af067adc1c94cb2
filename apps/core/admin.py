"""The staff dashboard's tenancy and writes.

Tenancy: a staff user acts, in each organization they are a member of (and its sandbox twin), as
an actor of their membership's role; the changelist is the union of what the policy table's
`scope_queryset` gives each of those actors, so the admin scopes rows exactly as the API does.

Writes: `ServiceAdmin` is the base of every admin that changes rows. Saves, deletes and actions
call the app's services with the staff actor; a service's refusal (`APIError`) is shown on the
form as an error message, nothing is saved, never a 500.
"""

from django.contrib import admin, messages
from django.db import transaction
from django.http import HttpResponseRedirect
from django.urls import reverse

from . import policy
from .context import Actor
from .errors import APIError, PermissionDenied


def staff_actor(request, organization, role):
    """The Actor for the logged-in staff user acting on `organization` with `role`."""
    user = request.user
    return Actor(
        organization=organization,
        role=role,
        credential_type="session",
        credential_id=f"session:{user.pk}",
        user_id=str(user.pk),
    ).with_request(request)


def admin_actor(request, organization):
    """The Actor for a staff user acting in the admin on `organization`."""
    user = request.user
    if user.is_superuser:
        return staff_actor(request, organization, "admin")
    role = next((role for org, role in staff_memberships(request) if org.pk == organization.pk), "anonymous")
    return staff_actor(request, organization, role)


def staff_memberships(request):
    """(organization, role) for every organization the staff user is a member of, each sandbox
    twin with its live organization's role; read once per request."""
    cached = getattr(request, "_staff_memberships", None)
    if cached is None:
        cached = []
        for membership in request.user.memberships.select_related("organization__sandbox"):
            cached.append((membership.organization, membership.role))
            cached.append((membership.organization.sandbox, membership.role))
        request._staff_memberships = cached
    return cached


class TenantAdminMixin:
    """Scopes the changelist and the choices to the user's organizations (live and sandbox) and
    checks the policy table for the user's role, through the same functions as the API."""

    def staff_actors(self, request):
        return [staff_actor(request, organization, role) for organization, role in staff_memberships(request)]

    def get_queryset(self, request):
        """The rows the policy table lets the user read: per organization, all its rows or only
        those the user created, as `policy.scope_queryset` says for the membership's role."""
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        label = self.model._meta.label
        visible = queryset.none()
        for actor in self.staff_actors(request):
            if policy.allows(actor, label, "read"):
                visible = visible | policy.scope_queryset(actor, label, "read", queryset)
        return visible

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if request.user.is_superuser or field is None:
            return field
        organizations = self.model._meta.get_field("organization").related_model.objects.of_member(request.user)
        if db_field.name == "organization":
            field.queryset = field.queryset.of_member(request.user)
        elif hasattr(field.queryset, "for_orgs"):
            field.queryset = field.queryset.for_orgs(organizations)
        return field

    def _allowed(self, request, operation, obj=None):
        if request.user.is_superuser:
            return True
        label = self.model._meta.label
        if obj is None:
            return any(policy.allows(actor, label, operation) for actor in self.staff_actors(request))
        return policy.allows(admin_actor(request, self.organization_of(obj)), label, operation)

    def organization_of(self, obj):
        """The organization whose actor acts on `obj` (API keys override: a test key's sandbox)."""
        return obj.organization

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

    def run_object_service(self, request, queryset, service, *, operation, done, param="instance"):
        """`service(organization=..., actor=..., <param>=obj)` for each selected row, by
        `run_service_action`: an admin action that is one service call per row."""
        return self.run_service_action(
            request,
            queryset,
            lambda obj, actor: service(organization=obj.organization, actor=actor, **{param: obj}),
            done=done,
            operation=operation,
        )

    def run_service_action(self, request, queryset, function, done="{count} done.", *, operation):
        """function(obj, actor) for each selected row, each in its own transaction, when the
        policy table lets the staff user do `operation` (an action's name, or "delete") to that
        row; a refusal is reported for its row and the others go on. Returns how many succeeded."""
        count = 0
        label = self.model._meta.label
        for obj in queryset.select_related("organization"):
            try:
                with transaction.atomic():
                    actor = admin_actor(request, self.organization_of(obj))
                    # The changelist is already the user's organizations; the rule may narrow to own rows.
                    rule = policy.authorize(actor, label, operation)
                    if rule.rows == "own" and getattr(obj, "created_by", None) != actor.actor_id:
                        raise PermissionDenied(f"The {actor.role} role may only {operation} its own rows.")
                    function(obj, actor)
            except APIError as exc:
                self.report_api_error(request, exc)
            else:
                count += 1
        if done:
            self.message_user(request, done.format(count=count))
        return count


class ServiceRefused(Exception):
    """A service refused an admin save or delete: raised out of the admin's transaction (so it
    rolls back) and turned into a message by ServiceAdmin."""

    def __init__(self, error):
        super().__init__(error.message)
        self.error = error


class ServiceAdmin(TenantAdminMixin, admin.ModelAdmin):
    """An admin whose writes are the app's services, with the staff user's actor.

    A subclass implements `service_create(request, actor, form)` and `service_update(request,
    actor, obj, form)` (each returns the saved object) and `service_delete(request, actor, obj)`;
    its actions call services through `run_service_action` (TenantAdminMixin). When a service refuses (`APIError`), the
    admin's transaction rolls back, the form comes back with the user's input and the refusal
    as its error, and an error message says the same.
    """

    def service_create(self, request, actor, form):
        raise NotImplementedError(f"{type(self).__name__} creates nothing")

    def service_update(self, request, actor, obj, form):
        raise NotImplementedError(f"{type(self).__name__} changes nothing")

    def service_delete(self, request, actor, obj):
        raise NotImplementedError(f"{type(self).__name__} deletes nothing")

    def get_readonly_fields(self, request, obj=None):
        # The organization is chosen once, at creation: a row never moves between tenants.
        readonly = list(super().get_readonly_fields(request, obj))
        if obj is not None and "organization" not in readonly:
            readonly.append("organization")
        return readonly

    # Saves --------------------------------------------------------------------------------

    def save_model(self, request, obj, form, change):
        if change and not form.changed_data:
            return  # nothing the form may change was changed (e.g. a form of read-only fields)
        actor = admin_actor(request, self.organization_of(obj))
        try:
            if change:
                saved = self.service_update(request, actor, obj, form)
            else:
                saved = self.service_create(request, actor, form)
        except APIError as exc:
            raise ServiceRefused(exc) from exc
        obj.pk = saved.pk
        obj._state.adding = False

    def get_form(self, request, obj=None, change=False, **kwargs):
        form_class = super().get_form(request, obj, change=change, **kwargs)
        refusal = getattr(request, "_service_refusal", None)
        if refusal is None:
            return form_class

        class RefusedForm(form_class):
            # The second pass over the same POST: the service's refusal is the form's error, so
            # the admin shows the form again with everything the user typed.
            def clean(self):
                cleaned = super().clean()
                self.add_error(None, f"{refusal.code}: {refusal.message}")
                return cleaned

        RefusedForm.__name__ = form_class.__name__
        return RefusedForm

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ServiceRefused as refused:
            # The admin's transaction has rolled back: nothing was saved.
            self.report_api_error(request, refused.error)
            request._service_refusal = refused.error
            return super().changeform_view(request, object_id, form_url, extra_context)

    # Deletes ------------------------------------------------------------------------------

    def delete_model(self, request, obj):
        try:
            self.service_delete(request, admin_actor(request, self.organization_of(obj)), obj)
        except APIError as exc:
            raise ServiceRefused(exc) from exc

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except ServiceRefused as refused:
            self.report_api_error(request, refused.error)
            opts = self.model._meta
            url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[object_id])
            return HttpResponseRedirect(url)

    def delete_queryset(self, request, queryset):
        """The changelist's "delete selected": each row through the delete service."""
        self.run_service_action(
            request,
            queryset,
            lambda obj, actor: self.service_delete(request, actor, obj),
            done=None,
            operation="delete",
        )


class ReadOnlyMixin:
    """Screens to browse, never to edit by hand. First among the bases, so it wins over the
    tenancy mixin's write permissions."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyAdmin(ReadOnlyMixin, admin.ModelAdmin):
    pass


class TenantReadOnlyAdmin(ReadOnlyMixin, TenantAdminMixin, admin.ModelAdmin):
    """Browse-only screens (audit log, events): scoped like the rest, never edited by hand."""


__all__ = [
    "APIError",
    "ReadOnlyAdmin",
    "ServiceAdmin",
    "TenantAdminMixin",
    "TenantReadOnlyAdmin",
    "admin_actor",
    "staff_actor",
]
