"""The per-crawler state shared by the suite's components.

Scrapy builds each middleware and extension separately, but they must share one view of the
world: one parsed config, one exit pool, one stats helper. :func:`get_stack` builds that object
on first use (during component construction, so before any request) and hands the same instance
to every component of the same crawler.
"""

from __future__ import annotations

import gc
import json
import logging
import pickle
import threading
import time
import weakref
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.exceptions import DontCloseSpider, IgnoreRequest, NotConfigured
from scrapy.settings import SETTINGS_PRIORITIES
from scrapy.utils.asyncio import call_later
from scrapy.utils.httpobj import urlparse_cached
from scrapy.utils.request import request_from_dict

from scrapy_proxystack.config import ConfigError, ProxyConfig, load_proxy_config
from scrapy_proxystack.exceptions import ExitUnavailable
from scrapy_proxystack.parking import ParkingLot
from scrapy_proxystack.pool import ExitPool, HealthParams, NoExit, SessionLost
from scrapy_proxystack.settings import ProxyStackSettings, check_setting_names
from scrapy_proxystack.signals import ExitOutcome, exit_outcome
from scrapy_proxystack.stats import StatsRecorder
from scrapy_proxystack.throttle import DomainRateLimiter, ExitPacer, RateRule

if TYPE_CHECKING:
    from collections.abc import Collection

    from scrapy import Request, Spider
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
#: Set on every request the scheduler saw: only those can wait in the parking lot (a request
#: downloaded directly, like robots.txt, never comes back through the scheduler).
SCHEDULED_META_KEY = "_proxystack_scheduled"
#: On a copy handed back to the engine: park it until this time (monotonic clock).
PARK_META_KEY = "_proxystack_park"
#: On a request the lot let go: report to the lot whether it found an exit.
RELEASED_META_KEY = "_proxystack_released"
#: Wall-clock time the request first had to wait for an exit: bounds its total wait.
WAITING_SINCE_META_KEY = "_proxystack_waiting_since"
_STATE_FILE = "proxystack.state.json"
_WAITING_FILE = "proxystack.waiting.pickle"
#: Reasons a request waits for an exit instead of failing.
PARKABLE_REASONS = frozenset({"all_banned", "all_ejected", "site_down"})
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
    lot: ParkingLot[Request] = field(default_factory=ParkingLot)
    _timer: Any = None
    _timer_at: float = float("inf")
    _open: bool = False
    #: locale -> drop reason -> requests, for the summary at close.
    dropped: dict[str | None, dict[str, int]] = field(default_factory=dict)

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
            site_backoff=settings.site_backoff,
            session_max_idle=settings.session_max_idle,
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
        crawler.signals.connect(self._spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(self._request_scheduled, signal=signals.request_scheduled)
        crawler.signals.connect(self._spider_idle, signal=signals.spider_idle)
        crawler.signals.connect(self._spider_closed, signal=signals.spider_closed)
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
        self.count_drop(request, "no_exit", locale)
        request.meta.pop("_proxystack_exit_locale", None)
        request.meta.pop("_proxystack_flags", None)
        self.emit(request, "no_exit", reason)
        key = ("no_exit", str(locale), reason)
        if key not in self._warned:  # the breakdown is O(chain): only for the first one
            domain = urlparse_cached(request).hostname or ""
            why = self.describe_blocked(locale, domain) if reason in PARKABLE_REASONS else reason
            self.warn_once(
                key,
                "No usable exit for locale %(locale)r (%(reason)s; %(why)s): requests for it "
                "fail closed and are counted in proxystack/requests/no_exit/%(reason)s "
                "(first: %(url)s)",
                {"locale": locale, "reason": reason, "why": why, "url": request.url},
            )
        if self.settings.close_on_empty_locale:
            close_crawl(self.crawler, "proxystack_no_exit")
        return ExitUnavailable(locale, reason)

    def count_drop(self, request: Request, reason: str, locale: str | None = None) -> None:
        """Count a request the suite drops, in stats and in the per-locale summary at close."""
        self.stats.inc("requests", "dropped", reason)
        if locale is None:
            cached = request.meta.get("_proxystack_locale")
            locale = cached[1].locale if cached else None
        per_locale = self.dropped.setdefault(locale, {})
        per_locale[reason] = per_locale.get(reason, 0) + 1

    def log_summary(self) -> None:
        """One INFO line per locale at close: what the exits did and where requests went."""
        lines = []
        for name in (*self.config.locales, *((None,) if self.config.unlocalized else ())):
            counts = self.pool.counts(name)
            label = name or "(none)"
            sent = self.stats.get("requests", "locale", name or "none", default=0)
            delivered = self.stats.get("responses", "locale", name or "none", default=0)
            drops = self.dropped.get(name, {})
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

    # -- waiting for an exit ----------------------------------------------------------------------

    def park(
        self, request: Request, locale: str | None, domain: str, exc: NoExit
    ) -> Request | None:
        """A copy of ``request`` to hand back to the engine, which then waits in the parking
        lot until an exit of its chain is ready for ``domain``; None when it cannot wait: no
        exit will ever be ready, it was not scheduled, or its total wait would pass
        ``PROXYSTACK_BAN_MAX_WAIT``.
        """
        meta = request.meta
        if meta.pop(PARK_META_KEY, None) is not None:
            # A copy handed back that came straight back without the scheduler (Scrapy's
            # engine.download_async loops on it): it is not a scheduled request.
            meta.pop(SCHEDULED_META_KEY, None)
            return None
        if (
            exc.retry_at is None
            or exc.reason not in PARKABLE_REASONS
            or not meta.get(SCHEDULED_META_KEY)
            or not self._open
            or self.settings.close_on_empty_locale  # the strict choice: stop, do not wait
        ):
            return None
        now = time.time()
        since = float(meta.get(WAITING_SINCE_META_KEY, now))
        if (now - since) + (exc.retry_at - time.monotonic()) > self.settings.ban_max_wait:
            return None
        copy = request.replace(dont_filter=True)
        copy.meta[WAITING_SINCE_META_KEY] = since
        copy.meta[PARK_META_KEY] = exc.retry_at
        self.stats.inc("requests", "parked", locale or "none")
        if exc.reason == "site_down":
            self.stats.inc("requests", "parked_site_down")
        self.warn_once(
            ("parked", str(locale), domain),
            "No exit of locale %(locale)r is ready for %(domain)s (%(why)s): its requests wait "
            "for the first one instead of being dropped (up to PROXYSTACK_BAN_MAX_WAIT = "
            "%(bound).0fs in all)",
            {
                "locale": locale,
                "domain": domain,
                "why": self.describe_blocked(locale, domain),
                "bound": self.settings.ban_max_wait,
            },
            level=logging.INFO,
        )
        return copy

    def describe_blocked(self, locale: str | None, domain: str) -> str:
        """``3 banned (status_403: 2, lang_mismatch: 1), 1 paced`` for messages."""
        reasons = self.pool.blocked_reasons(locale, domain)
        reasons.pop("ready", None)
        states = ("paced", "transport", "ejected", "site_down")
        banned = {k: v for k, v in reasons.items() if k not in states}
        parts = []
        if banned:
            ranked = sorted(banned.items(), key=lambda kv: -kv[1])
            detail = ", ".join(f"{k}: {v}" for k, v in ranked)
            parts.append(f"{sum(banned.values())} banned ({detail})")
        labels = {
            "paced": "paced",
            "transport": "resting after failures",
            "ejected": "ejected",
            "site_down": "site down",
        }
        parts.extend(f"{reasons[k]} {labels[k]}" for k in states if reasons.get(k))
        return ", ".join(parts) or "no exit"

    def found_exit(self, request: Request, locale: str | None, domain: str) -> None:
        """A request the lot let go found an exit: let the next one of its group go."""
        if request.meta.pop(RELEASED_META_KEY, None):
            now = time.monotonic()
            self.lot.bound(locale, domain, now)
            self._arm(now)

    def site_recovered(self, domain: str) -> None:
        """A site taken to be down (or failing) answered: its waiting requests may go."""
        if self.lot.wake_domain(domain, time.monotonic()):
            self._arm(time.monotonic())
        logger.info(
            "Site %(domain)s answers again", {"domain": domain}, extra={"crawler": self.crawler}
        )

    def hold(self, request: Request) -> Request | None:
        """A copy of a scheduled request that the crawl's closing interrupted while it waited
        in the downloader: it goes to the parking lot, and with ``JOBDIR`` to the next run
        (it is already in the dupefilter, so the scheduler would never give it back)."""
        if not request.meta.get(SCHEDULED_META_KEY) or not self._open:
            return None
        self.release_held(request)
        copy = request.replace(dont_filter=True)
        copy.meta[PARK_META_KEY] = time.monotonic()
        return copy

    def _spider_opened(self, spider: Spider) -> None:
        self._open = True
        jobdir = self.crawler.settings.get("JOBDIR")
        if jobdir:
            self._resume(Path(jobdir), spider)

    def _request_scheduled(self, request: Request) -> None:
        """Park a copy handed back by :meth:`park`; mark every other request as scheduled."""
        meta = request.meta
        ready_at = meta.pop(PARK_META_KEY, None)
        if ready_at is None:
            meta[SCHEDULED_META_KEY] = True
            return
        cached = meta.get("_proxystack_locale")
        locale = cached[1].locale if cached else None
        domain = urlparse_cached(request).hostname or ""
        front = bool(meta.pop(RELEASED_META_KEY, None))
        self.lot.park(locale, domain, request, float(ready_at), front=front)
        self._arm(float(ready_at))
        # Scrapy drops a request whose request_scheduled handler raises IgnoreRequest, quietly.
        raise IgnoreRequest("waiting for an exit")

    def _pause(self, jobdir: Path, spider: Spider, waiting: list[Request]) -> None:
        """Keep what a paused crawl must not forget in ``JOBDIR``: the requests waiting for an
        exit, and the exits' state (ejections, bans with their remaining cool-downs, pacing and
        learned delays, sticky sessions), deadlines on the wall clock."""
        jobdir.mkdir(parents=True, exist_ok=True)
        now = time.time()
        state = {
            "saved_at": now,
            "pool": self.pool.export_state(now),
            "pacing": self.pacer.export_state(),
            "retired_sessions": self.retired_sessions,
        }
        _write_atomically(jobdir / _STATE_FILE, json.dumps(state).encode())
        kept: list[bytes] = []
        for request in waiting:
            try:
                data = request.to_dict(spider=spider)
                data["meta"].pop(WAITING_SINCE_META_KEY, None)  # the pause does not count
                kept.append(pickle.dumps(data, protocol=4))
            except Exception as exc:  # whatever the request holds: counted, logged below
                # Scrapy's disk queue keeps such a request in memory; here it cannot be kept.
                self.count_drop(request, "closing")
                self.warn_once(
                    ("unpicklable",),
                    "A request waiting for an exit cannot be kept in JOBDIR (%(error)s): it is "
                    "counted in proxystack/requests/dropped/closing",
                    {"error": type(exc).__name__},
                )
        _write_atomically(jobdir / _WAITING_FILE, pickle.dumps(kept, protocol=4))
        if kept:
            self.stats.inc("requests", "persisted", count=len(kept))
            logger.info(
                "%(n)d requests waiting for an exit are kept in JOBDIR for the next run",
                {"n": len(kept)},
                extra={"crawler": self.crawler},
            )

    def _resume(self, jobdir: Path, spider: Spider) -> None:
        state_path, waiting_path = jobdir / _STATE_FILE, jobdir / _WAITING_FILE
        requests: list[Request] = []
        try:
            if state_path.exists():
                state = json.loads(state_path.read_text(encoding="utf-8"))
                restored = self.pool.import_state(state.get("pool", {}), time.time())
                restored += self.pacer.import_state(state.get("pacing", []))
                self.retired_sessions.update(state.get("retired_sessions", {}))
                self.stats.set("exits", "state_restored", value=restored)
            if waiting_path.exists():
                with waiting_path.open("rb") as f:
                    kept = pickle.load(f)  # noqa: S301 - our own file in the user's JOBDIR
                requests = [
                    request_from_dict(pickle.loads(d), spider=spider)  # noqa: S301 - ours too
                    for d in kept
                ]
        except Exception as exc:  # a damaged file must not stop the crawl: logged
            logger.error(
                "Cannot restore the proxy state kept in JOBDIR (%(error)s); starting without it",
                {"error": type(exc).__name__},
                extra={"crawler": self.crawler},
            )
        finally:
            state_path.unlink(missing_ok=True)
            waiting_path.unlink(missing_ok=True)
        if requests:
            self.stats.inc("requests", "resumed", count=len(requests))
            call_later(0.0, self._crawl_all, requests)

    def _crawl_all(self, requests: list[Request]) -> None:
        engine = self.crawler.engine
        if engine is None or not self._open:
            return
        for request in requests:
            engine.crawl(request)

    def _arm(self, at: float) -> None:
        if at >= self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = at
        self._timer = call_later(max(0.0, at - time.monotonic()), self._wake)

    def _wake(self) -> None:
        self._timer = None
        self._timer_at = float("inf")
        engine = self.crawler.engine
        if engine is None or not self._open or _engine_closing(engine):
            # Closing: the scheduler may already have saved its queue; what waits here stays
            # here, to be counted or kept in JOBDIR when the spider closes.
            return
        for _locale, _domain, request in self.lot.due(time.monotonic()):
            request.meta[RELEASED_META_KEY] = True
            self.stats.inc("requests", "unparked")
            engine.crawl(request)
        at = self.lot.next_wake()
        if at is not None:
            self._arm(at)

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
            self._pause(Path(jobdir), spider, [r for _, _, r in dropped])
            dropped = []
        for locale, _domain, request in dropped:
            self.count_drop(request, "closing", locale)
        if dropped:
            logger.warning(
                "%(n)d requests were still waiting for an exit when the crawl closed "
                "(%(reason)s); counted in proxystack/requests/dropped/closing",
                {"n": len(dropped), "reason": reason},
                extra={"crawler": self.crawler},
            )
        self.log_summary()

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

    def exit_sent(self, exit_id: str, domain: str) -> None:
        self.pacer.on_send(exit_id, domain, time.monotonic())

    def exit_throttled(self, exit_id: str, domain: str) -> float:
        """A 429 or rate-limit page through ``exit_id``: pace the pair at half its rate."""
        base = self._rules_applied.get(domain, self.settings.exit_delay)
        delay = self.pacer.on_throttle(exit_id, domain, base)
        self.pool.pace(exit_id, domain, delay)
        return delay

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

    def __hash__(self) -> int:  # lru_cache on a method needs a hashable self
        return id(self)

    def __eq__(self, other: object) -> bool:
        return self is other


def _write_atomically(path: Path, data: bytes) -> None:
    """Write ``path`` whole or not at all: a crash mid-write leaves the old file, not half."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def _engine_closing(engine: Any) -> bool:
    slot = getattr(engine, "_slot", None)
    return not engine.running or (slot is not None and getattr(slot, "closing", None) is not None)


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
