import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "stateset.settings")
application = get_wsgi_application()

# Everything loaded so far (Django, the apps, the URL and serializer machinery) lives as long as
# the process: keep it out of the cyclic collector's scans, and collect the young generation less
# often. A list page builds thousands of short-lived objects, and with the defaults the collector
# took about a quarter of its time rescanning the same startup objects.
gc.freeze()
gc.set_threshold(50_000, 10, 10)
