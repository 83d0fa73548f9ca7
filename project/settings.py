"""Palabre settings: everything comes from the environment.

Two modes:

* the embedded default (no variable at all): SQLite and keys in ``PALABRE_DATA_DIR``
  (generated on first run, outside git), Channels' in-memory layer;
* production (``DJANGO_ENV=production``): every secret is mandatory and read from the
  environment; a missing one stops the process at start (Zulip's
  ``get_mandatory_secret``), so production never inherits an embedded default.
"""

import os
from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from crypto.embedded import ensure_secret_file
from crypto.keyring import generate_master_keys
from crypto.signing import generate_sealing_keys

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

DJANGO_ENV = env.str("DJANGO_ENV", default="embedded")
if DJANGO_ENV not in {"embedded", "production"}:
    raise ImproperlyConfigured(f"DJANGO_ENV must be 'embedded' or 'production', not {DJANGO_ENV!r}")
PRODUCTION = DJANGO_ENV == "production"

PALABRE_DATA_DIR = Path(env.str("PALABRE_DATA_DIR", default=str(BASE_DIR / "var"))).resolve()


def secret(name: str) -> str:
    """A secret exactly as the environment holds it, "" if unset. Not ``env.str``:
    django-environ reads a value that starts with "$" as the name of another variable
    (its proxy syntax), and one key in 50 from Django's own ``get_random_secret_key``
    starts with "$": such a SECRET_KEY stopped production at start, or would have
    become the value of whatever variable its tail named."""
    return os.environ.get(name, "")


def mandatory_secret(name: str) -> str:
    value = secret(name)
    if not value:
        raise ImproperlyConfigured(f"{name} must be set in production (DJANGO_ENV=production).")
    return value


def embedded_secret(name: str, filename: str, generate) -> str:
    """Production: the environment or nothing. Embedded: the environment, else a file in
    the data folder generated on first run."""
    if PRODUCTION:
        return mandatory_secret(name)
    return secret(name) or ensure_secret_file(PALABRE_DATA_DIR / filename, generate)


def _generate_secret_key() -> str:
    from django.core.management.utils import get_random_secret_key

    return get_random_secret_key()


SECRET_KEY = embedded_secret("SECRET_KEY", "secret_key", _generate_secret_key)
PALABRE_MASTER_KEYS = embedded_secret("PALABRE_MASTER_KEYS", "master_keys", generate_master_keys)
PALABRE_SEALING_KEYS = embedded_secret("PALABRE_SEALING_KEYS", "sealing_keys", generate_sealing_keys)

DEBUG = env.bool("DEBUG", default=False)
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DEBUG must be off in production.")

if PRODUCTION:
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[])
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("ALLOWED_HOSTS must be set in production.")
else:
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "axes",
    "csp",
    "rooms",
    "ballots",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "project.auth.ModelBackend",
]

ROOT_URLCONF = "project.urls"
ASGI_APPLICATION = "project.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "project" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# SQLite: IMMEDIATE transactions take the write lock at BEGIN, so concurrent writers queue
# instead of failing with "database is locked" on upgrade, and WAL lets readers go on.
# An empty DATABASE_URL is no URL at all: the embedded default, or a refusal in production.
DATABASE_URL = (
    mandatory_secret("DATABASE_URL")
    if PRODUCTION
    else env.str("DATABASE_URL", default="") or f"sqlite:///{PALABRE_DATA_DIR / 'palabre.sqlite3'}"
)
DATABASES = {"default": environ.Env.db_url_config(DATABASE_URL)}
if "ENGINE" not in DATABASES["default"]:
    raise ImproperlyConfigured("DATABASE_URL names no database engine Palabre knows.")
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    DATABASES["default"].setdefault("TEST", {})["NAME"] = str(
        PALABRE_DATA_DIR / "test-palabre.sqlite3"
    )
# Persistent connections on both engines: a daphne does its database work on one thread
# (database_sync_to_async), and opening a connection per handshake was a fifth of its
# server CPU (BENCHMARKS.md).
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

REDIS_URL = env.str("REDIS_URL", default="")
if PRODUCTION and not REDIS_URL:
    raise ImproperlyConfigured("REDIS_URL must be set in production.")

