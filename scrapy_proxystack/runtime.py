"""The per-crawler wiring shared by the suite's components.

Scrapy builds each middleware and extension separately, but they must share one view of the
world: one parsed config, one exit pool, one router, one stats helper. :func:`get_stack` builds
that object on first use (during component construction, so before any request) and hands the
same instance to every component of the same crawler. It holds no per-request logic (that is
:mod:`scrapy_proxystack.routing`): it connects signals, runs the parking lot's timer, keeps the
exits' state across a ``JOBDIR`` pause, and logs the summary at close.

It is longer than most modules because each optional part (shared state, canary analysis)
brings its own set-up and signal handlers; each part's logic lives in its own module.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import threading
import time
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.exceptions import DontCloseSpider, IgnoreRequest, NotConfigured
from scrapy.settings import SETTINGS_PRIORITIES
from scrapy.utils.asyncio import call_later, is_asyncio_available
from scrapy.utils.defer import deferred_from_coro
from scrapy.utils.httpobj import urlparse_cached

from scrapy_proxystack.canary.controller import CanaryController
from scrapy_proxystack.config import ConfigError, ProxyConfig, load_proxy_config
from scrapy_proxystack.jobdir import Jobdir
from scrapy_proxystack.locales import LocaleDecision, LocaleResolver
from scrapy_proxystack.parking import ParkingLot
from scrapy_proxystack.pool import ExitPool
from scrapy_proxystack.redact import redact_url
from scrapy_proxystack.routing import Router
from scrapy_proxystack.settings import ProxyStackSettings, check_setting_names, suite_enabled
from scrapy_proxystack.signals import ExitOutcome, exit_outcome
from scrapy_proxystack.stats import StatsRecorder
from scrapy_proxystack.throttle import SiteThrottle

if TYPE_CHECKING:
    from collections.abc import Iterator

    from scrapy import Request, Spider
    from scrapy.crawler import Crawler

    from scrapy_proxystack.state.redis_state import RedisState

__all__ = [
    "LocaleDecision",
    "ProxyStack",
    "close_crawl",
    "config_errors_logged",
    "disabled",
    "enabled_stack",
    "get_stack",
]

logger = logging.getLogger(__name__)

_FREEZE_THRESHOLD = 10_000

_STACKS: weakref.WeakKeyDictionary[Crawler, ProxyStack] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()
_DISABLED_LOGGED: weakref.WeakSet[Crawler] = weakref.WeakSet()


class _LoggedConfigErrorFilter(logging.Filter):
    """Drops asyncio's report of a :class:`ConfigError` that :func:`config_errors_logged` logged.

    Only that record: any other exception asyncio reports, from the same task or another, passes.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not (isinstance(exc, ConfigError) and getattr(exc, "_proxystack_logged", False))


_ASYNCIO_FILTER = _LoggedConfigErrorFilter()


@contextlib.contextmanager
def config_errors_logged() -> Iterator[None]:
    """Log a :class:`ConfigError` at ERROR, once, before it propagates.

    Scrapy 2.19 reports any exception raised while a crawler starts (from an add-on's
    ``update_settings`` as from a component's constructor) only when asyncio collects the task
    that ran it: ``Task exception was never retrieved`` and a 25-line traceback through Scrapy's
    start-up, with the message at the very end. The message is logged here instead, as the first
    error line, and asyncio's report of this exception (and of no other) is left out. The
    exception still propagates: the crawl does not start and ``scrapy crawl`` exits with 1.
    """
    try:
        yield
    except ConfigError as exc:
        if not getattr(exc, "_proxystack_logged", False):
            exc._proxystack_logged = True  # type: ignore[attr-defined]
            logger.error("The crawl cannot start: %(message)s", {"message": str(exc)})
            asyncio_logger = logging.getLogger("asyncio")
            if _ASYNCIO_FILTER not in asyncio_logger.filters:
                asyncio_logger.addFilter(_ASYNCIO_FILTER)
        raise


