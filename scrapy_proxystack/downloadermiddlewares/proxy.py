"""Choose an exit for each request, and learn from how it went."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from scrapy.downloadermiddlewares.retry import get_retry_request
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.settings import SETTINGS_PRIORITIES
from scrapy.utils.httpobj import urlparse_cached
from scrapy.utils.misc import load_object

from scrapy_proxystack.downloadermiddlewares.locale import resolve_request_locale
from scrapy_proxystack.pool import NoExit, SessionLost
from scrapy_proxystack.runtime import close_crawl, get_stack

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response

    from scrapy_proxystack.pool import Choice

__all__ = [
    "EXIT_META_KEY",
    "ExitUnavailable",
    "ProxyMiddleware",
    "SessionRetired",
    "forget_exit",
]

logger = logging.getLogger(__name__)

#: Private meta keys. ``meta["proxy"]`` is not an identity: Scrapy's HttpProxyMiddleware rewrites
#: it without credentials, and gateways encode the country in the user name.
EXIT_META_KEY = "_proxystack_exit"
TRIED_META_KEY = "_proxystack_tried"
_TIMEOUT_META_KEY = "_proxystack_timeout"
_MAX_RETIRED_SESSIONS = 100_000
#: Proxy answers that say the *proxy* failed, not the site.
PROXY_FAILURE_STATUSES = frozenset({407, 502, 504})


class ExitUnavailable(IgnoreRequest):
    """No exit of the request's locale (or its fallbacks) can serve it: the request fails closed."""

    def __init__(self, locale: str | None, reason: str) -> None:
        self.locale = locale
        self.reason = reason
        super().__init__(f"no usable exit for locale {locale!r} ({reason}); request not sent")


class SessionRetired(IgnoreRequest):
    """The exit of a sticky session was banned or ejected: the session ends as a whole."""

    def __init__(self, session: str, reason: str) -> None:
        self.session = session
        self.reason = reason
        super().__init__(f"sticky session {session!r} retired ({reason})")


def forget_exit(request: Request, exit_id: str) -> None:
    """Prepare a retry copy of ``request``: drop its exit and remember it was tried."""
    meta = request.meta
    meta.pop("proxy", None)
    meta.pop(EXIT_META_KEY, None)
    meta.pop("_proxystack_exit_locale", None)
    meta.pop("_proxystack_flags", None)
    meta[TRIED_META_KEY] = (*meta.get(TRIED_META_KEY, ()), exit_id)
    timeout = meta.pop(_TIMEOUT_META_KEY, None)
    if timeout is not None and meta.get("download_timeout") == timeout[0]:
        meta["download_timeout"] = timeout[1]


