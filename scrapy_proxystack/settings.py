"""The one reader of every ``PROXYSTACK_*`` setting: proxies, throttle, bans, observability, PII.

Scrapy's ``getfloat``/``getint`` turn a typo into a ``ValueError`` deep inside a middleware, or
silently accept a negative delay. Everything is read here, once, into frozen typed objects, so a
bad value stops the crawl at start-up with one :class:`~scrapy_proxystack.config.ConfigError`
that names the setting, the value and what was expected. Every default comes from
``default_settings.py`` (a setting absent from the crawler's settings, as when the components are
listed by hand without the add-on, gets the same default as with it).

The module is whole (it is longer than most) on purpose: one reader means one place where a
setting's name, default, check and message meet.

It also implements the migration path from scrapy-rotating-proxies: where a ``ROTATING_PROXY_*``
setting has the same meaning as one of ours and the user did not set ours explicitly, the old one
is honoured.
"""

from __future__ import annotations

import difflib
import json
import logging
import math
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from scrapy.settings import SETTINGS_PRIORITIES

from scrapy_proxystack import default_settings
from scrapy_proxystack.canary.controller import CanaryDefaults
from scrapy_proxystack.config import STRATEGIES, ConfigError
from scrapy_proxystack.pool import HealthParams
from scrapy_proxystack.redact import redact_url
from scrapy_proxystack.state import BACKENDS

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

__all__ = [
    "AUDIT_URL_MODES",
    "DEFAULT_ACCEPT_LANGUAGES",
    "ObservabilitySettings",
    "PiiSettings",
    "ProxyStackSettings",
    "SettingsReader",
    "check_setting_names",
]

logger = logging.getLogger(__name__)

AUDIT_URL_MODES = ("full", "host")

#: ``Accept-Language`` sent through an exit of a locale with one of these common names (country
#: or language codes). A locale not listed here and without ``accept_language`` in the YAML
#: keeps whatever header the request already has.
DEFAULT_ACCEPT_LANGUAGES: Mapping[str, str] = {
    "ar": "ar,en;q=0.5",
    "at": "de-AT,de;q=0.9,en;q=0.5",
    "au": "en-AU,en;q=0.9",
    "be": "fr-BE,nl-BE;q=0.9,fr;q=0.8,nl;q=0.7,en;q=0.5",
    "br": "pt-BR,pt;q=0.9,en;q=0.5",
    "ca": "en-CA,fr-CA;q=0.9,en;q=0.8",
    "ch": "de-CH,fr-CH;q=0.9,de;q=0.8,en;q=0.5",
    "cn": "zh-CN,zh;q=0.9,en;q=0.5",
    "de": "de-DE,de;q=0.9,en;q=0.5",
    "en": "en-US,en;q=0.9",
    "es": "es-ES,es;q=0.9,en;q=0.5",
    "fr": "fr-FR,fr;q=0.9,en;q=0.5",
    "fr-ca": "fr-CA,fr;q=0.9,en;q=0.5",
    "gb": "en-GB,en;q=0.9",
    "in": "en-IN,hi;q=0.9,en;q=0.8",
    "it": "it-IT,it;q=0.9,en;q=0.5",
    "ja": "ja-JP,ja;q=0.9,en;q=0.5",
    "jp": "ja-JP,ja;q=0.9,en;q=0.5",
    "kr": "ko-KR,ko;q=0.9,en;q=0.5",
    "ko": "ko-KR,ko;q=0.9,en;q=0.5",
    "mx": "es-MX,es;q=0.9,en;q=0.5",
    "nl": "nl-NL,nl;q=0.9,en;q=0.5",
    "pl": "pl-PL,pl;q=0.9,en;q=0.5",
    "pt": "pt-PT,pt;q=0.9,en;q=0.5",
    "ru": "ru-RU,ru;q=0.9,en;q=0.5",
    "se": "sv-SE,sv;q=0.9,en;q=0.5",
    "tr": "tr-TR,tr;q=0.9,en;q=0.5",
    "uk": "en-GB,en;q=0.9",
    "us": "en-US,en;q=0.9",
    "zh": "zh-CN,zh;q=0.9,en;q=0.5",
}