def disabled(crawler: Crawler) -> NotConfigured:
    """The NotConfigured of a component when ``PROXYSTACK_ENABLED`` is False.

    Scrapy logs a WARNING for every component refused with a message; a suite switched off on
    purpose gets one INFO line per crawler instead, and bare NotConfigured exceptions.
    """
    with _LOCK:
        first = crawler not in _DISABLED_LOGGED
        _DISABLED_LOGGED.add(crawler)
    if first:
        logger.info(
            "scrapy-proxystack is disabled (PROXYSTACK_ENABLED = False): requests leave "
            "without its proxies, ban detection and throttling"
        )
    return NotConfigured()


def load_config(settings: ProxyStackSettings) -> ProxyConfig:
    """The proxy configuration the settings point to; refuses one without any proxy."""
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
            else "none of PROXYSTACK_PROXIES_FILE, PROXYSTACK_PROXIES or ROTATING_PROXY_LIST is set"
        )
        raise ConfigError(
            [
                f"no proxies configured: {where}; expected at least one locale with proxies "
                "(or set PROXYSTACK_ENABLED = False to crawl without the proxy components)"
            ]
        )
    unknown = sorted(
        f"{tld}: {loc}" for tld, loc in settings.tld_locales.items() if loc not in config.locales
    )
    if unknown:
        raise ConfigError(
            [
                f"setting PROXYSTACK_TLD_LOCALES: {', '.join(unknown)} names a locale that "
                f"{config.source} does not define; expected one of "
                f"{', '.join(config.locales) or '(no locales)'}"
            ]
        )
    return config


