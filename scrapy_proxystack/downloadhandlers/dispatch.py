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
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

from scrapy.downloadermiddlewares.httpproxy import HttpProxyMiddleware
from scrapy.exceptions import IgnoreRequest
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached
from scrapy.utils.misc import build_from_crawler, load_object

from scrapy_proxystack.downloadermiddlewares.locale import LOCALE_META_KEY
from scrapy_proxystack.downloadermiddlewares.proxy import (
    EXIT_META_KEY,
    PENDING_META_KEY,
    TRIED_META_KEY,
    SessionRetired,
    forget_exit,
)
from scrapy_proxystack.exceptions import ExitNotReady
from scrapy_proxystack.pool import NoExit, SessionLost
from scrapy_proxystack.runtime import get_stack
from scrapy_proxystack.signals import throttle_wait

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response

__all__ = ["INNER_HANDLERS_SETTING", "HttpDispatchHandler", "HttpsDispatchHandler"]

logger = logging.getLogger(__name__)

#: Set by the add-on: the handler each scheme had before it was wrapped.
INNER_HANDLERS_SETTING = "_PROXYSTACK_INNER_DOWNLOAD_HANDLERS"
_WAIT_STEP = 0.5

try:  # Scrapy >= 2.18: works with and without the asyncio reactor
    from scrapy.utils.asyncio import sleep as _sleep
except ImportError:  # pragma: no cover - older Scrapy, asyncio reactor required
    _sleep = asyncio.sleep  # type: ignore[assignment]


