"""Choose an exit for each request, and learn from how it went."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from scrapy.downloadermiddlewares.retry import get_retry_request
from scrapy.utils.httpobj import urlparse_cached
from scrapy.utils.misc import load_object

from scrapy_proxystack.downloadermiddlewares.locale import resolve_request_locale
from scrapy_proxystack.exceptions import ExitNotReady, ExitUnavailable, SessionRetired
from scrapy_proxystack.pool import NoExit, SessionLost
from scrapy_proxystack.runtime import (
    EXIT_META_KEY,
    HELD_META_KEY,
    PENDING_META_KEY,
    TRIED_META_KEY,
    WAITING_SINCE_META_KEY,
    enabled_stack,
)

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response

__all__ = [
    "EXIT_META_KEY",
    "PENDING_META_KEY",
    "TRIED_META_KEY",
    "ExitUnavailable",
    "ProxyMiddleware",
    "SessionRetired",
    "forget_exit",
]

logger = logging.getLogger(__name__)

_LOCAL_SCHEMES = frozenset({"file", "data"})
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


def forget_exit(request: Request, exit_id: str | None = None, *, tried: bool = True) -> None:
    """Drop the exit a request (or a copy of it) carries, before it is routed again.

    ``tried`` remembers the exit as one this request failed through (a ban or a transport
    failure), so its retry prefers another one. A redirect or a copy built from
    ``response.meta`` inherited the exit without failing through it: not tried.
    """
    meta = request.meta
    exit_id = exit_id if exit_id is not None else meta.get(EXIT_META_KEY)
    meta.pop("proxy", None)
    meta.pop(EXIT_META_KEY, None)
    meta.pop(HELD_META_KEY, None)
    meta.pop("_proxystack_exit_locale", None)
    meta.pop("_proxystack_flags", None)
    if tried and exit_id is not None:
        meta[TRIED_META_KEY] = (*meta.get(TRIED_META_KEY, ()), exit_id)
    timeout = meta.pop("_proxystack_timeout", None)
    if timeout is not None and meta.get("download_timeout") == timeout[0]:
        meta["download_timeout"] = timeout[1]


class ProxyMiddleware:
    """Sends each request through an exit of its locale chain, and records the outcome.

    The request keeps its download slot (the target host): politeness settings stay per site
    however many exits there are. An explicit ``meta["proxy"]`` set by the user wins and is
    counted. When no exit can serve the request it fails with :class:`ExitUnavailable`: it never
    leaves directly or through another country. With the add-on's download handlers, the exit is
    checked again (and changed if needed) when the request is actually sent.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.stack = enabled_stack(crawler)
        self.pool = self.stack.pool
        self.stats = self.stack.stats
        self.settings = self.stack.settings
        self.transport_errors: tuple[type[BaseException], ...] = tuple(
            load_object(x) if isinstance(x, str) else x
            for x in crawler.settings.getlist("RETRY_EXCEPTIONS")
        )

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ProxyMiddleware:
        return cls(crawler)

    # -- way out --------------------------------------------------------------------------------

    def process_request(self, request: Request) -> Request | None:
        meta = request.meta
        if meta.get(PENDING_META_KEY):
            return None  # waiting for an exit: bound when sent
        if "proxy" in meta and EXIT_META_KEY not in meta:
            self.stats.inc("requests", "user_proxy")
            return None
        if EXIT_META_KEY in meta:
            # A redirect, a copy made from response.meta, or this very request again after a
            # later middleware returned it: give back what it still holds, then route afresh.
            self.stack.release_held(request)
            forget_exit(request, tried=False)
        scheme = urlparse_cached(request).scheme
        if scheme not in ("http", "https"):
            if scheme in _LOCAL_SCHEMES:
                return None  # nothing leaves the machine
            # Scrapy's ftp/s3 handlers ignore meta["proxy"]: routing them would be a lie.
            decision = resolve_request_locale(self.crawler, request)
            raise self.stack.fail_closed(request, decision.locale, "unsupported_scheme")
        decision = resolve_request_locale(self.crawler, request)
        domain = urlparse_cached(request).hostname or ""
        session = meta.get("proxystack_session")
        if session is not None:
            reason = self.stack.retired_sessions.get(str(session))
            if reason is not None:
                meta["proxystack_session_retired"] = reason
                self.stats.inc("sessions", "refused")
                raise SessionRetired(str(session), reason)
        try:
            choice = self.stack.choose(
                decision.locale, domain, meta.get(TRIED_META_KEY, ()), session
            )
        except SessionLost as exc:
            self.stack.retire_session(request, exc.session, exc.reason)
            raise SessionRetired(exc.session, exc.reason) from None
        except NoExit as exc:
            waiting = self.stack.park(request, decision.locale, domain, exc)
            if waiting is not None:
                return waiting  # the engine schedules it, and it waits in the parking lot
            if self.stack.can_wait(exc):
                # Not from the scheduler (robots.txt, engine.download): every exit is only
                # paced for this site, so bind one when the request is sent.
                meta[PENDING_META_KEY] = True
                meta["proxy"] = None  # and never an environment proxy meanwhile
                return None
            raise self.stack.fail_closed(request, decision.locale, exc.reason) from None
        self.stack.found_exit(request, decision.locale, domain)
        self.stack.bind(request, choice)
        return None

    # -- way back -------------------------------------------------------------------------------

    def process_response(self, request: Request, response: Response) -> Request | Response:
        exit_id = request.meta.get(EXIT_META_KEY)
        if exit_id is None:
            return response
        if request.meta.get(HELD_META_KEY) != exit_id or "cached" in response.flags:
            # Not an answer through the exit (HTTP cache, a middleware's own response): it
            # says nothing about the exit's health.
            self.stack.release_held(request)
            return response
        request.meta.pop(HELD_META_KEY, None)
        domain = urlparse_cached(request).hostname or ""
        if response.status in PROXY_FAILURE_STATUSES:
            reason = f"status_{response.status}"
            if response.status == 407:
                self.stack.warn_once(
                    ("407", exit_id),
                    "Exit %(exit)s answers 407 Proxy Authentication Required: check its user "
                    "name and password in the proxy configuration",
                    {"exit": exit_id},
                )
            retry = self._transport_failure(
                request, exit_id, domain, reason, proxy_only=response.status in _PROXY_ONLY_STATUSES
            )
            return retry if retry is not None else response
        # A usable answer ends this request's waiting: children built from response.meta must
        # not inherit its wait clock or its count of slow-downs.
        request.meta.pop(WAITING_SINCE_META_KEY, None)
        request.meta.pop("_proxystack_throttled", None)
        latency = request.meta.get("download_latency")
        if self.pool.record_success(
            exit_id, domain, float(latency) if latency is not None else 0.0
        ):
            self.stack.site_recovered(domain)
        self.stack.exit_succeeded(exit_id, domain)
        self.stats.inc("responses", "locale", request.meta.get("_proxystack_exit_locale") or "none")
        self.stack.emit(request, "success", "ok", status=response.status)
        return response

    def process_exception(self, request: Request, exception: Exception) -> Request | None:
        if isinstance(exception, ExitNotReady):
            waiting: Request = exception.retry_request  # type: ignore[assignment]
            return waiting  # waits for an exit in the parking lot
        exit_id = request.meta.get(EXIT_META_KEY)
        if exit_id is None:
            return None
        if request.meta.get(HELD_META_KEY) != exit_id or not isinstance(
            exception, self.transport_errors
        ):
            # Raised before the request went out, or not a network failure: not the exit's
            # fault. Release only what this attempt holds.
            went_out = request.meta.get(HELD_META_KEY) == exit_id
            self.stack.release_held(request)
            if went_out and type(exception).__name__ in _ENDED_ON_OUR_SIDE:
                # It did leave through the exit (the size limit cut it short): one outcome, so
                # that every attempt that went out has exactly one audit line.
                self.stack.emit(request, "cancelled", type(exception).__name__)
            return None
        request.meta.pop(HELD_META_KEY, None)
        domain = urlparse_cached(request).hostname or ""
        reason = type(exception).__name__
        retry = self._transport_failure(
            request, exit_id, domain, reason, proxy_only=_proxy_only(reason, exception)
        )
        if reason in _TIMEOUT_NAMES and "_proxystack_timeout" in request.meta:
            # The shortened timeout fired. The exit is suspect, but the site may just be slow:
            # the retry gets the full DOWNLOAD_TIMEOUT so a slow page is not lost.
            self.stats.inc("exits", "adaptive_timeouts")
            if retry is not None:
                retry.meta["_proxystack_full_timeout"] = True
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
        self.stack.emit(request, "transport_failure", reason)
        self.stats.inc("exits", "transport_failures", reason)
        if outcome == "ejected":
            self.stats.inc("exits", "ejected")
            logger.debug(
                "Exit %(exit)s ejected after %(reason)s",
                {"exit": exit_id, "reason": reason},
                extra={"crawler": self.crawler},
            )
        elif outcome == "site_down":
            self.stats.inc("sites", "down")
            until = self.pool.site_down_until(domain)
            self.stack.warn_once(
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
            forget_exit(retry, exit_id)
        else:
            self.stack.count_drop(request, "transport")
        return retry

    def _retry(self, request: Request, reason: str) -> Request | None:
        meta = request.meta
        if meta.get("dont_retry"):
            return None
        limit = meta.get("max_proxies_to_try")  # scrapy-rotating-proxies' per-request override
        if limit is None:
            limit = meta.get("max_retry_times", self.settings.exit_retry_times)
        return get_retry_request(
            request,
            spider=self.crawler.spider,  # type: ignore[arg-type]
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
    if reason in _PROXY_ONLY_ERRORS:
        return True
    return reason == "TunnelError" and "407" in str(exception)
