"""Settings, all from the environment (and `.env`, where the environment wins)."""

import hashlib
import os
import re
import socket
import tempfile
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from core.log_format import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent


class _Env(environ.Env):
    """django-environ, but a number or a yes/no that does not parse stops the start naming its variable. It
    raised a bare ValueError for a whole number, dropped the letters of a decimal one ("2m" was 2.0), and took
    any word but a few as false."""

    FALSE_STRINGS = ("false", "off", "no", "n", "0", "")

    def get_value(self, var, cast=None, default=environ.Env.NOTSET, parse_default=False):
        value = self.ENVIRON.get(var)
        if cast is bool and value is not None and value.strip().lower() not in self.BOOLEAN_TRUE_STRINGS + self.FALSE_STRINGS:
            raise ImproperlyConfigured(f"{var}={value!r}: use true or false")
        if cast is float and value is not None and not re.fullmatch(r"\s*-?[\d.,]+\s*", value):
            raise ImproperlyConfigured(f"{var}={value!r}: use a number")
        try:
            return super().get_value(var, cast=cast, default=default, parse_default=parse_default)
        except ValueError:
            if cast not in (int, float):
                raise
            kind = "a whole number" if cast is int else "a number"
            raise ImproperlyConfigured(f"{var}={value!r}: use {kind}") from None


env = _Env()
# read_env never overwrites a variable already set in the environment.
environ.Env.read_env(env.str("ENV_FILE", default=str(BASE_DIR / ".env")))

