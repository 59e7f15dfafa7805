"""Django settings: every value comes from the environment through webapp.env, with a default."""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from webapp.env import envbool, envint, envlist, envstr

BASE_DIR = Path(__file__).resolve().parent.parent
# Everything the embedded default writes (database, media, Redis files, logs) lives here.
DATA_DIR = Path(envstr("MANABI_DATA_DIR", str(BASE_DIR / "var")))

DEBUG = envbool("DEBUG", True)

_DEV_SECRET = "manabi-development-only-secret-do-not-use-in-production"
SECRET_KEY = envstr("SECRET_KEY", _DEV_SECRET if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG=0 (50+ random characters).")

ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS")

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
    "ninja",  # serves the API docs page's scripts from our static files, not from a CDN
    "webapp.accounts",
    "webapp.api",
    "webapp.datasets",
    "webapp.jobs",
    "webapp.front",
    "webapp.assignments",
    "webapp.faces",
    "webapp.poses",
    "webapp.studio",
    "webapp.labelling",
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
]

ROOT_URLCONF = "webapp.urls"
ASGI_APPLICATION = "webapp.asgi.application"

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
                "django.template.context_processors.i18n",
            ],
        },
    },
]

# Database: SQLite in the data folder by default, PostgreSQL (or any) through DATABASE_URL.
DATABASES = {
    "default": dj_database_url.parse(
        envstr("DATABASE_URL", f"sqlite:///{DATA_DIR / 'db.sqlite3'}"),
        conn_max_age=envint("DATABASE_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not :memory:, so that the test suite's live servers and workers share it; named
    # by process so that two test runs in one checkout never share one.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / f"test-db-{os.getpid()}.sqlite3")}
    # The web server, the worker and its lease threads write at once. A deferred transaction
    # that reads and then writes can deadlock with another writer ("database is locked" at
    # once); IMMEDIATE takes the write lock at BEGIN and waits its turn instead. WAL lets pages
    # read while a worker writes.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 8},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "course_list"
LOGOUT_REDIRECT_URL = "login"

# Sign-in throttling: failures allowed per account and per address inside the window.
LOGIN_FAILURES_PER_ACCOUNT = envint("LOGIN_FAILURES_PER_ACCOUNT", 5)
# A whole class often signs in from one address (a NAT or a proxy): keep this generous.
LOGIN_FAILURES_PER_ADDRESS = envint("LOGIN_FAILURES_PER_ADDRESS", 100)
LOGIN_FAILURE_WINDOW_SECONDS = envint("LOGIN_FAILURE_WINDOW_SECONDS", 15 * 60)

# Internationalisation: Japanese first, English second; the browser chooses, the header switches.
LANGUAGE_CODE = envstr("LANGUAGE_CODE", "ja")
LANGUAGES = [("ja", _("Japanese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = envstr("TIME_ZONE", "Asia/Tokyo")
USE_I18N = True
USE_TZ = True

# Static files: WhiteNoise serves them from the ASGI server (daphne serves none itself).
STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = DEBUG

# Media (uploads): the local data folder, or S3-compatible storage when a bucket is named.
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(envstr("MEDIA_ROOT", str(DATA_DIR / "media")))
MEDIA_S3_BUCKET = envstr("MEDIA_S3_BUCKET")
if MEDIA_S3_BUCKET:
    _media_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": MEDIA_S3_BUCKET,
            "endpoint_url": envstr("MEDIA_S3_ENDPOINT_URL") or None,
            "access_key": envstr("MEDIA_S3_ACCESS_KEY_ID") or None,
            "secret_key": envstr("MEDIA_S3_SECRET_ACCESS_KEY") or None,
            "region_name": envstr("MEDIA_S3_REGION") or None,
            "default_acl": None,
            "querystring_auth": True,
            "file_overwrite": False,
        },
    }
else:
    _media_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
STORAGES = {
    "default": _media_storage,
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# Redis carries Celery work, websocket events and the shared cache. Without it (a bare
# `manage.py runserver`), tasks run inline and events stay in one process.
REDIS_URL = envstr("REDIS_URL")
# How long a Redis client waits for a reply. redis-py 8 waits 5 s by default, and channels_redis
# 4.3 waits for a websocket's next event in a blocking pop of 5 s (brpop_timeout): with equal
# numbers the read times out just as Redis answers "nothing yet", the consumer dies, and daphne
# closes every idle websocket with 1011 after about 6 s. So the channel layer's read timeout is
# set here, longer than the pop; tests/unit/test_settings.py checks it against the installed
# channels_redis, so an upgrade that lengthens the pop fails there, not in the classroom.
# Still finite, so a Redis that stops answering fails a send in seconds instead of hanging it.
CHANNEL_LAYER_SOCKET_TIMEOUT = 10  # the 5 s pop, and as long again for a busy machine
# The cache only sends short commands, never a blocking one: redis-py's 5 s is right, written
# out so that a change of redis-py's default does not change it. Celery needs nothing here:
# kombu's broker connections wait without a read timeout (its BRPOP blocks 1 s and kombu checks
# their health itself), and the result backend reads with a 120 s timeout in polls of at most 1 s.
CACHE_SOCKET_TIMEOUT = 5
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "manabi",
            "OPTIONS": {
                "socket_timeout": CACHE_SOCKET_TIMEOUT,
                "socket_connect_timeout": CACHE_SOCKET_TIMEOUT,
            },
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [
                    {
                        "address": REDIS_URL,
                        "socket_timeout": CHANNEL_LAYER_SOCKET_TIMEOUT,
                        "socket_connect_timeout": 5,
                        # PING a pooled connection that sat unused this long before reusing it,
                        # so one dropped by a firewall or a Redis restart is replaced first.
                        "health_check_interval": 30,
                    }
                ],
                "prefix": "manabi",
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Celery: JSON only (never pickle), messages carry ids, one slow task never hoards others' work.
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = REDIS_URL or "cache+memory://"
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_RESULT_ACCEPT_CONTENT = ["json"]
CELERY_TASK_DEFAULT_QUEUE = "default"
# Task modules that autodiscovery (each app's tasks.py) does not find.
CELERY_IMPORTS = ["webapp.jobs.predict"]
CELERY_TASK_ROUTES = {"jobs.train": {"queue": "train"}}
# A running job whose worker has written nothing for this long is requeued (resuming from its
# last checkpoint) up to JOB_MAX_ATTEMPTS times, then failed with the reason.
JOB_HEARTBEAT_TIMEOUT = envint("JOB_HEARTBEAT_TIMEOUT", 300)
JOB_MAX_ATTEMPTS = envint("JOB_MAX_ATTEMPTS", 3)
# A running job's worker renews its lease this often, even while it loads data for minutes.
JOB_HEARTBEAT_INTERVAL = envint("JOB_HEARTBEAT_INTERVAL", 30)
# Jobs are handed to the `train` queue only while fewer than TRAIN_SLOTS hold a worker: set it
# to the number of GPU workers (one per GPU). A job handed out but not claimed within
# JOB_DISPATCH_TIMEOUT seconds (its message was lost, e.g. Redis restarted) is sent again.
TRAIN_SLOTS = envint("TRAIN_SLOTS", 1)
JOB_DISPATCH_TIMEOUT = envint("JOB_DISPATCH_TIMEOUT", 120)
# How many jobs one student may have waiting at once (the class limit is on running ones).
JOB_MAX_WAITING_PER_STUDENT = envint("JOB_MAX_WAITING_PER_STUDENT", 20)
# Stored batch events are thinned to one per this many seconds (epoch events are all kept).
JOB_BATCH_EVENT_SECONDS = float(envint("JOB_BATCH_EVENT_MS", 1000)) / 1000
CELERY_BEAT_SCHEDULE = {
    "reap-stale-jobs": {"task": "jobs.reap", "schedule": float(envint("JOB_REAP_SECONDS", 60))}
}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_RESULT_EXPIRES = 3600
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SOFT_TIME_LIMIT = envint("CELERY_TASK_SOFT_TIME_LIMIT", 6 * 3600)
CELERY_TASK_TIME_LIMIT = envint("CELERY_TASK_TIME_LIMIT", 6 * 3600 + 300)
# A job longer than the visibility timeout is redelivered; the jobs app fences such duplicates.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": envint("CELERY_VISIBILITY_TIMEOUT", 3600)}

# Security. Production (DEBUG=0) turns on HTTPS-only cookies, HSTS and the redirect to HTTPS.
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
if not DEBUG:
    SESSION_COOKIE_SECURE = envbool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = envbool("CSRF_COOKIE_SECURE", True)
    SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", True)
    if envbool("BEHIND_TLS_PROXY", False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Largest request body Django reads into memory (uploads stream separately, in the datasets app).
DATA_UPLOAD_MAX_MEMORY_SIZE = envint("DATA_UPLOAD_MAX_MEMORY_SIZE", 5 * 1024 * 1024)

# Datasets: limits on what an upload may hold. Anything over a limit is refused with a reason.
UPLOAD_MAX_BYTES = envint("UPLOAD_MAX_BYTES", 4 * 1024**3)  # one archive
UPLOAD_CHUNK_BYTES = envint("UPLOAD_CHUNK_BYTES", 4 * 1024**2)  # one request of a chunked upload
# Datasets a student may own in one class (uploads and sample copies); teachers and TAs have none.
MAX_DATASETS_PER_STUDENT = envint("MAX_DATASETS_PER_STUDENT", 50)
ZIP_MAX_ENTRIES = envint("ZIP_MAX_ENTRIES", 200_000)
ZIP_MAX_UNPACKED_BYTES = envint("ZIP_MAX_UNPACKED_BYTES", 8 * 1024**3)
ZIP_MAX_ENTRY_BYTES = envint("ZIP_MAX_ENTRY_BYTES", 64 * 1024**2)
ZIP_MAX_RATIO = envint("ZIP_MAX_RATIO", 200)
IMAGE_MAX_PIXELS = envint("IMAGE_MAX_PIXELS", 40_000_000)
# Processes that check and store images during an ingest (one ingest task uses them all).
INGEST_PROCESSES = envint("INGEST_PROCESSES", min(4, os.cpu_count() or 1))
# Near-duplicate threshold: images whose 64-bit difference hashes differ in at most this many bits.
NEAR_DUPLICATE_BITS = envint("NEAR_DUPLICATE_BITS", 4)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": envstr("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
