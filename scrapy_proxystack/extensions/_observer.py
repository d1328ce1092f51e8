"""One observer per crawler that aggregates every ``exit_outcome`` for all the extensions.

The periodic log line, the end-of-crawl report and the stats extension need the same totals.
Connecting each of them to the signal would aggregate the same events three times; instead the
first extension that asks builds a :class:`CrawlObserver` and the others share it.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, Final

from scrapy_proxystack.extensions._aggregate import ATTEMPT_KINDS, CrawlAggregate, label_of
from scrapy_proxystack.runtime import get_stack
from scrapy_proxystack.settings import ObservabilitySettings
from scrapy_proxystack.signals import exit_outcome

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler

    from scrapy_proxystack.pool import PoolCounts
    from scrapy_proxystack.runtime import ProxyStack
    from scrapy_proxystack.signals import ExitOutcome

__all__ = ["CrawlObserver", "get_observer"]

logger = logging.getLogger(__name__)

#: Active (exit, site) bans remembered for the "banned exits" count before a forced prune.
_MAX_BANNED_PAIRS: Final = 100_000

_OBSERVERS: weakref.WeakKeyDictionary[Crawler, CrawlObserver] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


class CrawlObserver:
    """Aggregates outcomes, remembers active bans, and warns once when a locale runs dry."""

    def __init__(self, crawler: Crawler, stack: ProxyStack) -> None:
        self.crawler = crawler
        self.stack = stack
        per_exit = ObservabilitySettings.from_settings(crawler.settings).stats_per_exit
        self.per_exit = per_exit
        self.aggregate = CrawlAggregate(time.time(), per_exit_histograms=per_exit)
        #: (exit id, site) -> exit locale, for bans that may still be running.
        self.banned: dict[tuple[str, str], str | None] = {}
        #: Locales that ran dry at least once, with the time it was first noticed.
        self.dry: dict[str, float] = {}
        self.locale_names: tuple[str | None, ...] = (
            *stack.config.locales,
            *((None,) if stack.config.unlocalized else ()),
        )
        crawler.signals.connect(self.on_outcome, signal=exit_outcome)

    def on_outcome(self, outcome: ExitOutcome, request: Request, **kwargs: Any) -> None:
        self.aggregate.add(outcome)
        kind = outcome.kind
        if kind == "ban" and outcome.exit_id is not None:
            if len(self.banned) >= _MAX_BANNED_PAIRS:
                self.prune_bans()
            self.banned[(outcome.exit_id, outcome.domain)] = outcome.exit_locale
        elif kind == "transport_failure":
            self.check_dry(outcome.exit_locale)
        elif kind == "no_exit":
            self.check_dry(outcome.locale)

    def prune_bans(self) -> None:
        """Forget bans the pool no longer enforces."""
        pool = self.stack.pool
        self.banned = {
            pair: locale
            for pair, locale in self.banned.items()
            if pool.ready_at(pair[0], pair[1]) is not None
        }

    def banned_exits(self) -> dict[str, int]:
        """Distinct exits banned by at least one site right now, per locale label."""
        self.prune_bans()
        seen: dict[str, set[str]] = {}
        for (exit_id, _site), locale in self.banned.items():
            seen.setdefault(label_of(locale), set()).add(exit_id)
        return {locale: len(ids) for locale, ids in seen.items()}

    def counts(self, locale: str | None) -> PoolCounts | None:
        try:
            return self.stack.pool.counts(locale)
        except KeyError:
            return None

    def check_dry(self, locale: str | None) -> None:
        """Warn once per locale when none of its exits works any more: all ejected, or every
        one failing on its own (the ejection share cap keeps some "usable" that only fail)."""
        label = label_of(locale)
        if label in self.dry:
            return
        counts = self.counts(locale)
        if counts is None or counts.total == 0:
            return
        if counts.usable > 0 and counts.failing < counts.total:
            return
        self.dry[label] = time.time()
        self.stack.stats.set("locales", "dry", label, value=1)
        logger.warning(
            "Locale %(locale)s ran dry: every one of its %(total)d exits fails "
            "(%(ejected)d ejected, %(failing)d failing); its requests now go to fallbacks, "
            "panic mode, or fail closed",
            {
                "locale": label,
                "total": counts.total,
                "ejected": counts.ejected,
                "failing": counts.failing,
            },
            extra={"crawler": self.crawler},
        )

    def attempts(self) -> int:
        return sum(agg.attempts for agg in self.aggregate.locales.values())

    def failures(self) -> int:
        """Attempts that did not give a usable answer."""
        return sum(
            n
            for agg in self.aggregate.locales.values()
            for kind, n in agg.outcomes.items()
            if kind in ATTEMPT_KINDS and kind != "success"
        )


def get_observer(crawler: Crawler) -> CrawlObserver:
    """The crawler's :class:`CrawlObserver`, built (and connected) on first call."""
    with _LOCK:
        observer = _OBSERVERS.get(crawler)
        if observer is None:
            observer = _OBSERVERS[crawler] = CrawlObserver(crawler, get_stack(crawler))
        return observer
