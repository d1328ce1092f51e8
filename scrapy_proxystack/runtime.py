"""The per-crawler state shared by the suite's components.

Scrapy builds each middleware and extension separately, but they must share one view of the
world: one parsed config, one exit pool, one stats helper. :func:`get_stack` builds that object
on first use (during component construction, so before any request) and hands the same instance
to every component of the same crawler.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
import weakref
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.exceptions import NotConfigured
from scrapy.settings import SETTINGS_PRIORITIES
from scrapy.utils.httpobj import urlparse_cached

from scrapy_proxystack.config import ConfigError, ProxyConfig, load_proxy_config
from scrapy_proxystack.exceptions import ExitUnavailable
from scrapy_proxystack.pool import ExitPool, HealthParams, NoExit, SessionLost
from scrapy_proxystack.settings import ProxyStackSettings, check_setting_names
from scrapy_proxystack.signals import ExitOutcome, exit_outcome
from scrapy_proxystack.stats import StatsRecorder
from scrapy_proxystack.throttle import DomainRateLimiter, ExitPacer, RateRule

if TYPE_CHECKING:
    from collections.abc import Collection

    from scrapy import Request
    from scrapy.crawler import Crawler

    from scrapy_proxystack.pool import Choice

__all__ = ["LocaleDecision", "ProxyStack", "close_crawl", "enabled_stack", "get_stack"]

logger = logging.getLogger(__name__)

#: Private meta keys. ``meta["proxy"]`` is not an identity: Scrapy's HttpProxyMiddleware rewrites
#: it without credentials, and gateways encode the country in the user name.
EXIT_META_KEY = "_proxystack_exit"
TRIED_META_KEY = "_proxystack_tried"
PENDING_META_KEY = "_proxystack_pending"
#: The exit whose in-flight slot this very attempt holds: released exactly once.
HELD_META_KEY = "_proxystack_held"
_MAX_RETIRED_SESSIONS = 100_000
_FREEZE_THRESHOLD = 10_000

_STACKS: weakref.WeakKeyDictionary[Crawler, ProxyStack] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True)
class LocaleDecision:
    """Which locale a request must leave from, and which rule said so (for stats)."""

    locale: str | None
    source: str  # "meta" | "domain" | "tld" | "default" | "none"


@dataclass
class ProxyStack:
    """Config, settings, exit pool and stats of one crawler."""

    crawler: Crawler
    settings: ProxyStackSettings
    config: ProxyConfig
    pool: ExitPool
    stats: StatsRecorder
    limiter: DomainRateLimiter = field(default_factory=DomainRateLimiter)
    pacer: ExitPacer = field(default_factory=ExitPacer)
    dispatch_binding: bool = False
    retired_sessions: dict[str, str] = field(default_factory=dict)
    accept_language: dict[str | None, str | None] = field(default_factory=dict)
    default_accept_language: bytes | None = None
    default_timeout: float = 180.0
    _rules_applied: dict[str, float] = field(default_factory=dict)
    _warned: set[tuple[str, ...]] = field(default_factory=set)

    @classmethod
    def build(cls, crawler: Crawler) -> ProxyStack:
        check_setting_names(crawler.settings)
        if not crawler.settings.getbool("HTTPPROXY_ENABLED"):
            # The exit's credentials travel in meta["proxy"] to Scrapy's HttpProxyMiddleware,
            # which turns them into a header; without it they would reach the network layer.
            raise ConfigError(
                [
                    "setting HTTPPROXY_ENABLED: False is incompatible with scrapy-proxystack; "
                    "expected True (Scrapy's HttpProxyMiddleware sends the proxy credentials)"
                ]
            )
        settings = ProxyStackSettings.from_settings(crawler.settings)
        configured = settings.proxies_file is not None or settings.proxies is not None
        config = load_proxy_config(
            settings.proxies_file,
            settings.proxies if configured else None,
            extra_unlocalized=settings.legacy_proxy_list,
            extra_source=settings.legacy_source,
            auth_encoding=settings.auth_encoding,
        )
        if not config.all_proxies:
            # An add-on that silently crawled from the machine's own address would be the worst
            # failure of all: the crawl would "work" while breaking the locale promise.
            where = (
                f"{config.source} defines none"
                if configured
                else "none of PROXYSTACK_PROXIES_FILE, PROXYSTACK_PROXIES or ROTATING_PROXY_LIST "
                "is set"
            )
            raise ConfigError(
                [
                    f"no proxies configured: {where}; expected at least one locale with proxies "
                    "(or set PROXYSTACK_ENABLED = False to crawl without the proxy components)"
                ]
            )
        if settings.legacy_proxy_list:
            logger.warning(
                "Using %(n)d proxies from %(source)s as the pool with no locale. Move them to "
                "a PROXYSTACK_PROXIES_FILE YAML (locales: {...}) to route requests by country.",
                {"n": len(settings.legacy_proxy_list), "source": settings.legacy_source},
            )
        health = HealthParams(
            backoff_base=settings.backoff_base,
            backoff_cap=settings.backoff_cap,
            max_ejection_share=settings.max_ejection_share,
            ban_cooldown=settings.ban_cooldown,
            ban_cooldown_cap=settings.ban_cooldown_cap,
        )
        unknown = sorted(
            f"{tld}: {loc}"
            for tld, loc in settings.tld_locales.items()
            if loc not in config.locales
        )
        if unknown:
            raise ConfigError(
                [
                    f"setting PROXYSTACK_TLD_LOCALES: {', '.join(unknown)} names a locale that "
                    f"{config.source} does not define; expected one of "
                    f"{', '.join(config.locales) or '(no locales)'}"
                ]
            )
        pool = ExitPool(config, strategy=settings.strategy, health=health)
        if len(config.all_proxies) >= _FREEZE_THRESHOLD:
            # A big pool is hundreds of thousands of long-lived objects; without this, every
            # full garbage collection during the crawl walks all of them again.
            gc.collect()
            gc.freeze()
        assert crawler.stats is not None
        stack = cls(
            crawler=crawler,
            settings=settings,
            config=config,
            pool=pool,
            stats=StatsRecorder(crawler.stats),
        )
        stack.stats.set("exits", "configured", value=len(config.all_proxies))
        stack._setup(crawler)
        logger.info(
            "Proxy config from %(source)s: %(n)d exits in %(l)d locales (%(locales)s), "
            "strategy %(strategy)s",
            {
                "source": config.source,
                "n": len(config.all_proxies),
                "l": len(config.locales),
                "locales": ", ".join(config.locales) or "none",
                "strategy": settings.strategy,
            },
        )
        return stack

    def _setup(self, crawler: Crawler) -> None:
        s = crawler.settings
        st = self.settings
        crawler.signals.connect(self._engine_stopped, signal=signals.engine_stopped)
        self.limiter = DomainRateLimiter(
            RateRule(rate=st.domain_rate, burst=st.domain_burst) if st.domain_rate else None
        )
        self.pacer = ExitPacer(maximum=st.exit_delay_max)
        self.dispatch_binding = bool(s.getdict("_PROXYSTACK_INNER_DOWNLOAD_HANDLERS"))
        self.default_timeout = s.getfloat("DOWNLOAD_TIMEOUT")
        # Scrapy's own default Accept-Language ("en") is not a user choice; a project one is.
        if (s.getpriority("DEFAULT_REQUEST_HEADERS") or 0) <= SETTINGS_PRIORITIES["addon"]:
            value = next(
                (
                    v
                    for k, v in s.getdict("DEFAULT_REQUEST_HEADERS").items()
                    if k.lower() == "accept-language"
                ),
                None,
            )
            self.default_accept_language = value.encode() if isinstance(value, str) else value
        for name, locale in self.config.locales.items():
            self.accept_language[name] = st.accept_language_for(name, locale.accept_language)
        robots_parsed = getattr(signals, "robots_parsed", None)  # Scrapy >= 2.18
        if st.robots_crawl_delay and s.getbool("ROBOTSTXT_OBEY") and robots_parsed is not None:
            self._robots_agent = s.get("ROBOTSTXT_USER_AGENT") or s.get("USER_AGENT")
            crawler.signals.connect(self._robots_parsed, signal=robots_parsed)

    def _engine_stopped(self) -> None:
        """Every request has ended by now: an exit still marked busy is an accounting bug."""
        in_flight = self.pool.counts(None).in_flight
        if in_flight:
            self.stats.set("exits", "in_flight_at_close", value=in_flight)
            logger.error(
                "%(n)d requests still counted in flight at close (an accounting bug)",
                {"n": in_flight},
                extra={"crawler": self.crawler},
            )

    def _robots_parsed(self, robotparser: Any, request: Request) -> None:
        """Apply a robots ``Crawl-delay`` to the site's budget (Scrapy only parses it)."""
        delay = robotparser.crawl_delay(self._robots_agent)
        host = urlparse_cached(request).hostname or ""
        if delay:
            self.limiter.set_min_interval(host, float(delay))
            self.stats.inc("throttle", "crawl_delay_applied")
            logger.info(
                "Honouring Crawl-delay %(delay)ss of %(host)s",
                {"delay": delay, "host": host},
                extra={"crawler": self.crawler},
            )

    # -- exits ------------------------------------------------------------------------------------

    def bind(self, request: Request, choice: Choice) -> None:
        """Send ``request`` through ``choice``: meta, Accept-Language, timeout, stats."""
        meta = request.meta
        entry = choice.entry
        meta["proxy"] = entry.url
        meta[EXIT_META_KEY] = entry.id
        meta[HELD_META_KEY] = entry.id
        meta["_proxystack_exit_locale"] = choice.locale
        meta["_proxystack_flags"] = (choice.fallback, choice.panic)
        if not self.dispatch_binding:
            self.count_sent(request)
        if choice.panic:
            self.warn_once(
                ("panic", str(choice.locale)),
                "Every exit of locale %(locale)r is ejected: using the least-bad ones (panic mode)",
                {"locale": choice.locale},
            )
        accept_language = self.accept_language.get(choice.locale)
        if accept_language is not None:
            current = request.headers.get(b"Accept-Language")
            ours = meta.get("_proxystack_accept_language")
            if current is None or current in (self.default_accept_language, ours):
                # Not set by the user (or set by the suite for an earlier hop or locale).
                request.headers[b"Accept-Language"] = accept_language
                meta["_proxystack_accept_language"] = accept_language.encode()
        if self.settings.adaptive_timeout:
            self._adapt_timeout(request, choice.locale)

    def _adapt_timeout(self, request: Request, locale: str | None) -> None:
        """A black-hole exit should cost seconds, not DOWNLOAD_TIMEOUT (180 s by default)."""
        current = request.meta.get("download_timeout", self.default_timeout)
        if current != self.default_timeout or request.meta.get("_proxystack_full_timeout"):
            return  # set by the user for this request, or a shortened timeout already fired
        latency = self.pool.locale_latency(locale)
        if latency is None:
            return
        timeout = max(
            self.settings.adaptive_timeout_min, latency * self.settings.adaptive_timeout_factor
        )
        if timeout < current:
            request.meta["download_timeout"] = timeout
            request.meta["_proxystack_timeout"] = (timeout, current)

    def choose(
        self, locale: str | None, domain: str, tried: Collection[str], session: object
    ) -> Choice:
        """An exit for a request: one it has not tried yet if there is one, else any usable one.

        Retrying through another exit is a preference: a locale with a single exit (or whose
        other exits are banned by the site) retries through the same one rather than failing.
        """
        name = str(session) if session is not None else None
        try:
            return self.pool.choose(locale, domain, exclude=tried, session=name)
        except NoExit as exc:
            if exc.reason != "all_tried" or isinstance(exc, SessionLost):
                raise
        self.stats.inc("exits", "reused")
        return self.pool.choose(locale, domain, session=name)

    def release_held(self, request: Request) -> None:
        """Give back the in-flight slot this attempt holds, if it holds one."""
        held = request.meta.pop(HELD_META_KEY, None)
        if held is not None:
            self.pool.release(held)

    def count_sent(self, request: Request) -> None:
        """Count a request once, when its exit is final (at dispatch when the handlers are on)."""
        meta = request.meta
        locale = meta.get("_proxystack_exit_locale") or "none"
        fallback, panic = meta.get("_proxystack_flags", (False, False))
        self.stats.inc("requests", "locale", locale)
        if fallback:
            self.stats.inc("requests", "fallback", locale)
        if panic:
            self.stats.inc("requests", "panic", locale)

    def usable_now(self, exit_id: str, domain: str, *, panic: bool = False) -> bool:
        """Whether ``exit_id`` may carry a request to ``domain`` at this moment.

        An exit chosen in panic mode is ejected by definition: then only the site's own
        verdict (a ban or pacing) counts.
        """
        pool = self.pool
        if not panic and pool.ejected_until(exit_id) is not None:
            return False
        return pool.ready_at(exit_id, domain) is None

    def can_wait(self, exc: NoExit) -> bool:
        """Whether a request that found no ready exit should wait for one instead of failing."""
        if not self.dispatch_binding or exc.retry_at is None or exc.reason != "all_banned":
            return False
        return exc.retry_at - time.monotonic() <= self.settings.max_wait

    def fail_closed(self, request: Request, locale: str | None, reason: str) -> ExitUnavailable:
        """Count, log (once per locale and reason) and build the error for a request not sent."""
        self.stats.inc("requests", "no_exit", reason)
        self.stats.inc("requests", "dropped", "no_exit")
        request.meta.pop("_proxystack_exit_locale", None)
        request.meta.pop("_proxystack_flags", None)
        self.emit(request, "no_exit", reason)
        self.warn_once(
            ("no_exit", str(locale), reason),
            "No usable exit for locale %(locale)r (%(reason)s): requests for it fail closed "
            "and are counted in proxystack/requests/no_exit/%(reason)s (first: %(url)s)",
            {"locale": locale, "reason": reason, "url": request.url},
        )
        if self.settings.close_on_empty_locale:
            close_crawl(self.crawler, "proxystack_no_exit")
        return ExitUnavailable(locale, reason)

    def retire_session(self, request: Request, session: str, reason: str) -> None:
        """End a sticky session whose exit was lost; its name stays retired."""
        self.pool.end_session(session)
        # Later requests of the same session must not quietly get a new exit: the spider starts
        # a new session under a new name when it wants one.
        self.retired_sessions[session] = reason
        if len(self.retired_sessions) > _MAX_RETIRED_SESSIONS:
            self.retired_sessions.pop(next(iter(self.retired_sessions)))
        self.stats.inc("sessions", "retired", reason)
        request.meta["proxystack_session_retired"] = reason
        self.emit(request, "session_retired", reason)
        logger.info(
            "Sticky session %(session)r retired (%(reason)s)",
            {"session": session, "reason": reason},
            extra={"crawler": self.crawler},
        )

    # -- throttling -------------------------------------------------------------------------------

    def limiter_for(self, domain: str) -> DomainRateLimiter:
        """The rate limiter, with ``domain``'s YAML ``rate``/``burst`` applied on first sight."""
        if domain not in self._rules_applied:
            rule = self.config.domain_rule(domain)
            if rule is not None and rule.rate is not None:
                burst = rule.burst or self.settings.domain_burst
                self.limiter.set_rule(domain, RateRule(rate=rule.rate, burst=burst))
            self._rules_applied[domain] = (
                rule.exit_delay
                if rule is not None and rule.exit_delay is not None
                else self.settings.exit_delay
            )
            if len(self._rules_applied) > 1_000_000:  # bounded: forget the oldest sites
                self._rules_applied.pop(next(iter(self._rules_applied)))
        return self.limiter

    def exit_delay_for(self, exit_id: str, domain: str) -> float:
        base = self._rules_applied.get(domain, self.settings.exit_delay)
        return self.pacer.delay(exit_id, domain, base)

    def exit_pushed_back(self, exit_id: str, domain: str, retry_after: float | None) -> None:
        base = self._rules_applied.get(domain, self.settings.exit_delay)
        if base > 0 or retry_after:
            self.pacer.on_pushback(exit_id, domain, base, retry_after)

    def exit_succeeded(self, exit_id: str, domain: str) -> None:
        base = self._rules_applied.get(domain, self.settings.exit_delay)
        self.pacer.on_success(exit_id, domain, base)

    def resolve_locale(self, host: str, meta_locale: object) -> LocaleDecision:
        """Locale for a request: meta, then YAML ``domains``, then TLD map, then the default."""
        if meta_locale is not None:
            return LocaleDecision(str(meta_locale), "meta")
        return self._resolve_host(host)

    @lru_cache(maxsize=65536)  # noqa: B019 - one stack per crawler; the cache dies with it
    def _resolve_host(self, host: str) -> LocaleDecision:
        rule = self.config.domain_rule(host)
        if rule is not None and rule.locale is not None:
            return LocaleDecision(rule.locale, "domain")
        if self.settings.tld_locales:
            labels = host.lower().rstrip(".").split(".")
            for i in range(1, len(labels)):
                locale = self.settings.tld_locales.get(".".join(labels[i:]))
                if locale is not None:
                    return LocaleDecision(locale, "tld")
        if self.config.default_locale is not None:
            return LocaleDecision(self.config.default_locale, "default")
        return LocaleDecision(None, "none")

    def emit(
        self,
        request: Request,
        kind: str,
        reason: str,
        *,
        status: int | None = None,
        exit_id: str | None = None,
    ) -> None:
        """Send :data:`~scrapy_proxystack.signals.exit_outcome` for one attempt of ``request``."""
        meta = request.meta
        decision = meta.get("_proxystack_locale")
        flags = meta.get("_proxystack_flags", (False, False))
        latency = meta.get("download_latency")
        outcome = ExitOutcome(
            time=time.time(),
            url=request.url,
            domain=urlparse_cached(request).hostname or "",
            locale=decision[1].locale if decision else None,
            exit_locale=meta.get("_proxystack_exit_locale"),
            exit_id=exit_id if exit_id is not None else meta.get("_proxystack_exit"),
            kind=kind,
            reason=reason,
            status=status,
            latency=float(latency) if latency is not None and kind != "no_exit" else None,
            retries=int(meta.get("retry_times", 0)),
            fallback=flags[0],
            panic=flags[1],
        )
        self.crawler.signals.send_catch_log(exit_outcome, outcome=outcome, request=request)

    def warn_once(self, key: tuple[str, ...], msg: str, args: dict[str, object]) -> bool:
        """Log ``msg`` at WARNING the first time ``key`` is seen; repeats are only counted."""
        if key in self._warned:
            return False
        self._warned.add(key)
        logger.warning(msg, args, extra={"crawler": self.crawler})
        return True

    def __hash__(self) -> int:  # lru_cache on a method needs a hashable self
        return id(self)

    def __eq__(self, other: object) -> bool:
        return self is other


