"""StateSet One settings: everything that differs between machines comes from the environment.

See README.md ("Configuration") for the full list of variables.
"""

import os
import sys
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name, default=False):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name, default=""):
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY") or "insecure-development-key-change-me-in-production-0123456789"
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.sites",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "corsheaders",
    "allauth",
    "allauth.account",
    "apps.core",
    "apps.accounts",
    "apps.events",
    "apps.crm",
    "apps.graphql",
]

MIDDLEWARE = [
    "apps.core.middleware.RequestIdMiddleware",
    "apps.core.middleware.BodySizeLimitMiddleware",
    "apps.core.middleware.HeaderCheckMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "apps.core.middleware.JsonBodyQueryMiddleware",
]

ROOT_URLCONF = "stateset.urls"
WSGI_APPLICATION = "stateset.wsgi.application"
ASGI_APPLICATION = "stateset.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database: PostgreSQL in production and CI (DATABASE_URL), SQLite by default.
DATABASE_URL = os.environ.get("DATABASE_URL", "")
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the in-process Celery thread and request threads write without "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django's backend, reading timestamps with psycopg's C loader (see apps/core/postgresql).
    DATABASES["default"]["ENGINE"] = "apps.core.postgresql"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis: Celery broker, cache and rate-limit counters. Without it: in-process tasks, local memory.
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", "stateset"),
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "stateset"}}

# Channel layer (Django Channels): how committed changes reach the GraphQL subscriptions of every
# ASGI server process (apps/graphql/notify.py). Redis when REDIS_URL is set; otherwise the
# in-memory layer, for the single process of `make run`.
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # A receive blocks in Redis for up to 5 s (channels-redis' BZPOPMIN): the socket
                # must wait longer than that (redis-py's default, 5 s, would race it).
                "hosts": [{"address": REDIS_URL, "socket_timeout": 15}],
                "prefix": f"{os.environ.get('CACHE_KEY_PREFIX', 'stateset')}:channels",
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# GraphQL over WebSocket (docs/graphql.md, "Subscriptions").
GRAPHQL_WS_MAX_MESSAGE_BYTES = int(os.environ.get("GRAPHQL_WS_MAX_MESSAGE_BYTES", str(1024 * 1024)))
GRAPHQL_WS_MAX_OPERATIONS = int(os.environ.get("GRAPHQL_WS_MAX_OPERATIONS", "100"))
GRAPHQL_WS_INIT_TIMEOUT = float(os.environ.get("GRAPHQL_WS_INIT_TIMEOUT", "10"))
GRAPHQL_WS_KEEPALIVE_SECONDS = float(os.environ.get("GRAPHQL_WS_KEEPALIVE_SECONDS", "10"))
GRAPHQL_WS_AUTH_RECHECK_SECONDS = float(os.environ.get("GRAPHQL_WS_AUTH_RECHECK_SECONDS", "3"))
GRAPHQL_WS_MAX_QUEUED_MESSAGES = int(os.environ.get("GRAPHQL_WS_MAX_QUEUED_MESSAGES", "1000"))
# Changes within this many seconds are coalesced into one re-run of the subscriptions they touch.
GRAPHQL_SUBSCRIPTIONS_BATCH_DELAY = float(os.environ.get("GRAPHQL_SUBSCRIPTIONS_BATCH_DELAY", "0.05"))
# The safety net for a missed notification: the events of the last LOOKBACK seconds, read every
# POLL_SECONDS by each ASGI process for the organizations it serves.
GRAPHQL_SUBSCRIPTIONS_POLL_SECONDS = float(os.environ.get("GRAPHQL_SUBSCRIPTIONS_POLL_SECONDS", "1"))
GRAPHQL_SUBSCRIPTIONS_POLL_LOOKBACK = float(os.environ.get("GRAPHQL_SUBSCRIPTIONS_POLL_LOOKBACK", "10"))
GRAPHQL_SUBSCRIPTIONS_THREADS = int(os.environ.get("GRAPHQL_SUBSCRIPTIONS_THREADS", "4"))

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
SITE_ID = 1
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = os.environ.get("ACCOUNT_EMAIL_VERIFICATION", "none")
# Staff accounts come from invitations (admin) or create_staff_user; public sign-up is off
# unless this turns it on (read at request time by apps.accounts.adapter).
STATESET_OPEN_SIGNUP = env_bool("STATESET_OPEN_SIGNUP", False)
ACCOUNT_ADAPTER = "apps.accounts.adapter.AccountAdapter"
LOGIN_REDIRECT_URL = "/admin/"
LOGIN_URL = "/accounts/login/"
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Serve static files straight from the apps (no collectstatic needed for `make run`).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
# WhiteNoise warns at startup when STATIC_ROOT is missing, which before any collectstatic is the
# normal state (the finders serve the files). An empty directory says the same thing quietly; on a
# read-only filesystem the warning stays, and there it is worth reading.
try:
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)
except OSError:
    pass

