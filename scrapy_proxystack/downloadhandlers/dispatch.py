"""Bind each request to its exit at the moment it is sent, under the site's budget.

Downloader middlewares run when a request *enters* the downloader; it may then wait in its
site's slot queue (``DOWNLOAD_DELAY``, AutoThrottle, per-domain concurrency). An exit chosen then
may have been banned by the site, ejected, or used a moment ago by the time the request leaves.
These handlers wrap Scrapy's own HTTP(S) handlers (or whatever handler was configured before the
add-on) and, right before sending:

1. take a slot from the site's rate budget (GCRA over all exits, robots ``Crawl-delay``),
   once the exit is known;
2. check the exit chosen earlier is still usable for this site, and pick another one of the same
   locale chain if not; when none is ready, a request from the scheduler goes back to wait in
   the parking lot (outside the downloader), any other waits here a bounded time;
3. mark the exit as busy for this site for the per-exit delay.

The request stays in its site's download slot the whole time, so a wait is counted against that
site (and seen by Scrapy's downloader-aware scheduler), not against other sites.

Then the request goes to the handler its exit needs, chosen *after* the checks (re-binding may
have moved it between an HTTP and a SOCKS exit): Scrapy's own for HTTP(S) exits and direct
requests, :class:`~scrapy_proxystack.downloadhandlers.socks.SocksDownloadHandler` for SOCKS5
exits (one per crawl, shared by both schemes, built at start when the configuration has SOCKS
exits, on first use otherwise).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
import weakref
from typing import TYPE_CHECKING, Any, ClassVar

from scrapy.downloadermiddlewares.httpproxy import HttpProxyMiddleware
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.utils.asyncio import sleep
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached
from scrapy.utils.misc import build_from_crawler, load_object

from scrapy_proxystack.downloadhandlers.socks import SocksDownloadHandler, is_socks_proxy
from scrapy_proxystack.exceptions import ExitNotReady
from scrapy_proxystack.runtime import engine_closing, get_stack
from scrapy_proxystack.settings import suite_enabled
from scrapy_proxystack.signals import throttle_wait
from scrapy_proxystack.state import StateLost
from scrapy_proxystack.throttle import DomainRateLimiter, RateRule

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from scrapy import Request, Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Response

    from scrapy_proxystack.pool import ExitPool
    from scrapy_proxystack.routing import Router
    from scrapy_proxystack.state import SharedState
    from scrapy_proxystack.stats import StatsRecorder
    from scrapy_proxystack.throttle import SiteThrottle

__all__ = [
    "INNER_HANDLERS_SETTING",
    "HttpDispatchHandler",
    "HttpsDispatchHandler",
    "SendGate",
]

logger = logging.getLogger(__name__)

#: Set by the add-on: the handler each scheme had before it was wrapped.
INNER_HANDLERS_SETTING = "_PROXYSTACK_INNER_DOWNLOAD_HANDLERS"
_WAIT_STEP = 0.5
#: One SOCKS handler per crawler, shared by the http and https dispatch handlers.
_SOCKS_HANDLERS: weakref.WeakKeyDictionary[Crawler, SocksDownloadHandler] = (
    weakref.WeakKeyDictionary()
)


class SendGate:
    """The checks right before a request leaves: its exit, then its site's budget.

    Plain values in, so it is tested without a crawler: ``closing`` says the crawl is stopping,
    ``on_wait`` reports a wait (locale, site, seconds, cause), ``clock``/``sleep`` are the
    monotonic clock and an awaitable sleep.
    """

    def __init__(
        self,
        *,
        router: Router,
        pool: ExitPool,
        throttle: SiteThrottle,
        stats: StatsRecorder,
        max_wait: float,
        auth_encoding: str = "latin-1",
        closing: Callable[[], bool] = lambda: False,
        on_wait: Callable[[str | None, str, float, str], None] = lambda *_: None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = sleep,
        shared: SharedState | None = None,
    ) -> None:
        self.router = router
        self.shared = shared
        #: Budgets while the shared state is lost: each site's divided by the workers seen.
        self._alone = DomainRateLimiter()
        #: site -> end of its schedule booked in the shared state, as last seen (local clock).
        self._shared_until: dict[str, float] = {}
        #: site -> when this worker's last slot booked there leaves (local clock).
        self._departs: dict[str, float] = {}
        #: site -> its bookings in the shared state, one at a time (see _shared_budget).
        self._turns: dict[str, _Turn] = {}
        self.pool = pool
        self.throttle = throttle
        self.stats = stats
        self.max_wait = max_wait
        self._closing = closing
        self._on_wait = on_wait
        self._clock = clock
        self._sleep = sleep
        self._sent = 0
        self._proxy_header = HttpProxyMiddleware(auth_encoding)

    async def before_send(self, request: Request) -> None:
        router, pool, throttle = self.router, self.pool, self.throttle
        domain = urlparse_cached(request).hostname or ""
        self._sent += 1
        if self._sent & 0xFFF == 0:
            # Keep per-site ban/pacing maps bounded: drop what has expired.
            pool.expire()
            now = self._clock()
            self._shared_until = {d: t for d, t in self._shared_until.items() if t > now}
            self._departs = {d: t for d, t in self._departs.items() if t > now}
            self._alone.expire(now)
        exit_id = router.exit_of(request)
        if exit_id is None and not router.is_pending(request):
            # Not routed by the suite (a user proxy, or the suite is off for it): budget only.
            await self._take_budget(request, domain, None)
            return
        deadline = self._clock() + self.max_wait
        while True:
            if exit_id is None or not router.usable_now(request, exit_id, domain):
                # Rebinding parks a scheduled request when nothing is ready; any other one
                # waits here at most until the deadline.
                bound = router.rebind(request, domain, deadline)
                if not isinstance(bound, str):
                    self.stats.inc("throttle", "exit_waits")
                    self._on_wait(router.locale_of(request), domain, bound, "exit_pacing")
                    await self._wait(request, bound)
                    exit_id = None
                    continue
                exit_id = bound
                # Derive the Proxy-Authorization header for the new exit, as Scrapy's
                # HttpProxyMiddleware does.
                self._proxy_header.process_request(request)
            # The exit first, then the site's budget: a request that must wait for an exit
            # (outside the downloader) does not use up a slot of the site's budget.
            if not await self._take_budget(request, domain, exit_id):
                break
            if router.usable_now(request, exit_id, domain):
                break  # still usable after waiting for the budget
        now = self._clock()
        router.count_sent(request, now)
        delay = throttle.exit_delay_for(exit_id, domain)
        if delay > 0:
            pool.pace(exit_id, domain, delay)
        throttle.exit_sent(exit_id, domain, now)

    async def _take_budget(self, request: Request, domain: str, exit_id: str | None) -> bool:
        """Book a slot of the site's rate budget and wait for it; True when it waited (or the
        exit turned out busy in another worker: then it is paced here and rebound).

        The booked slot orders the waiters; the departure is then checked against the real
        departures before it (a timer that fired late must not bunch two requests).
        """
        limiter = self.throttle.limiter_for(domain)
        shared = self.shared
        if shared is not None:
            rule = limiter.rule_for(domain)
            delay = self.throttle.exit_delay_for(exit_id, domain) if exit_id is not None else 0.0
            if rule is None and delay <= 0:
                return False  # nothing to book, here or there
            if shared.healthy:
                waited = await self._shared_budget(request, domain, exit_id, rule, delay)
                if waited is not None:
                    return await self._confirm(request, domain, limiter) or waited
            self.stats.inc("redis", "local_budget")
            limiter = self._divided(domain, rule, shared)
        waited = await self._booked(request, domain, limiter.reserve(domain, self._clock()))
        return await self._confirm(request, domain, limiter) or waited

    async def _shared_budget(
        self,
        request: Request,
        domain: str,
        exit_id: str | None,
        rule: RateRule | None,
        delay: float,
    ) -> bool | None:
        """The site's budget over all workers: one booking (one round trip), waited for here.
        None when the shared state is lost.

        This worker books a site's slots one at a time, each only once its previous one
        leaves within the state's ``lookahead``: the shared schedule then never holds more
        than one slot per worker leaving later than that, which bounds what a worker that
        loses the shared state must leave to the others (see :meth:`_divided`).
        """
        shared = self.shared
        assert shared is not None
        async with self._turn(domain):
            early = self._departs.get(domain, 0.0) - shared.lookahead - self._clock()
            if early > 0:
                await self._wait(request, early)
                if not shared.healthy:
                    return None
            share = shared.share
            now = self._clock()
            try:
                busy, wait, ahead = await shared.reserve(
                    domain,
                    exit_id,
                    rule.interval * share if rule is not None else 0.0,
                    rule.tolerance if rule is not None and share == 1 else 0.0,
                    delay,
                    # Slots booked here alone while the shared state was lost, and the
                    # schedule last seen there (a Redis restarted empty forgot it), still hold.
                    max(self._alone.booked_until(domain), self._shared_until.get(domain, 0.0))
                    - now,
                )
            except StateLost:
                return None
            if busy > 0 and exit_id is not None:
                self.pool.pace(exit_id, domain, busy)
                self.stats.inc("redis", "pair_busy")
                return True
            if ahead > 0:
                self._shared_until[domain] = now + ahead
            self._departs[domain] = now + wait
        return await self._booked(request, domain, wait, waited=max(early, 0.0))

    @contextlib.asynccontextmanager
    async def _turn(self, domain: str) -> AsyncIterator[None]:
        """One booking of ``domain`` at a time in this worker, in the order they came."""
        turn = self._turns.get(domain)
        if turn is None:
            turn = self._turns[domain] = _Turn()
        turn.users += 1
        try:
            async with turn.lock:
                yield
        finally:
            turn.users -= 1
            if turn.users == 0:
                del self._turns[domain]

    async def _confirm(self, request: Request, domain: str, limiter: DomainRateLimiter) -> bool:
        """Wait until this departure keeps its distance from the previous real one."""
        waited = False
        while (extra := limiter.confirm(domain, self._clock())) > 0:
            waited = True
            await self._wait(request, extra)
        return waited

    async def _booked(
        self, request: Request, domain: str, wait: float, waited: float = 0.0
    ) -> bool:
        """Wait ``wait`` seconds for a booked slot; ``waited``: seconds already waited for the
        turn to book it (reported with it as one wait)."""
        total = wait + waited
        if total <= 0:
            return False
        self.stats.inc("throttle", "waits")
        self.stats.max("throttle", "max_wait_ms", value=int(total * 1000))
        self._on_wait(self.router.locale_of(request), domain, total, "site_rate")
        if wait > 0:
            await self._wait(request, wait)
        return True

    def _divided(
        self, domain: str, rule: RateRule | None, shared: SharedState
    ) -> DomainRateLimiter:
        """The site's budget while the workers cannot agree on it: this worker's share, after
        every slot the shared schedule may still hold."""
        alone = self._alone
        if rule is None:
            alone.set_rule(domain, RateRule(rate=None))
            return alone
        workers = shared.workers
        alone.set_rule(domain, RateRule(rate=None, burst=1, min_interval=rule.interval * workers))
        # When the shared state went away, at most one slot per worker left later than the
        # lookahead (each books its next slot only once its previous one leaves within it),
        # so the site's schedule ends at most (workers + 1) slots after lookahead + tolerance
        # (slots of `share` intervals after a reconnection): this worker's own schedule
        # starts after that, a slot per rank later than the others' so that they interleave.
        interval = rule.interval * shared.share
        horizon = shared.lookahead + rule.tolerance + (workers + 1) * interval
        start = shared.lost_at + horizon + shared.rank * rule.interval
        alone.book_until(domain, max(self._shared_until.get(domain, 0.0), start))
        return alone

    async def _wait(self, request: Request, seconds: float) -> None:
        """Sleep, in short steps, and give up if the crawl starts closing meanwhile.

        A long wait (a robots ``Crawl-delay`` of a minute) must not hold the engine open: Scrapy
        waits for every request in progress before it closes.
        """
        end = self._clock() + seconds
        while True:
            left = end - self._clock()
            if left <= 0:
                return
            await self._sleep(min(left, _WAIT_STEP))
            if self._closing():
                held = self.router.hold(request)
                if held is not None:
                    raise ExitNotReady(held)  # back to the parking lot, so JOBDIR keeps it
                self.router.release_held(request)
                raise IgnoreRequest("crawl closing while the request waited for its turn")


class _Turn:
    """A site's booking turn: the lock and how many requests hold or wait for it."""

    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


