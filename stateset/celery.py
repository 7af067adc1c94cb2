import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "stateset.settings")

app = Celery("stateset")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
