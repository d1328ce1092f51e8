"""How a request is routed: one frozen record per attempt, and the work that reads it.

All of the suite's per-request bookkeeping is one :class:`Route` under one private meta key,
written only by this module. Scrapy copies ``meta`` shallowly into retries, redirects and
requests built from ``response.meta``: the record is immutable, so a copy shares it safely, and
every change replaces it whole (a copy never changes its original's record).

:class:`Router` is the per-request work: choose and bind an exit, forget it for a retry, release
its in-flight slot exactly once, send a request that cannot leave now to wait for an exit, and
fail closed when none ever will. It takes plain values (the pool, the stats helper, callables
for what only the crawler can do), so it is tested without a crawler.

Spiders read the record through :func:`route_of` (``route_of(response).exit_id``).

The module is whole (it is longer than most) on purpose: the record and every function that
writes it live together, so that no other module needs to know the meta key or the fields.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from scrapy.utils.httpobj import urlparse_cached

from scrapy_proxystack.config import SOCKS_SCHEMES
from scrapy_proxystack.exceptions import ExitNotReady, ExitUnavailable, SessionRetired
from scrapy_proxystack.locales import LocaleDecision
from scrapy_proxystack.pool import NoExit, SessionLost
from scrapy_proxystack.signals import ExitOutcome

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from scrapy import Request
    from scrapy.http import Response

    from scrapy_proxystack.config import ProxyEntry
    from scrapy_proxystack.locales import LocaleResolver
    from scrapy_proxystack.parking import ParkingLot
    from scrapy_proxystack.pool import Choice, ExitPool
    from scrapy_proxystack.settings import ProxyStackSettings
    from scrapy_proxystack.stats import StatsRecorder

__all__ = ["PARKABLE_REASONS", "LocaleDecision", "Route", "Router", "route_of"]

logger = logging.getLogger(__name__)

_KEY = "_proxystack"
#: Reasons a request waits for an exit instead of failing.
PARKABLE_REASONS = frozenset({"all_banned", "all_ejected", "site_down"})
_LOCAL_SCHEMES = frozenset({"file", "data"})
#: Times one request may be slowed down by a site (429) before it is dropped: a site that
#: answers 429 to everything must not keep a request cycling for ever.
MAX_THROTTLES = 50
_MAX_RETIRED_SESSIONS = 100_000


@dataclass(frozen=True, slots=True)
class Route:
    """The suite's bookkeeping for one request, as of its current attempt.

    ``meta["proxy"]`` is not an identity: Scrapy's HttpProxyMiddleware rewrites it without
    credentials, and gateways encode the country in the user name. Exits are named by id.
    """

    #: The locale the request must leave from, and the host it was decided for (a rule-based
    #: decision is made again when a redirect changes the host).
    decision: LocaleDecision | None = None
    decided_for: str = ""
    #: The exit this attempt leaves through, and the locale that exit belongs to.
    exit_id: str | None = None
    exit_locale: str | None = None
    #: The pool (of ``exit_locale``) that exit belongs to.
    exit_pool: str | None = None
    #: The exit came from a fallback locale / was chosen in panic mode (all ejected).
    fallback: bool = False
    panic: bool = False
    #: The exit whose in-flight slot this very attempt holds: released exactly once.
    held: str | None = None
    #: No exit was ready when the middleware ran: bind one when the request is sent.
    pending: bool = False
    #: ``(shortened, original)`` ``download_timeout`` when the suite shortened it.
    timeout: tuple[float, float] | None = None
    #: Exits this request failed through (a retry prefers another one).
    tried: tuple[str, ...] = ()
    #: A shortened timeout fired once: this request keeps the full one.
    full_timeout: bool = False
    #: The ``Accept-Language`` the suite set, so it may replace its own value, never a user's.
    accept_language: bytes | None = None
    #: The scheduler saw this request: only those can wait in the parking lot (a request
    #: downloaded directly, like robots.txt, never comes back through the scheduler).
    scheduled: bool = False
    #: On a copy handed back to the engine: park it until this time (monotonic clock).
    park_at: float | None = None
    #: The lot let this request go: report to the lot whether it found an exit.
    released: bool = False
    #: Wall-clock time the request first had to wait for an exit: bounds its total wait.
    waiting_since: float | None = None
    #: Times a site slowed this request down (429) since its last usable answer.
    throttled: int = 0
    #: When it left, past its site's budget and its exit's pacing (``time.monotonic()``): the
    #: moment the suite's politeness is kept at, before the network adds its own delays.
    sent_at: float | None = None


_EMPTY = Route()


def route_of(obj: Request | Response) -> Route:
    """The routing record of a request, or of the request a response answers."""
    route: Route | None = obj.meta.get(_KEY)
    return route if route is not None else _EMPTY


def _update(request: Request, **changes: Any) -> Route:
    route = replace(route_of(request), **changes)
    request.meta[_KEY] = route
    return route


class OutcomeSink(Protocol):
    """What the router needs from the crawler: signals, one-time warnings, closing, a timer."""

    def send_outcome(self, outcome: ExitOutcome, request: Request) -> None: ...

    def warn_once(
        self, key: tuple[str, ...], msg: str, args: dict[str, object], *, level: int = ...
    ) -> bool: ...

    def close(self, reason: str) -> None: ...

    def arm(self, at: float) -> None: ...

    def is_open(self) -> bool: ...


class Router:
    """Chooses, binds, forgets and releases exits of requests; sends them to wait or fails them.

    ``accept_language`` maps a locale to the header its exits send; ``default_accept_language``
    is the project-wide value the suite may replace (Scrapy's own default is not a user choice).
    ``dispatch_binding`` says the add-on's download handlers bind exits when requests are sent.
    """

    def __init__(
        self,
        *,
        pool: ExitPool,
        stats: StatsRecorder,
        settings: ProxyStackSettings,
        locales: LocaleResolver,
        lot: ParkingLot[Request],
        sink: OutcomeSink,
        accept_language: Mapping[str | None, str | None],
        default_accept_language: bytes | None,
        default_timeout: float,
        dispatch_binding: bool,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.pool = pool
        self.stats = stats
        self.settings = settings
        self.locales = locales
        self.lot = lot
        self.sink = sink
        self.accept_language = {
            k: (v.encode() if v is not None else None) for k, v in accept_language.items()
        }
        self.default_accept_language = default_accept_language
        self.default_timeout = default_timeout
        self.dispatch_binding = dispatch_binding
        self.clock = clock
        self.wall_clock = wall_clock
        self.retired_sessions: dict[str, str] = {}
        #: locale -> drop reason -> requests, for the summary at close.
        self.dropped: dict[str | None, dict[str, int]] = {}
        self._told: set[tuple[str, ...]] = set()

    # -- the record ---------------------------------------------------------------------------

    def decide(self, request: Request) -> LocaleDecision:
        """The locale decision for ``request``, computed once per host and kept in its record.

        A redirect or a request built from ``response.meta`` copies the old decision; it is made
        again when the host changed (for a rule-based locale) or when ``proxystack_locale`` did.
        """
        host = urlparse_cached(request).hostname or ""
        asked = request.meta.get("proxystack_locale")
        route = route_of(request)
        decision = route.decision
        if decision is not None:
            if decision.source == "meta":
                if asked is not None and str(asked) == decision.locale:
                    return decision
            elif asked is None and route.decided_for == host:
                return decision
        decision = self.locales.resolve(host, asked)
        _update(request, decision=decision, decided_for=host)
        return decision

    @staticmethod
    def decided(request: Request) -> bool:
        return route_of(request).decision is not None

    @staticmethod
    def locale_of(request: Request) -> str | None:
        decision = route_of(request).decision
        return decision.locale if decision is not None else None

    @staticmethod
    def exit_of(request: Request) -> str | None:
        """The exit this attempt is bound to."""
        return route_of(request).exit_id

    def exit_entry(self, request: Request) -> ProxyEntry | None:
        """The configured SOCKS exit this attempt is bound to (None for any other), for the
        download handler that needs its credentials."""
        exit_id = route_of(request).exit_id
        if exit_id is None or not self.has_socks_exits():
            return None
        entry = self.pool.entry_of(exit_id)
        return entry if entry is not None and entry.scheme in SOCKS_SCHEMES else None

    def has_socks_exits(self) -> bool:
        return self.pool.has_socks

    @staticmethod
    def exit_locale(request: Request) -> str | None:
        return route_of(request).exit_locale

    @staticmethod
    def answered_through(request: Request) -> str | None:
        """The exit this attempt went out through and still holds (so the answer is the
        exit's, not a cache's or another middleware's); None otherwise."""
        route = route_of(request)
        exit_id = route.exit_id
        return exit_id if exit_id is not None and route.held == exit_id else None

    @staticmethod
    def is_pending(request: Request) -> bool:
        return route_of(request).pending

    @staticmethod
    def timeout_shortened(request: Request) -> bool:
        return route_of(request).timeout is not None

    @staticmethod
    def keep_full_timeout(request: Request) -> None:
        _update(request, full_timeout=True)

    @staticmethod
    def answered(request: Request) -> None:
        """A usable answer ends this request's waiting: children built from ``response.meta``
        must not inherit its wait clock or its count of slow-downs."""
        route = route_of(request)
        if route.waiting_since is not None or route.throttled:
            _update(request, waiting_since=None, throttled=0)

    @staticmethod
    def forget(request: Request, exit_id: str | None = None, *, tried: bool = True) -> None:
        """Drop the exit a request (or a copy of it) carries, before it is routed again.

        ``tried`` remembers the exit as one this request failed through (a ban or a transport
        failure), so its retry prefers another one. A redirect or a copy built from
        ``response.meta`` inherited the exit without failing through it: not tried.
        """
        meta = request.meta
        route = route_of(request)
        exit_id = exit_id if exit_id is not None else route.exit_id
        meta.pop("proxy", None)
        timeout = route.timeout
        if timeout is not None and meta.get("download_timeout") == timeout[0]:
            meta["download_timeout"] = timeout[1]
        _update(
            request,
            exit_id=None,
            held=None,
            exit_locale=None,
            exit_pool=None,
            fallback=False,
            panic=False,
            timeout=None,
            tried=(*route.tried, exit_id) if tried and exit_id is not None else route.tried,
        )

    def take_held(self, request: Request) -> None:
        """The attempt's outcome is being recorded (which releases its slot in the pool)."""
        if route_of(request).held is not None:
            _update(request, held=None)

    def release_held(self, request: Request) -> None:
        """Give back the in-flight slot this attempt holds, if it holds one."""
        held = route_of(request).held
        if held is not None:
            _update(request, held=None)
            self.pool.release(held)

    # -- the way out --------------------------------------------------------------------------

    def route(self, request: Request) -> Request | None:
        """Bind ``request`` to an exit of its locale chain (the downloader middleware step).

        Returns a copy to hand back to the engine when the request must wait for an exit.
        Raises :class:`ExitUnavailable` or :class:`SessionRetired` when it must not leave.
        """
        meta = request.meta
        route = route_of(request)
        if route.pending:
            return None  # waiting for an exit: bound when sent
        if "proxy" in meta and route.exit_id is None:
            self.stats.inc("requests", "user_proxy")
            return None
        if route.exit_id is not None:
            # A redirect, a copy made from response.meta, or this very request again after a
            # later middleware returned it: give back what it still holds, then route afresh.
            self.release_held(request)
            self.forget(request, tried=False)
        scheme = urlparse_cached(request).scheme
        if scheme not in ("http", "https"):
            if scheme in _LOCAL_SCHEMES:
                return None  # nothing leaves the machine
            # Scrapy's ftp/s3 handlers ignore meta["proxy"]: routing them would be a lie.
            raise self.fail_closed(request, self.decide(request).locale, "unsupported_scheme")
        decision = self.decide(request)
        domain = urlparse_cached(request).hostname or ""
        try:
            choice = self._choose_for(request, decision.locale, domain)
        except NoExit as exc:
            waiting = self.park(request, decision.locale, domain, exc)
            if waiting is not None:
                return waiting  # the engine schedules it, and it waits in the parking lot
            if self.can_wait(exc):
                # Not from the scheduler (robots.txt, engine.download): every exit is only
                # paced for this site, so bind one when the request is sent.
                _update(request, pending=True)
                meta["proxy"] = None  # and never an environment proxy meanwhile
                return None
            raise self.fail_closed(request, decision.locale, exc.reason) from None
        self.found_exit(request, decision.locale, domain)
        self.bind(request, choice)
        return None

    def rebind(self, request: Request, domain: str, deadline: float) -> str | float:
        """At send time: bind ``request`` to a usable exit now (its id), or say how long to
        wait for one (seconds). A scheduled request does not wait in the downloader:
        :class:`ExitNotReady` hands a copy back to the engine, which parks it. Any other one
        fails closed when no exit is ready before ``deadline`` (monotonic clock).
        """
        route = route_of(request)
        if route.exit_id is not None:
            # The exit became unusable for this site while the request queued. It never carried
            # this request, so it is not remembered as tried.
            self.release_held(request)
            self.forget(request, route.exit_id, tried=False)
            self.stats.inc("exits", "rebound")
        locale = self.locale_of(request)
        try:
            choice = self._choose_for(request, locale, domain)
        except NoExit as exc:
            waiting = self.park(request, locale, domain, exc)
            if waiting is not None:
                _update(request, pending=False)
                raise ExitNotReady(waiting) from None
            now = self.clock()
            if exc.retry_at is None or exc.retry_at > deadline:
                self.release_held(request)
                _update(request, exit_id=None, pending=False)
                raise self.fail_closed(request, locale, exc.reason) from None
            return max(exc.retry_at - now, 0.001)
        _update(request, pending=False)
        self.found_exit(request, locale, domain)
        self.bind(request, choice)
        return choice.entry.id

    def _choose_for(self, request: Request, locale: str | None, domain: str) -> Choice:
        """An exit for ``request``: one it has not tried yet if there is one, else any usable
        one (a locale with a single exit retries through the same one rather than failing).
        A sticky session keeps its exit, or ends as a whole."""
        session = request.meta.get("proxystack_session")
        name = str(session) if session is not None else None
        if name is not None:
            reason = self.retired_sessions.get(name)
            if reason is not None:
                request.meta["proxystack_session_retired"] = reason
                self.stats.inc("sessions", "refused")
                raise SessionRetired(name, reason)
        tried = route_of(request).tried
        try:
            try:
                return self.pool.choose(locale, domain, exclude=tried, session=name)
            except NoExit as exc:
                if exc.reason != "all_tried" or isinstance(exc, SessionLost):
                    raise
            self.stats.inc("exits", "reused")
            return self.pool.choose(locale, domain, session=name)
        except SessionLost as exc:
            self.retire_session(request, exc.session, exc.reason)
            raise SessionRetired(exc.session, exc.reason) from None

    def bind(self, request: Request, choice: Choice) -> None:
        """Send ``request`` through ``choice``: meta, Accept-Language, timeout, stats."""
        meta = request.meta
        entry = choice.entry
        if entry.scheme in SOCKS_SCHEMES:
            # No credentials in meta["proxy"]: Scrapy's HttpProxyMiddleware would turn them into
            # a Proxy-Authorization header (latin-1, lossy). The SOCKS handler takes them from
            # the exit itself (exit_entry).
            host = f"[{entry.host}]" if ":" in entry.host else entry.host
            meta["proxy"] = f"{entry.scheme}://{host}:{entry.port}"
        else:
            meta["proxy"] = entry.url
        route = _update(
            request,
            exit_id=entry.id,
            held=entry.id,
            exit_locale=choice.locale,
            exit_pool=entry.pool,
            fallback=choice.fallback,
            panic=choice.panic,
        )
        if not self.dispatch_binding:
            self.count_sent(request)
        if choice.panic:
            self.sink.warn_once(
                ("panic", str(choice.locale)),
                "Every exit of locale %(locale)r is ejected: using the least-bad ones (panic mode)",
                {"locale": choice.locale},
            )
        accept_language = self.accept_language.get(choice.locale)
        if accept_language is not None:
            current = request.headers.get(b"Accept-Language")
            if current is None or current in (self.default_accept_language, route.accept_language):
                # Not set by the user (or set by the suite for an earlier hop or locale).
                request.headers[b"Accept-Language"] = accept_language
                route = _update(request, accept_language=accept_language)
        if self.settings.adaptive_timeout:
            self._adapt_timeout(request, route, choice.locale)

    def _adapt_timeout(self, request: Request, route: Route, locale: str | None) -> None:
        """A black-hole exit should cost seconds, not DOWNLOAD_TIMEOUT (180 s by default)."""
        current = request.meta.get("download_timeout", self.default_timeout)
        if current != self.default_timeout or route.full_timeout:
            return  # set by the user for this request, or a shortened timeout already fired
        latency = self.pool.locale_latency(locale)
        if latency is None:
            return
        timeout = max(
            self.settings.adaptive_timeout_min, latency * self.settings.adaptive_timeout_factor
        )
        if timeout < current:
            request.meta["download_timeout"] = timeout
            _update(request, timeout=(timeout, current))

    def count_sent(self, request: Request, at: float | None = None) -> None:
        """Count a request once, when its exit is final (at dispatch when the handlers are on);
        ``at``: when it leaves (the dispatch gate's clock)."""
        route = route_of(request) if at is None else _update(request, sent_at=at)
        locale = route.exit_locale or "none"
        self.stats.inc("requests", "locale", locale)
        if route.fallback:
            self.stats.inc("requests", "fallback", locale)
        if route.panic:
            self.stats.inc("requests", "panic", locale)

    def usable_now(self, request: Request, exit_id: str, domain: str) -> bool:
        """Whether ``exit_id`` may carry ``request`` to ``domain`` at this moment.

        An exit chosen in panic mode is ejected by definition: then only the site's own
        verdict (a ban or pacing) counts. An exit whose pool the choice no longer draws (a
        canary rolled back while the request queued) carries nothing more, except for a
        sticky session, which keeps its exit.
        """
        pool = self.pool
        route = route_of(request)
        if not route.panic:
            if pool.ejected_until(exit_id) is not None:
                return False
            if request.meta.get("proxystack_session") is None and pool.pool_closed(
                exit_id, route.exit_locale
            ):
                return False
        return pool.ready_at(exit_id, domain) is None

    def can_wait(self, exc: NoExit) -> bool:
        """Whether a request that found no ready exit should wait for one at send time."""
        if not self.dispatch_binding or exc.retry_at is None or exc.reason != "all_banned":
            return False
        return exc.retry_at - self.clock() <= self.settings.max_wait

    # -- failing closed -------------------------------------------------------------------------

    def fail_closed(self, request: Request, locale: str | None, reason: str) -> ExitUnavailable:
        """Count, log (once per locale and reason) and build the error for a request not sent."""
        self.stats.inc("requests", "no_exit", reason)
        self.count_drop(request, "no_exit", locale)
        _update(request, exit_locale=None, exit_pool=None, fallback=False, panic=False)
        self.emit(request, "no_exit", reason)
        key = ("no_exit", str(locale), reason)
        if key not in self._told:  # the breakdown is O(chain): only for the first one
            self._told.add(key)
            domain = urlparse_cached(request).hostname or ""
            why = self.describe_blocked(locale, domain) if reason in PARKABLE_REASONS else reason
            self.sink.warn_once(
                key,
                "No usable exit for locale %(locale)r (%(reason)s; %(why)s): requests for it "
                "fail closed and are counted in proxystack/requests/no_exit/%(reason)s "
                "(first: %(url)s)",
                {"locale": locale, "reason": reason, "why": why, "url": request.url},
            )
        if self.settings.close_on_empty_locale:
            self.sink.close("proxystack_no_exit")
        return ExitUnavailable(locale, reason)

    def count_drop(self, request: Request, reason: str, locale: str | None = None) -> None:
        """Count a request the suite drops, in stats and in the per-locale summary at close."""
        self.stats.inc("requests", "dropped", reason)
        if locale is None:
            locale = self.locale_of(request)
        per_locale = self.dropped.setdefault(locale, {})
        per_locale[reason] = per_locale.get(reason, 0) + 1

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
        )

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

    # -- retries --------------------------------------------------------------------------------

    def throttled_copy(self, request: Request, exit_id: str) -> Request | None:
        """The request again after a site slowed it down (429): through another exit, or the
        same one once paced. ``None`` when it must not go again (``dont_retry``, too often)."""
        route = route_of(request)
        times = route.throttled + 1
        if request.meta.get("dont_retry") or times > MAX_THROTTLES:
            return None
        retry = request.replace(dont_filter=True)
        since = route.waiting_since if route.waiting_since is not None else self.wall_clock()
        _update(retry, throttled=times, waiting_since=since)
        self.forget(retry, exit_id, tried=False)  # paced, not failed: it may come back to it
        return retry

    # -- waiting for an exit ----------------------------------------------------------------------

    def park(
        self, request: Request, locale: str | None, domain: str, exc: NoExit
    ) -> Request | None:
        """A copy of ``request`` to hand back to the engine, which then waits in the parking
        lot until an exit of its chain is ready for ``domain``; None when it cannot wait: no
        exit will ever be ready, it was not scheduled, or its total wait would pass
        ``PROXYSTACK_BAN_MAX_WAIT``.
        """
        route = route_of(request)
        if route.park_at is not None:
            # A copy handed back that came straight back without the scheduler (Scrapy's
            # engine.download_async loops on it): it is not a scheduled request.
            _update(request, park_at=None, scheduled=False)
            return None
        if (
            exc.retry_at is None
            or exc.reason not in PARKABLE_REASONS
            or not route.scheduled
            or not self.sink.is_open()
            or self.settings.close_on_empty_locale  # the strict choice: stop, do not wait
        ):
            return None
        now = self.wall_clock()
        since = route.waiting_since if route.waiting_since is not None else now
        if (now - since) + (exc.retry_at - self.clock()) > self.settings.ban_max_wait:
            return None
        copy = request.replace(dont_filter=True)
        _update(copy, waiting_since=since, park_at=exc.retry_at)
        self.stats.inc("requests", "parked", locale or "none")
        if exc.reason == "site_down":
            self.stats.inc("requests", "parked_site_down")
        self.sink.warn_once(
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

    def scheduled(self, request: Request) -> bool:
        """The scheduler took ``request``: park it when it is a waiting copy (True), otherwise
        remember that it came through the scheduler (False)."""
        route = route_of(request)
        ready_at = route.park_at
        if ready_at is None:
            if not route.scheduled:
                _update(request, scheduled=True)
            return False
        locale = route.decision.locale if route.decision is not None else None
        domain = urlparse_cached(request).hostname or ""
        _update(request, park_at=None, released=False)
        self.lot.park(locale, domain, request, ready_at, front=route.released)
        self.sink.arm(ready_at)
        return True

    @staticmethod
    def unparked(request: Request) -> None:
        """The lot let ``request`` go: it reports back whether it found an exit."""
        _update(request, released=True)

    def found_exit(self, request: Request, locale: str | None, domain: str) -> None:
        """A request the lot let go found an exit: let the next one of its group go."""
        if route_of(request).released:
            _update(request, released=False)
            now = self.clock()
            self.lot.bound(locale, domain, now)
            self.sink.arm(now)

    def site_recovered(self, domain: str) -> None:
        """A site taken to be down (or failing) answered: its waiting requests may go."""
        now = self.clock()
        if self.lot.wake_domain(domain, now):
            self.sink.arm(now)
        logger.info("Site %(domain)s answers again", {"domain": domain})

    def hold(self, request: Request) -> Request | None:
        """A copy of a scheduled request that the crawl's closing interrupted while it waited
        in the downloader: it goes to the parking lot, and with ``JOBDIR`` to the next run
        (it is already in the dupefilter, so the scheduler would never give it back)."""
        if not route_of(request).scheduled or not self.sink.is_open():
            return None
        self.release_held(request)
        copy = request.replace(dont_filter=True)
        _update(copy, park_at=self.clock())
        self.forget(copy, tried=False)
        return copy

    @staticmethod
    def for_pause(request: Request) -> Request:
        """The copy of a waiting request kept in ``JOBDIR``: the pause does not count as
        waiting."""
        copy = request.replace()
        _update(copy, waiting_since=None)
        return copy

    # -- outcomes -------------------------------------------------------------------------------

    def emit(
        self,
        request: Request,
        kind: str,
        reason: str,
        *,
        status: int | None = None,
        exit_id: str | None = None,
        size: int | None = None,
    ) -> None:
        """Send :data:`~scrapy_proxystack.signals.exit_outcome` for one attempt of ``request``."""
        meta = request.meta
        route = route_of(request)
        latency = meta.get("download_latency")
        outcome = ExitOutcome(
            time=self.wall_clock(),
            url=request.url,
            domain=urlparse_cached(request).hostname or "",
            locale=route.decision.locale if route.decision is not None else None,
            exit_locale=route.exit_locale,
            exit_id=exit_id if exit_id is not None else route.exit_id,
            kind=kind,
            reason=reason,
            status=status,
            latency=float(latency) if latency is not None and kind != "no_exit" else None,
            retries=int(meta.get("retry_times", 0)),
            fallback=route.fallback,
            panic=route.panic,
            exit_pool=route.exit_pool if exit_id is None or exit_id == route.exit_id else None,
            size=size,
        )
        self.sink.send_outcome(outcome, request)
