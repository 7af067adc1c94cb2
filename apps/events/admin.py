from django.contrib import admin

from apps.core.admin import ReadOnlyAdmin, TenantAdminMixin

from .models import Event


@admin.register(Event)
class EventAdmin(TenantAdminMixin, ReadOnlyAdmin):
    list_display = ["id", "type", "object_id", "sequence", "organization", "created_at"]
    list_filter = ["type", "organization"]
    search_fields = ["id", "object_id", "type", "request_id"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
