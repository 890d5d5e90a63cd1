"""dnsportal settings: from the environment only. Every variable is listed in README.md with its default.

Two modes. `embedded` (the default) runs on a laptop with nothing configured: the PostgreSQL and Redis that
`make up` runs for DNSPORTAL_DATA_DIR (their ports recorded there), a secret key and an encryption key
generated once and kept in the data directory. `production` refuses to start without SECRET_KEY,
DNSPORTAL_ENCRYPTION_KEYS, DATABASE_URL and REDIS_URL and turns on every HTTPS guard. PostgreSQL is the only
database: row locks and JSONB carry the exactly-once promises of review and apply.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from cryptography.fernet import Fernet
from csp.constants import NONE as CSP_NONE
from csp.constants import SELF as CSP_SELF
from django.core.exceptions import ImproperlyConfigured

from dnsportal import embedded
from dnsportal.env import SECRET_VALUES, env_bool, env_int, env_list, env_secret, env_str
from sso.mapping import UNMAPPED_CHOICES, parse_role_map

BASE_DIR = Path(__file__).resolve().parent.parent

MODE = env_str("DNSPORTAL_MODE", "embedded")
if MODE not in {"embedded", "production"}:
    raise ImproperlyConfigured(f"DNSPORTAL_MODE must be embedded or production, not {MODE!r}.")
PRODUCTION = MODE == "production"
DEBUG = env_bool("DNSPORTAL_DEBUG", False)
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DNSPORTAL_DEBUG must be off in production mode.")

DATA_DIR = Path(env_str("DNSPORTAL_DATA_DIR", str(BASE_DIR / "var")))


def _embedded_secret(key: str, make: Callable[[], str]) -> str:
    """A value generated once for the embedded portal and kept (0600) in the data directory."""
    path = DATA_DIR / "embedded-secrets.json"
    data: dict[str, str] = {}
    if path.exists():
        data = json.loads(path.read_text())
    if key not in data:
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        data[key] = make()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh)
    SECRET_VALUES.add(data[key])
    return data[key]


SECRET_KEY = env_secret("SECRET_KEY")
if not SECRET_KEY:
    if PRODUCTION:
        raise ImproperlyConfigured("SECRET_KEY is not set; production mode needs a long random secret key.")
    SECRET_KEY = _embedded_secret("SECRET_KEY", lambda: secrets.token_urlsafe(50))

# Fernet keys, comma-separated: the first encrypts, every one decrypts (rotation: prepend a new key,
# run `manage.py rotate_encryption_keys`, then drop the old one).
_keys = env_secret("DNSPORTAL_ENCRYPTION_KEYS")
if not _keys:
    if PRODUCTION:
        raise ImproperlyConfigured(
            "DNSPORTAL_ENCRYPTION_KEYS is not set; production mode needs at least one Fernet key "
            "to encrypt secrets."
        )
    _keys = _embedded_secret("DNSPORTAL_ENCRYPTION_KEYS", lambda: Fernet.generate_key().decode())
ENCRYPTION_KEYS = [k.strip() for k in _keys.split(",") if k.strip()]
for _k in ENCRYPTION_KEYS:
    SECRET_VALUES.add(_k)
    try:
        Fernet(_k)
    except (ValueError, TypeError):
        raise ImproperlyConfigured(
            "DNSPORTAL_ENCRYPTION_KEYS holds a value that is not a Fernet key (32 url-safe base64 bytes)."
        ) from None

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "django_rq",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "dnsportal.apps.PortalConfig",
    "clusters.apps.ClustersConfig",
    "records.apps.RecordsConfig",
    "api.apps.ApiConfig",
    "sso.apps.SsoConfig",
    "axes",
    "csp",
]

MIDDLEWARE = [
    "dnsportal.metrics_export.RequestMetricsMiddleware",  # first: it times everything below
    "dnsportal.middleware.RequestIdMiddleware",
    "dnsportal.middleware.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Every page needs a login unless its view says @login_not_required (login, /healthz, /readyz).
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns a refused password login into the login page saying why (429).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "dnsportal.urls"
WSGI_APPLICATION = "dnsportal.wsgi.application"
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
                "dnsportal.context_processors.portal",
            ],
        },
    },
]

DATABASE_URL = env_secret("DATABASE_URL")
if not DATABASE_URL:
    if PRODUCTION:
        raise ImproperlyConfigured("DATABASE_URL is not set; production mode needs a PostgreSQL URL.")
    DATABASE_URL = embedded.database_url(DATA_DIR)
try:
    DATABASES = {
        # A kept connection is checked before a request uses it: after PostgreSQL restarts or fails over, each
        # thread's old connection would otherwise fail its next request with a 500 (bench/soak.py saw them).
        "default": dj_database_url.parse(
            DATABASE_URL, conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60), conn_health_checks=True
        )
    }
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is not a database URL Django understands ({exc}).") from None
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured(
        f"DATABASE_URL must point at PostgreSQL (postgres://...), the only database dnsportal runs on, "
        f"not {urlsplit(DATABASE_URL).scheme or 'a path'}."
    )
if DATABASES["default"].get("PASSWORD"):
    SECRET_VALUES.add(DATABASES["default"]["PASSWORD"])
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_secret("REDIS_URL")
if not REDIS_URL:
    if PRODUCTION:
        raise ImproperlyConfigured("REDIS_URL is not set; production mode needs the URL of its Redis.")
    REDIS_URL = embedded.redis_url(DATA_DIR)
if urlsplit(REDIS_URL).password:
    SECRET_VALUES.add(urlsplit(REDIS_URL).password)
RQ_QUEUE_NAMES = ("default", "discovery", "dns", "verify")
RQ_DEFAULT_TIMEOUT = env_int("RQ_DEFAULT_TIMEOUT", 900, minimum=10)
RQ_QUEUES = {name: {"URL": REDIS_URL, "DEFAULT_TIMEOUT": RQ_DEFAULT_TIMEOUT} for name in RQ_QUEUE_NAMES}
RQ_SHOW_ADMIN_LINK = False
# `manage.py rqworker`: RQ's forking worker, its parent keeping provider clients built (dnsportal/worker.py).
RQ = {"WORKER_CLASS": "dnsportal.worker.Worker"}
JOB_RETENTION_DAYS = env_int("DNSPORTAL_JOB_RETENTION_DAYS", 30, minimum=1)
# A running job shows it lives every quarter of this; one silent this long died with its worker and is queued
# again, as is a pending one whose message Redis no longer holds (dnsportal.jobs.jobruns_sweep).
JOB_LEASE_S = env_int("DNSPORTAL_JOB_LEASE_S", 60, minimum=1)
# Many discovery events within this window give one reconcile of a zone.
RECONCILE_DEBOUNCE_MS = env_int("DNSPORTAL_RECONCILE_DEBOUNCE_MS", 1000, minimum=0)
# Discovery's events that changed at most this many names of a zone plan just those names
# (records.plan_scope); more, and the whole zone is planned. 0: always the whole zone.
RECONCILE_SCOPE_MAX_NAMES = env_int("DNSPORTAL_RECONCILE_SCOPE_MAX_NAMES", 500, minimum=0)
# First wait of the exponential backoff (with jitter) after Throttling / PriorRequestNotComplete / 5xx.
ROUTE53_BACKOFF_BASE_MS = env_int("DNSPORTAL_ROUTE53_BACKOFF_BASE_MS", 200, minimum=1)
# How long a worker holds a change set it applies; one killed mid-apply is resumed by the next after this.
APPLY_LEASE_S = env_int("DNSPORTAL_APPLY_LEASE_S", 600, minimum=1)
# A write-back pass claimed longer ago than this is taken to have died with its worker: it is claimed again.
WRITEBACK_LEASE_S = env_int("DNSPORTAL_WRITEBACK_LEASE_S", 300, minimum=1)
# An apply plans again from the stored zone state if it is this fresh, else it reads the zone first.
APPLY_STATE_MAX_AGE_S = env_int("DNSPORTAL_APPLY_STATE_MAX_AGE_S", 60, minimum=0)
# After an apply, how long the nameservers get to agree before the verification reports what differs.
VERIFY_PROPAGATION_TIMEOUT_S = env_int("DNSPORTAL_VERIFY_PROPAGATION_TIMEOUT_S", 120, minimum=1)
# The most queries one traffic-split measurement sends (the sample size follows from the weights).
VERIFY_MAX_QUERIES = env_int("DNSPORTAL_VERIFY_MAX_QUERIES", 5000, minimum=100)
# Traffic shifts: the shortest hold a step may have (a step is also held at least the record's TTL); tests
# and demos lower it.
SHIFT_MIN_HOLD_S = env_int("DNSPORTAL_SHIFT_MIN_HOLD_S", 30, minimum=1)
# How long the nameservers get to answer a step's records before that gate fails.
SHIFT_GATE_DNS_TIMEOUT_S = env_int("DNSPORTAL_SHIFT_GATE_DNS_TIMEOUT_S", 30, minimum=1)
# A step whose written policy is followed by no change set this long fails (it waits for a person instead).
SHIFT_APPLY_TIMEOUT_S = env_int("DNSPORTAL_SHIFT_APPLY_TIMEOUT_S", 300, minimum=10)
# A plan whose runner went quiet this long (its worker was killed) is picked up by the next sweep.
SHIFT_STALL_S = env_int("DNSPORTAL_SHIFT_STALL_S", 60, minimum=5)
# The longest a shift step's gates may measure (nameservers, the split twice, the probe) before the sweep
# takes the worker running them for dead.
SHIFT_GATE_LEASE_S = env_int("DNSPORTAL_SHIFT_GATE_LEASE_S", 300, minimum=5)
# Failover drills: how long the nameservers get to switch to the secondary (and to return to the primary once
# it is restored) before the drill says they did not; a drill whose worker went quiet this long is restored.
DRILL_TIMEOUT_S = env_int("DNSPORTAL_DRILL_TIMEOUT_S", 120, minimum=5)
DRILL_STALL_S = env_int("DNSPORTAL_DRILL_STALL_S", 60, minimum=5)
# `make up` in embedded mode also runs the demo (three sandbox clusters, a Route53 stand-in) unless turned
# off; production never does.
DEMO = not PRODUCTION and env_bool("DNSPORTAL_DEMO", True)
# The TXT owner id a newly imported zone gets; give each portal installation its own.
DNSPORTAL_DEFAULT_OWNER_ID = env_str("DNSPORTAL_DEFAULT_OWNER_ID", "dnsportal")

# The REST API (api/): personal tokens or the browser's session; one JSON error shape; cursor pagination.
API_TOKEN_RATE = env_int("DNSPORTAL_API_TOKEN_RATE", 600, minimum=1)  # requests per token per minute
API_MAX_WAIT_S = env_int("DNSPORTAL_API_MAX_WAIT_S", 60, minimum=0)  # longest ?wait= of a long poll

# /metrics (dnsportal.metrics_export): a bearer token and/or the networks that may scrape; neither: refused.
METRICS_TOKEN = env_secret("DNSPORTAL_METRICS_TOKEN")
try:
    METRICS_ALLOW = [ipaddress.ip_network(n, strict=False) for n in env_list("DNSPORTAL_METRICS_ALLOW", [])]
except ValueError as exc:
    raise ImproperlyConfigured(
        f"DNSPORTAL_METRICS_ALLOW: {exc} (comma-separated addresses or CIDRs)"
    ) from None
# Read by prometheus-client itself: the directory every process writes its counters to (multiprocess mode).
METRICS_MULTIPROC_DIR = env_str("PROMETHEUS_MULTIPROC_DIR", "")
if METRICS_MULTIPROC_DIR and not os.path.isdir(METRICS_MULTIPROC_DIR):
    raise ImproperlyConfigured(
        f"PROMETHEUS_MULTIPROC_DIR is {METRICS_MULTIPROC_DIR}, which is not a directory; create it "
        "(shared by every process of the portal, emptied when the deployment starts)."
    )
# Worker, watch and scheduler processes answer their own /metrics on this port when it is set (0: off), for
# deployments where they share no directory with the web (Kubernetes pods); on all interfaces unless _BIND.
METRICS_PORT = env_int("DNSPORTAL_METRICS_PORT", 0, minimum=0)
METRICS_BIND = env_str("DNSPORTAL_METRICS_BIND", "")
# Names this process's files in that directory before any library (django-rq) defines a metric of its own.
import dnsportal.metrics  # noqa: E402, F401

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "api.auth.TokenAuthentication",
        "api.auth.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["api.permissions.RolePermission"],
    "DEFAULT_THROTTLE_CLASSES": ["api.throttle.TokenRateThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "api.pagination.Cursor",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "api.errors.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "dnsportal API",
    "DESCRIPTION": "Everything a person can do in the portal's pages, over HTTP, with the same rules.",
    "VERSION": "1",
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["api.permissions.SignedIn"],
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI and Redoc from drf-spectacular-sidecar's own static files: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Swagger UI would otherwise send the schema's URL to validator.swagger.io for its badge.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "ENUM_NAME_OVERRIDES": {
        "ClusterHealthEnum": "clusters.models.Cluster.Health",
        "ProviderKindEnum": "records.models.ProviderAccount.Kind",
        "VerificationKindEnum": "records.models.Verification.Kind",
        "VerificationStatusEnum": "records.models.Verification.Status",
        "ChangeSetStatusEnum": "records.models.ChangeSet.Status",
        "ChangeStatusEnum": "records.models.Change.Status",
        "ProposalStatusEnum": "records.models_traffic.PolicyProposal.Status",
        "WriteStatusEnum": "records.models_traffic.PolicyObjectWrite.Status",
        "JobStatusEnum": "dnsportal.models.JobRun.Status",
    },
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

# Single sign-on with OpenID Connect (sso/, mozilla-django-oidc): on when DNSPORTAL_OIDC_ISSUER is set. Local
# accounts log in beside it (without an issuer they are the only way in). The provider's endpoints come from
# its discovery document, read at the first login, never at start-up.
OIDC_ISSUER = env_str("DNSPORTAL_OIDC_ISSUER", "").strip().rstrip("/")
OIDC_ENABLED = bool(OIDC_ISSUER)
OIDC_RP_CLIENT_ID = env_str("DNSPORTAL_OIDC_CLIENT_ID", "").strip()
OIDC_RP_CLIENT_SECRET = env_secret("DNSPORTAL_OIDC_CLIENT_SECRET") or ""
OIDC_RP_SCOPES = " ".join(env_str("DNSPORTAL_OIDC_SCOPES", "openid email profile groups").split())
OIDC_GROUPS_CLAIM = env_str("DNSPORTAL_OIDC_GROUPS_CLAIM", "groups").strip()
try:
    OIDC_ROLE_MAP = parse_role_map(env_str("DNSPORTAL_OIDC_ROLE_MAP", ""))
except ValueError as exc:
    raise ImproperlyConfigured(f"DNSPORTAL_OIDC_ROLE_MAP {exc}.") from None
OIDC_UNMAPPED = env_str("DNSPORTAL_OIDC_UNMAPPED", "viewer").strip().lower()
if OIDC_UNMAPPED not in UNMAPPED_CHOICES:
    raise ImproperlyConfigured(f"DNSPORTAL_OIDC_UNMAPPED must be viewer or refuse, not {OIDC_UNMAPPED!r}.")
OIDC_PROVIDER_NAME = env_str("DNSPORTAL_OIDC_NAME", "").strip() or urlsplit(OIDC_ISSUER).hostname or "SSO"
if OIDC_ENABLED:
    _issuer = urlsplit(OIDC_ISSUER)
    if _issuer.scheme not in {"https", "http"} or not _issuer.hostname or _issuer.query or _issuer.fragment:
        raise ImproperlyConfigured(
            f"DNSPORTAL_OIDC_ISSUER must be the provider's issuer URL (https://...), not {OIDC_ISSUER!r}."
        )
    if PRODUCTION and _issuer.scheme != "https":
        raise ImproperlyConfigured("DNSPORTAL_OIDC_ISSUER must be an https URL in production mode.")
    if not OIDC_RP_CLIENT_ID or not OIDC_RP_CLIENT_SECRET:
        raise ImproperlyConfigured(
            "DNSPORTAL_OIDC_ISSUER is set: DNSPORTAL_OIDC_CLIENT_ID and DNSPORTAL_OIDC_CLIENT_SECRET "
            "(or DNSPORTAL_OIDC_CLIENT_SECRET_FILE) are needed too."
        )
    if "openid" not in OIDC_RP_SCOPES.split():
        raise ImproperlyConfigured(f"DNSPORTAL_OIDC_SCOPES must include openid, not {OIDC_RP_SCOPES!r}.")
    if not OIDC_GROUPS_CLAIM:
        raise ImproperlyConfigured("DNSPORTAL_OIDC_GROUPS_CLAIM must name the claim that lists the groups.")
OIDC_RP_SIGN_ALGO = "RS256"  # the ID token signature every OpenID provider must offer
OIDC_USE_PKCE = True
OIDC_TIMEOUT = 10  # seconds for each request to the provider
OIDC_AUTHENTICATION_CALLBACK_URL = "sso:callback"
AUTHENTICATION_BACKENDS = [
    "dnsportal.login_throttle.PasswordLoginBackend",  # first: refuses a slowed or locked login unchecked
    "django.contrib.auth.backends.ModelBackend",
    "sso.backend.PortalOIDCBackend",
]

# Login throttling (dnsportal/login_throttle.py on django-axes): failures counted per (username, address).
AXES_FAILURE_LIMIT = env_int("DNSPORTAL_LOGIN_FAILURE_LIMIT", 10, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("DNSPORTAL_LOGIN_COOLOFF_MINUTES", 15, minimum=1))
LOGIN_SLOWDOWN_AFTER = env_int("DNSPORTAL_LOGIN_SLOWDOWN_AFTER", 3, minimum=0)  # 0: no slowdown, lock only
LOGIN_SLOWDOWN_BASE_S = env_int("DNSPORTAL_LOGIN_SLOWDOWN_BASE_S", 2, minimum=1)
# Proxies in front of the web (an Ingress, a load balancer) that each append to X-Forwarded-For; 0: the
# connection's address is the client's. Only login throttling reads it (/metrics keeps the connection's).
TRUSTED_PROXY_COUNT = env_int("DNSPORTAL_TRUSTED_PROXY_COUNT", 0, minimum=0)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]  # a pair: nobody can lock a person out from elsewhere
AXES_HANDLER = "dnsportal.login_throttle.ThrottlingHandler"
AXES_CLIENT_IP_CALLABLE = "dnsportal.login_throttle.client_address"
AXES_WHITELIST_CALLABLE = "dnsportal.login_throttle.is_not_a_password_login"
AXES_LOCKOUT_CALLABLE = "dnsportal.login_throttle.lockout_response"
AXES_RESET_ON_SUCCESS = True
# A refused try checks no password and is not counted: the lock ends its cool-off after the last real failure.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# The attempt rows keep the form's fields for the admin; these are masked there and in axes's log lines.
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "password", "csrfmiddlewaretoken"]
AXES_DISABLE_ACCESS_LOG = True  # successful logins are not kept in a table nobody prunes
AXES_ENABLE_ACCESS_FAILURE_LOG = False
AXES_ENABLE_ADMIN = False  # dnsportal/admin.py lists the attempts, and audits an unlock
AXES_VERBOSE = False  # no start-up banner on every manage.py command; log lines name the masked pair only

# Content-Security-Policy (django-csp) on every response: no inline script or style anywhere in the pages
# (htmx's indicator style is in portal.css, see base.html). The API's documentation pages loosen it for
# themselves only (api/urls.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [CSP_SELF],
        "script-src": [CSP_SELF],
        "style-src": [CSP_SELF],
        "img-src": [CSP_SELF, "data:"],
        "frame-ancestors": [CSP_NONE],
        "form-action": [CSP_SELF],
        "object-src": [CSP_NONE],
        "base-uri": [CSP_NONE],
    }
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
# collectstatic's target (the Docker image); the embedded portal serves straight from the apps.
STATIC_ROOT = Path(os.environ["STATIC_ROOT"]) if os.environ.get("STATIC_ROOT") else None
STATICFILES_DIRS = [BASE_DIR / "static"]
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
# The embedded portal serves static files straight from the apps (no collectstatic step before `make up`).
WHITENOISE_USE_FINDERS = not PRODUCTION

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 8 * 3600, minimum=300)
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    if env_bool("DNSPORTAL_BEHIND_TLS_PROXY", True):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
LOG_FORMAT = env_str("LOG_FORMAT", "json")
if LOG_FORMAT not in {"json", "text"}:
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or text, not {LOG_FORMAT!r}.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "dnsportal.logging.ContextFilter"}},
    "formatters": {
        "json": {"()": "dnsportal.logging.JsonFormatter"},
        "text": {"()": "dnsportal.logging.TextFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["context"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # rq logs job arguments at INFO; they are ids only (never secrets) but noisy.
        "rq.worker": {"level": "WARNING" if LOG_LEVEL == "INFO" else LOG_LEVEL},
        "django.db.backends": {"level": "INFO"},
    },
}
