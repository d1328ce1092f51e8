"""Signals the suite sends, so extensions (yours or ours) can observe every exit decision.

Connect with ``crawler.signals.connect(handler, signal=scrapy_proxystack.signals.exit_outcome)``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ExitOutcome", "exit_outcome", "throttle_wait"]

#: Sent once per attempt of a request that the suite routed (or refused to route), when the
#: attempt's fate is known: a usable answer, a ban, a transport failure, or no exit at all.
#: Handlers receive ``outcome`` (an :class:`ExitOutcome`) and ``request``.
exit_outcome = object()


#: Sent when a request waits before it is sent: its site's rate budget (GCRA, Crawl-delay) or a
#: paced exit. Handlers receive ``locale`` (the request's locale or None), ``domain``,
#: ``seconds`` and ``cause`` (``"site_rate"`` or ``"exit_pacing"``).
throttle_wait = object()


@dataclass(frozen=True, slots=True)
class ExitOutcome:
    """What happened to one attempt. Never holds a credential: exits are named by id."""

    time: float  #: wall-clock time (``time.time()``) when the outcome was known
    url: str
    domain: str
    locale: str | None  #: the locale the request asked for (None: pool of all proxies)
    exit_locale: str | None  #: the locale whose exit served it (differs on fallback)
    exit_id: str | None  #: None when no exit was chosen
    #: "success" | "ban" | "transport_failure" | "no_exit" | "session_retired" | "cancelled"
    #: (the crawler itself cut the download short, e.g. ``DOWNLOAD_MAXSIZE``)
    kind: str
    reason: str  #: "ok", a ban reason, an exception class name, a no-exit reason
    status: int | None = None
    latency: float | None = None  #: seconds, Scrapy's download_latency
    retries: int = 0  #: retries of this request before this attempt
    fallback: bool = False
    panic: bool = False
    #: the pool (of ``exit_locale``) the exit belongs to: ``default`` for a locale's plain
    #: ``proxies`` list; None when no exit was chosen
    exit_pool: str | None = None
    #: bytes of the response body, when there was a response
    size: int | None = None
