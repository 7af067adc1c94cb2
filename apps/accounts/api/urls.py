from .views import APIKeyViewSet, AuditLogViewSet

# collection -> viewset, registered by apps.core.routing.load_collections
collections = {"audit_logs": AuditLogViewSet, "api_keys": APIKeyViewSet}