class ProxyStack:
    """Config, settings, exit pool, router, throttle and stats of one crawler."""

    def __init__(
        self,
        crawler: Crawler,
        settings: ProxyStackSettings,
        config: ProxyConfig,
        pool: ExitPool,
    ) -> None:
        assert crawler.stats is not None
        self.crawler = crawler
        self.settings = settings
        self.config = config
        self.pool = pool
        self.stats = StatsRecorder(crawler.stats)
        self.lot: ParkingLot[Request] = ParkingLot()
        self.throttle = SiteThrottle(
            rule_for=config.domain_rule,
            domain_rate=settings.domain_rate,
            domain_burst=settings.domain_burst,
            exit_delay=settings.exit_delay,
            exit_delay_max=settings.exit_delay_max,
        )
        s = crawler.settings
        self.router = Router(
            pool=pool,
            stats=self.stats,
            settings=settings,
            locales=LocaleResolver(config, settings.tld_locales),
            lot=self.lot,
            sink=self,
            accept_language={
                name: settings.accept_language_for(name, locale.accept_language)
                for name, locale in config.locales.items()
            },
            default_accept_language=_project_accept_language(crawler),
            default_timeout=s.getfloat("DOWNLOAD_TIMEOUT"),
            dispatch_binding=bool(s.getdict("_PROXYSTACK_INNER_DOWNLOAD_HANDLERS")),
        )
        #: Canary analysis between the pools of a locale (None: no ``canary:`` in the YAML, or
        #: ``PROXYSTACK_CANARY_ENABLED`` is False).
        self.canary = (
            CanaryController.from_config(
                config,
                settings.canary_defaults(),
                pool,
                self.stats,
                log_extra={"crawler": crawler},
            )
            if settings.canary_enabled
            else None
        )
        #: State shared with the crawl's other workers (None: this worker alone, in memory).
        self.shared: RedisState | None = None
        self._warned: set[tuple[str, ...]] = set()
        self._timer: Any = None
        self._timer_at = float("inf")
        self._open = False
        self._robots_agent: str | None = None

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
        config = load_config(settings)
        if settings.legacy_proxy_list:
            logger.warning(
                "Using %(n)d proxies from %(source)s as the pool with no locale. Move them to "
                "a PROXYSTACK_PROXIES_FILE YAML (locales: {...}) to route requests by country.",
                {"n": len(settings.legacy_proxy_list), "source": settings.legacy_source},
            )
        pool = ExitPool(config, strategy=settings.strategy, health=settings.health())
        if len(config.all_proxies) >= _FREEZE_THRESHOLD:
            # A big pool is hundreds of thousands of long-lived objects; without this, every
            # full garbage collection during the crawl walks all of them again.
            gc.collect()
            gc.freeze()
        stack = cls(crawler, settings, config, pool)
        if settings.state_backend == "redis":
            stack.shared = _redis_state(crawler, settings, pool, stack.stats)
            pool.listener = stack.shared.listener
        stack.stats.set("exits", "configured", value=len(config.all_proxies))
        stack._connect(crawler)
        if stack.canary is not None:
            logger.info(
                "Canary analysis: %(canaries)s",
                {
                    "canaries": "; ".join(
                        f"{j.spec.label} against {j.spec.baseline} at {j.share:g}% "
                        f"(alpha {j.spec.alpha:g}, margin {j.spec.margin:g}"
                        + (f", steps {list(j.spec.steps)}" if j.spec.steps else "")
                        + ")"
                        for j in stack.canary.judges
                    )
                },
            )
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

    def _connect(self, crawler: Crawler) -> None:
        connect = crawler.signals.connect
        connect(self._engine_stopped, signal=signals.engine_stopped)
        connect(self._spider_opened, signal=signals.spider_opened)
        connect(self._request_scheduled, signal=signals.request_scheduled)
        connect(self._spider_idle, signal=signals.spider_idle)
        connect(self._spider_closed, signal=signals.spider_closed)
        if self.shared is not None:
            connect(self._open_shared, signal=signals.spider_opened)
            connect(self._close_shared, signal=signals.spider_closed)
        s = crawler.settings
        if self.settings.robots_crawl_delay and s.getbool("ROBOTSTXT_OBEY"):
            self._robots_agent = s.get("ROBOTSTXT_USER_AGENT") or s.get("USER_AGENT")
            connect(self._robots_parsed, signal=signals.robots_parsed)

    # -- what the router asks of the crawler -----------------------------------------------------

    def send_outcome(self, outcome: ExitOutcome, request: Request) -> None:
        if self.canary is not None and outcome.exit_pool is not None:
            self.canary.observe(outcome)
        self.crawler.signals.send_catch_log(exit_outcome, outcome=outcome, request=request)

    def warn_once(
        self,
        key: tuple[str, ...],
        msg: str,
        args: dict[str, object],
        *,
        level: int = logging.WARNING,
    ) -> bool:
        """Log ``msg`` (at WARNING by default) the first time ``key`` is seen; repeats are only
        counted."""
        if key in self._warned:
            return False
        self._warned.add(key)
        logger.log(level, msg, args, extra={"crawler": self.crawler})
        return True

    def close(self, reason: str) -> None:
        close_crawl(self.crawler, reason)

    def is_open(self) -> bool:
        return self._open

    def arm(self, at: float) -> None:
        """Wake the parking lot at ``at`` (monotonic clock), unless it wakes earlier anyway."""
        if at >= self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = at
        self._timer = call_later(max(0.0, at - time.monotonic()), self._wake)

    # -- signals ----------------------------------------------------------------------------------

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
            self.throttle.limiter.set_min_interval(host, float(delay))
            self.stats.inc("throttle", "crawl_delay_applied")
            logger.info(
                "Honouring Crawl-delay %(delay)ss of %(host)s",
                {"delay": delay, "host": host},
                extra={"crawler": self.crawler},
            )

    def _spider_opened(self, spider: Spider) -> None:
        self._open = True
        jobdir = self.crawler.settings.get("JOBDIR")
        if jobdir:
            requests = self._jobdir(jobdir).load(spider)
            if requests:
                self.stats.inc("requests", "resumed", count=len(requests))
                call_later(0.0, self._crawl_all, requests)

    async def _open_shared(self) -> None:
        assert self.shared is not None
        await self.shared.start()

    async def _close_shared(self) -> None:
        assert self.shared is not None
        await self.shared.close()

    def _request_scheduled(self, request: Request) -> None:
        """Park a copy the router handed back; mark every other request as scheduled."""
        if self.router.scheduled(request):
            # Scrapy drops a request whose request_scheduled handler raises IgnoreRequest,
            # quietly: the copy now waits in the parking lot.
            raise IgnoreRequest("waiting for an exit")

    def _wake(self) -> None:
        self._timer = None
        self._timer_at = float("inf")
        engine = self.crawler.engine
        if engine is None or not self._open or engine_closing(engine):
            # Closing: the scheduler may already have saved its queue; what waits here stays
            # here, to be counted or kept in JOBDIR when the spider closes.
            return
        for _locale, _domain, request in self.lot.due(time.monotonic()):
            self.router.unparked(request)
            self.stats.inc("requests", "unparked")
            engine.crawl(request)
        at = self.lot.next_wake()
        if at is not None:
            self.arm(at)

    def _spider_idle(self) -> None:
        if len(self.lot):
            raise DontCloseSpider

    def _spider_closed(self, spider: Spider, reason: str) -> None:
        self._open = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        dropped = self.lot.drain()
        jobdir = self.crawler.settings.get("JOBDIR")
        if jobdir:
            self._jobdir(jobdir).save(spider, [r for _, _, r in dropped])
            dropped = []
        for locale, _domain, request in dropped:
            self.router.count_drop(request, "closing", locale)
        if dropped:
            logger.warning(
                "%(n)d requests were still waiting for an exit when the crawl closed "
                "(%(reason)s); counted in proxystack/requests/dropped/closing",
                {"n": len(dropped), "reason": reason},
                extra={"crawler": self.crawler},
            )
        self.log_summary()

    def _jobdir(self, path: str) -> Jobdir:
        return Jobdir(
            Path(path),
            pool=self.pool,
            pacer=self.throttle.pacer,
            router=self.router,
            stats=self.stats,
            warn_once=self.warn_once,
            canary=self.canary,
        )

    def _crawl_all(self, requests: list[Request]) -> None:
        engine = self.crawler.engine
        if engine is None or not self._open:
            return
        for request in requests:
            engine.crawl(request)

    # -- summary ----------------------------------------------------------------------------------

    def log_summary(self) -> None:
        """One INFO line per locale at close: what the exits did and where requests went."""
        lines = []
        for name in (*self.config.locales, *((None,) if self.config.unlocalized else ())):
            counts = self.pool.counts(name)
            label = name or "(none)"
            sent = self.stats.get("requests", "locale", name or "none", default=0)
            delivered = self.stats.get("responses", "locale", name or "none", default=0)
            drops = self.router.dropped.get(name, {})
            waiting = self.stats.get("requests", "parked", name or "none", default=0)
            if not (sent or drops or waiting):
                continue
            dropped = ", ".join(f"{k}: {v}" for k, v in sorted(drops.items())) or "none"
            lines.append(
                f"  {label}: {counts.usable}/{counts.total} exits usable, {counts.ejected} "
                f"ejected, {self.pool.banned_exits(name)} banned by a site; {sent} requests "
                f"sent, {delivered} answers, {waiting} waits for an exit; dropped: {dropped}"
            )
        if lines:
            logger.info(
                "Proxy exits by locale at close:\n%(lines)s",
                {"lines": "\n".join(lines)},
                extra={"crawler": self.crawler},
            )