DEBUG = env.bool("DEBUG", default=False)
API_STATIC_TOKEN = env("API_STATIC_TOKEN", default="")
# Sessions and CSRF need a key; without DJANGO_SECRET_KEY one is derived from the token (never the token itself).
SECRET_KEY = env("DJANGO_SECRET_KEY", default="") or hashlib.sha256(
    b"django-secret-key:" + API_STATIC_TOKEN.encode()
).hexdigest()
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["*"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

PORT = env.int("PORT", default=3000)
# How long an idle keep-alive connection stays open. Longer than clients keep theirs (httpx, requests,
# Node: 5 s), so that a client never reuses a connection at the moment the server closes it: that
# race is an error the client sees although nothing was wrong.
HTTP_KEEP_ALIVE_SECONDS = env.int("HTTP_KEEP_ALIVE_SECONDS", default=65)
WHATSAPP_BACKEND = env("WHATSAPP_BACKEND", default="neonize")
# The web process also runs the session supervisor (embedded mode). Off for web processes in production,
# where `manage.py runworker` runs it.
EMBEDDED_WORKER = env.bool("EMBEDDED_WORKER", default=True)
SESSIONS_DIR = Path(env("SESSIONS_DIR", default=str(BASE_DIR / "sessions")))
SESSIONS_CONFIG = Path(env("SESSIONS_CONFIG", default=str(BASE_DIR / "sessions.config.json")))
# The proxy WhatsApp connections go through for every session without a "proxy" of its own in
# sessions.config.json: socks5://[user:pass@]host:port, http://... or https://... (sessions_app.proxies).
WHATSAPP_PROXY = env.str("WHATSAPP_PROXY", default="").strip()

# Where `manage.py backup_sessions` writes its archives unless --output says otherwise.
BACKUP_DIR = Path(env("BACKUP_DIR", default=str(BASE_DIR / "backups")))

# The session supervisor (sessions_app.worker). Times in seconds.
SESSION_HEARTBEAT_SECONDS = env.float("SESSION_HEARTBEAT_SECONDS", default=2.0)
# A session process silent this long is killed and replaced.
SESSION_HEARTBEAT_TIMEOUT_SECONDS = env.float("SESSION_HEARTBEAT_TIMEOUT_SECONDS", default=15.0)
# Restarts after a crash or a failed connect: base * 2^(n-1) with jitter, capped; reset once a
# process has stayed up SESSION_HEALTHY_SECONDS.
SESSION_RESTART_BACKOFF_SECONDS = env.float("SESSION_RESTART_BACKOFF_SECONDS", default=2.0)
SESSION_RESTART_BACKOFF_MAX_SECONDS = env.float("SESSION_RESTART_BACKOFF_MAX_SECONDS", default=300.0)
SESSION_HEALTHY_SECONDS = env.float("SESSION_HEALTHY_SECONDS", default=60.0)
# Another connection took the number: the first wait before trying again (doubles each time, capped).
SESSION_STREAM_REPLACED_WAIT_SECONDS = env.float("SESSION_STREAM_REPLACED_WAIT_SECONDS", default=60.0)
# A session process sending more messages than this in one second is flooding its pipe: killed, restarted.
SESSION_MAX_MESSAGES_PER_SECOND = env.int("SESSION_MAX_MESSAGES_PER_SECOND", default=2000)
# Opening the linking socket moves a failing session's next attempt to now, at most once this often.
LINK_RETRY_MIN_SECONDS = env.float("LINK_RETRY_MIN_SECONDS", default=5.0)
# How often the supervisor looks for new sessions, start requests and commands.
SESSION_POLL_SECONDS = env.float("SESSION_POLL_SECONDS", default=0.5)
# A stopping session process gets this long before it is terminated, then killed.
SESSION_STOP_TIMEOUT_SECONDS = env.float("SESSION_STOP_TIMEOUT_SECONDS", default=5.0)
# How long an API call (pairing code, logout, delete) waits for the worker to answer.
SESSION_COMMAND_WAIT_SECONDS = env.float("SESSION_COMMAND_WAIT_SECONDS", default=15.0)
# The worker writes its heartbeat row this often; /readyz wants one younger than the max age.
WORKER_HEARTBEAT_SECONDS = env.float("WORKER_HEARTBEAT_SECONDS", default=10.0)
READY_WORKER_MAX_AGE_SECONDS = env.float("READY_WORKER_MAX_AGE_SECONDS", default=30.0)
# Session ownership (sessions_app.session_leases): a worker holds each session it runs by a lease it
# renews every SESSION_LEASE_RENEW_SECONDS; a worker that stops renewing loses its sessions to the
# others SESSION_LEASE_SECONDS later (its session processes stop by themselves before that).
SESSION_LEASE_SECONDS = env.float("SESSION_LEASE_SECONDS", default=15.0)
SESSION_LEASE_RENEW_SECONDS = env.float("SESSION_LEASE_RENEW_SECONDS", default=3.0)
# How many sessions this worker runs at most (runworker --capacity); 0: no limit.
WORKER_CAPACITY = env.int("WORKER_CAPACITY", default=0)
# Print each QR in the terminal; default: when DEBUG or when stdout is a terminal.
PRINT_QR = env.bool("PRINT_QR", default=None)

# The simulator backend (WHATSAPP_BACKEND=simulator). QR codes rotate like whatsmeow's.
SIMULATOR_QR_FIRST_SECONDS = env.float("SIMULATOR_QR_FIRST_SECONDS", default=60.0)
SIMULATOR_QR_NEXT_SECONDS = env.float("SIMULATOR_QR_NEXT_SECONDS", default=20.0)
SIMULATOR_QR_COUNT = env.int("SIMULATOR_QR_COUNT", default=6)
SIMULATOR_UNREGISTERED = env.list("SIMULATOR_UNREGISTERED", default=["51900000000"])
SIMULATOR_SEND_LATENCY_MS = env.int("SIMULATOR_SEND_LATENCY_MS", default=0)
SIMULATOR_DELIVERY_MS = env.int("SIMULATOR_DELIVERY_MS", default=100)
# After a dropped connection the simulated client reconnects by itself after this delay.
SIMULATOR_RECONNECT_MS = env.int("SIMULATOR_RECONNECT_MS", default=1000)

# The dispatcher (messaging.dispatcher). Times in seconds.
DISPATCH_MAX_ATTEMPTS = env.int("DISPATCH_MAX_ATTEMPTS", default=5)
DISPATCH_RETRY_BASE_SECONDS = env.float("DISPATCH_RETRY_BASE_SECONDS", default=10.0)
DISPATCH_RETRY_MAX_SECONDS = env.float("DISPATCH_RETRY_MAX_SECONDS", default=600.0)
DISPATCH_SEND_TIMEOUT_SECONDS = env.float("DISPATCH_SEND_TIMEOUT_SECONDS", default=90.0)
DISPATCH_SWEEP_SECONDS = env.float("DISPATCH_SWEEP_SECONDS", default=5.0)
# Unpaced senders (SEND_MIN_INTERVAL_SECONDS and jitter 0) claim up to this many messages at once.
DISPATCH_CLAIM_BATCH = env.int("DISPATCH_CLAIM_BATCH", default=20)
DISPATCH_NUMBER_CHECK_TTL_SECONDS = env.float("DISPATCH_NUMBER_CHECK_TTL_SECONDS", default=86400.0)
# ...for at most this many (session, number) pairs; past it the oldest are forgotten first.
DISPATCH_NUMBER_CACHE_SIZE = env.int("DISPATCH_NUMBER_CACHE_SIZE", default=50000)
# A session process remembers this many of its sends (sessions_app.sent_journal), up to twice as many between
# compactions: what it is asked about after a crash is in flight, far fewer.
SENT_JOURNAL_KEEP = env.int("SENT_JOURNAL_KEEP", default=5000)
# Messages of a logged-out or banned session wait for a new link this long, then fail.
DISPATCH_UNLINKED_FAIL_AFTER_SECONDS = env.float("DISPATCH_UNLINKED_FAIL_AFTER_SECONDS", default=86400.0)
# On shutdown, how long a send in flight may take to finish.
DISPATCH_SHUTDOWN_GRACE_SECONDS = env.float("DISPATCH_SHUTDOWN_GRACE_SECONDS", default=20.0)
# Pacing per number (anti-ban): at least SEND_MIN_INTERVAL_SECONDS between two sends of one number,
# plus a random 0..SEND_INTERVAL_JITTER_SECONDS; SEND_HOURLY_CAP > 0 limits sends per hour and number.
SEND_MIN_INTERVAL_SECONDS = env.float("SEND_MIN_INTERVAL_SECONDS", default=2.0)
SEND_INTERVAL_JITTER_SECONDS = env.float("SEND_INTERVAL_JITTER_SECONDS", default=3.0)
SEND_HOURLY_CAP = env.int("SEND_HOURLY_CAP", default=300)

# /metrics: a token of its own for Prometheus (default: API_STATIC_TOKEN); the send-latency histogram
# covers the messages sent in the last METRICS_LATENCY_WINDOW_SECONDS.
METRICS_TOKEN = env("METRICS_TOKEN", default="")
METRICS_LATENCY_WINDOW_SECONDS = env.float("METRICS_LATENCY_WINDOW_SECONDS", default=300.0)

# Status webhooks (webhooks/). WEBHOOK_URLS get the events of every session; a session's own
# "webhookUrls" in sessions.config.json get its events too. Every request is signed with WEBHOOK_SECRET.
WEBHOOK_URLS = env.list("WEBHOOK_URLS", default=[])
WEBHOOK_SECRET = env.str("WEBHOOK_SECRET", default="")
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=10.0)
# Retries: base x 2^(attempt-1), capped, with jitter, until WEBHOOK_RETRY_WINDOW_SECONDS after the
# event; then the delivery is dead (the admin can redeliver it).
WEBHOOK_RETRY_BASE_SECONDS = env.float("WEBHOOK_RETRY_BASE_SECONDS", default=5.0)
WEBHOOK_RETRY_MAX_SECONDS = env.float("WEBHOOK_RETRY_MAX_SECONDS", default=3600.0)
WEBHOOK_RETRY_WINDOW_SECONDS = env.float("WEBHOOK_RETRY_WINDOW_SECONDS", default=86400.0)
WEBHOOK_POLL_SECONDS = env.float("WEBHOOK_POLL_SECONDS", default=2.0)

