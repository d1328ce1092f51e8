"""``PROXYSTACK_*`` settings, read once into a frozen, typed object and validated there.

Scrapy's ``getfloat``/``getint`` turn a typo into a ``ValueError`` deep inside a middleware, or
silently accept a negative delay. Reading everything here, once, means a bad value stops the crawl
at start-up with a message that names the setting, the value and what was expected.

It also implements the migration path from scrapy-rotating-proxies: where a ``ROTATING_PROXY_*``
setting has the same meaning as one of ours and the user did not set ours explicitly, the old one
is honoured.
"""

from __future__ import annotations

import difflib
import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from scrapy.settings import SETTINGS_PRIORITIES

from scrapy_proxystack.config import STRATEGIES, ConfigError
from scrapy_proxystack.pool import HealthParams

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

__all__ = ["DEFAULT_ACCEPT_LANGUAGES", "ProxyStackSettings", "check_setting_names"]

logger = logging.getLogger(__name__)

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

_ADDON_PRIORITY = SETTINGS_PRIORITIES["addon"]


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


def _explicit(settings: BaseSettings, name: str) -> bool:
    """Whether the user set ``name`` themselves (above the add-on's own defaults)."""
    priority = settings.getpriority(name)
    return priority is not None and priority > _ADDON_PRIORITY


class _Reader:
    def __init__(self, settings: BaseSettings) -> None:
        self.settings = settings
        self.problems: list[str] = []

    def _err(self, name: str, value: Any, expected: str) -> None:
        self.problems.append(f"setting {name}: {value!r} is invalid; expected {expected}")

    def boolean(self, name: str, default: bool) -> bool:
        value = self.settings.get(name, default)
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in {"1", "0", "true", "false"}:
            return value.strip().lower() in {"1", "true"}
        self._err(name, value, "True or False")
        return default

    def number(
        self,
        name: str,
        default: float,
        *,
        minimum: float = 0.0,
        strict: bool = False,
        maximum: float | None = None,
        fallback: str | None = None,
    ) -> float:
        source = name
        if fallback and not _explicit(self.settings, name) and fallback in self.settings:
            source = fallback
        raw = self.settings.get(source, default)
        try:
            value = float(raw)
        except (TypeError, ValueError):
            self._err(source, raw, "a number")
            return default
        too_low = value <= minimum if strict else value < minimum
        if math.isnan(value) or too_low or (maximum is not None and value > maximum):
            bounds = f"{'>' if strict else '>='} {minimum}"
            if maximum is not None:
                bounds += f" and <= {maximum}"
            self._err(source, raw, f"a number {bounds}")
            return default
        return value

    def integer(
        self, name: str, default: int, *, minimum: int = 0, fallback: str | None = None
    ) -> int:
        source = name
        if fallback and not _explicit(self.settings, name) and fallback in self.settings:
            source = fallback
        raw = self.settings.get(source, default)
        if isinstance(raw, bool):
            self._err(source, raw, f"a whole number >= {minimum}")
            return default
        try:
            value = int(raw)
        except (TypeError, ValueError):
            self._err(source, raw, f"a whole number >= {minimum}")
            return default
        if value < minimum or (isinstance(raw, float) and raw != value):
            self._err(source, raw, f"a whole number >= {minimum}")
            return default
        return value

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.settings.get(name, default)
        if value not in choices:
            self._err(name, value, f"one of {', '.join(choices)}")
            return default
        return str(value)

    def str_map(self, name: str) -> dict[str, str]:
        raw = self.settings.get(name) or {}
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except ValueError:
                self._err(name, raw, "a dict (or JSON object) of strings")
                return {}
        if not isinstance(raw, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in raw.items()
        ):
            self._err(name, raw, "a dict of strings to strings")
            return {}
        return {k.lower(): v for k, v in raw.items()}

    def codes(self, name: str, default: list[int]) -> frozenset[int]:
        raw = self.settings.getlist(name, default)
        out: set[int] = set()
        for item in raw:
            try:
                code = int(item)
            except (TypeError, ValueError):
                self._err(name, raw, "a list of HTTP status codes")
                return frozenset(default)
            if not 100 <= code <= 599:
                self._err(name, raw, "a list of HTTP status codes (100-599)")
                return frozenset(default)
            out.add(code)
        return frozenset(out)

    def optional_str(self, name: str) -> str | None:
        value = self.settings.get(name)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            self._err(name, value, "a string")
            return None
        return value


