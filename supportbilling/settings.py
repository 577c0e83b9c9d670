"""Settings for Support by Time, read from the environment.

Unset, everything falls back to the embedded default: a SQLite file in the project,
Celery tasks run eagerly in-process, e-mail printed to the console.
"""

import datetime as dt
import os
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from babel.numbers import is_currency
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured, ValidationError

from supportbilling.money import minor_unit_places
from supportbilling.periods import period_parse

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    return env(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    # Development only (DEBUG on): stable per checkout, so sessions survive a restart.
    SECRET_KEY = f"django-insecure-development-{BASE_DIR}"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from our static files, no CDN
    "axes",
    "django_filters",
    "djmoney",
    "django_celery_beat",
    "supportbilling",  # its cursors (supportbilling.prepared)
    "customers",
    "packages",
    "tickets",
    "billing",
    "clientarea",
    "api",
    "webhooks",
    "whmcs",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "supportbilling.middleware.DatabaseUnavailableMiddleware",
    "supportbilling.middleware.NulCharacterMiddleware",  # 400, not a DataError from PostgreSQL
    "supportbilling.middleware.TextCharsetMiddleware",  # 400, not a LookupError (charset=rot13)
    "supportbilling.middleware.AdminFilterValueMiddleware",  # 400, not a date overflow
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "axes.middleware.AxesMiddleware",  # last: it answers locked-out sign-ins
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # counts failed sign-ins (admin, portal, API token)
    "supportbilling.auth.ModelBackendOneQuery",  # Django's ModelBackend, permissions in 1 query
]
# Five wrong passwords for one username from one address lock it for 15 minutes.
AXES_FAILURE_LIMIT = int(env("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = dt.timedelta(minutes=int(env("AXES_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_ENABLED = env_bool("AXES_ENABLED", True)
AXES_LOCKOUT_CALLABLE = "supportbilling.views.sign_in_locked"
# What was typed as the username, cut to the 255 characters axes can store (not a 500).
AXES_USERNAME_CALLABLE = "supportbilling.views.sign_in_username"

# Content Security Policy: everything from our own origin, nothing inline, no framing.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

ROOT_URLCONF = "supportbilling.urls"
WSGI_APPLICATION = "supportbilling.wsgi.application"

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

DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=int(env("DB_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A request must not hang on an unreachable database (failover, network): fail, answer 503.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", int(env("DB_CONNECT_TIMEOUT", "5"))
    )
    # PostgreSQL's JIT compiles a query whose estimated cost passes jit_above_cost, which
    # costs 40-900 ms before its first row: on the dashboard's stamp and the CSV export's COPY
    # it was most of their time (docs/performance.md). Off for the app's connections unless
    # DB_JIT=on (the server's own setting is left alone).
    if env("DB_JIT", "off") == "off":
        DATABASES["default"]["OPTIONS"].setdefault("options", "-c jit=off")
    # Queries are bound on the server and prepared once they have run five times on a
    # connection, so a page's repeated queries (its stamp among them) are not planned on every
    # view (supportbilling.prepared). DB_PREPARED=off behind a pooler that cannot keep
    # prepared statements (PgBouncer in transaction mode before 1.21, or later without
    # max_prepared_statements): parameters are then bound on the client and every query is
    # planned each time.
    if env("DB_PREPARED", "on") != "off":
        DATABASES["default"]["OPTIONS"].setdefault("server_side_binding", True)
        DATABASES["default"]["OPTIONS"].setdefault("prepare_threshold", 5)
# The covering index of the rollup is a PostgreSQL feature; SQLite simply ignores INCLUDE.
SILENCED_SYSTEM_CHECKS = ["models.W040"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = env("LANGUAGE_CODE", "en")
TIME_ZONE = env("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").is_dir() else []
# Uploaded and received files (ticket attachments): never served directly, only through the
# download view that checks who may see them.
MEDIA_ROOT = env("MEDIA_ROOT", str(BASE_DIR / "media"))
# "fragments": rendered pieces of pages (the dashboard's cards), keyed on a digest of what they
# show, so never stale; "dashboards": whole dashboards and History pages (about 50 KB each with
# 3 subscriptions), keyed on their stamp (billing.selectors.portal_stamp). In each process's
# memory on purpose: a deploy (new templates) starts empty, and nothing is shared that a
# template change could leave behind.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "fragments": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "fragments",
        "OPTIONS": {"MAX_ENTRIES": 2000},
    },
    "dashboards": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "dashboards",
        "OPTIONS": {"MAX_ENTRIES": 500},
    },
}

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

LOGIN_URL = "clientarea:login"
LOGIN_REDIRECT_URL = "clientarea:home"
LOGOUT_REDIRECT_URL = "clientarea:login"

# Money: the currencies the catalogue can be priced in; the first is the default.
CURRENCIES = tuple(code.upper() for code in env_list("CURRENCIES", "EUR,USD,GBP,PLN"))
# Amounts are stored with two decimals: a currency with three (KWD, BHD, ...) would be rounded
# to its minor unit and again by the database, so its items would disagree with the
# statements (docs/decisions.md, "Currencies").
for _code in CURRENCIES:
    if not is_currency(_code):
        raise ImproperlyConfigured(f"CURRENCIES: {_code} is not an ISO 4217 currency code.")
    if minor_unit_places(_code) > 2:
        raise ImproperlyConfigured(
            f"CURRENCIES: {_code} has {minor_unit_places(_code)} decimal places; amounts "
            "are kept with at most two, so it cannot be used."
        )
DEFAULT_CURRENCY = CURRENCIES[0]
CURRENCY_CHOICES = [(code, code) for code in CURRENCIES]

# E-mail: printed to the console unless an SMTP host is configured.
EMAIL_BACKEND = env(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if env("EMAIL_HOST")
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_HOST = env("EMAIL_HOST", "localhost")
EMAIL_PORT = int(env("EMAIL_PORT", "25"))
EMAIL_HOST_USER = env("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS")
# Seconds; a hung mail server must not hold a worker (or an alert's claim) for ever.
EMAIL_TIMEOUT = int(env("EMAIL_TIMEOUT", "30"))
# The portal's public address (scheme, host and port, no trailing slash): e-mails sent from a
# worker, outside any request, build their absolute links from it.
SITE_URL = env("SITE_URL", "http://localhost:8000").rstrip("/")
# A named sender at the portal's own host unless set: mail servers and mail clients treat a
# bare address at a host that is not the site's as suspect.
DEFAULT_FROM_EMAIL = env(
    "DEFAULT_FROM_EMAIL", f"Support by Time <support@{urlsplit(SITE_URL).hostname or 'localhost'}>"
)
# Usage alerts (docs/decisions.md, "Usage alert delivery"): their sender, and how many times
# one recipient is tried when the server refuses the address (5xx) or fails for any other
# reason (4xx, connection refused), with back-off between tries, before giving up.
USAGE_ALERT_FROM_EMAIL = env("USAGE_ALERT_FROM_EMAIL", DEFAULT_FROM_EMAIL)
USAGE_ALERT_REFUSED_MAX_ATTEMPTS = int(env("USAGE_ALERT_REFUSED_MAX_ATTEMPTS", "3"))
USAGE_ALERT_MAX_ATTEMPTS = int(env("USAGE_ALERT_MAX_ATTEMPTS", "10"))
# Monthly statement e-mails (docs/statements.md): sender and tries, as for usage alerts.
STATEMENT_FROM_EMAIL = env("STATEMENT_FROM_EMAIL", DEFAULT_FROM_EMAIL)
STATEMENT_MAIL_REFUSED_MAX_ATTEMPTS = int(env("STATEMENT_MAIL_REFUSED_MAX_ATTEMPTS", "3"))
STATEMENT_MAIL_MAX_ATTEMPTS = int(env("STATEMENT_MAIL_MAX_ATTEMPTS", "10"))
# Ticket e-mails (docs/decisions.md, "Ticket e-mail notifications"): their sender, and the
# tries of one e-mail to one address, as for usage alerts.
TICKET_MAIL_FROM_EMAIL = env("TICKET_MAIL_FROM_EMAIL", DEFAULT_FROM_EMAIL)
TICKET_MAIL_REFUSED_MAX_ATTEMPTS = int(env("TICKET_MAIL_REFUSED_MAX_ATTEMPTS", "3"))
TICKET_MAIL_MAX_ATTEMPTS = int(env("TICKET_MAIL_MAX_ATTEMPTS", "10"))
# Mail intake (docs/email.md): the mailbox whose mail becomes tickets and replies. No host:
# intake is off (the embedded demo). IMAPS by default; STARTTLS or, on a trusted local
# network only, neither. Processed mail is moved to the done folder.
MAIL_INTAKE_HOST = env("MAIL_INTAKE_HOST")
MAIL_INTAKE_SSL = env_bool("MAIL_INTAKE_SSL", True)
MAIL_INTAKE_STARTTLS = env_bool("MAIL_INTAKE_STARTTLS", False)
MAIL_INTAKE_PORT = int(env("MAIL_INTAKE_PORT", "993" if MAIL_INTAKE_SSL else "143"))
MAIL_INTAKE_USER = env("MAIL_INTAKE_USER")
MAIL_INTAKE_PASSWORD = env("MAIL_INTAKE_PASSWORD")
MAIL_INTAKE_FOLDER = env("MAIL_INTAKE_FOLDER", "INBOX")
MAIL_INTAKE_DONE_FOLDER = env("MAIL_INTAKE_DONE_FOLDER", "Processed")
MAIL_INTAKE_MAX_BYTES = int(env("MAIL_INTAKE_MAX_BYTES", str(25 * 1024 * 1024)))
MAIL_INTAKE_BATCH = int(env("MAIL_INTAKE_BATCH", "50"))
MAIL_INTAKE_TIMEOUT = int(env("MAIL_INTAKE_TIMEOUT", "60"))  # seconds per IMAP command
# Files kept with ticket messages (docs/email.md, "Attachments"): the largest one, and the file
# name endings never kept (programs, scripts, and pages that would run in a browser).
ATTACHMENT_MAX_BYTES = int(env("ATTACHMENT_MAX_BYTES", str(10 * 1024 * 1024)))
ATTACHMENT_DENIED_EXTENSIONS = env_list(
    "ATTACHMENT_DENIED_EXTENSIONS",
    "exe,com,bat,cmd,scr,pif,msi,msp,dll,cpl,jar,js,jse,vbs,vbe,wsf,wsh,ps1,sh,hta,lnk,"
    "html,htm,xhtml,shtml,svg,xml",
)

# Celery: with no REDIS_URL the tasks run eagerly in the calling process.
REDIS_URL = env("REDIS_URL")
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = REDIS_URL or "cache+memory://"
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_ACKS_LATE = True  # a batch killed mid-way is delivered again
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# With Redis down, sending a task must fail in about a second instead of hanging a request
# (kombu retries 3 times, the result backend 20 times with 1 s pauses by default). Callers
# send through supportbilling.queue.task_enqueue, which logs the failure; periodic checks
# re-send the work (docs/decisions.md, "Faults").
_RETRY_ONCE = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 2, **_RETRY_ONCE}
CELERY_TASK_PUBLISH_RETRY_POLICY = _RETRY_ONCE
CELERY_REDIS_SOCKET_CONNECT_TIMEOUT = 2
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"retry_policy": _RETRY_ONCE}
# Synced into the database schedule by beat on start. Usage alerts: docs/decisions.md.
CELERY_BEAT_SCHEDULE = {
    "usage-alerts-check": {
        "task": "billing.usage_alerts_check",
        "schedule": int(env("USAGE_ALERTS_CHECK_EVERY", "300")),
    },
    # Ticket e-mails whose task was lost (Redis down) or whose back-off is over.
    "ticket-mail-send": {
        "task": "tickets.notifications_send",
        "schedule": int(env("TICKET_MAIL_SEND_EVERY", "300")),
    },
    # Reads the helpdesk's mailbox (a no-op while MAIL_INTAKE_HOST is unset).
    "mail-intake-fetch": {
        "task": "tickets.mail_fetch",
        "schedule": int(env("MAIL_INTAKE_EVERY", "60")),
        "options": {"expires": int(env("MAIL_INTAKE_EVERY", "60"))},
    },
    # Webhook deliveries whose task was lost or whose back-off is over (docs/webhooks.md).
    "webhooks-send": {
        "task": "webhooks.deliveries_send",
        "schedule": int(env("WEBHOOK_SEND_EVERY", "60")),
    },
    # Exportable items to WHMCS (a no-op while WHMCS_API_URL is unset; docs/whmcs.md).
    "whmcs-push": {
        "task": "whmcs.items_push",
        "schedule": int(env("WHMCS_PUSH_EVERY", "3600")),
    },
    # The monthly close is also in the database schedule (1st of the month, 00:05). Beat
    # drops a run it cannot send (Redis down at that minute), so this hourly run closes any
    # ended month still open once Redis is back; with nothing to close it reads two rows.
    # Statements a lost task left unrendered or unsent (docs/statements.md).
    "statements-catch-up": {
        "task": "billing.statements_catch_up",
        "schedule": int(env("STATEMENTS_CATCH_UP_EVERY", "900")),
    },
    # Export files older than EXPORT_JOB_KEEP_DAYS are deleted (docs/decisions.md).
    "export-jobs-expire": {
        "task": "billing.export_jobs_expire",
        "schedule": int(env("EXPORT_JOBS_EXPIRE_EVERY", "3600")),
    },
    "close-ended-periods-hourly": {
        "task": "billing.close_ended_periods",
        "schedule": int(env("CLOSE_ENDED_PERIODS_EVERY", "3600")),
    },
}