# The room hub subscribes one channel per process, so the layer carries one message per
# broadcast per process. In memory (one process): give that channel room for bursts
# (channels' default of 100 drops silently when full).
#
# Redis: channels-redis' pub/sub layer. The list-based RedisChannelLayer made every
# broadcast cost each process a BZPOPMIN, a backup-queue script and a ZADD on receive,
# a quarter of a daphne's CPU in many small rooms; with PUBLISH and a pushed receive the
# same two processes carried 6,727 deliveries/s at p99 < 200 ms instead of 1,682
# (BENCHMARKS.md). What it gives up: a process cut off from Redis misses what is
# published meanwhile instead of finding it queued. Broadcast was already best effort
# (rooms.broadcast): the log is the truth, the hub holds an early frame for its gap, and
# clients fill gaps with ``sync``. socket_timeout=None: redis-py 8's default 5 s cut idle
# layer connections (channels_redis#422, anchors §0).
CHANNEL_CAPACITY = env.int("PALABRE_CHANNEL_CAPACITY", default=10_000)
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {
                "hosts": [
                    {
                        "address": REDIS_URL,
                        "socket_timeout": None,
                        "socket_connect_timeout": 5,
                        "max_connections": 1000,
                        "retry_on_timeout": True,
                    }
                ],
                "prefix": env.str("PALABRE_CHANNEL_PREFIX", default="palabre"),
            },
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("PALABRE_CHANNEL_PREFIX", default="palabre"),
        }
    }
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "project.layers.InMemoryChannelLayer",
            "CONFIG": {"capacity": CHANNEL_CAPACITY, "expiry": 60},
        }
    }
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "fr"
LANGUAGES = [("fr", "Français"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Europe/Paris"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = PALABRE_DATA_DIR / "staticfiles"
if not PRODUCTION:
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns when it is missing
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = not PRODUCTION

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGIN_URL = "/"
CSRF_FAILURE_VIEW = "project.errors.csrf_failure"

# Login throttling (django-axes): same lock whether or not the username exists.
AXES_FAILURE_LIMIT = env.int("PALABRE_LOGIN_FAILURES", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
AXES_LOCKOUT_CALLABLE = "project.views.login_locked_out"

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
        "base-uri": [NONE],
        "object-src": [NONE],
    }
}

# Django's database sessions, read with SQL built once (project/sessions.py).
SESSION_ENGINE = "project.sessions"
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
if PRODUCTION:
    # TLS ends at the proxy in front of daphne (README); it says so with X-Forwarded-Proto.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# Email notices (issue 10) leave from the worker only, never from a request. Production:
# SMTP from EMAIL_URL (django-environ, e.g. smtp+tls://user:password@mail.example:587;
# default a local MTA); embedded: the console, unless EMAIL_URL is set.
EMAIL_URL = env.str("EMAIL_URL", default="smtp://localhost:25" if PRODUCTION else "")
if EMAIL_URL:
    vars().update(environ.Env.email_url_config(EMAIL_URL))
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
# An SMTP server that never answers must not stall the worker's other passes.
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=20)
_SITE_HOST = ALLOWED_HOSTS[0].lstrip(".") if ALLOWED_HOSTS else "localhost"
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default=f"Palabre <noreply@{_SITE_HOST}>")
# Where the links of a notice point.
PALABRE_SITE_URL = env.str(
    "PALABRE_SITE_URL", default=f"https://{_SITE_HOST}" if PRODUCTION else "http://127.0.0.1:8000"
).rstrip("/")
PALABRE_NOTICE_BATCH = env.int("PALABRE_NOTICE_BATCH", default=200)
PALABRE_NOTICE_MAX_ATTEMPTS = env.int("PALABRE_NOTICE_MAX_ATTEMPTS", default=8)

# Registration (issue 10): supporting documents are never written to a
# temporary file in clear: a request carries a few bounded documents, read in memory
# (Django's ASGI handler spools a body to disk past FILE_UPLOAD_MAX_MEMORY_SIZE; the
# proxy in front should refuse bodies larger than PALABRE_UPLOAD_MAX_REQUEST_BYTES).
PALABRE_DOCUMENT_MAX_BYTES = env.int("PALABRE_DOCUMENT_MAX_BYTES", default=5 * 1024 * 1024)
PALABRE_REGISTRATION_MAX_DOCUMENTS = env.int("PALABRE_REGISTRATION_MAX_DOCUMENTS", default=10)
PALABRE_UPLOAD_MAX_FILES = 4
PALABRE_UPLOAD_MAX_REQUEST_BYTES = PALABRE_DOCUMENT_MAX_BYTES * PALABRE_UPLOAD_MAX_FILES + 1024 * 1024
FILE_UPLOAD_HANDLERS = ["django.core.files.uploadhandler.MemoryFileUploadHandler"]
FILE_UPLOAD_MAX_MEMORY_SIZE = PALABRE_UPLOAD_MAX_REQUEST_BYTES

