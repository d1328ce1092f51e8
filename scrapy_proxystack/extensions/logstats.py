"""A periodic log line per locale (exit health, request rate, ban rate and latency), and one per
pool for locales split into pools (vendors, canaries), so they can be compared as they go."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from scrapy import signals
from scrapy.exceptions import NotConfigured
from scrapy.utils.asyncio import create_looping_call

from scrapy_proxystack.extensions._aggregate import LatencyHistogram, label_of
from scrapy_proxystack.extensions._base import observe

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.utils.asyncio import AsyncioLoopingCall
    from twisted.internet.task import LoopingCall

__all__ = ["ProxyStackLogStats"]

logger = logging.getLogger(__name__)


class _Snapshot:
    """Cumulative counters of a locale or pool at the previous tick, for the interval's rates."""

    __slots__ = ("attempts", "bans", "failures", "latency")

    def __init__(self) -> None:
        self.attempts = 0
        self.bans = 0
        self.failures = 0
        self.latency: list[int] = []

    def window(self, hist: LatencyHistogram) -> LatencyHistogram:
        """The latencies added since the previous tick (and remember the current counts)."""
        window = LatencyHistogram()
        current = hist.counts
        old = self.latency or [0] * len(current)
        window.counts = [c - o for c, o in zip(current, old, strict=True)]
        window.count = sum(window.counts)
        window.max = hist.max
        self.latency = list(current)
        return window


class ProxyStackLogStats:
    """Logs, every ``PROXYSTACK_LOGSTATS_INTERVAL`` seconds, one line per active locale.

    Rates and percentiles are over the last interval (the histogram counts of the previous
    tick are subtracted), so the line shows how the crawl goes *now*, not on average since the
    start. A locale is shown when it had traffic in the interval or has exits out of service.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.settings, self.observer = observe(crawler)
        if not self.settings.logstats_interval:
            raise NotConfigured  # off by default: nothing to say
        self.crawler = crawler
        self.interval = self.settings.logstats_interval
        self.previous: dict[str, _Snapshot] = {}
        self.previous_pools: dict[tuple[str, str], _Snapshot] = {}
        config = self.observer.stack.config
        #: Locales split into several pools, with their pool names.
        self.pools = {
            name: [p.name for p in loc.pools]
            for name, loc in config.locales.items()
            if len(loc.pools) > 1
        }
        self.task: AsyncioLoopingCall | LoopingCall | None = None
        crawler.signals.connect(self.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ProxyStackLogStats:
        return cls(crawler)

    def spider_opened(self) -> None:
        self.task = create_looping_call(self.log)
        self.task.start(self.interval, now=False)

    def spider_closed(self) -> None:
        if self.task is not None and self.task.running:
            self.task.stop()

    def log(self) -> None:
        """Emit the lines; also re-checks every locale for running dry."""
        observer = self.observer
        banned = observer.banned_exits()
        per_minute = 60.0 / self.interval
        for name in observer.locale_names:
            observer.check_dry(name)
            label = label_of(name)
            counts = observer.counts(name)
            agg = observer.aggregate.locales.get(label)
            prev = self.previous.setdefault(label, _Snapshot())
            attempts = agg.attempts if agg else 0
            bans = agg.outcomes.get("ban", 0) if agg else 0
            window = prev.window(agg.latency) if agg is not None else LatencyHistogram()
            delta, delta_bans = attempts - prev.attempts, bans - prev.bans
            prev.attempts, prev.bans = attempts, bans
            usable = counts.usable if counts else 0
            ejected = counts.ejected if counts else 0
            total = counts.total if counts else 0
            n_banned = banned.get(label, 0)
            waiting = observer.stack.lot.waiting(name)
            if not delta and not ejected and not n_banned and not waiting:
                continue
            p50, p95 = window.quantile(0.5), window.quantile(0.95)
            logger.info(
                "Locale %(locale)s: %(usable)d/%(total)d exits usable, %(ejected)d ejected, "
                "%(banned)d banned by a site; %(rpm).0f requests/min, ban rate %(ban_rate).1f%%, "
                "latency p50 %(p50)s p95 %(p95)s; %(waiting)d waiting for an exit",
                {
                    "locale": label,
                    "usable": usable,
                    "total": total,
                    "ejected": ejected,
                    "banned": n_banned,
                    "rpm": delta * per_minute,
                    "ban_rate": 100.0 * delta_bans / delta if delta else 0.0,
                    "p50": _ms(p50),
                    "p95": _ms(p95),
                    "waiting": waiting,
                },
                extra={"crawler": self.crawler},
            )
            if name in self.pools:
                self.log_pools(name, per_minute)

    def log_pools(self, locale: str, per_minute: float) -> None:
        """One line per pool of ``locale`` that had traffic in the interval."""
        pool = self.observer.stack.pool
        for name in self.pools[locale]:
            agg = self.observer.aggregate.pools.get((locale, name))
            if agg is None:
                continue
            prev = self.previous_pools.setdefault((locale, name), _Snapshot())
            window = prev.window(agg.latency)
            delta = agg.attempts - prev.attempts
            bans, failures = agg.bans - prev.bans, agg.failures - prev.failures
            prev.attempts, prev.bans, prev.failures = agg.attempts, agg.bans, agg.failures
            if not delta:
                continue
            logger.info(
                "  pool %(locale)s:%(pool)s (weight %(weight)g): %(rpm).0f requests/min, "
                "ban rate %(ban_rate).1f%%, transport failures %(failure_rate).1f%%, latency "
                "p50 %(p50)s p95 %(p95)s",
                {
                    "locale": locale,
                    "pool": name,
                    "weight": pool.pool_weight(locale, name),
                    "rpm": delta * per_minute,
                    "ban_rate": 100.0 * bans / delta,
                    "failure_rate": 100.0 * failures / delta,
                    "p50": _ms(window.quantile(0.5)),
                    "p95": _ms(window.quantile(0.95)),
                },
                extra={"crawler": self.crawler},
            )


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"