def _redis_state(
    crawler: Crawler, settings: ProxyStackSettings, pool: ExitPool, stats: StatsRecorder
) -> RedisState:
    """The Redis backend the settings ask for, after checking that it can work at all."""
    try:
        from scrapy_proxystack.state.redis_state import RedisState, StateUnavailable, ping
    except ImportError:
        raise ConfigError(
            [
                "setting PROXYSTACK_STATE_BACKEND: 'redis' needs the redis package; expected it "
                "installed (pip install 'scrapy-proxystack[redis]')"
            ]
        ) from None
    if not is_asyncio_available():
        raise ConfigError(
            [
                "setting PROXYSTACK_STATE_BACKEND: 'redis' needs Scrapy's asyncio reactor; "
                "expected TWISTED_REACTOR = "
                "'twisted.internet.asyncioreactor.AsyncioSelectorReactor' (Scrapy's default)"
            ]
        )
    url = settings.redis_url or "redis://127.0.0.1:6379/0"
    prefix = settings.redis_prefix or (
        f"proxystack:{crawler.settings.get('BOT_NAME')}:{crawler.spidercls.name}"
    )
    try:
        ping(url, settings.redis_timeout * 4)
    except StateUnavailable as exc:
        if settings.redis_required:
            raise ConfigError(
                [
                    f"setting PROXYSTACK_REDIS_URL: {exc}; expected a running Redis server "
                    "(or PROXYSTACK_REDIS_REQUIRED = False to start on this worker's own state "
                    "and connect later)"
                ]
            ) from None
        logger.warning(
            "%(error)s: starting on this worker's own state; it connects when Redis answers",
            {"error": exc},
        )
    logger.info(
        "Sharing exit state with the crawl's other workers through Redis at %(url)s "
        "(prefix %(prefix)s)",
        {"url": redact_url(url), "prefix": prefix},
    )
    return RedisState(
        url=url,
        prefix=prefix,
        pool=pool,
        stats=stats,
        timeout=settings.redis_timeout,
        mirror_interval=settings.redis_mirror_interval,
        session_ttl=settings.session_max_idle,
    )


