"""Gunicorn settings for production: `gunicorn -c stateset/gunicorn.conf.py stateset.wsgi:application`.

Every value can be changed from the environment; command-line flags (or GUNICORN_CMD_ARGS)
override this file. The request limits are described in docs/api.md ("Limits on input").
"""

import os


def _int(name, default):
    return int(os.environ.get(name) or default)


# Every interface: the server runs behind a proxy, in a container or on a private network.
bind = [f"0.0.0.0:{os.environ.get('PORT') or 8000}"]

# The request path is CPU-bound Python, so parallelism comes from processes (one per core, plus
# one so a core is not idle while a worker waits on the database); a couple of threads per
# process overlap those waits and keep HTTP keep-alive working.
workers = _int("WEB_CONCURRENCY", (os.cpu_count() or 1) + 1)
worker_class = "gthread"
threads = _int("GUNICORN_THREADS", 2)

# A worker silent this long is killed and replaced; a restart lets requests this long finish.
timeout = _int("GUNICORN_TIMEOUT", 30)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
# Above a load balancer's idle timeout would let it reuse a connection gunicorn just closed.
keepalive = _int("GUNICORN_KEEPALIVE", 5)
# Recycling workers now and then bounds slow memory growth; the jitter keeps them from all
# restarting at once. 0 turns it off.
max_requests = _int("GUNICORN_MAX_REQUESTS", 5000)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 500)

# Gunicorn answers requests over these limits itself, with a small HTML page, before Django sees
# them. The request line gets gunicorn's maximum (8190 bytes), so that filters such as `id_in`
# with 100 ids fit; header fields get 16 KB each, for large JWTs and cookies.
limit_request_line = 8190
limit_request_fields = _int("GUNICORN_LIMIT_REQUEST_FIELDS", 100)
limit_request_field_size = _int("GUNICORN_LIMIT_REQUEST_FIELD_SIZE", 16384)

# Logs go to the console, where the process manager collects them; GUNICORN_ACCESS_LOG set to
# nothing drops the access log (a proxy in front often keeps one already).
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-") or None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
