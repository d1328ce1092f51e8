"""Bounded-memory aggregates of exit outcomes, shared by the observability extensions.

Everything here is plain Python with no Scrapy import, so it is cheap to unit-test. Each update
is O(1): latencies go into fixed log-spaced histogram buckets (percentiles are then estimated to
within one bucket, 12.5 %), per-exit aggregates exist only for exits actually seen, per-site and
per-reason tables are capped (extra labels fold into ``(other)``), and the ban time series keeps
at most :data:`MAX_TIME_BUCKETS` buckets by doubling their width as the crawl goes on.
"""

from __future__ import annotations

import bisect
import heapq
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from scrapy_proxystack.signals import ExitOutcome

__all__ = [
    "ATTEMPT_KINDS",
    "LATENCY_BOUNDS",
    "MAX_TIME_BUCKETS",
    "OTHER",
    "CrawlAggregate",
    "ExitAggregate",
    "LatencyHistogram",
    "LocaleAggregate",
    "PoolAggregate",
    "label_of",
]

#: Upper bounds (seconds) of the latency buckets: 1 ms x 1.25**k, up to about 11 minutes.
LATENCY_BOUNDS: Final[tuple[float, ...]] = tuple(0.001 * 1.25**k for k in range(61))
#: Outcome kinds that mean "an exit was actually used".
ATTEMPT_KINDS: Final = frozenset({"success", "ban", "transport_failure"})
#: The label that stands for every value past a table's cap.
OTHER: Final = "(other)"
MAX_TIME_BUCKETS: Final = 60
_FIRST_BUCKET_WIDTH: Final = 5.0
_MAX_SITES: Final = 500
_MAX_REASONS: Final = 50
#: Sites tracked per pool for the "where the pools differ" table; later ones are not tracked.
_MAX_POOL_SITES: Final = 500


def label_of(locale: str | None) -> str:
    """How a locale is shown: its name, or ``none`` for the pool of all proxies."""
    return locale if locale is not None else "none"