@dataclass(frozen=True)
class ProxyStackSettings:
    """Every ``PROXYSTACK_*`` setting, validated. Build it with :meth:`from_settings`.

    The raw proxy sources (``proxies``, ``legacy_proxy_list``) hold URLs with credentials: they
    are left out of the repr, which tracebacks with locals, debuggers and logs print.
    """

    enabled: bool = True
    proxies_file: str | None = None
    proxies: Mapping[str, Any] | None = field(default=None, repr=False)
    legacy_proxy_list: tuple[str, ...] = field(default=(), repr=False)
    legacy_source: str = "ROTATING_PROXY_LIST"
    #: Scrapy's ``HTTPPROXY_AUTH_ENCODING`` (its default is latin-1): the one encoding of proxy
    #: credentials, checked when the proxy list is loaded and used by ``check`` as well.
    auth_encoding: str = "latin-1"
    tld_locales: Mapping[str, str] = field(default_factory=dict)
    accept_language: bool = True
    accept_languages: Mapping[str, str] = field(default_factory=dict)
    strategy: str = "latency"
    backoff_base: float = 30.0
    backoff_cap: float = 600.0
    max_ejection_share: float = 0.5
    close_on_empty_locale: bool = False
    adaptive_timeout: bool = True
    adaptive_timeout_min: float = 5.0
    adaptive_timeout_factor: float = 10.0
    exit_retry_times: int = 5
    ban_enabled: bool = True
    ban_max_retries: int = 5
    ban_http_codes: frozenset[int] = frozenset({403, 429, 451, 503})
    ban_min_body_size: int = 1
    ban_lang_check: bool = True
    ban_cooldown: float = 20.0
    ban_cooldown_cap: float = 3600.0
    ban_max_wait: float = 600.0
    site_backoff: float = 2.0
    session_max_idle: float = 1800.0
    ban_policy: str | None = None
    domain_rate: float | None = None
    domain_burst: int = 1
    exit_delay: float = 0.0
    exit_delay_max: float = 60.0
    max_wait: float = 10.0
    robots_crawl_delay: bool = True

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> ProxyStackSettings:
        r = _Reader(settings)
        proxies_file = r.optional_str("PROXYSTACK_PROXIES_FILE")
        proxies = settings.get("PROXYSTACK_PROXIES")
        if isinstance(proxies, str):
            try:
                proxies = json.loads(proxies)
            except ValueError:
                r._err("PROXYSTACK_PROXIES", "<not JSON>", "a dict like the YAML file's content")
                proxies = None
        if proxies is not None and not isinstance(proxies, Mapping):
            r._err("PROXYSTACK_PROXIES", type(proxies).__name__, "a dict with a 'locales' key")
            proxies = None

        legacy: list[str] = []
        legacy_source = "ROTATING_PROXY_LIST"
        path = settings.get("ROTATING_PROXY_LIST_PATH")
        if path:
            legacy_source = str(path)
            try:
                with open(path, encoding="utf-8") as f:
                    legacy = list(f)
            except OSError as exc:
                r.problems.append(
                    f"setting ROTATING_PROXY_LIST_PATH: {path!r} cannot be read "
                    f"({exc.strerror}); expected a file with one proxy URL per line"
                )
        else:
            legacy = settings.getlist("ROTATING_PROXY_LIST")
        if legacy:
            from rotating_proxies.middlewares import RotatingProxyMiddleware

            # The library's own normaliser: strips, skips comments, adds http://, dedupes.
            legacy = sorted(RotatingProxyMiddleware.cleanup_proxy_list(legacy))

        auth_encoding = settings.get("HTTPPROXY_AUTH_ENCODING") or "latin-1"
        try:
            "a".encode(auth_encoding)  # LookupError too for codecs that are not text encodings
        except (LookupError, TypeError):
            r._err("HTTPPROXY_AUTH_ENCODING", auth_encoding, "a Python codec name (e.g. 'utf-8')")
            auth_encoding = "latin-1"

        ban_policy = r.optional_str("PROXYSTACK_BAN_POLICY")
        if ban_policy is None:
            ban_policy = r.optional_str("ROTATING_PROXY_BAN_POLICY")

        close_name = "PROXYSTACK_CLOSE_ON_EMPTY_LOCALE"
        if not _explicit(settings, close_name) and "ROTATING_PROXY_CLOSE_SPIDER" in settings:
            close_name = "ROTATING_PROXY_CLOSE_SPIDER"

        result = cls(
            enabled=r.boolean("PROXYSTACK_ENABLED", True),
            proxies_file=proxies_file,
            proxies=proxies,
            legacy_proxy_list=tuple(legacy),
            legacy_source=legacy_source,
            auth_encoding=auth_encoding,
            tld_locales=r.str_map("PROXYSTACK_TLD_LOCALES"),
            accept_language=r.boolean("PROXYSTACK_ACCEPT_LANGUAGE", True),
            accept_languages=r.str_map("PROXYSTACK_ACCEPT_LANGUAGES"),
            strategy=r.choice("PROXYSTACK_STRATEGY", "latency", STRATEGIES),
            backoff_base=r.number(
                "PROXYSTACK_BACKOFF_BASE", 30.0, strict=True, fallback="ROTATING_PROXY_BACKOFF_BASE"
            ),
            backoff_cap=r.number(
                "PROXYSTACK_BACKOFF_CAP", 600.0, strict=True, fallback="ROTATING_PROXY_BACKOFF_CAP"
            ),
            max_ejection_share=r.number("PROXYSTACK_MAX_EJECTION_SHARE", 0.5, maximum=1.0),
            close_on_empty_locale=r.boolean(close_name, False),
            adaptive_timeout=r.boolean("PROXYSTACK_ADAPTIVE_TIMEOUT", True),
            adaptive_timeout_min=r.number("PROXYSTACK_ADAPTIVE_TIMEOUT_MIN", 5.0, strict=True),
            adaptive_timeout_factor=r.number(
                "PROXYSTACK_ADAPTIVE_TIMEOUT_FACTOR", 10.0, strict=True
            ),
            exit_retry_times=r.integer(
                "PROXYSTACK_EXIT_RETRY_TIMES", 5, fallback="ROTATING_PROXY_PAGE_RETRY_TIMES"
            ),
            ban_enabled=r.boolean("PROXYSTACK_BAN_ENABLED", True),
            ban_max_retries=r.integer(
                "PROXYSTACK_BAN_MAX_RETRIES", 5, fallback="ROTATING_PROXY_PAGE_RETRY_TIMES"
            ),
            ban_http_codes=r.codes("PROXYSTACK_BAN_HTTP_CODES", [403, 429, 451, 503]),
            ban_min_body_size=r.integer("PROXYSTACK_BAN_MIN_BODY_SIZE", 1),
            ban_lang_check=r.boolean("PROXYSTACK_BAN_LANG_CHECK", True),
            ban_cooldown=r.number("PROXYSTACK_BAN_COOLDOWN", 20.0, strict=True),
            ban_cooldown_cap=r.number("PROXYSTACK_BAN_COOLDOWN_CAP", 3600.0, strict=True),
            ban_max_wait=r.number("PROXYSTACK_BAN_MAX_WAIT", 600.0),
            site_backoff=r.number("PROXYSTACK_SITE_BACKOFF", 2.0, strict=True),
            session_max_idle=r.number("PROXYSTACK_SESSION_MAX_IDLE", 1800.0, strict=True),
            ban_policy=ban_policy,
            domain_rate=(
                r.number("PROXYSTACK_DOMAIN_RATE", 0.0, strict=True)
                if settings.get("PROXYSTACK_DOMAIN_RATE") is not None
                else None
            ),
            domain_burst=r.integer("PROXYSTACK_DOMAIN_BURST", 1, minimum=1),
            exit_delay=r.number("PROXYSTACK_EXIT_DELAY", 0.0),
            exit_delay_max=r.number("PROXYSTACK_EXIT_DELAY_MAX", 60.0),
            max_wait=r.number("PROXYSTACK_MAX_WAIT", 10.0),
            robots_crawl_delay=r.boolean("PROXYSTACK_ROBOTS_CRAWL_DELAY", True),
        )
        if result.backoff_cap < result.backoff_base:
            r.problems.append(
                f"setting PROXYSTACK_BACKOFF_CAP: {result.backoff_cap!r} is below "
                f"PROXYSTACK_BACKOFF_BASE ({result.backoff_base!r}); expected cap >= base"
            )
        if result.ban_cooldown_cap < result.ban_cooldown:
            r.problems.append(
                f"setting PROXYSTACK_BAN_COOLDOWN_CAP: {result.ban_cooldown_cap!r} is below "
                f"PROXYSTACK_BAN_COOLDOWN ({result.ban_cooldown!r}); expected cap >= cooldown"
            )
        if r.problems:
            raise ConfigError(r.problems)
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

    def accept_language_for(self, locale: str | None, yaml_value: str | None) -> str | None:
        """The ``Accept-Language`` for an exit of ``locale``: YAML, then setting, then table."""
        if not self.accept_language or locale is None:
            return None
        if yaml_value:
            return yaml_value
        key = locale.lower()
        return self.accept_languages.get(key) or DEFAULT_ACCEPT_LANGUAGES.get(key)