class _DispatchHandler:
    """Scrapy's handler for the scheme (``inner``) behind a :class:`SendGate`; without a gate
    (the suite disabled) it only forwards."""

    scheme: ClassVar[str]
    lazy = False

    def __init__(
        self,
        inner: Any,
        gate: SendGate | None = None,
        spider: Callable[[], Spider | None] = lambda: None,
        socks: Callable[[], SocksDownloadHandler] | None = None,
    ) -> None:
        self.inner = inner
        self.gate = gate
        self._inner_is_async = inspect.iscoroutinefunction(inner.download_request)
        self._spider = spider
        self._socks_factory = socks
        self._socks: SocksDownloadHandler | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> _DispatchHandler:
        inner_path = crawler.settings.getdict(INNER_HANDLERS_SETTING).get(cls.scheme)
        if inner_path is None:
            inner_path = crawler.settings.getdict("DOWNLOAD_HANDLERS_BASE")[cls.scheme]
        inner = build_from_crawler(load_object(inner_path), crawler)
        if not suite_enabled(crawler.settings):
            return cls(inner, spider=lambda: crawler.spider, socks=lambda: _socks_handler(crawler))
        stack = get_stack(crawler)
        router = stack.router

        def closing() -> bool:
            return crawler.engine is None or engine_closing(crawler.engine)

        def on_wait(locale: str | None, domain: str, seconds: float, cause: str) -> None:
            crawler.signals.send_catch_log(
                throttle_wait, locale=locale, domain=domain, seconds=seconds, cause=cause
            )

        gate = SendGate(
            router=stack.router,
            pool=stack.pool,
            throttle=stack.throttle,
            stats=stack.stats,
            max_wait=stack.settings.max_wait,
            auth_encoding=crawler.settings.get("HTTPPROXY_AUTH_ENCODING", "latin-1"),
            closing=closing,
            on_wait=on_wait,
            shared=stack.shared,
        )
        handler = cls(
            inner,
            gate,
            spider=lambda: crawler.spider,
            socks=lambda: _socks_handler(crawler, router),
        )
        if router.has_socks_exits():
            # Built now, not on the first request: building it then would delay that request
            # after it took its slot of the site's rate, bunching arrivals at the site.
            try:
                handler._socks = _socks_handler(crawler, router)
            except NotConfigured as exc:
                # HTTP(S) exits keep working; requests bound to SOCKS exits fail with this.
                logger.error("SOCKS exits cannot be used in this crawl: %(why)s", {"why": str(exc)})
        return handler

    async def download_request(self, request: Request) -> Response:
        if self.gate is not None:
            await self.gate.before_send(request)
        # After the gate: re-binding may have changed the exit, and with it the handler.
        if self._socks_factory is not None and is_socks_proxy(request.meta.get("proxy")):
            if self._socks is None:
                self._socks = self._socks_factory()
            return await self._socks.download_request(request)
        if self._inner_is_async:
            response: Response = await self.inner.download_request(request)
            return response
        legacy: Response = await maybe_deferred_to_future(
            self.inner.download_request(request, self._spider())
        )
        return legacy

    async def close(self) -> None:
        if self._socks is not None:
            await self._socks.close()  # shared: closing twice is a no-op
        close = getattr(self.inner, "close", None)
        if close is None:
            return
        result = close()
        if inspect.isawaitable(result):
            await result


def _socks_handler(crawler: Crawler, router: Router | None = None) -> SocksDownloadHandler:
    """The crawl's SOCKS handler, built on first use (only crawls with SOCKS exits pay for it)."""
    handler = _SOCKS_HANDLERS.get(crawler)
    if handler is None:
        if router is None:
            handler = SocksDownloadHandler(crawler)
        else:
            handler = SocksDownloadHandler(crawler, exit_of=router.exit_entry)
        _SOCKS_HANDLERS[crawler] = handler
    return handler


class HttpDispatchHandler(_DispatchHandler):
    """``http://`` requests: see the module docstring."""

    scheme = "http"


class HttpsDispatchHandler(_DispatchHandler):
    """``https://`` requests: see the module docstring."""

    scheme = "https"
