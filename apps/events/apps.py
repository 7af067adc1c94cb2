from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "apps.events"
    label = "events"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.conf import settings
        from django.core.signals import request_started

        if settings.WEBHOOK_DELIVERY_BACKEND == "embedded" and settings.WEBHOOK_EMBEDDED_AUTOSTART:
            from .embedded import autostart

            request_started.connect(autostart, dispatch_uid="webhook-embedded-autostart")