# The largest file taken, decoded: a PDF, and any document or image (send-document, send-image), one limit
# as the contract's "limits and answers as send-pdf".
MAX_PDF_BYTES = env.int("MAX_PDF_BYTES", default=16 * 1024 * 1024)
# What send-document takes: short names (messaging.file_types.SHORT_NAMES) or full mime types.
DOCUMENT_MIME_TYPES = env.list("DOCUMENT_MIME_TYPES", default=[
    "pdf", "docx", "xlsx", "pptx", "odt", "ods", "csv", "txt", "zip", "jpeg", "png"])
# Incoming messages (the contract's "Incoming messages"): group chats are left out unless this is set; a
# received file is downloaded and kept up to INCOMING_MEDIA_MAX_BYTES (larger ones: metadata only).
INCOMING_INCLUDE_GROUPS = env.bool("INCOMING_INCLUDE_GROUPS", default=False)
INCOMING_MEDIA_MAX_BYTES = env.int("INCOMING_MEDIA_MAX_BYTES", default=16 * 1024 * 1024)
# How long send-pdf and send-text wait for the commit of their row before answering 503 (a database
# that accepts the write and does not answer); a retry with the same Idempotency-Key is safe.
QUEUE_WRITE_TIMEOUT_SECONDS = env.float("QUEUE_WRITE_TIMEOUT_SECONDS", default=30.0)
# A JSON body carrying MAX_PDF_BYTES in base64, plus room for the other fields.
MAX_REQUEST_BYTES = (MAX_PDF_BYTES + 2) // 3 * 4 + 64 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BYTES
# Every other request body (the admin's forms, the session endpoints' JSON): refused above this, before
# it is read whole.
MAX_BODY_BYTES = env.int("MAX_BODY_BYTES", default=1024 * 1024)
# Per client address, on /api/*: "N/second|minute|hour|day" (e.g. "600/minute"); empty: no limit.
API_RATE_LIMIT = env("API_RATE_LIMIT", default="")
# Failed admin logins from one address before further attempts are refused for the window.
ADMIN_LOGIN_MAX_FAILURES = env.int("ADMIN_LOGIN_MAX_FAILURES", default=5)
ADMIN_LOGIN_WINDOW_SECONDS = env.int("ADMIN_LOGIN_WINDOW_SECONDS", default=900)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "core",
    # Ahead of channels: an earlier app's management command wins, and both have a `runworker`.
    "sessions_app",
    "channels",
    "whatsapp_service",  # for its `serve` command
    "messaging",
    "webhooks",
]