class LatencyHistogram:
    """Counts of latencies per fixed bucket; quantiles estimated by interpolation in a bucket."""

    __slots__ = ("count", "counts", "max", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BOUNDS) + 1)
        self.count = 0
        self.sum = 0.0
        self.max = 0.0

    def add(self, seconds: float) -> None:
        seconds = max(seconds, 0.0)
        self.counts[bisect.bisect_left(LATENCY_BOUNDS, seconds)] += 1
        self.count += 1
        self.sum += seconds
        if seconds > self.max:
            self.max = seconds

    def merge(self, other: LatencyHistogram) -> None:
        for i, n in enumerate(other.counts):
            self.counts[i] += n
        self.count += other.count
        self.sum += other.sum
        self.max = max(self.max, other.max)

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile in seconds (None without samples), never above the largest seen."""
        if not self.count:
            return None
        rank = q * self.count
        seen = 0
        for i, n in enumerate(self.counts):
            if n and seen + n >= rank:
                low = LATENCY_BOUNDS[i - 1] if i > 0 else 0.0
                high = LATENCY_BOUNDS[i] if i < len(LATENCY_BOUNDS) else self.max
                value = low + (high - low) * max(rank - seen, 0.0) / n
                return min(value, self.max)
            seen += n
        return self.max

    @property
    def mean(self) -> float | None:
        return self.sum / self.count if self.count else None

    def buckets(self) -> list[tuple[float, int]]:
        """``(upper bound, count)`` for the non-empty span of buckets (for charts and JSON)."""
        nonzero = [i for i, n in enumerate(self.counts) if n]
        if not nonzero:
            return []
        bounds = (*LATENCY_BOUNDS, math.inf)
        return [(bounds[i], self.counts[i]) for i in range(nonzero[0], nonzero[-1] + 1)]


@dataclass
class LocaleAggregate:
    """What happened to the attempts of one locale (the exit's locale when an exit was used)."""

    attempts: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    fallback: int = 0
    panic: int = 0


@dataclass
class PoolAggregate:
    """What happened to the attempts of one (locale, pool): the side-by-side figures of vendors.

    ``sites`` holds ``[attempts, bans, transport failures]`` for the first
    :data:`_MAX_POOL_SITES` sites the pool served.
    """

    attempts: int = 0
    successes: int = 0
    bans: int = 0
    failures: int = 0
    bytes: int = 0
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    sites: dict[str, list[int]] = field(default_factory=dict)

    def add(self, kind: str, domain: str, latency: float | None, size: int | None) -> None:
        self.attempts += 1
        row = self.sites.get(domain)
        if row is None and len(self.sites) < _MAX_POOL_SITES:
            row = self.sites[domain] = [0, 0, 0]
        if row is not None:
            row[0] += 1
        if size is not None:
            self.bytes += size
        if kind == "success":
            self.successes += 1
            if latency is not None:
                self.latency.add(latency)
        elif kind == "ban":
            self.bans += 1
            if row is not None:
                row[1] += 1
        else:
            self.failures += 1
            if row is not None:
                row[2] += 1


@dataclass
class ExitAggregate:
    """Per-exit totals, created on the first outcome of that exit only."""

    locale: str | None
    attempts: int = 0
    successes: int = 0
    bans: int = 0
    failures: int = 0
    latency_sum: float = 0.0
    latency_n: int = 0
    latency_max: float = 0.0
    histogram: LatencyHistogram | None = None  # only with per-exit stats

    @property
    def mean_latency(self) -> float | None:
        return self.latency_sum / self.latency_n if self.latency_n else None


class _Capped:
    """A counter table with at most ``cap`` keys; later keys are counted under :data:`OTHER`."""

    __slots__ = ("cap", "data")

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.data: dict[str, dict[str, int]] = {}

    def key(self, key: str) -> str:
        return key if key in self.data or len(self.data) < self.cap else OTHER

    def inc(self, key: str, sub: str) -> None:
        row = self.data.setdefault(self.key(key), {})
        row[sub] = row.get(sub, 0) + 1


#: Exits whose own figures are kept (see :meth:`CrawlAggregate._forget_exits`).
MAX_TRACKED_EXITS: Final = 20_000


class CrawlAggregate:
    """Running totals of every :class:`~scrapy_proxystack.signals.ExitOutcome` of a crawl.

    ``per_exit_histograms`` keeps a latency histogram per exit (opt-in: 62 counters per exit).
    ``start`` is the crawl's start time (``time.time()``); the ban time series counts from it.
    """

    def __init__(self, start: float, *, per_exit_histograms: bool = False) -> None:
        self.start = start
        self.per_exit_histograms = per_exit_histograms
        self.locales: dict[str, LocaleAggregate] = {}
        #: (locale label, pool) -> its figures; pools are configured, so this stays small.
        self.pools: dict[tuple[str, str], PoolAggregate] = {}
        #: Exits with an outcome, at most :data:`MAX_TRACKED_EXITS` (see :meth:`_forget_exits`).
        self.exits: dict[str, ExitAggregate] = {}
        #: Exits whose figures were dropped to keep ``exits`` bounded.
        self.exits_forgotten = 0
        self.sites = _Capped(_MAX_SITES)  # site -> outcome kind -> count
        self.site_bans = _Capped(_MAX_SITES)  # site -> ban reason -> count
        self.bucket_width = _FIRST_BUCKET_WIDTH
        self.ban_series: dict[str, list[int]] = {}  # reason -> count per time bucket
        self._reasons: set[str] = set()
        self.total = 0
        self.last_time = start

    def reason_label(self, reason: str) -> str:
        if reason in self._reasons:
            return reason
        if len(self._reasons) < _MAX_REASONS:
            self._reasons.add(reason)
            return reason
        return OTHER

    def add(self, outcome: ExitOutcome) -> None:
        self.total += 1
        self.last_time = max(self.last_time, outcome.time)
        kind = outcome.kind
        used_exit = kind in ATTEMPT_KINDS
        locale = label_of(outcome.exit_locale if used_exit else outcome.locale)
        agg = self.locales.get(locale)
        if agg is None:
            agg = self.locales[locale] = LocaleAggregate()
        agg.outcomes[kind] = agg.outcomes.get(kind, 0) + 1
        self.sites.inc(outcome.domain, kind)
        if not used_exit:
            return
        agg.attempts += 1
        agg.fallback += outcome.fallback
        agg.panic += outcome.panic
        latency = outcome.latency
        if kind == "success" and latency is not None:
            agg.latency.add(latency)
        if outcome.exit_pool is not None:
            key = (locale, outcome.exit_pool)
            pool = self.pools.get(key)
            if pool is None:
                pool = self.pools[key] = PoolAggregate()
            pool.add(kind, outcome.domain, latency, outcome.size)
        exit_id = outcome.exit_id
        if exit_id is not None:
            ex = self.exits.get(exit_id)
            if ex is None:
                if len(self.exits) >= MAX_TRACKED_EXITS:
                    self._forget_exits()
                ex = self.exits[exit_id] = ExitAggregate(outcome.exit_locale)
                if self.per_exit_histograms:
                    ex.histogram = LatencyHistogram()
            ex.attempts += 1
            if kind == "success":
                ex.successes += 1
                if latency is not None:
                    ex.latency_sum += latency
                    ex.latency_n += 1
                    ex.latency_max = max(ex.latency_max, latency)
                    if ex.histogram is not None:
                        ex.histogram.add(latency)
            elif kind == "ban":
                ex.bans += 1
            else:
                ex.failures += 1
        if kind == "ban":
            reason = self.reason_label(outcome.reason)
            self.site_bans.inc(outcome.domain, reason)
            self._count_ban(reason, outcome.time)

    def _forget_exits(self) -> None:
        """Keep the exits the report shows (most banned, slowest, most failing), drop the rest.

        With a million exits in rotation, figures for every one would grow without bound; the
        report and the per-exit stats only ever show the extremes. Runs once per
        ``MAX_TRACKED_EXITS / 4`` new exits: amortised O(log n) per outcome.
        """
        keep = MAX_TRACKED_EXITS // 4
        items = self.exits.items()
        kept: set[str] = set()
        for key in (
            lambda ie: ie[1].bans,
            lambda ie: ie[1].mean_latency or 0.0,
            lambda ie: ie[1].failures,
        ):
            kept.update(i for i, _e in heapq.nlargest(keep, items, key=key))
        self.exits_forgotten += len(self.exits) - len(kept)
        self.exits = {i: self.exits[i] for i in kept}

    def _count_ban(self, reason: str, when: float) -> None:
        index = int(max(when - self.start, 0.0) // self.bucket_width)
        while index >= MAX_TIME_BUCKETS:
            self._coarsen()
            index = int(max(when - self.start, 0.0) // self.bucket_width)
        series = self.ban_series.get(reason)
        if series is None:
            series = self.ban_series[reason] = [0] * MAX_TIME_BUCKETS
        series[index] += 1

    def _coarsen(self) -> None:
        """Double the bucket width, merging neighbours, so the series stays bounded."""
        self.bucket_width *= 2
        for reason, series in self.ban_series.items():
            merged = [series[i] + series[i + 1] for i in range(0, MAX_TIME_BUCKETS, 2)]
            self.ban_series[reason] = merged + [0] * (MAX_TIME_BUCKETS - len(merged))
