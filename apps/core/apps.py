from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # schema registers the OpenAPI authentication extension; tasks registers the tasks in every
        # process (jobs queue theirs by its stable name, which only finds a registered task).
        from . import schema, tasks  # noqa: F401