# Webhooks: (connect, read) timeout in seconds of one POST to a receiver; short, a slow
# receiver is retried later rather than holding a worker.
WEBHOOK_TIMEOUT = (
    int(env("WEBHOOK_CONNECT_TIMEOUT", "3")),
    int(env("WEBHOOK_READ_TIMEOUT", "5")),
)

# WHMCS connector (docs/whmcs.md): the API's URL (https://billing.example/includes/api.php),
# API credentials, the optional access key, (connect, read) timeouts in seconds, and the days
# until an item with the "due date" invoice action is due.
WHMCS_API_URL = env("WHMCS_API_URL")
WHMCS_IDENTIFIER = env("WHMCS_IDENTIFIER")
WHMCS_SECRET = env("WHMCS_SECRET")
WHMCS_ACCESS_KEY = env("WHMCS_ACCESS_KEY")
WHMCS_TIMEOUT = (int(env("WHMCS_CONNECT_TIMEOUT", "5")), int(env("WHMCS_READ_TIMEOUT", "20")))
WHMCS_DUE_DAYS = int(env("WHMCS_DUE_DAYS", "14"))

# Rollup: subscriptions per batch (one Celery sub-task each).
ROLLUP_BATCH_SIZE = int(env("ROLLUP_BATCH_SIZE", "10000"))
# An export job's file is kept this many days after it is written, then deleted.
EXPORT_JOB_KEEP_DAYS = int(env("EXPORT_JOB_KEEP_DAYS", "7"))