# Live room limits (PROTOCOL.md): a frame over 64 KiB is refused, a body is 1-4000
# characters, every connection has a token bucket, and a connection whose unsent backlog
# passes PALABRE_MAX_BACKLOG_BYTES is closed with 4409 (it reconnects and syncs).
PALABRE_MAX_FRAME_BYTES = 64 * 1024
PALABRE_MAX_BODY_CHARS = 4000
PALABRE_RATE_PER_S = env.float("PALABRE_RATE_PER_S", default=10.0)
PALABRE_RATE_BURST = env.int("PALABRE_RATE_BURST", default=20)
PALABRE_MAX_BACKLOG_BYTES = env.int("PALABRE_MAX_BACKLOG_BYTES", default=1024 * 1024)
# How long a socket closed with 4409 has to read up to its close frame before it is dropped.
PALABRE_SLOW_CLOSE_GRACE_S = env.float("PALABRE_SLOW_CLOSE_GRACE_S", default=10.0)
# How long a room hub holds a logged frame that overtook an earlier one (rooms.hub).
PALABRE_REORDER_WINDOW_S = env.float("PALABRE_REORDER_WINDOW_S", default=0.5)
PALABRE_MAX_SOCKETS_PER_USER = env.int("PALABRE_MAX_SOCKETS_PER_USER", default=20)
PALABRE_PROGRESS_INTERVAL_S = env.float("PALABRE_PROGRESS_INTERVAL_S", default=0.5)
# Embedded default: no separate worker process can reach the in-memory layer, so the
# daphne process runs the deadline pass itself.
PALABRE_INPROCESS_DEADLINES = env.bool("PALABRE_INPROCESS_DEADLINES", default=not REDIS_URL)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "palabre": {"handlers": ["console"], "level": env.str("PALABRE_LOG_LEVEL", default="INFO"), "propagate": False},
        "axes": {"level": "WARNING"},
    },
}

# Uploads rate-limited per user (issue 10), counted in the default cache: Redis in
# production, so every daphne process counts together; the embedded default's one
# process counts in memory. django-ratelimit is used as a library, not an installed
# app: its system check refuses the in-memory cache that the embedded default rightly uses.
PALABRE_REGISTER_RATE = env.str("PALABRE_REGISTER_RATE", default="20/h")
PALABRE_DOCUMENT_UPLOAD_RATE = env.str("PALABRE_DOCUMENT_UPLOAD_RATE", default="30/h")
RATELIMIT_USE_CACHE = "default"

# The garbage collector's youngest-generation threshold in each daphne process
# (project/runtime.py: why, and what it is worth); 0 leaves Python's default (700).
PALABRE_GC_GEN0_THRESHOLD = env.int("PALABRE_GC_GEN0_THRESHOLD", default=50_000)
# How long a thread may keep the GIL while another waits for it, in each daphne process
# (project/runtime.py: why); 0 leaves Python's default (0.005 s).
PALABRE_SWITCH_INTERVAL_S = env.float("PALABRE_SWITCH_INTERVAL_S", default=0.0001)
# Each daphne process on a CPU of its own (project/runtime.py: why, and what it is worth).
# On in the embedded default (its one daphne). Off unless set in production: the daphne
# processes share their CPUs' lock files through the temporary directory, and processes
# that do not share it (one daphne per container, each with its own /tmp) would all
# take the same first CPU. Set it where the daphne processes of a machine share /tmp.
PALABRE_PIN_CPU = env.bool("PALABRE_PIN_CPU", default=not PRODUCTION)
# How many connections each daphne's listening socket queues before it accepts them
# (project/runtime.py: why); the kernel caps it at net.core.somaxconn. 0 leaves Twisted's 50.
PALABRE_LISTEN_BACKLOG = env.int("PALABRE_LISTEN_BACKLOG", default=4096)
# WebSocket handshakes handed straight to autobahn, without Twisted's HTTP parse
# (project/upgrades.py: why, and what it is worth); false keeps daphne's path for all.
PALABRE_UPGRADE_LANE = env.bool("PALABRE_UPGRADE_LANE", default=True)