class _DispatchHandler:
    scheme: ClassVar[str]
    lazy = False

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        inner_path = crawler.settings.getdict(INNER_HANDLERS_SETTING).get(self.scheme)
        if inner_path is None:
            inner_path = crawler.settings.getdict("DOWNLOAD_HANDLERS_BASE")[self.scheme]
        self.inner: Any = build_from_crawler(load_object(inner_path), crawler)
        self._inner_is_async = inspect.iscoroutinefunction(self.inner.download_request)
        self.enabled = crawler.settings.getbool("PROXYSTACK_ENABLED", True)
        self.stack = get_stack(crawler) if self.enabled else None
        self._sent = 0
        self._proxy_header = HttpProxyMiddleware(
            crawler.settings.get("HTTPPROXY_AUTH_ENCODING", "latin-1")
        )

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> _DispatchHandler:
        return cls(crawler)

    async def download_request(self, request: Request) -> Response:
        if self.stack is not None:
            await self._before_send(request)
        if self._inner_is_async:
            response: Response = await self.inner.download_request(request)
            return response
        legacy: Response = await maybe_deferred_to_future(
            self.inner.download_request(request, self.crawler.spider)
        )
        return legacy

    async def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if close is None:
            return
        result = close()
        if inspect.isawaitable(result):
            await result

    async def _before_send(self, request: Request) -> None:
        stack = self.stack
        assert stack is not None
        meta = request.meta
        domain = urlparse_cached(request).hostname or ""
        self._sent += 1
        if self._sent & 0xFFF == 0:
            # Keep per-site ban/pacing maps bounded: drop what has expired.
            stack.pool.expire()
        exit_id: str | None = meta.get(EXIT_META_KEY)
        if exit_id is None and not meta.get(PENDING_META_KEY):
            # Not routed by the suite (a user proxy, or the suite is off for it): budget only.
            await self._take_budget(request, domain)
            return
        deadline = time.monotonic() + stack.settings.max_wait
        while True:
            if exit_id is None or not stack.usable_now(
                exit_id, domain, panic=meta.get("_proxystack_flags", (False, False))[1]
            ):
                # Rebinding parks a scheduled request when nothing is ready; any other one
                # waits here at most until the deadline.
                exit_id = await self._rebind(request, exit_id, domain, deadline)
                if exit_id is None:
                    continue
            # The exit first, then the site's budget: a request that must wait for an exit
            # (outside the downloader) does not use up a slot of the site's budget.
            if not await self._take_budget(request, domain):
                break
            if stack.usable_now(
                exit_id, domain, panic=meta.get("_proxystack_flags", (False, False))[1]
            ):
                break  # still usable after waiting for the budget
        stack.count_sent(request)
        delay = stack.exit_delay_for(exit_id, domain)
        if delay > 0:
            stack.pool.pace(exit_id, domain, delay)
        stack.exit_sent(exit_id, domain)

    async def _take_budget(self, request: Request, domain: str) -> bool:
        """Book a slot of the site's rate budget and wait for it; True when it waited.

        The booked slot orders the waiters; the departure is then checked against the real
        departures before it (a timer that fired late must not bunch two requests).
        """
        stack = self.stack
        assert stack is not None
        limiter = stack.limiter_for(domain)
        wait = limiter.reserve(domain, time.monotonic())
        waited = wait > 0
        if waited:
            stack.stats.inc("throttle", "waits")
            stack.stats.max("throttle", "max_wait_ms", value=int(wait * 1000))
            self._signal_wait(request, domain, wait, "site_rate")
            await self._wait(request, wait)
        while (extra := limiter.confirm(domain, time.monotonic())) > 0:
            waited = True
            await self._wait(request, extra)
        return waited

    async def _rebind(
        self, request: Request, exit_id: str | None, domain: str, deadline: float
    ) -> str | None:
        """Bind ``request`` to a usable exit now; ``None`` after waiting for one to be ready.

        A request that came through the scheduler does not wait here: :class:`ExitNotReady`
        hands a copy back to the engine, which parks it outside the downloader.
        """
        stack = self.stack
        assert stack is not None
        meta = request.meta
        tried = meta.get(TRIED_META_KEY, ())
        if exit_id is not None:
            # The exit became unusable for this site while the request queued. It never carried
            # this request, so it is not remembered as tried.
            stack.release_held(request)
            forget_exit(request, exit_id, tried=False)
            stack.stats.inc("exits", "rebound")
        decision = meta[LOCALE_META_KEY][1]
        session = meta.get("proxystack_session")
        try:
            choice = stack.choose(decision.locale, domain, tried, session)
        except SessionLost as exc:
            stack.retire_session(request, exc.session, exc.reason)
            raise SessionRetired(exc.session, exc.reason) from None
        except NoExit as exc:
            waiting = stack.park(request, decision.locale, domain, exc)
            if waiting is not None:
                meta.pop(PENDING_META_KEY, None)
                raise ExitNotReady(waiting) from None
            now = time.monotonic()
            wait = exc.retry_at - now if exc.retry_at is not None else None
            if wait is None or now + wait > deadline:
                self._fail(request, None, exc.reason)
            stack.stats.inc("throttle", "exit_waits")
            self._signal_wait(request, domain, max(wait or 0.0, 0.001), "exit_pacing")
            await self._wait(request, max(wait or 0.0, 0.001))
            return None
        meta.pop(PENDING_META_KEY, None)
        stack.found_exit(request, decision.locale, domain)
        stack.bind(request, choice)
        # Derive the Proxy-Authorization header for the new exit, as Scrapy's middleware does.
        self._proxy_header.process_request(request)
        return choice.entry.id

    async def _wait(self, request: Request, seconds: float) -> None:
        """Sleep, in short steps, and give up if the crawl starts closing meanwhile.

        A long wait (a robots ``Crawl-delay`` of a minute) must not hold the engine open: Scrapy
        waits for every request in progress before it closes.
        """
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return
            await _sleep(min(left, _WAIT_STEP))
            if self._closing():
                stack = self.stack
                assert stack is not None
                held = stack.hold(request)
                if held is not None:
                    # Back to the parking lot, so JOBDIR keeps it for the next run.
                    forget_exit(held, tried=False)
                    raise ExitNotReady(held)
                stack.release_held(request)
                raise IgnoreRequest("crawl closing while the request waited for its turn")

    def _closing(self) -> bool:
        engine = self.crawler.engine
        if engine is None or not engine.running:
            return True
        slot = getattr(engine, "_slot", None)
        return slot is not None and getattr(slot, "closing", None) is not None

    def _signal_wait(self, request: Request, domain: str, seconds: float, cause: str) -> None:
        cached = request.meta.get(LOCALE_META_KEY)
        self.crawler.signals.send_catch_log(
            throttle_wait,
            locale=cached[1].locale if cached else None,
            domain=domain,
            seconds=seconds,
            cause=cause,
        )

    def _fail(self, request: Request, exit_id: str | None, reason: str) -> NoReturn:
        stack = self.stack
        assert stack is not None
        stack.release_held(request)
        request.meta.pop(EXIT_META_KEY, None)
        request.meta.pop(PENDING_META_KEY, None)
        locale = request.meta[LOCALE_META_KEY][1].locale
        raise stack.fail_closed(request, locale, reason)


class HttpDispatchHandler(_DispatchHandler):
    """``http://`` requests: see the module docstring."""

    scheme = "http"


class HttpsDispatchHandler(_DispatchHandler):
    """``https://`` requests: see the module docstring."""

    scheme = "https"