# The review window (docs/billing-rules.md, "Review window and disputes"): for this many days
# after a month closes its items stay in review (clients may dispute them, nothing is exported)
# unless finance releases the month earlier. 0 (the default): exportable as soon as closed.
try:
    REVIEW_WINDOW_DAYS = int(env("REVIEW_WINDOW_DAYS", "0").strip() or "0")
except ValueError as exc:
    raise ImproperlyConfigured("REVIEW_WINDOW_DAYS must be a whole number of days.") from exc
if not 0 <= REVIEW_WINDOW_DAYS <= 90:
    raise ImproperlyConfigured("REVIEW_WINDOW_DAYS must be 0 to 90 days.")

# Billing start and subscription dates (docs/decisions.md, "Billing start and periods").
# BILLING_START (YYYY-MM) names the first month billed, for data imported from before the first
# BillingPeriod row; unset, billing began in the month of that first row.
BILLING_START = env("BILLING_START").strip()
if BILLING_START:
    try:
        period_parse(BILLING_START)
    except ValidationError as exc:
        raise ImproperlyConfigured(f"BILLING_START: {' '.join(exc.messages)}") from exc
# How far after the current month a subscription may start (0 to 120 months).
SUBSCRIPTION_START_MAX_MONTHS_AHEAD = int(env("SUBSCRIPTION_START_MAX_MONTHS_AHEAD", "12"))
if not 0 <= SUBSCRIPTION_START_MAX_MONTHS_AHEAD <= 120:
    raise ImproperlyConfigured("SUBSCRIPTION_START_MAX_MONTHS_AHEAD must be 0 to 120 months.")

