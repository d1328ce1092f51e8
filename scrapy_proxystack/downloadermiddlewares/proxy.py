"""Choose an exit for each request, and learn from how it went."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from scrapy.downloadermiddlewares.retry import get_retry_request
from scrapy.utils.httpobj import urlparse_cached
from scrapy.utils.misc import load_object

from scrapy_proxystack.exceptions import (
    ExitNotReady,
    ExitUnavailable,
    SessionRetired,
    SocksError,
)
from scrapy_proxystack.runtime import enabled_stack

if TYPE_CHECKING:
    from collections.abc import Callable

    from scrapy import Request, Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Response

    from scrapy_proxystack.pool import ExitPool
    from scrapy_proxystack.routing import Router
    from scrapy_proxystack.stats import StatsRecorder
    from scrapy_proxystack.throttle import SiteThrottle

__all__ = ["ExitUnavailable", "ProxyMiddleware", "SessionRetired"]

logger = logging.getLogger(__name__)

_TIMEOUT_NAMES = ("TimeoutError", "DownloadTimeoutError", "TCPTimedOutError")
#: Proxy answers that say the *proxy* failed, not the site.
PROXY_FAILURE_STATUSES = frozenset({407, 502, 504})
#: Of those, the ones only the proxy itself can cause; the others (bad gateway, gateway
#: timeout) are just as often a site that is down.
_PROXY_ONLY_STATUSES = frozenset({407})
#: Failures that can only be the proxy's: nothing answered at its address, or it refused us.
_PROXY_ONLY_ERRORS = frozenset(
    {
        "DownloadConnectionRefusedError",  # Scrapy's name for Twisted's ConnectionRefusedError
        "ConnectionRefusedError",
        "TCPTimedOutError",
        "NoRouteError",
    }
)


class ProxyMiddleware:
    """Sends each request through an exit of its locale chain, and records the outcome.

    The request keeps its download slot (the target host): politeness settings stay per site
    however many exits there are. An explicit ``meta["proxy"]`` set by the user wins and is
    counted. When no exit can serve the request it fails with :class:`ExitUnavailable`: it never
    leaves directly or through another country. With the add-on's download handlers, the exit is
    checked again (and changed if needed) when the request is actually sent.
    """

    def __init__(
        self,
        *,
        router: Router,
        pool: ExitPool,
        throttle: SiteThrottle,
        stats: StatsRecorder,
        warn_once: Callable[..., bool],
        transport_errors: tuple[type[BaseException], ...],
        exit_retry_times: int,
        spider: Callable[[], Spider | None] = lambda: None,
    ) -> None:
        self.router = router
        self.pool = pool
        self.throttle = throttle
        self.stats = stats
        self.warn_once = warn_once
        self.transport_errors = transport_errors
        self.exit_retry_times = exit_retry_times
        self._spider = spider

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ProxyMiddleware:
        stack = enabled_stack(crawler)
        return cls(
            router=stack.router,
            pool=stack.pool,
            throttle=stack.throttle,
            stats=stack.stats,
            warn_once=stack.warn_once,
            transport_errors=tuple(
                load_object(x) if isinstance(x, str) else x
                for x in crawler.settings.getlist("RETRY_EXCEPTIONS")
            ),
            exit_retry_times=stack.settings.exit_retry_times,
            spider=lambda: crawler.spider,
        )

    # -- way out --------------------------------------------------------------------------------

    def process_request(self, request: Request) -> Request | None:
        return self.router.route(request)

    # -- way back -------------------------------------------------------------------------------

    def process_response(self, request: Request, response: Response) -> Request | Response:
        router = self.router
        exit_id = router.exit_of(request)
        if exit_id is None:
            return response
        if router.answered_through(request) is None or "cached" in response.flags:
            # Not an answer through the exit (HTTP cache, a middleware's own response): it
            # says nothing about the exit's health.
            router.release_held(request)
            return response
        router.take_held(request)
        domain = urlparse_cached(request).hostname or ""
        if response.status in PROXY_FAILURE_STATUSES:
            reason = f"status_{response.status}"
            if response.status == 407:
                self.warn_once(
                    ("407", exit_id),
                    "Exit %(exit)s answers 407 Proxy Authentication Required: check its user "
                    "name and password in the proxy configuration",
                    {"exit": exit_id},
                )
            retry = self._transport_failure(
                request, exit_id, domain, reason, proxy_only=response.status in _PROXY_ONLY_STATUSES
            )
            return retry if retry is not None else response
        router.answered(request)
        latency = request.meta.get("download_latency")
        if self.pool.record_success(
            exit_id, domain, float(latency) if latency is not None else 0.0
        ):
            router.site_recovered(domain)
        self.throttle.exit_succeeded(exit_id, domain)
        self.stats.inc("responses", "locale", router.exit_locale(request) or "none")
        router.emit(request, "success", "ok", status=response.status, size=len(response.body))
        return response

    def process_exception(self, request: Request, exception: Exception) -> Request | None:
        if isinstance(exception, ExitNotReady):
            waiting: Request = exception.retry_request  # type: ignore[assignment]
            return waiting  # waits for an exit in the parking lot
        router = self.router
        exit_id = router.exit_of(request)
        if exit_id is None:
            return None
        went_out = router.answered_through(request) is not None
        if not went_out or not isinstance(exception, self.transport_errors):
            # Raised before the request went out, or not a network failure: not the exit's
            # fault. Release only what this attempt holds.
            router.release_held(request)
            if went_out and type(exception).__name__ in _ENDED_ON_OUR_SIDE:
                # It did leave through the exit (the size limit cut it short): one outcome, so
                # that every attempt that went out has exactly one audit line.
                router.emit(request, "cancelled", type(exception).__name__)
            return None
        router.take_held(request)
        domain = urlparse_cached(request).hostname or ""
        if isinstance(exception, SocksError):
            # The SOCKS reply code, not the class name: socks_reply_05, socks_auth_refused...
            reason = exception.reason
            if reason in ("socks_auth_refused", "socks_auth_method"):
                self.warn_once(
                    ("socks_auth", exit_id),
                    "SOCKS exit %(exit)s refuses the credentials (%(reason)s): check its user "
                    "name and password in the proxy configuration",
                    {"exit": exit_id, "reason": reason},
                )
        else:
            reason = type(exception).__name__
        retry = self._transport_failure(
            request, exit_id, domain, reason, proxy_only=_proxy_only(reason, exception)
        )
        if reason in _TIMEOUT_NAMES and router.timeout_shortened(request):
            # The shortened timeout fired. The exit is suspect, but the site may just be slow:
            # the retry gets the full DOWNLOAD_TIMEOUT so a slow page is not lost.
            self.stats.inc("exits", "adaptive_timeouts")
            if retry is not None:
                router.keep_full_timeout(retry)
        return retry

    def _transport_failure(
        self, request: Request, exit_id: str, domain: str, reason: str, *, proxy_only: bool
    ) -> Request | None:
        """Charge a failure to the right party (DESIGN: blame the right party), then retry.

        A failure only a proxy can cause ejects the exit for everyone; any other is charged to
        the (exit, site) pair first, and the pool decides whether the exit (failing across
        sites) or the site (failing through several exits) is to blame.
        """
        if proxy_only:
            ejected = self.pool.record_transport_failure(exit_id, domain, reason)
            outcome = "ejected" if ejected else "capped"
        else:
            outcome = self.pool.record_failure(exit_id, domain, reason)
        self.router.emit(request, "transport_failure", reason)
        self.stats.inc("exits", "transport_failures", reason)
        if outcome == "ejected":
            self.stats.inc("exits", "ejected")
            logger.debug(
                "Exit %(exit)s ejected after %(reason)s", {"exit": exit_id, "reason": reason}
            )
        elif outcome == "site_down":
            self.stats.inc("sites", "down")
            until = self.pool.site_down_until(domain)
            self.warn_once(
                ("site_down", domain),
                "Site %(domain)s fails through several exits (%(reason)s): it is taken to be "
                "down, not the exits; its requests wait and it is tried again in %(rest).0fs",
                {
                    "domain": domain,
                    "reason": reason,
                    "rest": max(0.0, until - time.monotonic()) if until is not None else 0.0,
                },
            )

        if request.meta.get("proxystack_session") is not None:
            return None  # a sticky session never silently changes exit
        retry = self._retry(request, f"exit_{reason}")
        if retry is not None:
            self.router.forget(retry, exit_id)
        else:
            self.router.count_drop(request, "transport")
        return retry

    def _retry(self, request: Request, reason: str) -> Request | None:
        meta = request.meta
        if meta.get("dont_retry"):
            return None
        limit = meta.get("max_proxies_to_try")  # scrapy-rotating-proxies' per-request override
        if limit is None:
            limit = meta.get("max_retry_times", self.exit_retry_times)
        return get_retry_request(
            request,
            spider=self._spider(),  # type: ignore[arg-type]
            reason=reason,
            max_retry_times=limit,
            stats_base_key="proxystack/retry/transport",
            give_up_log_level=logging.DEBUG,
        )


#: Download errors raised once the request had left, by the crawler itself (DOWNLOAD_MAXSIZE, a
#: handler stopping the download): nobody's failure, still an attempt through the exit.
_ENDED_ON_OUR_SIDE = frozenset({"DownloadCancelledError", "CancelledError", "StopDownload"})


def _proxy_only(reason: str, exception: Exception) -> bool:
    """Whether a download error can only be the proxy's fault (see ``_PROXY_ONLY_ERRORS``).

    A refused CONNECT tunnel is the proxy's when it asked for credentials (407); a tunnel
    refused with 502/504 is just as often a site that is down.
    """
    if isinstance(exception, SocksError):
        return exception.proxy_only
    if reason in _PROXY_ONLY_ERRORS:
        return True
    return reason == "TunnelError" and "407" in str(exception)
