from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    label = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from apps.core import changes, context

        from . import policies  # noqa: F401 - the app's rows of the policy table
        from .authentication import anonymous_actor
        from .services import audit_change

        # Every change recorded through apps.core.changes gets its audit row.
        changes.register_writer(audit_change)
        # Core's views resolve a credential-less caller (X-Account-Id) through accounts.
        context.register_anonymous_actor(anonymous_actor)
