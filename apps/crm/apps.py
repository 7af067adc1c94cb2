from django.apps import AppConfig


class CrmConfig(AppConfig):
    name = "apps.crm"
    label = "crm"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # The app's rows of the shared tables: policy, transition tables, event payloads.
        from . import payloads, policies, states  # noqa: F401