def close_crawl(crawler: Crawler, reason: str) -> None:
    """Close the crawl from inside a component (raising CloseSpider there would be ignored)."""
    engine = crawler.engine
    if engine is None or getattr(engine, "_proxystack_closing", False):
        return
    engine._proxystack_closing = True  # type: ignore[attr-defined]
    logger.warning("Closing the crawl: %(reason)s", {"reason": reason}, extra={"crawler": crawler})
    close_async = getattr(engine, "close_spider_async", None)
    if close_async is not None:  # Scrapy >= 2.14
        from scrapy.utils.defer import deferred_from_coro

        deferred_from_coro(close_async(reason=reason))
    else:
        engine.close_spider(crawler.spider, reason=reason)  # type: ignore[arg-type]


def enabled_stack(crawler: Crawler) -> ProxyStack:
    """The stack for a component that only runs when the suite is on.

    Raises NotConfigured when ``PROXYSTACK_ENABLED`` is False. (A missing proxy list is not
    "disabled": :meth:`ProxyStack.build` refuses it with a ConfigError.)
    """
    if not crawler.settings.getbool("PROXYSTACK_ENABLED", True):
        raise NotConfigured("PROXYSTACK_ENABLED is False")
    return get_stack(crawler)


def get_stack(crawler: Crawler) -> ProxyStack:
    """The :class:`ProxyStack` of ``crawler``, built on first call."""
    with _LOCK:
        stack = _STACKS.get(crawler)
        if stack is None:
            stack = ProxyStack.build(crawler)
            _STACKS[crawler] = stack
        return stack