def check_setting_names(settings: BaseSettings) -> None:
    """Refuse unknown ``PROXYSTACK_*`` names: a typo must not silently disable something.

    (``PROXYSTACK_PROXY_FILE`` instead of ``PROXYSTACK_PROXIES_FILE`` would otherwise leave
    the crawl without its proxy list.)
    """
    from scrapy_proxystack import default_settings

    known = [n for n in dir(default_settings) if n.startswith("PROXYSTACK_")]
    problems = []
    for name in settings:
        if isinstance(name, str) and name.startswith("PROXYSTACK_") and name not in known:
            hint = difflib.get_close_matches(name, known, n=1)
            suggestion = f" (did you mean {hint[0]}?)" if hint else ""
            problems.append(
                f"setting {name}: unknown setting{suggestion}; expected one of the PROXYSTACK_ "
                "settings documented in the README"
            )
    if problems:
        raise ConfigError(problems)


_ADDON_PRIORITY = SETTINGS_PRIORITIES["addon"]


def default(name: str) -> Any:
    """The default of ``name``, from ``default_settings.py``: the only place one is written.
    Settings of other projects read here (``ROTATING_PROXY_*``) have none of ours."""
    if not name.startswith("PROXYSTACK_"):
        return None
    return getattr(default_settings, name)


def _explicit(settings: BaseSettings, name: str) -> bool:
    """Whether the user set ``name`` themselves (above the add-on's own defaults)."""
    priority = settings.getpriority(name)
    return priority is not None and priority > _ADDON_PRIORITY


