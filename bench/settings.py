"""Settings for the benchmark server: the product's settings, plus the baseline endpoint's URL.

The product code carries no benchmark endpoints; only `bench/customers_list.py` points gunicorn
here (DJANGO_SETTINGS_MODULE=bench.settings).
"""

from stateset.settings import *  # noqa: F403

ROOT_URLCONF = "bench.baseline"