class ProxyMiddleware:
    """Sends each request through an exit of its locale chain, and records the outcome.

    The request keeps its download slot (the target host): politeness settings stay per site
    however many exits there are. An explicit ``meta["proxy"]`` set by the user wins and is
    counted. When no exit can serve the request it fails with :class:`ExitUnavailable`: it never
    leaves directly or through another country.
    """

    def __init__(self, crawler: Crawler) -> None:
        if not crawler.settings.getbool("PROXYSTACK_ENABLED", True):
            raise NotConfigured("PROXYSTACK_ENABLED is False")
        self.crawler = crawler
        self.stack = get_stack(crawler)
        if not self.stack.config.all_proxies:
            raise NotConfigured(
                "no proxies configured (set PROXYSTACK_PROXIES_FILE or PROXYSTACK_PROXIES)"
            )
        self.pool = self.stack.pool
        self.stats = self.stack.stats
        self.settings = self.stack.settings
        self.transport_errors: tuple[type[BaseException], ...] = tuple(
            load_object(x) if isinstance(x, str) else x
            for x in crawler.settings.getlist("RETRY_EXCEPTIONS")
        )
        self.default_timeout = crawler.settings.getfloat("DOWNLOAD_TIMEOUT")
        headers_priority = crawler.settings.getpriority("DEFAULT_REQUEST_HEADERS") or 0
        default_headers = crawler.settings.getdict("DEFAULT_REQUEST_HEADERS")
        # Scrapy's own default Accept-Language ("en") is not a user choice; a project one is.
        self.default_accept_language: bytes | None = None
        if headers_priority <= SETTINGS_PRIORITIES["addon"]:
            value = next(
                (v for k, v in default_headers.items() if k.lower() == "accept-language"), None
            )
            self.default_accept_language = value.encode() if isinstance(value, str) else value
        self.retired_sessions: dict[str, str] = {}
        self.accept_language: dict[str | None, str | None] = {}
        for name, locale in self.stack.config.locales.items():
            self.accept_language[name] = self.settings.accept_language_for(
                name, locale.accept_language
            )

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ProxyMiddleware:
        return cls(crawler)

    # -- way out --------------------------------------------------------------------------------

    def process_request(self, request: Request) -> None:
        meta = request.meta
        if "proxy" in meta and EXIT_META_KEY not in meta:
            self.stats.inc("requests", "user_proxy")
            return
        if EXIT_META_KEY in meta:
            # The same request object again (a middleware returned it): its exit was released.
            forget_exit(request, meta[EXIT_META_KEY])
        decision = resolve_request_locale(self.crawler, request)
        domain = urlparse_cached(request).hostname or ""
        session = meta.get("proxystack_session")
        if session is not None and str(session) in self.retired_sessions:
            reason = self.retired_sessions[str(session)]
            meta["proxystack_session_retired"] = reason
            self.stats.inc("sessions", "refused")
            raise SessionRetired(str(session), reason)
        try:
            choice = self.pool.choose(
                decision.locale,
                domain,
                exclude=meta.get(TRIED_META_KEY, ()),
                session=str(session) if session is not None else None,
            )
        except SessionLost as exc:
            self.pool.end_session(exc.session)
            # The name stays retired: later requests of the same session must not quietly get
            # a new exit. The spider starts a new session under a new name when it wants one.
            self.retired_sessions[exc.session] = exc.reason
            if len(self.retired_sessions) > _MAX_RETIRED_SESSIONS:
                self.retired_sessions.pop(next(iter(self.retired_sessions)))
            self.stats.inc("sessions", "retired", exc.reason)
            meta["proxystack_session_retired"] = exc.reason
            self.stack.emit(request, "session_retired", exc.reason)
            logger.info(
                "Sticky session %(session)r retired (%(reason)s)",
                {"session": exc.session, "reason": exc.reason},
                extra={"crawler": self.crawler},
            )
            raise SessionRetired(exc.session, exc.reason) from None
        except NoExit as exc:
            self._no_exit(request, decision.locale, exc)
        self._apply(request, choice)

    def _apply(self, request: Request, choice: Choice) -> None:
        meta = request.meta
        entry = choice.entry
        meta["proxy"] = entry.url
        meta[EXIT_META_KEY] = entry.id
        meta["_proxystack_exit_locale"] = choice.locale
        meta["_proxystack_flags"] = (choice.fallback, choice.panic)
        self.stats.inc("requests", "locale", choice.locale or "none")
        if choice.fallback:
            self.stats.inc("requests", "fallback", choice.locale or "none")
        if choice.panic:
            self.stats.inc("requests", "panic", choice.locale or "none")
            self.stack.warn_once(
                ("panic", str(choice.locale)),
                "Every exit of locale %(locale)r is ejected: using the least-bad ones (panic mode)",
                {"locale": choice.locale},
            )
        accept_language = self.accept_language.get(choice.locale)
        if accept_language is not None:
            current = request.headers.get(b"Accept-Language")
            if current is None or current == self.default_accept_language:
                request.headers[b"Accept-Language"] = accept_language
        if self.settings.adaptive_timeout:
            self._adapt_timeout(request, choice.locale)

    def _adapt_timeout(self, request: Request, locale: str | None) -> None:
        """A black-hole exit should cost seconds, not DOWNLOAD_TIMEOUT (180 s by default)."""
        current = request.meta.get("download_timeout", self.default_timeout)
        if current != self.default_timeout:
            return  # set by the user for this request
        latency = self.pool.locale_latency(locale)
        if latency is None:
            return
        timeout = max(
            self.settings.adaptive_timeout_min, latency * self.settings.adaptive_timeout_factor
        )
        if timeout < current:
            request.meta["download_timeout"] = timeout
            request.meta[_TIMEOUT_META_KEY] = (timeout, current)

    def _no_exit(self, request: Request, locale: str | None, exc: NoExit) -> Any:
        self.stats.inc("requests", "no_exit", exc.reason)
        request.meta.pop("_proxystack_exit_locale", None)
        request.meta.pop("_proxystack_flags", None)
        self.stack.emit(request, "no_exit", exc.reason)
        self.stats.inc("requests", "dropped", "no_exit")
        self.stack.warn_once(
            ("no_exit", str(locale), exc.reason),
            "No usable exit for locale %(locale)r (%(reason)s): requests for it fail closed "
            "and are counted in proxystack/requests/no_exit/%(reason)s (first: %(url)s)",
            {"locale": locale, "reason": exc.reason, "url": request.url},
        )
        if self.settings.close_on_empty_locale:
            close_crawl(self.crawler, "proxystack_no_exit")
        raise ExitUnavailable(locale, exc.reason) from None

    # -- way back -------------------------------------------------------------------------------

    def process_response(self, request: Request, response: Response) -> Request | Response:
        exit_id = request.meta.get(EXIT_META_KEY)
        if exit_id is None:
            return response
        domain = urlparse_cached(request).hostname or ""
        if response.status in PROXY_FAILURE_STATUSES:
            reason = f"status_{response.status}"
            retry = self._transport_failure(request, exit_id, domain, reason)
            return retry if retry is not None else response
        latency = request.meta.get("download_latency")
        self.pool.record_success(exit_id, domain, float(latency) if latency is not None else 0.0)
        self.stats.inc("responses", "locale", request.meta.get("_proxystack_exit_locale") or "none")
        self.stack.emit(request, "success", "ok", status=response.status)
        return response

    def process_exception(self, request: Request, exception: Exception) -> Request | None:
        exit_id = request.meta.get(EXIT_META_KEY)
        if exit_id is None:
            return None
        domain = urlparse_cached(request).hostname or ""
        if not isinstance(exception, self.transport_errors):
            self.pool.release(exit_id)
            return None
        reason = type(exception).__name__
        return self._transport_failure(request, exit_id, domain, reason)

    def _transport_failure(
        self, request: Request, exit_id: str, domain: str, reason: str
    ) -> Request | None:
        ejected = self.pool.record_transport_failure(exit_id, domain, reason)
        self.stack.emit(request, "transport_failure", reason)
        self.stats.inc("exits", "transport_failures", reason)
        if ejected:
            self.stats.inc("exits", "ejected")
            logger.debug(
                "Exit %(exit)s ejected after %(reason)s",
                {"exit": exit_id, "reason": reason},
                extra={"crawler": self.crawler},
            )
        if request.meta.get("proxystack_session") is not None:
            return None  # a sticky session never silently changes exit
        retry = get_retry_request(
            request,
            spider=self.crawler.spider,  # type: ignore[arg-type]
            reason=f"exit_{reason}",
            max_retry_times=self.settings.exit_retry_times,
            stats_base_key="proxystack/retry/transport",
            give_up_log_level=logging.DEBUG,
        )
        if retry is not None:
            forget_exit(retry, exit_id)
        return retry