def hint(value: Any, options: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` when ``value`` is close to one of ``options``, else ``""``."""
    hints = difflib.get_close_matches(str(value), list(options), n=1)
    return f" (did you mean {hints[0]!r}?)" if hints else ""


class SettingsReader:
    """Reads and checks settings, collecting every problem; :meth:`done` raises them at once.

    Each method returns the setting's value, or its default when the value is wrong (after
    recording the problem), so one pass reports every bad setting, not just the first.
    """

    def __init__(self, settings: BaseSettings) -> None:
        self.settings = settings
        self.problems: list[str] = []

    def error(self, name: str, value: Any, expected: str) -> None:
        self.problems.append(f"setting {name}: {value!r} is invalid; expected {expected}")

    def problem(self, text: str) -> None:
        self.problems.append(text)

    def done(self) -> None:
        if self.problems:
            raise ConfigError(self.problems)

    def raw(self, name: str) -> Any:
        return self.settings.get(name, default(name))

    def _source(self, name: str, fallback: str | None) -> str:
        if fallback and not _explicit(self.settings, name) and fallback in self.settings:
            return fallback
        return name

    def boolean(self, name: str, *, fallback: str | None = None) -> bool:
        source = self._source(name, fallback)
        value = self.settings.get(source, default(name))
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in {"1", "0", "true", "false"}:
            return value.strip().lower() in {"1", "true"}
        self.error(source, value, "True or False")
        return bool(default(name))

    def number(
        self,
        name: str,
        *,
        minimum: float = 0.0,
        strict: bool = False,
        maximum: float | None = None,
        fallback: str | None = None,
    ) -> float:
        source = self._source(name, fallback)
        raw = self.settings.get(source, default(name))
        try:
            value = float(raw)
        except (TypeError, ValueError):
            self.error(source, raw, "a number")
            return float(default(name) or 0.0)
        too_low = value <= minimum if strict else value < minimum
        if math.isnan(value) or too_low or (maximum is not None and value > maximum):
            bounds = f"{'>' if strict else '>='} {minimum}"
            if maximum is not None:
                bounds += f" and <= {maximum}"
            self.error(source, raw, f"a number {bounds}")
            return float(default(name) or 0.0)
        return value

    def optional_number(self, name: str, *, strict: bool = True) -> float | None:
        if self.raw(name) is None:
            return None
        return self.number(name, strict=strict)

    def integer(
        self,
        name: str,
        *,
        minimum: int = 0,
        fallback: str | None = None,
        expected: str | None = None,
    ) -> int:
        source = self._source(name, fallback)
        raw = self.settings.get(source, default(name))
        if isinstance(raw, str) and raw.strip().lstrip("-").isdigit():  # `scrapy crawl -s`
            raw = int(raw)
        if (
            isinstance(raw, bool)
            or not isinstance(raw, (int, float))
            or not math.isfinite(raw)
            or raw < minimum
            or raw != int(raw)
        ):
            self.error(source, raw, expected or f"a whole number >= {minimum}")
            default_value = default(name)
            return default_value if isinstance(default_value, int) else minimum
        return int(raw)

    def choice(self, name: str, choices: Iterable[str]) -> str:
        value = self.raw(name)
        options = tuple(choices)
        if value not in options:
            self.error(name, value, f"one of {', '.join(options)}{hint(value, options)}")
            return str(default(name))
        return str(value)

    def str_map(self, name: str) -> dict[str, str]:
        raw = self.raw(name) or {}
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except ValueError:
                self.error(name, raw, "a dict (or JSON object) of strings")
                return {}
        if not isinstance(raw, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in raw.items()
        ):
            self.error(name, raw, "a dict of strings to strings")
            return {}
        return {k.lower(): v for k, v in raw.items()}

    def str_list(self, name: str) -> list[str] | None:
        """A list of strings, a comma-separated string, or a JSON list (``scrapy crawl -s``)."""
        value = self.raw(name)
        if value is None:
            return None
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    value = json.loads(text)
                except ValueError:
                    self.error(name, value, "a JSON list of strings")
                    return None
            else:
                value = [v.strip() for v in text.split(",") if v.strip()]
        if isinstance(value, Mapping) or not isinstance(value, Iterable):
            self.error(name, value, "a list of strings or a comma-separated string")
            return None
        items = list(value)
        if not all(isinstance(v, str) for v in items):
            self.error(name, value, "a list of strings or a comma-separated string")
            return None
        return items

    def codes(self, name: str) -> frozenset[int]:
        fallback = frozenset(default(name))
        raw = self.settings.getlist(name, list(fallback))
        out: set[int] = set()
        for item in raw:
            try:
                code = int(item)
            except (TypeError, ValueError):
                self.error(name, raw, "a list of HTTP status codes")
                return fallback
            if not 100 <= code <= 599:
                self.error(name, raw, "a list of HTTP status codes (100-599)")
                return fallback
            out.add(code)
        return frozenset(out)

    def optional_str(self, name: str) -> str | None:
        value = self.raw(name)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            self.error(name, value, "a string")
            return None
        return value

    def json_mapping(self, name: str) -> Mapping[str, Any] | None:
        """A dict, or a JSON object given on the command line; the value is never echoed (it
        may hold credentials)."""
        value = self.raw(name)
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                self.error(name, "<not JSON>", "a dict (or JSON object)")
                return None
        if value is not None and not isinstance(value, Mapping):
            self.error(name, type(value).__name__, "a dict")
            return None
        return value


@dataclass(frozen=True)
class ProxyStackSettings:
    """The proxy, throttle and ban settings, validated. Build it with :meth:`from_settings`.

    The raw proxy sources (``proxies``, ``legacy_proxy_list``) hold URLs with credentials: they
    are left out of the repr, which tracebacks with locals, debuggers and logs print.
    """

    enabled: bool
    proxies_file: str | None
    proxies: Mapping[str, Any] | None = field(repr=False)
    legacy_proxy_list: tuple[str, ...] = field(repr=False)
    legacy_source: str
    #: Scrapy's ``HTTPPROXY_AUTH_ENCODING`` (its default is latin-1): the one encoding of proxy
    #: credentials, checked when the proxy list is loaded and used by ``check`` as well.
    auth_encoding: str
    tld_locales: Mapping[str, str]
    accept_language: bool
    accept_languages: Mapping[str, str]
    strategy: str
    backoff_base: float
    backoff_cap: float
    max_ejection_share: float
    close_on_empty_locale: bool
    adaptive_timeout: bool
    adaptive_timeout_min: float
    adaptive_timeout_factor: float
    exit_retry_times: int
    canary_enabled: bool
    canary_alpha: float
    canary_margin: float
    canary_promote_after: int
    ban_enabled: bool
    ban_max_retries: int
    ban_http_codes: frozenset[int]
    ban_min_body_size: int
    ban_lang_check: bool
    ban_cooldown: float
    ban_cooldown_cap: float
    ban_max_wait: float
    site_backoff: float
    session_max_idle: float
    ban_policy: str | None
    domain_rate: float | None
    domain_burst: int
    exit_delay: float
    exit_delay_max: float
    max_wait: float
    robots_crawl_delay: bool
    state_backend: str
    #: May hold a password: out of the repr.
    redis_url: str | None = field(repr=False)
    redis_prefix: str | None
    redis_timeout: float
    redis_mirror_interval: float
    redis_required: bool

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> ProxyStackSettings:
        r = SettingsReader(settings)
        legacy, legacy_source = _legacy_proxy_list(r)
        auth_encoding = settings.get("HTTPPROXY_AUTH_ENCODING") or "latin-1"
        try:
            "a".encode(auth_encoding)  # LookupError too for codecs that are not text encodings
        except (LookupError, TypeError):
            r.error("HTTPPROXY_AUTH_ENCODING", auth_encoding, "a Python codec name (e.g. 'utf-8')")
            auth_encoding = "latin-1"
        result = cls(
            enabled=r.boolean("PROXYSTACK_ENABLED"),
            proxies_file=r.optional_str("PROXYSTACK_PROXIES_FILE"),
            proxies=r.json_mapping("PROXYSTACK_PROXIES"),
            legacy_proxy_list=tuple(legacy),
            legacy_source=legacy_source,
            auth_encoding=auth_encoding,
            tld_locales=r.str_map("PROXYSTACK_TLD_LOCALES"),
            accept_language=r.boolean("PROXYSTACK_ACCEPT_LANGUAGE"),
            accept_languages=r.str_map("PROXYSTACK_ACCEPT_LANGUAGES"),
            strategy=r.choice("PROXYSTACK_STRATEGY", STRATEGIES),
            backoff_base=r.number(
                "PROXYSTACK_BACKOFF_BASE", strict=True, fallback="ROTATING_PROXY_BACKOFF_BASE"
            ),
            backoff_cap=r.number(
                "PROXYSTACK_BACKOFF_CAP", strict=True, fallback="ROTATING_PROXY_BACKOFF_CAP"
            ),
            max_ejection_share=r.number("PROXYSTACK_MAX_EJECTION_SHARE", maximum=1.0),
            close_on_empty_locale=r.boolean(
                "PROXYSTACK_CLOSE_ON_EMPTY_LOCALE", fallback="ROTATING_PROXY_CLOSE_SPIDER"
            ),
            adaptive_timeout=r.boolean("PROXYSTACK_ADAPTIVE_TIMEOUT"),
            adaptive_timeout_min=r.number("PROXYSTACK_ADAPTIVE_TIMEOUT_MIN", strict=True),
            adaptive_timeout_factor=r.number("PROXYSTACK_ADAPTIVE_TIMEOUT_FACTOR", strict=True),
            exit_retry_times=r.integer(
                "PROXYSTACK_EXIT_RETRY_TIMES", fallback="ROTATING_PROXY_PAGE_RETRY_TIMES"
            ),
            canary_enabled=r.boolean("PROXYSTACK_CANARY_ENABLED"),
            canary_alpha=r.number("PROXYSTACK_CANARY_ALPHA", strict=True, maximum=0.5),
            canary_margin=r.number("PROXYSTACK_CANARY_MARGIN", maximum=10.0),
            canary_promote_after=r.integer("PROXYSTACK_CANARY_PROMOTE_AFTER", minimum=1),
            ban_enabled=r.boolean("PROXYSTACK_BAN_ENABLED"),
            ban_max_retries=r.integer(
                "PROXYSTACK_BAN_MAX_RETRIES", fallback="ROTATING_PROXY_PAGE_RETRY_TIMES"
            ),
            ban_http_codes=r.codes("PROXYSTACK_BAN_HTTP_CODES"),
            ban_min_body_size=r.integer("PROXYSTACK_BAN_MIN_BODY_SIZE"),
            ban_lang_check=r.boolean("PROXYSTACK_BAN_LANG_CHECK"),
            ban_cooldown=r.number("PROXYSTACK_BAN_COOLDOWN", strict=True),
            ban_cooldown_cap=r.number("PROXYSTACK_BAN_COOLDOWN_CAP", strict=True),
            ban_max_wait=r.number("PROXYSTACK_BAN_MAX_WAIT"),
            site_backoff=r.number("PROXYSTACK_SITE_BACKOFF", strict=True),
            session_max_idle=r.number("PROXYSTACK_SESSION_MAX_IDLE", strict=True),
            ban_policy=(
                r.optional_str("PROXYSTACK_BAN_POLICY")
                or r.optional_str("ROTATING_PROXY_BAN_POLICY")
            ),
            domain_rate=r.optional_number("PROXYSTACK_DOMAIN_RATE"),
            domain_burst=r.integer("PROXYSTACK_DOMAIN_BURST", minimum=1),
            exit_delay=r.number("PROXYSTACK_EXIT_DELAY"),
            exit_delay_max=r.number("PROXYSTACK_EXIT_DELAY_MAX"),
            max_wait=r.number("PROXYSTACK_MAX_WAIT"),
            robots_crawl_delay=r.boolean("PROXYSTACK_ROBOTS_CRAWL_DELAY"),
            state_backend=r.choice("PROXYSTACK_STATE_BACKEND", BACKENDS),
            redis_url=_redis_url(r),
            redis_prefix=r.optional_str("PROXYSTACK_REDIS_PREFIX"),
            redis_timeout=r.number("PROXYSTACK_REDIS_TIMEOUT", strict=True),
            redis_mirror_interval=r.number("PROXYSTACK_REDIS_MIRROR_INTERVAL", strict=True),
            redis_required=r.boolean("PROXYSTACK_REDIS_REQUIRED"),
        )
        _check_caps(r, result)
        r.done()
        return result

    def health(self) -> HealthParams:
        """The pool's health parameters these settings choose."""
        return HealthParams(
            backoff_base=self.backoff_base,
            backoff_cap=self.backoff_cap,
            max_ejection_share=self.max_ejection_share,
            ban_cooldown=self.ban_cooldown,
            ban_cooldown_cap=self.ban_cooldown_cap,
            site_backoff=self.site_backoff,
            session_max_idle=self.session_max_idle,
        )

    def canary_defaults(self) -> CanaryDefaults:
        """What a YAML ``canary:`` block does not set itself."""
        return CanaryDefaults(
            alpha=self.canary_alpha,
            margin=self.canary_margin,
            promote_after=self.canary_promote_after,
        )

    def accept_language_for(self, locale: str | None, yaml_value: str | None) -> str | None:
        """The ``Accept-Language`` for an exit of ``locale``: YAML, then setting, then table."""
        if not self.accept_language or locale is None:
            return None
        if yaml_value:
            return yaml_value
        key = locale.lower()
        return self.accept_languages.get(key) or DEFAULT_ACCEPT_LANGUAGES.get(key)


def _check_caps(r: SettingsReader, st: ProxyStackSettings) -> None:
    """Caps below their bases: each is fine alone, the pair is not."""
    if st.backoff_cap < st.backoff_base:
        r.problem(
            f"setting PROXYSTACK_BACKOFF_CAP: {st.backoff_cap!r} is below "
            f"PROXYSTACK_BACKOFF_BASE ({st.backoff_base!r}); expected cap >= base"
        )
    if st.ban_cooldown_cap < st.ban_cooldown:
        r.problem(
            f"setting PROXYSTACK_BAN_COOLDOWN_CAP: {st.ban_cooldown_cap!r} is below "
            f"PROXYSTACK_BAN_COOLDOWN ({st.ban_cooldown!r}); expected cap >= cooldown"
        )


def _redis_url(r: SettingsReader) -> str | None:
    """``PROXYSTACK_REDIS_URL``, else scrapy-redis's ``REDIS_URL``; checked without ever
    echoing it (it may hold a password)."""
    name = "PROXYSTACK_REDIS_URL"
    value = r.raw(name)
    if value is None:
        name, value = "REDIS_URL", r.settings.get("REDIS_URL")
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not value.startswith(("redis://", "rediss://", "unix://")):
        r.problem(
            f"setting {name}: {redact_url(str(value))!r} is invalid; expected a redis://, "
            "rediss:// or unix:// URL"
        )
        return None
    return value


def _legacy_proxy_list(r: SettingsReader) -> tuple[list[str], str]:
    """scrapy-rotating-proxies' ``ROTATING_PROXY_LIST(_PATH)``, normalised its own way."""
    settings = r.settings
    legacy: list[str] = []
    source = "ROTATING_PROXY_LIST"
    path = settings.get("ROTATING_PROXY_LIST_PATH")
    if path:
        source = str(path)
        try:
            with open(path, encoding="utf-8") as f:
                legacy = list(f)
        except OSError as exc:
            r.problem(
                f"setting ROTATING_PROXY_LIST_PATH: {path!r} cannot be read "
                f"({exc.strerror}); expected a file with one proxy URL per line"
            )
    else:
        legacy = settings.getlist("ROTATING_PROXY_LIST")
    if legacy:
        from rotating_proxies.middlewares import RotatingProxyMiddleware

        # The library's own normaliser: strips, skips comments, adds http://, dedupes.
        legacy = sorted(RotatingProxyMiddleware.cleanup_proxy_list(legacy))
    return legacy, source


@dataclass(frozen=True)
class ObservabilitySettings:
    """Every observability ``PROXYSTACK_*`` setting, validated."""

    enabled: bool
    stats_per_exit: bool
    logstats_interval: float
    report_file: str | None
    report_top_exits: int
    prometheus_port: int | None
    prometheus_bind: str
    audit_file: str | None
    audit_urls: str
    check_url: str | None
    check_timeout: float
    check_concurrency: int
    locale_countries: Mapping[str, str]

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> ObservabilitySettings:
        r = SettingsReader(settings)
        port: int | None = None
        raw_port = r.raw("PROXYSTACK_PROMETHEUS_PORT")
        if raw_port is not None and raw_port != "":
            port = r.integer("PROXYSTACK_PROMETHEUS_PORT")
            if port > 65535:
                r.error("PROXYSTACK_PROMETHEUS_PORT", raw_port, "a port in 0..65535 or None")
        result = cls(
            enabled=r.boolean("PROXYSTACK_ENABLED"),
            stats_per_exit=r.boolean("PROXYSTACK_STATS_PER_EXIT"),
            logstats_interval=r.number("PROXYSTACK_LOGSTATS_INTERVAL"),
            report_file=r.optional_str("PROXYSTACK_REPORT_FILE"),
            report_top_exits=r.integer("PROXYSTACK_REPORT_TOP_EXITS", minimum=1),
            prometheus_port=port,
            prometheus_bind=(
                r.optional_str("PROXYSTACK_PROMETHEUS_BIND")
                or default("PROXYSTACK_PROMETHEUS_BIND")
            ),
            audit_file=r.optional_str("PROXYSTACK_AUDIT_FILE"),
            audit_urls=r.choice("PROXYSTACK_AUDIT_URLS", AUDIT_URL_MODES),
            check_url=r.optional_str("PROXYSTACK_CHECK_URL"),
            check_timeout=r.number("PROXYSTACK_CHECK_TIMEOUT", strict=True),
            check_concurrency=r.integer("PROXYSTACK_CHECK_CONCURRENCY", minimum=1),
            locale_countries=r.str_map("PROXYSTACK_LOCALE_COUNTRIES"),
        )
        r.done()
        return result


@dataclass(frozen=True)
class PiiSettings:
    """The validated ``PROXYSTACK_PII_*`` settings."""

    fields: frozenset[str] | None
    skip_fields: frozenset[str]
    types: tuple[str, ...]
    policy: Mapping[str, str]
    default_operator: str
    languages: tuple[str, ...]
    private_ips: bool
    partial_keep: int
    hmac_key: bytes | None = field(repr=False)  # a secret: kept out of tracebacks and logs
    workers: int = 0
    #: ``PROXYSTACK_PII_WORKERS = "auto"``: ``workers`` was chosen from the machine, and the
    #: pipeline masks in the crawl's thread where workers cannot run (no asyncio reactor).
    workers_auto: bool = False

    @classmethod
    def enabled(cls, settings: BaseSettings) -> bool:
        r = SettingsReader(settings)
        on = r.boolean("PROXYSTACK_PII_ENABLED")
        r.done()
        return on

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> PiiSettings:
        from scrapy_proxystack.pii import types as t
        from scrapy_proxystack.pii.phones import DEFAULT_LANGUAGES, LANGUAGE_REGIONS

        r = SettingsReader(settings)
        fields = r.str_list("PROXYSTACK_PII_FIELDS")
        skip = r.str_list("PROXYSTACK_PII_SKIP_FIELDS")
        types = r.str_list("PROXYSTACK_PII_TYPES")
        for name in types or ():
            if name not in t.ALL_TYPES:
                r.error(
                    "PROXYSTACK_PII_TYPES",
                    name,
                    f"type names among {list(t.ALL_TYPES)}{hint(name, t.ALL_TYPES)}",
                )
        policy = _pii_policy(r, t.ALL_TYPES, t.OPERATORS)
        default_op = r.choice("PROXYSTACK_PII_DEFAULT_OPERATOR", t.OPERATORS)
        langs = r.str_list("PROXYSTACK_PII_LANGUAGES")
        for lang in langs or ():
            if lang.lower().split("-")[0].split("_")[0] not in LANGUAGE_REGIONS:
                r.error("PROXYSTACK_PII_LANGUAGES", lang, f"codes among {sorted(LANGUAGE_REGIONS)}")
        key = _hmac_key(r)
        if t.PSEUDONYMIZE in {*policy.values(), default_op} and not key:
            r.problem(
                "setting PROXYSTACK_PII_HMAC_KEY: the 'pseudonymize' operator needs a key; "
                "expected PROXYSTACK_PII_HMAC_KEY or the environment variable named by "
                f"PROXYSTACK_PII_HMAC_KEY_ENV ({r.raw('PROXYSTACK_PII_HMAC_KEY_ENV')!r}) to be set"
            )
        result = cls(
            fields=frozenset(fields) if fields is not None else None,
            skip_fields=frozenset(skip or ()),
            types=tuple(types) if types is not None else t.DEFAULT_TYPES,
            policy=policy,
            default_operator=default_op,
            languages=tuple(langs) if langs is not None else DEFAULT_LANGUAGES,
            private_ips=r.boolean("PROXYSTACK_PII_PRIVATE_IPS"),
            partial_keep=r.integer("PROXYSTACK_PII_PARTIAL_KEEP"),
            hmac_key=key,
            **_pii_workers(r),
        )
        r.done()
        return result


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the system has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _pii_workers(r: SettingsReader) -> dict[str, Any]:
    """``PROXYSTACK_PII_WORKERS``: a number, or ``"auto"``: one worker where the crawl has a
    core to spare (measured: masking 50 KB pages in the crawl's thread cost 20 % of pages/s on
    two cores, and 8 % with one worker), none on a single core, nor on Windows, where the
    selector loop of Scrapy's asyncio reactor cannot run child processes."""
    name = "PROXYSTACK_PII_WORKERS"
    raw = r.raw(name)
    if isinstance(raw, str) and raw.strip().lower() == "auto":
        spare = usable_cpus() >= 2 and sys.platform != "win32"
        return {"workers": 1 if spare else 0, "workers_auto": True}
    return {"workers": r.integer(name, expected="a whole number >= 0, or 'auto'")}


def _pii_policy(
    r: SettingsReader, types: Iterable[str], operators: Iterable[str]
) -> dict[str, str]:
    name = "PROXYSTACK_PII_POLICY"
    raw = r.raw(name) or {}
    if isinstance(raw, str):  # JSON, as given with `scrapy crawl -s`
        try:
            raw = json.loads(raw)
        except ValueError:
            r.error(name, raw, "a JSON object of {type: operator}")
            return {}
    if not isinstance(raw, Mapping):
        r.error(name, raw, "a dict of {type: operator}")
        return {}
    known, ops = tuple(types), tuple(operators)
    policy: dict[str, str] = {}
    for kind, op in raw.items():
        if kind not in known:
            r.error(name, kind, f"type names among {list(known)}{hint(kind, known)}")
        elif op not in ops:
            r.error(f"{name}[{kind!r}]", op, f"one of {list(ops)}{hint(op, ops)}")
        else:
            policy[kind] = op
    return policy


def _hmac_key(r: SettingsReader) -> bytes | None:
    key = r.raw("PROXYSTACK_PII_HMAC_KEY")
    if not key:
        env = r.raw("PROXYSTACK_PII_HMAC_KEY_ENV")
        if not isinstance(env, str):
            r.error("PROXYSTACK_PII_HMAC_KEY_ENV", env, "the name of an environment variable")
            return None
        key = os.environ.get(env) if env else None
    if not key:
        return None
    if isinstance(key, str):
        return key.encode()
    if isinstance(key, bytes):
        return key
    # The value itself is never echoed: it is a secret.
    r.problem("setting PROXYSTACK_PII_HMAC_KEY: value not shown; expected a str or bytes")
    return None


def suite_enabled(settings: BaseSettings) -> bool:
    """``PROXYSTACK_ENABLED``, checked like every other setting."""
    r = SettingsReader(settings)
    on = r.boolean("PROXYSTACK_ENABLED")
    r.done()
    return on
