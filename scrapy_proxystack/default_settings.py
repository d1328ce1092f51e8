"""The one home of scrapy-proxystack's defaults.

The add-on copies these into the crawler's settings at ``addon`` priority, so anything a user sets
in ``settings.py``, ``custom_settings`` or on the command line wins. Every name here is documented
in README.md (a test checks it).
"""

from __future__ import annotations

# --- Proxies and locales --------------------------------------------------------------------
PROXYSTACK_ENABLED = True
PROXYSTACK_PROXIES_FILE: str | None = None
PROXYSTACK_PROXIES: dict[str, object] | None = None
PROXYSTACK_TLD_LOCALES: dict[str, str] = {}
PROXYSTACK_ACCEPT_LANGUAGE = True
PROXYSTACK_ACCEPT_LANGUAGES: dict[str, str] = {}

# --- Exit choice and health -----------------------------------------------------------------
PROXYSTACK_STRATEGY = "latency"
PROXYSTACK_BACKOFF_BASE = 30.0
PROXYSTACK_BACKOFF_CAP = 600.0
PROXYSTACK_MAX_EJECTION_SHARE = 0.5
PROXYSTACK_CLOSE_ON_EMPTY_LOCALE = False
PROXYSTACK_ADAPTIVE_TIMEOUT = True
PROXYSTACK_ADAPTIVE_TIMEOUT_MIN = 5.0
PROXYSTACK_ADAPTIVE_TIMEOUT_FACTOR = 10.0
PROXYSTACK_EXIT_RETRY_TIMES = 5

# --- Canary analysis between pools (per pool in the YAML: `canary: {baseline: ...}`) ----------
PROXYSTACK_CANARY_ENABLED = True
PROXYSTACK_CANARY_ALPHA = 0.01
PROXYSTACK_CANARY_MARGIN = 0.1
PROXYSTACK_CANARY_PROMOTE_AFTER = 500

# --- Per-site throttling ---------------------------------------------------------------------
PROXYSTACK_DOMAIN_RATE: float | None = None
PROXYSTACK_DOMAIN_BURST = 1
PROXYSTACK_EXIT_DELAY = 0.0
PROXYSTACK_EXIT_DELAY_MAX = 60.0
PROXYSTACK_MAX_WAIT = 10.0
PROXYSTACK_ROBOTS_CRAWL_DELAY = True

# --- Several workers: shared state ----------------------------------------------------------
PROXYSTACK_STATE_BACKEND = "memory"
PROXYSTACK_REDIS_URL: str | None = None
PROXYSTACK_REDIS_PREFIX: str | None = None
PROXYSTACK_REDIS_TIMEOUT = 0.25
PROXYSTACK_REDIS_MIRROR_INTERVAL = 0.5
PROXYSTACK_REDIS_REQUIRED = True

# --- Bans -----------------------------------------------------------------------------------
PROXYSTACK_BAN_ENABLED = True
PROXYSTACK_BAN_MAX_RETRIES = 5
PROXYSTACK_BAN_HTTP_CODES = [403, 429, 451, 503]
PROXYSTACK_BAN_MIN_BODY_SIZE = 1
PROXYSTACK_BAN_LANG_CHECK = True
PROXYSTACK_BAN_COOLDOWN = 20.0
PROXYSTACK_BAN_COOLDOWN_CAP = 3600.0
PROXYSTACK_BAN_MAX_WAIT = 600.0
PROXYSTACK_SITE_BACKOFF = 2.0
PROXYSTACK_SESSION_MAX_IDLE = 1800.0
PROXYSTACK_BAN_POLICY: str | None = None

# --- Observability --------------------------------------------------------------------------
PROXYSTACK_STATS_PER_EXIT = False
PROXYSTACK_LOGSTATS_INTERVAL = 60.0
PROXYSTACK_REPORT_FILE: str | None = None
PROXYSTACK_REPORT_TOP_EXITS = 10
PROXYSTACK_PROMETHEUS_PORT: int | None = None
PROXYSTACK_PROMETHEUS_BIND = "127.0.0.1"
PROXYSTACK_AUDIT_FILE: str | None = None
PROXYSTACK_AUDIT_URLS = "full"
PROXYSTACK_CHECK_URL: str | None = None
PROXYSTACK_CHECK_TIMEOUT = 10.0
PROXYSTACK_CHECK_CONCURRENCY = 50
PROXYSTACK_LOCALE_COUNTRIES: dict[str, str] = {}

# --- PII masking ----------------------------------------------------------------------------
PROXYSTACK_PII_ENABLED = False
PROXYSTACK_PII_FIELDS: list[str] | None = None
PROXYSTACK_PII_SKIP_FIELDS = [
    "url",
    "urls",
    "id",
    "uuid",
    "guid",
    "sku",
    "canonical_url",
    "source_url",
    "image_urls",
    "file_urls",
]
PROXYSTACK_PII_TYPES: list[str] | None = None
PROXYSTACK_PII_POLICY: dict[str, str] = {}
PROXYSTACK_PII_DEFAULT_OPERATOR = "mask"
PROXYSTACK_PII_HMAC_KEY: str | bytes | None = None
PROXYSTACK_PII_HMAC_KEY_ENV = "PROXYSTACK_PII_HMAC_KEY"
PROXYSTACK_PII_PRIVATE_IPS = False
PROXYSTACK_PII_LANGUAGES: list[str] | None = None
PROXYSTACK_PII_PARTIAL_KEEP = 4
PROXYSTACK_PII_WORKERS: int | str = "auto"
