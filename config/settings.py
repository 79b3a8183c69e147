"""Lifeline settings: one module, configured by environment variables.

The defaults run on a laptop with nothing installed (SQLite, a filesystem Celery broker under
``var/``); production sets ``DATABASE_URL``, ``CELERY_BROKER_URL``, ``SECRET_KEY`` and
``DEBUG=false``. A value that cannot be parsed fails loudly at start-up.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

# Where the embedded default keeps its SQLite file and broker folders.
VAR_DIR = Path(env.str("LIFELINE_VAR_DIR", default=str(BASE_DIR / "var")))

DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "dev-only-insecure-key-change-me"
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# --- HTTPS hardening (docs/security.md) ----------------------------------------------------
# On whenever DEBUG is off: HTTPS redirect, secure cookies, HSTS. LIFELINE_HTTPS=false serves
# plain http (make run-prod on this machine does); behind a TLS proxy set LIFELINE_BEHIND_PROXY.
LIFELINE_HTTPS = env.bool("LIFELINE_HTTPS", default=not DEBUG)
SECURE_SSL_REDIRECT = LIFELINE_HTTPS
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]  # probes from inside the network
SESSION_COOKIE_SECURE = LIFELINE_HTTPS
CSRF_COOKIE_SECURE = LIFELINE_HTTPS
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000 if LIFELINE_HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=LIFELINE_HTTPS)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=LIFELINE_HTTPS)
if env.bool("LIFELINE_BEHIND_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "knox",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "accounts",
    "journeys",
    "insights",
    "health",
    "playbooks",
    "reports",
    "web",
    "ops",
    "access",
]

MIDDLEWARE = [
    "ops.middleware.RequestMetricsMiddleware",
    "config.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "config.middleware.RequestBodyLimitMiddleware",
    "access.throttling.RateLimitHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
                "web.context_processors.work_counts",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------------
# DATABASE_URL, e.g. postgres://user:pass@host:5432/lifeline; default: SQLite under var/.
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'lifeline.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web app, a worker and beat share one file: wait for locks, take the write lock up
    # front (no upgrade deadlocks), and let readers work beside the writer (WAL).
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": env.int("LIFELINE_PASSWORD_MIN_LENGTH", default=10)},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Every password check goes through the attempt limit (access/login_limits.py).
AUTHENTICATION_BACKENDS = ["access.login_limits.LimitedModelBackend"]
LIFELINE_LOGIN_MAX_ATTEMPTS = env.int("LIFELINE_LOGIN_MAX_ATTEMPTS", default=10)
LIFELINE_LOGIN_WINDOW_SECONDS = env.int("LIFELINE_LOGIN_WINDOW_SECONDS", default=900)
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# Request bodies up to 10 MB are read (an events batch of 10,000 rows fits); larger ones are
# refused before any parsing.
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

# --- Email (Django's own names) -------------------------------------------------------------
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=30)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Lifeline <lifeline@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# With no SMTP server configured, a laptop writes emails as files under var/sent-emails/.
EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND",
    default=(
        "django.core.mail.backends.smtp.EmailBackend"
        if "EMAIL_HOST" in env.ENVIRON or not DEBUG
        else "django.core.mail.backends.filebased.EmailBackend"
    ),
)
EMAIL_FILE_PATH = VAR_DIR / "sent-emails"
# The outbox: how long a worker owns a claimed email before another may retry it, and how many
# attempts before an email is marked failed.
LIFELINE_EMAIL_LEASE_SECONDS = env.int("LIFELINE_EMAIL_LEASE_SECONDS", default=600)
LIFELINE_EMAIL_MAX_ATTEMPTS = env.int("LIFELINE_EMAIL_MAX_ATTEMPTS", default=8)
# The wait after the first failed attempt (doubled after each further one, capped at an hour).
LIFELINE_EMAIL_BACKOFF_SECONDS = env.int("LIFELINE_EMAIL_BACKOFF_SECONDS", default=60)

# Links in emails point here; Message-IDs use this domain.
LIFELINE_BASE_URL = env.str("LIFELINE_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")
EMAIL_MESSAGE_ID_DOMAIN = env.str("EMAIL_MESSAGE_ID_DOMAIN", default="lifeline.localhost")

# The renewals forecast weighs each account's ARR by the renewal rate of its band,
# e.g. LIFELINE_RENEWAL_RATES="red=0.5,yellow=0.8,green=0.95,unscored=0.8".
LIFELINE_RENEWAL_RATES = {"red": 0.5, "yellow": 0.8, "green": 0.95, "unscored": 0.8}
for _pair in filter(None, (p.strip() for p in env.str("LIFELINE_RENEWAL_RATES", default="").split(","))):
    _band, _, _rate = _pair.partition("=")
    try:
        _value = float(_rate)
    except ValueError:
        _value = -1.0
    if _band.strip() not in LIFELINE_RENEWAL_RATES or not 0 <= _value <= 1:
        raise ImproperlyConfigured(
            f"LIFELINE_RENEWAL_RATES: {_pair!r} is not band=rate with a band of red, yellow, green, "
            "unscored and a rate from 0 to 1."
        )
    LIFELINE_RENEWAL_RATES[_band.strip()] = _value

# --- Celery -------------------------------------------------------------------------------
# Default: kombu's filesystem transport under var/broker, which works across processes with
# no server. Production: redis://... or amqp://...
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# One queue for every task; its name can be set so that several deployments (or test runs) share a Redis.
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Tests may run tasks in-process; never in production.
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)

# --- Operations ---------------------------------------------------------------------------
# Each run of a pipeline step is recorded (ops status page, metrics); older runs are pruned.
LIFELINE_STEP_RUNS_KEEP_DAYS = env.int("LIFELINE_STEP_RUNS_KEEP_DAYS", default=14)
# Retention of raw events (daily rollups are kept): 0 keeps them all; else at least 30 days.
LIFELINE_EVENT_RETENTION_DAYS = env.int("LIFELINE_EVENT_RETENTION_DAYS", default=0)
if LIFELINE_EVENT_RETENTION_DAYS and LIFELINE_EVENT_RETENTION_DAYS < 30:
    raise ImproperlyConfigured("LIFELINE_EVENT_RETENTION_DAYS must be 0 (keep all) or at least 30.")
# /metrics (Prometheus) answers only requests with "Authorization: Bearer <token>" when set.
LIFELINE_METRICS_TOKEN = env.str("LIFELINE_METRICS_TOKEN", default="")

# --- REST API -----------------------------------------------------------------------------
# API tokens (django-rest-knox): hashed, "Authorization: Token <key>", valid this many days.
LIFELINE_TOKEN_TTL_DAYS = env.int("LIFELINE_TOKEN_TTL_DAYS", default=90)
REST_KNOX = {"AUTH_HEADER_PREFIX": "Token", "TOKEN_TTL": None, "AUTO_REFRESH": False}
# Rate-limit counters: per process by default; CACHE_URL=redis://... shares them between workers.
CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://")}
REST_FRAMEWORK = {
    # Token first: an anonymous request then gets 401 with WWW-Authenticate, not 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "access.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Generous by default (integrations push in bursts); X-RateLimit-* headers on every answer.
    "DEFAULT_THROTTLE_CLASSES": ["access.throttling.UserRateLimit", "access.throttling.AnonRateLimit"],
    "DEFAULT_THROTTLE_RATES": {
        "user": env.str("LIFELINE_API_RATE_USER", default="20000/min"),
        "anon": env.str("LIFELINE_API_RATE_ANON", default="1000/min"),
    },
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "accounts.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "accounts.pagination.StableOrderingFilter",
    ],
    # Every operation documents its error answers (400/401/403/404/413/415/429), not only success.
    "DEFAULT_SCHEMA_CLASS": "accounts.api_schema.ErrorsDocumentedAutoSchema",
    "EXCEPTION_HANDLER": "accounts.api_errors.exception_handler",
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "accounts.negotiation.FormatCheckedNegotiation",
    "COERCE_DECIMAL_TO_STRING": True,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Lifeline API",
    "DESCRIPTION": "Customer success platform: accounts, ingestion, journeys, health, work.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "AccountStatusEnum": "accounts.models.Account.Status",
        "TicketStatusEnum": "accounts.models.Ticket.Status",
        "TaskStatusEnum": "playbooks.models.Task.Status",
    },
}

# LOG_FORMAT=json: one JSON object a line with the request id (web) or task id (worker) and the
# account id where one applies; "plain" (the default) is for people reading a terminal.
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, not {LOG_FORMAT!r}.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "config.logging.ContextFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "config.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["context"]}
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