def _simulated(backend: str) -> bool:
    """The simulator's backend, or a backend of one's own built on it ("module:Class", as the fault tests')."""
    if ":" not in backend:
        return backend == "simulator"
    from sessions_app.backends import backend_class

    return backend_class(backend).name == "simulator"


# The simulated WhatsApp (its models and endpoints) is installed, and routed (urls.py), only where it is used.
SIMULATOR_INSTALLED = _simulated(WHATSAPP_BACKEND)
if SIMULATOR_INSTALLED:
    INSTALLED_APPS.append("simulator")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "core.middleware.AdminLoginRateLimitMiddleware",
    # Last: its process_exception runs first.
    "core.middleware.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "whatsapp_service.urls"
ASGI_APPLICATION = "whatsapp_service.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
# Long-lived threads (queue writer, supervisor, dispatcher) keep their connection instead of opening
# one per unit of work; a broken one is noticed and replaced.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=600)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers run beside the writer; IMMEDIATE takes the write lock at BEGIN so two
    # writers queue on busy_timeout instead of failing with "database is locked" mid-transaction.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            # NORMAL: a commit survives a crash of the process, not always a power cut. The queue
            # writer switches its own connection to FULL: an accepted message survives both.
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    # A file (child processes of a test share it), one per test run (runs side by side stay apart).
    DATABASES["default"]["TEST"] = {
        "NAME": str(Path(tempfile.gettempdir()) / f"whatsapp-service-test-{os.getpid()}.sqlite3")
    }
else:
    # An unreachable database must give an error in seconds, not hang a request or the worker:
    # connect_timeout for new connections; keepalives and tcp_user_timeout (unacknowledged data) for
    # established ones.
    timeout = env.int("DATABASE_TIMEOUT_SECONDS", default=10)
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "connect_timeout": max(2, timeout // 2),
            "keepalives": 1,
            "keepalives_idle": timeout,
            "keepalives_interval": max(1, timeout // 5),
            "keepalives_count": 3,
            "tcp_user_timeout": timeout * 1000,
        }
    )
    # One test database per test run here too: two runs against one server stay apart.
    DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{os.getpid()}"}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Where each session's WhatsApp credentials live (sessions_app.credential_store): `files` (SESSIONS_DIR),
# `postgres` (a schema per session in the default database: any worker can resume any session), or
# `auto`: postgres when the database is PostgreSQL. `manage.py move_credentials` moves them.
CREDENTIALS_STORE = env.str("CREDENTIALS_STORE", default="auto").strip().lower()
_postgres_database = "postgresql" in DATABASES["default"]["ENGINE"] or "postgis" in DATABASES["default"]["ENGINE"]
if CREDENTIALS_STORE == "auto":
    CREDENTIALS_STORE = "postgres" if _postgres_database else "files"
