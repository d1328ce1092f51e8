"""The per-crawler state shared by the suite's components.

Scrapy builds each middleware and extension separately, but they must share one view of the
world: one parsed config, one exit pool, one stats helper. :func:`get_stack` builds that object
on first use (during component construction, so before any request) and hands the same instance
to every component of the same crawler.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

from scrapy.utils.httpobj import urlparse_cached

from scrapy_proxystack.config import ConfigError, ProxyConfig, load_proxy_config
from scrapy_proxystack.pool import ExitPool, HealthParams
from scrapy_proxystack.settings import ProxyStackSettings
from scrapy_proxystack.signals import ExitOutcome, exit_outcome
from scrapy_proxystack.stats import StatsRecorder

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler

__all__ = ["LocaleDecision", "ProxyStack", "close_crawl", "get_stack"]

logger = logging.getLogger(__name__)

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
    _warned: set[tuple[str, ...]] = field(default_factory=set)

    @classmethod
    def build(cls, crawler: Crawler) -> ProxyStack:
        settings = ProxyStackSettings.from_settings(crawler.settings)
        if settings.proxies_file is not None or settings.proxies is not None:
            config = load_proxy_config(
                settings.proxies_file,
                settings.proxies,
                extra_unlocalized=settings.legacy_proxy_list,
                extra_source=settings.legacy_source,
            )
        else:
            config = load_proxy_config(
                data={},
                extra_unlocalized=settings.legacy_proxy_list,
                extra_source=settings.legacy_source,
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
        assert crawler.stats is not None
        stack = cls(
            crawler=crawler,
            settings=settings,
            config=config,
            pool=pool,
            stats=StatsRecorder(crawler.stats),
        )
        stack.stats.set("exits", "configured", value=len(config.all_proxies))
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


def get_stack(crawler: Crawler) -> ProxyStack:
    """The :class:`ProxyStack` of ``crawler``, built on first call."""
    with _LOCK:
        stack = _STACKS.get(crawler)
        if stack is None:
            stack = ProxyStack.build(crawler)
            _STACKS[crawler] = stack
        return stack