def _project_accept_language(crawler: Crawler) -> bytes | None:
    """The project's own ``Accept-Language``, which the suite may replace per locale.

    Scrapy's own default ("en") is not a user choice; a project's is, but only project-wide:
    a header set on one request always wins.
    """
    s = crawler.settings
    if (s.getpriority("DEFAULT_REQUEST_HEADERS") or 0) > SETTINGS_PRIORITIES["addon"]:
        return None
    value = next(
        (
            v
            for k, v in s.getdict("DEFAULT_REQUEST_HEADERS").items()
            if k.lower() == "accept-language"
        ),
        None,
    )
    return value.encode() if isinstance(value, str) else value


def engine_closing(engine: Any) -> bool:
    """Whether the engine is stopping (Scrapy has no public flag for "the slot is closing")."""
    slot = getattr(engine, "_slot", None)
    return not engine.running or (slot is not None and getattr(slot, "closing", None) is not None)


def close_crawl(crawler: Crawler, reason: str) -> None:
    """Close the crawl from inside a component (raising CloseSpider there would be ignored)."""
    engine = crawler.engine
    if engine is None or getattr(engine, "_proxystack_closing", False):
        return
    engine._proxystack_closing = True  # type: ignore[attr-defined]
    logger.warning("Closing the crawl: %(reason)s", {"reason": reason}, extra={"crawler": crawler})
    deferred_from_coro(engine.close_spider_async(reason=reason))


def enabled_stack(crawler: Crawler) -> ProxyStack:
    """The stack for a component that only runs when the suite is on.

    Raises NotConfigured when ``PROXYSTACK_ENABLED`` is False. (A missing proxy list is not
    "disabled": :meth:`ProxyStack.build` refuses it with a ConfigError.)
    """
    if not suite_enabled(crawler.settings):
        raise disabled(crawler)
    return get_stack(crawler)


def get_stack(crawler: Crawler) -> ProxyStack:
    """The :class:`ProxyStack` of ``crawler``, built on first call."""
    with _LOCK:
        stack = _STACKS.get(crawler)
        if stack is None:
            with config_errors_logged():
                stack = ProxyStack.build(crawler)
            _STACKS[crawler] = stack
        return stack