# Who a new ticket is assigned to (docs/decisions.md, "The operator's day"): "none" leaves it
# unassigned; "round_robin" hands new tickets to the active operators in turn.
TICKET_AUTO_ASSIGN = env("TICKET_AUTO_ASSIGN", "none").strip() or "none"
if TICKET_AUTO_ASSIGN not in ("none", "round_robin"):
    raise ImproperlyConfigured('TICKET_AUTO_ASSIGN must be "none" or "round_robin".')

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # "Token <key>", and "Bearer <key>" as generated clients send it
        "api.authentication.TokenOrBearerAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # required fields, error responses, decimals and ids as the API has them (docs/api.md)
    "DEFAULT_SCHEMA_CLASS": "api.schema.ApiAutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "COERCE_DECIMAL_TO_STRING": True,
    # JSON numbers are read as Decimal (never float); services' refusals become 400s.
    "DEFAULT_PARSER_CLASSES": ["api.errors.DecimalJSONParser"],
    "EXCEPTION_HANDLER": "api.errors.api_exception_handler",
    "DEFAULT_PAGINATION_CLASS": "api.errors.ApiPagination",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Support by Time API",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Separate request and response components: each side says what is required.
    "COMPONENT_SPLIT_REQUEST": True,
    "COMPONENT_NO_READ_ONLY_REQUIRED": False,
    "ENUM_NAME_OVERRIDES": {
        "TicketStatusEnum": "tickets.models.TicketStatus",
        "SubscriptionStatusEnum": "packages.models.SubscriptionStatus",
        "BillableItemStatusEnum": "billing.models.ItemStatus",
        "CurrencyEnum": "supportbilling.settings.CURRENCY_CHOICES",
        "BillingModeEnum": "packages.models.BillingMode",
        "OveragePolicyEnum": "packages.models.OveragePolicy",
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    # A worker logs each task it ran; tasks run in-process (no REDIS_URL) would flood the
    # console of every request and command with those lines.
    "loggers": {
        "celery.app.trace": {"level": "INFO" if REDIS_URL else "WARNING"},
        # WeasyPrint logs each step of every statement PDF it renders at INFO.
        "weasyprint.progress": {"level": "WARNING"},
    },
}

# HTTPS: with DEBUG off the defaults are production's (`manage.py check --deploy` is clean);
# a plain-http run on a laptop sets SECURE_SSL_REDIRECT=0 and SECURE_COOKIES=0.
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    # Health checks (docker compose, load balancers) call the app over plain http.
    SECURE_REDIRECT_EXEMPT = [r"^healthz/$"]
    SECURE_HSTS_SECONDS = int(env("SECURE_HSTS_SECONDS", str(365 * 24 * 3600)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
SESSION_COOKIE_HTTPONLY = True
SECURE_REFERRER_POLICY = "same-origin"