elif CREDENTIALS_STORE not in ("files", "postgres"):
    raise ImproperlyConfigured(f"CREDENTIALS_STORE={CREDENTIALS_STORE!r}: use auto, files or postgres")
elif CREDENTIALS_STORE == "postgres" and not _postgres_database:
    raise ImproperlyConfigured("CREDENTIALS_STORE=postgres needs a PostgreSQL database (DATABASE_URL=postgres://...)")

REDIS_URL = env("REDIS_URL", default="")
if REDIS_URL:
    from redis.exceptions import ConnectionError as RedisConnectionError

    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # No socket timeout. redis-py's default (5 s) equals channels_redis's blocking pop (5 s), so an
            # idle receive() fails with "Timeout reading"; and with any timeout redis-py writes through
            # asyncio.wait_for, which on Python 3.11 can swallow a cancellation: channels_redis then loops
            # in a cancelled receive() for ever (a closed WebSocket's task never ends; the server cannot
            # stop). The pop returns every 5 s by itself; TCP keepalive finds a dead Redis in ~25 s.
            "CONFIG": {
                "hosts": [
                    {
                        "address": REDIS_URL,
                        "socket_timeout": None,
                        "socket_connect_timeout": 5,
                        "socket_keepalive": True,
                        "socket_keepalive_options": {
                            socket.TCP_KEEPIDLE: 10, socket.TCP_KEEPINTVL: 5, socket.TCP_KEEPCNT: 3
                        },
                        # After Redis restarts, pooled connections are dead: a command that meets one
                        # reconnects and runs once more instead of failing (one retry, no backoff).
                        "retry_on_error": [RedisConnectionError],
                    }
                ]
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

LANGUAGE_CODE = env("LANGUAGE_CODE", default="es")
LANGUAGES = [("es", "Español"), ("en", "English")]
TIME_ZONE = env("TIME_ZONE", default="America/Lima")
USE_I18N = True
USE_TZ = True
LOCALE_PATHS = [BASE_DIR / "locale"]

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["core.auth.StaticTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["core.auth.HasStaticToken"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "core.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "WhatsApp PDF service",
    "DESCRIPTION": "Queue PDF receipts (and texts) for delivery through the company's WhatsApp numbers, follow "
                   "each message, and link the numbers. Every call needs `Authorization: Bearer <API_STATIC_TOKEN>`. "
                   "Errors are `{\"success\": false, \"error\": \"<code>\", \"message\": \"<texto>\"}`; each "
                   "answer lists the codes it can carry.",
    "VERSION": "1.0.0",
    # One operation id per route (set by each view), answers linked to the operations they name.
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "core.openapi.add_links"],
    "TAGS": [{"name": "messages", "description": "Send and follow messages."},
             {"name": "sessions", "description": "The WhatsApp numbers the service runs."},
             {"name": "linking", "description": "Link and unlink a session's number."},
             *([{"name": "simulator", "description": "WHATSAPP_BACKEND=simulator only: what a phone would do."}]
               if SIMULATOR_INSTALLED else [])],
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_AUTHENTICATION": [
        "core.auth.StaticTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "SERVE_PERMISSIONS": ["core.auth.HasStaticTokenOrStaff"],
    # Swagger UI's (and ReDoc's) files from drf-spectacular-sidecar, served under STATIC_URL by the service
    # itself: the default, a CDN, left /api/docs/ blank on a machine without internet.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}
INSTALLED_APPS.append("drf_spectacular_sidecar")  # static files only; beside the settings that use them

SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# Behind TLS (a proxy in front): set these so browsers keep to HTTPS and cookies never travel in clear.
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SESSION_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

# LOG_FORMAT=json: one JSON object per line (production); text: readable lines (development).
LOG_FORMAT = env("LOG_FORMAT", default="text")
LOGGING_CONFIG = "core.log_format.apply"
try:
    LOGGING = logging_config(LOG_FORMAT, env("LOG_LEVEL", default="INFO"))
except ValueError as exc:
    raise ImproperlyConfigured(str(exc)) from None
