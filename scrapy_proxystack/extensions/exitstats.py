"""Latency percentiles per locale, figures per (locale, pool) and, on request, per-exit
breakdowns in the crawl stats."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from scrapy import signals

from scrapy_proxystack.extensions._aggregate import ATTEMPT_KINDS, OTHER
from scrapy_proxystack.extensions._base import observe
from scrapy_proxystack.signals import exit_outcome

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler

    from scrapy_proxystack.signals import ExitOutcome

__all__ = ["ExitStatsExtension"]

#: Exits with ``proxystack/exit/{id}/...`` keys of their own; later ones are counted under
#: ``proxystack/exit/other/...``, so a million exits do not make four million stats keys.
MAX_EXIT_STATS: Final = 10_000
_PER_EXIT_METRIC = {"success": "successes", "ban": "bans", "transport_failure": "failures"}


class ExitStatsExtension:
    """Writes ``proxystack/latency/...`` at close, and ``proxystack/exit/{id}/...`` if asked.

    Per-exit keys multiply the stats by the number of exits, so they are opt-in
    (``PROXYSTACK_STATS_PER_EXIT``) and keyed by the exit id, never by its URL.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.settings, self.observer = observe(crawler)
        self.stats = self.observer.stack.stats
        #: Exits with keys of their own; past :data:`MAX_EXIT_STATS`, others count as "other".
        self.keyed: set[str] = set()
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)
        if self.settings.stats_per_exit:
            crawler.signals.connect(self.on_outcome, signal=exit_outcome)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ExitStatsExtension:
        return cls(crawler)

    def on_outcome(self, outcome: ExitOutcome, request: Request, **kwargs: Any) -> None:
        exit_id = outcome.exit_id
        if exit_id is None or outcome.kind not in ATTEMPT_KINDS:
            return
        if exit_id not in self.keyed:
            if len(self.keyed) < MAX_EXIT_STATS:
                self.keyed.add(exit_id)
            else:
                exit_id = OTHER
        self.stats.inc("exit", exit_id, "attempts")
        self.stats.inc("exit", exit_id, _PER_EXIT_METRIC[outcome.kind])

    def spider_closed(self, reason: str) -> None:
        for locale, agg in self.observer.aggregate.locales.items():
            p50 = agg.latency.quantile(0.5)
            p95 = agg.latency.quantile(0.95)
            if p50 is not None and p95 is not None:
                self.stats.set("latency", "p50_ms", locale, value=round(p50 * 1000))
                self.stats.set("latency", "p95_ms", locale, value=round(p95 * 1000))
        self._pool_stats()
        if not self.settings.stats_per_exit:
            return
        for exit_id, ex in self.observer.aggregate.exits.items():
            hist = ex.histogram
            if hist is None or not hist.count or exit_id not in self.keyed:
                continue
            p50 = hist.quantile(0.5)
            p95 = hist.quantile(0.95)
            assert p50 is not None
            assert p95 is not None
            self.stats.set("exit", exit_id, "latency_p50_ms", value=round(p50 * 1000))
            self.stats.set("exit", exit_id, "latency_p95_ms", value=round(p95 * 1000))

    def _pool_stats(self) -> None:
        """``proxystack/pool/{metric}/{locale}:{pool}`` for locales split into several pools
        (vendors, canaries): the figures to compare them by. Pools are configured: few keys."""
        config = self.observer.stack.config
        for (locale, pool), agg in self.observer.aggregate.pools.items():
            split = config.locales.get(locale)
            if split is None or len(split.pools) < 2:
                continue
            label = f"{locale}:{pool}"
            self.stats.set("pool", "attempts", label, value=agg.attempts)
            self.stats.set("pool", "successes", label, value=agg.successes)
            self.stats.set("pool", "bans", label, value=agg.bans)
            self.stats.set("pool", "failures", label, value=agg.failures)
            self.stats.set("pool", "bytes", label, value=agg.bytes)
            p50 = agg.latency.quantile(0.5)
            p95 = agg.latency.quantile(0.95)
            if p50 is not None and p95 is not None:
                self.stats.set("pool", "p50_ms", label, value=round(p50 * 1000))
                self.stats.set("pool", "p95_ms", label, value=round(p95 * 1000))