# Request bodies above 10 MB answer 413 REQUEST_TOO_LARGE (see apps.core.middleware).
MAX_REQUEST_BODY_BYTES = 10 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BODY_BYTES
APPEND_SLASH = False

CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS", "")
CORS_URLS_REGEX = r"^/(api/)?v1/.*$"
CORS_EXPOSE_HEADERS = [
    "X-Request-ID",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "Retry-After",
    "Idempotent-Replayed",
]

USE_X_FORWARDED_FOR = env_bool("USE_X_FORWARDED_FOR", False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_TLS_PROXY") else None

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["apps.accounts.authentication.StatesetAuthentication"],
    # Permissions (the policy table) and rate limits are applied by apps.core.views.StatesetAPIView.
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_THROTTLE_CLASSES": [],
    "DEFAULT_RENDERER_CLASSES": [
        "apps.core.renderers.FastJSONRenderer",
        "apps.core.renderers.BrowsableAPIRenderer",
    ],
    # JSON only, checked against the input limits (apps.core.parsers).
    "DEFAULT_PARSER_CLASSES": ["apps.core.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "apps.core.schema.StatesetAutoSchema",
    "EXCEPTION_HANDLER": "apps.core.errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DEFAULT_PAGINATION_CLASS": None,
    "DEFAULT_FILTER_BACKENDS": [],
    "COERCE_DECIMAL_TO_STRING": True,
    "DATETIME_FORMAT": "iso-8601",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "StateSet One API",
    "DESCRIPTION": (
        "REST API of StateSet One. Authenticate with `Authorization: Bearer <api key | JWT>`. "
        "Errors, pagination, filters, idempotency and rate limits follow the StateSet API contract."
    ),
    "VERSION": "2024-01-01",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "PREPROCESSING_HOOKS": ["apps.core.schema.canonical_endpoints_only"],
    "COMPONENT_SPLIT_REQUEST": True,
    # The security scheme and each operation's requirement come from apps.core.schema (listing them
    # here too would name ApiKeyBearer twice on every operation).
}

# Authentication secrets.
STATESET_JWT_SECRET = os.environ.get("STATESET_JWT_SECRET", "")
STATESET_JWT_PUBLIC_KEY = os.environ.get("STATESET_JWT_PUBLIC_KEY", "")
STATESET_JWT_CLAIMS_NAMESPACE = os.environ.get("STATESET_JWT_CLAIMS_NAMESPACE", "https://hasura.io/jwt/claims")
# Rotating keys published by the issuer (Clerk, Firebase): RS256/ES256 tokens are checked against
# the key their `kid` names. Issuer and audience are checked whenever set, whatever the key.
STATESET_JWT_JWKS_URL = os.environ.get("STATESET_JWT_JWKS_URL", "")
STATESET_JWT_JWKS_TIMEOUT = float(os.environ.get("STATESET_JWT_JWKS_TIMEOUT", "3"))
STATESET_JWT_JWKS_REFRESH_INTERVAL = int(os.environ.get("STATESET_JWT_JWKS_REFRESH_INTERVAL", "30"))
STATESET_JWT_ISSUER = os.environ.get("STATESET_JWT_ISSUER", "")
STATESET_JWT_AUDIENCE = os.environ.get("STATESET_JWT_AUDIENCE", "")
# Hasura-style authentication webhook for bearer tokens no configured key can verify.
STATESET_AUTH_WEBHOOK_URL = os.environ.get("STATESET_AUTH_WEBHOOK_URL", "")
STATESET_AUTH_WEBHOOK_MODE = os.environ.get("STATESET_AUTH_WEBHOOK_MODE", "GET")
STATESET_AUTH_WEBHOOK_TIMEOUT = float(os.environ.get("STATESET_AUTH_WEBHOOK_TIMEOUT", "3"))
STATESET_ADMIN_SECRET = os.environ.get("STATESET_ADMIN_SECRET", "")
STATESET_TOKEN_DEFAULT_TTL = int(os.environ.get("STATESET_TOKEN_DEFAULT_TTL", "3600"))
STATESET_TOKEN_MAX_TTL = int(os.environ.get("STATESET_TOKEN_MAX_TTL", str(7 * 24 * 3600)))
STATESET_API_VERSION = "2024-01-01"
# GraphQL queries compile to one SQL statement per root field on PostgreSQL (apps.graphql.sql);
# off, every operation runs through graphql-core's executor (the parity tests compare the two).
STATESET_GRAPHQL_SQL = env_bool("STATESET_GRAPHQL_SQL", True)
# Rate limiting can be switched off (e.g. behind a gateway that already limits).
RATELIMIT_ENABLE = env_bool("RATELIMIT_ENABLE", True)
IDEMPOTENCY_TTL_SECONDS = 24 * 3600
# An in-flight idempotency record older than this is taken to be abandoned (crashed worker).
IDEMPOTENCY_STALE_SECONDS = int(os.environ.get("IDEMPOTENCY_STALE_SECONDS", "60"))
BATCH_SYNC_LIMIT = 1000

# Celery: Redis broker when REDIS_URL is set, otherwise tasks run in-process (eager).
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL or "memory://")
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = not (REDIS_URL or os.environ.get("CELERY_BROKER_URL"))
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Webhooks (apps.events; docs/webhooks.md).
# Loopback, RFC 1918 and unique-local URLs are refused unless this is on (local development,
# tests); link-local and cloud metadata addresses are refused whatever it says (apps/events/ssrf.py).
WEBHOOK_ALLOW_PRIVATE_URLS = env_bool("WEBHOOK_ALLOW_PRIVATE_URLS", False)
WEBHOOK_TIMEOUT_SECONDS = float(os.environ.get("WEBHOOK_TIMEOUT_SECONDS", "30"))
# Seconds before attempt 1, 2, 3...: the contract's schedule; a random extra delay of up to
# WEBHOOK_RETRY_JITTER x the step is added (never less than the step).
WEBHOOK_RETRY_SCHEDULE = [
    float(step) for step in env_list("WEBHOOK_RETRY_SCHEDULE", "0,10,60,300,1800,7200,21600,86400")
]
WEBHOOK_RETRY_JITTER = float(os.environ.get("WEBHOOK_RETRY_JITTER", "0.1"))
# An endpoint is disabled after this many failed attempts in a row, once the run of failures has
# also lasted WEBHOOK_DISABLE_AFTER_SECONDS (a short burst during an outage does not disable it).
WEBHOOK_DISABLE_AFTER_FAILURES = int(os.environ.get("WEBHOOK_DISABLE_AFTER_FAILURES", "20"))
WEBHOOK_DISABLE_AFTER_SECONDS = float(os.environ.get("WEBHOOK_DISABLE_AFTER_SECONDS", str(24 * 3600)))
WEBHOOK_SECRET_ROTATION_SECONDS = int(os.environ.get("WEBHOOK_SECRET_ROTATION_SECONDS", str(24 * 3600)))
WEBHOOK_SWEEP_INTERVAL_SECONDS = float(os.environ.get("WEBHOOK_SWEEP_INTERVAL_SECONDS", "15"))
# "celery": deliveries are Celery tasks (needs a broker and a worker); "embedded": an in-process
# scheduler (threads) delivers and retries, for the single-process setup without Redis.
WEBHOOK_DELIVERY_BACKEND = os.environ.get("WEBHOOK_DELIVERY_BACKEND") or (
    "embedded" if CELERY_TASK_ALWAYS_EAGER else "celery"
)
WEBHOOK_EMBEDDED_THREADS = int(os.environ.get("WEBHOOK_EMBEDDED_THREADS", "4"))
# The embedded scheduler starts with the first HTTP request (so a restarted server resumes due
# retries); under pytest it only starts when a delivery is queued.
WEBHOOK_EMBEDDED_AUTOSTART = env_bool("WEBHOOK_EMBEDDED_AUTOSTART", "pytest" not in sys.modules)

CELERY_BEAT_SCHEDULE = {
    "events.sweep": {"task": "events.sweep", "schedule": WEBHOOK_SWEEP_INTERVAL_SECONDS},
    # Idempotency keys are replayed for 24 h; expired records are deleted hourly.
    "core.purge_idempotency_records": {"task": "core.purge_idempotency_records", "schedule": 3600},
}

REQUIRE_SERVICES = env_bool("REQUIRE_SERVICES", False)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.request": {"level": "ERROR"}, "django.server": {"level": "WARNING"}},
}
