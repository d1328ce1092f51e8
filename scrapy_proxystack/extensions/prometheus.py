"""A Prometheus ``/metrics`` endpoint for the crawl: requests, latency, bans and exits by state.

Metrics live in a registry of their own (not ``prometheus_client``'s global one), so two
crawlers in one process, or a project that exports its own metrics, never collide. Every label
takes its values from a bounded set: configured locales and pools, outcome kinds, status
classes, and at most :data:`MAX_REASONS` ban reasons; anything else is counted as ``other``.
Proxy URLs and exit ids are never labels.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Final

from scrapy import signals
from scrapy.exceptions import NotConfigured
from scrapy.utils.asyncio import create_looping_call

from scrapy_proxystack import signals as proxystack_signals
from scrapy_proxystack.extensions._aggregate import label_of
from scrapy_proxystack.extensions._base import observe
from scrapy_proxystack.signals import exit_outcome

if TYPE_CHECKING:
    import threading
    from wsgiref.simple_server import WSGIServer

    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.utils.asyncio import AsyncioLoopingCall
    from twisted.internet.task import LoopingCall

    from scrapy_proxystack.signals import ExitOutcome

__all__ = ["LATENCY_BUCKETS", "MAX_REASONS", "PrometheusExtension"]

logger = logging.getLogger(__name__)

#: Histogram buckets (seconds) of request latency and throttle waits.
LATENCY_BUCKETS: Final = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
#: Distinct ban reasons kept as label values; later ones become ``other``.
MAX_REASONS: Final = 50
#: Seconds between refreshes of the exits-by-state gauges (read from the pool on the crawl's
#: own thread: the pool is not thread-safe, so the HTTP thread never touches it).
GAUGE_INTERVAL: Final = 1.0
_OUTCOMES: Final = frozenset(
    {"success", "ban", "transport_failure", "no_exit", "session_retired", "cancelled"}
)
_OTHER: Final = "other"


class PrometheusExtension:
    """Serves ``/metrics`` on ``PROXYSTACK_PROMETHEUS_BIND:PROXYSTACK_PROMETHEUS_PORT``.

    Port ``0`` binds any free port; the address is logged (``Prometheus metrics on
    http://host:port/metrics``) and kept in ``proxystack/prometheus/port``. The server starts
    when the spider opens and stops, thread joined and socket closed, when it closes.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.settings, self.observer = observe(crawler)
        if self.settings.prometheus_port is None:
            raise NotConfigured  # off by default: nothing to say
        try:
            import prometheus_client
        except ImportError:
            raise NotConfigured(
                "PROXYSTACK_PROMETHEUS_PORT needs prometheus_client: "
                "pip install prometheus_client (the package's 'prometheus' extra)"
            ) from None
        self.crawler = crawler
        config = self.observer.stack.config
        self.locales: frozenset[str] = frozenset(label_of(n) for n in self.observer.locale_names)
        # Pool names come from the configuration's pools, never from its exits: a million
        # exits make no per-exit map here.
        self.pools: frozenset[str] = frozenset(
            {pool.name for locale in config.locales.values() for pool in locale.pools}
            | ({config.unlocalized[0].pool} if config.unlocalized else set())
        )
        self.reasons: set[str] = set()
        self.server: WSGIServer | None = None
        self.thread: threading.Thread | None = None
        self.task: AsyncioLoopingCall | LoopingCall | None = None

        self.registry = prometheus_client.CollectorRegistry(auto_describe=True)
        self._traffic_metrics(prometheus_client)
        self._state_metrics(prometheus_client)
        crawler.signals.connect(self.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)
        crawler.signals.connect(self.on_outcome, signal=exit_outcome)
        throttle_signal = getattr(proxystack_signals, "throttle_wait", None)
        if throttle_signal is not None:  # sent by the throttle middleware, when installed
            crawler.signals.connect(self.on_throttle_wait, signal=throttle_signal)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PrometheusExtension:
        return cls(crawler)

    def _traffic_metrics(self, pc: Any) -> None:
        """Counters and histograms fed by each outcome and each throttle wait."""
        registry = self.registry
        self.requests = pc.Counter(
            "proxystack_requests",
            "Request attempts by locale, pool and outcome (success, ban, transport_failure, "
            "no_exit, session_retired)",
            ["locale", "pool", "outcome"],
            registry=registry,
        )
        self.responses = pc.Counter(
            "proxystack_responses",
            "Responses received through an exit, by locale, pool and status class",
            ["locale", "pool", "status_class"],
            registry=registry,
        )
        self.latency = pc.Histogram(
            "proxystack_response_latency_seconds",
            "Download latency of answers through an exit, by locale, pool and outcome",
            ["locale", "pool", "outcome"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.bans = pc.Counter(
            "proxystack_bans",
            "Bans by exit locale and reason",
            ["locale", "reason"],
            registry=registry,
        )
        self.throttle = pc.Histogram(
            "proxystack_throttle_wait_seconds",
            "Waits imposed by per-site throttling, by locale",
            ["locale"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )

    def _state_metrics(self, pc: Any) -> None:
        """Gauges refreshed from the pool every :data:`GAUGE_INTERVAL` seconds."""
        registry = self.registry
        self.exits = pc.Gauge(
            "proxystack_exits",
            "Exits by locale, pool and state (usable, ejected); in_flight counts requests",
            ["locale", "pool", "state"],
            registry=registry,
        )
        self.banned = pc.Gauge(
            "proxystack_exits_banned",
            "Exits banned by at least one site right now, by locale",
            ["locale"],
            registry=registry,
        )
        self.waiting = pc.Gauge(
            "proxystack_requests_waiting",
            "Requests waiting outside the downloader for an exit of their locale chain",
            ["locale"],
            registry=registry,
        )
        self.pool_weight = pc.Gauge(
            "proxystack_pool_weight",
            "Current weight of each pool of a locale (a canary decision may change it)",
            ["locale", "pool"],
            registry=registry,
        )

    # -- labels ---------------------------------------------------------------------------------

    def _locale(self, locale: str | None) -> str:
        label = label_of(locale)
        return label if label in self.locales else _OTHER

    def _pool(self, pool: str | None) -> str:
        if pool is None:
            return "none"
        return pool if pool in self.pools else _OTHER

    def _reason(self, reason: str) -> str:
        if reason in self.reasons:
            return reason
        if len(self.reasons) < MAX_REASONS:
            self.reasons.add(reason)
            return reason
        return _OTHER

    # -- events ---------------------------------------------------------------------------------

    def on_outcome(self, outcome: ExitOutcome, request: Request, **kwargs: Any) -> None:
        kind = outcome.kind if outcome.kind in _OUTCOMES else _OTHER
        used_exit = outcome.exit_id is not None and kind not in ("no_exit", "session_retired")
        locale = self._locale(outcome.exit_locale if used_exit else outcome.locale)
        pool = self._pool(outcome.exit_pool if used_exit else None)
        self.requests.labels(locale, pool, kind).inc()
        if outcome.status is not None:
            self.responses.labels(locale, pool, f"{outcome.status // 100}xx").inc()
        if outcome.latency is not None and used_exit:
            self.latency.labels(locale, pool, kind).observe(outcome.latency)
        if kind == "ban":
            self.bans.labels(locale, self._reason(outcome.reason)).inc()

    def on_throttle_wait(self, locale: str | None, seconds: float, **kwargs: Any) -> None:
        self.throttle.labels(self._locale(locale)).observe(seconds)

    def refresh_gauges(self) -> None:
        observer = self.observer
        for name in observer.locale_names:
            counts = observer.counts(name)
            if counts is None:
                continue
            label = label_of(name)
            for part in counts.pools or (counts,):
                pool = part.pool or "default"
                if name is not None and part.pool is not None:
                    weight = observer.stack.pool.pool_weight(name, part.pool)
                    self.pool_weight.labels(label, pool).set(weight)
                self.exits.labels(label, pool, "usable").set(part.usable)
                self.exits.labels(label, pool, "ejected").set(part.ejected)
                self.exits.labels(label, pool, "in_flight").set(part.in_flight)
        banned = observer.banned_exits()
        for label in self.locales:
            self.banned.labels(label).set(banned.get(label, 0))
        lot = observer.stack.lot
        for name in observer.locale_names:
            self.waiting.labels(label_of(name)).set(lot.waiting(name))

    # -- server ---------------------------------------------------------------------------------

    def spider_opened(self) -> None:
        from prometheus_client import start_http_server

        self.refresh_gauges()
        port = self.settings.prometheus_port
        assert port is not None
        bind = self.settings.prometheus_bind
        try:
            self.server, self.thread = start_http_server(port, addr=bind, registry=self.registry)
        except OSError as exc:
            logger.error(
                "Cannot serve Prometheus metrics on %(bind)s:%(port)d: %(error)s",
                {"bind": bind, "port": port, "error": exc.strerror or exc},
                extra={"crawler": self.crawler},
            )
            return
        bound = int(self.server.server_port)
        host = f"[{bind}]" if ":" in bind else bind
        self.observer.stack.stats.set("prometheus", "port", value=bound)
        logger.info(
            "Prometheus metrics on http://%(host)s:%(port)d/metrics",
            {"host": host, "port": bound},
            extra={"crawler": self.crawler},
        )
        self.task = create_looping_call(self.refresh_gauges)
        self.task.start(GAUGE_INTERVAL, now=False)

    def spider_closed(self) -> None:
        if self.task is not None and self.task.running:
            self.task.stop()
        self.refresh_gauges()
        server, thread = self.server, self.thread
        self.server = self.thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(5.0)
