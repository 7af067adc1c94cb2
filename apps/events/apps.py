from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "apps.events"
    label = "events"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.conf import settings
        from django.core.signals import request_started

        from . import services
        from .embedded import scheduler

        scheduler.configure(attempt=services.webhook_delivery_attempt, sweep=services.webhook_deliveries_sweep)

        from apps.core import changes

        # payloads, policies, states: the app's rows of the shared tables; tasks: registered in
        # every process, since the queue finds the delivery task by its stable name.
        from . import payloads, policies, states, tasks  # noqa: F401
        from .services import emit_change

        # Every change recorded through apps.core.changes gets its event (when it has one).
        changes.register_writer(emit_change)

        if settings.WEBHOOK_DELIVERY_BACKEND == "embedded" and settings.WEBHOOK_EMBEDDED_AUTOSTART:
            from .embedded import autostart

            request_started.connect(autostart, dispatch_uid="webhook-embedded-autostart")
